"""The whole lifecycle through the playbooks, end to end, for both drivers.

One scenario, parametrized over the driver, so that parity is tested rather than assumed:
create 3 masters + 2 workers -> the same play again changes nothing and makes no write call
-> check mode of an update prints the plan and changes nothing -> scale 2 -> 4 -> 3 removing
a named node -> add and remove a nodegroup -> upgrade to template version 2 (another image)
-> delete, leaving nothing of the cluster in the cloud. Then bad input through the playbooks,
which must stop before any cloud write with the variable named.

Each test runs as a keystone user of its own (coe_runner.CloudUser), so the write calls
counted in the services' logs are this test's only.
"""

import os

import pytest
from coe_runner import CloudUser, RequestLog, Runner, cloud_resources, short_id

pytestmark = pytest.mark.usefixtures("minicloud")

DRIVERS = ["heat", "nova"]


@pytest.fixture
def user(tmp_path, minicloud):
    u = CloudUser(tmp_path)
    yield u
    u.close()


@pytest.fixture
def runner(tmp_path, user):
    return Runner(tmp_path, user)


def template(name, driver, **over):
    spec = dict(
        name=name,
        driver=driver,
        image_id="fake-image",
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        keypair_id="demo-key",
        fixed_network="private",
        external_network_id="public",
        coe_version="v1.31.1",
        labels={"kube_tag": "v1.31.1"},
        # the local cloud has three usable compute hosts: with hard anti-affinity, a rolling
        # upgrade of three masters (a new master up before an old one goes) finds no host
        master_server_group_policy="soft-anti-affinity",
    )
    spec.update(over)
    return spec


def nodes(record, group=None):
    """{node name: node} of the record's nodegroups (or of one)."""
    found = {}
    for ng in record.get("nodegroups") or []:
        if group is None or ng["name"] == group:
            for node in ng.get("nodes") or []:
                found[node["name"]] = node
    return found


def servers(user, record):
    """The cluster's servers, as `openstack server list` shows them once Nova has forgotten
    the deleted ones (it lists one a moment longer with status DELETED: servers.live)."""
    listed = user.conn.compute.servers(tags="coe-cluster-%s" % record["uuid"])
    return {s.name: s for s in listed if s.status != "DELETED"}


def resource_ids(user, record):
    """Ids a neutron/glance write path about this cluster would name."""
    found = cloud_resources(user.conn, record["uuid"], record["name"])
    ids = set(found["ports"]) | set(found["security_groups"])
    ids |= {f.id for f in user.conn.network.ips(tags="coe-cluster-%s" % record["uuid"])}
    ids |= {s.id for s in servers(user, record).values()}
    return ids


@pytest.mark.parametrize("driver", DRIVERS)
def test_lifecycle(driver, runner, user):
    tname = "it-%s-%s" % (driver, short_id())
    name = "lc-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    image_v2 = user.conn.image.find_image("fake-image-v2", ignore_missing=False)
    runner.templates(template(tname, driver, image_id="fake-image-v2"))

    spec = dict(
        coe_cluster_template=tname,
        coe_cluster_template_version=1,
        coe_master_count=3,
        coe_node_count=2,
        # the Nova driver takes the masters' server group policy from its own variable
        nova_driver_master_server_group_policy="soft-anti-affinity",
    )
    record = None
    try:
        # check mode of a create: the plan is printed (the cloud's references checked), nothing written
        result = runner.run("create", {name: spec}, check=True, diff=True)
        assert result.rc == 0, result
        assert "%s: create; default-master 0 -> 3; default-worker 0 -> 2" % name in result.out, result
        assert runner.record(name) is None
        with runner.store() as store:
            assert store.get_lock("default", name) is None  # check mode takes no lock

        # create 3 masters + 2 workers
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        assert "%s: CREATE_" % name in result.out, "no progress line:\n%s" % result.out
        assert "nodes ACTIVE" in result.out and "elapsed" in result.out
        record = runner.record(name)
        assert record["status"] == "CREATE_COMPLETE", record
        assert record["driver"] == driver
        assert record["api_address"]
        assert len(record["master_addresses"]) == 3
        assert len(record["node_addresses"]) == 2
        have = servers(user, record)
        assert len(have) == 5 and all(s.status == "ACTIVE" for s in have.values()), have
        assert set(nodes(record)) == set(have)
        with runner.store() as store:
            assert store.get_lock("default", name)["holder"] is None, "the lock was not released"

        # the same play again: nothing changed, no write call reached the cloud
        log = RequestLog(user.id)
        assert log.has_logs(), "the cloud's request logs are missing"
        ids = resource_ids(user, record)
        log.mark()
        generation = record["generation"]
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        assert result.recap[name]["changed"] == 0, result
        assert log.writes(ids) == []
        assert runner.record(name)["generation"] == generation

        # the store as the inventory (coe.openstack.clusters): its host vars are the cluster's
        # spec, so the update playbook finds nothing to do
        store_inventory = os.path.join(runner.tmp, "clusters.coe.yml")
        with open(store_inventory, "w") as f:
            f.write("plugin: coe.openstack.clusters\n")
        result = runner.run("update", limit=name, check=True, args=["-i", store_inventory])
        assert result.rc == 0, result
        assert "%s: nothing to do" % name in result.out, result

        # check mode of an update: the plan is printed, nothing changes
        log.mark()
        result = runner.run("update", {name: dict(spec, coe_node_count=4)}, check=True, diff=True)
        assert result.rc == 0, result
        assert "default-worker 2 -> 4" in result.out, result
        assert "node_count" in result.out  # --diff shows the desired spec before and after
        assert log.writes(ids) == []
        after = runner.record(name)
        assert after["generation"] == generation and after["node_count"] == 2
        assert len(servers(user, record)) == 5

        # scale out 2 -> 4
        result = runner.run("update", {name: dict(spec, coe_node_count=4)})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        workers = sorted(nodes(record, "default-worker"))
        assert len(workers) == 4 and len(servers(user, record)) == 7

        # scale in 4 -> 3 removing a named node: that node is the one gone
        victim = workers[1]
        result = runner.run("update", {name: dict(spec, coe_node_count=3, coe_nodes_to_remove=[victim])})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        have = servers(user, record)
        assert victim not in have
        assert set(nodes(record, "default-worker")) == set(workers) - {victim}
        assert len(have) == 6

        # add a nodegroup, then remove it
        spec.update(coe_node_count=3, coe_nodes_to_remove=[victim])
        extra = dict(spec, coe_nodegroups=[dict(name="extra", node_count=1)])
        result = runner.run("update", {name: extra})
        assert result.rc == 0, result
        record = runner.record(name)
        assert [n for n in servers(user, record) if n.startswith("%s-extra-" % name)], servers(user, record)
        assert len(nodes(record, "extra")) == 1
        # an update that does not mention the nodegroups keeps them; an empty list removes them
        result = runner.run("update", {name: spec})
        assert result.rc == 0, result
        assert len(nodes(runner.record(name), "extra")) == 1
        result = runner.run("update", {name: dict(spec, coe_nodegroups=[])})
        assert result.rc == 0, result
        record = runner.record(name)
        assert not [n for n in servers(user, record) if "-extra-" in n]
        assert "extra" not in [ng["name"] for ng in record["nodegroups"]]

        # upgrade to template version 2: every server on the new image
        result = runner.run("update", {name: dict(spec, coe_cluster_template_version=2)})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        assert record["template_version"] == 2
        have = servers(user, record)
        assert len(have) == 6
        assert {s.image["id"] for s in have.values()} == {image_v2.id}, {n: s.image for n, s in have.items()}
        spec["coe_cluster_template_version"] = 2

        # delete: nothing of the cluster is left, the record is gone, the lock is free
        result = runner.run("delete", {name: spec})
        assert result.rc == 0, result
        assert runner.record(name) is None
        left = cloud_resources(user.conn, record["uuid"], name)
        assert not any(left.values()), left
        record = None
    finally:
        if record is not None or runner.record(name) is not None:
            runner.run("delete", {name: spec}, extra={"coe_force": True})


BAD_INPUT = [
    # (what, host name, host vars over a good spec, the variable the error must name)
    ("bad name", "Bad_Name", {}, "'name'"),
    ("even master count", None, {"coe_master_count": 2}, "'master_count'"),
    ("unknown template version", None, {"coe_cluster_template_version": 9}, "cluster_template_version"),
    ("missing flavor", None, {"coe_flavor": "no-such-flavor"}, "flavor"),
]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("what,host,over,field", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_stops_before_any_cloud_write(driver, what, host, over, field, runner, user):
    tname = "it-%s-%s" % (driver, short_id())
    runner.templates(template(tname, driver))
    name = host or "bad-%s-%s" % (driver[0], short_id())
    spec = dict(dict(coe_cluster_template=tname, coe_master_count=3, coe_node_count=2), **over)
    log = RequestLog(user.id)
    log.mark()
    result = runner.run("create", {name: spec})
    try:
        assert result.rc != 0, result
        assert field in result.out, result
        # nothing was written to the cloud, nothing exists there
        assert log.writes() == []
        assert not list(user.conn.compute.servers(name="^%s-" % name.lower()))
        assert not [s for s in user.conn.orchestration.stacks() if s.name.startswith(name.lower())]
        # and the store keeps no half-made cluster
        assert runner.record(name) is None
    finally:
        if runner.record(name) is not None:
            runner.run("delete", {name: spec}, extra={"coe_force": True})


@pytest.mark.parametrize("driver", ["nova", "heat"])
def test_a_server_deleted_behind_our_back_is_recreated_by_one_run(runner, user, driver):
    """Drift: no sync run in between; the create play observes the cloud before it plans.

    Heat: the synchroniser lists the gone node as MISSING, and the driver marks its
    ResourceGroup member unhealthy so that the stack update makes it again."""
    tname = "it-%s-%s" % (driver, short_id())
    name = "dr-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    spec = dict(
        coe_cluster_template=tname,
        coe_master_count=1,
        coe_node_count=2,
        nova_driver_master_server_group_policy="soft-anti-affinity",
    )
    record = None
    try:
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "CREATE_COMPLETE", record
        victim = sorted(nodes(record, "default-worker"))[1]
        server = servers(user, record)[victim]
        user.conn.compute.delete_server(server)
        user.conn.compute.wait_for_delete(server, wait=120)

        # check mode sees the drift now and prints the repair, writing nothing
        generation = runner.record(name)["generation"]
        result = runner.run("create", {name: spec}, check=True)
        assert result.rc == 0, result
        assert "%s: resize; repairing %s" % (name, victim) in result.out, result
        assert runner.record(name)["generation"] == generation
        assert victim not in servers(user, record)

        # ONE run recreates it, under its own name
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        have = servers(user, record)
        assert victim in have and have[victim].status == "ACTIVE", have
        assert len(have) == 3
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        assert record["health_status"] == "HEALTHY", record
        assert {n["status"] for n in nodes(record).values()} == {"ACTIVE"}, nodes(record)
        with runner.store() as store:
            events = store.list_events(cluster_uuid=record["uuid"])
        assert [e for e in events if "repair" in (e["message"] or "")], events

        # and a second run has nothing to do: no change, no write call
        log = RequestLog(user.id)
        ids = resource_ids(user, record)
        log.mark()
        generation = record["generation"]
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        assert result.recap[name]["changed"] == 0, result
        assert "%s: nothing to do" % name in result.out, result
        assert log.writes(ids) == []
        assert runner.record(name)["generation"] == generation
    finally:
        if record is not None or runner.record(name) is not None:
            runner.run("delete", {name: spec}, extra={"coe_force": True})
