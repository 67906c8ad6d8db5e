"""The Nova synchroniser: one list for all clusters, status, faults, health (drift)."""

import copy
import importlib
import os
import sys

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import lifecycle, shape
from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import NovaSynchroniser


def FakeCloud(**kw):
    """The nova tests' fake connection (tests/unit/plugins/module_utils/nova/fakecloud.py)."""
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nova")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("fakecloud").FakeCloud(**kw)


U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"


def record(uuid, name, status="CREATE_COMPLETE", masters=1, workers=2, nodes=None, image_id=None):
    nodes = nodes or {}
    return dict(
        uuid=uuid,
        name=name,
        status=status,
        master_count=masters,
        node_count=workers,
        image_id=image_id,
        nodegroups=[
            dict(
                name="default-master",
                role="master",
                node_count=masters,
                nodes=[{"name": n} for n in nodes.get("m", [])],
            ),
            dict(
                name="default-worker",
                role="worker",
                node_count=workers,
                nodes=[{"name": n} for n in nodes.get("w", [])],
            ),
        ],
    )


def add(cloud, uuid, name, nodegroup, role, status="ACTIVE", fault=None, image="fake-image"):
    return cloud.add_server(
        name,
        status=status,
        tags=[shape.COMMON_TAG, shape.cluster_tag(uuid)],
        metadata={"coe_cluster_uuid": uuid, "coe_nodegroup": nodegroup, "coe_role": role},
        fault=fault,
        image=image,
    )


def healthy_cluster(cloud, uuid, name, workers=2):
    add(cloud, uuid, "%s-master-1" % name, "default-master", "master")
    for i in range(1, workers + 1):
        add(cloud, uuid, "%s-default-worker-%d" % (name, i), "default-worker", "worker")


def known(name, workers=2):
    return {"m": ["%s-master-1" % name], "w": ["%s-default-worker-%d" % (name, i) for i in range(1, workers + 1)]}


def test_two_list_calls_whatever_the_number_of_clusters():
    cloud = FakeCloud()
    records = []
    for i in range(30):
        uuid = "%08d-1111-4111-8111-111111111111" % i
        healthy_cluster(cloud, uuid, "c%d" % i)
        records.append(record(uuid, "c%d" % i))
    result = NovaSynchroniser(cloud).observe(records)
    assert len(result) == 30
    assert cloud.count() == 2
    # made at once: in either order
    assert sorted(c[1:] for c in cloud.calls) == [
        ("ips", {"tags": shape.COMMON_TAG}),
        ("servers", {"details": True, "tags": shape.COMMON_TAG}),
    ]
    assert all(o.health_status == "HEALTHY" for o in result.values())


def test_complete_when_counts_match_with_addresses():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", status="CREATE_IN_PROGRESS")])[U1]
    assert obs.exists
    assert obs.status == "CREATE_COMPLETE"
    assert obs.health_status == "HEALTHY"
    assert len(obs.master_addresses) == 1 and len(obs.node_addresses) == 2
    assert obs.api_address == "https://%s:6443" % obs.master_addresses[0]
    assert obs.nodegroups["default-worker"]["node_count"] == 2
    assert [n["name"] for n in obs.nodegroups["default-worker"]["nodes"]] == [
        "k1-default-worker-1",
        "k1-default-worker-2",
    ]


def test_in_progress_while_building():
    cloud = FakeCloud(polls_to_active=10)
    add(cloud, U1, "k1-master-1", "default-master", "master")
    add(cloud, U1, "k1-default-worker-1", "default-worker", "worker", status="BUILD")
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", status="CREATE_IN_PROGRESS", workers=1)])[U1]
    assert obs.status == "CREATE_IN_PROGRESS"
    assert obs.health_status == "UNKNOWN"
    assert obs.nodegroups["default-worker"]["status"] == "CREATE_IN_PROGRESS"
    assert obs.nodegroups["default-master"]["status"] == "CREATE_COMPLETE"


def test_failed_with_novas_fault_when_a_server_is_in_error():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1", workers=1)
    add(
        cloud,
        U1,
        "k1-default-worker-2",
        "default-worker",
        "worker",
        status="ERROR",
        fault={"code": 500, "message": "No valid host was found. "},
    )
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", status="UPDATE_IN_PROGRESS")])[U1]
    assert obs.status == "UPDATE_FAILED"
    assert obs.faults == {"k1-default-worker-2": "No valid host was found. (code 500)"}
    assert "No valid host was found" in obs.status_reason
    assert obs.health_status == "UNHEALTHY"


@pytest.mark.parametrize("listed", [False, True], ids=["gone", "still-listed-deleted"])
def test_a_server_deleted_behind_our_back_is_named_as_missing(listed):
    """Also while Nova still lists it with status DELETED (servers.live)."""
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1", workers=3)
    gone = next(s for s in cloud.servers.values() if s.name == "k1-default-worker-2")
    if listed:
        gone.status, gone.forget_in = "DELETED", 5
    else:
        del cloud.servers[gone.id]
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", workers=3, nodes=known("k1", 3))])[U1]
    assert obs.status is None  # a stable cluster keeps its status
    assert obs.health_status == "UNHEALTHY"
    assert obs.health_status_reason == {"default-worker": "missing servers: k1-default-worker-2"}
    # the record keeps the missing node's name (a later sync names it again, a repair recreates it)
    nodes = {n["name"]: n["status"] for n in obs.nodegroups["default-worker"]["nodes"]}
    assert nodes == {"k1-default-worker-1": "ACTIVE", "k1-default-worker-3": "ACTIVE", "k1-default-worker-2": "MISSING"}
    assert obs.nodegroups["default-worker"]["node_count"] == 2
    rec = record(U1, "k1", workers=3, nodes={"m": ["k1-master-1"], "w": list(nodes)})
    again = NovaSynchroniser(cloud).observe([rec])[U1]
    assert again.health_status_reason == {"default-worker": "missing servers: k1-default-worker-2"}


def test_unexpected_servers_are_named():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1", workers=2)
    add(cloud, U1, "k1-default-worker-9", "default-worker", "worker")
    add(cloud, U1, "k1-gpu-1", "gpu", "worker")
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", nodes=known("k1"))])[U1]
    assert obs.health_status == "UNHEALTHY"
    assert obs.health_status_reason == {
        "default-worker": "unexpected servers: k1-default-worker-9",
        "k1-gpu-1": "unexpected server (nodegroup gpu is not in the cluster)",
    }


def test_clusters_are_kept_apart_and_a_cluster_with_nothing_left():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    result = NovaSynchroniser(cloud).observe([record(U1, "k1"), record(U2, "k2", status="DELETE_IN_PROGRESS")])
    assert result[U1].exists and result[U1].health_status == "HEALTHY"
    assert not result[U2].exists
    assert result[U2].status == "DELETE_COMPLETE"


def test_delete_in_progress_while_servers_are_left():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", status="DELETE_IN_PROGRESS")])[U1]
    assert obs.status == "DELETE_IN_PROGRESS"


def test_upgrade_in_progress_until_every_server_runs_the_new_image():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1", workers=1)
    old, new = "aaaaaaaa-0000-4000-8000-000000000001", "bbbbbbbb-0000-4000-8000-000000000002"
    for server in cloud.servers.values():
        server.image.id = old
    rec = record(U1, "k1", status="UPDATE_IN_PROGRESS", workers=1, image_id=new)
    obs = NovaSynchroniser(cloud).observe([rec])[U1]
    assert obs.status == "UPDATE_IN_PROGRESS"
    for server in cloud.servers.values():
        server.image.id = new
    obs = NovaSynchroniser(cloud).observe([rec])[U1]
    assert obs.status == "UPDATE_COMPLETE"


@pytest.mark.parametrize("status", ["SHUTOFF", "ERROR"])
def test_stable_cluster_with_a_broken_server_is_unhealthy(status):
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1", workers=1)
    add(
        cloud, U1, "k1-default-worker-2", "default-worker", "worker", status=status, fault={"code": 500, "message": "x"}
    )
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1", nodes=known("k1"))])[U1]
    assert obs.status is None
    assert obs.health_status == "UNHEALTHY"
    assert "k1-default-worker-2" in obs.health_status_reason["default-worker"]


def test_api_address_is_the_floating_ip_when_there_is_one():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    master = next(s for s in cloud.servers.values() if s.name == "k1-master-1")
    master.addresses["private"].append({"addr": "172.24.4.50", "OS-EXT-IPS:type": "floating"})
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1")])[U1]
    assert obs.api_address == "https://172.24.4.50:6443"
    assert obs.master_addresses == [master.addresses["private"][0]["addr"]]
    assert obs.nodegroups["default-master"]["nodes"][0]["addresses"] == [
        "172.24.4.50",
        master.addresses["private"][0]["addr"],
    ]


def test_api_address_is_the_tagged_floating_ip_before_nova_shows_it():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    fip = cloud.network.create_ip(floating_network_id="net-ext")
    cloud.network.set_tags(fip, [shape.COMMON_TAG, shape.cluster_tag(U1)])
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1")])[U1]
    assert obs.api_address == "https://%s:6443" % fip.floating_ip_address


def test_a_floating_ip_neutron_attached_counts_before_nova_shows_it():
    """Neutron names the server a floating IP is on (fip-port-details) before Nova's view of the
    server's addresses follows: the observation records it at once, as the next one would."""
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    master = next(s for s in cloud.servers.values() if s.name == "k1-master-1")
    fip = cloud.network.create_ip(floating_network_id="net-ext")
    cloud.network.set_tags(fip, [shape.COMMON_TAG, shape.cluster_tag(U1)])
    # attached through a port Nova does not list yet
    fip.port_id, fip.port_details = "port-new", dict(device_id=master.id)
    obs = NovaSynchroniser(cloud).observe([record(U1, "k1")])[U1]
    assert obs.nodegroups["default-master"]["nodes"][0]["addresses"] == [
        fip.floating_ip_address,
        master.addresses["private"][0]["addr"],
    ]
    assert obs.api_address == "https://%s:6443" % fip.floating_ip_address


def test_replay_answers_from_the_last_reads():
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    sync = NovaSynchroniser(cloud)
    rec = dict(record(U1, "k1", status="CREATE_IN_PROGRESS"), timeout=3600)
    first = sync.observe([copy.deepcopy(rec)])[U1]
    calls = cloud.count()
    completed, _message = lifecycle.merge_observation(rec, first, 1000)
    sync.replay = True
    again = sync.observe([copy.deepcopy(completed)])[U1]
    assert cloud.count() == calls
    assert again.exists and again.master_addresses == first.master_addresses
    sync.replay = False
    sync.observe([copy.deepcopy(completed)])
    assert cloud.count() == 2 * calls


def test_observing_a_completed_cluster_again_changes_nothing():
    """The poll that sees a create complete records what a later sync would: the front door
    observes once after a driver that waited, and a re-run finds nothing to write."""
    cloud = FakeCloud()
    healthy_cluster(cloud, U1, "k1")
    sync = NovaSynchroniser(cloud)
    rec = dict(record(U1, "k1", status="CREATE_IN_PROGRESS"), timeout=3600)
    completed, message = lifecycle.merge_observation(rec, sync.observe([copy.deepcopy(rec)])[U1], 1000)
    assert completed["status"] == "CREATE_COMPLETE" and message.startswith("observed CREATE_COMPLETE")
    assert [ng["status"] for ng in completed["nodegroups"]] == ["CREATE_COMPLETE", "CREATE_COMPLETE"]
    again, message = lifecycle.merge_observation(completed, sync.observe([copy.deepcopy(completed)])[U1], 1005)
    assert again == completed and message is None


def test_a_nodegroup_left_in_progress_ends_as_its_cluster_did():
    """A cluster whose operation timed out (CREATE_FAILED) does not keep a nodegroup CREATE_IN_PROGRESS."""
    cloud = FakeCloud(polls_to_active=10)
    add(cloud, U1, "k1-master-1", "default-master", "master")
    add(cloud, U1, "k1-default-worker-1", "default-worker", "worker", status="BUILD")
    rec = record(U1, "k1", status="CREATE_FAILED", workers=1)
    rec["nodegroups"][0]["status"] = "CREATE_COMPLETE"
    rec["nodegroups"][1]["status"] = "CREATE_IN_PROGRESS"
    obs = NovaSynchroniser(cloud).observe([rec])[U1]
    assert obs.status is None
    assert obs.nodegroups["default-master"]["status"] == "CREATE_COMPLETE"
    assert obs.nodegroups["default-worker"]["status"] == "CREATE_FAILED"


def _all_gone_record(status="CREATE_COMPLETE"):
    """A record as syncs leave it (known nodes), for a cluster whose servers are all gone."""
    rec = record(U1, "k1", status=status, workers=2, nodes=known("k1", 2))
    rec.update(api_address="172.24.4.10", master_addresses=["10.0.0.5"], node_addresses=["10.0.0.6", "10.0.0.7"])
    for group in rec["nodegroups"]:
        group["nodes"] = [dict(n, status="ACTIVE") for n in group["nodes"]]
    return rec


@pytest.mark.parametrize("status", ["CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_FAILED"])
def test_a_cluster_whose_servers_are_all_gone_shows_every_node_missing(status):
    cloud = FakeCloud()
    healthy_cluster(cloud, U2, "k2")  # another cluster's servers are no concern of k1's
    rec = _all_gone_record(status)
    obs = NovaSynchroniser(cloud).observe([rec])[U1]
    assert obs.exists  # the cluster exists: its servers are gone
    assert obs.status is None  # a settled cluster keeps its status
    assert obs.health_status == "UNHEALTHY"
    assert obs.health_status_reason == {
        "default-master": "missing servers: k1-master-1",
        "default-worker": "missing servers: k1-default-worker-1, k1-default-worker-2",
    }
    for group in ("default-master", "default-worker"):
        assert {n["status"] for n in obs.nodegroups[group]["nodes"]} == {"MISSING"}
        assert obs.nodegroups[group]["node_count"] == 0
    # folded into the record the way cluster_sync does it: every node MISSING, no address left
    merged, _message = lifecycle.merge_observation(rec, obs, 1000)
    assert merged["status"] == status
    assert merged["health_status"] == "UNHEALTHY"
    names = {n["name"]: n["status"] for g in merged["nodegroups"] for n in g["nodes"]}
    assert names == {"k1-master-1": "MISSING", "k1-default-worker-1": "MISSING", "k1-default-worker-2": "MISSING"}
    assert merged["master_addresses"] == [] and merged["node_addresses"] == []


def test_a_cluster_whose_servers_are_all_gone_is_left_for_a_repair_of_every_node():
    cloud = FakeCloud()
    rec = _all_gone_record()
    merged, _message = lifecycle.merge_observation(rec, NovaSynchroniser(cloud).observe([rec])[U1], 1000)
    # the lifecycle plans a repair of every node (what a create/update run then does)
    assert lifecycle.observes_before_planning(merged, "present")
    broken = sorted(n["name"] for g in merged["nodegroups"] for n in g["nodes"] if n["status"] == "MISSING")
    assert broken == ["k1-default-worker-1", "k1-default-worker-2", "k1-master-1"]


def test_a_cluster_being_deleted_with_no_server_left_is_deleted_not_missing():
    cloud = FakeCloud()
    for status in ("DELETE_IN_PROGRESS", "DELETE_FAILED"):
        rec = _all_gone_record(status)
        obs = NovaSynchroniser(cloud).observe([rec])[U1]
        assert not obs.exists, status
        merged, _message = lifecycle.merge_observation(rec, obs, 1000)
        assert merged["status"] == "DELETE_COMPLETE", status
        assert {n["status"] for g in merged["nodegroups"] for n in g["nodes"]} == {"ACTIVE"}


def test_a_create_that_never_made_a_server_is_not_a_cluster_with_missing_nodes():
    # no known node: nothing of the cluster exists (the front door says so), nothing to repair
    obs = NovaSynchroniser(FakeCloud()).observe([record(U1, "k1", status="CREATE_FAILED")])[U1]
    assert not obs.exists
    assert obs.health_status == "UNHEALTHY"
    assert [n for g in obs.nodegroups.values() for n in g["nodes"]] == []
    merged, _message = lifecycle.merge_observation(record(U1, "k1", status="CREATE_FAILED"), obs, 1000)
    # the stored reason names what is missing: nothing at all, the servers of each nodegroup
    assert merged["health_status_reason"] == {
        "cluster": "nothing of the cluster exists in the cloud",
        "default-master": "missing servers: 1 more",
        "default-worker": "missing servers: 2 more",
    }


# -- master_lb_enabled: the API's load balancer is a cluster resource ------------------


def lb_view(status="ACTIVE", floating_ip=None):
    return dict(
        id="lb-1",
        name="coe-k1-%s-api" % U1,
        provisioning_status=status,
        operating_status="OFFLINE",
        vip_address="10.0.0.99",
        vip_port_id="port-vip",
        floating_ip=floating_ip,
    )


def lb_cluster(cloud, status="CREATE_COMPLETE"):
    healthy_cluster(cloud, U1, "k1")
    views = NovaSynchroniser(cloud).list_views()
    return dict(record(U1, "k1", status=status, nodes=known("k1")), master_lb_enabled=True), views


def test_the_api_address_is_the_load_balancers_floating_ip_else_its_vip():
    from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import aggregate

    rec, views = lb_cluster(FakeCloud())
    out = aggregate(rec, views, (), lb_view())
    assert out["api_address"] == "https://10.0.0.99:6443"
    assert out["health_status"] == "HEALTHY"
    assert aggregate(rec, views, (), lb_view(floating_ip="172.24.4.9"))["api_address"] == "https://172.24.4.9:6443"


def test_a_load_balancer_in_error_fails_the_operation_and_makes_the_cluster_unhealthy():
    from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import aggregate

    rec, views = lb_cluster(FakeCloud(), status="CREATE_IN_PROGRESS")
    out = aggregate(rec, views, (), lb_view("ERROR"))
    assert out["status"] == "CREATE_FAILED"
    name = "coe-k1-%s-api" % U1
    assert "provisioning_status ERROR" in out["faults"][name]
    assert name in out["status_reason"]
    stable = aggregate(dict(rec, status="CREATE_COMPLETE"), views, (), lb_view("ERROR"))
    assert stable["health_status"] == "UNHEALTHY" and name in stable["health_status_reason"]
    # PENDING_* keeps the operation in progress
    assert aggregate(rec, views, (), lb_view("PENDING_UPDATE"))["status"] == "CREATE_IN_PROGRESS"


def test_a_missing_load_balancer_is_named():
    from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import aggregate

    rec, views = lb_cluster(FakeCloud())
    out = aggregate(rec, views, (), None)
    assert out["health_status"] == "UNHEALTHY"
    assert out["health_status_reason"] == {"load_balancer": "the API load balancer is missing"}
