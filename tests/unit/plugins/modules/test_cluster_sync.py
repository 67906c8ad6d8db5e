"""coe.openstack.cluster_sync: observe by driver, CAS writes, events, stuck detection, fencing."""

import coe_helpers

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
    assert drivers["classes"]["heat"].calls == [[a["uuid"], b["uuid"]]]
    assert drivers["classes"]["nova"].calls == [[n["uuid"]]]
    assert {c["status"] for c in coe("cluster_info")["clusters"]} == {"CREATE_COMPLETE"}


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
