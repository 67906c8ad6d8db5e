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


# -- endpoint_kind: what carries the API ----------------------------------------------


@pytest.mark.parametrize(
    "cluster, kind",
    [
        ({"master_count": 1}, endpoint.MASTER),
        ({"master_count": 3}, endpoint.VIP),
        ({"master_count": 3, "master_lb_enabled": True}, endpoint.LOAD_BALANCER),
        ({"master_count": 1, "master_lb_enabled": True}, endpoint.LOAD_BALANCER),
        ({"master_count": 3, "template": {"master_lb_enabled": True}}, endpoint.LOAD_BALANCER),
        ({"master_count": 3, "master_lb_enabled": False, "template": {"master_lb_enabled": True}}, endpoint.VIP),
        ({"master_count": 3, "master_lb_enabled": "false"}, endpoint.VIP),
        ({}, endpoint.MASTER),
    ],
)
def test_endpoint_kind(cluster, kind):
    assert endpoint.endpoint_kind(cluster) == kind


def test_endpoint_kind_master_count_override():
    assert endpoint.endpoint_kind({"master_count": 1}, master_count=3) == endpoint.VIP
