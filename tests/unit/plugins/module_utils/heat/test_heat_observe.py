"""The Heat synchroniser: Magnum's status mapping as a table, addresses, faults, constant API calls."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.clusters import (
    ensure_cluster,
    ensure_template,
    sync_clusters,
)
from ansible_collections.coe.openstack.plugins.module_utils.heat.observe import (
    SETTLED_BEFORE_MARGIN,
    HeatSynchroniser,
    epoch,
    map_status,
    settled_before,
)
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso
from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser

UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"


@pytest.mark.parametrize(
    "record_status, stack_status, expected",
    [
        # no stack at all
        ("DELETE_IN_PROGRESS", None, "DELETE_COMPLETE"),
        ("CREATE_IN_PROGRESS", None, "CREATE_FAILED"),
        ("UPDATE_IN_PROGRESS", None, "UPDATE_FAILED"),
        ("CREATE_COMPLETE", None, None),
        ("UPDATE_FAILED", None, None),
        ("DELETE_COMPLETE", None, None),
        # a stack: its status, except CREATE_COMPLETE seen after an update
        ("UPDATE_IN_PROGRESS", "CREATE_COMPLETE", "UPDATE_COMPLETE"),
        ("CREATE_IN_PROGRESS", "CREATE_COMPLETE", "CREATE_COMPLETE"),
        ("CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS"),
        ("CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_FAILED"),
        # the second step of a create (the stack made empty, then given its nodes)
        ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS"),
        ("CREATE_IN_PROGRESS", "UPDATE_COMPLETE", "CREATE_COMPLETE"),
        ("CREATE_IN_PROGRESS", "UPDATE_FAILED", "CREATE_FAILED"),
        ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_COMPLETE"),
        ("UPDATE_IN_PROGRESS", "UPDATE_FAILED", "UPDATE_FAILED"),
        ("UPDATE_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_COMPLETE"),
        ("DELETE_IN_PROGRESS", "DELETE_IN_PROGRESS", "DELETE_IN_PROGRESS"),
        ("DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_FAILED"),
        ("CREATE_COMPLETE", "UPDATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"),
        # both settled: nothing new (a create's stack ends UPDATE_COMPLETE, see above)
        ("CREATE_COMPLETE", "UPDATE_COMPLETE", None),
        ("UPDATE_COMPLETE", "CREATE_COMPLETE", None),
        ("CREATE_COMPLETE", "CHECK_COMPLETE", None),
        ("CREATE_COMPLETE", "UPDATE_FAILED", "UPDATE_FAILED"),
        ("UPDATE_FAILED", "UPDATE_COMPLETE", "UPDATE_COMPLETE"),
        ("CREATE_COMPLETE", "SOMETHING_ODD", None),
    ],
)
def test_status_mapping(record_status, stack_status, expected):
    stack = None if stack_status is None else dict(status=stack_status, status_reason="r")
    assert map_status(record_status, stack)[0] == expected


def test_missing_stack_reasons_say_not_found():
    assert map_status("CREATE_IN_PROGRESS", None) == ("CREATE_FAILED", "Stack not found in Heat")
    assert map_status("UPDATE_IN_PROGRESS", None) == ("UPDATE_FAILED", "Stack not found in Heat")


def server(name, ng, role, index, addr, status="ACTIVE", fip=None, fault=None, uuid=UUID, version="v1.30.1"):
    addresses = {"private": [{"addr": addr, "version": 4, "OS-EXT-IPS:type": "fixed"}]}
    if fip:
        addresses["private"].append({"addr": fip, "version": 4, "OS-EXT-IPS:type": "floating"})
    return dict(
        id="id-" + name,
        name=name,
        status=status,
        addresses=addresses,
        metadata=dict(
            coe_cluster_uuid=uuid,
            coe_nodegroup=ng,
            coe_role=role,
            coe_node_index=str(index),
            coe_cluster_name="demo",
            coe_version=version,
        ),
        tags=["coe-cluster-" + uuid],
        image={"id": "img-1"},
        fault=fault,
    )


def record(**over):
    base = dict(
        uuid=UUID,
        name="demo",
        status="CREATE_IN_PROGRESS",
        master_count=1,
        node_count=2,
        flavor_id="m1.small",
        image_id="img-1",
        fixed_network="private",
    )
    base.update(over)
    return base


class FakeCompute:
    def __init__(self, servers):
        self._servers = servers
        self.calls = []

    def servers(self, details=True, any_tags=None):
        self.calls.append(any_tags)
        wanted = set(any_tags.split(","))
        return [s for s in self._servers if wanted & set(s["tags"])]


class FakeConn:
    def __init__(self, servers):
        self.compute = FakeCompute(servers)


class FakeClient:
    def __init__(self, stacks, failures=None):
        self.stacks = stacks
        self._failures = failures or {}
        self.list_calls = []
        self.failure_calls = []

    def list_any(self, tags):
        assert isinstance(tags, list), "stack tags must go to the SDK as a list"
        self.list_calls.append(list(tags))
        return [s for s in self.stacks if set(tags) & set(s["tags"])]

    def failures(self, stack):
        self.failure_calls.append(stack["id"])
        return self._failures.get(stack["id"], [])

    def failures_and_work(self, stack):
        return self.failures(stack), []

    def status(self, name):
        self.list_calls.append(name)
        return next((s for s in self.stacks if s["name"] == name), None)


def stack(status, uuid=UUID, name="demo-3f2a9c4e", reason="ok"):
    return dict(id="st-" + uuid[:4], name=name, status=status, status_reason=reason, tags=["coe-cluster-" + uuid])


def observe(records, stacks, servers, failures=None):
    client = FakeClient(stacks, failures)
    conn = FakeConn(servers)
    sync = HeatSynchroniser(conn, client=client)
    return sync.observe(records), client, conn


def test_complete_cluster_addresses_nodegroups_health_and_version():
    servers = [
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5", fip="172.24.4.20"),
        server("demo-default-worker-1", "default-worker", "worker", 1, "10.0.0.7"),
        server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6"),
    ]
    obs, _client, _conn = observe([record()], [stack("CREATE_COMPLETE")], servers)
    o = obs[UUID]
    assert o.exists and o.status == "CREATE_COMPLETE" and o.stack_id == "st-3f2a"
    assert o.api_address == "https://172.24.4.20:6443"
    assert o.master_addresses == ["10.0.0.5"]
    assert o.node_addresses == ["10.0.0.6", "10.0.0.7"]
    workers = o.nodegroups["default-worker"]
    assert workers["node_count"] == 2
    assert [n["name"] for n in workers["nodes"]] == ["demo-default-worker-0", "demo-default-worker-1"]
    assert o.health_status == "HEALTHY"
    assert o.coe_version == "v1.30.1"


def test_api_address_without_floating_ip_is_the_first_masters_fixed_ip():
    servers = [
        server("demo-master-2", "default-master", "master", 2, "10.0.0.9"),
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5"),
        server("demo-master-1", "default-master", "master", 1, "10.0.0.8"),
    ]
    # a record written before the VIP rule: its API is the first master's
    rec = record(master_count=3, node_count=0, api_endpoint="master")
    obs, _client, _conn = observe([rec], [stack("CREATE_COMPLETE")], servers)
    assert obs[UUID].api_address == "https://10.0.0.5:6443"
    assert obs[UUID].master_addresses == ["10.0.0.5", "10.0.0.8", "10.0.0.9"]


class FakeNetwork:
    def __init__(self, ports, ips):
        self._ports, self._ips, self.calls = ports, ips, []

    def ports(self, tags=None):
        self.calls.append(("ports", tags))
        return [p for p in self._ports if tags in p.tags]

    def ips(self, **query):
        self.calls.append(("ips", query))
        return list(self._ips)


@pytest.mark.parametrize("fip", [None, "172.24.4.30"])
def test_a_vip_clusters_api_address_is_the_vips_in_two_calls_for_every_cluster(fip):
    from types import SimpleNamespace as NS

    servers = [server("demo-master-%d" % i, "default-master", "master", i, "10.0.0.%d" % (5 + i)) for i in range(3)]
    vip = NS(
        id="p-vip", tags=["coe-cluster-" + UUID, "coe-cluster", "coe-api-vip"], fixed_ips=[dict(ip_address="10.0.0.99")]
    )
    ips = (
        [NS(port_id="p-vip", floating_ip_address=fip)]
        if fip
        else [NS(port_id="p-other", floating_ip_address="1.2.3.4")]
    )
    client = FakeClient([stack("CREATE_COMPLETE")])
    conn = FakeConn(servers)
    conn.network = FakeNetwork([vip], ips)
    other = record(uuid="9" + UUID[1:], name="other", master_count=3)
    obs = HeatSynchroniser(conn, client=client).observe([record(master_count=3, node_count=0), other])
    assert obs[UUID].api_address == "https://%s:6443" % (fip or "10.0.0.99")
    assert obs[UUID].master_addresses == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    # a VIP cluster whose VIP port is gone has no API address: no master stands for it
    assert obs[other["uuid"]].api_address is None
    assert conn.network.calls == [("ports", "coe-api-vip"), ("ips", {})]


def test_failed_stack_faults_come_from_failed_resources_and_server_faults():
    reason = 'ResourceInError: resources.server: Went to status ERROR due to "Message: No valid host was found. "'
    failures = {
        "st-3f2a": [dict(path=["default-worker", "1", "server"], reason=reason, resource="server")],
    }
    servers = [
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5"),
        server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6"),
        server(
            "demo-default-worker-1",
            "default-worker",
            "worker",
            1,
            "10.0.0.7",
            status="ERROR",
            fault={"code": 500, "message": "No valid host was found. "},
        ),
    ]
    failed = stack("CREATE_FAILED", reason="Resource CREATE failed: ResourceInError: resources.default-worker...")
    obs, client, _conn = observe([record()], [failed], servers, failures)
    o = obs[UUID]
    assert o.status == "CREATE_FAILED"
    assert "No valid host was found" in o.faults["demo-default-worker-1"]
    assert "No valid host was found" in o.status_reason
    assert o.nodegroups["default-worker"]["status"] == "CREATE_FAILED"
    assert "No valid host" in o.nodegroups["default-worker"]["status_reason"]
    assert o.nodegroups["default-master"]["status"] == "CREATE_COMPLETE"
    assert o.health_status == "UNHEALTHY"
    assert client.failure_calls == ["st-3f2a"]


def test_stack_deleted_behind_our_back():
    # a cluster believed complete whose stack and servers are gone: nothing to say about the
    # status (Magnum's rule), but it no longer exists and is unhealthy, so drift is visible
    obs, _client, _conn = observe([record(status="CREATE_COMPLETE")], [], [])
    o = obs[UUID]
    assert (o.exists, o.status, o.health_status) == (False, None, "UNHEALTHY")
    assert "not found" in o.health_status_reason["stack"]
    # while deleting, a missing stack means the delete finished
    obs, _client, _conn = observe([record(status="DELETE_IN_PROGRESS")], [], [])
    assert (obs[UUID].exists, obs[UUID].status) == (False, "DELETE_COMPLETE")
    obs, _client, _conn = observe([record(status="CREATE_IN_PROGRESS")], [], [])
    assert (obs[UUID].status, obs[UUID].status_reason) == ("CREATE_FAILED", "Stack demo-3f2a9c4e not found in Heat")
    # Heat may still list a stack it just deleted: that is no stack
    obs, _client, _conn = observe([record(status="UPDATE_IN_PROGRESS")], [stack("DELETE_COMPLETE")], [])
    assert (obs[UUID].exists, obs[UUID].status) == (False, "UPDATE_FAILED")


def test_a_node_deleted_out_of_band_makes_the_cluster_unhealthy():
    servers = [
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5"),
        server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6"),
    ]
    obs, _client, _conn = observe([record(status="CREATE_COMPLETE")], [stack("CREATE_COMPLETE")], servers)
    o = obs[UUID]
    assert o.status == "CREATE_COMPLETE"
    assert o.health_status == "UNHEALTHY"
    assert o.health_status_reason == {"default-worker": "1 of 2 servers exist"}


def test_in_progress_is_unknown_health():
    obs, client, _conn = observe([record()], [stack("CREATE_IN_PROGRESS")], [])
    assert obs[UUID].status == "CREATE_IN_PROGRESS"
    assert obs[UUID].health_status == "UNKNOWN"
    assert client.failure_calls == []


def test_many_clusters_cost_a_constant_number_of_calls():
    records, stacks, servers = [], [], []
    for i in range(35):
        uuid = "%08x-0000-4000-8000-%012x" % (i, i)
        records.append(record(uuid=uuid, name="c%d" % i, status="CREATE_COMPLETE", node_count=1))
        stacks.append(stack("CREATE_COMPLETE", uuid=uuid, name="c%d-%s" % (i, uuid[:8])))
        servers.append(server("c%d-master-0" % i, "default-master", "master", 0, "10.1.%d.1" % i, uuid=uuid))
        servers.append(server("c%d-default-worker-0" % i, "default-worker", "worker", 0, "10.1.%d.2" % i, uuid=uuid))
    obs, client, conn = observe(records, stacks, servers)
    assert len(client.list_calls) == 1 and len(conn.compute.calls) == 1
    assert len(client.list_calls[0]) == 35
    assert all(o.status == "CREATE_COMPLETE" and o.health_status == "HEALTHY" for o in obs.values())
    assert obs[records[7]["uuid"]].master_addresses == ["10.1.7.1"]


def test_registry_gives_the_heat_synchroniser():
    sync = get_synchroniser("heat", FakeConn([]))
    assert isinstance(sync, HeatSynchroniser)


def _known(*names, workers=2):
    """Nodegroups as a record holds them, with the nodes the last sync saw."""
    return [
        dict(name="default-master", role="master", node_count=1, nodes=[dict(name="demo-master-0", status="ACTIVE")]),
        dict(
            name="default-worker",
            role="worker",
            node_count=workers,
            nodes=[dict(name=n, status="ACTIVE") for n in names],
        ),
    ]


def test_a_known_node_whose_server_is_gone_is_missing_so_a_repair_can_be_planned():
    servers = [
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5"),
        server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6"),
    ]
    rec = record(status="CREATE_COMPLETE", nodegroups=_known("demo-default-worker-0", "demo-default-worker-1"))
    obs = observe([rec], [stack("CREATE_COMPLETE")], servers)[0][UUID]
    workers = {n["name"]: n for n in obs.nodegroups["default-worker"]["nodes"]}
    assert workers["demo-default-worker-1"]["status"] == "MISSING"
    assert workers["demo-default-worker-1"]["fault"] == "server not found"
    assert obs.nodegroups["default-worker"]["node_count"] == 1
    assert obs.health_status == "UNHEALTHY"
    assert obs.health_status_reason["demo-default-worker-1"] == "server not found"


def test_no_node_is_missing_while_heat_works_or_after_a_removal():
    servers = [
        server("demo-master-0", "default-master", "master", 0, "10.0.0.5"),
        server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6"),
    ]
    known = _known("demo-default-worker-0", "demo-default-worker-1")
    # the stack is still making or removing servers
    rec = record(status="UPDATE_IN_PROGRESS", nodegroups=known)
    obs = observe([rec], [stack("UPDATE_IN_PROGRESS")], servers)[0][UUID]
    assert {n["status"] for n in obs.nodegroups["default-worker"]["nodes"]} == {"ACTIVE"}
    # a removal done: the record now wants one worker, the one that went is not missing
    rec = record(status="UPDATE_IN_PROGRESS", node_count=1, nodegroups=[known[0], dict(known[1], node_count=1)])
    obs = observe([rec], [stack("UPDATE_COMPLETE")], servers)[0][UUID]
    assert [n["name"] for n in obs.nodegroups["default-worker"]["nodes"]] == ["demo-default-worker-0"]
    assert obs.health_status == "HEALTHY"


def test_every_server_gone_while_the_stack_remains_shows_every_known_node_missing():
    # the stack is there (CREATE_COMPLETE) but none of its servers: the same repair as for one
    rec = record(status="CREATE_COMPLETE", nodegroups=_known("demo-default-worker-0", "demo-default-worker-1"))
    obs = observe([rec], [stack("CREATE_COMPLETE")], [])[0][UUID]
    assert obs.exists
    assert obs.status == "CREATE_COMPLETE"  # the stack's own status
    nodes = {n["name"]: n["status"] for g in obs.nodegroups.values() for n in g["nodes"]}
    assert nodes == {"demo-master-0": "MISSING", "demo-default-worker-0": "MISSING", "demo-default-worker-1": "MISSING"}
    assert obs.health_status == "UNHEALTHY"
    assert {"demo-master-0", "demo-default-worker-0", "demo-default-worker-1"} <= set(obs.health_status_reason)


# -- a stack settled before the recorded operation began -----------------------------------

STARTED = "2027-01-15T08:00:00+00:00"  # the record's operation_started_at (the store's iso())


def every_node(workers=2):
    """The server views of every node of ``record()`` (1 master, ``workers`` workers), ACTIVE."""
    from ansible_collections.coe.openstack.plugins.module_utils.servers import server_view

    nodes = [server("demo-master-0", "default-master", "master", 0, "10.0.0.5")]
    nodes += [
        server("demo-default-worker-%d" % i, "default-worker", "worker", i, "10.0.0.%d" % (6 + i))
        for i in range(workers)
    ]
    return [server_view(s) for s in nodes]


def timed(status, created="2027-01-15T07:00:00Z", updated=None):
    """A listed stack with Heat's creation_time and updated_time (as openstacksdk names them)."""
    return dict(stack(status), created_at=created, updated_at=updated)


@pytest.mark.parametrize(
    "record_status, seen, not_started",
    [
        # the update call failed (Heat refused it): the stack is still the previous outcome
        ("UPDATE_IN_PROGRESS", timed("CREATE_COMPLETE"), True),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T07:40:00Z"), True),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_FAILED", updated="2027-01-15T07:40:00Z"), True),
        ("UPDATE_IN_PROGRESS", timed("ROLLBACK_COMPLETE", updated="2027-01-15T07:40:00Z"), True),
        # Heat began the update after the operation was recorded: its outcome is ours
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T08:00:07Z"), False),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_FAILED", updated="2027-01-15T08:00:07Z"), False),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_IN_PROGRESS", updated="2027-01-15T08:00:07Z"), False),
        # a create with rendered user-data: the stack made (no nodes), then updated to its nodes
        ("CREATE_IN_PROGRESS", timed("CREATE_COMPLETE", created="2027-01-15T08:00:04Z"), False),
        (
            "CREATE_IN_PROGRESS",
            timed("UPDATE_IN_PROGRESS", created="2027-01-15T08:00:04Z", updated="2027-01-15T08:00:20Z"),
            False,
        ),
        (
            "CREATE_IN_PROGRESS",
            timed("UPDATE_COMPLETE", created="2027-01-15T08:00:04Z", updated="2027-01-15T08:00:20Z"),
            False,
        ),
        # a create retried after a runner failure, its update call refused again: the stack
        # of the first attempt says nothing about this one
        ("CREATE_IN_PROGRESS", timed("CREATE_COMPLETE", created="2027-01-15T07:50:00Z"), True),
        # a delete keeps its mapping (merge_observation ignores another operation's outcome)
        ("DELETE_IN_PROGRESS", timed("DELETE_FAILED", updated="2027-01-15T07:40:00Z"), False),
        # Heat's clock behind ours, within the margin: taken as the operation's own change
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T07:59:50Z"), False),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T07:59:30Z"), False),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T07:59:29Z"), True),
        # Heat's times without a zone are UTC
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T08:00:07"), False),
        ("UPDATE_IN_PROGRESS", timed("UPDATE_COMPLETE", updated="2027-01-15T07:40:00"), True),
        # times unknown: read as before
        ("UPDATE_IN_PROGRESS", timed("CREATE_COMPLETE", created=None), False),
        ("UPDATE_IN_PROGRESS", timed("CREATE_COMPLETE", created="yesterday"), False),
    ],
)
def test_a_stack_settled_before_the_operation_is_flagged_not_started(record_status, seen, not_started):
    seen = dict(seen, tags=["coe-cluster-%s" % UUID])
    sync = HeatSynchroniser(FakeConn([]), client=FakeClient([seen]))
    obs = sync.observation(record(status=record_status, operation_started_at=STARTED), seen, every_node())
    assert obs.not_started is not_started
    # the status is mapped as always: a driver that had nothing to change made no stack call
    assert obs.status == map_status(record_status, seen)[0]


def test_without_the_operations_start_nothing_is_flagged():
    # a record written before operation_started_at existed
    seen = timed("CREATE_COMPLETE")
    sync = HeatSynchroniser(FakeConn([]), client=FakeClient([seen]))
    obs = sync.observation(record(status="UPDATE_IN_PROGRESS"), seen, every_node())
    assert not obs.not_started and obs.status == "UPDATE_COMPLETE"


def test_settled_before_margin_is_the_documented_one():
    started = epoch(STARTED)
    seen = timed("UPDATE_COMPLETE", updated="2027-01-15T07:59:00Z")
    assert settled_before(seen, started)  # 60 s before: beyond the margin
    assert not settled_before(seen, started, margin=SETTLED_BEFORE_MARGIN + 60)
    assert not settled_before(timed("UPDATE_IN_PROGRESS", updated="2027-01-15T07:00:00Z"), started)
    assert not settled_before(None, started)


def test_an_update_heat_refused_goes_failed_with_the_runners_reason(tmp_path):
    """The front door's rescue: the update call failed, the stack is as before the resize."""
    now = [1_800_000_000.0]
    store = open_store("sqlite://%s" % (tmp_path / "coe.db"), clock=lambda: now[0])
    spec = dict(driver="heat", image_id="fcos-40", flavor_id="m1.small", coe_version="v1.30.4")
    ensure_template(store, "k8s", "present", spec_params=spec)
    desired = dict(name="demo", project_id="default", state="present", template_name="k8s")
    uuid = ensure_cluster(store, desired)["cluster"]["uuid"]
    created = iso(now[0] + 5).replace("+00:00", "Z")
    stacks = [dict(stack("CREATE_COMPLETE", uuid=uuid, name="demo-" + uuid[:8]), created_at=created, updated_at=None)]
    nodes = [server("demo-master-0", "default-master", "master", 0, "10.0.0.5", uuid=uuid)]
    nodes += [server("demo-default-worker-0", "default-worker", "worker", 0, "10.0.0.6", uuid=uuid)]

    def synchroniser_for(driver):
        assert driver == "heat"
        return HeatSynchroniser(FakeConn(nodes), client=FakeClient(stacks))

    # the create completes
    now[0] += 600
    assert (
        sync_clusters(store, [store.get_cluster(uuid)], synchroniser_for)["clusters"][0]["status"] == "CREATE_COMPLETE"
    )

    # a resize is recorded; the driver's stack update call is refused, the stack stays as it was
    now[0] += 600
    recorded = ensure_cluster(store, dict(desired, node_count=3))["cluster"]
    assert recorded["status"] == "UPDATE_IN_PROGRESS"
    assert recorded["operation_started_at"] == iso(now[0])
    now[0] += 20
    token = LockManager(store).acquire("default", "demo", "update", ttl=300)["token"]
    lock = dict(project="default", name="demo", token=token, ttl=300)

    # a poll without fail_reason: Heat has not begun the resize, its third worker is still to be
    # made (check mode: nothing written)
    polled = sync_clusters(store, [store.get_cluster(uuid)], synchroniser_for, lock=lock, check_mode=True)
    assert polled["clusters"][0]["status"] == "UPDATE_IN_PROGRESS"
    assert store.get_cluster(uuid)["status"] == "UPDATE_IN_PROGRESS"

    # the rescue: nothing at work in Heat, so the runner's failure is the cluster's
    reason = "Couldn't update stack demo: HttpException: 400: Bad Request"
    failed = sync_clusters(store, [store.get_cluster(uuid)], synchroniser_for, lock=lock, fail_reason=reason)
    got = failed["clusters"][0]
    assert failed["changed"] and got["status"] == "UPDATE_FAILED" and got["status_reason"] == reason
    assert got["runner_failure"] is True

    # when Heat does take the update (a retry), its outcome is recorded as usual
    LockManager(store).release("default", "demo", token)
    retry = ensure_cluster(store, dict(desired, node_count=3))
    assert retry["plan"]["retry"] and retry["cluster"]["status"] == "UPDATE_IN_PROGRESS"
    now[0] += 60
    stacks[0] = dict(stacks[0], status="UPDATE_COMPLETE", updated_at=iso(now[0] - 50).replace("+00:00", "Z"))
    nodes.extend(
        server("demo-default-worker-%d" % i, "default-worker", "worker", i, "10.0.0.%d" % (6 + i), uuid=uuid)
        for i in (1, 2)
    )
    done = sync_clusters(store, [store.get_cluster(uuid)], synchroniser_for)["clusters"][0]
    assert done["status"] == "UPDATE_COMPLETE"


def test_an_sdk_server_gives_its_image_id():
    """openstacksdk's Server is a dict too: the server view reads its image id (node image_id)."""
    sdk = pytest.importorskip("openstack.compute.v2.server")
    from ansible_collections.coe.openstack.plugins.module_utils.servers import server_view

    server = sdk.Server(id="s-1", name="demo-master-0", status="ACTIVE", image={"id": "img-1"}, metadata={})
    assert server_view(server)["image_id"] == "img-1"


@pytest.mark.parametrize(
    "stacks, working",
    [
        ([stack("CREATE_IN_PROGRESS")], True),
        ([stack("CREATE_COMPLETE")], False),
        ([stack("CREATE_FAILED")], False),  # failed: observe (the resources still at work are read then)
        ([stack("CREATE_IN_PROGRESS", name="other-3f2a9c4e")], False),  # not the cluster's stack
        ([], False),
    ],
)
def test_still_working_is_one_look_at_the_stacks_status(stacks, working):
    client = FakeClient(stacks)
    conn = FakeConn([])
    sync = HeatSynchroniser(conn, client=client)
    assert sync.still_working(record()) is working
    assert client.list_calls == ["demo-3f2a9c4e"] and conn.compute.calls == []
