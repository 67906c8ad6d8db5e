"""The Nova batch runner against a fake connection: calls, concurrency, waits, faults, quota."""

import threading
import time

import pytest
from fakecloud import FakeCloud

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, NotFoundError, WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner
from ansible_collections.coe.openstack.plugins.module_utils.nova.client import NovaBatch

UUID = "0b0c8f1e-1111-4222-8333-444455556666"


def make_batch(cloud, **kw):
    kw.setdefault("poll_interval", 0)
    return NovaBatch(cloud, UUID, "k1", **kw)


def spec(name, nodegroup="default-worker", role="worker", flavor="m1.small", **kw):
    return dict(
        name=name,
        nodegroup=nodegroup,
        role=role,
        flavor=flavor,
        image="fake-image",
        keypair="demo-key",
        networks=[{"name": "private"}],
        **kw,
    )


def run(cloud, specs, **kw):
    batch = make_batch(cloud, **{k: kw.pop(k) for k in ("concurrency", "clock", "sleep") if k in kw})
    views = batch.list_views()
    resolved = batch.resolve(specs)
    plan = planner.make_plan(specs, views, **{k: kw.pop(k) for k in ("prune", "delete", "replace_errored") if k in kw})
    return plan, batch.apply(plan, resolved, **kw)


def test_creates_missing_servers_tagged_with_metadata_and_user_data():
    cloud = FakeCloud()
    specs = [
        spec("k1-master-1", "default-master", "master", index=1, user_data="#cloud-config\n"),
        spec("k1-default-worker-1"),
    ]
    _plan, result = run(cloud, specs)
    assert result["created"] == ["k1-default-worker-1", "k1-master-1"]
    assert result["failed"] == {}
    bodies = {c[2]["name"]: c[2] for c in cloud.calls if c[1] == "create_server"}
    master = bodies["k1-master-1"]
    assert master["tags"] == [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    assert master["metadata"] == {
        "coe_cluster_uuid": UUID,
        "coe_cluster_name": "k1",
        "coe_nodegroup": "default-master",
        "coe_role": "master",
        "coe_index": "1",
    }
    assert master["networks"] == [{"uuid": "net-1"}]
    assert master["key_name"] == "demo-key"
    assert master["user_data"] == "I2Nsb3VkLWNvbmZpZwo="  # base64 of the text
    assert {v["name"]: v["status"] for v in result["views"]} == {
        "k1-master-1": "ACTIVE",
        "k1-default-worker-1": "ACTIVE",
    }


def test_second_run_makes_no_write_call():
    cloud = FakeCloud()
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 4)]
    run(cloud, specs)
    before = len(cloud.writes())
    plan, result = run(cloud, specs)
    assert not planner.plan_changed(plan)
    assert result["created"] == [] and result["deleted"] == []
    assert len(cloud.writes()) == before


def test_waiting_uses_one_tag_filtered_list_per_poll_never_a_get_per_server():
    cloud = FakeCloud(polls_to_active=3)
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 21)]
    run(cloud, specs)
    lists = [c for c in cloud.calls if c[1] == "servers"]
    # one list before; one per poll, of the servers in BUILD only, until the 3rd poll finds
    # none; then the one full list of the views returned
    assert [c[2].get("status") for c in lists] == [None, "BUILD", "BUILD", "BUILD", None]
    assert all(c[2]["tags"] == shape.cluster_tag(UUID) and c[2]["details"] for c in lists)
    assert not [c for c in cloud.calls if c[1] in ("get_server", "find_server")]


def test_waiting_for_deletes_polls_the_ids_only_and_lists_the_details_once_at_the_end():
    cloud = FakeCloud()
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 6)]
    run(cloud, specs)
    del cloud.calls[:]
    _plan, result = run(cloud, specs[:2], prune=True)
    assert sorted(result["deleted"]) == ["k1-default-worker-%d" % i for i in range(3, 6)]
    # the list the plan is made from, a summary list per poll, the full list of the views returned
    assert [c[2]["details"] for c in cloud.calls if c[1] == "servers"] == [True, False, True]
    assert sorted(v["name"] for v in result["views"]) == ["k1-default-worker-1", "k1-default-worker-2"]


def test_a_wait_lists_every_servers_details_until_on_poll_has_what_it_waited_for():
    cloud = FakeCloud(polls_to_active=4)
    batch = NovaBatch(cloud, UUID, "k1", poll_interval=0, sleep=lambda s: None)
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 4)]
    resolved = batch.resolve(specs)
    seen = []

    def on_poll(views):
        seen.append(sorted(v["status"] for v in views))
        return len(seen) == 2

    result = batch.apply(planner.make_plan(specs, batch.list_views()), resolved, on_poll=on_poll)
    assert seen == [["BUILD"] * 3] * 2
    assert [c[2].get("status") for c in cloud.calls if c[1] == "servers"][-4:] == [None, "BUILD", "BUILD", None]
    assert {v["status"] for v in result["views"]} == {"ACTIVE"}


def test_references_are_resolved_once_per_distinct_value():
    cloud = FakeCloud()
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 11)]
    run(cloud, specs)
    assert cloud.count("find_flavor") == 1
    assert cloud.count("find_image") == 1
    assert cloud.count("find_network") == 1
    assert cloud.count("find_keypair") == 1


def test_creates_run_concurrently_with_bounded_parallelism():
    cloud = FakeCloud()
    active = []
    peak = []
    lock = threading.Lock()
    original = cloud.compute.create_server

    def slow_create(**body):
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.05)
        try:
            return original(**body)
        finally:
            with lock:
                active.pop()

    cloud.compute.create_server = slow_create
    specs = [spec("k1-default-worker-%d" % i) for i in range(1, 13)]
    started = time.monotonic()
    _plan, result = run(cloud, specs, concurrency=4)
    elapsed = time.monotonic() - started
    assert len(result["created"]) == 12
    assert max(peak) == 4
    assert elapsed < 12 * 0.05  # not one after another


def test_no_valid_host_is_reported_with_novas_fault():
    cloud = FakeCloud()
    specs = [spec("k1-default-worker-1"), spec("k1-default-worker-2", flavor="m1.huge")]
    _plan, result = run(cloud, specs)
    assert result["failed"] == {"k1-default-worker-2": "No valid host was found. (code 500)"}
    status = {v["name"]: (v["status"], v["fault"]) for v in result["views"]}
    assert status["k1-default-worker-1"] == ("ACTIVE", None)
    assert status["k1-default-worker-2"] == ("ERROR", "No valid host was found. (code 500)")


def test_a_create_refused_by_the_cloud_is_reported_and_the_others_go_on():
    class Forbidden(Exception):
        message = "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"

    cloud = FakeCloud()
    cloud.create_errors["k1-default-worker-2"] = Forbidden()
    _plan, result = run(cloud, [spec("k1-default-worker-1"), spec("k1-default-worker-2")])
    assert result["created"] == ["k1-default-worker-1"]
    assert "Quota exceeded for instances" in result["failed"]["k1-default-worker-2"]


def test_repair_replaces_a_server_in_error():
    cloud = FakeCloud()
    tags = [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    bad = cloud.add_server("k1-default-worker-1", status="ERROR", tags=tags, fault={"code": 500, "message": "boom"})
    cloud.add_server("k1-default-worker-2", tags=tags)
    plan, result = run(cloud, [spec("k1-default-worker-1"), spec("k1-default-worker-2")])
    assert [v["name"] for v in plan["replace"]] == ["k1-default-worker-1"]
    assert result["deleted"] == ["k1-default-worker-1"] and result["created"] == ["k1-default-worker-1"]
    assert bad.id not in cloud.servers
    assert sorted((s.name, s.status) for s in cloud.servers.values()) == [
        ("k1-default-worker-1", "ACTIVE"),
        ("k1-default-worker-2", "ACTIVE"),
    ]


def test_surplus_servers_are_deleted_and_waited_for():
    cloud = FakeCloud()
    tags = [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    for i in (1, 2, 3):
        cloud.add_server("k1-default-worker-%d" % i, tags=tags)
    other = cloud.add_server("other-cluster-node", tags=[shape.COMMON_TAG, shape.cluster_tag("x" * 8)])
    _plan, result = run(cloud, [spec("k1-default-worker-1")])
    assert sorted(result["deleted"]) == ["k1-default-worker-2", "k1-default-worker-3"]
    assert sorted(s.name for s in cloud.servers.values()) == ["k1-default-worker-1", "other-cluster-node"]
    assert other.id in cloud.servers


def test_quota_too_small_fails_naming_the_quota_before_any_create():
    cloud = FakeCloud(quota=dict(cores=3))
    specs = [spec("k1-default-worker-%d" % i, flavor="m1.medium") for i in range(1, 3)]
    with pytest.raises(CloudError) as err:
        run(cloud, specs)
    assert "quota for cores: 4 needed, 0 of 3 used (3 free)" in str(err.value)
    assert cloud.count("create_server") == 0


def test_ports_quota_is_checked_too():
    cloud = FakeCloud(quota=dict(ports=1))
    with pytest.raises(CloudError) as err:
        run(cloud, [spec("a"), spec("b")])
    assert "quota for ports: " in str(err.value)
    assert cloud.count("create_server") == 0


def test_a_missing_reference_fails_before_any_write():
    cloud = FakeCloud()
    with pytest.raises(NotFoundError) as err:
        run(cloud, [dict(spec("a"), image="no-such-image")])
    assert "Image no-such-image" in str(err.value)
    assert cloud.writes() == []


def test_rolling_replacement_never_has_fewer_active_servers():
    cloud = FakeCloud()
    tags = [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    for i in (1, 2, 3):
        cloud.add_server("k1-default-worker-%d" % i, tags=tags, metadata={"coe_nodegroup": "default-worker"})
    lowest = []
    original = cloud.compute.servers

    def watching(**kw):
        result = original(**kw)
        old = [
            s
            for s in cloud.servers.values()
            if s.name in ("k1-default-worker-1", "k1-default-worker-2", "k1-default-worker-3")
        ]
        new_active = [s for s in cloud.servers.values() if s.status == "ACTIVE" and s not in old]
        lowest.append(len([s for s in old if not s.deleting]) + len(new_active))
        return result

    cloud.compute.servers = watching
    specs = [dict(spec("k1-default-worker-%d" % i), replaces="k1-default-worker-%d" % (i - 3)) for i in (4, 5, 6)]
    _plan, result = run(cloud, specs, batch_size=1)
    assert result["created"] == ["k1-default-worker-4", "k1-default-worker-5", "k1-default-worker-6"]
    assert min(lowest) >= 3
    # creates and deletes alternate: create 4, delete 1, create 5, delete 2, ...
    order = [
        (c[1], c[2].get("name") or c[2].get("server"))
        for c in cloud.calls
        if c[1] in ("create_server", "delete_server")
    ]
    assert [o[0] for o in order] == ["create_server", "delete_server"] * 3


def test_rolling_stops_at_the_first_failed_batch_and_keeps_the_old_servers():
    cloud = FakeCloud()
    tags = [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    for i in (1, 2):
        cloud.add_server("w-%d" % i, tags=tags, metadata={"coe_nodegroup": "default-worker"})
    specs = [dict(spec("w-%d" % i, flavor="m1.huge"), replaces="w-%d" % (i - 2)) for i in (3, 4)]
    _plan, result = run(cloud, specs, batch_size=1)
    assert list(result["failed"]) == ["w-3"]
    assert cloud.count("delete_server") == 0
    assert sorted(s.name for s in cloud.servers.values()) == ["w-1", "w-2", "w-3"]


def test_wait_timeout_names_the_servers_still_building():
    cloud = FakeCloud(polls_to_active=10**6)
    now = [0.0]

    def clock():
        return now[0]

    def sleep(seconds):
        now[0] += 5

    with pytest.raises(WaitTimeout) as err:
        run(cloud, [spec("k1-default-worker-1")], clock=clock, sleep=sleep, timeout=20)
    assert "Timed out after 20s" in str(err.value)
    assert "still building: k1-default-worker-1" in str(err.value)


def test_a_dropped_connection_while_polling_is_retried_but_not_a_create():
    from keystoneauth1 import exceptions as ksa

    cloud = FakeCloud(polls_to_active=2)
    original = cloud.compute.servers
    failures = []

    def flaky(**kw):
        if cloud.count("servers") in (1, 2):  # the first two polls after the create drop
            cloud.record("compute", "servers", **kw)
            failures.append(1)
            raise ksa.ConnectFailure("Connection reset by peer")
        return original(**kw)

    cloud.compute.servers = flaky
    _plan, result = run(cloud, [spec("k1-default-worker-1")], sleep=lambda seconds: None)
    assert len(failures) == 2
    assert result["created"] == ["k1-default-worker-1"]
    assert [v["status"] for v in result["views"]] == ["ACTIVE"]

    cloud = FakeCloud()
    cloud.create_errors["k1-default-worker-1"] = ksa.ConnectFailure("Connection reset by peer")
    _plan, result = run(cloud, [spec("k1-default-worker-1")])
    assert cloud.count("create_server") == 1
    assert "Connection reset by peer" in result["failed"]["k1-default-worker-1"]


def test_waiting_for_novas_view_of_a_floating_ip_gives_up_quietly():
    cloud = FakeCloud()
    cloud.add_server("k1-master-1", tags=["coe-cluster-" + UUID])
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    batch = NovaBatch(cloud, UUID, "k1", clock=lambda: now[0], sleep=sleep)
    views = batch.wait_for_floating_address("k1-master-1", "172.24.4.9", 5)
    assert [v["name"] for v in views] == ["k1-master-1"]
    assert now[0] == 5.0
    server = next(iter(cloud.servers.values()))
    server.addresses["private"].append({"addr": "172.24.4.9", "OS-EXT-IPS:type": "floating"})
    views = batch.wait_for_floating_address("k1-master-1", "172.24.4.9", 5)
    assert views[0]["floating_addresses"] == ["172.24.4.9"] and now[0] == 5.0


# -- server group policies: the options (the nova_driver_* variables) over the template ----

POLICY_RECORD = dict(
    uuid=UUID,
    name="k1",
    image_id="fake-image",
    flavor_id="m1.small",
    master_flavor_id="m1.medium",
    fixed_network="private",
    nodegroups=[
        dict(name="default-master", role="master", node_count=1),
        dict(name="default-worker", role="worker", node_count=1),
        dict(name="gpu", role="worker", node_count=1),
    ],
    template=dict(master_server_group_policy="soft-anti-affinity"),
)


@pytest.mark.parametrize(
    "options, groups",
    [
        # not set: the masters take the template's policy, the workers have no group
        (dict(), {"default-master": "soft-anti-affinity"}),
        (dict(master_policy="affinity"), {"default-master": "affinity"}),
        (
            dict(worker_policy="soft-affinity"),
            {"default-master": "soft-anti-affinity", "default-worker": "soft-affinity", "gpu": "soft-affinity"},
        ),
        # a nodegroup named in server_groups keeps that policy
        (
            dict(worker_policy="soft-affinity", server_groups={"gpu": "anti-affinity"}),
            {"default-master": "soft-anti-affinity", "default-worker": "soft-affinity", "gpu": "anti-affinity"},
        ),
    ],
)
def test_server_group_policies_come_from_the_options_else_the_template(options, groups):
    from ansible_collections.coe.openstack.plugins.module_utils.nova.client import resource_settings

    assert resource_settings(POLICY_RECORD, **options)[0] == groups


@pytest.mark.parametrize("option", ["master_policy", "worker_policy"])
def test_a_bad_server_group_policy_option_is_named(option):
    from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
    from ansible_collections.coe.openstack.plugins.module_utils.nova.client import resource_settings

    with pytest.raises(ValidationError) as err:
        resource_settings(POLICY_RECORD, **{option: "together"})
    assert err.value.field == option.replace("_policy", "_server_group_policy")
