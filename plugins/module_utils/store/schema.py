# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The store's schema, as a list of forward migrations.

``MIGRATIONS[i]`` takes a store from schema version ``i`` to ``i + 1``; the
code's version is ``len(MIGRATIONS)``. A store whose version is higher than
that was written by a newer collection and is refused (never touched).
Migrations are applied in one transaction, holding the store's write lock
(SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so that many
processes opening a new store at once apply them exactly once.

The SQL is written once for both backends; ``{serial_pk}`` and ``{blob}``
are filled in by the backend.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.errors import StoreError

MIGRATIONS = [
    # 0 -> 1: the first schema
    [
        "CREATE TABLE coe_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # every version of every template; a (name, version) row never changes
        """CREATE TABLE coe_templates (
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            uuid TEXT NOT NULL UNIQUE,
            driver TEXT NOT NULL,
            spec TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            created_by TEXT,
            PRIMARY KEY (name, version))""",
        # one row per cluster: the record (desired spec + observed state) as
        # JSON, the columns we filter on, and the generation for CAS writes
        """CREATE TABLE coe_clusters (
            uuid TEXT PRIMARY KEY,
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            generation INTEGER NOT NULL,
            status TEXT NOT NULL,
            driver TEXT NOT NULL,
            template_name TEXT NOT NULL,
            template_version INTEGER NOT NULL,
            record TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (project, name))""",
        # append-only history; nothing updates or deletes a row
        """CREATE TABLE coe_events (
            id {serial_pk},
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            project TEXT,
            cluster_uuid TEXT,
            operation TEXT,
            from_status TEXT,
            to_status TEXT,
            message TEXT,
            generation INTEGER,
            actor_user TEXT,
            actor_host TEXT,
            awx_job_id TEXT)""",
        "CREATE INDEX coe_events_cluster ON coe_events (cluster_uuid, id)",
        "CREATE INDEX coe_events_target ON coe_events (kind, target, id)",
        # one row per (project, cluster name), kept for ever so that the
        # fencing token only grows, even across a cluster's delete and re-create
        """CREATE TABLE coe_locks (
            project TEXT NOT NULL,
            name TEXT NOT NULL,
            token INTEGER NOT NULL,
            holder TEXT,
            operation TEXT,
            acquired_at DOUBLE PRECISION,
            renewed_at DOUBLE PRECISION,
            expires_at DOUBLE PRECISION,
            PRIMARY KEY (project, name))""",
        # opaque (already encrypted) blobs of a cluster's credentials
        """CREATE TABLE coe_secrets (
            cluster_uuid TEXT NOT NULL,
            name TEXT NOT NULL,
            blob {blob} NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (cluster_uuid, name))""",
    ],
    # 1 -> 2: who holds a lease, so that a dead holder on the same machine is seen at once
    # (locks.py): its host name, machine (boot id + pid namespace), the pid and start time
    # (clock ticks since boot) of its ansible-playbook process, its AWX job, and the module
    # process that last renewed the lease. NULL for leases taken before: the TTL rules them.
    [
        "ALTER TABLE coe_locks ADD COLUMN holder_host TEXT",
        "ALTER TABLE coe_locks ADD COLUMN holder_machine TEXT",
        "ALTER TABLE coe_locks ADD COLUMN holder_pid INTEGER",
        "ALTER TABLE coe_locks ADD COLUMN holder_start BIGINT",
        "ALTER TABLE coe_locks ADD COLUMN awx_job_id TEXT",
        "ALTER TABLE coe_locks ADD COLUMN task_pid INTEGER",
        "ALTER TABLE coe_locks ADD COLUMN task_start BIGINT",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def refuse_newer(version, what, supported=None):
    """StoreError when ``version`` is newer than this code's schema (``supported``, default
    SCHEMA_VERSION): the one rule for a store written by a newer collection (``Store.migrate``)
    and for an export of one (store/export.py).

    ``what`` names the thing refused ("The sqlite store sqlite:///...", "The export /x.json").
    """
    supported = SCHEMA_VERSION if supported is None else supported
    if version > supported:
        raise StoreError(
            "%s has schema version %d, written by a newer coe.openstack; this version understands up to %d. "
            "Upgrade the collection; the store was not changed." % (what, version, supported),
            schema_version=version,
            supported_schema_version=supported,
        )
