# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""What both store backends share: the queries, CAS writes, events, lock rows.

Plain Python (no ansible, no openstack). A backend (sqlite.py, postgres.py)
provides the connection, the transaction and the few words of SQL that
differ; everything else is here, so both behave the same and one test suite
runs against both.
"""

from __future__ import annotations

import contextlib
import datetime
import getpass
import hashlib
import json
import os
import socket
import time
import uuid as uuidlib

from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    LockError,
    NotFoundError,
    StoreError,
)
from ansible_collections.coe.openstack.plugins.module_utils.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    refuse_newer,
)

# Environment variables that carry the AWX/Tower job id into a job's processes.
AWX_JOB_ENV = ("JOB_ID", "AWX_JOB_ID", "TOWER_JOB_ID")


def iso(ts):
    """An epoch time as ISO 8601 UTC, seconds precision (Magnum's style)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


def parse_iso(text):
    """The epoch time of an ISO 8601 string (iso()'s, or a cloud's); None stays None.

    A trailing ``Z`` and a time without a zone (as Heat writes them) are UTC, as iso() writes.
    """
    if not text:
        return None
    value = datetime.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.timestamp()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def spec_hash(spec):
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def resolve_actor(actor=None, environ=None):
    """Who is acting: ``{user, host, awx_job_id}``.

    Explicit values in ``actor`` win (a module passes AWX's ``awx_job_id`` /
    ``awx_user_name`` extra vars that way); otherwise the local user, the host
    name and the job id AWX puts in the environment (``JOB_ID``).
    """
    environ = os.environ if environ is None else environ
    actor = dict(actor or {})
    user = actor.get("user")
    if not user:
        try:
            user = getpass.getuser()
        except Exception:
            user = "uid-%d" % os.getuid()
    host = actor.get("host") or socket.gethostname()
    job = actor.get("awx_job_id")
    if job in (None, ""):
        job = next((environ[k] for k in AWX_JOB_ENV if environ.get(k)), None)
    return dict(user=str(user), host=str(host), awx_job_id=None if job in (None, "") else str(job))


def actor_label(actor):
    """``user@host`` (plus `` (AWX job N)``): how a lock holder is named by default."""
    text = "%s@%s" % (actor["user"], actor["host"])
    if actor.get("awx_job_id"):
        text += " (AWX job %s)" % actor["awx_job_id"]
    return text


def redact_url(url):
    """The URL without its password, for messages."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    if ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return "%s://%s@%s" % (scheme, creds, host)


LOCK_COLUMNS = (
    "project",
    "name",
    "token",
    "holder",
    "operation",
    "acquired_at",
    "renewed_at",
    "expires_at",
    "holder_host",
    "holder_machine",
    "holder_pid",
    "holder_start",
    "awx_job_id",
    "task_pid",
    "task_start",
)
_LOCK_KEY = ("project", "name")
EVENT_COLUMNS = (
    "id",
    "at",
    "kind",
    "target",
    "project",
    "cluster_uuid",
    "operation",
    "from_status",
    "to_status",
    "message",
    "generation",
    "actor_user",
    "actor_host",
    "awx_job_id",
)


class LockRow(dict):
    """The lock row of one (project, cluster name), read inside a write transaction.

    Change its keys inside ``Store.lock_row()``; the row is written back when
    the block ends without error.
    """


class Store:
    """The cluster store. Use ``open_store(url)``, not this class."""

    backend = None  # "sqlite" | "postgresql"
    serial_pk = None
    blob = None

    def __init__(self, url, clock=None):
        self.url = url
        self.clock = clock or time.time
        self._conn = None
        self._depth = 0  # how deep in transactions we are: a nested one joins the outermost

    @contextlib.contextmanager
    def _transaction(self, *begin):
        """A transaction; inside another one, a part of it (``_outermost`` opens and ends it)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._outermost(*begin):
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0

    # -- backend hooks ----------------------------------------------------

    def _connect(self):
        raise NotImplementedError

    def _execute(self, sql, params=()):
        raise NotImplementedError

    def _outermost(self, *begin):
        """A context manager: begin a transaction, commit it, roll it back on an error."""
        raise NotImplementedError

    def _write(self):
        """A context manager: a transaction that takes the store's write lock at once."""
        raise NotImplementedError

    def _read(self):
        """A context manager: a transaction for reading."""
        raise NotImplementedError

    def _lock_for_update(self, project, name):
        """Make sure the lock row exists and lock it until the transaction ends."""
        self._execute(
            "INSERT INTO coe_locks (project, name, token) VALUES (?, ?, 0) ON CONFLICT (project, name) DO NOTHING",
            (project, name),
        )
        rows = self._query(
            "SELECT %s FROM coe_locks WHERE project = ? AND name = ?%s" % (", ".join(LOCK_COLUMNS), self._for_update),
            (project, name),
        )
        return rows[0]

    _for_update = ""

    def _is_unique_violation(self, error):
        raise NotImplementedError

    def _migration_lock(self):
        """Called first in the migration transaction (PostgreSQL: advisory lock)."""

    def _name_lock(self, key):
        """Serialise writers of one name until the transaction ends (PostgreSQL: advisory lock)."""

    def _snapshot(self):
        """Called first in a read transaction that must see one state of every table
        (PostgreSQL: repeatable read; SQLite's read transaction is one already)."""

    # -- helpers ----------------------------------------------------------

    def _query(self, sql, params=()):
        cur = self._execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def now(self):
        return self.clock()

    def describe(self):
        return "%s store %s" % (self.backend, redact_url(self.url))

    def close(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- schema -----------------------------------------------------------

    def _table_exists(self, name):
        raise NotImplementedError

    def schema_version(self):
        with self._read():
            if not self._table_exists("coe_meta"):
                return 0
            rows = self._query("SELECT value FROM coe_meta WHERE key = 'schema_version'")
            return int(rows[0]["value"]) if rows else 0

    def migrate(self):
        """Bring the schema up to SCHEMA_VERSION; refuse a newer store."""
        with self._write():
            self._migration_lock()
            current = 0
            if self._table_exists("coe_meta"):
                rows = self._query("SELECT value FROM coe_meta WHERE key = 'schema_version'")
                current = int(rows[0]["value"]) if rows else 0
            refuse_newer(current, "The %s" % self.describe(), SCHEMA_VERSION)
            for version in range(current, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    self._execute(statement.format(serial_pk=self.serial_pk, blob=self.blob))
                self._execute(
                    "INSERT INTO coe_meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version + 1),),
                )
            return current

    # -- events -----------------------------------------------------------

    def _event(
        self,
        kind,
        target,
        actor,
        operation=None,
        message=None,
        project=None,
        cluster_uuid=None,
        from_status=None,
        to_status=None,
        generation=None,
    ):
        who = resolve_actor(actor)
        self._execute(
            "INSERT INTO coe_events (at, kind, target, project, cluster_uuid, operation, from_status, to_status, "
            "message, generation, actor_user, actor_host, awx_job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                iso(self.now()),
                kind,
                target,
                project,
                cluster_uuid,
                operation,
                from_status,
                to_status,
                message,
                generation,
                who["user"],
                who["host"],
                who["awx_job_id"],
            ),
        )

    def add_event(self, kind, target, actor=None, **fields):
        """Append one event (kind: cluster, template, lock)."""
        with self._write():
            self._event(kind, target, actor, **fields)

    def list_events(self, cluster_uuid=None, kind=None, target=None, project=None, limit=None):
        """Events, oldest first; filtered by cluster uuid, or kind + target (name)."""
        where, params = [], []
        for column, value in (("cluster_uuid", cluster_uuid), ("kind", kind), ("target", target), ("project", project)):
            if value is not None:
                where.append("%s = ?" % column)
                params.append(value)
        sql = "SELECT %s FROM coe_events" % ", ".join(EVENT_COLUMNS)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        with self._read():
            rows = self._query(sql, params)
        if limit:
            rows = rows[-limit:]
        return rows

    # -- templates --------------------------------------------------------

    @staticmethod
    def _template_row(row):
        spec = json.loads(row["spec"])
        return dict(
            name=row["name"],
            version=row["version"],
            uuid=row["uuid"],
            driver=row["driver"],
            spec=spec,
            spec_hash=row["spec_hash"],
            created_at=row["created_at"],
            created_by=row["created_by"],
        )

    def list_templates(self, name=None):
        """Every version of every template (or of one), by name then version."""
        sql = "SELECT * FROM coe_templates"
        params = ()
        if name is not None:
            sql += " WHERE name = ?"
            params = (name,)
        with self._read():
            rows = self._query(sql + " ORDER BY name, version", params)
        return [self._template_row(r) for r in rows]

    def get_template(self, name, version=None):
        """One version (the latest when version is None); NotFoundError if absent."""
        versions = self.list_templates(name)
        if not versions:
            raise NotFoundError("Cluster template '%s' does not exist" % name, field="cluster_template")
        if version is None:
            return versions[-1]
        for v in versions:
            if v["version"] == version:
                return v
        raise NotFoundError(
            "Cluster template '%s' has no version %s (versions: %s)"
            % (name, version, ", ".join(str(v["version"]) for v in versions)),
            field="cluster_template_version",
        )

    def put_template(self, name, spec, actor=None):
        """Store ``spec`` as the template's next version unless the latest is identical.

        Returns ``(template_version, created)``. Versions never change.
        """
        digest = spec_hash(spec)
        with self._write():
            self._name_lock("template:" + name)
            rows = self._query(
                "SELECT * FROM coe_templates WHERE name = ? ORDER BY version DESC%s" % self._for_update, (name,)
            )
            if rows and rows[0]["spec_hash"] == digest:
                return self._template_row(rows[0]), False
            version = rows[0]["version"] + 1 if rows else 1
            who = resolve_actor(actor)
            self._execute(
                "INSERT INTO coe_templates (name, version, uuid, driver, spec, spec_hash, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    version,
                    str(uuidlib.uuid4()),
                    spec["driver"],
                    canonical_json(spec),
                    digest,
                    iso(self.now()),
                    actor_label(who),
                ),
            )
            self._event(
                "template", name, actor, operation="create", message="template %s version %d created" % (name, version)
            )
            rows = self._query("SELECT * FROM coe_templates WHERE name = ? AND version = ?", (name, version))
        return self._template_row(rows[0]), True

    def template_users(self, name, version=None):
        """Clusters (name, project, version) whose record uses the template (version)."""
        sql = "SELECT name, project, template_version FROM coe_clusters WHERE template_name = ?"
        params = [name]
        if version is not None:
            sql += " AND template_version = ?"
            params.append(version)
        with self._read():
            return self._query(sql + " ORDER BY project, name", params)

    def delete_template(self, name, version=None, actor=None):
        """Delete one version or all; refused (ConflictError) while a cluster uses it.

        Returns the deleted version numbers (empty when nothing matched).
        """
        where, params = "name = ?", [name]
        if version is not None:
            where += " AND version = ?"
            params.append(version)
        with self._write():
            self._name_lock("template:" + name)
            rows = self._query(
                "SELECT version FROM coe_templates WHERE %s ORDER BY version%s" % (where, self._for_update), params
            )
            versions = [r["version"] for r in rows]
            if not versions:
                return []
            users = self._query(
                "SELECT name, project, template_version FROM coe_clusters WHERE template_name = ? "
                "ORDER BY project, name",
                (name,),
            )
            users = [u for u in users if u["template_version"] in versions]
            if users:
                what = (
                    "version %s of cluster template '%s'" % (version, name)
                    if version
                    else ("cluster template '%s'" % name)
                )
                raise ConflictError(
                    "Cannot delete %s: in use by cluster(s) %s"
                    % (what, ", ".join("%s (version %d)" % (u["name"], u["template_version"]) for u in users)),
                    clusters=sorted({u["name"] for u in users}),
                )
            self._execute("DELETE FROM coe_templates WHERE %s" % where, params)
            self._event(
                "template",
                name,
                actor,
                operation="delete",
                message="template %s version(s) %s deleted" % (name, ", ".join(map(str, versions))),
            )
        return versions

    # -- clusters ---------------------------------------------------------

    @staticmethod
    def _cluster_row(row):
        record = json.loads(row["record"])
        record.update(
            uuid=row["uuid"],
            name=row["name"],
            project_id=row["project"],
            generation=row["generation"],
            status=row["status"],
            driver=row["driver"],
            cluster_template_name=row["template_name"],
            template_version=row["template_version"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )
        return record

    def get_cluster(self, uuid):
        with self._read():
            rows = self._query("SELECT * FROM coe_clusters WHERE uuid = ?", (uuid,))
        if not rows:
            raise NotFoundError("Cluster %s does not exist in the store" % uuid, field="uuid")
        return self._cluster_row(rows[0])

    def find_cluster(self, project, name):
        """The cluster named ``name`` in ``project``, or None."""
        with self._read():
            rows = self._query("SELECT * FROM coe_clusters WHERE project = ? AND name = ?", (project, name))
        return self._cluster_row(rows[0]) if rows else None

    def list_clusters(self, project=None, name=None, status=None, driver=None, template=None):
        where, params = [], []
        for column, value in (
            ("project", project),
            ("name", name),
            ("status", status),
            ("driver", driver),
            ("template_name", template),
        ):
            if value is not None:
                where.append("%s = ?" % column)
                params.append(value)
        sql = "SELECT * FROM coe_clusters"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read():
            rows = self._query(sql + " ORDER BY project, name", params)
        return [self._cluster_row(r) for r in rows]

    def _check_lock(self, project, name, lock_token, free_required):
        """Fencing, inside a write transaction.

        With a token: it must be the current token of a held, unexpired lease.
        Without one: refused when ``free_required`` and someone holds a live lease.
        """
        row = self._lock_for_update(project, name)
        now = self.now()
        live = row["holder"] is not None and row["expires_at"] is not None and row["expires_at"] > now
        if lock_token is not None:
            if int(lock_token) != row["token"]:
                raise LockError(
                    "Stale lock token %s for cluster '%s': the current token is %d%s; the write was refused"
                    % (
                        lock_token,
                        name,
                        row["token"],
                        " (held by %s for %s)" % (row["holder"], row["operation"]) if live else "",
                    ),
                    holder=row["holder"] if live else None,
                )
            if row["holder"] is None:
                raise LockError(
                    "Lock token %s for cluster '%s' was released or broken; the write was refused" % (lock_token, name)
                )
            if not live:
                raise LockError(
                    "The lease of lock token %s for cluster '%s' expired at %s; renew it before writing"
                    % (lock_token, name, iso(row["expires_at"]))
                )
        elif free_required and live:
            # the locks' own words (locks.py imports this module, hence the late import)
            from ansible_collections.coe.openstack.plugins.module_utils.locks import lease_view, refusal_text

            raise LockError(
                "%s Nothing was written." % refusal_text(name, lease_view(row, now)),
                holder=row["holder"],
                lock_operation=row["operation"],
            )

    def _record_columns(self, record):
        body = dict(record)
        for key in (
            "uuid",
            "name",
            "project_id",
            "generation",
            "status",
            "driver",
            "cluster_template_name",
            "template_version",
            "created_at",
            "updated_at",
        ):
            body.pop(key, None)
        return canonical_json(body)

    def create_cluster(self, record, actor=None, lock_token=None, message=None):
        """Insert a new cluster (generation 1). ConflictError if the name is taken in the project."""
        record = dict(record)
        record.setdefault("uuid", str(uuidlib.uuid4()))
        now = iso(self.now())
        with self._write():
            self._check_lock(record["project_id"], record["name"], lock_token, free_required=True)
            existing = self._query(
                "SELECT uuid, status FROM coe_clusters WHERE project = ? AND name = ?",
                (record["project_id"], record["name"]),
            )
            if existing:
                raise ConflictError(
                    "A cluster named '%s' already exists in project %s (uuid %s, status %s)"
                    % (record["name"], record["project_id"], existing[0]["uuid"], existing[0]["status"]),
                    field="name",
                )
            try:
                self._execute(
                    "INSERT INTO coe_clusters (uuid, project, name, generation, status, driver, template_name, "
                    "template_version, record, created_at, updated_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record["uuid"],
                        record["project_id"],
                        record["name"],
                        record["status"],
                        record["driver"],
                        record["cluster_template_name"],
                        record["template_version"],
                        self._record_columns(record),
                        now,
                        now,
                    ),
                )
            except Exception as e:
                if self._is_unique_violation(e):
                    raise ConflictError(
                        "A cluster named '%s' already exists in project %s" % (record["name"], record["project_id"]),
                        field="name",
                    ) from e
                raise
            self._event(
                "cluster",
                record["name"],
                actor,
                operation=record.get("operation"),
                message=message,
                project=record["project_id"],
                cluster_uuid=record["uuid"],
                from_status=None,
                to_status=record["status"],
                generation=1,
            )
            rows = self._query("SELECT * FROM coe_clusters WHERE uuid = ?", (record["uuid"],))
        return self._cluster_row(rows[0])

    def update_cluster(
        self,
        record,
        expected_generation,
        actor=None,
        lock_token=None,
        require_lock_free=True,
        message=None,
        operation=None,
        force_event=False,
    ):
        """Compare-and-set: write ``record`` if the stored generation is ``expected_generation``.

        The generation then grows by one. An event is appended when the status
        changes (or when ``force_event``). ConflictError when the record changed
        under us, NotFoundError when it is gone, LockError on a stale token.
        """
        with self._write():
            self._check_lock(record["project_id"], record["name"], lock_token, free_required=require_lock_free)
            before = self._query("SELECT * FROM coe_clusters WHERE uuid = ?%s" % self._for_update, (record["uuid"],))
            if not before:
                raise NotFoundError(
                    "Cluster '%s' (%s) no longer exists in the store" % (record["name"], record["uuid"])
                )
            before = before[0]
            if before["generation"] != expected_generation:
                raise ConflictError(
                    "Cluster '%s' changed under us (generation %d, expected %d); read it again and retry"
                    % (record["name"], before["generation"], expected_generation),
                    generation=before["generation"],
                )
            cur = self._execute(
                "UPDATE coe_clusters SET generation = generation + 1, status = ?, driver = ?, template_name = ?, "
                "template_version = ?, record = ?, updated_at = ? WHERE uuid = ? AND generation = ?",
                (
                    record["status"],
                    record["driver"],
                    record["cluster_template_name"],
                    record["template_version"],
                    self._record_columns(record),
                    iso(self.now()),
                    record["uuid"],
                    expected_generation,
                ),
            )
            if cur.rowcount != 1:
                raise ConflictError("Cluster '%s' changed under us; read it again and retry" % record["name"])
            if force_event or before["status"] != record["status"]:
                self._event(
                    "cluster",
                    record["name"],
                    actor,
                    operation=operation or record.get("operation"),
                    message=message,
                    project=record["project_id"],
                    cluster_uuid=record["uuid"],
                    from_status=before["status"],
                    to_status=record["status"],
                    generation=expected_generation + 1,
                )
            rows = self._query("SELECT * FROM coe_clusters WHERE uuid = ?", (record["uuid"],))
        return self._cluster_row(rows[0])

    def delete_cluster(
        self, record, expected_generation, actor=None, lock_token=None, require_lock_free=True, message=None
    ):
        """Remove a cluster's record and its secrets (CAS on generation); the events stay."""
        with self._write():
            self._check_lock(record["project_id"], record["name"], lock_token, free_required=require_lock_free)
            cur = self._execute(
                "DELETE FROM coe_clusters WHERE uuid = ? AND generation = ?", (record["uuid"], expected_generation)
            )
            if cur.rowcount != 1:
                rows = self._query("SELECT generation FROM coe_clusters WHERE uuid = ?", (record["uuid"],))
                if not rows:
                    raise NotFoundError(
                        "Cluster '%s' (%s) no longer exists in the store" % (record["name"], record["uuid"])
                    )
                raise ConflictError(
                    "Cluster '%s' changed under us (generation %d, expected %d); read it again and retry"
                    % (record["name"], rows[0]["generation"], expected_generation)
                )
            self._execute("DELETE FROM coe_secrets WHERE cluster_uuid = ?", (record["uuid"],))
            self._event(
                "cluster",
                record["name"],
                actor,
                operation="delete",
                message=message or "record removed",
                project=record["project_id"],
                cluster_uuid=record["uuid"],
                from_status=record.get("status"),
                to_status="DELETE_COMPLETE",
                generation=expected_generation + 1,
            )

    # -- locks (policy in locks.py) -----------------------------------------

    def get_lock(self, project, name):
        """The lock row of (project, name), or None when it was never taken."""
        with self._read():
            rows = self._query(
                "SELECT %s FROM coe_locks WHERE project = ? AND name = ?" % ", ".join(LOCK_COLUMNS), (project, name)
            )
        return rows[0] if rows else None

    def list_locks(self, project=None):
        sql = "SELECT %s FROM coe_locks" % ", ".join(LOCK_COLUMNS)
        params = ()
        if project is not None:
            sql += " WHERE project = ?"
            params = (project,)
        with self._read():
            return self._query(sql + " ORDER BY project, name", params)

    @contextlib.contextmanager
    def lock_row(self, project, name, write=True):
        """Read-modify-write the lock row of (project, name) in one write transaction.

        Yields a LockRow; its changes are written when the block succeeds.
        ``row.events`` (list of dicts for ``add_event``) are appended in the
        same transaction. With ``write=False`` (check mode) the row is only read
        and nothing is written, whatever the block changes.
        """
        if not write:
            free = dict(dict.fromkeys(LOCK_COLUMNS), project=project, name=name, token=0)
            row = LockRow(self.get_lock(project, name) or free)
            row.events = []
            yield row
            return
        with self._write():
            row = LockRow(self._lock_for_update(project, name))
            original = dict(row)
            row.events = []
            yield row
            if dict(row) != original:
                columns = [c for c in LOCK_COLUMNS if c not in _LOCK_KEY]
                self._execute(
                    "UPDATE coe_locks SET %s WHERE project = ? AND name = ?" % ", ".join("%s = ?" % c for c in columns),
                    (*(row.get(c) for c in columns), project, name),
                )
            for event in row.events:
                event = dict(event)
                self._event(event.pop("kind", "lock"), name, event.pop("actor", None), project=project, **event)

    # -- secrets (opaque bytes; encryption is pki.py's) ----------------------

    def put_secret(self, cluster_uuid, name, blob):
        if not isinstance(blob, (bytes, bytearray)):
            raise StoreError("A secret blob must be bytes, not %s" % type(blob).__name__)
        with self._write():
            self._execute(
                "INSERT INTO coe_secrets (cluster_uuid, name, blob, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (cluster_uuid, name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at",
                (cluster_uuid, name, bytes(blob), iso(self.now())),
            )

    def add_secret(self, cluster_uuid, name, blob):
        """Store the blob only if the cluster has no secret of that name; True if it was stored.

        Two runners creating the same secret at once agree on one (the first).
        """
        if not isinstance(blob, (bytes, bytearray)):
            raise StoreError("A secret blob must be bytes, not %s" % type(blob).__name__)
        with self._write():
            cur = self._execute(
                "INSERT INTO coe_secrets (cluster_uuid, name, blob, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (cluster_uuid, name) DO NOTHING",
                (cluster_uuid, name, bytes(blob), iso(self.now())),
            )
            return cur.rowcount == 1

    def get_secret(self, cluster_uuid, name):
        """The blob, or None when there is none."""
        with self._read():
            rows = self._query("SELECT blob FROM coe_secrets WHERE cluster_uuid = ? AND name = ?", (cluster_uuid, name))
        return bytes(rows[0]["blob"]) if rows else None

    def list_secrets(self, cluster_uuid):
        """The names of a cluster's secrets (never their content)."""
        with self._read():
            rows = self._query("SELECT name FROM coe_secrets WHERE cluster_uuid = ? ORDER BY name", (cluster_uuid,))
        return [r["name"] for r in rows]

    def delete_secrets(self, cluster_uuid):
        """Delete every secret of a cluster; returns how many were deleted."""
        with self._write():
            cur = self._execute("DELETE FROM coe_secrets WHERE cluster_uuid = ?", (cluster_uuid,))
            return cur.rowcount

    # -- export and restore (the rules are store/export.py's) -----------------

    #: the tables an export carries, with the columns it keeps (events: all but the id,
    #: which the restoring store gives anew; locks: none, a restored store holds no lease)
    EXPORT_COLUMNS = dict(
        coe_templates=("name", "version", "uuid", "driver", "spec", "spec_hash", "created_at", "created_by"),
        coe_clusters=(
            "uuid",
            "project",
            "name",
            "generation",
            "status",
            "driver",
            "template_name",
            "template_version",
            "record",
            "created_at",
            "updated_at",
        ),
        coe_secrets=("cluster_uuid", "name", "blob", "updated_at"),
        coe_events=EVENT_COLUMNS[1:],
    )
    _EXPORT_ORDER = dict(
        coe_templates="name, version",
        coe_clusters="project, name",
        coe_secrets="cluster_uuid, name",
        coe_events="id",
    )

    def export_rows(self):
        """``(schema_version, {table: [row, ...]})`` of the tables ``EXPORT_COLUMNS`` names, read
        in one transaction that sees one state of the store. Secret blobs stay as stored (bytes)."""
        tables = {}
        with self._read():
            self._snapshot()
            rows = self._query("SELECT value FROM coe_meta WHERE key = 'schema_version'")
            version = int(rows[0]["value"]) if rows else 0
            for table, columns in self.EXPORT_COLUMNS.items():
                tables[table] = self._query(
                    "SELECT %s FROM %s ORDER BY %s" % (", ".join(columns), table, self._EXPORT_ORDER[table])
                )
        for row in tables["coe_secrets"]:
            row["blob"] = bytes(row["blob"])
        return version, tables

    def is_empty(self):
        """True when the store has no template, no cluster and no history."""
        with self._read():
            for table in ("coe_templates", "coe_clusters", "coe_events"):
                if self._query("SELECT 1 AS one FROM %s LIMIT 1" % table):
                    return False
        return True

    def import_rows(self, tables, actor=None, events=()):
        """Insert rows as ``export_rows`` gives them (``{table: [row, ...]}``), all in one write
        transaction, then append ``events`` (``add_event`` keyword dicts). A row whose key the
        store already has fails the whole import (ConflictError): store/export.py plans the
        rows so that it does not happen, and a writer racing it loses nothing."""
        with self._write():
            for table, columns in self.EXPORT_COLUMNS.items():
                for row in tables.get(table, ()):
                    values = [bytes(row[c]) if c == "blob" else row.get(c) for c in columns]
                    try:
                        self._execute(
                            "INSERT INTO %s (%s) VALUES (%s)"
                            % (table, ", ".join(columns), ", ".join("?" * len(columns))),
                            values,
                        )
                    except Exception as e:
                        if self._is_unique_violation(e):
                            raise ConflictError(
                                "The store changed during the restore (%s already has %s); nothing was restored"
                                % (table, ", ".join("%s=%s" % (c, row.get(c)) for c in columns[:2])),
                            ) from e
                        raise
            for event in events:
                event = dict(event)
                self._event(event.pop("kind"), event.pop("target"), event.pop("actor", actor), **event)
