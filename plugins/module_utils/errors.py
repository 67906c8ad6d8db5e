# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The collection's own exceptions.

Plain Python: no ansible and no openstack import, so the store, the state
machine, the locks and the PKI can raise them and be tested without either.
The module base class (module.py) turns every CoeError into one fail_json
whose ``msg`` is ``str(error)`` and whose other keys come from ``details``.
"""

from __future__ import annotations


class CoeError(Exception):
    """Base of every error this collection raises on purpose.

    ``details`` is a dict of extra, secret-free keys returned beside ``msg``.
    """

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def __str__(self):
        return self.msg


class ValidationError(CoeError):
    """Bad input, found before any cloud call or store write."""

    def __init__(self, field, reason, **details):
        super().__init__("Invalid value for '%s': %s" % (field, reason), field=field, **details)
        self.field = field
        self.reason = reason


class NotFoundError(CoeError):
    """A cluster, template, version or cloud resource that does not exist."""


class StateError(CoeError):
    """An operation the state machine refuses from the current status."""


class LockError(CoeError):
    """The cluster lock is held by someone else, or our lease/token is stale."""


class ConflictError(CoeError):
    """A compare-and-set write lost (the record changed under us)."""


class StoreError(CoeError):
    """The state store cannot be opened, read or written."""


class SecretError(CoeError):
    """A missing or wrong secret key for the cluster credentials."""


class CloudError(CoeError):
    """The cloud refused or failed an operation; msg carries the cloud's words."""


class WaitTimeout(CoeError):
    """Something awaited did not happen in time; msg names what and how long."""


def error_text(error):
    """The cloud's own words for an exception (openstacksdk, keystoneauth or any), on one line.

    Duck-typed, so that this file imports neither: the exception's ``message`` (else
    ``str(error)``), then its ``details`` when they add something (openstacksdk's
    HttpException puts the API's explanation there), whitespace collapsed.
    """
    message = getattr(error, "message", None) or str(error)
    details = getattr(error, "details", None)
    text = str(message).strip()
    if details and str(details) not in text:
        text = "%s: %s" % (text, details)
    return " ".join(text.split())
