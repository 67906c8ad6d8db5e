"""Smoke test of the local OpenStack (tests/minicloud): what the other tests rely on.

Run alone with ``tests/minicloud/minicloud smoke`` (or pytest on this file). Every test
names its resources ``smoke-<random>-...`` and deletes them, so it can run beside others.
"""

import time
import uuid

import pytest
from openstack import exceptions

pytestmark = pytest.mark.usefixtures("minicloud")

TIMEOUT = 180


@pytest.fixture(scope="module")
def conn(minicloud):
    return minicloud.connect()


@pytest.fixture(scope="module")
def admin(minicloud):
    return minicloud.connect(admin=True)


@pytest.fixture
def name():
    return "smoke-%s" % uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def base(conn):
    return {
        "image": conn.image.find_image("fake-image", ignore_missing=False),
        "flavor": conn.compute.find_flavor("m1.tiny", ignore_missing=False),
        "network": conn.network.find_network("private", ignore_missing=False),
    }


def wait_server(conn, server, statuses=("ACTIVE", "ERROR")):
    deadline = time.monotonic() + TIMEOUT
    while True:
        server = conn.compute.get_server(server.id)
        if server.status in statuses:
            return server
        assert time.monotonic() < deadline, "server %s still %s after %ss" % (server.name, server.status, TIMEOUT)
        time.sleep(0.5)


def wait_gone(conn, servers):
    for server in servers:
        conn.compute.wait_for_delete(server, wait=TIMEOUT)


def boot(conn, base, name, **kwargs):
    kwargs.setdefault("networks", [{"uuid": base["network"].id}])
    return conn.compute.create_server(name=name, image_id=base["image"].id, flavor_id=base["flavor"].id, **kwargs)


def delete_all(conn, servers):
    for server in servers:
        conn.compute.delete_server(server, ignore_missing=True)
    wait_gone(conn, servers)


def test_demo_user_authenticates_and_sees_every_service(conn):
    token = conn.authorize()
    assert token
    assert conn.current_project.name == "demo"
    types = {entry["type"] for entry in conn.service_catalog}
    assert {"identity", "compute", "image", "network", "orchestration", "placement", "load-balancer"} <= types
    assert conn.compute.find_keypair("demo-key") is not None
    flavors = {f.name for f in conn.compute.flavors()}
    assert {"m1.small", "m1.medium", "m1.huge"} <= flavors
    assert {"fake-image", "fake-image-v2"} <= {i.name for i in conn.image.images()}


def test_servers_boot_with_fixed_ips_and_delete(conn, admin, base, name):
    servers = [boot(conn, base, "%s-%d" % (name, i), key_name="demo-key") for i in range(2)]
    try:
        servers = [wait_server(conn, s) for s in servers]
        assert [s.status for s in servers] == ["ACTIVE", "ACTIVE"], [s.fault for s in servers]
        for server in servers:
            (address,) = server.addresses["private"]
            assert address["OS-EXT-IPS:type"] == "fixed"
            assert address["addr"].startswith("10.0.0.")
            (port,) = admin.network.ports(device_id=server.id)
            assert port.binding_vif_type == "ovs"
            assert port.binding_host_id == admin.compute.get_server(server.id).compute_host
        assert admin.compute.get_server(servers[0].id).availability_zone == "nova"
    finally:
        delete_all(conn, servers)
    assert [p for s in servers for p in conn.network.ports(device_id=s.id)] == []


def test_floating_ip_shows_on_the_server(conn, base, name):
    server = boot(conn, base, name)
    public = conn.network.find_network("public", ignore_missing=False)
    fip = None
    try:
        server = wait_server(conn, server)
        assert server.status == "ACTIVE", server.fault
        (port,) = conn.network.ports(device_id=server.id)
        fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
        assert fip.floating_ip_address.startswith("172.24.4.")
        deadline = time.monotonic() + 60
        while True:
            addresses = conn.compute.get_server(server.id).addresses["private"]
            if any(a["OS-EXT-IPS:type"] == "floating" for a in addresses):
                break
            assert time.monotonic() < deadline, "no floating address in %s" % addresses
            time.sleep(1)
        assert fip.floating_ip_address in {a["addr"] for a in addresses}
    finally:
        if fip is not None:
            conn.network.delete_ip(fip)
        delete_all(conn, [server])


def wait_lb(conn, lb_id):
    deadline = time.monotonic() + TIMEOUT
    while True:
        lb = conn.load_balancer.get_load_balancer(lb_id)
        if lb.provisioning_status in ("ACTIVE", "ERROR"):
            return lb
        assert time.monotonic() < deadline, "load balancer %s still %s" % (lb.name, lb.provisioning_status)
        time.sleep(0.5)


def test_octavia_load_balancer_goes_active_with_a_floating_ip_and_cascade_deletes(conn, admin, name):
    """Octavia without amphora VMs: the real API, state machine and Neutron side."""
    subnet = conn.network.find_subnet("private-subnet", ignore_missing=False)
    public = conn.network.find_network("public", ignore_missing=False)
    lb = conn.load_balancer.create_load_balancer(name=name, vip_subnet_id=subnet.id)
    try:
        lb = wait_lb(conn, lb.id)
        assert lb.provisioning_status == "ACTIVE"
        listener = conn.load_balancer.create_listener(
            loadbalancer_id=lb.id, protocol="TCP", protocol_port=6443, allowed_cidrs=["10.0.0.0/8"]
        )
        wait_lb(conn, lb.id)
        pool = conn.load_balancer.create_pool(listener_id=listener.id, protocol="TCP", lb_algorithm="ROUND_ROBIN")
        wait_lb(conn, lb.id)
        conn.load_balancer.create_member(pool, address="10.0.0.250", protocol_port=6443, subnet_id=subnet.id)
        assert wait_lb(conn, lb.id).provisioning_status == "ACTIVE"
        vip_port = conn.network.get_port(lb.vip_port_id)
        assert vip_port.fixed_ips[0]["ip_address"] == lb.vip_address
        fip = conn.network.create_ip(floating_network_id=public.id, port_id=lb.vip_port_id)
        assert fip.port_id == lb.vip_port_id
        conn.network.delete_ip(fip)
    finally:
        conn.load_balancer.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)
    conn.load_balancer.wait_for_delete(conn.load_balancer.get_load_balancer(lb.id), wait=TIMEOUT)
    # nothing of it is left in Neutron: VIP and VRRP ports, the lb-<id> security group
    assert [p.name for p in admin.network.ports() if lb.id in (p.name or "")] == []
    assert [g.name for g in admin.network.security_groups() if lb.id in g.name] == []


STACK_TEMPLATE = {
    "heat_template_version": "2021-04-16",
    "parameters": {"count": {"type": "number", "default": 2}, "name": {"type": "string"}},
    "resources": {
        "group": {
            "type": "OS::Heat::ResourceGroup",
            "properties": {
                "count": {"get_param": "count"},
                "resource_def": {
                    "type": "OS::Nova::Server",
                    "properties": {
                        "name": {
                            "str_replace": {"template": "NAME-%index%", "params": {"NAME": {"get_param": "name"}}}
                        },
                        "image": "fake-image",
                        "flavor": "m1.tiny",
                        "key_name": "demo-key",
                        "networks": [{"network": "private"}],
                    },
                },
            },
        }
    },
    "outputs": {
        "ids": {"value": {"get_attr": ["group", "refs"]}},
        "ips": {"value": {"get_attr": ["group", "networks", "private", 0]}},
    },
}


def wait_stack(conn, stack_id, done):
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            stack = conn.orchestration.get_stack(stack_id)
        except exceptions.NotFoundException:
            return None
        if stack.status in (done, done.replace("COMPLETE", "FAILED")):
            return stack
        assert time.monotonic() < deadline, "stack still %s after %ss" % (stack.status, TIMEOUT)
        time.sleep(1)


def outputs(stack):
    return {o["output_key"]: o["output_value"] for o in stack.outputs}


def test_heat_stack_with_resource_group_create_update_delete(conn, name):
    stack = conn.orchestration.create_stack(
        name=name, template=STACK_TEMPLATE, parameters={"name": name, "count": 2}, tags=name
    )
    try:
        created = wait_stack(conn, stack.id, "CREATE_COMPLETE")
        assert created.status == "CREATE_COMPLETE", created.status_reason
        out = outputs(created)
        assert len(out["ids"]) == 2
        assert all(ip.startswith("10.0.0.") for ip in out["ips"]), out["ips"]
        assert {s.name for s in conn.compute.servers(name="^%s-" % name)} == {name + "-0", name + "-1"}

        conn.orchestration.update_stack(created, template=STACK_TEMPLATE, parameters={"name": name, "count": 3})
        updated = wait_stack(conn, stack.id, "UPDATE_COMPLETE")
        assert updated.status == "UPDATE_COMPLETE", updated.status_reason
        out = outputs(updated)
        assert len(out["ids"]) == 3
        assert {s.status for s in conn.compute.servers(name="^%s-" % name)} == {"ACTIVE"}
    finally:
        conn.orchestration.delete_stack(stack.id, ignore_missing=True)
        deleted = wait_stack(conn, stack.id, "DELETE_COMPLETE")
    assert deleted is None or deleted.status == "DELETE_COMPLETE", deleted.status_reason
    assert list(conn.compute.servers(name="^%s-" % name)) == []


def test_heat_stack_fails_at_once_on_no_valid_host(conn, name):
    # heat.conf sets action_retry_limit = 0: without it Heat re-creates the ERROR server
    # 5 times with backoff (about 90 s) before the stack fails.
    template = {
        "heat_template_version": "2021-04-16",
        "resources": {
            "server": {
                "type": "OS::Nova::Server",
                "properties": {"image": "fake-image", "flavor": "m1.huge", "networks": [{"network": "private"}]},
            }
        },
    }
    started = time.monotonic()
    stack = conn.orchestration.create_stack(name=name, template=template)
    try:
        failed = wait_stack(conn, stack.id, "CREATE_COMPLETE")
        assert failed.status == "CREATE_FAILED"
        assert "No valid host was found" in failed.status_reason
        assert time.monotonic() - started < 60
    finally:
        conn.orchestration.delete_stack(stack.id, ignore_missing=True)
        wait_stack(conn, stack.id, "DELETE_COMPLETE")


def test_instances_quota_bites_and_is_restored(minicloud, conn, admin, name):
    # A project of its own: the demo project's quotas stay untouched for tests running beside.
    project = admin.identity.create_project(name=name, domain_id="default")
    try:
        demo_user = admin.identity.get_user(conn.current_user_id)
        member = admin.identity.find_role("member", ignore_missing=False)
        admin.identity.assign_project_role_to_user(project, demo_user, member)
        before = minicloud.knobs.get_quotas(admin, project.id, ["instances"])
        conn = minicloud.connect(project_name=name, project_domain_name="Default")
        image = conn.image.find_image("fake-image", ignore_missing=False)
        flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
        with minicloud.quotas(project=project.id, instances=1):
            first = conn.compute.create_server(
                name=name + "-1", image_id=image.id, flavor_id=flavor.id, networks="none"
            )
            # Nova counts an instance once the conductor has recorded it: wait for that.
            assert wait_server(conn, first).status == "ACTIVE"
            with pytest.raises(exceptions.ForbiddenException, match="Quota exceeded for instances"):
                conn.compute.create_server(name=name + "-2", image_id=image.id, flavor_id=flavor.id, networks="none")
        assert minicloud.knobs.get_quotas(admin, project.id, ["instances"]) == before
        assert [s.name for s in conn.compute.servers()] == [name + "-1"]
    finally:
        servers = list(admin.compute.servers(all_projects=True, project_id=project.id))
        for server in servers:
            admin.compute.delete_server(server.id, ignore_missing=True)
        wait_gone(admin, servers)
        admin.identity.delete_project(project)


@pytest.mark.alone  # see pytest.ini
def test_anti_affinity_fourth_member_gets_no_valid_host(conn, admin, base, name):
    group = conn.compute.create_server_group(name=name, policy="anti-affinity")
    servers = []
    try:
        hint = {"group": group.id}
        servers = [boot(conn, base, "%s-%d" % (name, i), networks="none", scheduler_hints=hint) for i in range(3)]
        servers = [wait_server(conn, s) for s in servers]
        assert [s.status for s in servers] == ["ACTIVE"] * 3, [s.fault for s in servers]
        hosts = {admin.compute.get_server(s.id).compute_host for s in servers}
        assert hosts == {"cmp-1", "cmp-2", "cmp-3"}
        servers.append(boot(conn, base, name + "-3", networks="none", scheduler_hints=hint))
        fourth = wait_server(conn, servers[-1])
        assert fourth.status == "ERROR"
        assert "No valid host was found" in fourth.fault["message"]
    finally:
        delete_all(conn, servers)
        conn.compute.delete_server_group(group)


def test_huge_flavor_gets_no_valid_host(conn, base, name):
    huge = conn.compute.find_flavor("m1.huge", ignore_missing=False)
    server = conn.compute.create_server(name=name, image_id=base["image"].id, flavor_id=huge.id, networks="none")
    try:
        server = wait_server(conn, server)
        assert server.status == "ERROR"
        assert "No valid host was found" in server.fault["message"]
    finally:
        delete_all(conn, [server])


def test_port_binding_fails_on_host_fail(conn, base, name):
    server = boot(conn, base, name, availability_zone="failzone")
    try:
        server = wait_server(conn, server)
        assert server.status == "ERROR"
        assert server.fault["message"].startswith("Exceeded maximum number of retries"), server.fault
    finally:
        delete_all(conn, [server])
