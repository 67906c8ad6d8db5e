"""The state machine (every cell), validation and planning in lifecycle.py."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import lifecycle as lc
from ansible_collections.coe.openstack.plugins.module_utils.errors import StateError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import Observation

NOW = 1_800_000_000.0

# The rules of DESIGN.md written independently of lifecycle.TABLE:
COMPLETE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "RESUME_COMPLETE",
    "RESTORE_COMPLETE",
    "ROLLBACK_COMPLETE",
    "SNAPSHOT_COMPLETE",
    "CHECK_COMPLETE",
    "ADOPT_COMPLETE",
}
ALL = set(lc.STATUSES)


def template(version=1, name="k8s", driver="heat", **spec):
    base = dict(
        driver=driver,
        coe="kubernetes",
        image_id="img-%d" % version,
        flavor_id="m1.small",
        labels={"kube_tag": "v1.%d" % version},
    )
    base.update(spec)
    return dict(name=name, version=version, uuid="tpl-%s-%d" % (name, version), spec=base)


def desired(**kw):
    d = dict(state="present", name="demo", project_id="p1")
    d.update(kw)
    return lc.validate_desired(d)


def created(status="CREATE_COMPLETE", tpl=None, nodes=True, **kw):
    """A record as the cluster module writes it, then as a sync completes it."""
    tpl = tpl or template()
    p = lc.plan(desired(**kw), None, tpl)
    rec = lc.apply_plan(None, p, NOW)
    rec.update(uuid="u-1", generation=2, status=status)
    if nodes:
        for ng in rec["nodegroups"]:
            prefix = "demo-master" if ng["role"] == "master" else "demo-%s" % ng["name"]
            ng["nodes"] = [dict(name="%s-%d" % (prefix, i), status="ACTIVE") for i in range(ng["node_count"])]
    return rec


# -- the table, cell by cell ---------------------------------------------------


def _outcome(status, action, retry=False, record_op=None, plan=None, target=None, lock=None, own=False):
    rec = None if status == lc.ABSENT else dict(name="demo", status=status, operation=record_op, plan=plan or {})
    try:
        lc.check_transition(rec, action, retry=retry, target=target, lock=lock, own_lock=own)
        return True
    except StateError as e:
        assert status in str(e) and action in str(e)
        assert e.details["status"] == status and e.details["operation"] == action
        return False


@pytest.mark.parametrize("status", [*sorted(ALL), lc.ABSENT])
@pytest.mark.parametrize("action", ["update", "resize"])
def test_update_and_resize_cells(status, action):
    allowed = COMPLETE | ({"UPDATE_FAILED"} if action == "resize" else set())
    assert _outcome(status, action) is (status in allowed)


@pytest.mark.parametrize("status", [*sorted(ALL), lc.ABSENT])
def test_create_cells(status):
    # a new create only where there is no record; re-running a create in progress resumes it
    assert _outcome(status, "create") is (status == lc.ABSENT)
    assert _outcome(status, "create", retry=True, record_op="create") is (status in (lc.ABSENT, "CREATE_IN_PROGRESS"))


@pytest.mark.parametrize("status", [*sorted(ALL), lc.ABSENT])
def test_delete_cells(status):
    assert _outcome(status, "delete", record_op="delete") is (status != lc.ABSENT)
    deleting = dict(held=True, holder="bob@ci", operation="delete", expires_at="x")
    expected = status not in (lc.ABSENT, "DELETE_IN_PROGRESS")
    assert _outcome(status, "delete", record_op="delete", lock=deleting) is expected
    assert _outcome(status, "delete", record_op="delete", lock=deleting, own=True) is (status != lc.ABSENT)
    # a live lock for another operation does not stop a delete in the state machine (the lock itself does)
    updating = dict(deleting, operation="update")
    assert _outcome(status, "delete", record_op="delete", lock=updating) is (status != lc.ABSENT)


@pytest.mark.parametrize("status", [*sorted(ALL), lc.ABSENT])
def test_upgrade_cells(status):
    failed_upgrade = dict(action="upgrade", from_template="k8s", from_version=1, to_template="k8s", to_version=2)
    assert _outcome(status, "upgrade", target=("k8s", 3)) is (status in COMPLETE)
    # from UPDATE_FAILED after an upgrade: retry the upgrade, or roll back
    for target, ok_from_failed in ((("k8s", 2), True), (("k8s", 1), True), (("k8s", 3), False)):
        got = _outcome(status, "upgrade", record_op="upgrade", plan=failed_upgrade, target=target)
        assert got is (status in COMPLETE or (status == "UPDATE_FAILED" and ok_from_failed))
    # from UPDATE_FAILED after a resize: no upgrade
    assert (
        _outcome("UPDATE_FAILED", "upgrade", record_op="update", plan={"action": "resize"}, target=("k8s", 2)) is False
    )


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"])
def test_in_progress_allows_only_resuming_the_same_operation(status):
    op = "create" if status.startswith("CREATE") else "update"
    for action in ("update", "resize", "upgrade"):
        expected = status == "UPDATE_IN_PROGRESS" and action == "resize"
        assert _outcome(status, action, retry=True, record_op=op, plan={"action": "resize"}) is expected
        assert _outcome(status, action, retry=False, record_op=op, plan={"action": "resize"}) is False


def test_refusal_names_status_operation_and_holder():
    rec = dict(name="demo", status="UPDATE_IN_PROGRESS", operation="update", plan={"action": "resize"})
    lock = dict(held=True, holder="alice@laptop", operation="update", expires_at="2027-01-15T08:00:00+00:00")
    with pytest.raises(StateError) as err:
        lc.check_transition(rec, "upgrade", lock=lock)
    msg = str(err.value)
    assert "UPDATE_IN_PROGRESS" in msg and "upgrade" in msg and "alice@laptop" in msg
    assert err.value.details["lock_holder"] == "alice@laptop"


def test_table_covers_every_status_and_action():
    assert set(lc.TABLE) == ALL | {lc.ABSENT}
    for row in lc.TABLE.values():
        assert set(row) == set(lc.ACTIONS)


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Demo", "demo_1", "1demo", "-demo", "demo-", "a" * 64, "{{ x }}", "demo: x", "de mo", "", None, 5, "dé"],
)
def test_bad_names(name):
    with pytest.raises(ValidationError) as err:
        lc.validate_desired(dict(state="present", name=name, project_id="p"))
    assert err.value.field == "name"


@pytest.mark.parametrize(
    "field,value",
    [
        ("master_count", 0),
        ("master_count", 2),
        ("master_count", -1),
        ("master_count", 9),
        ("master_count", True),
        ("node_count", -1),
        ("node_count", 100000),
        ("node_count", "3"),
        ("timeout", 5),
        ("timeout", 10**9),
        ("upgrade_batch_size", 0),
    ],
)
def test_bad_counts(field, value):
    with pytest.raises(ValidationError) as err:
        desired(**{field: value})
    assert err.value.field == field


@pytest.mark.parametrize(
    "labels",
    [
        {"a": 1},
        {"a": True},
        {"a": {"b": "c"}},
        {"a": None},
        {"": "x"},
        {"a b": "x"},
        {"a": "{{ lookup('x') }}"},
        ["a=b"],
        "a=b",
    ],
)
def test_bad_labels(labels):
    with pytest.raises(ValidationError) as err:
        desired(labels=labels)
    assert err.value.field == "labels"


@pytest.mark.parametrize(
    "groups,field",
    [
        ([{"name": "Bad_Name"}], "nodegroups[0].name"),
        ([{"name": "gpu"}, {"name": "gpu"}], "nodegroups[1].name"),
        ([{"name": "default-worker"}], "nodegroups[0].name"),
        ([{"name": "gpu", "node_count": -1}], "nodegroups[0].node_count"),
        ([{"name": "gpu", "node_count": 5, "max_node_count": 3}], "nodegroups[0].node_count"),
        ([{"name": "gpu", "colour": "red"}], "nodegroups[0]"),
        ([{"name": "gpu", "labels": {"a": 1}}], "nodegroups[0].labels"),
    ],
)
def test_bad_nodegroups(groups, field):
    with pytest.raises(ValidationError) as err:
        desired(nodegroups=groups)
    assert err.value.field == field


def test_generated_host_names_must_fit_a_dns_label():
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(name="a" * 55, node_count=3), None, template())
    assert err.value.field == "name" and "longer than 63" in str(err.value)


def test_template_spec_normalisation():
    spec = lc.normalise_template_spec(
        dict(
            driver="nova",
            image_id=" fcos ",
            flavor_id="m1",
            coe_version=" v1.31.2 ",
            labels={},
            master_lb_enabled=False,
            docker_volume_size=None,
        )
    )
    assert spec == dict(
        driver="nova", image_id="fcos", flavor_id="m1", coe="kubernetes", coe_version="v1.31.2", master_lb_enabled=False
    )
    ok = dict(driver="heat", image_id="x", coe_version="v1.31.2")
    for bad, field in (
        (dict(driver="k8s", image_id="x"), "driver"),
        (dict(image_id="x"), "driver"),
        (dict(driver="heat"), "image_id"),
        (dict(ok, colour="red"), "colour"),
        (dict(ok, docker_volume_size=-2), "docker_volume_size"),
        (dict(ok, floating_ip_enabled="yes"), "floating_ip_enabled"),
        (dict(ok, labels={"a": 2}), "labels"),
        (dict(ok, master_server_group_policy="spread"), "master_server_group_policy"),
    ):
        with pytest.raises(ValidationError) as err:
            lc.normalise_template_spec(bad)
        assert err.value.field == field


@pytest.mark.parametrize(
    "spec, field, words",
    [
        (dict(), "coe_version", "is required"),
        (dict(coe_version=""), "coe_version", "must not be empty"),
        (dict(coe_version="   "), "coe_version", "must not be empty"),
        (dict(coe_version="banana"), "coe_version", "'banana' is not a Kubernetes version"),
        (dict(coe_version="v1.21.14"), "coe_version", "older than the oldest supported Kubernetes (1.22)"),
        (dict(labels={"kube_tag": "banana"}), "labels.kube_tag", "'banana' is not a Kubernetes version"),
        (dict(labels={"kube_tag": "v1.18.2"}), "labels.kube_tag", "older than"),
        (dict(labels={"kube_tag": ""}), "coe_version", "is required"),
        # coe_version wins over kube_tag, as in both drivers: a good kube_tag does not save a bad coe_version
        (dict(coe_version="banana", labels={"kube_tag": "v1.31.2"}), "coe_version", "banana"),
    ],
)
def test_template_without_a_usable_kubernetes_version_is_refused(spec, field, words):
    with pytest.raises(ValidationError) as err:
        lc.normalise_template_spec(dict(driver="heat", image_id="x", **spec))
    assert err.value.field == field and words in str(err.value), str(err.value)
    assert field in str(err.value)


@pytest.mark.parametrize(
    "spec, version",
    [
        (dict(coe_version="v1.31.2"), "v1.31.2"),
        (dict(coe_version="1.30"), "1.30"),
        (dict(coe_version="v1.22.0"), "v1.22.0"),
        (dict(coe_version="v1.34.1-rc.0"), "v1.34.1-rc.0"),
        (dict(labels={"kube_tag": "v1.30.4"}), "v1.30.4"),
        (dict(coe_version="v1.31.2", labels={"kube_tag": "v1.31.2"}), "v1.31.2"),
    ],
)
def test_template_kubernetes_version_coe_version_else_kube_tag(spec, version):
    stored = lc.normalise_template_spec(dict(driver="heat", image_id="x", **spec))
    assert lc.coe_version_of(stored)[1] == version
    # the cluster record carries it, so every reader (drivers, kubeconfig) sees the same version
    rec = lc.plan(desired(flavor_id="m1"), None, dict(name="t", version=1, uuid="u", spec=stored))["desired"]
    assert rec["coe_version"] == version


def test_cluster_refuses_a_stored_template_without_a_version_naming_it():
    old = template(labels={})  # stored before coe_version was required
    with pytest.raises(ValidationError) as err:
        lc.check_template_version(old)
    assert err.value.field == "cluster_template" and "'k8s' version 1 has no coe_version" in str(err.value)
    with pytest.raises(ValidationError) as err:
        lc.check_template_version(template(coe_version="banana"))
    assert err.value.field == "cluster_template" and "coe_version 'banana' is not" in str(err.value)
    # the cluster's own kube_tag label is what the drivers would read
    assert lc.check_template_version(old, {"kube_tag": "v1.31.2"}) == "v1.31.2"
    with pytest.raises(ValidationError) as err:
        lc.check_template_version(old, {"kube_tag": "v1.2"})
    assert err.value.field == "labels" and "kube_tag" in str(err.value) and "older than" in str(err.value)
    assert lc.check_template_version(template(coe_version="v1.30.4")) == "v1.30.4"


# -- planning ------------------------------------------------------------------


def test_create_plan_and_record():
    p = lc.plan(
        desired(
            master_count=3,
            node_count=2,
            labels={"x": "y"},
            nodegroups=[{"name": "gpu", "node_count": 1, "flavor_id": "g1"}],
        ),
        None,
        template(),
    )
    assert p["operation"] == "create" and p["action"] == "create"
    assert p["nodegroups"] == {
        "default-master": dict(before=0, after=3, add=3, remove=[]),
        "default-worker": dict(before=0, after=2, add=2, remove=[]),
        "gpu": dict(before=0, after=1, add=1, remove=[]),
    }
    rec = lc.apply_plan(None, p, NOW)
    assert rec["status"] == "CREATE_IN_PROGRESS" and rec["operation"] == "create"
    assert rec["labels"] == {"kube_tag": "v1.1", "x": "y"}
    assert [ng["name"] for ng in rec["nodegroups"]] == ["default-master", "default-worker", "gpu"]
    assert rec["nodegroups"][2]["flavor_id"] == "g1" and rec["master_flavor_id"] == "m1.small"
    assert rec["health_status"] == "UNKNOWN" and rec["create_timeout"] == 60


def test_missing_flavor_is_refused():
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(), None, template(flavor_id=None))
    assert err.value.field == "flavor_id"


def test_rerun_changes_nothing():
    rec = created()
    p = lc.plan(desired(), rec, template())
    assert p["operation"] == "none" and p["action"] is None and p["changes"] == []


@pytest.mark.parametrize("broken", ["MISSING", "ERROR"])
def test_rerun_repairs_nodes_the_last_sync_found_missing_or_in_error(broken):
    rec = created(node_count=2)
    workers = next(ng for ng in rec["nodegroups"] if ng["name"] == "default-worker")
    workers["nodes"][1]["status"] = broken
    p = lc.plan(desired(node_count=2), rec, template())
    assert p["operation"] == "update" and p["action"] == "resize"
    assert p["changes"] == [dict(field="repair", before=["demo-default-worker-1"], after="replaced")]
    assert p["nodegroups"]["default-worker"] == dict(before=2, after=2, add=0, remove=[])
    lc.check_transition(rec, p["action"])  # allowed from CREATE_COMPLETE
    # a failed cluster is retried (its own operation), not "repaired"; a healthy one has nothing to do
    assert lc.plan(desired(node_count=2), dict(rec, status="CREATE_FAILED"), template())["changes"] == []
    workers["nodes"][1]["status"] = "ACTIVE"
    assert lc.plan(desired(node_count=2), rec, template())["operation"] == "none"


def test_which_records_are_observed_before_planning():
    rec = created(node_count=2)
    assert lc.observes_before_planning(rec, "present")
    assert lc.observes_before_planning(dict(rec, status="UPDATE_FAILED"), "present")
    # a create, a delete, an operation in progress, a cluster being deleted: the record decides
    assert not lc.observes_before_planning(None, "present")
    assert not lc.observes_before_planning(rec, "absent")
    for status in ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS", "DELETE_FAILED"):
        assert not lc.observes_before_planning(dict(rec, status=status), "present"), status
    # a failed create: observed once the cloud has shown something of it, not before
    assert lc.observes_before_planning(dict(rec, status="CREATE_FAILED"), "present")
    blank = dict(rec, status="CREATE_FAILED", stack_id=None)
    blank["nodegroups"] = [dict(ng, nodes=[]) for ng in rec["nodegroups"]]
    assert not lc.observes_before_planning(blank, "present")
    assert lc.observes_before_planning(dict(blank, stack_id="stack-1"), "present")


def test_resize_and_remove_named_nodes():
    rec = created(node_count=3)
    p = lc.plan(desired(node_count=2, nodes_to_remove=["demo-default-worker-0"]), rec, template())
    assert p["operation"] == "update" and p["action"] == "resize"
    assert p["nodegroups"]["default-worker"] == dict(before=3, after=2, add=0, remove=["demo-default-worker-0"])
    new = lc.apply_plan(rec, p, NOW)
    assert new["status"] == "UPDATE_IN_PROGRESS" and new["removed_nodes"] == ["demo-default-worker-0"]
    # the same play again, once done: nothing to do, the removed node is not "unknown"
    new["status"] = "UPDATE_COMPLETE"
    again = lc.plan(desired(node_count=2, nodes_to_remove=["demo-default-worker-0"]), new, template())
    assert again["operation"] == "none"


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(node_count=2, nodes_to_remove=["demo-default-worker-9"]), "does not exist"),
        (dict(node_count=2, nodes_to_remove=["demo-master-0"]), "master"),
        (dict(node_count=2, nodes_to_remove=["demo-default-worker-0", "demo-default-worker-1"]), "drops by 1"),
        (dict(nodes_to_remove=["demo-default-worker-0"]), "drops by 0"),
    ],
)
def test_bad_nodes_to_remove(kw, needle):
    rec = created(node_count=3)
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(**kw), rec, template())
    assert err.value.field == "nodes_to_remove" and needle in str(err.value)


def test_update_labels_and_nodegroups():
    rec = created()
    p = lc.plan(desired(labels={"new": "1"}), rec, template())
    assert p["action"] == "update" and p["changes"][0]["field"] == "labels"
    p = lc.plan(desired(nodegroups=[{"name": "gpu", "node_count": 2}]), rec, template())
    assert p["action"] == "update" and p["nodegroups"]["gpu"] == dict(before=0, after=2, add=2, remove=[])


def test_existing_cluster_keeps_what_is_not_said():
    rec = created(master_count=3, node_count=4, labels={"a": "b"})
    p = lc.plan(dict(state="present", name="demo", project_id="p1"), rec, template())
    assert p["operation"] == "none"


def test_upgrade_plan_and_what_may_not_change():
    rec = created(node_count=2)
    p = lc.plan(desired(), rec, template(2))
    assert (p["operation"], p["from_version"], p["to_version"]) == ("upgrade", 1, 2)
    new = lc.apply_plan(rec, p, NOW)
    assert new["image_id"] == "img-2" and new["previous_template_version"] == 1
    assert new["labels"]["kube_tag"] == "v1.2" and new["status"] == "UPDATE_IN_PROGRESS"
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(node_count=5), rec, template(2))
    assert err.value.field == "cluster_template_version" and "node_count" in str(err.value)
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(), rec, template(2, driver="nova"))
    assert err.value.field == "cluster_template"
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(master_count=3), rec, template())
    assert err.value.field == "master_count"
    with pytest.raises(ValidationError) as err:
        lc.plan(desired(flavor_id="m1.huge"), rec, template())
    assert err.value.field == "flavor_id"


def test_failed_upgrade_retry_and_rollback():
    rec = created(node_count=2)
    p = lc.plan(desired(template_version=2), rec, template(2))
    rec = dict(lc.apply_plan(rec, p, NOW), status="UPDATE_FAILED")
    retry = lc.plan(desired(), rec, template(2))
    assert retry["operation"] == "upgrade" and retry["retry"] is True and retry["to_version"] == 2
    lc.check_transition(rec, retry["action"], retry=True, target=("k8s", 2))
    back = lc.plan(desired(), rec, template(1))
    assert back["operation"] == "upgrade" and back["to_version"] == 1
    lc.check_transition(rec, back["action"], target=("k8s", 1))
    onward = lc.plan(desired(), rec, template(3))
    with pytest.raises(StateError):
        lc.check_transition(rec, onward["action"], target=("k8s", 3))


def test_retry_from_failed_and_resume_in_progress():
    rec = created(status="CREATE_FAILED")
    p = lc.plan(desired(), rec, template())
    assert p["action"] == "create" and p["retry"]
    with pytest.raises(StateError) as err:
        lc.check_transition(rec, p["action"], retry=True)
    assert "CREATE_FAILED" in str(err.value) and "delete" in str(err.value)
    rec = created(status="CREATE_IN_PROGRESS")
    rec["operation"] = "create"
    p = lc.plan(desired(), rec, template())
    assert p["operation"] == "create" and p["retry"]
    lc.check_transition(rec, p["action"], retry=True)


def test_a_runner_failure_fails_the_operation_and_re_running_it_stays_allowed():
    rec = created(status="CREATE_IN_PROGRESS")
    rec["operation"] = "create"
    rec["nodegroups"][1]["status"] = "CREATE_IN_PROGRESS"
    failed, message = lc.fail_in_progress(rec, "  Couldn't create stack: 503\n", NOW + 5)
    assert failed["status"] == "CREATE_FAILED" and failed["status_reason"] == "Couldn't create stack: 503"
    assert failed["nodegroups"][1]["status"] == "CREATE_FAILED" and failed["status_updated_at"] == iso(NOW + 5)
    assert failed["faults"]["driver"] == "Couldn't create stack: 503"  # the cloud's words, in faults too
    assert "Couldn't create stack: 503" in message
    assert lc.fail_in_progress(failed, "again", NOW) == (failed, None)  # settled: nothing to do
    assert len(lc.fail_in_progress(rec, "x" * 10000, NOW)[0]["status_reason"]) == lc.MAX_REASON

    # re-running the create, unchanged, is allowed; a create from a CREATE_FAILED the cloud gave is not
    p = lc.plan(desired(), failed, template())
    assert p["action"] == "create" and p["retry"]
    lc.check_transition(failed, "create", retry=True)
    with pytest.raises(StateError):
        lc.check_transition(dict(failed, runner_failure=False), "create", retry=True)
    again = lc.apply_plan(failed, p, NOW + 10)
    assert again["status"] == "CREATE_IN_PROGRESS" and "runner_failure" not in again

    # an update (labels) likewise, but only that same update: nothing else from UPDATE_FAILED
    rec = created()
    p = lc.plan(desired(labels={"team": "blue"}), rec, template())
    rec = lc.apply_plan(rec, p, NOW)
    failed = lc.fail_in_progress(rec, "module error", NOW)[0]
    assert failed["status"] == "UPDATE_FAILED"
    retry = lc.plan(desired(labels={"team": "blue"}), failed, template())
    assert retry["action"] == "update" and retry["retry"]
    lc.check_transition(failed, "update", retry=True)
    other = lc.plan(desired(labels={"team": "red"}), failed, template())
    with pytest.raises(StateError):
        lc.check_transition(failed, other["action"], retry=other["retry"])
    # the cloud reporting a status clears the mark
    seen = lc.merge_observation(failed, Observation(uuid="u-1", exists=True, status="UPDATE_COMPLETE"), NOW)[0]
    assert seen["status"] == "UPDATE_COMPLETE" and "runner_failure" not in seen


def test_delete_plan():
    assert lc.plan(dict(state="absent", name="demo", project_id="p"), None, None)["operation"] == "none"
    rec = created()
    p = lc.plan(dict(state="absent", name="demo", project_id="p"), rec, None)
    assert p["operation"] == "delete" and not p["retry"]
    new = lc.apply_plan(rec, p, NOW)
    assert new["status"] == "DELETE_IN_PROGRESS" and new["operation"] == "delete"
    assert lc.plan(dict(state="absent", name="demo", project_id="p"), new, None)["retry"] is True


# -- observations --------------------------------------------------------------


def obs(**kw):
    return Observation(**dict(dict(uuid="u-1", exists=True), **kw))


def test_observation_writes_status_addresses_and_nodes():
    rec = created(status="CREATE_IN_PROGRESS")
    new, msg = lc.merge_observation(
        rec,
        obs(
            status="CREATE_COMPLETE",
            api_address="https://10.0.0.5:6443",
            master_addresses=["10.0.0.5"],
            node_addresses=["10.0.0.6"],
            stack_id="s-1",
            health_status="HEALTHY",
            nodegroups={
                "default-worker": {
                    "status": "CREATE_COMPLETE",
                    "nodes": [{"name": "demo-default-worker-0"}],
                    "node_count": 1,
                }
            },
        ),
        NOW + 10,
    )
    assert new["status"] == "CREATE_COMPLETE" and "CREATE_COMPLETE" in msg
    assert new["api_address"] == "https://10.0.0.5:6443" and new["stack_id"] == "s-1"
    assert new["health_status"] == "HEALTHY"
    worker = new["nodegroups"][1]
    assert worker["status"] == "CREATE_COMPLETE" and worker["observed_node_count"] == 1
    assert worker["node_count"] == rec["nodegroups"][1]["node_count"]  # desired stays


def test_stale_terminal_status_of_another_operation_is_ignored():
    rec = created(status="UPDATE_IN_PROGRESS")
    new, msg = lc.merge_observation(rec, obs(status="CREATE_COMPLETE"), NOW + 5)
    assert new["status"] == "UPDATE_IN_PROGRESS" and msg is None
    new, msg = lc.merge_observation(rec, obs(status="UPDATE_FAILED", status_reason="quota"), NOW + 5)
    assert new["status"] == "UPDATE_FAILED" and new["status_reason"] == "quota"


def test_nothing_left_completes_a_delete_and_is_drift_otherwise():
    rec = created(status="DELETE_IN_PROGRESS")
    new = lc.merge_observation(rec, obs(exists=False), NOW + 5)[0]
    assert new["status"] == "DELETE_COMPLETE"
    rec = created(status="CREATE_COMPLETE")
    new = lc.merge_observation(rec, obs(exists=False), NOW + 5)[0]
    assert new["status"] == "CREATE_COMPLETE" and new["health_status"] == "UNHEALTHY"


@pytest.mark.parametrize("status", ["CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "DELETE_IN_PROGRESS"])
def test_stuck_operation_fails_after_the_timeout(status):
    rec = created(status=status, timeout=600)
    rec["status_updated_at"] = iso(NOW)
    same, msg = lc.merge_observation(rec, obs(), NOW + 599)
    assert same["status"] == status and msg is None
    new, msg = lc.merge_observation(rec, obs(), NOW + 601)
    assert new["status"] == status.replace("IN_PROGRESS", "FAILED")
    assert "timed out" in new["status_reason"] and "600 s" in new["status_reason"] and msg == new["status_reason"]


def test_unknown_observed_status_is_an_error():
    with pytest.raises(ValidationError):
        lc.merge_observation(created(), obs(status="ALMOST_DONE"), NOW)


def test_observed_nodegroup_details_kept_and_last_index_only_grows():
    rec = created(status="CREATE_COMPLETE", node_count=2)
    seen = {"default-worker": {"status": "CREATE_COMPLETE", "last_index": 5, "counts": {"ACTIVE": 2}}}
    new = lc.merge_observation(rec, obs(status="CREATE_COMPLETE", nodegroups=seen), NOW)[0]
    worker = new["nodegroups"][1]
    assert worker["last_index"] == 5 and worker["counts"] == {"ACTIVE": 2}
    seen["default-worker"]["last_index"] = 2  # a node with a high index was deleted out of band
    newer = lc.merge_observation(new, obs(status="CREATE_COMPLETE", nodegroups=seen), NOW)[0]
    assert newer["nodegroups"][1]["last_index"] == 5
    # a later plan keeps what was observed on the nodegroups
    p = lc.plan(desired(node_count=3), newer, template())
    assert lc.apply_plan(newer, p, NOW)["nodegroups"][1]["last_index"] == 5


def test_record_carries_magnum_network_fields_of_the_template():
    rec = created(tpl=template(fixed_network="private", floating_ip_enabled=False, docker_volume_size=20))
    assert rec["fixed_network"] == "private" and rec["floating_ip_enabled"] is False
    assert rec["docker_volume_size"] == 20 and rec["template"]["fixed_network"] == "private"


def test_settings_alone_are_recorded_without_an_operation():
    rec = created(timeout=3600, upgrade_batch_size=1)
    for kw in (dict(timeout=7200), dict(upgrade_batch_size=3), dict(timeout=600, upgrade_batch_size=2)):
        p = lc.plan(desired(**kw), rec, template())
        assert p["operation"] == "none" and p["action"] is None
        assert {c["field"] for c in p["changes"]} == set(kw)
        new = lc.apply_plan(rec, p, NOW)
        assert all(new[k] == v for k, v in kw.items()) and new["status"] == rec["status"]
    # with a real change, the settings ride along with it
    p = lc.plan(desired(node_count=4, timeout=7200), rec, template())
    assert p["action"] == "resize" and lc.apply_plan(rec, p, NOW)["timeout"] == 7200


def test_an_observation_never_rewrites_the_desired_nodegroup_shape():
    rec = created(status="CREATE_COMPLETE", node_count=2)
    seen = {
        "default-worker": {"status": "CREATE_COMPLETE", "flavor_id": "other", "labels": {"x": "y"}, "node_count": 1}
    }
    new = lc.merge_observation(rec, obs(status="CREATE_COMPLETE", nodegroups=seen), NOW)[0]
    worker = new["nodegroups"][1]
    assert worker["flavor_id"] == "m1.small" and worker["labels"] == rec["nodegroups"][1]["labels"]
    assert worker["node_count"] == 2 and worker["observed_node_count"] == 1
    assert lc.plan(desired(), new, template())["operation"] == "none"


# -- the API endpoint ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,expected",
    [
        (dict(external_network_id="public"), True),  # Magnum's default
        (dict(external_network_id="public", floating_ip_enabled=False), False),
        ({}, False),
    ],
)
def test_create_records_whether_the_api_is_a_floating_ip(spec, expected):
    rec = lc.apply_plan(None, lc.plan(desired(), None, template(**spec)), NOW)
    assert rec["floating_ip_enabled"] is expected


def test_a_floating_ip_without_external_network_is_refused_when_planning():
    with pytest.raises(ValidationError) as e:
        lc.plan(desired(), None, template(floating_ip_enabled=True))
    assert e.value.field == "external_network_id"


def test_the_api_endpoint_kind_is_fixed_at_create():
    """An upgrade to a template that says otherwise keeps the cluster's endpoint (and a record
    written before the rule keeps its unset value: the driver then keeps what the cloud has)."""
    rec = created(tpl=template(external_network_id="public"))
    assert rec["floating_ip_enabled"] is True
    later = template(2, external_network_id="public", floating_ip_enabled=False)
    p = lc.plan(desired(template_name="k8s", template_version=2), rec, later)
    assert p["action"] == "upgrade"
    assert lc.apply_plan(rec, p, NOW + 10)["floating_ip_enabled"] is True
    old = dict(rec, floating_ip_enabled=None)
    assert (
        lc.apply_plan(old, lc.plan(desired(node_count=3), old, template(external_network_id="public")), NOW)[
            "floating_ip_enabled"
        ]
        is None
    )


@pytest.mark.parametrize(
    "masters,spec,kind",
    [
        (1, {}, "master"),
        (3, {}, "vip"),
        (3, dict(master_lb_enabled=False), "vip"),
        (1, dict(master_lb_enabled=True), "load_balancer"),
        (3, dict(master_lb_enabled=True), "load_balancer"),
    ],
)
def test_create_records_what_carries_the_api(masters, spec, kind):
    rec = lc.apply_plan(None, lc.plan(desired(master_count=masters), None, template(**spec)), NOW)
    assert rec["api_endpoint"] == kind
    assert rec["master_lb_enabled"] is (kind == "load_balancer")


def test_what_carries_the_api_never_changes():
    rec = created(tpl=template(), master_count=3)
    assert rec["api_endpoint"] == "vip"
    # a template version that turns the load balancer on is refused, naming the field
    with pytest.raises(ValidationError) as e:
        lc.plan(desired(template_name="k8s", template_version=2), rec, template(2, master_lb_enabled=True))
    assert e.value.field == "master_lb_enabled"
    assert "a VIP" in e.value.reason and "create a new cluster" in e.value.reason
    # one that says nothing of it keeps the VIP
    p = lc.plan(desired(template_name="k8s", template_version=2), rec, template(2))
    assert lc.apply_plan(rec, p, NOW + 10)["api_endpoint"] == "vip"
    # a record written before the rule keeps its single master's endpoint, whatever the template says
    old = {k: v for k, v in rec.items() if k != "api_endpoint"}
    p = lc.plan(desired(node_count=3), old, template(master_lb_enabled=True))
    assert lc.apply_plan(old, p, NOW)["api_endpoint"] == "master"


@pytest.mark.parametrize("given", ["10.0.0.5", "https://10.0.0.5:6443"])
def test_observed_api_address_is_written_in_magnums_form(given):
    new, _msg = lc.merge_observation(created(), obs(api_address=given), NOW + 10)
    assert new["api_address"] == "https://10.0.0.5:6443"
