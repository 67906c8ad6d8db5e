"""Exporting and restoring the store (store/export.py) on SQLite and on a real PostgreSQL.

Every test that opens a store runs once per backend (``store_url``); the round trip also
crosses backends (SQLite -> PostgreSQL and back). Credentials are real (pki.py), sealed with
a real key (secrets.py).
"""

import base64
import json
import os
import stat

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    NotFoundError,
    SecretError,
    StoreError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import SCHEMA_VERSION, export, open_store

KEY = "correct horse battery staple 42"
OTHER = "a different key of decent length"
SPEC = {"driver": "nova", "coe": "kubernetes", "image_id": "img", "flavor_id": "m1.small", "labels": {}}
SPEC2 = dict(SPEC, image_id="img-2")


@pytest.fixture(scope="module")
def box():
    return secrets.SecretBox(KEY)


def fill(store, box):
    """A store as a user leaves it: two template versions, a cluster with credentials and some
    history, one without credentials, a held lock; returns ``{name: record}``."""
    v1 = store.put_template("k8s", SPEC)[0]
    v2 = store.put_template("k8s", SPEC2)[0]
    made = {}
    for name, template in (("prod-a", v1), ("dev-b", v2)):
        record = store.create_cluster(
            dict(
                name=name,
                project_id="p1",
                status="CREATE_IN_PROGRESS",
                driver="nova",
                cluster_template_name="k8s",
                template_version=template["version"],
                cluster_template_id=template["uuid"],
                operation="create",
                node_count=2,
                labels={"a": "b"},
                api_address="https://10.0.0.10:6443",
                coe_version="v1.31.2",
            )
        )
        made[name] = store.update_cluster(dict(record, status="CREATE_COMPLETE"), 1)
    pki.ensure_cluster_credentials(store, made["prod-a"]["uuid"], box, "prod-a")
    LockManager(store).acquire("p1", "prod-a", "update", ttl=120, holder="runner@host")
    return made


def export_to(store, box, path):
    document = export.build_export(store, box)
    assert export.write_export(str(path), document) == (True, None)
    return document


def open_other(url):
    return open_store(url)


def another_pg_url(request):
    """A PostgreSQL store of its own (a schema beside the ``store`` fixture's), dropped after."""
    import uuid

    import psycopg

    server = request.getfixturevalue("postgres_server")
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA %s" % schema)

    def drop():
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("DROP SCHEMA %s CASCADE" % schema)

    request.addfinalizer(drop)
    return "%s%soptions=-csearch_path%%3D%s" % (server, "&" if "?" in server else "?", schema)


def plain_record(name):
    return dict(
        name=name,
        project_id="p1",
        status="CREATE_COMPLETE",
        driver="nova",
        cluster_template_name="k8s",
        template_version=1,
        labels={},
    )


def without_ids(events):
    return [{k: v for k, v in e.items() if k != "id"} for e in events]


# -- the round trip -----------------------------------------------------------


@pytest.mark.parametrize("target", ["sqlite", "postgresql"])
def test_an_export_restores_into_an_empty_store_of_either_backend(store, box, tmp_path, request, target):
    made = fill(store, box)
    path = tmp_path / "export.json"
    document = export_to(store, box, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert document["schema_version"] == SCHEMA_VERSION

    url = "sqlite://%s" % (tmp_path / "new" / "coe.db") if target == "sqlite" else another_pg_url(request)
    with open_other(url) as new:
        found = export.read_export(str(path), box)
        plan = export.plan_restore(new, box, found)
        assert [(t["name"], t["version"], t["action"]) for t in plan.templates] == [
            ("k8s", 1, "restored"),
            ("k8s", 2, "restored"),
        ]
        assert sorted((c["name"], c["action"], c["credentials"]) for c in plan.clusters) == [
            ("dev-b", "restored", []),
            ("prod-a", "restored", ["pki"]),
        ]
        assert new.is_empty(), "planning writes nothing"
        plan.apply(new)

        assert new.list_templates() == store.list_templates()
        for name, record in made.items():
            assert new.get_cluster(record["uuid"]) == store.get_cluster(record["uuid"]), name
        uuid = made["prod-a"]["uuid"]
        assert new.get_secret(uuid, "pki") == store.get_secret(uuid, "pki")
        restored = pki.load_cluster_credentials(new, uuid, box)
        assert restored.ca_fingerprint == pki.load_cluster_credentials(store, uuid, box).ca_fingerprint
        # the history comes along (new ids, same content), and each restore is one event more
        old_events = without_ids(store.list_events())
        new_events = without_ids(new.list_events())
        assert new_events[: len(old_events)] == old_events
        assert [(e["target"], e["operation"]) for e in new_events[len(old_events) :]] == [
            ("dev-b", "restore"),
            ("prod-a", "restore"),
        ]
        # no lease is restored; the new store knows the key, and refuses another
        assert new.list_locks() == []
        secrets.check_secret_key(new, box, create=False)
        with pytest.raises(SecretError):
            secrets.check_secret_key(new, secrets.SecretBox(OTHER), create=False)

        # the same export again: nothing to do
        again = export.plan_restore(new, box, export.read_export(str(path), box))
        assert not again.changed
        assert {c["action"] for c in again.clusters} == {"present"}
        assert {t["action"] for t in again.templates} == {"present"}
        count = len(new.list_events())
        again.apply(new)
        assert len(new.list_events()) == count


def test_the_export_holds_no_secret_in_clear(store, box, tmp_path):
    made = fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    text = path.read_text()
    creds = pki.load_cluster_credentials(store, made["prod-a"]["uuid"], box)
    assert KEY not in text
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    for pem in (creds.ca.key_pem, creds.ca.cert_pem):
        line = pem.splitlines()[1]
        assert line not in text
        assert base64.b64encode(pem.encode()).decode()[:40] not in text
    # the credentials are the store's blobs, byte for byte
    blob = json.loads(text)["clusters"][[c["name"] for c in json.loads(text)["clusters"]].index("prod-a")]
    assert base64.b64decode(blob["secrets"]["pki"]["blob"]) == store.get_secret(made["prod-a"]["uuid"], "pki")


def test_the_export_carries_every_column_of_the_tables_it_copies(store):
    """A migration that adds a column to a table the export copies makes this fail: the export
    (Store.EXPORT_COLUMNS) and restore must learn the column first."""
    for table, columns in store.EXPORT_COLUMNS.items():
        with store._read():
            cur = store._execute("SELECT * FROM %s WHERE 1 = 0" % table)
            actual = [d[0] for d in cur.description]
        expected = ["id", *columns] if table == "coe_events" else list(columns)
        assert sorted(actual) == sorted(expected), table


def test_an_older_schema_export_is_restored(store, box, tmp_path):
    fill(store, box)
    document = export.build_export(store, box)
    document["schema_version"] = 1  # schema 2 changed only coe_locks, which no export holds
    document["sha256"] = export._digest(document)
    path = tmp_path / "old.json"
    export.write_export(str(path), document)
    with open_store("sqlite://%s" % (tmp_path / "new.db")) as new:
        export.plan_restore(new, box, export.read_export(str(path), box)).apply(new)
        assert len(new.list_clusters()) == 2


# -- a backup -------------------------------------------------------------------


def test_a_backup_of_an_unchanged_store_keeps_the_file_and_tightens_its_mode(store, box, tmp_path):
    fill(store, box)
    path = str(tmp_path / "export.json")
    first = export_to(store, box, path)
    store.clock.advance(60)
    again = export.build_export(store, box, previous=export.load_document(path))
    assert again["exported_at"] != first["exported_at"]
    assert export.write_export(path, again) == (False, 0o600)
    assert export.load_document(path)["exported_at"] == first["exported_at"]

    os.chmod(path, 0o644)
    assert export.write_export(path, again, check_mode=True) == (True, 0o644)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert export.write_export(path, again) == (True, 0o644)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    store.put_template("other", SPEC)
    changed = export.build_export(store, box, previous=export.load_document(path))
    assert export.write_export(path, changed, check_mode=True) == (True, 0o600)
    assert export.load_document(path)["templates"] == first["templates"], "check mode writes nothing"
    assert export.write_export(path, changed) == (True, 0o600)
    assert [t["name"] for t in export.load_document(path)["templates"]] == ["k8s", "k8s", "other"]
    assert [n for n in os.listdir(tmp_path) if n.startswith(".coe-export-")] == [], "no temporary file left"


def test_a_store_without_credentials_exports_a_key_check_it_keeps(store, box, tmp_path):
    store.put_template("k8s", SPEC)
    path = str(tmp_path / "export.json")
    first = export_to(store, box, path)
    again = export.build_export(store, box, previous=export.load_document(path))
    assert again["key_check"] == first["key_check"]
    assert store.get_secret(secrets.VERIFIER_UUID, secrets.VERIFIER_NAME) is None, "a backup writes no store row"
    with pytest.raises(SecretError, match="another secret key"):
        export.read_export(path, secrets.SecretBox(OTHER))


def test_a_backup_with_another_key_than_the_store_is_refused(store, box, tmp_path):
    fill(store, box)
    with pytest.raises(SecretError, match="not the key this store"):
        export.build_export(store, secrets.SecretBox(OTHER))


# -- bad input, refused before anything is restored ---------------------------------


def restore_file(url, path, key=KEY):
    with open_store(url) as target:
        box = secrets.SecretBox(key)
        export.plan_restore(target, box, export.read_export(str(path), box)).apply(target)


def assert_untouched(url):
    with open_store(url) as target:
        assert target.is_empty()
        assert target.get_secret(secrets.VERIFIER_UUID, secrets.VERIFIER_NAME) is None


def test_an_export_written_with_another_key_is_refused_before_anything_is_restored(store, box, tmp_path):
    fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    target = "sqlite://%s" % (tmp_path / "new.db")
    with pytest.raises(SecretError) as err:
        restore_file(target, path, key=OTHER)
    assert "written with another secret key" in str(err.value) and str(path) in str(err.value)
    assert "Nothing was restored" in str(err.value)
    assert OTHER not in str(err.value) and KEY not in str(err.value)
    assert_untouched(target)


def test_an_export_whose_credentials_another_key_sealed_is_refused(store, box, tmp_path):
    """The key check opens, but one blob was sealed with another key: still refused."""
    made = fill(store, box)
    document = export.build_export(store, box)
    foreign = secrets.SecretBox(OTHER).seal(made["dev-b"]["uuid"], "pki", b"x")
    row = next(c for c in document["clusters"] if c["name"] == "dev-b")
    row["secrets"] = {"pki": dict(blob=base64.b64encode(foreign).decode(), updated_at=row["updated_at"])}
    document["sha256"] = export._digest(document)
    path = tmp_path / "export.json"
    export.write_export(str(path), document)
    with pytest.raises(SecretError, match="another secret key"):
        export.read_export(str(path), box)


def test_an_export_of_a_newer_schema_is_refused_as_the_store_refuses_one(store, box, tmp_path):
    fill(store, box)
    document = export.build_export(store, box)
    document["schema_version"] = SCHEMA_VERSION + 1
    document["sha256"] = export._digest(document)
    path = tmp_path / "newer.json"
    export.write_export(str(path), document)
    target = "sqlite://%s" % (tmp_path / "new.db")
    with pytest.raises(StoreError) as err:
        restore_file(target, path)
    # the store's own words for a newer store (schema.refuse_newer, one rule)
    with store._write():
        store._execute("UPDATE coe_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError) as store_err:
        open_store(store.url)
    tail = "has schema version %d, written by a newer coe.openstack" % (SCHEMA_VERSION + 1)
    assert tail in str(err.value) and tail in str(store_err.value)
    assert str(err.value).split(tail)[1] == str(store_err.value).split(tail)[1]
    assert err.value.details["schema_version"] == SCHEMA_VERSION + 1
    assert_untouched(target)


@pytest.mark.parametrize(
    "content,why",
    [
        (b"just some text\n", "not JSON"),
        (b"SQLite format 3\x00\x10\x00\x02\x02", "not JSON"),
        (b"[1, 2, 3]", "no 'format"),
        (b'{"format": "something else", "schema_version": 2}', "no 'format"),
        (b'{"format": "coe.openstack store export"}', "no schema_version"),
    ],
)
def test_a_file_that_is_not_an_export_is_refused(tmp_path, box, content, why):
    path = tmp_path / "not-an-export"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as err:
        export.read_export(str(path), box)
    assert err.value.field == "path"
    assert "%s is not a coe.openstack store export" % path in str(err.value) and why in str(err.value)


def test_a_damaged_or_edited_export_is_refused(store, box, tmp_path):
    fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    document = json.loads(path.read_text())
    document["clusters"][0]["record"]["node_count"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match="damaged or edited"):
        export.read_export(str(path), box)
    path.write_text(path.read_text()[:-100])
    with pytest.raises(ValidationError, match="not JSON"):
        export.read_export(str(path), box)


def test_an_export_of_a_newer_format_is_refused(store, box, tmp_path):
    document = export.build_export(store, box)
    document["format_version"] = export.FORMAT_VERSION + 1
    document["sha256"] = export._digest(document)
    path = tmp_path / "export.json"
    export.write_export(str(path), document)
    with pytest.raises(ValidationError, match="export format %d, written by a newer" % (export.FORMAT_VERSION + 1)):
        export.read_export(str(path), box)


def test_a_missing_export_is_refused_naming_it(tmp_path, box):
    with pytest.raises(StoreError) as err:
        export.read_export(str(tmp_path / "nowhere.json"), box)
    assert err.value.details["field"] == "path"
    assert "Couldn't read the export %s: No such file or directory" % (tmp_path / "nowhere.json") == str(err.value)


# -- restoring into a store that is not empty -------------------------------------


def test_into_a_store_that_has_things_only_what_it_lacks_is_added(store, box, tmp_path):
    made = fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    with open_store("sqlite://%s" % (tmp_path / "other.db")) as other:
        # the templates re-declared from the same file (same spec, new uuids), a cluster of its own
        mine = other.put_template("k8s", SPEC)[0]
        other.create_cluster(plain_record("mine"))
        history = len(other.list_events())
        plan = export.plan_restore(other, box, export.read_export(str(path), box))
        assert [(t["version"], t["action"]) for t in plan.templates] == [(1, "present"), (2, "restored")]
        plan.apply(other)
        restored = other.get_cluster(made["prod-a"]["uuid"])
        assert restored["cluster_template_id"] == mine["uuid"], "points at the store's own template version"
        assert other.find_cluster("p1", "mine") is not None
        assert pki.load_cluster_credentials(other, made["prod-a"]["uuid"], box) is not None
        # only the history of the clusters restored (not the exported store's template events)
        added = other.list_events()[history:]
        assert {e["cluster_uuid"] for e in added} == {made["prod-a"]["uuid"], made["dev-b"]["uuid"]}


def test_a_cluster_the_store_has_without_credentials_gets_them(store_url, box, tmp_path):
    """An adopted record (same uuid, no CA): the restore keeps it and adds its credentials."""
    with open_store("sqlite://%s" % (tmp_path / "old.db")) as old:
        made = fill(old, box)
        path = tmp_path / "export.json"
        export_to(old, box, path)
        uuid = made["prod-a"]["uuid"]
        adopted = dict(old.get_cluster(uuid), status_reason="adopted from the cloud")
    with open_store(store_url) as new:
        new.put_template("k8s", SPEC)
        new.put_template("k8s", SPEC2)
        new.create_cluster(adopted)
        plan = export.plan_restore(new, box, export.read_export(str(path), box))
        by_name = {c["name"]: c for c in plan.clusters}
        assert by_name["prod-a"]["action"] == "credentials" and by_name["prod-a"]["credentials"] == ["pki"]
        assert by_name["dev-b"]["action"] == "restored"
        plan.apply(new)
        assert new.get_cluster(uuid)["status_reason"] == "adopted from the cloud", "the record is kept"
        assert pki.load_cluster_credentials(new, uuid, box) is not None
        assert any(
            e["operation"] == "restore" and "credentials pki restored" in e["message"] for e in new.list_events()
        )
        assert not export.plan_restore(new, box, export.read_export(str(path), box)).changed


def test_clashes_refuse_the_whole_restore_naming_each(store, box, tmp_path):
    made = fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    with open_store("sqlite://%s" % (tmp_path / "other.db")) as other:
        other.put_template("k8s", dict(SPEC, flavor_id="m1.large"))  # version 1, another spec
        twin = other.create_cluster(plain_record("prod-a"))
        before = (other.list_templates(), other.list_clusters(), other.list_events())
        with pytest.raises(ConflictError) as err:
            export.plan_restore(other, box, export.read_export(str(path), box))
        msg = str(err.value)
        assert "template k8s version 1 differs" in msg
        assert (
            "cluster prod-a in project p1 is %s in this store and %s in the export"
            % (
                twin["uuid"],
                made["prod-a"]["uuid"],
            )
            in msg
        )
        assert "Nothing was restored" in msg and len(err.value.details["conflicts"]) == 2
        assert (other.list_templates(), other.list_clusters(), other.list_events()) == before


def test_a_store_that_uses_another_key_refuses_the_restore(store, box, tmp_path):
    fill(store, box)
    path = tmp_path / "export.json"
    export_to(store, box, path)
    with open_store("sqlite://%s" % (tmp_path / "other.db")) as other:
        secrets.check_secret_key(other, secrets.SecretBox(OTHER))
        with pytest.raises(SecretError, match="not the key this store"):
            export.plan_restore(other, box, export.read_export(str(path), box))


# -- for adoption ---------------------------------------------------------------


def test_cluster_credentials_reads_one_clusters_blobs_from_a_checked_export(store, box, tmp_path):
    made = fill(store, box)
    path = str(tmp_path / "export.json")
    export_to(store, box, path)
    uuid = made["prod-a"]["uuid"]
    assert export.cluster_credentials(path, box, uuid) == {"pki": store.get_secret(uuid, "pki")}
    assert export.cluster_credentials(path, box, made["dev-b"]["uuid"]) == {}
    with pytest.raises(NotFoundError) as err:
        export.cluster_credentials(path, box, "00000000-0000-0000-0000-000000000000")
    assert "p1/prod-a (%s)" % uuid in str(err.value)
    with pytest.raises(SecretError, match="another secret key"):
        export.cluster_credentials(path, secrets.SecretBox(OTHER), uuid)

    with open_store("sqlite://%s" % (tmp_path / "new.db")) as new:
        assert export.restore_credentials(new, box, path, uuid, check_mode=True) == ["pki"]
        assert new.get_secret(uuid, "pki") is None
        assert export.restore_credentials(new, box, path, uuid) == ["pki"]
        assert pki.load_cluster_credentials(new, uuid, box).ca_fingerprint == (
            pki.load_cluster_credentials(store, uuid, box).ca_fingerprint
        )
        assert export.restore_credentials(new, box, path, uuid) == []
