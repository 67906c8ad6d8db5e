"""coe.openstack.cluster: desired state -> operation, state machine first, check mode writes nothing."""

import dataclasses

import coe_helpers
import pytest

from ansible_collections.coe.openstack.plugins.module_utils import sync as sync_registry
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import FakeSynchroniser, Observation

coe = coe_helpers.coe  # the fixture


def as_recorded(record):
    """What a cloud that has not drifted shows: exactly what the record says."""
    return Observation(
        uuid=record["uuid"],
        exists=True,
        api_address=record.get("api_address"),
        master_addresses=list(record.get("master_addresses") or []),
        node_addresses=list(record.get("node_addresses") or []),
        faults=dict(record.get("faults") or {}),
    )


@pytest.fixture(autouse=True)
def drivers():
    """The fake cloud of every test here: fake synchronisers for 'heat' and 'nova'.

    ``drivers[name][uuid] = Observation | dict | callable`` says what the cloud shows of a
    cluster; a cluster not named shows exactly what its record says (no drift).
    ``drivers["calls"]`` lists the clusters each observation was asked for.
    """
    answers = {"heat": {}, "nova": {}, "calls": []}

    def fake(known):
        class Fake(FakeSynchroniser):
            def __init__(self, conn):
                super().__init__(conn, known)
                self.calls = answers["calls"]

            def observe(self, clusters):
                clusters = list(clusters)
                for record in clusters:
                    self.observations.setdefault(record["uuid"], as_recorded)
                return super().observe(clusters)

        return Fake

    for name in ("heat", "nova"):
        sync_registry.register(name, fake(answers[name]))
    yield answers
    for name in ("heat", "nova"):
        sync_registry.unregister(name)


MAGNUM_FIELDS = (
    "uuid",
    "name",
    "project_id",
    "status",
    "status_reason",
    "health_status",
    "health_status_reason",
    "cluster_template_id",
    "master_count",
    "node_count",
    "api_address",
    "master_addresses",
    "node_addresses",
    "stack_id",
    "keypair",
    "labels",
    "flavor_id",
    "master_flavor_id",
    "coe_version",
    "create_timeout",
    "created_at",
    "updated_at",
    "faults",
    "nodegroups",
    "operation",
    "generation",
    "template_version",
    "version",
)


def _template(coe, **extra):
    res = coe("cluster_template", **dict(coe_helpers.TEMPLATE, **extra))
    assert not res.failed, res
    return res


def _complete(coe, name="demo", workers=None):
    """What a driver + sync would do: mark the cluster complete with observed nodes."""
    store = coe.store()
    rec = store.find_cluster("default", name)
    for ng in rec["nodegroups"]:
        prefix = "%s-master" % name if ng["role"] == "master" else "%s-%s" % (name, ng["name"])
        count = ng["node_count"] if workers is None or ng["role"] == "master" else workers
        ng["nodes"] = [dict(name="%s-%d" % (prefix, i), status="ACTIVE") for i in range(count)]
    status = "UPDATE_COMPLETE" if rec["operation"] != "create" else "CREATE_COMPLETE"
    store.update_cluster(dict(rec, status=status), rec["generation"])
    store.close()


def test_create_check_mode_then_create_then_no_change(coe):
    _template(coe)
    args = dict(name="demo", cluster_template="k8s", master_count=3, node_count=2, labels={"extra": "yes"})
    check = coe("cluster", check_mode=True, diff=True, **args)
    assert check["changed"] and check["operation"] == "create"
    assert check["plan"]["nodegroups"]["default-master"] == dict(before=0, after=3, add=3, remove=[])
    assert check["diff"]["before"] == {} and check["diff"]["after"]["node_count"] == 2
    assert check["cluster"]["status"] == "CREATE_IN_PROGRESS" and check["cluster"]["uuid"] is None
    assert coe.store().list_clusters() == []

    made = coe("cluster", **args)
    assert made["changed"] and made["operation"] == "create" and not made.get("diff")
    c = made["cluster"]
    for field in MAGNUM_FIELDS:
        assert field in c, field
    assert c["status"] == "CREATE_IN_PROGRESS" and c["generation"] == 1 and c["template_version"] == 1
    assert c["labels"] == {"kube_tag": "v1.30.4", "extra": "yes"} and c["master_flavor_id"] == "m1.medium"
    assert c["keypair"] == "ops" and c["driver"] == "heat" and c["create_timeout"] == 60
    assert "overrides" not in c

    # a retried create (same task again) makes no second cluster and reports no change
    again = coe("cluster", **args)
    assert not again["changed"] and again["cluster"]["uuid"] == c["uuid"]
    assert again["operation"] == "create" and again["plan"]["retry"] is True  # resume the create in progress
    assert len(coe.store().list_clusters()) == 1

    _complete(coe)
    done = coe("cluster", **args)
    assert not done["changed"] and done["operation"] == "none"


def test_scale_check_mode_diff_then_update(coe):
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s", node_count=3)
    _complete(coe)
    before = coe.store().find_cluster("default", "demo")
    check = coe(
        "cluster", check_mode=True, diff=True, name="demo", node_count=2, nodes_to_remove=["demo-default-worker-1"]
    )
    assert check["changed"] and check["operation"] == "update" and check["plan"]["action"] == "resize"
    assert check["plan"]["nodegroups"]["default-worker"] == dict(
        before=3, after=2, add=0, remove=["demo-default-worker-1"]
    )
    assert check["diff"]["before"]["node_count"] == 3 and check["diff"]["after"]["node_count"] == 2
    assert coe.store().find_cluster("default", "demo")["generation"] == before["generation"]

    res = coe("cluster", name="demo", node_count=2, nodes_to_remove=["demo-default-worker-1"])
    assert res["changed"] and res["cluster"]["status"] == "UPDATE_IN_PROGRESS"
    assert res["cluster"]["generation"] == before["generation"] + 1
    events = coe.store().list_events(cluster_uuid=before["uuid"])
    assert events[-1]["to_status"] == "UPDATE_IN_PROGRESS" and "node_count 3 -> 2" in events[-1]["message"]


def test_refusal_names_status_operation_and_holder(coe):
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s")
    _complete(coe)
    coe("cluster", name="demo", node_count=4)  # UPDATE_IN_PROGRESS
    lease = LockManager(coe.store()).acquire("default", "demo", "update", ttl=300, holder="alice@laptop")
    _template(coe, image_id="fcos-41")
    res = coe("cluster", name="demo", cluster_template_version=2, lock_token=lease["token"])
    assert res.failed
    assert "UPDATE_IN_PROGRESS" in res["msg"] and "upgrade" in res["msg"] and "alice@laptop" in res["msg"]
    assert res["status"] == "UPDATE_IN_PROGRESS" and res["lock_holder"] == "alice@laptop"
    # without the token: the lock refuses, naming the holder
    res = coe("cluster", name="demo", node_count=6)
    assert res.failed and "alice@laptop" in res["msg"]
    assert coe.store().find_cluster("default", "demo")["node_count"] == 4


def test_stale_lock_token_is_refused_and_nothing_written(coe):
    _template(coe)
    store = coe.store()
    locks = LockManager(store)
    old = locks.acquire("default", "demo", "create", ttl=300)
    locks.release("default", "demo", old["token"])
    locks.acquire("default", "demo", "create", ttl=300, holder="bob@ci")
    res = coe("cluster", name="demo", cluster_template="k8s", lock_token=old["token"])
    assert res.failed and "bob@ci" in res["msg"] and str(old["token"]) in res["msg"]
    assert store.list_clusters() == []


def test_locked_create_with_the_token(coe):
    _template(coe)
    lock = coe("cluster_lock", name="demo", operation="create")
    res = coe("cluster", name="demo", cluster_template="k8s", lock_token=lock["lock"]["token"])
    assert res["changed"] and res["cluster"]["status"] == "CREATE_IN_PROGRESS"


def test_bad_input_names_the_field_and_writes_nothing(coe):
    _template(coe)
    cases = [
        (dict(name="Demo_1"), "name"),
        (dict(name="demo", master_count=2), "master_count"),
        (dict(name="demo", master_count=0), "master_count"),
        (dict(name="demo", node_count=-1), "node_count"),
        (dict(name="demo", node_count=50000), "node_count"),
        (dict(name="demo", labels={"a": 1}), "labels"),
        (dict(name="demo", labels={"a": "{{ lookup('env', 'HOME') }}"}), "labels"),
        (dict(name="demo", cluster_template_version=7), "cluster_template_version"),
        (dict(name="demo", cluster_template="nope"), "cluster_template"),
        (dict(name="demo", cluster_template="k8s", timeout=1), "timeout"),
        (dict(name="demo", cluster_template="k8s", nodegroups=[{"name": "GPU"}]), "nodegroups[0].name"),
        (dict(name="demo", cluster_template="k8s", state="present", force=True), "force"),
    ]
    for args, field in cases:
        args.setdefault("cluster_template", "k8s")
        res = coe("cluster", **args)
        assert res.failed and res.get("field") == field, (args, res)
        assert field.split("[", maxsplit=1)[0] in res["msg"]
    res = coe("cluster", name="demo", cluster_template="k8s", colour="red")
    assert res.failed and "colour" in res["msg"]
    res = coe("cluster", name="demo")
    assert res.failed and res["field"] == "cluster_template"
    assert coe.store().list_clusters() == []


def test_nodes_to_remove_must_exist(coe):
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s", node_count=3)
    _complete(coe)
    res = coe("cluster", name="demo", node_count=2, nodes_to_remove=["demo-default-worker-7"])
    assert res.failed and res["field"] == "nodes_to_remove" and "demo-default-worker-7" in res["msg"]
    assert coe.store().find_cluster("default", "demo")["status"] == "CREATE_COMPLETE"


def test_upgrade_then_failed_then_rollback(coe):
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s")
    _complete(coe)
    _template(coe, image_id="fcos-41")
    # a new template version alone does not upgrade anything
    assert coe("cluster", name="demo", cluster_template="k8s")["operation"] == "none"
    up = coe("cluster", name="demo", cluster_template_version=2)
    assert up["operation"] == "upgrade" and up["cluster"]["image_id"] == "fcos-41"
    assert (up["plan"]["from_version"], up["plan"]["to_version"]) == (1, 2)
    store = coe.store()
    rec = store.find_cluster("default", "demo")
    store.update_cluster(dict(rec, status="UPDATE_FAILED", status_reason="batch 1 failed"), rec["generation"])
    res = coe("cluster", name="demo", node_count=1, labels={"new": "x"})
    assert res.failed and "UPDATE_FAILED" in res["msg"]
    retry = coe("cluster", name="demo")
    assert retry["changed"] and retry["operation"] == "upgrade" and retry["plan"]["retry"]
    rec = store.find_cluster("default", "demo")
    store.update_cluster(dict(rec, status="UPDATE_FAILED"), rec["generation"])
    back = coe("cluster", name="demo", cluster_template_version=1)
    assert back["changed"] and back["operation"] == "upgrade" and back["cluster"]["image_id"] == "fcos-40"


def test_delete_and_force_delete(coe, drivers):
    _template(coe)
    made = coe("cluster", name="demo", cluster_template="k8s")
    uuid = made["cluster"]["uuid"]
    _complete(coe)
    check = coe("cluster", check_mode=True, name="demo", state="absent")
    assert check["changed"] and check["operation"] == "delete"
    assert coe.store().find_cluster("default", "demo")["status"] == "CREATE_COMPLETE"
    gone = coe("cluster", name="demo", state="absent")
    assert gone["changed"] and gone["cluster"]["status"] == "DELETE_IN_PROGRESS"
    again = coe("cluster", name="demo", state="absent")
    assert not again["changed"] and again["operation"] == "delete"

    # force while the cloud still has something: the record stays
    drivers["heat"][uuid] = Observation(uuid=uuid, exists=True, status="DELETE_FAILED")
    res = coe("cluster", name="demo", state="absent", force=True)
    assert not res["record_removed"] and coe.store().find_cluster("default", "demo") is not None
    # nothing left: the record goes, with an event saying why
    drivers["heat"][uuid] = Observation(uuid=uuid, exists=False)
    check = coe("cluster", check_mode=True, name="demo", state="absent", force=True)
    assert check["changed"] and check["record_removed"]
    assert coe.store().find_cluster("default", "demo") is not None
    res = coe("cluster", name="demo", state="absent", force=True)
    assert res["changed"] and res["record_removed"]
    assert coe.store().find_cluster("default", "demo") is None
    last = coe.store().list_events(cluster_uuid=uuid)[-1]
    assert last["to_status"] == "DELETE_COMPLETE" and "force delete" in last["message"]
    assert not coe("cluster", name="demo", state="absent")["changed"]


def test_names_are_unique_per_project(coe):
    _template(coe)
    a = coe("cluster", name="demo", cluster_template="k8s", project="team-a")
    b = coe("cluster", name="demo", cluster_template="k8s", project="team-b")
    assert a["cluster"]["uuid"] != b["cluster"]["uuid"]
    assert a["cluster"]["project_id"] == "team-a"


def test_awx_job_id_and_explicit_actor_in_the_history(coe, monkeypatch):
    _template(coe)
    monkeypatch.setenv("JOB_ID", "815")
    made = coe("cluster", name="demo", cluster_template="k8s", actor={"user": "awx-admin"})
    ev = coe.store().list_events(cluster_uuid=made["cluster"]["uuid"])[0]
    assert ev["awx_job_id"] == "815" and ev["actor_user"] == "awx-admin"


def test_new_timeout_is_recorded_without_an_operation(coe):
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s")
    _complete(coe)
    res = coe("cluster", name="demo", timeout=7200)
    assert res["changed"] and res["operation"] == "none" and res["cluster"]["timeout"] == 7200
    assert res["cluster"]["status"] == "CREATE_COMPLETE" and res["cluster"]["create_timeout"] == 120
    assert not coe("cluster", name="demo", timeout=7200)["changed"]


def test_force_delete_of_a_live_cluster_with_resources_left_is_an_ordinary_delete(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s")["cluster"]["uuid"]
    _complete(coe)
    drivers["heat"][uuid] = Observation(uuid=uuid, exists=True, status="CREATE_COMPLETE")
    check = coe("cluster", check_mode=True, name="demo", state="absent", force=True)
    assert check["changed"] and check["cluster"]["status"] == "DELETE_IN_PROGRESS"
    assert coe.store().find_cluster("default", "demo")["status"] == "CREATE_COMPLETE"
    res = coe("cluster", name="demo", state="absent", force=True)
    assert res["changed"] and not res["record_removed"] and res["operation"] == "delete"
    assert res["cluster"]["status"] == "DELETE_IN_PROGRESS" and "still has resources" in res["cluster"]["status_reason"]


def test_create_makes_the_cluster_credentials_once_and_a_wrong_key_writes_nothing(coe):
    from ansible_collections.coe.openstack.plugins.module_utils import pki
    from ansible_collections.coe.openstack.plugins.module_utils.secrets import VERIFIER_UUID, SecretBox

    _template(coe)
    args = dict(name="demo", cluster_template="k8s", master_count=1, node_count=1, secret_key="right-key-0123456789")
    check = coe("cluster", check_mode=True, **args)
    # check mode writes no key verifier and no credentials
    assert check["changed"] and coe.store().list_secrets(VERIFIER_UUID) == []

    made = coe("cluster", **args)
    uuid = made["cluster"]["uuid"]
    store = coe.store()
    creds = pki.load_cluster_credentials(store, uuid, SecretBox("right-key-0123456789", source="test"))
    assert creds is not None
    assert "right-key-0123456789" not in str(made)

    # a second run keeps the same CA
    coe("cluster", **args)
    again = pki.load_cluster_credentials(coe.store(), uuid, SecretBox("right-key-0123456789", source="test"))
    assert again.to_json() == creds.to_json()

    # a wrong key is refused before anything is written, check mode or not
    before = coe.store().get_cluster(uuid)["generation"]
    for check_mode in (True, False):
        wrong = coe("cluster", check_mode=check_mode, **dict(args, secret_key="wrong-key-0123456789", node_count=3))
        assert wrong.failed and "not the key this store" in wrong["msg"]
        assert "wrong-key-0123456789" not in str(wrong)
    assert coe.store().get_cluster(uuid)["generation"] == before


# -- the plan is made on what the cloud has now -------------------------------------


def _one_worker_gone(name="demo", gone=1):
    """A cloud in which worker ``gone`` of a complete cluster was deleted behind our back."""

    def observe(record):
        obs = as_recorded(record)
        for ng in record["nodegroups"]:
            if ng["role"] == "worker":
                nodes = [dict(n) for n in ng["nodes"]]
                nodes[gone]["status"] = "MISSING"
                obs.nodegroups[ng["name"]] = dict(
                    nodes=nodes, status_reason="missing servers: %s" % nodes[gone]["name"]
                )
        obs.health_status = "UNHEALTHY"
        obs.health_status_reason = {"default-worker": "missing servers: %s-default-worker-%d" % (name, gone)}
        return obs

    return observe


def _writes(coe, uuid):
    """(generation, number of events) of a cluster: what a run wrote shows in both."""
    store = coe.store()
    return store.get_cluster(uuid)["generation"], len(store.list_events(cluster_uuid=uuid))


def test_drift_seen_now_plans_a_repair_check_mode_writes_nothing(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    before = _writes(coe, uuid)
    drivers["heat"][uuid] = _one_worker_gone()
    check = coe("cluster", check_mode=True, name="demo", cluster_template="k8s", node_count=2)
    assert check["observed"] and check["drifted"]
    assert check["changed"] and check["operation"] == "update" and check["plan"]["action"] == "resize"
    assert check["plan"]["changes"] == [dict(field="repair", before=["demo-default-worker-1"], after="replaced")]
    assert check["cluster"]["status"] == "UPDATE_IN_PROGRESS"
    assert check["cluster"]["health_status"] == "UNHEALTHY"
    assert _writes(coe, uuid) == before
    assert coe.store().get_cluster(uuid)["health_status"] != "UNHEALTHY"
    assert drivers["calls"] == [[uuid]]


def test_drift_seen_under_the_lock_is_written_with_its_token_then_the_repair(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    generation = coe.store().get_cluster(uuid)["generation"]
    drivers["heat"][uuid] = _one_worker_gone()
    lease = LockManager(coe.store()).acquire("default", "demo", "update", ttl=300, holder="me@ci")
    res = coe("cluster", name="demo", cluster_template="k8s", node_count=2, lock_token=lease["token"])
    assert res["changed"] and res["operation"] == "update" and res["drifted"]
    assert res["plan"]["changes"][0]["field"] == "repair"
    # two writes, both fenced: what the cloud has now, then the operation
    stored = coe.store().get_cluster(uuid)
    assert stored["generation"] == generation + 2 == res["cluster"]["generation"]
    assert stored["status"] == "UPDATE_IN_PROGRESS" and stored["health_status"] == "UNHEALTHY"
    worker = next(ng for ng in stored["nodegroups"] if ng["name"] == "default-worker")
    assert [n["status"] for n in worker["nodes"]] == ["ACTIVE", "MISSING"]
    last = coe.store().list_events(cluster_uuid=uuid)[-1]
    assert last["to_status"] == "UPDATE_IN_PROGRESS" and "repair" in last["message"]
    assert last["generation"] == generation + 2


def test_nothing_drifted_plans_nothing_and_writes_nothing(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    before = _writes(coe, uuid)
    for check_mode in (True, False):
        res = coe("cluster", check_mode=check_mode, name="demo", cluster_template="k8s", node_count=2)
        assert not res["changed"] and res["operation"] == "none"
        assert res["observed"] and not res["drifted"]
    assert _writes(coe, uuid) == before
    assert len(drivers["calls"]) == 2


def test_the_cloud_is_not_asked_for_a_create_a_delete_or_an_operation_in_progress(coe, drivers):
    _template(coe)
    made = coe("cluster", name="demo", cluster_template="k8s")
    assert not made["observed"]
    again = coe("cluster", name="demo", cluster_template="k8s")  # CREATE_IN_PROGRESS: resumed
    assert again["operation"] == "create" and not again["observed"]
    _complete(coe)
    gone = coe("cluster", name="demo", state="absent")
    assert gone["operation"] == "delete" and not gone["observed"]
    assert drivers["calls"] == []


def test_drift_on_a_cluster_locked_by_another_is_refused_naming_the_holder(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    before = _writes(coe, uuid)
    LockManager(coe.store()).acquire("default", "demo", "update", ttl=300, holder="alice@laptop")
    # nothing drifted: nothing to do, whoever holds the lock
    assert coe("cluster", name="demo", cluster_template="k8s", node_count=2)["operation"] == "none"
    drivers["heat"][uuid] = _one_worker_gone()
    res = coe("cluster", name="demo", cluster_template="k8s", node_count=2)
    assert res.failed and "alice@laptop" in res["msg"] and res["lock_operation"] == "update"
    assert _writes(coe, uuid) == before


def test_a_stale_token_is_refused_before_the_cloud_is_asked(coe, drivers):
    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    locks = LockManager(coe.store())
    old = locks.acquire("default", "demo", "update", ttl=300)
    locks.release("default", "demo", old["token"])
    drivers["heat"][uuid] = _one_worker_gone()
    res = coe("cluster", name="demo", node_count=2, lock_token=old["token"])
    assert res.failed and str(old["token"]) in res["msg"]
    assert drivers["calls"] == []


def test_a_cloud_that_does_not_answer_fails_naming_it_and_nothing_is_written(coe, drivers, tmp_path, monkeypatch):
    import yaml

    _template(coe)
    uuid = coe("cluster", name="demo", cluster_template="k8s", node_count=2)["cluster"]["uuid"]
    _complete(coe)
    before = _writes(coe, uuid)
    clouds = tmp_path / "clouds.yaml"
    auth = dict(auth_url="http://127.0.0.1:9/v3", username="x", password="x", project_name="x")
    clouds.write_text(yaml.safe_dump({"clouds": {"nowhere": {"auth": auth}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    sync_registry.unregister("heat")  # the real synchroniser, on a cloud nobody answers for
    for check_mode in (True, False):
        res = coe("cluster", check_mode=check_mode, cloud="nowhere", name="demo", node_count=2)
        assert res.failed and "cloud nowhere" in res["msg"], res
    assert _writes(coe, uuid) == before


def test_a_run_derives_the_secret_key_once(coe, monkeypatch):
    from ansible_collections.coe.openstack.plugins.module_utils import secrets

    derived = []
    real = secrets.Scrypt

    def counting(**kwargs):
        derived.append(kwargs["salt"])
        return real(**kwargs)

    monkeypatch.setattr(secrets, "Scrypt", counting)
    monkeypatch.setattr(secrets, "_DERIVED", {})  # what a new module process starts with
    _template(coe)
    args = dict(name="demo", cluster_template="k8s", secret_key="right-key-0123456789")
    assert coe("cluster", **args)["operation"] == "create"  # the verifier and the credentials made
    assert len(derived) == 1
    _complete(coe)
    derived.clear()
    monkeypatch.setattr(secrets, "_DERIVED", {})
    assert coe("cluster", **dict(args, node_count=3))["operation"] == "update"  # checked, then loaded
    assert len(derived) == 1


def test_a_stored_template_without_a_version_is_refused_for_create_and_upgrade(coe):
    # templates stored before coe_version was required (straight into the store)
    store = coe.store()
    old = {k: v for k, v in coe_helpers.TEMPLATE.items() if k not in ("name", "coe_version", "labels")}
    store.put_template("old", old)
    for check_mode in (True, False):
        res = coe("cluster", check_mode=check_mode, name="demo", cluster_template="old")
        assert res.failed and res["field"] == "cluster_template", res
        assert "'old' version 1 has no coe_version" in res["msg"]
    assert store.list_clusters() == []
    # the cluster's own kube_tag label is the version the drivers read: that is enough
    made = coe("cluster", name="tagged", cluster_template="old", labels={"kube_tag": "v1.31.2"})
    assert made["changed"] and made["cluster"]["coe_version"] == "v1.31.2"
    res = coe("cluster", name="demo", cluster_template="old", labels={"kube_tag": "banana"})
    assert res.failed and res["field"] == "labels" and "banana" in res["msg"]

    # an upgrade to such a version is refused too, and the cluster stays as it was
    _template(coe)
    coe("cluster", name="demo", cluster_template="k8s")
    _complete(coe)
    store.put_template("k8s", dict(old, image_id="fcos-41", coe_version="banana"))
    before = store.find_cluster("default", "demo")
    res = coe("cluster", name="demo", cluster_template_version=2)
    assert res.failed and res["field"] == "cluster_template" and "coe_version 'banana'" in res["msg"], res
    after = store.find_cluster("default", "demo")
    assert after["generation"] == before["generation"] and after["status"] == "CREATE_COMPLETE"
    # a resize on the version it runs is not concerned
    assert coe("cluster", name="demo", node_count=2)["operation"] == "update"


def _store_rows(coe):
    """Everything a run could have written: clusters, events, secrets, locks."""
    store = coe.store()
    try:
        clusters = store.list_clusters()
        return dict(
            clusters=clusters,
            events=store.list_events(),
            secrets={c["uuid"]: store.list_secrets(c["uuid"]) for c in clusters},
            lock=store.get_lock("default", "demo"),
        )
    finally:
        store.close()


def test_lock_plans_locks_and_records_in_one_call(coe):
    _template(coe)
    args = dict(name="demo", cluster_template="k8s", node_count=2, lock=True, lock_ttl=60)
    made = coe("cluster", **args)
    assert made["changed"] and made["operation"] == "create"
    lease = made["lock"]
    assert lease["held"] and lease["operation"] == "create" and lease["token"] >= 1
    rows = _store_rows(coe)
    assert rows["lock"]["token"] == lease["token"] and rows["lock"]["holder"] == lease["holder"]
    assert len(rows["clusters"]) == 1 and rows["clusters"][0]["status"] == "CREATE_IN_PROGRESS"
    assert rows["secrets"][made["cluster"]["uuid"]], "the cluster's CAs exist before the driver runs"

    # a second runner is refused at its first (and only) module call, naming the holder
    other = coe("cluster", **dict(args, node_count=3))
    assert other.failed and lease["holder"] in other["msg"]
    assert _store_rows(coe)["clusters"][0]["generation"] == made["cluster"]["generation"]

    # released, completed: a run with nothing to do takes no lock at all
    locks = LockManager(coe.store())
    locks.release("default", "demo", lease["token"])
    _complete(coe)
    before = _store_rows(coe)
    same = coe("cluster", **args)
    assert not same["changed"] and same["operation"] == "none" and same["lock"] is None
    after = _store_rows(coe)
    assert after["lock"]["token"] == before["lock"]["token"] and not after["lock"]["holder"]
    assert len(after["events"]) == len(before["events"])


def test_lock_is_released_when_there_is_nothing_for_a_driver(coe, drivers):
    _template(coe)
    made = coe("cluster", name="demo", cluster_template="k8s", node_count=1, lock=True)
    LockManager(coe.store()).release("default", "demo", made["lock"]["token"])
    _complete(coe, workers=1)
    rec = coe.store().find_cluster("default", "demo")
    # the cloud shows an address the record lacks: recorded under a short lease, then released
    drivers["heat"][rec["uuid"]] = lambda record: dataclasses.replace(as_recorded(record), api_address="192.0.2.10")
    seen = coe("cluster", name="demo", cluster_template="k8s", node_count=1, lock=True)
    assert seen["operation"] == "none" and seen["changed"] and seen["lock"] is None
    rows = _store_rows(coe)
    assert rows["clusters"][0]["api_address"] == "https://192.0.2.10:6443"  # written in Magnum's form
    assert rows["lock"]["holder"] is None


@pytest.mark.parametrize("lock", [True, False])
def test_a_bad_reference_is_refused_before_anything_is_written(coe, lock):
    _template(coe)
    before = _store_rows(coe)
    refuse = ("flavor_id", "the cloud lacks what the create of cluster demo needs: flavor m1.huge does not exist")
    fake = sync_registry.synchroniser_class("heat")
    fake.refuse = refuse
    try:
        # a store's first key: its verifier is no more written than the record is
        key = "right-key-0123456789"
        res = coe("cluster", name="demo", cluster_template="k8s", flavor_id="m1.huge", lock=lock, secret_key=key)
        check = coe(
            "cluster", check_mode=True, name="demo", cluster_template="k8s", flavor_id="m1.huge", secret_key=key
        )
    finally:
        fake.refuse = None
    assert res.failed and res["field"] == "flavor_id" and "m1.huge does not exist" in res["msg"]
    assert check.failed and check["field"] == "flavor_id"
    assert _store_rows(coe) == before  # no record, no event, no secret, no lock


def test_require_existing_refuses_to_create(coe):
    _template(coe)
    res = coe("cluster", name="demo", cluster_template="k8s", require_existing=True, lock=True)
    assert res.failed and res["field"] == "name" and "coe.openstack.create" in res["msg"]
    assert _store_rows(coe)["clusters"] == []


def test_a_rerun_of_an_operation_in_progress_takes_the_lock_to_resume_it(coe):
    """A runner died after recording its create: the same play again resumes it (lock + driver)."""
    _template(coe)
    args = dict(name="demo", cluster_template="k8s", node_count=2, lock=True, lock_ttl=60)
    made = coe("cluster", **args)
    LockManager(coe.store()).break_lock("default", "demo", "the runner died")
    again = coe("cluster", **args)
    assert again["operation"] == "create" and again["plan"]["retry"], again
    assert again["lock"] and again["lock"]["token"] == made["lock"]["token"] + 1
    assert _store_rows(coe)["clusters"][0]["status"] == "CREATE_IN_PROGRESS"
