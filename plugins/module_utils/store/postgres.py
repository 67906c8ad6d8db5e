# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The shared store: PostgreSQL through psycopg 3 (for teams and AWX)."""

from __future__ import annotations

import contextlib
import zlib

from ansible_collections.coe.openstack.plugins.module_utils.errors import StoreError, error_text
from ansible_collections.coe.openstack.plugins.module_utils.store.base import Store, redact_url

try:
    import psycopg
    import psycopg.errors

    HAS_PSYCOPG = True
except ImportError:
    psycopg = None
    HAS_PSYCOPG = False

# the advisory lock key that serialises schema migrations
MIGRATION_LOCK_KEY = 0x636F65  # "coe"


class PostgresStore(Store):
    backend = "postgresql"
    serial_pk = "BIGSERIAL PRIMARY KEY"
    blob = "BYTEA"
    _for_update = " FOR UPDATE"

    def __init__(self, url, clock=None, connect_timeout=10):
        super().__init__(url, clock=clock)
        self.connect_timeout = connect_timeout

    def _connect(self):
        if not HAS_PSYCOPG:
            raise StoreError(
                "The PostgreSQL store %s needs the Python package psycopg (pip install 'psycopg[binary]')"
                % redact_url(self.url),
                field="state_url",
            )
        url = self.url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=self.connect_timeout)
        except psycopg.Error as e:
            raise StoreError(
                "Couldn't open the store %s: %s" % (redact_url(self.url), error_text(e)), field="state_url"
            ) from e

    def _execute(self, sql, params=()):
        try:
            return self._conn.execute(sql.replace("?", "%s"), tuple(params))
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as e:
            raise StoreError("Store %s: %s" % (redact_url(self.url), error_text(e))) from e

    @contextlib.contextmanager
    def _outermost(self):
        try:
            with self._conn.transaction():
                yield
        except psycopg.OperationalError as e:
            raise StoreError("Store %s: %s" % (redact_url(self.url), error_text(e))) from e

    def _write(self):
        return self._transaction()

    def _read(self):
        return self._transaction()

    def _snapshot(self):
        self._execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _migration_lock(self):
        self._execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK_KEY,))

    def _name_lock(self, key):
        self._execute("SELECT pg_advisory_xact_lock(?, ?)", (MIGRATION_LOCK_KEY, zlib.crc32(key.encode()) - 2**31))

    def _table_exists(self, name):
        rows = self._query("SELECT to_regclass(?) IS NOT NULL AS present", (name,))
        return bool(rows[0]["present"])

    def _is_unique_violation(self, error):
        return isinstance(error, psycopg.errors.UniqueViolation)
