"""The API endpoint rule both drivers call, and the one form of api_address."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import endpoint
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

# -- floating IP or not ----------------------------------------------------------------


@pytest.mark.parametrize(
    "cluster,expected",
    [
        # Magnum's default: a floating IP when there is an external network
        (dict(external_network_id="public"), (True, "public")),
        (dict(template=dict(external_network_id="public")), (True, "public")),
        (dict(external_network_id="public", floating_ip_enabled=False), (False, "public")),
        (dict(template=dict(external_network_id="public", floating_ip_enabled=False)), (False, "public")),
        # the record's value (fixed at create) wins over its template's
        (dict(floating_ip_enabled=False, template=dict(external_network_id="public")), (False, "public")),
        ({}, (False, None)),
        (dict(floating_ip_enabled=False), (False, None)),
        # a Heat stack parameter comes back as a string
        (dict(external_network_id="public", floating_ip_enabled="false"), (False, "public")),
        (dict(external_network="public"), (True, "public")),
    ],
)
def test_api_floating_ip(cluster, expected):
    assert endpoint.api_floating_ip(cluster) == expected


def test_overrides_win():
    cluster = dict(external_network_id="public")
    assert endpoint.api_floating_ip(cluster, floating_ip_enabled=False) == (False, "public")
    assert endpoint.api_floating_ip({}, external="ext") == (True, "ext")


def test_a_floating_ip_without_external_network_is_refused():
    with pytest.raises(ValidationError) as e:
        endpoint.api_floating_ip(dict(floating_ip_enabled=True))
    assert e.value.details["field"] == "external_network_id"


# -- the address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,expected",
    [
        ("https://10.0.0.5:6443", ("10.0.0.5", 6443)),
        ("10.0.0.5", ("10.0.0.5", 6443)),
        ("api.example.com:443", ("api.example.com", 443)),
        ("https://[fd00::1]:6443", ("fd00::1", 6443)),
        ("fd00::1", ("fd00::1", 6443)),
    ],
)
def test_parse_api_address(value, expected):
    assert endpoint.parse_api_address(value) == expected


@pytest.mark.parametrize("value", [None, "", "https://10.0.0.5:http", "bad host!", "10.0.0.5:70000"])
def test_bad_api_addresses(value):
    with pytest.raises(ValidationError):
        endpoint.parse_api_address(value)


def test_host_port_brackets_ipv6():
    assert endpoint.host_port("fd00::1", 6443) == "[fd00::1]:6443"
    assert endpoint.api_server_url("fd00::1") == "https://[fd00::1]:6443"


@pytest.mark.parametrize(
    "value,expected",
    [
        (None, None),
        ("", None),
        ("172.24.4.10", "https://172.24.4.10:6443"),  # a record written before 0.1.0
        ("https://172.24.4.10:6443", "https://172.24.4.10:6443"),
        ("fd00::1", "https://[fd00::1]:6443"),
        ("https://api.example.com:443", "https://api.example.com:443"),
    ],
)
def test_api_url_reads_both_forms_and_writes_magnums(value, expected):
    assert endpoint.api_url(value) == expected
    assert endpoint.api_url(endpoint.api_url(value)) == expected


def test_api_host_is_the_bare_address():
    assert endpoint.api_host("https://172.24.4.10:6443") == "172.24.4.10"
    assert endpoint.api_host("https://[fd00::1]:6443") == "fd00::1"


# -- what carries the API ----------------------------------------------------------------


@pytest.mark.parametrize(
    "cluster,expected",
    [
        (dict(master_count=1), endpoint.MASTER),
        (dict(master_count=3), endpoint.VIP),
        (dict(master_count=1, master_lb_enabled=True), endpoint.LOAD_BALANCER),
        (dict(master_count=3, template=dict(master_lb_enabled=True)), endpoint.LOAD_BALANCER),
        (dict(master_count=3, master_lb_enabled="false"), endpoint.VIP),  # a Heat parameter
        (dict(nodegroups=[dict(name="default-master", role="master", node_count=3)]), endpoint.VIP),
        ({}, endpoint.MASTER),
        # what the planner recorded wins over what the fields would say now
        (dict(master_count=3, api_endpoint=endpoint.MASTER), endpoint.MASTER),
        (dict(master_count=1, master_lb_enabled=False, api_endpoint=endpoint.LOAD_BALANCER), endpoint.LOAD_BALANCER),
    ],
)
def test_endpoint_kind(cluster, expected):
    assert endpoint.endpoint_kind(cluster) == expected


def test_endpoint_kind_takes_the_callers_master_count_and_refuses_an_unknown_kind():
    assert endpoint.endpoint_kind(dict(master_count=1), masters=3) == endpoint.VIP
    with pytest.raises(ValidationError) as err:
        endpoint.endpoint_kind(dict(api_endpoint="dns"))
    assert err.value.field == "api_endpoint"


def test_the_nodes_join_through_the_endpoints_fixed_address():
    vip = dict(master_count=3, api_address="https://203.0.113.7:6443", api_fixed_ip="10.0.0.5")
    assert endpoint.control_plane_host(vip) == "10.0.0.5:6443"
    assert endpoint.api_sans(vip) == ["203.0.113.7", "10.0.0.5"]
    # no floating IP: the API address is the fixed one, named once
    assert endpoint.api_sans(dict(vip, api_address="https://10.0.0.5:6443")) == ["10.0.0.5"]
    # a single master's endpoint is its own address, as before
    single = dict(master_count=1, api_address="https://203.0.113.7:6443", api_fixed_ip="10.0.0.5")
    assert endpoint.control_plane_host(single) == "203.0.113.7:6443"
    # a driver that has not said the fixed IP: the API address
    assert endpoint.control_plane_host(dict(master_count=3, api_address="10.0.0.9")) == "10.0.0.9:6443"


def test_lb_allowed_cidrs_from_magnums_label():
    assert endpoint.lb_allowed_cidrs({}) == []
    cluster = {"labels": {"master_lb_allowed_cidrs": "10.0.0.0/8, 192.168.1.7/24"}, "template": {"labels": {}}}
    assert endpoint.lb_allowed_cidrs(cluster) == ["10.0.0.0/8", "192.168.1.0/24"]
    assert endpoint.lb_allowed_cidrs({"template": {"labels": {"master_lb_allowed_cidrs": "172.16.0.0/12"}}}) == [
        "172.16.0.0/12"
    ]
    with pytest.raises(ValidationError) as err:
        endpoint.lb_allowed_cidrs({"labels": {"master_lb_allowed_cidrs": "10.0.0.0/8,nope"}})
    assert err.value.field == "labels.master_lb_allowed_cidrs"
