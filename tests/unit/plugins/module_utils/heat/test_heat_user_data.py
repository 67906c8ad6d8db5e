"""The Heat driver's user-data step: a cluster whose API has a floating IP is created in one
stack create, its user-data naming the API by stand-ins that Heat replaces (the node
template's str_replace); without a floating IP the stack is first created with no nodes,
and the address read from its outputs."""

import contextlib
from types import SimpleNamespace as NS

import pytest
from test_heat_build import record as heat_record

from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, endpoint, pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as hot
from ansible_collections.coe.openstack.plugins.module_utils.heat import client as heat_stack
from ansible_collections.coe.openstack.plugins.module_utils.heat.driver import STACK_OPTIONS, HeatStackDriver


def record(**over):
    """test_heat_build's record, a single master and an external network (a floating IP)."""
    return heat_record(**{"master_count": 1, "external_network_id": "public", **over})


class Driver(HeatStackDriver):
    """The driver with the store and the renderer left out: what it renders with is recorded."""

    def __init__(self, cluster):
        params = dict.fromkeys(STACK_OPTIONS)
        params.update(
            cluster=cluster,
            user_data=None,
            nodes_to_remove=[],
            batch_size=None,
            pause_time=0,
            timeout=60,
            secret_key=None,
        )
        module = NS(conn=None, check_mode=False, params=params, action=lambda what: contextlib.nullcontext())
        super().__init__(module)
        self._ids = {}
        self.rendered = []

    def render_user_data(self, spec, api_address, first_master, live_files=None, api_fixed_ip=None, live=None):
        self.rendered.append((api_address, first_master, api_fixed_ip))
        return {n: "join %s %s" % (api_address, api_fixed_ip) for names in spec.nodes.values() for n in names}


@pytest.fixture
def created(monkeypatch):
    """The stacks the driver creates itself (ensure_present's calls), and the live stack it reads."""
    calls = []
    monkeypatch.setattr(heat_stack, "ensure_present", lambda client, name, *a, **kw: calls.append((name, a[2])))
    return calls


def live_stack(**outputs):
    return dict(outputs=outputs, parameters={}, files={})


def test_a_floating_ip_cluster_is_created_in_one_step_with_stand_ins(created):
    driver = Driver(record())
    spec = driver.cluster_spec(None)
    assert spec.standins
    live, spec = driver.prepare_user_data(NS(), "demo-3f2a9c4e", None, spec)
    assert live is None and created == []  # no empty stack first
    assert driver.rendered == [(endpoint.api_url(hot.API_IP_STANDIN), True, None)]
    assert spec.parameters["default-worker_count"] == 2
    assert spec.files["coe-user-data/default-master/0"] == "join https://%s:6443 None" % hot.API_IP_STANDIN


def test_a_vip_cluster_gets_the_fixed_ip_stand_in_too(created):
    driver = Driver(record(master_count=3))
    _live, spec = driver.prepare_user_data(NS(), "demo-3f2a9c4e", None, driver.cluster_spec(None))
    assert created == []
    assert driver.rendered == [(endpoint.api_url(hot.API_IP_STANDIN), True, hot.API_FIXED_IP_STANDIN)]
    assert "join https://%s:6443 %s" % (hot.API_IP_STANDIN, hot.API_FIXED_IP_STANDIN) in spec.files.values()


def test_a_scale_out_renders_joins_with_stand_ins(created):
    driver = Driver(record(node_count=3))
    live = live_stack(api_ip="172.24.4.9", master_addresses=["10.0.0.5"], nodegroups={})
    driver.prepare_user_data(NS(), "demo-3f2a9c4e", live, driver.cluster_spec(live))
    assert created == []
    assert driver.rendered == [(endpoint.api_url(hot.API_IP_STANDIN), False, None)]


def test_without_a_floating_ip_the_stack_is_made_empty_first(created, monkeypatch):
    driver = Driver(record(external_network_id=None))
    spec = driver.cluster_spec(None)
    assert not spec.standins
    client = NS(live=lambda name: live_stack(api_ip="10.0.0.7", master_addresses=[]))
    live, spec = driver.prepare_user_data(client, "demo-3f2a9c4e", None, spec)
    [(name, params)] = created
    assert name == "demo-3f2a9c4e"
    assert (params["default-master_count"], params["default-worker_count"]) == (0, 0)
    assert spec.parameters["default-worker_count"] == 2
    assert driver.rendered == [("https://10.0.0.7:6443", True, None)]
    assert live["outputs"]["api_ip"] == "10.0.0.7"


def test_a_record_holding_a_stand_in_text_learns_the_address_from_the_stack(created):
    driver = Driver(record(labels={"note": "reach me on %s" % hot.API_IP_STANDIN}))
    spec = driver.cluster_spec(None)
    assert not spec.standins  # Heat would replace the label's text too
    client = NS(live=lambda name: live_stack(api_ip="172.24.4.9", master_addresses=[]))
    driver.prepare_user_data(client, "demo-3f2a9c4e", None, spec)
    assert [name for name, _params in created] == ["demo-3f2a9c4e"]
    assert driver.rendered == [("https://172.24.4.9:6443", True, None)]


@pytest.fixture
def renderer(monkeypatch):
    """The real render_user_data with the store and the bootstrap renderer left out: the nodes rendered."""
    rendered = []
    monkeypatch.setattr(secrets, "resolve_secret_key", lambda key, url: None)
    monkeypatch.setattr(pki, "load_cluster_credentials", lambda store, uuid, box: {"ca": "x"})
    monkeypatch.setattr(
        bootstrap, "render_user_data", lambda rec, node, creds: rendered.append(node["name"]) or "new " + node["name"]
    )
    return rendered


class Rendering(Driver):
    """The driver with its own render_user_data."""

    render_user_data = HeatStackDriver.render_user_data
    store = None


def member(name):
    return dict(name=name)


def scaled(driver, workers, again=()):
    """The live stack of ``driver``'s cluster with master 0 and ``workers`` workers, their files set."""
    files = {"coe-user-data/default-master/0": "old demo-master-0"}
    files.update({"coe-user-data/default-worker/%d" % i: "old demo-default-worker-%d" % i for i in range(workers)})
    driver.params["cluster"]["nodegroups"] = [
        dict(name="default-master", role="master", node_count=1, nodes=[dict(name="demo-master-0", status="ACTIVE")]),
        dict(
            name="default-worker",
            role="worker",
            node_count=driver.params["cluster"]["node_count"],
            nodes=[
                dict(name="demo-default-worker-%d" % i, status="MISSING" if i in again else "ACTIVE")
                for i in range(workers)
            ],
        ),
    ]
    outputs = dict(
        api_ip="172.24.4.9",
        master_addresses=["10.0.0.5"],
        nodegroups={
            "default-master": {"0": member("demo-master-0")},
            "default-worker": {str(i): member("demo-default-worker-%d" % i) for i in range(workers)},
        },
    )
    return dict(outputs=outputs, parameters={}, files=files)


def test_a_scale_out_renders_the_new_nodes_only(created, renderer):
    driver = Rendering(record(node_count=4))
    live = scaled(driver, 2)
    _live, spec = driver.prepare_user_data(NS(), "demo-3f2a9c4e", live, driver.cluster_spec(live))
    assert renderer == ["demo-default-worker-2", "demo-default-worker-3"]
    # the members there keep their file: Heat has no member to update for a new text
    assert spec.files["coe-user-data/default-worker/0"] == "old demo-default-worker-0"
    assert spec.files["coe-user-data/default-master/0"] == "old demo-master-0"
    assert spec.files["coe-user-data/default-worker/3"] == "new demo-default-worker-3"


def test_a_node_heat_makes_again_and_an_upgrade_get_fresh_user_data(created, renderer):
    driver = Rendering(record(node_count=3))
    live = scaled(driver, 2, again=(1,))
    driver.prepare_user_data(NS(), "demo-3f2a9c4e", live, driver.cluster_spec(live))
    assert renderer == ["demo-default-worker-1", "demo-default-worker-2"]
    renderer.clear()
    driver.params["batch_size"] = 1  # an upgrade: every node may be made again
    driver.params["cluster"]["image_id"] = "new-image"
    driver.params["cluster"]["master_image_id"] = "new-image"
    driver.prepare_user_data(NS(), "demo-3f2a9c4e", live, driver.cluster_spec(live))
    assert renderer == ["demo-master-0", "demo-default-worker-0", "demo-default-worker-1", "demo-default-worker-2"]
