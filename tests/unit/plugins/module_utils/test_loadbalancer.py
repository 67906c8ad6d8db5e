"""The API load balancer as the synchronisers read it: two list calls, matched by tag or name."""

from types import SimpleNamespace as NS

from ansible_collections.coe.openstack.plugins.module_utils import loadbalancer, shape

U1 = "11111111-1111-4111-8111-111111111111"
U2 = "22222222-2222-4222-8222-222222222222"


def lb(name, tags=(), port="p1", status="ACTIVE"):
    return NS(
        id="id-" + name,
        name=name,
        tags=list(tags),
        provisioning_status=status,
        operating_status="OFFLINE",
        vip_address="10.0.0.5",
        vip_port_id=port,
    )


def conn(lbs, fips=(), catalog=("load-balancer",), shown=True):
    calls = []

    def record(what, items):
        calls.append(what)
        return list(items)

    return NS(
        calls=calls,
        service_catalog=[{"type": t} for t in catalog],
        config=NS(has_service=lambda service_type: shown),
        load_balancer=NS(load_balancers=lambda: record("lbs", lbs)),
        network=NS(ips=lambda: record("ips", fips)),
    )


def test_cluster_load_balancers_by_tag_or_by_name_in_two_calls():
    c = conn(
        [
            lb("coe-a-%s-api" % U1, port="p1"),  # Heat's: no tags, the name has the uuid
            lb("mine", tags=[shape.COMMON_TAG, shape.cluster_tag(U2)], port="p2"),  # Nova's
            lb("someone-elses"),
        ],
        fips=[NS(port_id="p2", floating_ip_address="172.24.4.7"), NS(port_id=None, floating_ip_address="x")],
    )
    found = loadbalancer.cluster_load_balancers(c)
    assert sorted(found) == [U1, U2]
    assert found[U1]["floating_ip"] is None and found[U2]["floating_ip"] == "172.24.4.7"
    assert c.calls == ["lbs", "ips"]


def test_no_octavia_no_call():
    for c in (conn([lb("x")], catalog=()), conn([lb("x")], shown=False)):
        assert loadbalancer.cluster_load_balancers(c) == {}
        assert c.calls == []
        assert loadbalancer.has_load_balancer_service(c) is False


def test_problem():
    assert loadbalancer.problem(dict(name="l", provisioning_status="ACTIVE")) is None
    assert "ERROR" in loadbalancer.problem(dict(name="l", provisioning_status="ERROR"))
    assert loadbalancer.problem(None) == "the API load balancer is missing"
    assert loadbalancer.problem(None, deleting=True) is None
