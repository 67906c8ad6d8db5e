"""Preflight: every missing thing and every quota shortfall is named, before any write."""

from types import SimpleNamespace as NS

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.preflight import Preflight, check_references, headroom

UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"


class Resp:
    def __init__(self, code):
        self.status_code = code


class Finder:
    def __init__(self, known):
        self.known = known

    def __call__(self, name, ignore_missing=True):
        return self.known.get(name)


class FakeConn:
    def __init__(
        self, heat_code=200, instances=(10, 0), cores=(-1, 0), ram=(-1, 0), ports=(50, 0), servers=(), octavia=True
    ):
        self.current_project_id = "p1"
        self.service_catalog = [{"type": "compute"}, {"type": "network"}] + (
            [{"type": "load-balancer"}] if octavia else []
        )
        self.config = NS(has_service=lambda service_type: True)
        self.writes = 0
        flavors = {"m1.small": NS(vcpus=1, ram=2048), "m1.medium": NS(vcpus=2, ram=4096)}
        quota = NS(
            instances=instances[0],
            cores=cores[0],
            ram=ram[0],
            usage={"instances": instances[1], "cores": cores[1], "ram": ram[1]},
        )
        self.orchestration = NS(get=lambda path: Resp(heat_code))
        self.compute = NS(
            find_flavor=Finder(flavors),
            find_keypair=Finder({"demo-key": NS(name="demo-key")}),
            get_quota_set=lambda project, usage=True: quota,
            servers=lambda details=True, tags=None: list(servers),
        )
        self.image = NS(find_image=Finder({"fake-image": NS(status="active"), "queued": NS(status="queued")}))
        self.network = NS(
            find_network=Finder({"private": NS(is_router_external=False), "public": NS(is_router_external=True)}),
            find_subnet=Finder({"private-subnet": NS()}),
            get_quota=lambda project, details=True: NS(
                ports={"limit": ports[0], "used": ports[1], "reserved": 0},
                floating_ips={"limit": 10, "used": 0, "reserved": 0},
            ),
        )


def record(**over):
    base = dict(
        name="demo",
        uuid=UUID,
        master_count=3,
        node_count=2,
        flavor_id="m1.small",
        master_flavor_id="m1.medium",
        image_id="fake-image",
        keypair="demo-key",
        fixed_network="private",
    )
    base.update(over)
    return base


def test_everything_present_and_room_enough():
    check = Preflight(FakeConn())
    assert check.run(record()) == []
    assert check.needs == dict(servers=5, cores=3 * 2 + 2, ram=3 * 4096 + 2 * 2048, ports=6)
    assert "orchestration (Heat) endpoint" in check.checked


def test_every_missing_thing_is_named_at_once():
    rec = record(flavor_id="m1.nope", image_id="queued", keypair="nokey", fixed_network="nonet")
    problems = Preflight(FakeConn(heat_code=503)).run(rec, floating_ip_enabled=True, external_network="private")
    text = "\n".join(problems)
    for expected in (
        "orchestration (Heat) endpoint: HTTP 503",
        "flavor m1.nope does not exist",
        "image queued is queued, not active",
        "keypair nokey does not exist",
        "network nonet does not exist",
        "network private is not external",
    ):
        assert expected in text


def test_quota_shortfalls():
    conn = FakeConn(instances=(10, 8), ports=(10, 7))
    problems = Preflight(conn).run(record())
    assert "quota for instances: 5 needed, 8 of 10 used (2 free)" in problems
    assert "quota for ports: 6 needed, 7 of 10 used (3 free)" in problems


def test_update_counts_only_the_servers_it_adds():
    existing = [NS(metadata={"coe_nodegroup": "default-master"})] * 3 + [
        NS(metadata={"coe_nodegroup": "default-worker"})
    ] * 2
    conn = FakeConn(instances=(6, 5), servers=existing)
    check = Preflight(conn)
    assert check.run(record(node_count=3), operation="update") == []
    assert check.needs["servers"] == 1
    # an upgrade replaces workers (one batch of extra servers per worker nodegroup) and
    # rebuilds masters in place
    check = Preflight(FakeConn(instances=(5, 5), servers=existing))
    problems = check.run(record(), operation="upgrade", batch_size=1)
    assert check.needs["servers"] == 1
    assert problems == ["quota for instances: 1 needed, 5 of 5 used (0 free)"]


def test_unlimited_quota_and_nothing_needed():
    assert headroom("cores", -1, 10**6, 5) is None
    assert headroom("cores", 4, 4, 0) is None
    assert headroom("cores", 4, 3, 2) == "quota for cores: 2 needed, 3 of 4 used (1 free)"


def test_master_lb_enabled_needs_octavia_in_the_catalog():
    assert Preflight(FakeConn(octavia=False)).run(record()) == []  # no LB asked for: no Octavia needed
    assert Preflight(FakeConn()).run(record(master_lb_enabled=True)) == []
    (problem,) = Preflight(FakeConn(octavia=False)).run(record(template=dict(master_lb_enabled=True)))
    assert problem.startswith("master_lb_enabled needs an Octavia load balancer")
    assert "no load-balancer service" in problem


def test_a_cloud_entry_that_hides_octavia_is_refused_and_the_field_named():
    conn = FakeConn()
    conn.config = NS(has_service=lambda service_type: service_type != "load-balancer")  # has_load_balancer: false
    with pytest.raises(ValidationError) as err:
        check_references(conn, record(master_lb_enabled=True), "create", driver="nova")
    assert err.value.field == "master_lb_enabled"
    assert "nothing was written" in str(err.value)
    assert conn.writes == 0
