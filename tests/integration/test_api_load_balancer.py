"""The API behind an Octavia load balancer (``master_lb_enabled``), both drivers, real local cloud.

One 3-master cluster per driver carries every check: the load balancer is ACTIVE with the
three masters as members and the floating IP on its VIP port, and ``api_address`` is that
floating IP; a master deleted behind our back is repaired by one run and keeps the
address; an upgrade that replaces the masters keeps the address and the members follow the
new masters; delete leaves no load balancer, port, floating IP or security group. A cloud
whose catalog has no ``load-balancer`` service refuses the create in the plan, before any
write, naming ``master_lb_enabled``.
"""

import re

import pytest
import yaml
from coe_runner import RequestLog, cloud_resources, short_id, template

pytestmark = pytest.mark.usefixtures("minicloud")

API_URL = re.compile(r"^https://(?P<host>[0-9.]+):6443$")
ALLOWED = ["10.0.0.0/8", "172.24.4.0/24"]


def cluster_lb(user, record):
    """The cluster's load balancer as Octavia has it (found by the uuid in its name)."""
    found = [lb for lb in user.conn.load_balancer.load_balancers() if record["uuid"] in (lb.name or "")]
    assert len(found) == 1, [lb.name for lb in found]
    return found[0]


def masters(user, record):
    servers = user.conn.compute.servers(tags="coe-cluster-%s" % record["uuid"])
    result = {}
    for server in servers:
        if server.metadata.get("coe_role") == "master":
            fixed = [a["addr"] for a in server.addresses["private"] if a["OS-EXT-IPS:type"] == "fixed"]
            result[server.name] = fixed[0]
    return result


def check_lb(user, record):
    """The LB is ACTIVE, its members are the masters, the floating IP is on its VIP port and is
    the API address. Returns (api_address, LB id)."""
    lb = cluster_lb(user, record)
    assert lb.provisioning_status == "ACTIVE", lb
    (listener,) = list(user.conn.load_balancer.listeners(loadbalancer_id=lb.id))
    assert (listener.protocol, listener.protocol_port) == ("TCP", 6443)
    assert sorted(listener.allowed_cidrs or []) == ALLOWED
    (pool,) = list(user.conn.load_balancer.pools(loadbalancer_id=lb.id))
    monitor = user.conn.load_balancer.get_health_monitor(pool.health_monitor_id)
    assert monitor.type == "TCP"
    members = sorted(m.address for m in user.conn.load_balancer.members(pool.id))
    have = masters(user, record)
    assert len(have) == 3 and members == sorted(have.values()), (members, have)
    (fip,) = list(user.conn.network.ips(port_id=lb.vip_port_id))
    host = API_URL.match(record["api_address"]).group("host")
    assert host == fip.floating_ip_address, (record["api_address"], fip)
    assert host not in record["master_addresses"]
    return record["api_address"], lb.id


@pytest.mark.parametrize("driver", ["nova", "heat"])
def test_three_masters_behind_a_load_balancer(driver, runner, user):
    tname = "lb-%s-%s" % (driver, short_id())
    name = "octavia16-%s-%s" % (driver[0], short_id())
    over = dict(
        master_lb_enabled=True,
        labels={"kube_tag": "v1.31.1", "master_lb_allowed_cidrs": ",".join(ALLOWED)},
        master_server_group_policy="soft-anti-affinity",
    )
    runner.templates(template(tname, driver, **over))
    runner.templates(template(tname, driver, image_id="fake-image-v2", **over))
    spec = dict(
        coe_cluster_template=tname,
        coe_cluster_template_version=1,
        coe_master_count=3,
        coe_node_count=1,
        nova_driver_master_server_group_policy="soft-anti-affinity",
    )
    record = None
    try:
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "CREATE_COMPLETE", record
        api_address, lb_id = check_lb(user, record)

        # master 0 deleted behind our back: one run repairs it, the address stays
        victim = "%s-master-0" % name
        (server,) = list(user.conn.compute.servers(name="^%s$" % victim))
        user.conn.compute.delete_server(server)
        user.conn.compute.wait_for_delete(server, wait=120)
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["health_status"] == "HEALTHY", record
        assert check_lb(user, record) == (api_address, lb_id)

        # an upgrade that replaces the masters: same address, the members are the new masters
        before = set(masters(user, record).items())
        result = runner.run("update", {name: dict(spec, coe_cluster_template_version=2)})
        assert result.rc == 0, result
        spec["coe_cluster_template_version"] = 2
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        assert check_lb(user, record) == (api_address, lb_id)
        if driver == "nova":  # Heat rebuilds masters in place (same ports); Nova makes new ones
            assert not before & set(masters(user, record).items())

        # delete: no load balancer, port, floating IP or security group is left
        vip_port = user.conn.load_balancer.get_load_balancer(lb_id).vip_port_id
        result = runner.run("delete", {name: spec})
        assert result.rc == 0, result
        assert runner.record(name) is None
        left = cloud_resources(user.conn, record["uuid"], name)
        assert not any(left.values()), left
        assert user.conn.load_balancer.find_load_balancer(lb_id, ignore_missing=True) is None
        assert user.conn.network.find_port(vip_port, ignore_missing=True) is None
        assert not list(user.conn.network.ips(port_id=vip_port))
        record = None
    finally:
        if record is not None or runner.record(name) is not None:
            runner.run("delete", {name: spec}, extra={"coe_force": True})


def test_a_cloud_without_octavia_is_refused_in_the_plan(tmp_path, runner, user):
    """The user's cloud entry hides the load-balancer service (openstacksdk's has_load_balancer:
    false): the create is refused before any write, naming master_lb_enabled."""
    with open(user.clouds_yaml) as f:
        clouds = yaml.safe_load(f)
    clouds["clouds"]["coe-it"]["has_load_balancer"] = False
    with open(user.clouds_yaml, "w") as f:
        yaml.safe_dump(clouds, f)
    tname = "lb-no-%s" % short_id()
    name = "octavia16-no-%s" % short_id()
    runner.templates(template(tname, "nova", master_lb_enabled=True))
    log = RequestLog(user.id)
    log.mark()
    result = runner.run("create", {name: dict(coe_cluster_template=tname, coe_master_count=3, coe_node_count=1)})
    try:
        assert result.rc != 0, result
        assert "master_lb_enabled" in result.out and "no load-balancer service" in result.out, result
        assert log.writes() == []
        assert runner.record(name) is None
    finally:
        if runner.record(name) is not None:
            runner.run("delete", {name: dict(coe_cluster_template=tname)}, extra={"coe_force": True})


def test_an_octavia_quota_fails_the_create_with_octavias_words(minicloud, runner, user):
    """Octavia refuses the load balancer (the project's quota): the create fails before any
    server is made, and the cluster's status_reason carries Octavia's own words."""
    tname = "lb-q-%s" % short_id()
    name = "octavia16-q-%s" % short_id()
    spec = dict(coe_cluster_template=tname, coe_master_count=1, coe_node_count=1)
    runner.templates(template(tname, "nova", master_lb_enabled=True))
    try:
        with minicloud.quotas(project="demo", load_balancers=0):
            result = runner.run("create", {name: spec})
        assert result.rc != 0, result
        record = runner.record(name)
        assert record["status"] == "CREATE_FAILED", record
        assert "Quota has been met for resources: Load Balancer" in record["status_reason"], record
        assert "Quota has been met for resources: Load Balancer" in record["faults"]["driver"], record
        assert "Quota has been met" in result.out, result
        assert not list(user.conn.compute.servers(tags="coe-cluster-%s" % record["uuid"]))
    finally:
        if runner.record(name) is not None:
            result = runner.run("delete", {name: spec})
            assert result.rc == 0, result
