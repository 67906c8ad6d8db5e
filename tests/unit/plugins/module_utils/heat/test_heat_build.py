"""The cluster → HOT renderer: names, parameters, structure, edge cases."""

import json

import pytest
import yaml

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as hot
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as t

UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"


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
        labels={},
        fixed_network="private",
    )
    base.update(over)
    return base


def functions(node, name):
    """Every argument of the intrinsic function ``name`` anywhere in ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == name:
                yield value
            yield from functions(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from functions(value, name)


def assert_references_resolve(tmpl):
    """Every get_param names a declared parameter; every get_resource/get_attr a resource."""
    params = set(tmpl.get("parameters") or {})
    resources = set(tmpl.get("resources") or {})
    conditions = set(tmpl.get("conditions") or {})
    for arg in functions(tmpl, "get_param"):
        name = arg if isinstance(arg, str) else arg[0]
        assert name in params, "get_param %r is not a declared parameter" % name
    for arg in functions(tmpl, "get_resource"):
        assert arg in resources, "get_resource %r is not a resource" % arg
    for arg in functions(tmpl, "get_attr"):
        assert arg[0] in resources, "get_attr %r is not a resource" % arg[0]
    for res in (tmpl.get("resources") or {}).values():
        if "condition" in res:
            assert res["condition"] in conditions


def render(**over):
    spec = t.build_cluster_stack(record(**over.pop("rec", {})), **over)
    return spec, yaml.safe_load(spec.template)


def test_names_tags_and_default_nodegroups():
    spec, tmpl = render()
    assert spec.name == "demo-3f2a9c4e"
    assert spec.tags == ["coe-cluster-" + UUID]
    assert spec.nodes == {
        "default-master": ["demo-master-0", "demo-master-1", "demo-master-2"],
        "default-worker": ["demo-default-worker-0", "demo-default-worker-1"],
    }
    assert spec.parameters["default-master_flavor"] == "m1.medium"
    assert spec.parameters["default-worker_flavor"] == "m1.small"
    assert spec.parameters["default-master_count"] == 3
    assert spec.files == {
        "coe_node.yaml": hot.NODE_TEMPLATE,
        # three masters: the API is on a VIP, and the masters' ports may carry it
        "coe_vip_master.yaml": hot.VIP_NODE_TEMPLATE,
        "coe-user-data/default-master/0": "",
        "coe-user-data/default-master/1": "",
        "coe-user-data/default-master/2": "",
        "coe-user-data/default-worker/0": "",
        "coe-user-data/default-worker/1": "",
    }
    # the version stays a string (a date would not be JSON serialisable)
    assert tmpl["heat_template_version"] == "2021-04-16"
    assert tmpl["resources"]["default-master"]["type"] == "OS::Heat::ResourceGroup"
    assert tmpl["resources"]["master_server_group"]["properties"]["policies"] == [
        {"get_param": "master_server_group_policy"}
    ]
    assert spec.parameters["master_server_group_policy"] == "anti-affinity"
    assert_references_resolve(tmpl)


def test_node_template_references_resolve_and_picks_its_own_user_data():
    node = yaml.safe_load(hot.NODE_TEMPLATE)
    assert_references_resolve(node)
    server = node["resources"]["server"]["properties"]
    # the member reads its own stack file: <dir>/<nodegroup>/<index>, as user_data_file() names it
    replace = server["user_data"]["str_replace"]
    path = replace["template"]["get_file"]["list_join"]
    assert path == ["/", [hot.USER_DATA_DIR, {"get_param": "nodegroup"}, {"get_param": "index"}]]
    # Heat writes the API's addresses in place of their stand-ins
    assert replace["params"] == {
        hot.API_IP_STANDIN: {"get_param": "api_ip"},
        hot.API_FIXED_IP_STANDIN: {"get_param": "api_fixed_ip"},
    }
    assert t.user_data_file("pool-a", 7) == "/".join([hot.USER_DATA_DIR, "pool-a", "7"])
    assert server["user_data_update_policy"] == "IGNORE"
    assert set(server["metadata"]) >= {"coe_cluster_uuid", "coe_nodegroup", "coe_role", "coe_cluster_name"}


def test_every_parameter_the_template_declares_is_sent_and_nothing_else():
    spec, tmpl = render(rec=dict(nodegroups=[]))
    assert set(spec.parameters) == set(tmpl["parameters"])


def test_zero_workers():
    spec, tmpl = render(rec=dict(node_count=0))
    assert spec.parameters["default-worker_count"] == 0
    assert not [f for f in spec.files if f.startswith("coe-user-data/default-worker/")]
    assert spec.nodes["default-worker"] == []
    assert_references_resolve(tmpl)


def test_masters_only_cluster_has_empty_node_addresses():
    _spec, tmpl = render(rec=dict(nodegroups=[dict(name="default-master", role="master", node_count=1)]))
    assert tmpl["outputs"]["node_addresses"]["value"] == []
    assert list(tmpl["outputs"]["nodegroups"]["value"]) == ["default-master"]
    assert_references_resolve(tmpl)


def test_many_nodegroups():
    groups = [dict(name="default-master", role="master", node_count=1)]
    groups += [dict(name="pool-%d" % i, role="worker", node_count=i, flavor_id="f%d" % i) for i in range(12)]
    spec, tmpl = render(rec=dict(nodegroups=groups))
    workers = ["pool-%d" % i for i in range(12)]
    for i, ng in enumerate(workers):
        assert tmpl["resources"][ng]["properties"]["count"] == {"get_param": ng + "_count"}
        assert spec.parameters[ng + "_count"] == i
        assert spec.parameters[ng + "_flavor"] == "f%d" % i
        assert spec.nodes[ng] == ["demo-%s-%d" % (ng, n) for n in range(i)]
    # an upgrade rolls the nodegroups one after the other, masters first; a create or a
    # scale makes them at once (a reference that only exists when the condition holds)
    assert "metadata" not in tmpl["resources"]["default-master"]
    assert not [r for r in tmpl["resources"].values() if "depends_on" in r]
    after = {"if": ["nodegroups_in_order", {"get_resource": "default-master"}, ""]}
    assert tmpl["resources"]["pool-0"]["metadata"]["coe_after"] == after
    assert tmpl["resources"]["pool-5"]["metadata"]["coe_after"]["if"][1] == {"get_resource": "pool-4"}
    assert tmpl["conditions"]["nodegroups_in_order"] == {"get_param": "nodegroups_in_order"}
    assert spec.parameters["nodegroups_in_order"] is False
    concat = tmpl["outputs"]["node_addresses"]["value"]["list_concat"]
    assert [c["get_attr"][0] for c in concat] == workers
    assert set(tmpl["outputs"]["nodegroups"]["value"]) == {"default-master", *workers}
    assert_references_resolve(tmpl)


@pytest.mark.parametrize(
    "value",
    [
        'it\'s "quoted"',
        "key: value",
        "{{ jinja }} {% raw %}",
        "- list\n- item",
        "&anchor *alias !!python/object:os.system",
        "#comment ]]} [[{",
    ],
)
def test_labels_with_yaml_metacharacters_only_travel_as_parameters(value):
    plain, _tmpl = render()
    spec, _tmpl = render(rec=dict(labels={"weird": value, "kube_tag": value}))
    # the template text does not change with label values: nothing is pasted into YAML
    assert spec.template == plain.template
    assert spec.parameters["labels"] == {"weird": value, "kube_tag": value}
    assert spec.parameters["coe_version"] == value
    # and the parameters survive JSON (what the API call sends)
    assert json.loads(json.dumps(spec.parameters))["labels"]["weird"] == value


@pytest.mark.parametrize("bad", ['x"y', "a: b", "UPPER", "-lead", "with space", "x" * 64, "under_score"])
def test_nodegroup_names_that_are_not_dns_labels_are_refused(bad):
    groups = [dict(name="default-master", role="master", node_count=1), dict(name=bad, node_count=1)]
    with pytest.raises(ValidationError) as e:
        render(rec=dict(nodegroups=groups))
    assert e.value.field == "nodegroups[1].name"


def test_user_data_goes_to_each_node_by_index():
    ud = {"demo-master-0": "#cloud-config\nm0: 1\n", "demo-default-worker-1": "#cloud-config\nw1: 'x'\n"}
    spec, _tmpl = render(user_data=ud)
    assert spec.files["coe-user-data/default-master/0"] == ud["demo-master-0"]
    assert spec.files["coe-user-data/default-master/1"] == ""
    assert spec.files["coe-user-data/default-worker/0"] == ""
    assert spec.files["coe-user-data/default-worker/1"] == ud["demo-default-worker-1"]
    # no parameter carries user-data (nothing secret is a parameter)
    assert not [k for k in spec.parameters if "user_data" in k]


def test_existing_nodes_keep_the_user_data_file_of_the_live_stack():
    live_files = {"coe-user-data/default-worker/0": "old-0", "coe-user-data/default-worker/9": "gone"}
    spec, _tmpl = render(rec=dict(node_count=2), user_data={"demo-default-worker-1": "new-1"}, live_files=live_files)
    assert spec.files["coe-user-data/default-worker/0"] == "old-0"
    assert spec.files["coe-user-data/default-worker/1"] == "new-1"
    # a file of a node that is no member any more is not sent again
    assert "coe-user-data/default-worker/9" not in spec.files


def _resolve_params(value, parameters):
    """Heat's view of a ResourceGroup's member definition: get_param resolved before %index%."""
    if isinstance(value, dict):
        if set(value) == {"get_param"} and isinstance(value["get_param"], str):
            return parameters.get(value["get_param"])
        return {k: _resolve_params(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_params(v, parameters) for v in value]
    return value


def test_what_heat_stores_grows_linearly_with_the_nodes():
    """Heat copies a ResourceGroup's resolved member definition into every member: it must not
    hold every node's user-data (51 nodes of 12 KB once made a 26 MB row, past MariaDB's packet)."""
    size = 12000

    def member_and_total(workers):
        names = ["demo-default-worker-%d" % i for i in range(workers)] + ["demo-master-0"]
        ud = dict.fromkeys(names, "#cloud-config\n" + "k" * size)
        spec, tmpl = render(rec=dict(node_count=workers, master_count=1), user_data=ud)
        member = _resolve_params(tmpl["resources"]["default-worker"]["properties"]["resource_def"], spec.parameters)
        total = len(spec.template) + sum(len(v) for v in spec.files.values()) + len(json.dumps(spec.parameters))
        return len(json.dumps(member)), total

    member_small, total_small = member_and_total(10)
    member_large, total_large = member_and_total(200)
    assert member_large < 2000
    assert member_large < member_small * 1.5
    # what is sent once grows with the nodes, no faster
    assert total_large < total_small * 201 / 11 * 1.05


def test_remove_a_named_node_and_never_reuse_its_index():
    spec, _tmpl = render(rec=dict(node_count=2), nodes_to_remove=["demo-default-worker-1"])
    assert spec.parameters["default-worker_removal_policies"] == [{"resource_list": ["1"]}]
    assert spec.nodes["default-worker"] == ["demo-default-worker-0", "demo-default-worker-2"]
    # a later scale-out: the live stack remembers index 1, new nodes skip it
    live = dict(spec.parameters)
    live["default-worker_removal_policies"] = json.dumps(live["default-worker_removal_policies"])
    later, _tmpl = render(rec=dict(node_count=4), live_parameters=live, user_data={"demo-default-worker-4": "x"})
    assert later.nodes["default-worker"] == [
        "demo-default-worker-0",
        "demo-default-worker-2",
        "demo-default-worker-3",
        "demo-default-worker-4",
    ]
    assert later.parameters["default-worker_removal_policies"] == [{"resource_list": ["1"]}]
    assert later.files["coe-user-data/default-worker/4"] == "x"
    assert "coe-user-data/default-worker/1" not in later.files


def test_removing_a_node_that_is_not_a_member_is_refused():
    with pytest.raises(ValidationError) as e:
        render(nodes_to_remove=["demo-default-worker-7"], live_members={"default-worker": ["0", "1"]})
    assert e.value.field == "nodes_to_remove"
    with pytest.raises(ValidationError) as e:
        render(nodes_to_remove=["other-default-worker-0"])
    assert "not a node name of cluster demo" in str(e.value)


def test_batch_size_only_for_upgrades():
    spec, tmpl = render()
    assert spec.parameters["default-worker_max_batch_size"] == 2
    assert "default-worker_max_batch_size" in spec.policy
    policy = tmpl["resources"]["default-worker"]["update_policy"]["rolling_update"]
    assert policy["max_batch_size"] == {"get_param": "default-worker_max_batch_size"}
    upgrade, _tmpl = render(upgrade=True, batch_size=1)
    assert upgrade.parameters["nodegroups_in_order"] is True
    assert upgrade.parameters["default-worker_max_batch_size"] == 1
    assert upgrade.parameters["default-master_max_batch_size"] == 1


@pytest.mark.parametrize(
    "over, field",
    [
        (dict(rec=dict(master_count=2)), "master_count"),
        (dict(rec=dict(master_count=0)), "nodegroups[0].node_count"),
        (dict(rec=dict(node_count=-1)), "nodegroups[1].node_count"),
        (dict(rec=dict(node_count="two")), "nodegroups[1].node_count"),
        (dict(rec=dict(flavor_id=None, master_flavor_id=None)), "nodegroups[0].flavor_id"),
        (dict(rec=dict(image_id="")), "nodegroups[0].image_id"),
        (dict(rec=dict(name="Bad_Name")), "cluster.name"),
        (dict(rec=dict(uuid="not a uuid!")), "cluster.uuid"),
        (dict(rec=dict(fixed_network=None)), "fixed_network"),
        (dict(rec=dict(labels=["a"])), "cluster.labels"),
        (dict(floating_ip_enabled=True), "external_network"),
        (dict(server_group_policy="spread"), "server_group_policy"),
        (dict(image_update_policy="RECREATE"), "image_update_policy"),
        (dict(user_data={"demo-master-0": 42}), "user_data"),
        (dict(upgrade=True, batch_size=0), "batch_size"),
    ],
)
def test_bad_input_names_the_field(over, field):
    with pytest.raises(ValidationError) as e:
        render(**over)
    assert e.value.field == field


@pytest.mark.parametrize("masters", [1, 3])
def test_floating_ip_and_network_options(masters):
    spec, tmpl = render(
        rec=dict(master_count=masters),
        floating_ip_enabled=True,
        external_network="public",
        fixed_subnet="private-subnet",
    )
    assert spec.parameters["floating_ip_enabled"] is True
    assert spec.parameters["external_network"] == "public"
    assert spec.parameters["fixed_subnet"] == "private-subnet"
    fip = tmpl["resources"]["api_floating_ip"]
    assert fip["condition"] == "api_floating_ip"
    # the floating IP is on the API port, made before any node
    assert fip["properties"]["port_id"] == {"get_resource": "api_port"}
    group = tmpl["resources"]["default-master"]["properties"]["resource_def"]
    if masters == 1:
        # a single master uses that port
        assert group["type"] == "coe_node.yaml"
        assert group["properties"]["first_port"] == {"get_resource": "api_port"}
        assert "api_fixed_ip" not in tmpl["outputs"]
    else:
        # a VIP: no master uses the port; each master's own port may carry its address
        assert group["type"] == "coe_vip_master.yaml"
        assert "first_port" not in group["properties"]
        assert group["properties"]["vip_address"] == {"get_attr": ["api_port", "fixed_ips", 0, "ip_address"]}
        assert tmpl["outputs"]["api_fixed_ip"]["value"] == {"get_attr": ["api_port", "fixed_ips", 0, "ip_address"]}
    workers = tmpl["resources"]["default-worker"]["properties"]["resource_def"]
    assert workers["type"] == "coe_node.yaml" and "first_port" not in workers["properties"]
    assert_references_resolve(tmpl)


def test_the_vip_port_and_the_masters_allowed_address_pairs():
    spec, tmpl = render(rec=dict(api_endpoint="vip"))
    port = tmpl["resources"]["api_port"]["properties"]
    assert port["name"] == {"list_join": ["-", [{"get_param": "cluster_name"}, "api-vip"]]}
    assert port["tags"][1:] == ["coe-cluster", "coe-api-vip"]  # the synchroniser's one port list finds it
    assert port["security_groups"] == [{"get_resource": "secgroup"}]
    node = yaml.safe_load(spec.files["coe_vip_master.yaml"])
    assert_references_resolve(node)
    assert node["parameters"]["vip_address"]["type"] == "string"
    assert node["resources"]["port"]["properties"]["allowed_address_pairs"] == [
        {"ip_address": {"get_param": "vip_address"}}
    ]
    # the same node otherwise: made from the one NODE_TEMPLATE
    plain = yaml.safe_load(hot.NODE_TEMPLATE)
    del node["parameters"]["vip_address"], node["resources"]["port"]["properties"]["allowed_address_pairs"]
    assert node == plain
    # a record written before the rule (single master's endpoint) keeps today's template
    spec, tmpl = render(rec=dict(api_endpoint="master"))
    assert "coe_vip_master.yaml" not in spec.files
    assert tmpl["resources"]["api_port"]["properties"]["name"]["list_join"][1][1:] == ["master", "0", "port"]


def test_the_api_gets_a_floating_ip_when_the_template_has_an_external_network():
    """Magnum's default, as the Nova driver does it (endpoint.api_floating_ip)."""
    rec = record(template=dict(external_network_id="public"))
    spec = t.build_cluster_stack(rec)
    assert spec.parameters["floating_ip_enabled"] is True
    assert spec.parameters["external_network"] == "public"
    spec = t.build_cluster_stack(dict(rec, floating_ip_enabled=False))
    assert spec.parameters["floating_ip_enabled"] is False
    assert t.build_cluster_stack(record()).parameters["floating_ip_enabled"] is False  # no external network
    tmpl = yaml.safe_load(spec.template)
    assert "api_ip" in tmpl["outputs"] and "api_address" not in tmpl["outputs"]


@pytest.mark.parametrize("live", ["false", "False", False])
def test_a_live_stack_keeps_its_api_endpoint(live):
    """A stack made with a fixed-IP API (before the rule was Magnum's) keeps it: another
    address would be in no certificate and no kubeconfig."""
    rec = record(template=dict(external_network_id="public"))
    spec = t.build_cluster_stack(rec, live_parameters={"floating_ip_enabled": live})
    assert spec.parameters["floating_ip_enabled"] is False
    spec = t.build_cluster_stack(dict(rec, floating_ip_enabled=False), live_parameters={"floating_ip_enabled": "true"})
    assert spec.parameters["floating_ip_enabled"] is True


def test_masters_are_rebuilt_and_workers_replaced_by_default():
    spec, tmpl = render()
    assert spec.parameters["master_image_update_policy"] == "REBUILD"
    assert spec.parameters["image_update_policy"] == "REPLACE"
    masters = tmpl["resources"]["default-master"]["properties"]["resource_def"]["properties"]
    workers = tmpl["resources"]["default-worker"]["properties"]["resource_def"]["properties"]
    assert masters["image_update_policy"] == {"get_param": "master_image_update_policy"}
    assert workers["image_update_policy"] == {"get_param": "image_update_policy"}


def test_network_settings_come_from_the_records_template_spec():
    rec = record(fixed_network=None, keypair=None)
    rec["template"] = dict(
        fixed_network="private",
        external_network_id="public",
        master_server_group_policy="soft-anti-affinity",
        keypair_id="demo-key",
    )
    spec = t.build_cluster_stack(dict(rec, floating_ip_enabled=True))
    assert spec.parameters["fixed_network"] == "private"
    assert spec.parameters["external_network"] == "public"
    assert spec.parameters["master_server_group_policy"] == "soft-anti-affinity"
    assert spec.parameters["keypair"] == "demo-key"


def test_member_indices_skip_removed_ones():
    assert t.member_indices(3, set()) == [0, 1, 2]
    assert t.member_indices(3, {1}) == [0, 2, 3]
    assert t.member_indices(0, {0}) == []
    assert t.removed_indices('[{"resource_list": ["1", "4", "server-x"]}]') == {1, 4}
    assert t.removed_indices("") == set()


IDS = {
    "m1.small": "2",
    "m1.medium": "3",
    "fake-image": "4f1c0d7e-6a59-4d55-a4d4-8f6a1f0e9b21",
    "private": "9b0f9a4e-7c55-4a8e-9d0e-2f3c1a6b5d44",
}


def test_a_new_stack_names_flavors_images_and_network_by_id():
    # every member's server resolves a name again (a flavor list, an image search): ids are one GET
    spec = t.build_cluster_stack(record(), ids=IDS)
    params = spec.parameters
    assert params["fixed_network"] == IDS["private"]
    assert params["default-master_flavor"] == "3" and params["default-worker_flavor"] == "2"
    assert params["default-master_image"] == params["default-worker_image"] == IDS["fake-image"]


def test_a_live_stack_made_with_names_keeps_them():
    # turning a name into its id would look like a new image to Heat: every server rebuilt
    first = t.build_cluster_stack(record())
    again = t.build_cluster_stack(record(), ids=IDS, live_parameters=first.parameters)
    for key in (
        "fixed_network",
        "default-master_flavor",
        "default-master_image",
        "default-worker_flavor",
        "default-worker_image",
    ):
        assert again.parameters[key] == first.parameters[key], key


def test_a_live_stack_made_with_ids_keeps_them_and_a_new_image_changes_it():
    first = t.build_cluster_stack(record(), ids=IDS)
    same = t.build_cluster_stack(record(), ids=IDS, live_parameters=first.parameters)
    assert same.parameters == first.parameters
    # an upgrade to another image: its id, whatever the live stack held
    ids = dict(IDS, **{"fedora-coreos-41": "0d5a3f7e-1111-4c2b-9a8e-3b2c1d0e9f87"})
    upgraded = t.build_cluster_stack(record(image_id="fedora-coreos-41"), ids=ids, live_parameters=first.parameters)
    assert upgraded.parameters["default-master_image"] == ids["fedora-coreos-41"]


@pytest.mark.parametrize(
    "value, live, expected",
    [
        ("m1.small", None, "2"),  # new stack: the id
        ("m1.small", "m1.small", "m1.small"),  # made with the name: kept
        ("m1.small", "2", "2"),  # made with the id: kept
        ("m1.large", "m1.small", "5"),  # another flavor: its id
        ("unknown", None, "unknown"),  # not found by the lookup: the name, Heat says why
        ("", "", ""),
    ],
)
def test_stable_reference(value, live, expected):
    assert t.stable_reference(value, {"m1.small": "2", "m1.large": "5", "unknown": "unknown"}, live) == expected


def test_master_lb_enabled_puts_an_octavia_load_balancer_in_the_stack():
    spec, tmpl = render(
        rec=dict(
            master_lb_enabled=True,
            external_network_id="public",
            labels={"master_lb_allowed_cidrs": "10.0.0.0/8,172.24.4.0/24"},
        )
    )
    assert_references_resolve(tmpl)
    assert set(spec.parameters) == set(tmpl["parameters"])
    res = tmpl["resources"]
    kinds = {name: r["type"] for name, r in res.items() if r["type"].startswith("OS::Octavia::")}
    assert kinds == {
        "api_lb": "OS::Octavia::LoadBalancer",
        "api_listener": "OS::Octavia::Listener",
        "api_pool": "OS::Octavia::Pool",
        "api_monitor": "OS::Octavia::HealthMonitor",
        "api_member_0": "OS::Octavia::PoolMember",
    }
    listener = res["api_listener"]["properties"]
    assert (listener["protocol"], listener["protocol_port"]) == ("TCP", 6443)
    assert spec.parameters["lb_allowed_cidrs"] == ["10.0.0.0/8", "172.24.4.0/24"]
    assert res["api_monitor"]["properties"]["type"] == "TCP"
    # the VIP on the masters' subnet, the floating IP on the VIP port, the API address the LB's
    assert res["api_lb"]["properties"]["vip_subnet"] == {"get_attr": ["api_port", "fixed_ips", 0, "subnet_id"]}
    assert res["api_floating_ip"]["properties"]["port_id"] == {"get_attr": ["api_lb", "vip_port_id"]}
    assert tmpl["outputs"]["api_ip"]["value"]["if"][2] == {"get_attr": ["api_lb", "vip_address"]}
    assert tmpl["outputs"]["api_fixed_ip"]["value"] == {"get_attr": ["api_lb", "vip_address"]}
    # every master is a member (its node stack's PoolMember), workers are not
    masters = res["default-master"]["properties"]["resource_def"]["properties"]
    workers = res["default-worker"]["properties"]["resource_def"]["properties"]
    assert masters["lb_pool"] == {"get_resource": "api_pool"} and "lb_pool" not in workers
    node = yaml.safe_load(hot.NODE_TEMPLATE)
    member = node["resources"]["lb_member"]
    assert member["type"] == "OS::Octavia::PoolMember" and member["condition"] == "lb_member"
    assert member["properties"]["protocol_port"] == 6443
    # master 0's member is the cluster stack's, on the API port it keeps across replacements
    assert node["conditions"]["lb_member"]["and"][1] == "own_port"
    assert res["api_member_0"]["properties"]["address"] == {"get_attr": ["api_port", "fixed_ips", 0, "ip_address"]}


def test_no_load_balancer_without_master_lb_enabled():
    spec, tmpl = render(rec=dict(external_network_id="public"))
    assert not [r for r in tmpl["resources"].values() if r["type"].startswith("OS::Octavia::")]
    assert "lb_allowed_cidrs" not in spec.parameters
    assert tmpl["resources"]["api_floating_ip"]["properties"]["port_id"] == {"get_resource": "api_port"}


@pytest.mark.parametrize(
    "rec, fixed",
    [
        (dict(master_count=1), None),
        (dict(master_count=3), {"get_attr": ["api_port", "fixed_ips", 0, "ip_address"]}),
        (dict(master_count=3, master_lb_enabled=True), {"get_attr": ["api_lb", "vip_address"]}),
    ],
    ids=["single-master", "vip", "load-balancer"],
)
def test_every_member_gets_what_the_user_data_stand_ins_stand_for(rec, fixed):
    spec, tmpl = render(rec=dict(rec, external_network_id="public"))
    assert spec.standins  # a floating IP: the user-data names the API by the stand-ins
    for ng in ("default-master", "default-worker"):
        props = tmpl["resources"][ng]["properties"]["resource_def"]["properties"]
        # the same address as the stack's api_ip output, which the record's api_address is read from
        assert props["api_ip"] == tmpl["outputs"]["api_ip"]["value"]
        assert props["api_fixed_ip"] == (fixed if fixed else "")
    if fixed:
        assert tmpl["outputs"]["api_fixed_ip"]["value"] == fixed
    assert_references_resolve(tmpl)


def test_no_stand_ins_without_a_floating_ip():
    spec, _tmpl = render(rec=dict(external_network_id=None))
    assert not spec.standins
    spec, _tmpl = render(rec=dict(external_network_id="public"), floating_ip_enabled=False)
    assert not spec.standins
