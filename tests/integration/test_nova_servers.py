"""The Nova driver against the local cloud: nova_servers, nova_resources, the Nova synchroniser.

The modules run the way Ansible runs them (their file executed with the module
arguments on stdin), with openstacksdk's HTTP log on, so that a test can count
the write calls (POST/PUT/PATCH/DELETE other than getting a token) a run made.
Every cluster name is unique and everything is deleted at the end.
"""

import json
import re
import time
import uuid as uuidlib

import pytest
from coe_runner import check_failing_create, observe_while, run_module_file

from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import merge_observation
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso

pytestmark = pytest.mark.usefixtures("minicloud")

run_module = run_module_file  # (name, args, tmp_path, check=False, diff=False) -> (result, write calls)


@pytest.fixture(scope="module")
def conn(minicloud):
    return minicloud.connect()


@pytest.fixture(scope="module")
def admin(minicloud):
    return minicloud.connect(admin=True)


def new_record(masters=3, workers=2, **over):
    uuid = str(uuidlib.uuid4())
    rec = dict(
        name="nova-%s" % uuid[:6],
        uuid=uuid,
        status="CREATE_IN_PROGRESS",
        master_count=masters,
        node_count=workers,
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        image_id="fake-image",
        keypair="demo-key",
        fixed_network="private",
        external_network_id="public",
        floating_ip_enabled=True,
        nodegroups=[
            dict(name="default-master", role="master", node_count=masters),
            dict(name="default-worker", role="worker", node_count=workers),
        ],
    )
    rec.update(over)
    return rec


def tagged(conn, rec):
    tag = "coe-cluster-%s" % rec["uuid"]
    return dict(
        servers=sorted(s.name for s in conn.compute.servers(details=False, tags=tag)),
        ports=sorted(p.id for p in conn.network.ports(tags=tag)),
        floating_ips=sorted(f.floating_ip_address for f in conn.network.ips(tags=tag)),
        security_groups=sorted(g.name for g in conn.network.security_groups(tags=tag)),
        server_groups=sorted(g.name for g in conn.compute.server_groups() if rec["uuid"] in (g.name or "")),
    )


def vip_pairs(conn, rec):
    """{master name: the allowed-address-pair addresses of its port}, as Neutron has them."""
    out = {}
    for server in conn.compute.servers(details=False, tags="coe-cluster-%s" % rec["uuid"]):
        if "-master-" in server.name:
            (port,) = conn.network.ports(device_id=server.id)
            out[server.name] = sorted(p["ip_address"] for p in port.allowed_address_pairs or [])
    return out


def observe(conn, rec):
    from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import NovaSynchroniser

    return NovaSynchroniser(conn).observe([rec])[rec["uuid"]]


def with_nodes(rec, result):
    """The record as cluster_sync would leave it: known nodes and last indexes per nodegroup."""
    rec = json.loads(json.dumps(rec))
    by_group = {}
    for server in result["servers"]:
        by_group.setdefault(server["nodegroup"], []).append({"name": server["name"]})
    for group in rec["nodegroups"]:
        group["nodes"] = by_group.get(group["name"], [])
        group["last_index"] = result["nodegroups"][group["name"]]["last_index"]
    return rec


@pytest.fixture
def cluster(conn, tmp_path):
    """A cluster record whose cloud resources are all deleted at the end."""
    records = []

    def make(**kw):
        rec = new_record(**kw)
        records.append(rec)
        return rec

    yield make
    for rec in records:
        run_module("nova_resources", dict(cluster_name=rec["name"], cluster_uuid=rec["uuid"], state="absent"), tmp_path)


@pytest.mark.alone  # see pytest.ini
def test_cluster_lifecycle_3_masters_2_workers(conn, admin, cluster, tmp_path):
    rec = cluster()
    name = rec["name"]

    # security group, masters' anti-affinity group, the API's VIP port (3 masters, no load
    # balancer) with the API floating IP on it, before any master exists
    res, _writes = run_module("nova_resources", dict(cluster=rec), tmp_path)
    assert res.get("failed") is not True, res
    assert res["changed"] is True
    assert res["server_groups"]["default-master"]["policy"] == "anti-affinity"
    api_address = res["floating_ip"]["address"]
    assert res["api_address"] == "https://%s:6443" % api_address
    vip = conn.network.get_port(res["vip"]["id"])
    assert vip.name == "%s-api-vip" % name and not vip.device_id
    assert set(vip.tags) == {"coe-cluster", "coe-cluster-%s" % rec["uuid"], "coe-api-vip"}
    vip_ip = vip.fixed_ips[0]["ip_address"]
    assert res["vip"]["fixed_ip"] == vip_ip
    assert conn.network.get_ip(res["floating_ip"]["id"]).port_id == vip.id

    # check mode lists the 5 servers it would create, and creates nothing
    result, writes = run_module("nova_servers", dict(cluster=rec), tmp_path, check=True, diff=True)
    assert result["changed"] is True, result
    assert sorted(result["created"]) == sorted(
        ["%s-master-%d" % (name, i) for i in (0, 1, 2)] + ["%s-default-worker-%d" % (name, i) for i in (0, 1)]
    )
    assert result["diff"]["after"]["servers"] == sorted(result["created"])
    assert writes == []
    assert tagged(conn, rec)["servers"] == []

    # the real run: 5 servers ACTIVE, masters on 3 different hosts
    result, writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert len(result["created"]) == 5
    assert {s["name"]: s["status"] for s in result["servers"]} == dict.fromkeys(result["created"], "ACTIVE")
    assert len([w for w in writes if w[0] == "POST" and w[1].endswith("/servers")]) == 5
    assert all(s["fixed_addresses"] for s in result["servers"])
    hosts = {
        s.name: s.compute_host
        for s in admin.compute.servers(details=True, all_projects=True, tags="coe-cluster-%s" % rec["uuid"])
    }
    masters = [hosts["%s-master-%d" % (name, i)] for i in (0, 1, 2)]
    assert len(set(masters)) == 3, hosts
    assert result["nodegroups"] == {
        "default-master": {"last_index": 2, "node_count": 3},
        "default-worker": {"last_index": 1, "node_count": 2},
    }
    # every master's port may carry the VIP (allowed-address-pairs, in Neutron)
    assert result["vip_pairs"] == ["%s-master-%d" % (name, i) for i in (0, 1, 2)]
    assert vip_pairs(conn, rec) == {"%s-master-%d" % (name, i): [vip_ip] for i in (0, 1, 2)}

    # the floating IP stays on the VIP: no master carries it
    res, _writes = run_module("nova_resources", dict(cluster=rec), tmp_path)
    assert res["floating_ip"]["port_id"] == vip.id and res["changed"] is False, res
    rec = with_nodes(rec, result)

    # a second run changes nothing and makes no write call
    again, writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert again["changed"] is False, again
    assert writes == []
    res, writes = run_module("nova_resources", dict(cluster=rec), tmp_path)
    assert res["changed"] is False and writes == []

    # the synchroniser: complete, healthy, API on the VIP's floating IP
    obs = observe(conn, rec)
    assert obs.api_address == "https://%s:6443" % api_address
    assert vip_ip not in obs.master_addresses
    assert obs.status == "CREATE_COMPLETE"
    assert obs.health_status == "HEALTHY"
    assert len(obs.master_addresses) == 3 and len(obs.node_addresses) == 2
    rec["status"] = "CREATE_COMPLETE"

    # remove a named worker (scale in 2 -> 1)
    victim = "%s-default-worker-0" % name
    rec["node_count"] = 1
    rec["nodegroups"][1]["node_count"] = 1
    result, writes = run_module("nova_servers", dict(cluster=rec, nodes_to_remove=[victim]), tmp_path)
    assert result["changed"] is True, result
    assert result["deleted"] == [victim]
    assert result["created"] == []
    assert victim not in tagged(conn, rec)["servers"]
    rec = with_nodes(rec, result)

    # scale out 1 -> 2: the new worker gets index 2, never the removed 0
    rec["node_count"] = 2
    rec["nodegroups"][1]["node_count"] = 2
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result["created"] == ["%s-default-worker-2" % name], result
    rec = with_nodes(rec, result)

    # master 0 deleted behind our back: UNHEALTHY naming it, the API address stays the VIP's,
    # and a re-run makes it again, its port allowed to carry the VIP
    gone = "%s-master-0" % name
    server = next(s for s in conn.compute.servers(tags="coe-cluster-%s" % rec["uuid"]) if s.name == gone)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120)
    obs = observe(conn, rec)
    assert obs.health_status == "UNHEALTHY"
    assert gone in obs.health_status_reason["default-master"], obs.health_status_reason
    assert obs.api_address == "https://%s:6443" % api_address
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result["created"] == [gone], result
    assert result["vip_pairs"] == [gone]
    assert vip_pairs(conn, rec)[gone] == [vip_ip]
    obs = observe(conn, rec)
    assert obs.health_status == "HEALTHY" and obs.api_address == "https://%s:6443" % api_address

    # delete leaves nothing tagged with the cluster
    res, _writes = run_module(
        "nova_resources", dict(cluster_name=name, cluster_uuid=rec["uuid"], state="absent"), tmp_path
    )
    assert res["changed"] is True, res
    assert len(res["deleted"]["servers"]) == 5
    assert res["deleted"]["floating_ips"] == [api_address]
    assert tagged(conn, rec) == dict(servers=[], ports=[], floating_ips=[], security_groups=[], server_groups=[])
    res, writes = run_module(
        "nova_resources", dict(cluster_name=name, cluster_uuid=rec["uuid"], state="absent"), tmp_path
    )
    assert res["changed"] is False and writes == []


def test_resources_and_servers_in_one_run(conn, cluster, tmp_path):
    """nova_servers with resources (what the driver's create runs): check mode writes nothing;
    one run makes the security group, the masters' server group, the API floating IP (its address
    in the user-data) and the servers, and leaves the floating IP on the first master; a second
    run changes nothing and makes no write call."""
    rec = cluster(masters=1, workers=2, labels={"kube_tag": "v1.31.1"})
    name = rec["name"]
    args = dict(cluster=rec, resources=True, render_user_data=True, secret_key="integration-secret-key-0123456789")
    state_url = "sqlite:///%s" % (tmp_path / "coe.db")
    args["state_url"] = state_url

    check, writes = run_module("nova_servers", args, tmp_path, check=True)
    assert check.get("failed") is not True, check
    assert check["changed"] is True and len(check["created"]) == 3
    assert "create floating IP on public" in check["resources"]["changes"]
    assert writes == []
    assert tagged(conn, rec) == dict(servers=[], ports=[], floating_ips=[], security_groups=[], server_groups=[])

    result, writes = run_module("nova_servers", args, tmp_path)
    assert result.get("failed") is not True, result
    assert result["changed"] is True
    assert {s["name"]: s["status"] for s in result["servers"]} == dict.fromkeys(result["created"], "ACTIVE")
    res = result["resources"]
    assert res["floating_ip"]["server"] == "%s-master-0" % name
    assert res["api_address"] == "https://%s:6443" % res["floating_ip"]["address"]
    assert "attach floating IP %s to %s-master-0" % (res["floating_ip"]["address"], name) in res["changes"]
    have = tagged(conn, rec)
    assert have["floating_ips"] == [res["floating_ip"]["address"]]
    assert len(have["security_groups"]) == 1 and len(have["server_groups"]) == 1
    fip = next(iter(conn.network.ips(tags="coe-cluster-%s" % rec["uuid"])))
    master = next(s for s in conn.compute.servers(tags="coe-cluster-%s" % rec["uuid"]) if s.name.endswith("master-0"))
    assert fip.port_id in [p.id for p in conn.network.ports(device_id=master.id)]

    again, writes = run_module("nova_servers", dict(args, cluster=with_nodes(rec, result)), tmp_path)
    assert again["changed"] is False, again
    assert writes == []


def test_no_valid_host_fails_with_novas_fault(conn, cluster, tmp_path):
    """The second nodegroup fails (a flavor that fits no host) while the first builds: the
    synchroniser, asked all along, keeps the create in progress while anything builds, fails
    the nodegroup at once with Nova's fault, and the cluster once nothing is left building."""
    rec = cluster(masters=3, workers=1)
    rec["nodegroups"][1]["flavor_id"] = "m1.huge"
    rec["operation_started_at"] = iso(time.time())  # just recorded: nothing exists yet

    def synced():
        return merge_observation(rec, observe(conn, rec), time.time())[0]

    (result, _writes), seen = observe_while(lambda: run_module("nova_servers", dict(cluster=rec), tmp_path), synced)
    assert result["failed"] is True
    assert "No valid host was found" in result["msg"]
    worker = "%s-default-worker-0" % rec["name"]
    assert "No valid host was found" in result["faults"][worker]
    masters = {"%s-master-%d" % (rec["name"], i): "ACTIVE" for i in range(3)}
    assert {s["name"]: s["status"] for s in result["servers"]} == dict(masters, **{worker: "ERROR"})
    # before the first server: in progress, not failed (another runner's sync would see this)
    assert seen[0]["status"] == "CREATE_IN_PROGRESS", seen[0]
    early = check_failing_create(rec["name"], seen)
    print("%d observations, %d with the failed nodegroup while the create was in progress" % (len(seen), early))
    # the synchroniser says CREATE_FAILED with the same fault
    obs = observe(conn, rec)
    assert obs.status == "CREATE_FAILED"
    assert "No valid host was found" in obs.faults[worker]


def test_quota_too_small_fails_before_the_first_server(conn, cluster, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.servers import attr

    quota = conn.compute.get_quota_set(conn.current_project_id, usage=True)
    limit = attr(quota, "instances")
    assert limit > 0, "the demo project's instances quota is unlimited"
    rec = cluster(masters=1, workers=limit)  # one more server than the whole quota
    for check in (True, False):
        result, writes = run_module("nova_servers", dict(cluster=rec), tmp_path, check=check)
        assert result["failed"] is True
        assert "quota for instances: " in result["msg"], result["msg"]
        assert writes == []
    assert tagged(conn, rec)["servers"] == []


def test_a_server_in_error_is_replaced_by_a_rerun(conn, cluster, tmp_path):
    rec = cluster(masters=1, workers=1)
    rec["nodegroups"][1]["flavor_id"] = "m1.huge"
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result["failed"] is True
    # repair: the flavor is fixed, the run replaces the server in ERROR (same name)
    rec["nodegroups"][1]["flavor_id"] = "m1.small"
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result.get("failed") is not True, result
    worker = "%s-default-worker-0" % rec["name"]
    assert result["replaced"] == [worker]
    assert {s["name"]: s["status"] for s in result["servers"]}[worker] == "ACTIVE"


def test_rolling_upgrade_replaces_servers_with_new_indexes(conn, cluster, tmp_path):
    rec = cluster(masters=1, workers=2)
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result.get("failed") is not True, result
    rec = with_nodes(rec, result)
    rec["image_id"] = "fake-image-v2"
    result, writes = run_module("nova_servers", dict(cluster=rec, replace_outdated=True, batch_size=1), tmp_path)
    assert result.get("failed") is not True, result
    name = rec["name"]
    assert result["created"] == ["%s-master-1" % name, "%s-default-worker-2" % name, "%s-default-worker-3" % name]
    assert sorted(result["deleted"]) == sorted(
        ["%s-master-0" % name, "%s-default-worker-0" % name, "%s-default-worker-1" % name]
    )
    # create-before-delete, one server at a time
    server_writes = [m for m, url in writes if re.search(r"/servers(/[0-9a-f-]{36})?$", url.split("?")[0])]
    assert server_writes == ["POST", "DELETE"] * 3, writes
    v2 = conn.image.find_image("fake-image-v2").id
    assert {s["image_id"] for s in result["servers"]} == {v2}


@pytest.mark.alone  # see pytest.ini
def test_rolling_upgrade_of_three_anti_affine_masters_on_three_hosts(conn, admin, cluster, tmp_path):
    """The 4th member of a full anti-affinity group finds no host: an upgrade's masters go into a new group."""
    rec = cluster(masters=3, workers=0, template_version=1, floating_ip_enabled=False)
    rec["nodegroups"] = rec["nodegroups"][:1]
    res, _writes = run_module("nova_resources", dict(cluster=rec), tmp_path)
    assert res.get("failed") is not True, res
    result, _writes = run_module("nova_servers", dict(cluster=rec), tmp_path)
    assert result.get("failed") is not True, result
    rec = with_nodes(rec, result)
    rec.update(template_version=2, image_id="fake-image-v2")
    res, _writes = run_module("nova_resources", dict(cluster=rec), tmp_path)
    assert res["server_groups"]["default-master"]["name"].endswith("-default-master-v2"), res
    api_address = observe(conn, rec).api_address  # no floating IP: the VIP's fixed IP
    assert api_address == "https://%s:6443" % res["vip"]["fixed_ip"]
    result, _writes = run_module("nova_servers", dict(cluster=rec, replace_outdated=True, batch_size=1), tmp_path)
    assert result.get("failed") is not True, result
    name = rec["name"]
    assert sorted(s["name"] for s in result["servers"]) == ["%s-master-%d" % (name, i) for i in (3, 4, 5)]
    # every master replaced: the API address stays, and the new masters may carry the VIP
    assert observe(conn, with_nodes(rec, result)).api_address == api_address
    assert vip_pairs(conn, rec) == {"%s-master-%d" % (name, i): [res["vip"]["fixed_ip"]] for i in (3, 4, 5)}
    hosts = [
        s.compute_host
        for s in admin.compute.servers(details=True, all_projects=True, tags="coe-cluster-%s" % rec["uuid"])
    ]
    assert len(set(hosts)) == 3, hosts


def test_masters_server_group_follows_the_templates_policy(conn, cluster, tmp_path):
    rec = cluster(masters=1, workers=0, template=dict(master_server_group_policy="soft-anti-affinity"))
    res, _writes = run_module("nova_resources", dict(cluster=rec, floating_ip=False), tmp_path)
    assert res.get("failed") is not True, res
    assert res["server_groups"]["default-master"]["policy"] == "soft-anti-affinity"
    (group,) = [g for g in conn.compute.server_groups() if rec["uuid"] in (g.name or "")]
    assert group.policy == "soft-anti-affinity" or group.policies == ["soft-anti-affinity"]
    again, writes = run_module("nova_resources", dict(cluster=rec, floating_ip=False), tmp_path)
    assert again["changed"] is False and writes == [], (again, writes)


def test_all_servers_deleted_behind_our_back_are_missing_and_rebuilt(conn, cluster, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils import lifecycle

    rec = cluster(masters=1, workers=1)
    rec["status"] = "CREATE_COMPLETE"
    result, _writes = run_module("nova_servers", dict(cluster=rec, floating_ip=False), tmp_path)
    assert result.get("failed") is not True, result
    rec = with_nodes(rec, result)
    names = sorted(s["name"] for s in result["servers"])
    for server in conn.compute.servers(details=False, tags="coe-cluster-%s" % rec["uuid"]):
        conn.compute.delete_server(server)
    for server in conn.compute.servers(details=False, tags="coe-cluster-%s" % rec["uuid"]):
        conn.compute.wait_for_delete(server, wait=120)

    obs = observe(conn, rec)
    assert obs.exists and obs.health_status == "UNHEALTHY", obs
    merged, _message = lifecycle.merge_observation(rec, obs, 1000)
    assert sorted(n["name"] for g in merged["nodegroups"] for n in g["nodes"] if n["status"] == "MISSING") == names
    # the next run creates them again under their own names
    result, _writes = run_module("nova_servers", dict(cluster=merged, floating_ip=False), tmp_path)
    assert result.get("failed") is not True, result
    assert sorted(result["created"]) == names
    assert observe(conn, with_nodes(merged, result)).health_status == "HEALTHY"


def test_waiting_keeps_the_callers_lease_and_a_broken_lock_writes_nothing(conn, cluster, tmp_path):
    """nova_servers with the front door's lock: the lease is renewed while the servers boot,
    and a token broken meanwhile (someone else acts on the cluster) is refused before any write."""
    import datetime
    import time

    from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    rec = dict(cluster(masters=1, workers=14), project_id="default")
    state_url = "sqlite:///%s" % (tmp_path / "coe.db")
    locks = LockManager(open_store(state_url))
    ttl = 5  # the shortest lease: renewed every 1.7 s while the servers boot
    token = locks.acquire("default", rec["name"], "create", ttl=ttl)["token"]
    args = dict(cluster=rec, state_url=state_url, lock_token=token, lock_ttl=ttl)

    started = time.monotonic()
    result, _writes = run_module("nova_servers", args, tmp_path)
    took = time.monotonic() - started
    assert result.get("failed") is not True, result
    assert len(result["created"]) == 15 and took > ttl, took
    lease = locks.get("default", rec["name"])
    assert lease["token"] == token and lease["held"], lease
    held = datetime.datetime.fromisoformat(lease["renewed_at"]) - datetime.datetime.fromisoformat(lease["acquired_at"])
    assert held.total_seconds() >= took - (2 * ttl / 3.0 + 1), (took, lease)

    locks.break_lock("default", rec["name"], "test: taken over")
    scaled = json.loads(json.dumps(with_nodes(rec, result)))
    scaled["nodegroups"][1]["node_count"] = 15
    refused, writes = run_module("nova_servers", dict(args, cluster=scaled), tmp_path)
    assert refused.get("failed") is True, refused
    assert "lock" in refused["msg"] and rec["name"] in refused["msg"], refused["msg"]
    assert writes == []
    assert len(tagged(conn, rec)["servers"]) == 15
