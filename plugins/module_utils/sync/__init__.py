# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Synchronisers by driver name: ``get_synchroniser(driver, conn)``.

The driver modules (``sync/heat.py``, ``sync/nova.py``) are imported only
when asked for, so a run that syncs only Nova clusters never imports Heat's
code (both are shipped with the module, though). A driver module exposes its class as ``Synchroniser`` or defines
exactly one ``StateSynchroniser`` subclass.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import (  # re-exported
    FakeSynchroniser,
    Observation,
    StateSynchroniser,
)

__all__ = [
    "DRIVERS",
    "FakeSynchroniser",
    "Observation",
    "StateSynchroniser",
    "get_synchroniser",
    "register",
    "take_census",
]

#: template ``driver`` value -> the driver package whose observe.py holds its synchroniser
DRIVERS = {"heat": "heat", "nova": "nova"}

_registered = {}


def register(driver, cls):
    """Use ``cls`` for ``driver`` (tests register FakeSynchroniser this way)."""
    _registered[driver] = cls


def unregister(driver):
    _registered.pop(driver, None)


def _load(driver):
    """Import a driver's module. Plain import statements (not importlib) so that Ansible's
    module packer (AnsiballZ) sees them and ships both files; they run only when called."""
    if driver == "heat":
        from ansible_collections.coe.openstack.plugins.module_utils.heat import observe as module
    else:
        from ansible_collections.coe.openstack.plugins.module_utils.nova import observe as module
    return module


def synchroniser_class(driver):
    if driver in _registered:
        return _registered[driver]
    if driver not in DRIVERS:
        raise ValidationError("driver", "unknown driver %r (known: %s)" % (driver, ", ".join(sorted(DRIVERS))))
    module = _load(driver)
    cls = getattr(module, "Synchroniser", None)
    if cls is None:
        found = [
            v
            for v in vars(module).values()
            if isinstance(v, type)
            and issubclass(v, StateSynchroniser)
            and v is not StateSynchroniser
            and v.__module__ == module.__name__
        ]
        if len(found) != 1:
            raise ImportError("%s defines %d StateSynchroniser classes; expected one" % (module.__name__, len(found)))
        cls = found[0]
    return cls


def get_synchroniser(driver, conn):
    """An instance of the synchroniser of ``driver`` ("heat" or "nova") on ``conn``."""
    return synchroniser_class(driver)(conn)


def take_census(conn):
    """``{uuid: cluster}`` of every cluster the cloud has in the connection's project (census.py),
    whatever a store knows. It reads every resource kind of both drivers; it is asked of the Nova
    driver's synchroniser (the base class's ``census``) so that a test that fakes the drivers
    fakes it too."""
    return get_synchroniser("nova", conn).census()
