# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The embedded store: one SQLite file, mode 0600, in a folder of mode 0700."""

from __future__ import annotations

import contextlib
import os
import sqlite3

from ansible_collections.coe.openstack.plugins.module_utils import poll
from ansible_collections.coe.openstack.plugins.module_utils.errors import StoreError
from ansible_collections.coe.openstack.plugins.module_utils.store.base import Store


class SQLiteStore(Store):
    backend = "sqlite"
    serial_pk = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"

    def __init__(self, url, path, clock=None, busy_timeout=60):
        super().__init__(url, clock=clock)
        self.path = path
        self.busy_timeout = busy_timeout

    def _connect(self):
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            if not os.path.isdir(folder):
                os.makedirs(folder, mode=0o700)
                os.chmod(folder, 0o700)
            if not os.path.exists(self.path):
                # create the file ourselves so that it is never readable by others
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            self._set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
        except (OSError, sqlite3.Error) as e:
            raise StoreError("Couldn't open the store %s: %s" % (self.url, e), field="state_url") from e
        self._conn = conn

    def _set_wal(self, conn):
        """Switch to WAL. SQLite answers "database is locked" at once, without its busy
        handler, when several processes open a new file together: retry until busy_timeout."""
        poll.retry(
            lambda: conn.execute("PRAGMA journal_mode=WAL"),
            lambda e: isinstance(e, sqlite3.OperationalError) and "locked" in str(e),
            "the switch to WAL",
            self.busy_timeout,
            interval=0.05,
        )

    def _execute(self, sql, params=()):
        try:
            return self._conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as e:
            raise StoreError("Store %s: %s" % (self.url, e)) from e

    @contextlib.contextmanager
    def _outermost(self, begin):
        self._execute(begin)
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def _write(self):
        return self._transaction("BEGIN IMMEDIATE")

    def _read(self):
        return self._transaction("BEGIN")

    def _table_exists(self, name):
        rows = self._query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(rows)

    def _is_unique_violation(self, error):
        return isinstance(error, sqlite3.IntegrityError)
