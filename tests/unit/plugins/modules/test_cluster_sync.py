"""coe.openstack.cluster_sync: observe by driver, CAS writes, events, stuck detection, fencing."""

import coe_helpers
import pytest

from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import Observation

coe = coe_helpers.coe  # the fixture
drivers = coe_helpers.drivers  # the fixture


def _cluster(coe, name="demo", driver="heat", **extra):
    tpl = "k8s-%s" % driver
    coe("cluster_template", **dict(coe_helpers.TEMPLATE, name=tpl, driver=driver))
    res = coe("cluster", name=name, cluster_template=tpl, **extra)
    assert res["changed"], res
    return res["cluster"]


def test_observation_is_written_once_with_an_event(coe, drivers):
    c = _cluster(coe)
    drivers["heat"][c["uuid"]] = Observation(
        uuid=c["uuid"],
        exists=True,
        status="CREATE_COMPLETE",
        status_reason="Stack CREATE completed",
        api_address="https://192.0.2.10:6443",
        master_addresses=["192.0.2.10"],
        node_addresses=["192.0.2.11"],
        health_status="HEALTHY",
        stack_id="stack-1",
        nodegroups={
            "default-worker": {
                "status": "CREATE_COMPLETE",
                "nodes": [{"name": "demo-default-worker-0", "status": "ACTIVE"}],
            }
        },
    )
    check = coe("cluster_sync", check_mode=True, name="demo")
    assert check["changed"] and check["clusters"][0]["status"] == "CREATE_COMPLETE"
    assert coe.store().find_cluster("default", "demo")["status"] == "CREATE_IN_PROGRESS"

    res = coe("cluster_sync", name="demo")
    assert res["changed"]
    got = res["clusters"][0]
    assert got["status"] == "CREATE_COMPLETE" and got["api_address"] == "https://192.0.2.10:6443"
    assert got["health_status"] == "HEALTHY" and got["stack_id"] == "stack-1" and got["generation"] == 2
    assert got["nodegroups"][1]["nodes"][0]["name"] == "demo-default-worker-0"
    events = coe.store().list_events(cluster_uuid=c["uuid"])
    assert (events[-1]["from_status"], events[-1]["to_status"]) == ("CREATE_IN_PROGRESS", "CREATE_COMPLETE")

    again = coe("cluster_sync", name="demo")
    assert not again["changed"] and again["clusters"][0]["generation"] == 2
    assert len(coe.store().list_events(cluster_uuid=c["uuid"])) == len(events)


def test_all_clusters_grouped_by_driver_one_call_each(coe, drivers):
    a = _cluster(coe, "alpha", "heat")
    b = _cluster(coe, "beta", "heat")
    n = _cluster(coe, "gamma", "nova")
    for d, c in (("heat", a), ("heat", b), ("nova", n)):
        drivers[d][c["uuid"]] = dict(exists=True, status="CREATE_COMPLETE")
    res = coe("cluster_sync")
    assert res["changed"] and sorted(c["name"] for c in res["clusters"]) == ["alpha", "beta", "gamma"]
    # one call per driver for every cluster, and one more for those it just completed (they
    # are read again as settled clusters: what the next sync would see), whatever their number
    assert drivers["classes"]["heat"].calls == [[a["uuid"], b["uuid"]], [a["uuid"], b["uuid"]]]
    assert drivers["classes"]["nova"].calls == [[n["uuid"]], [n["uuid"]]]
    assert {c["status"] for c in coe("cluster_info")["clusters"]} == {"CREATE_COMPLETE"}
    # settled now: the next sync is one call per driver again
    coe("cluster_sync")
    assert len(drivers["classes"]["heat"].calls) == 3 and len(drivers["classes"]["nova"].calls) == 3


def test_complete_clusters_are_synced_too_drift_is_seen(coe, drivers):
    c = _cluster(coe)
    drivers["heat"][c["uuid"]] = dict(exists=True, status="CREATE_COMPLETE", health_status="HEALTHY")
    coe("cluster_sync")
    drivers["heat"][c["uuid"]] = dict(
        exists=True,
        status="CREATE_COMPLETE",
        health_status="UNHEALTHY",
        health_status_reason={"demo-default-worker-0": "server deleted"},
    )
    res = coe("cluster_sync")
    assert res["changed"] and res["clusters"][0]["health_status"] == "UNHEALTHY"


def test_stuck_in_progress_becomes_failed(coe, drivers):
    c = _cluster(coe, timeout=600)
    store = coe.store()
    rec = store.find_cluster("default", "demo")
    store.update_cluster(dict(rec, status_updated_at=iso(store.now() - 601)), rec["generation"])
    drivers["heat"][c["uuid"]] = dict(exists=True, status="CREATE_IN_PROGRESS")
    res = coe("cluster_sync", name="demo")
    got = res["clusters"][0]
    assert res["changed"] and got["status"] == "CREATE_FAILED"
    assert "timed out" in got["status_reason"] and "600 s" in got["status_reason"]
    assert store.list_events(cluster_uuid=c["uuid"])[-1]["to_status"] == "CREATE_FAILED"


def test_completed_delete_removes_the_record(coe, drivers):
    c = _cluster(coe)
    drivers["heat"][c["uuid"]] = dict(exists=True, status="CREATE_COMPLETE")
    coe("cluster_sync")
    coe("cluster", name="demo", state="absent")
    drivers["heat"][c["uuid"]] = dict(exists=False)
    res = coe("cluster_sync")
    assert res["changed"] and res["removed"] == ["demo"]
    assert res["clusters"][0]["status"] == "DELETE_COMPLETE"
    assert coe.store().find_cluster("default", "demo") is None
    assert coe.store().list_events(cluster_uuid=c["uuid"])[-1]["to_status"] == "DELETE_COMPLETE"


def test_lock_token_renews_and_a_stale_one_refuses(coe, drivers):
    c = _cluster(coe)
    drivers["heat"][c["uuid"]] = dict(exists=True, status="CREATE_COMPLETE")
    store = coe.store()
    locks = LockManager(store)
    lease = locks.acquire("default", "demo", "create", ttl=30)
    res = coe("cluster_sync", name="demo", lock_token=lease["token"], lock_ttl=900)
    assert res["changed"] and res["lock"]["token"] == lease["token"]
    assert res["lock"]["expires_at"] > lease["expires_at"]
    locks.break_lock("default", "demo", "test", actor={"user": "ops"})
    locks.acquire("default", "demo", "delete", ttl=30, holder="bob@ci")
    drivers["heat"][c["uuid"]] = dict(exists=True, status="UPDATE_IN_PROGRESS")
    res = coe("cluster_sync", name="demo", lock_token=lease["token"])
    assert res.failed and "stale" in res["msg"] and "bob@ci" in res["msg"]
    assert store.find_cluster("default", "demo")["status"] == "CREATE_COMPLETE"
    res = coe("cluster_sync", lock_token=lease["token"])
    assert res.failed and "name" in res["msg"]


def test_unknown_cluster(coe, drivers):
    res = coe("cluster_sync", name="ghost")
    assert res.failed and res["field"] == "name" and "ghost" in res["msg"]
    res = coe("cluster_sync")
    assert not res["changed"] and res["clusters"] == []


def test_what_a_synchroniser_scribbles_on_its_input_is_not_written(coe, drivers):
    c = _cluster(coe)

    def scribble(record):
        record["_private"] = "driver state"
        return Observation(uuid=record["uuid"], exists=True, status="CREATE_COMPLETE")

    drivers["heat"][c["uuid"]] = scribble
    res = coe("cluster_sync", name="demo")
    assert res["changed"] and "_private" not in res["clusters"][0]
    assert "_private" not in coe.store().find_cluster("default", "demo")


def _settle(coe, status="CREATE_COMPLETE"):
    store = coe.store()
    rec = store.find_cluster("default", "demo")
    store.update_cluster(dict(rec, status=status, status_reason=None), rec["generation"])


def _locked(coe, operation):
    return LockManager(coe.store()).acquire("default", "demo", operation, ttl=300)["token"]


def short_of_servers(record):
    """What the Nova synchroniser sees of a cluster whose servers were never asked for."""
    in_progress = record["status"].endswith("_IN_PROGRESS")
    return Observation(
        uuid=record["uuid"],
        exists=True,
        # the status is read from the servers only while an operation is recorded in progress
        status=record["status"] if in_progress else None,
        status_reason="default-worker: missing servers: 2 more" if in_progress else None,
        nodegroups={"default-worker": {"nodes": [{"name": "demo-default-worker-0", "status": "ACTIVE"}]}},
    )


DRIVER_ERROR = "Couldn't update stack demo-1234abcd: HttpException: 503: Service Unavailable"


def test_a_driver_failure_the_cloud_shows_no_work_for_is_recorded_failed_and_retried(coe, drivers):
    c = _cluster(coe, driver="nova")
    _settle(coe)
    assert coe("cluster", name="demo", node_count=3)["operation"] == "update"  # UPDATE_IN_PROGRESS
    # the update call failed: the cloud still has the old cluster, no server building
    drivers["nova"][c["uuid"]] = short_of_servers
    token = _locked(coe, "update")
    # without a reason, a sync leaves it in progress (the timeout would fail it)
    plain = coe("cluster_sync", name="demo", lock_token=token)
    assert plain["clusters"][0]["status"] == "UPDATE_IN_PROGRESS"
    store = coe.store()
    generation = store.find_cluster("default", "demo")["generation"]
    check = coe("cluster_sync", check_mode=True, name="demo", lock_token=token, fail_reason=DRIVER_ERROR)
    assert check["changed"] and check["clusters"][0]["status"] == "UPDATE_FAILED"
    assert store.find_cluster("default", "demo")["generation"] == generation  # check mode wrote nothing

    res = coe("cluster_sync", name="demo", lock_token=token, fail_reason=DRIVER_ERROR)
    got = res["clusters"][0]
    assert res["changed"] and got["status"] == "UPDATE_FAILED" and got["status_reason"] == DRIVER_ERROR
    event = store.list_events(cluster_uuid=c["uuid"])[-1]
    assert (event["from_status"], event["to_status"]) == ("UPDATE_IN_PROGRESS", "UPDATE_FAILED")
    assert DRIVER_ERROR in event["message"]
    assert got["faults"]["driver"] == DRIVER_ERROR  # the cloud's words the driver got, in faults too
    again = coe("cluster_sync", name="demo", lock_token=token, fail_reason=DRIVER_ERROR)
    assert not again["changed"]  # a settled status is left alone
    assert coe("cluster_sync", name="demo")["clusters"][0]["faults"]["driver"] == DRIVER_ERROR  # kept by a sync
    LockManager(store).release("default", "demo", token)

    # re-running the same play retries the update
    retry = coe("cluster", name="demo", node_count=3)
    assert retry["changed"] and retry["operation"] == "update" and retry["plan"]["retry"], retry
    assert retry["cluster"]["status"] == "UPDATE_IN_PROGRESS"


def test_a_failed_create_or_labels_update_the_cloud_never_failed_can_be_re_run(coe, drivers):
    # the table allows no create from CREATE_FAILED, nor an update (labels, nodegroups) from
    # UPDATE_FAILED; a failure of the runner, not of the cloud, stays retryable as it was resumable
    c = _cluster(coe, driver="nova")
    drivers["nova"][c["uuid"]] = dict(exists=False)
    token = _locked(coe, "create")
    res = coe("cluster_sync", name="demo", lock_token=token, fail_reason="module error")
    assert res["clusters"][0]["status"] == "CREATE_FAILED" and res["clusters"][0]["status_reason"] == "module error"
    LockManager(coe.store()).release("default", "demo", token)
    assert coe("cluster", name="demo", cluster_template="k8s-nova", node_count=2).failed  # another spec: no
    retry = coe("cluster", name="demo", cluster_template="k8s-nova")
    assert retry["changed"] and retry["operation"] == "create" and retry["cluster"]["status"] == "CREATE_IN_PROGRESS"

    _settle(coe)
    drivers["nova"][c["uuid"]] = dict(exists=True)
    assert coe("cluster", name="demo", labels={"team": "blue"})["plan"]["action"] == "update"
    token = _locked(coe, "update")
    res = coe("cluster_sync", name="demo", lock_token=token, fail_reason="module error")
    assert res["clusters"][0]["status"] == "UPDATE_FAILED"
    LockManager(coe.store()).release("default", "demo", token)
    retry = coe("cluster", name="demo", labels={"team": "blue"})
    assert retry["changed"] and retry["plan"]["action"] == "update" and retry["plan"]["retry"]

    # a failure the cloud reported itself follows the table: no update from UPDATE_FAILED
    drivers["nova"][c["uuid"]] = dict(exists=True, status="UPDATE_FAILED", status_reason="No valid host")
    coe("cluster_sync", name="demo")
    refused = coe("cluster", name="demo", labels={"team": "blue"})
    assert refused.failed and "not allowed from UPDATE_FAILED" in refused["msg"], refused


@pytest.mark.parametrize(
    "driver, seen",
    [
        # Heat still carries out the stack update
        ("heat", dict(exists=True, status="UPDATE_IN_PROGRESS", stack_id="stack-1")),
        # a server is still building
        (
            "nova",
            dict(
                exists=True,
                status="UPDATE_IN_PROGRESS",
                nodegroups={"default-worker": {"nodes": [{"name": "demo-default-worker-1", "status": "BUILD"}]}},
            ),
        ),
    ],
)
def test_a_cluster_the_cloud_still_works_on_stays_in_progress(coe, drivers, driver, seen):
    c = _cluster(coe, driver=driver)
    _settle(coe)
    coe("cluster", name="demo", node_count=2)
    drivers[driver][c["uuid"]] = seen
    token = _locked(coe, "update")
    res = coe("cluster_sync", name="demo", lock_token=token, fail_reason="module error")
    assert res["clusters"][0]["status"] == "UPDATE_IN_PROGRESS"
    assert res["clusters"][0]["status_reason"] != "module error"


def test_fail_reason_needs_the_lock_and_a_stale_token_writes_nothing(coe, drivers):
    c = _cluster(coe)
    drivers["heat"][c["uuid"]] = dict(exists=True)
    res = coe("cluster_sync", name="demo", fail_reason="module error")
    assert res.failed and "lock_token" in res["msg"]
    token = _locked(coe, "create")
    locks = LockManager(coe.store())
    locks.break_lock("default", "demo", "test", actor={"user": "ops"})
    locks.acquire("default", "demo", "delete", ttl=30, holder="bob@ci")
    res = coe("cluster_sync", name="demo", lock_token=token, fail_reason="module error")
    assert res.failed and "stale" in res["msg"]
    assert coe.store().find_cluster("default", "demo")["status"] == "CREATE_IN_PROGRESS"


def test_watch_returns_at_the_end_of_the_operation_and_release_frees_the_lock(coe, drivers):
    c = _cluster(coe)
    seen = []

    def finishing(record):
        seen.append(record["status"])
        status = "CREATE_COMPLETE" if len(seen) > 1 else "CREATE_IN_PROGRESS"
        return Observation(uuid=c["uuid"], exists=True, status=status)

    drivers["heat"][c["uuid"]] = finishing
    store = coe.store()
    lease = LockManager(store).acquire("default", "demo", "create", ttl=120)
    res = coe("cluster_sync", name="demo", lock_token=lease["token"], watch=30, release=True)
    assert not res.failed, res.get("msg")
    assert res["clusters"][0]["status"] == "CREATE_COMPLETE" and res["lock_released"] is True
    assert LockManager(store).get("default", "demo")["holder"] is None
    # bad options are refused before anything is read or written
    generation = store.find_cluster("default", "demo")["generation"]
    for bad, word in ((dict(watch=30), "name"), (dict(name="demo", watch=50, lock_token=9), "lock_ttl")):
        res = coe("cluster_sync", **bad)
        assert res.failed and word in res["msg"], res
    res = coe("cluster_sync", name="demo", release=True)
    assert res.failed and "lock_token" in res["msg"]
    assert store.find_cluster("default", "demo")["generation"] == generation
    assert len(seen) == 3  # the watch's two observations and the settle; the bad calls observed nothing
