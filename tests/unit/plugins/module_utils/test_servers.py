"""Server views (servers.py): one shape for both drivers, from an SDK resource or Nova's dict."""

import types

from ansible_collections.coe.openstack.plugins.module_utils import servers

UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"


def nova_dict(**over):
    base = dict(
        id="id-1",
        name="demo-master-0",
        status="ACTIVE",
        addresses={
            "private": [
                {"addr": "fd00::5", "version": 6, "OS-EXT-IPS:type": "fixed"},
                {"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS:type": "fixed"},
                {"addr": "172.24.4.20", "version": 4, "OS-EXT-IPS:type": "floating"},
            ]
        },
        metadata=dict(coe_cluster_uuid=UUID, coe_nodegroup="default-master", coe_role="master", coe_index="0"),
        tags=["coe-cluster", "coe-cluster-" + UUID],
        image={"id": "img-1"},
        flavor={"original_name": "m1.small", "vcpus": 1},
        created_at="2026-11-25T08:00:00Z",
        fault=None,
    )
    base.update(over)
    return base


def test_a_dict_and_an_sdk_resource_give_the_same_view():
    raw = nova_dict()
    sdk = types.SimpleNamespace(**dict(raw, image=types.SimpleNamespace(id="img-1"), flavor=raw["flavor"]))
    view = servers.server_view(raw)
    assert view == servers.server_view(sdk)
    assert view["cluster_uuid"] == UUID
    assert (view["nodegroup"], view["role"], view["index"]) == ("default-master", "master", 0)
    assert (view["image_id"], view["flavor_name"], view["flavor_id"]) == ("img-1", "m1.small", None)
    assert view["metadata"]["coe_index"] == "0"


def test_addresses_split_fixed_and_floating_ipv4_first():
    view = servers.server_view(nova_dict())
    assert view["fixed_addresses"] == ["10.0.0.5", "fd00::5"]
    assert view["floating_addresses"] == ["172.24.4.20"]
    assert servers.fixed_address(view) == "10.0.0.5"
    assert servers.floating_address(view) == "172.24.4.20"


def test_addresses_keep_the_clouds_network_order_and_untyped_entries_are_fixed():
    addresses = {
        "zeta": [{"addr": "10.1.0.4"}],
        "alpha": [{"addr": "fd00::9"}, {"addr": "10.2.0.4", "OS-EXT-IPS:type": "fixed"}],
    }
    assert servers.split_addresses(addresses) == (["10.1.0.4", "10.2.0.4", "fd00::9"], [])
    assert servers.split_addresses(None) == ([], [])
    empty = servers.server_view(nova_dict(addresses={}))
    assert servers.fixed_address(empty) is None and servers.floating_address(empty) is None


def test_fault_text_is_novas_message_and_code():
    assert servers.fault_text(nova_dict(fault={"code": 500, "message": "No valid host was found. "})) == (
        "No valid host was found. (code 500)"
    )
    assert servers.fault_text(nova_dict(fault={"message": "boom"})) == "boom"
    assert servers.fault_text(nova_dict(fault={"code": 500, "message": ""})) == "unknown fault (code 500)"
    assert servers.fault_text(nova_dict()) is None
    fault = types.SimpleNamespace(code=400, message="bad")
    assert servers.fault_text(types.SimpleNamespace(fault=fault)) == "bad (code 400)"


def test_the_cluster_comes_from_metadata_else_from_the_tag():
    view = servers.server_view(nova_dict(metadata={}))
    assert view["cluster_uuid"] == UUID
    assert view["nodegroup"] is None and view["index"] is None
    assert servers.server_view(nova_dict(metadata={}, tags=["coe-cluster-not-a-uuid"]))["cluster_uuid"] is None


def test_the_index_is_either_drivers_metadata_key():
    assert servers.server_view(nova_dict(metadata={"coe_index": "3"}))["index"] == 3
    heat = servers.server_view(nova_dict(metadata={"coe_node_index": "2", "coe_version": "v1.30.1"}))
    assert heat["index"] == 2 and heat["coe_version"] == "v1.30.1"
    assert servers.server_view(nova_dict(metadata={"coe_index": "x"}))["index"] is None


def test_public_view_is_what_a_module_returns():
    public = servers.public_view(servers.server_view(nova_dict()))
    assert sorted(public) == sorted(servers.PUBLIC_KEYS)
    assert "metadata" not in public and "tags" not in public


def test_attr_reads_dicts_and_objects_with_a_default_for_none():
    assert servers.attr({"a": None}, "a", 7) == 7
    assert servers.attr(types.SimpleNamespace(a=None), "a", 7) == 7
    assert servers.attr(types.SimpleNamespace(a=1), "a") == 1
    assert servers.attr(None, "a", 3) == 3


def test_a_floating_ip_neutron_attached_is_added_to_the_servers_view():
    shown = servers.server_view(nova_dict())
    bare = servers.server_view(nova_dict(id="id-2", name="demo-worker-0", addresses={}))
    fips = [
        dict(floating_ip_address="172.24.4.20", port_id="p1", port_details=dict(device_id="id-1")),  # shown already
        dict(floating_ip_address="172.24.4.31", port_id="p2", port_details=dict(device_id="id-2")),
        dict(floating_ip_address="172.24.4.32", port_id=None, port_details=None),  # attached to nothing
        dict(floating_ip_address="172.24.4.33", port_id="p3"),  # a Neutron without fip-port-details
    ]
    out = servers.with_floating_ips([shown, bare], fips)
    assert out[0] is shown
    assert out[1]["floating_addresses"] == ["172.24.4.31"] and bare["floating_addresses"] == []
    assert servers.with_floating_ips([bare], []) == [bare]


def test_a_server_listed_deleted_is_gone_and_soft_deleted_stays():
    listed = [
        nova_dict(),
        nova_dict(id="id-2", name="demo-master-1", status="DELETED"),
        nova_dict(id="id-3", name="demo-master-2", status="SOFT_DELETED"),
    ]
    assert [v["name"] for v in servers.server_views(listed)] == ["demo-master-0", "demo-master-2"]


def test_wait_until_forgotten_lists_until_nova_lists_no_deleted_server():
    dying = nova_dict(id="id-2", name="demo-master-1", status="DELETED")
    lists = [[nova_dict(), dying], [nova_dict(), dying], [nova_dict()]]
    calls, slept = [], []

    def list_servers():
        calls.append(1)
        return lists[len(calls) - 1]

    said = []
    servers.wait_until_forgotten(list_servers, 60, sleep=slept.append, interval=0.5, progress=said.append)
    assert len(calls) == 3 and slept == [0.5, 0.5] and said == []
    # nothing dying: one list, no sleep
    calls.clear()
    slept.clear()
    lists[0] = [nova_dict()]
    servers.wait_until_forgotten(list_servers, 60, sleep=slept.append)
    assert len(calls) == 1 and slept == []


def test_wait_until_forgotten_goes_on_after_its_timeout_naming_the_server():
    """A server Nova failed to destroy stays DELETED: the run goes on and says so."""
    dying = [nova_dict(id="id-2", name="demo-master-1", status="DELETED")]
    said = []
    servers.wait_until_forgotten(lambda: dying, 0, sleep=lambda s: None, progress=said.append)
    assert len(said) == 1 and "still listed DELETED: demo-master-1" in said[0], said
    assert servers.FORGET_TIMEOUT <= 60
