# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster store: ``open_store(url)`` gives a SQLite or a PostgreSQL store.

URLs:

- ``sqlite:///ABSOLUTE/PATH.db``, ``sqlite:///~/PATH.db``, ``sqlite:RELATIVE.db``, or a plain
  path starting with ``/`` or ``~``: the embedded store, one file created with mode 0600
  (its folder, when created, mode 0700).
- ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (also ``postgres://``,
  ``postgresql+psycopg://``): a shared store (psycopg 3).
- nothing: ``COE_STATE_URL`` if set, else ``default_state_url()``.

Opening applies the forward migrations of an older store and refuses one
written by a newer collection. Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import os

from ansible_collections.coe.openstack.plugins.module_utils.errors import StoreError
from ansible_collections.coe.openstack.plugins.module_utils.store.base import (  # re-exported
    Store,
    actor_label,
    iso,
    redact_url,
    resolve_actor,
)
from ansible_collections.coe.openstack.plugins.module_utils.store.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "Store",
    "actor_label",
    "default_state_url",
    "iso",
    "open_store",
    "redact_url",
    "resolve_actor",
    "sqlite_path",
]

DEFAULT_SQLITE_PATH = "~/.local/state/coe.openstack/coe.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def default_state_url():
    """``sqlite:///<home>/.local/state/coe.openstack/coe.db``, the store when nothing is said."""
    return "sqlite://" + os.path.expanduser(DEFAULT_SQLITE_PATH)


def sqlite_path(url):
    """The file path of a SQLite URL (or plain path); None for any other URL."""
    if url.startswith(("/", "~")):
        return os.path.expanduser(url)
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        if rest.startswith("/~") or rest.startswith("//"):
            rest = rest[1:]
        return os.path.expanduser(rest) if rest else None
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        return os.path.expanduser(rest) if rest else None
    return None


def open_store(url=None, clock=None, migrate=True):
    """Open (and migrate) the store at ``url``; StoreError naming ``state_url`` if it cannot."""
    if not url:
        url = os.environ.get("COE_STATE_URL") or default_state_url()
    if not isinstance(url, str):
        raise StoreError("Invalid value for 'state_url': must be a string", field="state_url")
    if url.startswith(POSTGRES_SCHEMES):
        from ansible_collections.coe.openstack.plugins.module_utils.store.postgres import PostgresStore

        store = PostgresStore(url, clock=clock)
    else:
        path = sqlite_path(url)
        if not path:
            raise StoreError(
                "Invalid value for 'state_url': %r is neither sqlite:///PATH nor postgresql://USER@HOST/DB"
                % redact_url(url),
                field="state_url",
            )
        if os.path.isdir(path):
            raise StoreError("Invalid value for 'state_url': %s is a folder, not a file" % path, field="state_url")
        from ansible_collections.coe.openstack.plugins.module_utils.store.sqlite import SQLiteStore

        store = SQLiteStore(url, path, clock=clock)
    store._connect()
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
