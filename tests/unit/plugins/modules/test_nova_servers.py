"""nova_servers and nova_resources with a fake connection: input errors, check mode, idempotence, failures."""

import importlib
import os
import sys
from unittest import mock

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import module as module_base
from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.modules import nova_resources, nova_servers

UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"
UUID2 = "5e6f7a8b-2c3d-4e5f-9a0b-1c2d3e4f5a6b"


def fake_cloud(**kw):
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils", "nova")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("fakecloud").FakeCloud(**kw)


@pytest.fixture
def cloud(monkeypatch, tmp_path):
    monkeypatch.setenv("COE_STATE_URL", "sqlite:///%s" % (tmp_path / "s.db"))
    cloud = fake_cloud()
    with mock.patch.object(module_base, "build_connection", lambda params: cloud):
        yield cloud


@pytest.fixture
def no_cloud(monkeypatch, tmp_path):
    """Any attempt to connect fails the test."""
    monkeypatch.setenv("COE_STATE_URL", "sqlite:///%s" % (tmp_path / "s.db"))

    def refuse(params):
        raise AssertionError("the module connected to the cloud")

    with mock.patch.object(module_base, "build_connection", refuse):
        yield


def record(masters=1, workers=2, **over):
    rec = dict(
        name="k1",
        uuid=UUID,
        master_count=masters,
        node_count=workers,
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        image_id="fake-image",
        keypair="demo-key",
        fixed_network="private",
        external_network_id="public",
        floating_ip_enabled=True,
        nodegroups=[
            dict(name="default-master", role="master", node_count=masters),
            dict(name="default-worker", role="worker", node_count=workers),
        ],
    )
    rec.update(over)
    return rec


@pytest.mark.parametrize(
    "args, field",
    [
        (dict(cluster=dict(record(), uuid="nope")), "cluster.uuid"),
        (dict(cluster=dict(record(), name="Not_A_Label")), "cluster.name"),
        (dict(cluster=record(), concurrency=0), "concurrency"),
        (dict(cluster=record(), lock_token=4, lock_ttl=2), "lock_ttl"),
        (dict(cluster_uuid=UUID, cluster_name="k1", servers=[], lock_token=4), "lock_token"),
        (dict(cluster=dict(record(), flavor_id=None, master_flavor_id=None)), "cluster.nodegroups[0].flavor"),
        (dict(cluster_uuid="x", cluster_name="k1", servers=[]), "cluster_uuid"),
        (
            dict(
                cluster_uuid=UUID,
                cluster_name="k1",
                servers=[dict(name="a", nodegroup="g", role="worker", flavor="f", image="i")] * 2,
            ),
            "servers[1].name",
        ),
    ],
)
def test_bad_input_names_the_field_before_any_cloud_call(run_module, no_cloud, args, field):
    result = run_module(nova_servers.main, args)
    assert result.failed
    assert result["field"] == field, result["msg"]


def test_check_mode_lists_what_would_be_created_and_writes_nothing(run_module, cloud):
    result = run_module(nova_servers.main, dict(cluster=record()), check_mode=True, diff=True)
    assert not result.failed, result["msg"] if result.failed else ""
    assert result["changed"] is True
    assert result["created"] == ["k1-master-0", "k1-default-worker-0", "k1-default-worker-1"]
    assert result["diff"] == dict(before=dict(servers=[]), after=dict(servers=sorted(result["created"])))
    assert cloud.writes() == []


def test_create_then_rerun_changes_nothing(run_module, cloud):
    first = run_module(nova_servers.main, dict(cluster=record(), poll_interval=0.01))
    assert first["changed"] is True
    assert sorted(s["name"] for s in first["servers"]) == ["k1-default-worker-0", "k1-default-worker-1", "k1-master-0"]
    assert {s["status"] for s in first["servers"]} == {"ACTIVE"}
    assert first["nodegroups"]["default-worker"] == {"last_index": 1, "node_count": 2}
    writes = len(cloud.writes())
    second = run_module(nova_servers.main, dict(cluster=record(), poll_interval=0.01))
    assert second["changed"] is False
    assert len(cloud.writes()) == writes


def test_a_cluster_whose_servers_are_all_gone_is_rebuilt_under_its_nodes_names(run_module, cloud):
    """The record after a sync found every server gone: every known node MISSING."""
    rec = record()
    names = {"default-master": ["k1-master-3"], "default-worker": ["k1-default-worker-4", "k1-default-worker-6"]}
    for group in rec["nodegroups"]:
        group["nodes"] = [dict(name=n, status="MISSING") for n in names[group["name"]]]
        group["last_index"] = 6
    assert cloud.servers == {}
    result = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert not result.failed, result.get("msg")
    assert sorted(result["created"]) == ["k1-default-worker-4", "k1-default-worker-6", "k1-master-3"]
    assert {s["status"] for s in result["servers"]} == {"ACTIVE"}


def test_no_valid_host_fails_naming_the_server_and_novas_fault(run_module, cloud):
    rec = record(workers=1)
    rec["nodegroups"][1]["flavor_id"] = "m1.huge"
    result = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert result.failed
    assert (
        result["msg"] == "1 of 2 servers of cluster k1 failed: k1-default-worker-0: No valid host was found. (code 500)"
    )
    assert result["changed"] is True
    assert result["faults"] == {"k1-default-worker-0": "No valid host was found. (code 500)"}


def waves(cloud):
    """The names of the servers posted together: the create_server calls between two lists."""
    out = [[]]
    for _service, method, kwargs in cloud.calls:
        if method == "create_server":
            out[-1].append(kwargs["name"])
        elif method == "servers" and out[-1]:
            out.append([])
    return [sorted(wave) for wave in out if wave]


MASTERS = ["k1-master-0", "k1-master-1", "k1-master-2"]


@pytest.mark.parametrize("resources", [True, False])
@pytest.mark.parametrize(
    "policy, expected",
    [
        ("anti-affinity", [[m] for m in MASTERS]),
        ("affinity", [MASTERS[:1], MASTERS[1:]]),
        ("soft-anti-affinity", [MASTERS]),
        ("soft-affinity", [MASTERS]),
    ],
)
def test_the_members_of_a_strict_server_group_are_posted_once_those_before_are_placed(
    run_module, cloud, resources, policy, expected
):
    """Nova learns where a member is only when its compute has claimed the host: anti-affine
    masters posted at once race for one host, and the losers end in ERROR (MaxRetriesExceeded)
    where there are as many hosts as masters. Each goes once the one before has left
    ``scheduling``; an affine group's others follow its first; a soft policy goes at once."""
    rec = record(masters=3, workers=2, master_server_group_policy=policy)
    if not resources:
        assert not run_module(nova_resources.main, dict(cluster=rec)).failed
        del cloud.calls[:]
    result = run_module(nova_servers.main, dict(cluster=rec, resources=resources, poll_interval=0.01))
    assert not result.failed, result.get("msg")
    assert {s["name"]: s["status"] for s in result["servers"]} == dict.fromkeys(result["created"], "ACTIVE")
    assert cloud.count("create_server") == 5
    workers = ["k1-default-worker-0", "k1-default-worker-1"]
    assert waves(cloud) == [sorted(expected[0] + workers), *expected[1:]]  # the workers go with the first


def test_where_the_task_state_is_hidden_the_next_member_waits_for_the_one_before_to_be_active(run_module, cloud):
    cloud.hide_task_state = True
    cloud.polls_to_active = 3
    statuses = {}
    create = cloud.compute.create_server

    def spy(**body):
        statuses[body["name"]] = {s.name: s.status for s in cloud.servers.values()}
        return create(**body)

    cloud.compute.create_server = spy
    rec = record(masters=3, workers=0)
    result = run_module(nova_servers.main, dict(cluster=rec, resources=True, poll_interval=0.01))
    assert not result.failed, result.get("msg")
    assert waves(cloud) == [[m] for m in MASTERS]
    assert statuses == {
        "k1-master-0": {},
        "k1-master-1": {"k1-master-0": "ACTIVE"},
        "k1-master-2": {"k1-master-0": "ACTIVE", "k1-master-1": "ACTIVE"},
    }


def test_a_member_nova_placed_nowhere_lets_the_next_go_and_fails_the_run_with_novas_words(run_module, cloud):
    rec = record(masters=3, workers=0, master_flavor_id="m1.huge")
    result = run_module(nova_servers.main, dict(cluster=rec, resources=True, poll_interval=0.01))
    assert result.failed
    assert waves(cloud) == [[m] for m in MASTERS]
    assert result["faults"] == dict.fromkeys(MASTERS, "No valid host was found. (code 500)")
    assert result["msg"].startswith("3 of 3 servers of cluster k1 failed: k1-master-0: No valid host was found.")


def test_a_server_group_named_in_a_spec_is_looked_up_with_its_policy(run_module, cloud):
    group = cloud.compute.create_server_group(name="my-masters", policy="anti-affinity")
    specs = [
        dict(
            name="m%d" % i, nodegroup="m", role="master", flavor="m1.small", image="fake-image", server_group=group.name
        )
        for i in range(3)
    ]
    result = run_module(
        nova_servers.main, dict(cluster_uuid=UUID, cluster_name="k1", servers=specs, poll_interval=0.01)
    )
    assert not result.failed, result.get("msg")
    assert waves(cloud) == [["m0"], ["m1"], ["m2"]]
    assert {s["status"] for s in result["servers"]} == {"ACTIVE"}


def test_quota_too_small_names_the_quota_also_in_check_mode(run_module, cloud):
    cloud.quota["instances"] = 2
    for check in (True, False):
        result = run_module(nova_servers.main, dict(cluster=record()), check_mode=check)
        assert result.failed
        assert "quota for instances: 3 needed, 0 of 2 used (2 free)" in result["msg"]
    assert cloud.count("create_server") == 0


def test_resources_create_idempotent_and_delete_everything(run_module, cloud):
    rec = record()
    first = run_module(nova_resources.main, dict(cluster=rec))
    assert first["changed"] is True
    assert first["server_groups"]["default-master"]["policy"] == "anti-affinity"
    assert first["api_address"] == "https://%s:6443" % first["floating_ip"]["address"]
    assert first["floating_ip"]["port_id"] is None  # no master yet
    run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    # the servers got the cluster's security group and the masters' server group
    bodies = {c[2]["name"]: c[2] for c in cloud.calls if c[1] == "create_server"}
    sg = first["security_group"]["id"]
    assert bodies["k1-master-0"]["security_groups"] == [{"name": sg}]
    assert bodies["k1-master-0"]["scheduler_hints"] == {"group": first["server_groups"]["default-master"]["id"]}
    assert "scheduler_hints" not in bodies["k1-default-worker-0"]
    attach = run_module(nova_resources.main, dict(cluster=rec))
    assert attach["changed"] is True
    assert attach["floating_ip"]["server"] == "k1-master-0"
    writes = len(cloud.writes())
    again = run_module(nova_resources.main, dict(cluster=rec))
    assert again["changed"] is False
    assert len(cloud.writes()) == writes
    check = run_module(nova_resources.main, dict(cluster_uuid=UUID, cluster_name="k1", state="absent"), check_mode=True)
    assert check["changed"] is True and len(cloud.writes()) == writes
    gone = run_module(nova_resources.main, dict(cluster_uuid=UUID, cluster_name="k1", state="absent"))
    assert gone["deleted"]["servers"] == ["k1-default-worker-0", "k1-default-worker-1", "k1-master-0"]
    assert gone["deleted"]["floating_ips"] == [first["floating_ip"]["address"]]
    assert len(gone["deleted"]["server_groups"]) == 1 and len(gone["deleted"]["security_groups"]) == 1
    assert cloud.servers == {} and cloud.fips == {} and cloud.security_groups == {} and cloud.server_groups == {}
    final = run_module(nova_resources.main, dict(cluster_uuid=UUID, cluster_name="k1", state="absent"))
    assert final["changed"] is False


def test_server_groups_of_nodegroups_that_are_gone_are_deleted(run_module, cloud):
    groups = {"default-master": "anti-affinity", "gpu": "soft-anti-affinity"}
    first = run_module(nova_resources.main, dict(cluster=record(), server_groups=groups, floating_ip=False))
    assert sorted(first["server_groups"]) == ["default-master", "gpu"]
    second = run_module(
        nova_resources.main,
        dict(cluster=record(), server_groups={"default-master": "anti-affinity"}, floating_ip=False),
    )
    assert second["changed"] is True
    assert second["changes"] == ["delete server group coe-%s-gpu" % UUID]
    assert sorted(g.name for g in cloud.server_groups.values()) == ["coe-%s-default-master" % UUID]


@pytest.mark.parametrize(
    "over, policy",
    [
        (dict(), "anti-affinity"),
        (dict(template=dict(master_server_group_policy="soft-anti-affinity")), "soft-anti-affinity"),
        (dict(labels=dict(master_server_group_policy="affinity")), "affinity"),
        # the template's field wins over the label, as in the Heat driver
        (
            dict(
                template=dict(master_server_group_policy="soft-affinity"), labels=dict(master_server_group_policy="x")
            ),
            "soft-affinity",
        ),
    ],
)
def test_masters_server_group_takes_the_templates_policy(run_module, cloud, over, policy):
    result = run_module(nova_resources.main, dict(cluster=record(**over), floating_ip=False))
    assert not result.failed, result.get("msg")
    assert result["server_groups"]["default-master"]["policy"] == policy
    (group,) = cloud.server_groups.values()
    assert group.policy == policy


def test_an_explicit_masters_policy_wins_over_the_templates(run_module, cloud):
    rec = record(template=dict(master_server_group_policy="soft-anti-affinity"))
    args = dict(cluster=rec, resources=True, server_groups={"default-master": "affinity"}, poll_interval=0.01)
    result = run_module(nova_servers.main, args)
    assert not result.failed, result.get("msg")
    assert result["resources"]["server_groups"]["default-master"]["policy"] == "affinity"
    # a worker policy given alone leaves the masters the template's
    result = run_module(
        nova_resources.main,
        dict(cluster=dict(rec, uuid=UUID2), server_groups={"default-worker": "soft-affinity"}, floating_ip=False),
    )
    assert result["server_groups"]["default-master"]["policy"] == "soft-anti-affinity"
    assert result["server_groups"]["default-worker"]["policy"] == "soft-affinity"


def test_a_bad_template_policy_is_named_before_any_cloud_call(run_module, no_cloud):
    rec = record(template=dict(master_server_group_policy="spread"))
    result = run_module(nova_servers.main, dict(cluster=rec, resources=True))
    assert result.failed
    assert result["field"] == "master_server_group_policy", result["msg"]


def test_user_data_rendered_per_node_first_master_inits_the_others_join(run_module, cloud, monkeypatch):
    import base64

    monkeypatch.setenv("COE_SECRET_KEY", "unit-test-secret-key-0123456789abcdef")
    # a record written before the VIP rule: its API is on its first master
    rec = record(masters=3, workers=1, labels={"kube_tag": "v1.31.1"}, api_address="172.24.4.20", api_endpoint="master")
    result = run_module(nova_servers.main, dict(cluster=rec, render_user_data=True, poll_interval=0.01))
    assert not result.failed, result.get("msg")
    bodies = {c[2]["name"]: c[2] for c in cloud.calls if c[1] == "create_server"}
    texts = {name: base64.b64decode(body["user_data"]).decode() for name, body in bodies.items()}
    assert all(t.startswith("#cloud-config") for t in texts.values())
    assert "kind: InitConfiguration" in texts["k1-master-0"]
    for name in ("k1-master-1", "k1-master-2", "k1-default-worker-0"):
        assert "kind: InitConfiguration" not in texts[name]
        assert "kind: JoinConfiguration" in texts[name]
    # the worker joins with its own certificate, named after it, and the API address is the record's
    assert "system:node:k1-default-worker-0" in texts["k1-default-worker-0"]
    assert "172.24.4.20:6443" in texts["k1-default-worker-0"]
    # nothing secret comes back
    assert "BEGIN" not in str(result)


def test_user_data_inputs_are_checked_in_check_mode(run_module, cloud):
    rec = record(labels={"kube_tag": "not-a-version"})
    result = run_module(nova_servers.main, dict(cluster=rec, render_user_data=True), check_mode=True)
    assert result.failed
    assert result["field"] == "coe_version"
    assert cloud.writes() == []


def test_an_upgrade_puts_new_servers_in_the_new_versions_server_group(run_module, cloud):
    rec = record(masters=3, workers=0, template_version=1)
    v1 = run_module(nova_resources.main, dict(cluster=rec, floating_ip=False))
    assert v1["server_groups"]["default-master"]["name"] == "coe-%s-default-master-v1" % UUID
    run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    rec = dict(rec, template_version=2, image_id="fake-image-v2", master_flavor_id="m1.small")
    v2 = run_module(nova_resources.main, dict(cluster=rec, floating_ip=False))
    assert v2["changes"] == [
        "create server group coe-%s-default-master-v2 (anti-affinity)" % UUID,
        "delete server group coe-%s-default-master-v1" % UUID,
    ]
    result = run_module(nova_servers.main, dict(cluster=rec, replace_outdated=True, batch_size=1, poll_interval=0.01))
    assert result["created"] == ["k1-master-3", "k1-master-4", "k1-master-5"], result
    hints = {c[2]["name"]: c[2]["scheduler_hints"]["group"] for c in cloud.calls if c[1] == "create_server"}
    assert {hints[n] for n in result["created"]} == {v2["server_groups"]["default-master"]["id"]}


def test_resources_and_servers_in_one_run_check_mode_first_then_idempotent(run_module, cloud, monkeypatch):
    """With resources: the security group, the masters' server group and the API floating IP are
    made before the servers, the user-data carries the floating IP as the API address, and the
    floating IP ends on the first master; a second run changes nothing and writes nothing."""
    import base64

    monkeypatch.setenv("COE_SECRET_KEY", "unit-test-secret-key-0123456789abcdef")
    rec = record(labels={"kube_tag": "v1.31.1"})
    args = dict(cluster=rec, resources=True, render_user_data=True, poll_interval=0.01)
    check = run_module(nova_servers.main, args, check_mode=True)
    assert not check.failed, check.get("msg")
    assert check["changed"] is True
    assert check["created"] == ["k1-master-0", "k1-default-worker-0", "k1-default-worker-1"]
    assert check["resources"]["changes"][0] == "create security group coe-k1-%s" % UUID
    assert "create floating IP on public" in check["resources"]["changes"]
    assert cloud.writes() == []

    first = run_module(nova_servers.main, args)
    assert not first.failed, first.get("msg")
    assert first["changed"] is True
    res = first["resources"]
    assert res["server_groups"]["default-master"]["policy"] == "anti-affinity"
    assert res["floating_ip"]["server"] == "k1-master-0"
    assert res["api_address"] == "https://%s:6443" % res["floating_ip"]["address"]
    assert "attach floating IP %s to k1-master-0" % res["floating_ip"]["address"] in res["changes"]
    (fip,) = cloud.fips.values()
    master = next(s for s in cloud.servers.values() if s.name == "k1-master-0")
    assert fip.port_id == "port-" + master.id
    bodies = {c[2]["name"]: c[2] for c in cloud.calls if c[1] == "create_server"}
    assert bodies["k1-master-0"]["security_groups"] == [{"name": res["security_group"]["id"]}]
    assert bodies["k1-master-0"]["scheduler_hints"] == {"group": res["server_groups"]["default-master"]["id"]}
    worker = base64.b64decode(bodies["k1-default-worker-0"]["user_data"]).decode()
    assert "%s:6443" % res["floating_ip"]["address"] in worker

    writes = len(cloud.writes())
    again = run_module(nova_servers.main, args)
    assert again["changed"] is False, again.get("resources")
    assert again["resources"]["changes"] == []
    assert len(cloud.writes()) == writes


@pytest.mark.parametrize("port_details", [True, False], ids=["neutron-names-the-server", "no-fip-port-details"])
def test_the_api_floating_ip_is_awaited_in_novas_view_only_when_neutron_cannot_say(
    run_module, cloud, monkeypatch, port_details
):
    """Neutron attaches a floating IP at once and (fip-port-details) names the server it is on:
    the run returns the master with it and lists no more servers for Nova's view. Without the
    extension it waits until Nova shows the address, so that what it records is what the next
    observation reads."""
    monkeypatch.setenv("COE_SECRET_KEY", "unit-test-secret-key-0123456789abcdef")
    cloud.fip_port_details = port_details
    cloud.polls_to_active = 2
    args = dict(
        cluster=record(labels={"kube_tag": "v1.31.1"}), resources=True, render_user_data=True, poll_interval=0.01
    )
    result = run_module(nova_servers.main, args)
    assert not result.failed, result.get("msg")
    address = result["resources"]["floating_ip"]["address"]
    master = next(v for v in result["servers"] if v["name"] == "k1-master-0")
    assert master["floating_addresses"] == [address]
    attach = max(i for i, c in enumerate(cloud.calls) if c[1] in ("update_ip", "create_ip"))
    lists_after = [c for c in cloud.calls[attach:] if c[1] == "servers" and c[2].get("tags") == shape.cluster_tag(UUID)]
    assert (len(lists_after) == 0) if port_details else (len(lists_after) >= 1)


def test_resources_attach_a_floating_ip_left_unattached_without_touching_servers(run_module, cloud):
    """A run that returned before the master was ACTIVE (coe_wait false) left the floating IP
    unattached: the next run attaches it, and creates no server."""
    cloud.polls_to_active = 2  # BUILD at the end of the first run, ACTIVE when the second lists
    rec = record(workers=1)
    first = run_module(nova_servers.main, dict(cluster=rec, resources=True, wait=False, poll_interval=0.01))
    assert first["changed"] is True
    assert first["resources"]["floating_ip"]["port_id"] is None
    second = run_module(nova_servers.main, dict(cluster=rec, resources=True, poll_interval=0.01))
    assert second["changed"] is True and second["created"] == []
    assert second["resources"]["changes"] == [
        "attach floating IP %s to k1-master-0" % first["resources"]["floating_ip"]["address"]
    ]
    assert cloud.count("create_server") == 2


@pytest.mark.parametrize(
    "args, field",
    [
        (dict(cluster_uuid=UUID, cluster_name="k1", servers=[], resources=True), "resources"),
        (dict(cluster=record(), resources=True, state="absent"), "resources"),
        (dict(cluster=dict(record(), external_network_id=None), resources=True, floating_ip=True), "external_network"),
        (
            dict(cluster=record(), resources=True, server_groups={"default-master": "spread"}),
            "server_groups.default-master",
        ),
        (dict(cluster=record(), resources=True, security_group_ports=[0]), "security_group_ports"),
        # no floating IP and no address yet: nothing to write into the user-data
        (dict(cluster=record(), resources=True, floating_ip=False), "floating_ip"),
    ],
)
def test_bad_resource_options_are_named_before_any_cloud_call(run_module, no_cloud, args, field):
    result = run_module(nova_servers.main, args)
    assert result.failed
    assert result["field"] == field, result["msg"]


def test_a_vip_cluster_gets_a_vip_port_carrying_the_floating_ip_and_masters_that_may_carry_it(
    run_module, cloud, monkeypatch
):
    import base64

    monkeypatch.setenv("COE_SECRET_KEY", "unit-test-secret-key-0123456789abcdef")
    rec = record(masters=3, workers=1, labels={"kube_tag": "v1.31.1"}, api_endpoint="vip")
    args = dict(cluster=rec, render_user_data=True, resources=True, poll_interval=0.01)
    result = run_module(nova_servers.main, args)
    assert not result.failed, result.get("msg")
    (vip,) = [p for p in cloud.ports.values() if "coe-api-vip" in p.tags]
    assert vip.name == "k1-api-vip" and set(vip.tags) == {"coe-cluster", "coe-cluster-" + UUID, "coe-api-vip"}
    address = vip.fixed_ips[0]["ip_address"]
    (fip,) = cloud.fips.values()
    assert fip.port_id == vip.id  # the floating IP is on the VIP, not on a master
    assert result["resources"]["api_address"] == "https://%s:6443" % fip.floating_ip_address
    masters = [s for s in cloud.servers.values() if s.name.startswith("k1-master-")]
    assert len(masters) == 3
    for server in masters:
        assert cloud.server_ports[server.id].allowed_address_pairs == [{"ip_address": address}]
    assert result["vip_pairs"] == ["k1-master-0", "k1-master-1", "k1-master-2"]
    bodies = {c[2]["name"]: c[2] for c in cloud.calls if c[1] == "create_server"}
    texts = {name: base64.b64decode(body["user_data"]).decode() for name, body in bodies.items()}
    for name, text in texts.items():
        assert "%s:6443" % address in text  # every node joins through the VIP
        assert ("/etc/kubernetes/manifests/keepalived.yaml" in text) is name.startswith("k1-master-")
    # a second run changes nothing
    again = run_module(nova_servers.main, args)
    assert not again["changed"], again.get("resources")


def test_a_master_nova_still_lists_as_deleted_is_made_again_once_nova_forgets_it(run_module, cloud, monkeypatch):
    """Nova lists a deleted server a moment longer, status DELETED, its host still counted in
    its server group (servers.live): the driver takes it as missing, waits until Nova lists it
    no more before it makes the master again (an anti-affine one would find no host), and lets
    the new one carry the VIP."""
    rec = record(masters=3, workers=0, api_endpoint="vip")
    assert not run_module(nova_resources.main, dict(cluster=rec)).failed
    first = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert first["vip_pairs"] == ["k1-master-0", "k1-master-1", "k1-master-2"]
    rec["nodegroups"][0].update(nodes=[dict(name="k1-master-%d" % i) for i in (0, 1, 2)], last_index=2)
    old = next(s for s in cloud.servers.values() if s.name == "k1-master-0")
    old.status, old.forget_in = "DELETED", 3
    real_create = cloud.compute.create_server

    def create_server(**body):
        assert old.id not in cloud.servers, "created while Nova still lists the deleted master"
        return real_create(**body)

    monkeypatch.setattr(cloud.compute, "create_server", create_server)
    result = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert not result.failed, result.get("msg")
    assert result["created"] == ["k1-master-0"] and result["vip_pairs"] == ["k1-master-0"]
    assert [s["status"] for s in result["servers"] if s["name"] == "k1-master-0"] == ["ACTIVE"]


def test_nova_resources_makes_the_vip_and_nova_servers_lets_the_masters_carry_it(run_module, cloud):
    rec = record(masters=3, workers=0, api_endpoint="vip")
    res = run_module(nova_resources.main, dict(cluster=rec))
    assert not res.failed, res.get("msg")
    vip = res["vip"]
    assert vip["name"] == "k1-api-vip" and vip["fixed_ip"]
    assert res["floating_ip"]["port_id"] == vip["id"]  # on the VIP before any master exists
    assert res["api_address"] == "https://%s:6443" % res["floating_ip"]["address"]
    result = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert result["vip_pairs"] == ["k1-master-0", "k1-master-1", "k1-master-2"]
    again = run_module(nova_resources.main, dict(cluster=rec))
    assert again["changed"] is False and again["floating_ip"]["port_id"] == vip["id"]
    # a master whose port lost the pair (a run that stopped before it): the next run, with
    # no server to change, gives it back, and says it changed something
    master = next(s for s in cloud.servers.values() if s.name == "k1-master-1")
    cloud.server_ports[master.id].allowed_address_pairs = []
    fixed = run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))
    assert fixed["changed"] is True and fixed["created"] == [] and fixed["vip_pairs"] == ["k1-master-1"]
    assert run_module(nova_servers.main, dict(cluster=rec, poll_interval=0.01))["changed"] is False
    # delete: the VIP port and its floating IP go with the rest
    gone = run_module(nova_resources.main, dict(cluster_name="k1", cluster_uuid=UUID, state="absent"))
    assert "k1-api-vip" in gone["deleted"]["ports"] and gone["deleted"]["floating_ips"]
    assert not cloud.ports and not cloud.fips


# -- the front door's converge: the cluster module runs the Nova driver in its own process ----


@pytest.fixture
def front_door(cloud, monkeypatch, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    monkeypatch.setenv("COE_SECRET_KEY", "unit-test-key-0123456789")
    with open_store(os.environ["COE_STATE_URL"]) as store:
        store.put_template(
            "k8s-nova",
            dict(
                driver="nova",
                image_id="fake-image",
                flavor_id="m1.small",
                master_flavor_id="m1.small",
                keypair_id="demo-key",
                fixed_network="private",
                external_network_id="public",
                coe_version="v1.31.2",
            ),
        )
    return cloud


def front_door_args(**over):
    args = dict(name="k1", cluster_template="k8s-nova", master_count=1, node_count=2, lock=True, converge=True)
    args.update(over)
    return args


def test_the_cluster_module_converges_a_nova_cluster_in_its_own_process(run_module, front_door):
    from ansible_collections.coe.openstack.plugins.modules import cluster

    created = run_module(cluster.main, front_door_args(driver_options=dict(nova=dict(concurrency=2))))
    assert not created.failed, created.get("msg", created)
    assert created["converge_failed"] is None
    converged = created["converged"]
    assert sorted(converged["created"]) == ["k1-default-worker-0", "k1-default-worker-1", "k1-master-0"]
    assert converged["finished"]["lock_released"] is True
    assert converged["finished"]["cluster"]["status"] == "CREATE_COMPLETE"
    assert sorted(s.name for s in front_door.servers.values()) == sorted(converged["created"])
    # the references the plan step checked are what the driver uses: each one read once
    for method, ref in (("find_flavor", "m1.small"), ("find_image", "fake-image"), ("find_keypair", "demo-key")):
        assert len([c for c in front_door.calls if c[1] == method and c[2]["ref"] == ref]) == 1, method
    assert len([c for c in front_door.calls if c[1] == "find_network" and c[2]["ref"] == "private"]) == 1

    again = run_module(cluster.main, front_door_args())
    assert again["operation"] == "none" and again["converged"] is None and not again["changed"]


def test_a_failing_nova_driver_is_returned_with_its_reason_and_the_lock_still_held(run_module, front_door):
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
    from ansible_collections.coe.openstack.plugins.modules import cluster

    result = run_module(cluster.main, front_door_args(node_count=0, master_flavor_id="m1.huge"))
    assert not result.failed
    assert "No valid host was found" in result["converge_failed"]["msg"], result["converge_failed"]
    assert "k1-master-0" in result["converge_failed"]["msg"], result["converge_failed"]
    assert result["converged"] is None
    with open_store(os.environ["COE_STATE_URL"]) as store:
        lock = store.get_lock("default", "k1")
    assert lock["token"] == result["lock"]["token"] and lock["holder"], lock  # the role's rescue releases it


@pytest.mark.parametrize(
    "options, field",
    [
        (dict(nova=dict(concurrency=0)), "driver_options.nova.concurrency"),
        (dict(nova=dict(poll_interval="soon")), "driver_options.nova"),
        (dict(nova=dict(wait=False)), "driver_options.nova"),
        (dict(nova=dict(worker_server_group_policy="together")), "driver_options.nova.worker_server_group_policy"),
        (dict(magnum=dict()), "driver_options"),
        (dict(heat=dict(pause_time=-1)), "driver_options.heat.pause_time"),
        (dict(heat=dict(image_update_policy="SWAP")), "driver_options.heat"),
        (dict(heat=dict(batch_size=2)), "driver_options.heat"),
    ],
)
def test_bad_driver_options_are_named_before_anything_is_written(run_module, front_door, options, field):
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
    from ansible_collections.coe.openstack.plugins.modules import cluster

    result = run_module(cluster.main, front_door_args(driver_options=options))
    assert result.failed and result["field"] == field, result["msg"]
    with open_store(os.environ["COE_STATE_URL"]) as store:
        assert store.list_clusters() == []
    assert front_door.writes() == []


def test_the_cluster_module_hands_a_heat_cluster_its_recorded_operation(run_module, front_door, monkeypatch):
    """The Heat driver's converge runs heat_stack's logic in the cluster module's process on
    the recorded operation and the caller's heat options; Heat carries out the stack
    operation on its own, so a create does not wait (the front door polls); a failure of
    the driver comes back in converge_failed with the lock still held."""
    from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError
    from ansible_collections.coe.openstack.plugins.module_utils.heat import driver as heat_driver
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
    from ansible_collections.coe.openstack.plugins.modules import cluster

    with open_store(os.environ["COE_STATE_URL"]) as store:
        template = store.get_template("k8s-nova")
        store.put_template("k8s-heat", dict(template["spec"], driver="heat"))
    seen = []

    def run(self):
        seen.append(dict(self.params, cluster=self.recorded_cluster()))
        if len(seen) > 1:
            raise CloudError("stack k1 failed: Resource CREATE failed: No valid host was found.")
        self.exit(changed=True, action="create", stack=dict(status="CREATE_IN_PROGRESS"))

    monkeypatch.setattr(heat_driver.HeatStackDriver, "run", run)
    args = front_door_args(cluster_template="k8s-heat", driver_options=dict(heat=dict(pause_time=5)))
    created = run_module(cluster.main, args)
    assert not created.failed, created.get("msg", created)
    assert created["converged"]["action"] == "create" and created["converge_failed"] is None
    params = seen[0]
    assert params["wait"] is False and params["render_user_data"] is True and params["finish"] is True
    assert params["lock_token"] == created["lock"]["token"]
    assert params["cluster"]["uuid"] == created["cluster"]["uuid"] and params["state"] == "present"
    assert (params["image_update_policy"], params["master_image_update_policy"]) == ("REPLACE", "REBUILD")
    assert params["batch_size"] is None  # only an upgrade rolls

    failed = run_module(cluster.main, dict(args, name="k2"))
    assert not failed.failed and failed["converged"] is None
    assert "No valid host was found" in failed["converge_failed"]["msg"], failed
    with open_store(os.environ["COE_STATE_URL"]) as store:
        assert store.get_lock("default", "k2")["token"] == failed["lock"]["token"]  # the rescue releases it
