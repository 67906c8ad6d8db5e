"""The store, on SQLite and on a real PostgreSQL (each test runs once per backend)."""

import os
import stat

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    LockError,
    NotFoundError,
    StoreError,
)
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import (
    SCHEMA_VERSION,
    default_state_url,
    open_store,
    redact_url,
    resolve_actor,
)

SPEC = {"driver": "heat", "coe": "kubernetes", "image_id": "fedora-coreos", "flavor_id": "m1.small", "labels": {}}


def record(name="c1", project="p1", status="CREATE_IN_PROGRESS", **extra):
    rec = dict(
        name=name,
        project_id=project,
        status=status,
        driver="heat",
        cluster_template_name="k8s",
        template_version=1,
        operation="create",
        master_count=1,
        node_count=2,
        labels={"a": "b"},
    )
    rec.update(extra)
    return rec


# -- opening, schema -----------------------------------------------------------


def test_new_store_is_at_current_schema(store):
    assert store.schema_version() == SCHEMA_VERSION
    # opening again applies nothing and keeps the data
    store.put_template("k8s", SPEC)
    again = open_store(store.url, clock=store.clock)
    assert again.migrate() == SCHEMA_VERSION
    assert [t["version"] for t in again.list_templates()] == [1]
    again.close()


def test_newer_store_is_refused_and_untouched(store):
    store.put_template("k8s", SPEC)
    with store._write():
        store._execute("UPDATE coe_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as err:
        open_store(store.url)
    assert "schema version %d" % (SCHEMA_VERSION + 1) in str(err.value)
    assert "newer" in str(err.value)
    assert store.schema_version() == SCHEMA_VERSION + 1
    assert [t["version"] for t in store.list_templates()] == [1]


def test_sqlite_file_and_folder_modes(tmp_path):
    path = tmp_path / "new" / "deeper" / "coe.db"
    open_store("sqlite://%s" % path).close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_default_state_url_is_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("COE_STATE_URL", raising=False)
    assert default_state_url() == "sqlite://%s/.local/state/coe.openstack/coe.db" % tmp_path
    open_store(None).close()
    db = tmp_path / ".local" / "state" / "coe.openstack" / "coe.db"
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db.parent).st_mode) == 0o700


def test_env_state_url_used_when_none_given(monkeypatch, tmp_path):
    monkeypatch.setenv("COE_STATE_URL", "sqlite://%s/env.db" % tmp_path)
    open_store(None).close()
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "sqlite://",
        "nonsense",
        "sqlite:///proc/no/such/dir/coe.db",
        "postgresql://nobody:secret@127.0.0.1:1/nodb",
    ],
)
def test_unopenable_state_url_fails_naming_the_field(url, tmp_path):
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert err.value.details.get("field") == "state_url"
    assert "secret" not in str(err.value)


def test_state_url_that_is_a_folder_or_not_a_database(tmp_path):
    with pytest.raises(StoreError) as err:
        open_store("sqlite://%s" % tmp_path)
    assert err.value.details["field"] == "state_url"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError) as err:
        open_store("sqlite://%s" % junk)
    assert err.value.details["field"] == "state_url"


def test_redact_url():
    assert redact_url("postgresql://coe:s3cret@db:5432/coe") == "postgresql://coe:***@db:5432/coe"


# -- templates -----------------------------------------------------------------


def test_template_versions_are_immutable(store):
    v1, created = store.put_template("k8s", SPEC)
    assert created and v1["version"] == 1
    same, created = store.put_template("k8s", dict(SPEC))
    assert not created and same["uuid"] == v1["uuid"]
    v2, created = store.put_template("k8s", dict(SPEC, flavor_id="m1.large"))
    assert created and v2["version"] == 2 and v2["uuid"] != v1["uuid"]
    assert store.get_template("k8s", 1)["spec"]["flavor_id"] == "m1.small"
    assert store.get_template("k8s")["version"] == 2
    # the old spec again is a new version, never a rewrite of version 1
    v3, created = store.put_template("k8s", SPEC)
    assert created and v3["version"] == 3
    assert [t["version"] for t in store.list_templates("k8s")] == [1, 2, 3]
    events = store.list_events(kind="template", target="k8s")
    assert [e["operation"] for e in events] == ["create", "create", "create"]


def test_unknown_template_or_version(store):
    with pytest.raises(NotFoundError) as err:
        store.get_template("nope")
    assert "nope" in str(err.value)
    store.put_template("k8s", SPEC)
    with pytest.raises(NotFoundError) as err:
        store.get_template("k8s", 7)
    assert "no version 7" in str(err.value) and err.value.details["field"] == "cluster_template_version"


def test_template_in_use_cannot_be_deleted(store):
    store.put_template("k8s", SPEC)
    store.put_template("k8s", dict(SPEC, flavor_id="m1.large"))
    store.create_cluster(record("alpha", template_version=1))
    store.create_cluster(record("beta", template_version=1))
    with pytest.raises(ConflictError) as err:
        store.delete_template("k8s")
    assert "alpha" in str(err.value) and "beta" in str(err.value)
    with pytest.raises(ConflictError):
        store.delete_template("k8s", 1)
    assert store.delete_template("k8s", 2) == [2]
    assert [t["version"] for t in store.list_templates("k8s")] == [1]
    assert store.delete_template("k8s", 2) == []


# -- clusters, CAS, fencing ----------------------------------------------------


def test_cluster_names_are_unique_per_project(store):
    first = store.create_cluster(record("c1", "p1"))
    assert first["generation"] == 1 and first["uuid"]
    with pytest.raises(ConflictError) as err:
        store.create_cluster(record("c1", "p1"))
    assert "already exists" in str(err.value) and first["uuid"] in str(err.value)
    other = store.create_cluster(record("c1", "p2"))
    assert other["uuid"] != first["uuid"]
    assert store.find_cluster("p1", "c1")["uuid"] == first["uuid"]
    assert store.find_cluster("p3", "c1") is None
    assert [c["project_id"] for c in store.list_clusters(name="c1")] == ["p1", "p2"]


def test_cluster_record_round_trip(store):
    created = store.create_cluster(record("c1", nodegroups=[{"name": "default-worker", "node_count": 2}]))
    got = store.get_cluster(created["uuid"])
    assert got["nodegroups"] == [{"name": "default-worker", "node_count": 2}]
    assert got["labels"] == {"a": "b"} and got["status"] == "CREATE_IN_PROGRESS"
    assert got["created_at"].endswith("+00:00")
    assert store.list_clusters(status="CREATE_IN_PROGRESS", driver="heat", template="k8s")[0]["uuid"] == got["uuid"]
    assert store.list_clusters(status="CREATE_COMPLETE") == []


def test_compare_and_set_on_generation(store):
    rec = store.create_cluster(record())
    a = dict(rec, node_count=3)
    b = dict(rec, node_count=5)
    written = store.update_cluster(a, expected_generation=1)
    assert written["generation"] == 2 and written["node_count"] == 3
    with pytest.raises(ConflictError) as err:
        store.update_cluster(b, expected_generation=1)
    assert "changed under us" in str(err.value)
    assert store.get_cluster(rec["uuid"])["node_count"] == 3
    with pytest.raises(ConflictError):
        store.delete_cluster(rec, expected_generation=1)
    store.delete_cluster(rec, expected_generation=2, message="gone")
    with pytest.raises(NotFoundError):
        store.get_cluster(rec["uuid"])
    with pytest.raises(NotFoundError):
        store.update_cluster(a, expected_generation=2)


def test_events_on_status_change_with_actor(store, monkeypatch):
    monkeypatch.setenv("JOB_ID", "4711")
    rec = store.create_cluster(record(), actor={"user": "alice"})
    rec = store.update_cluster(dict(rec, node_count=9), rec["generation"])  # same status: no event
    rec = store.update_cluster(dict(rec, status="CREATE_COMPLETE"), rec["generation"], message="stack done")
    events = store.list_events(cluster_uuid=rec["uuid"])
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "CREATE_IN_PROGRESS"),
        ("CREATE_IN_PROGRESS", "CREATE_COMPLETE"),
    ]
    assert events[0]["actor_user"] == "alice" and events[0]["awx_job_id"] == "4711"
    assert events[1]["message"] == "stack done" and events[1]["generation"] == 3
    assert events[1]["actor_host"]
    store.delete_cluster(rec, rec["generation"])
    assert store.list_events(cluster_uuid=rec["uuid"])[-1]["to_status"] == "DELETE_COMPLETE"


def test_resolve_actor_prefers_explicit_values():
    who = resolve_actor({"user": "bob", "awx_job_id": 12}, environ={"JOB_ID": "99"})
    assert who["user"] == "bob" and who["awx_job_id"] == "12"
    assert resolve_actor({}, environ={"TOWER_JOB_ID": "5"})["awx_job_id"] == "5"
    assert resolve_actor({}, environ={})["awx_job_id"] is None


def test_writes_are_fenced_by_the_lock(store, clock):
    locks = LockManager(store, clock=clock)
    rec = store.create_cluster(record())
    lease = locks.acquire("p1", "c1", "update", ttl=60, holder="alice@a")
    # someone without the token is refused, naming the holder
    with pytest.raises(LockError) as err:
        store.update_cluster(dict(rec, node_count=4), rec["generation"])
    assert "alice@a" in str(err.value) and "update" in str(err.value)
    # the holder writes with its token
    rec = store.update_cluster(dict(rec, node_count=4), rec["generation"], lock_token=lease["token"])
    # the lease expires and bob takes over: alice's token is now stale
    clock.advance(61)
    with pytest.raises(LockError) as err:
        store.update_cluster(dict(rec, node_count=5), rec["generation"], lock_token=lease["token"])
    assert "expired" in str(err.value)
    bob = locks.acquire("p1", "c1", "delete", ttl=60, holder="bob@b")
    assert bob["token"] == lease["token"] + 1
    with pytest.raises(LockError) as err:
        store.update_cluster(dict(rec, node_count=5), rec["generation"], lock_token=lease["token"])
    assert "Stale lock token" in str(err.value) and "bob@b" in str(err.value)
    rec = store.update_cluster(dict(rec, node_count=6), rec["generation"], lock_token=bob["token"])
    # after release, the old token stays refused and a lock-free write works again
    locks.release("p1", "c1", bob["token"])
    with pytest.raises(LockError):
        store.update_cluster(dict(rec, node_count=7), rec["generation"], lock_token=bob["token"])
    rec = store.update_cluster(dict(rec, node_count=7), rec["generation"])
    assert rec["node_count"] == 7
    # an observation write may go on while somebody holds the lock
    locks.acquire("p1", "c1", "update", ttl=60, holder="carol@c")
    rec = store.update_cluster(dict(rec, status="CREATE_COMPLETE"), rec["generation"], require_lock_free=False)
    assert rec["status"] == "CREATE_COMPLETE"


def test_create_is_fenced_too(store, clock):
    locks = LockManager(store, clock=clock)
    lease = locks.acquire("p1", "new", "create", ttl=60, holder="alice@a")
    with pytest.raises(LockError):
        store.create_cluster(record("new"))
    assert store.create_cluster(record("new"), lock_token=lease["token"])["generation"] == 1


# -- secrets -------------------------------------------------------------------


def test_secrets_are_opaque_bytes_and_go_with_the_cluster(store):
    rec = store.create_cluster(record())
    blob = bytes(range(256))
    store.put_secret(rec["uuid"], "ca", blob)
    store.put_secret(rec["uuid"], "etcd-ca", b"x")
    assert store.get_secret(rec["uuid"], "ca") == blob
    store.put_secret(rec["uuid"], "ca", b"rotated")
    assert store.get_secret(rec["uuid"], "ca") == b"rotated"
    assert store.list_secrets(rec["uuid"]) == ["ca", "etcd-ca"]
    assert store.get_secret(rec["uuid"], "nope") is None
    with pytest.raises(StoreError):
        store.put_secret(rec["uuid"], "ca", "text is not bytes")
    store.delete_cluster(rec, rec["generation"])
    assert store.list_secrets(rec["uuid"]) == []
    store.put_secret("other", "a", b"1")
    assert store.delete_secrets("other") == 1
    assert store.get_secret("other", "a") is None


def test_add_secret_keeps_the_first(store):
    assert store.add_secret("c", "ca", b"first") is True
    assert store.add_secret("c", "ca", b"second") is False
    assert store.get_secret("c", "ca") == b"first"
    with pytest.raises(StoreError):
        store.add_secret("c", "x", "not bytes")


def test_forward_migration_of_an_older_store(store_url, monkeypatch):
    from ansible_collections.coe.openstack.plugins.module_utils.store import base

    old = open_store(store_url)
    old.put_template("k8s", SPEC)
    old.close()
    step = ["ALTER TABLE coe_clusters ADD COLUMN note TEXT", "UPDATE coe_templates SET created_by = 'migrated'"]
    monkeypatch.setattr(base, "MIGRATIONS", [*base.MIGRATIONS, step])
    monkeypatch.setattr(base, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    new = open_store(store_url)
    assert new.schema_version() == SCHEMA_VERSION + 1
    assert new.get_template("k8s")["created_by"] == "migrated"  # data kept, step applied once
    assert new.migrate() == SCHEMA_VERSION + 1  # nothing left to apply
    new.close()
    monkeypatch.undo()
    with pytest.raises(StoreError) as err:
        open_store(store_url)  # the older code refuses the migrated store
    assert "newer" in str(err.value)
