"""The Heat driver against the local cloud: the heat_stack module and the Heat synchroniser.

The module runs the way Ansible runs it (its file executed with the arguments on stdin), so
these tests see what a playbook sees: ``changed``, the return values, the
failure message. Every cluster name is unique and everything is deleted at the end.
"""

import base64
import datetime
import json
import os
import time
import uuid as uuidlib

import pytest
from coe_runner import check_failing_create, observe_while, run_module_file

pytestmark = pytest.mark.usefixtures("minicloud")


def run_module(args, check=False, diff=False, tmp=None):
    """Run plugins/modules/heat_stack.py as Ansible would; return its JSON result."""
    args = dict(args)
    args.setdefault("state_url", "sqlite:///%s" % os.path.join(tmp or "/tmp", "heat-it.db"))
    return run_module_file("heat_stack", args, tmp or "/tmp", check=check, diff=diff)[0]


@pytest.fixture
def conn(minicloud):
    return minicloud.connect()


@pytest.fixture
def admin(minicloud):
    # 2.3 shows a server's user_data and host to the admin
    return minicloud.connect(admin=True, compute_api_version="2.3")


def new_record(**over):
    uuid = str(uuidlib.uuid4())
    rec = dict(
        name="heat-%s" % uuid[:6],
        uuid=uuid,
        status="CREATE_IN_PROGRESS",
        master_count=3,
        node_count=2,
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        image_id="fake-image",
        keypair="demo-key",
        labels={"kube_tag": "v1.30.1", "odd": 'it\'s "quoted": {yes}'},
        fixed_network="private",
        external_network_id="public",
        floating_ip_enabled=True,
    )
    rec.update(over)
    return rec


def servers_of(conn, rec):
    found = list(conn.compute.servers(details=True, tags="coe-cluster-%s" % rec["uuid"]))
    return {s.name: s for s in found}


def result_stack_id(rec, conn):
    return conn.orchestration.find_stack("%s-%s" % (rec["name"], rec["uuid"][:8])).id


def vip_of(conn, rec):
    """(the API VIP's port, {master name: its port's allowed-address-pair addresses}), from Neutron."""
    (port,) = conn.network.ports(tags=["coe-cluster-%s" % rec["uuid"], "coe-api-vip"])
    pairs = {}
    for server in servers_of(conn, rec).values():
        if "-master-" in server.name:
            (own,) = conn.network.ports(device_id=server.id)
            pairs[server.name] = sorted(p["ip_address"] for p in own.allowed_address_pairs or [])
    return port, pairs


def destroy(rec, tmp):
    result = run_module(dict(cluster=rec, state="absent"), tmp=tmp)
    assert not result.get("failed"), result.get("msg")


def test_cluster_stack_lifecycle(conn, admin, tmp_path):
    tmp = str(tmp_path)
    rec = new_record()
    name = rec["name"]
    user_data = {
        "%s-master-0" % name: "#cloud-config\nhostname: m0\n",
        "%s-default-worker-1" % name: "#cloud-config\nhostname: w1\n",
    }
    try:
        # check mode first: says create, creates nothing
        result = run_module(dict(cluster=rec, user_data=user_data), check=True, diff=True, tmp=tmp)
        assert result["changed"] is True and result["action"] == "create", result
        assert result["diff"]["before"] == {"state": "absent"}
        assert conn.orchestration.find_stack("%s-%s" % (name, rec["uuid"][:8])) is None

        # create: 3 masters, 2 workers
        result = run_module(dict(cluster=rec, user_data=user_data), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True and result["action"] == "create"
        stack = result["stack"]
        assert stack["status"] == "CREATE_COMPLETE"
        assert stack["name"] == "%s-%s" % (name, rec["uuid"][:8])
        assert stack["tags"] == ["coe-cluster-%s" % rec["uuid"]]
        outputs = stack["outputs"]
        assert outputs["api_ip"].startswith("172.24.4.")  # the floating IP on the API port
        # three masters, no load balancer: the API port is a VIP no server is on, the floating
        # IP is on it, and every master's own port may carry its address
        vip, pairs = vip_of(conn, rec)
        assert vip.name == "%s-api-vip" % name and not vip.device_id
        assert outputs["api_fixed_ip"] == vip.fixed_ips[0]["ip_address"]
        assert pairs == {"%s-master-%d" % (name, i): [outputs["api_fixed_ip"]] for i in range(3)}
        (fip,) = conn.network.ips(port_id=vip.id)
        assert fip.floating_ip_address == outputs["api_ip"]
        assert outputs["api_fixed_ip"] not in outputs["master_addresses"]
        assert len(outputs["master_addresses"]) == 3 and len(outputs["node_addresses"]) == 2
        assert result["nodes"] == {
            "default-master": ["%s-master-%d" % (name, i) for i in range(3)],
            "default-worker": ["%s-default-worker-%d" % (name, i) for i in range(2)],
        }
        # the user-data travels as stack files, never as a parameter, and is not in the result
        assert not [k for k in stack["parameters"] if "user_data" in k]
        assert "hostname: w1" not in json.dumps(result)
        servers = servers_of(conn, rec)
        assert sorted(servers) == sorted(result["nodes"]["default-master"] + result["nodes"]["default-worker"])
        master0 = servers["%s-master-0" % name]
        assert master0.metadata["coe_cluster_uuid"] == rec["uuid"]
        assert master0.metadata["coe_role"] == "master"
        assert master0.metadata["coe_nodegroup"] == "default-master"
        assert sorted({s.metadata["coe_role"] for s in servers.values()}) == ["master", "worker"]
        # anti-affinity: the three masters are on three hosts
        hosts = {admin.compute.get_server(servers["%s-master-%d" % (name, i)].id).compute_host for i in range(3)}
        assert len(hosts) == 3
        # every node got its own user-data (the one given, or empty)
        for node, server in servers.items():
            raw = admin.compute.get_server(server.id).user_data
            text = base64.b64decode(raw).decode() if raw else ""
            assert text == user_data.get(node, ""), node

        # a create makes every nodegroup at once: the workers did not wait for the masters
        top = conn.orchestration.get("/stacks/%s/%s/events" % (stack["name"], stack["id"]), params={"limit": 500})
        when = {(e["resource_name"], e["resource_status"]): e["event_time"] for e in top.json()["events"]}
        assert when[("default-worker", "CREATE_IN_PROGRESS")] < when[("default-master", "CREATE_COMPLETE")], when

        # the same again: not changed, no update call (the stack is untouched)
        events_before = len(list(conn.orchestration.stack_events(stack["id"])))
        result = run_module(dict(cluster=rec, user_data=user_data), tmp=tmp)
        assert result["changed"] is False and result["action"] == "none", result
        live = conn.orchestration.get_stack(stack["id"])
        assert live.updated_at is None and live.status == "CREATE_COMPLETE"
        assert len(list(conn.orchestration.stack_events(stack["id"]))) == events_before

        # scale workers 2 -> 4 (check mode first)
        rec4 = dict(rec, node_count=4)
        result = run_module(dict(cluster=rec4), check=True, tmp=tmp)
        assert result["action"] == "update"
        assert result["changes"]["parameters"]["default-worker_count"] == {"before": 2, "after": 4}
        assert len(servers_of(conn, rec)) == 5
        result = run_module(dict(cluster=rec4), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert result["stack"]["status"] == "UPDATE_COMPLETE"
        servers = servers_of(conn, rec)
        workers = sorted(n for n in servers if "-default-worker-" in n)
        assert workers == ["%s-default-worker-%d" % (name, i) for i in range(4)]
        kept_ids = {n: servers[n].id for n in workers}

        # 4 -> 3 removing the named node -1: that node is the one gone, the others keep their ids
        gone = "%s-default-worker-1" % name
        rec3 = dict(rec, node_count=3)
        result = run_module(dict(cluster=rec3, nodes_to_remove=[gone]), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        servers = servers_of(conn, rec)
        workers = sorted(n for n in servers if "-default-worker-" in n)
        assert gone not in workers and len(workers) == 3
        assert {n: servers[n].id for n in workers} == {n: kept_ids[n] for n in workers}
        # the same run again changes nothing; a later scale-out never reuses index 1
        again = run_module(dict(cluster=rec3, nodes_to_remove=[]), tmp=tmp)
        assert again["changed"] is False, again
        result = run_module(dict(cluster=dict(rec, node_count=4)), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert result["nodes"]["default-worker"] == ["%s-default-worker-%d" % (name, i) for i in (0, 2, 3, 4)]
        assert sorted(n for n in servers_of(conn, rec) if "-default-worker-" in n) == result["nodes"]["default-worker"]
        rec = dict(rec, node_count=4)

        # add a nodegroup, then remove it
        groups = [
            dict(name="default-master", role="master", node_count=3),
            dict(name="default-worker", role="worker", node_count=4),
            dict(name="gpu", role="worker", node_count=1, flavor_id="m1.medium"),
        ]
        result = run_module(dict(cluster=dict(rec, nodegroups=groups)), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert result["nodes"]["gpu"] == ["%s-gpu-0" % name]
        assert "%s-gpu-0" % name in servers_of(conn, rec)
        result = run_module(dict(cluster=dict(rec, nodegroups=groups[:2])), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert "gpu" not in result["stack"]["outputs"]["nodegroups"]
        assert not [n for n in servers_of(conn, rec) if "-gpu-" in n]

        # rolling image update, one node at a time
        from ansible_collections.coe.openstack.plugins.module_utils.heat.client import HeatClient

        heat = HeatClient(conn)
        seen_events = {e["id"] for e in heat.events(stack, limit=5000)}
        v2 = conn.image.find_image("fake-image-v2", ignore_missing=False)
        result = run_module(dict(cluster=dict(rec, image_id="fake-image-v2"), batch_size=1), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        assert result["stack"]["status"] == "UPDATE_COMPLETE"
        assert result["stack"]["parameters"]["default-worker_max_batch_size"] == "1"
        servers = servers_of(conn, rec)
        assert len(servers) == 7
        assert {s.image["id"] for s in servers.values()} == {v2.id}
        # never more than one node was being replaced or rebuilt at a time, in the whole cluster
        # (an upgrade rolls the nodegroups one after the other): a node is busy from its server's
        # UPDATE_IN_PROGRESS until its member stack's UPDATE_COMPLETE
        busy, most, touched = set(), 0, set()
        for event in heat.events(stack, limit=5000):
            if event["id"] in seen_events:
                continue
            links = [link["href"] for link in event.get("links") or [] if link.get("rel") == "stack"]
            member = links[0].split("/stacks/")[1].split("/")[0] if links else ""
            if event["resource_name"] == "server" and event["resource_status"] == "UPDATE_IN_PROGRESS":
                busy.add(member)
                touched.add(member)
                most = max(most, len(busy))
            elif event["resource_name"] == member and event["resource_status"] in ("UPDATE_COMPLETE", "UPDATE_FAILED"):
                busy.discard(member)
        assert len(touched) == 7, touched
        assert most == 1, "%d nodes were updated at once" % most

        # the synchroniser sees what the module made
        from ansible_collections.coe.openstack.plugins.module_utils.heat.observe import HeatSynchroniser

        observed = HeatSynchroniser(conn).observe([dict(rec, status="UPDATE_IN_PROGRESS")])[rec["uuid"]]
        assert observed.status == "UPDATE_COMPLETE" and observed.exists
        assert observed.api_address == "https://%s:6443" % result["stack"]["outputs"]["api_ip"]
        # every master rebuilt: the API address and the VIP stay, the masters may still carry it
        assert result["stack"]["outputs"]["api_ip"] == outputs["api_ip"]
        assert vip_of(conn, rec)[1] == {"%s-master-%d" % (name, i): [outputs["api_fixed_ip"]] for i in range(3)}
        assert sorted(observed.master_addresses) == sorted(result["stack"]["outputs"]["master_addresses"])
        assert observed.nodegroups["default-worker"]["node_count"] == 4
        assert observed.health_status == "HEALTHY"
        assert observed.coe_version == "v1.30.1"
    finally:
        destroy(rec, tmp)
    # nothing of the cluster is left: no stack, no server, no port
    assert conn.orchestration.find_stack("%s-%s" % (name, rec["uuid"][:8])) is None
    assert servers_of(conn, rec) == {}
    assert list(conn.network.ports(tags=["coe-cluster-%s" % rec["uuid"]])) == []  # the VIP's too
    assert [ip for ip in conn.network.ips() if ip.floating_ip_address == outputs["api_ip"]] == []
    # deleting again is a no-op
    assert run_module(dict(cluster=rec, state="absent"), tmp=tmp)["changed"] is False


def test_waiting_renews_the_callers_lease_and_names_by_id(conn, tmp_path):
    """An operation longer than the lock's lease keeps the lock: heat_stack renews it while it waits.

    And the stack names the flavor, image and network by id: every member's server would
    otherwise look each name up again."""
    from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    tmp = str(tmp_path)
    rec = new_record(master_count=1, node_count=3, floating_ip_enabled=False, project_id="default")
    store = open_store("sqlite:///%s" % os.path.join(tmp, "heat-it.db"))
    locks = LockManager(store)
    ttl = 5  # the shortest lease: renewed every 1.7 s while waiting; the create takes longer
    token = locks.acquire("default", rec["name"], "create", ttl=ttl)["token"]
    try:
        started = time.monotonic()
        result = run_module(dict(cluster=rec, lock_token=token, lock_ttl=ttl), tmp=tmp)
        assert not result.get("failed"), result.get("msg")
        took = time.monotonic() - started
        assert took > ttl, "the create (%.1f s) was too quick to need a renewal" % took
        lease = locks.get("default", rec["name"])
        assert lease["token"] == token and lease["holder"] is not None and not lease["expired"]
        # renewed while Heat worked, not only before the first write: every third of the lease
        held = datetime.datetime.fromisoformat(lease["renewed_at"]) - datetime.datetime.fromisoformat(
            lease["acquired_at"]
        )
        assert held.total_seconds() >= took - (2 * ttl / 3.0 + 1), (took, lease)
        params = result["stack"]["parameters"]
        assert params["default-master_flavor"] == conn.compute.find_flavor("m1.small").id
        assert params["default-worker_image"] == conn.image.find_image("fake-image").id
        assert params["fixed_network"] == conn.network.find_network("private").id

        # a token that was broken meanwhile stops the wait: someone else acts on the cluster
        # a token broken meanwhile (someone else acts on the cluster) is refused before any write
        locks.break_lock("default", rec["name"], "test: taken over")
        result = run_module(dict(cluster=dict(rec, node_count=4), lock_token=token, lock_ttl=ttl), tmp=tmp)
        assert result.get("failed") is True, result
        assert "lock" in result["msg"] and rec["name"] in result["msg"], result["msg"]
        assert conn.orchestration.get_stack(result_stack_id(rec, conn)).status == "CREATE_COMPLETE"
        assert len(servers_of(conn, rec)) == 4
    finally:
        destroy(rec, tmp)


def test_no_valid_host_fails_with_the_clouds_reason(conn, tmp_path):
    """The second nodegroup fails (a flavor that fits no host) while the first builds: the
    synchroniser, asked all along, keeps the create in progress while anything builds (Heat
    marks the stack failed at the first failure and goes on making the rest), fails the
    nodegroup at once with the cloud's words, and the cluster once nothing is left building;
    heat_stack returns only then, so what it records is what Heat ends with."""
    from ansible_collections.coe.openstack.plugins.module_utils.heat.observe import HeatSynchroniser
    from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import merge_observation
    from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso

    tmp = str(tmp_path)
    rec = new_record(master_count=3, node_count=1, flavor_id="m1.huge", floating_ip_enabled=False)
    rec["nodegroups"] = [  # as the cluster module records them
        dict(name="default-master", role="master", node_count=3, status="CREATE_IN_PROGRESS"),
        dict(name="default-worker", role="worker", node_count=1, status="CREATE_IN_PROGRESS"),
    ]
    rec["operation_started_at"] = iso(time.time())  # just recorded: no stack yet
    sync = HeatSynchroniser(conn)

    def synced():
        return merge_observation(rec, sync.observe([rec])[rec["uuid"]], time.time())[0]

    try:
        result, seen = observe_while(lambda: run_module(dict(cluster=rec, timeout=600), tmp=tmp), synced)
        assert result.get("failed") is True, result
        assert "CREATE_FAILED" in result["msg"]
        assert "No valid host was found" in result["msg"]
        leaves = result["failed_resources"]
        assert leaves and leaves[0]["path"] == ["default-worker", "0", "server"]
        assert "No valid host was found" in leaves[0]["reason"]
        assert result["stack"]["status"] == "CREATE_FAILED"
        # before the stack exists: in progress (the grace), not "Stack not found"
        assert seen[0]["status"] == "CREATE_IN_PROGRESS", seen[0]
        early = check_failing_create(rec["name"], seen)
        print("%d observations, %d with the failed nodegroup while the create was in progress" % (len(seen), early))

        # the synchroniser reports it the same way, with the fault on the node
        observed = sync.observe([rec])[rec["uuid"]]
        assert observed.status == "CREATE_FAILED"
        assert "No valid host was found" in observed.faults["%s-default-worker-0" % rec["name"]]
        assert "No valid host was found" in observed.status_reason
    finally:
        destroy(rec, tmp)


def test_stack_deleted_behind_our_back(conn, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.heat.observe import HeatSynchroniser

    tmp = str(tmp_path)
    rec = new_record(master_count=1, node_count=0, floating_ip_enabled=False)
    try:
        result = run_module(dict(cluster=rec), tmp=tmp)
        assert result["stack"]["status"] == "CREATE_COMPLETE", result.get("msg")
        sync = HeatSynchroniser(conn)
        assert sync.observe([rec])[rec["uuid"]].status == "CREATE_COMPLETE"
        conn.orchestration.delete_stack(result["stack"]["id"])
        deadline = time.monotonic() + 120
        while conn.orchestration.find_stack(result["stack"]["id"]) is not None:
            assert time.monotonic() < deadline, "the stack was not deleted in 120 s"
            time.sleep(1)
        records = [
            dict(rec, status="UPDATE_IN_PROGRESS"),
            dict(rec, uuid=rec["uuid"], status="UPDATE_IN_PROGRESS"),
        ]
        seen = sync.observe(records[:1])[rec["uuid"]]
        missing = "Stack %s-%s not found in Heat" % (rec["name"], rec["uuid"][:8])
        assert (seen.exists, seen.status, seen.status_reason) == (False, "UPDATE_FAILED", missing)
        seen = sync.observe([dict(rec, status="DELETE_IN_PROGRESS")])[rec["uuid"]]
        assert (seen.exists, seen.status) == (False, "DELETE_COMPLETE")
        seen = sync.observe([dict(rec, status="CREATE_COMPLETE")])[rec["uuid"]]
        assert (seen.exists, seen.status, seen.health_status) == (False, None, "UNHEALTHY")

        # something of the cluster's made outside the stack: the delete cleans it up too
        private = conn.network.find_network("private", ignore_missing=False)
        stray = conn.network.create_port(network_id=private.id, name="%s-stray" % rec["name"])
        conn.network.set_tags(stray, ["coe-cluster-%s" % rec["uuid"]])
        result = run_module(dict(cluster=rec, state="absent"), tmp=tmp)
        assert result["changed"] is True
        assert result["cleaned"] == [dict(type="port", id=stray.id, name="%s-stray" % rec["name"])]
        assert not list(conn.network.ports(name=stray.name))
    finally:
        destroy(rec, tmp)
