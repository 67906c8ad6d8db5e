"""The Nova driver's API load balancer (ClusterResources) against a small fake Octavia: what it
makes, in which order, waiting on provisioning_status, members, cascade delete, ERROR."""

from types import SimpleNamespace as NS

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError
from ansible_collections.coe.openstack.plugins.module_utils.nova.client import ClusterResources

UUID = "0b0c8f1e-1111-4222-8333-444455556666"


class FakeOctavia:
    """Every write leaves the LB PENDING_UPDATE for one read, as Octavia does (immutable)."""

    def __init__(self, end="ACTIVE"):
        self.lbs, self.listeners_, self.pools_, self.members, self.calls = {}, [], [], [], []
        self.end = end

    def _busy(self, lb_id):
        self.lbs[lb_id].provisioning_status = "PENDING_UPDATE"

    def load_balancers(self, tags=None):
        return [lb for lb in self.lbs.values() if not tags or tags in lb.tags]

    def create_load_balancer(self, **kw):
        self.calls.append("create lb")
        lb = NS(id="lb1", listeners=[], provisioning_status="PENDING_CREATE", operating_status="OFFLINE", **kw)
        lb.vip_address, lb.vip_port_id = "10.0.0.99", "vip-port"
        self.lbs[lb.id] = lb
        return lb

    def get_load_balancer(self, lb_id):
        lb = self.lbs[lb_id]
        shown = NS(**vars(lb))
        if lb.provisioning_status.startswith("PENDING_"):
            lb.provisioning_status = self.end
        return shown

    def find_load_balancer(self, lb_id, ignore_missing=True):
        return self.lbs.get(lb_id)

    def create_listener(self, loadbalancer_id, **kw):
        self.calls.append("create listener %s" % kw["allowed_cidrs"])
        self.listeners_.append(NS(id="l1", **kw))
        self.lbs[loadbalancer_id].listeners = ["l1"]
        self._busy(loadbalancer_id)
        return self.listeners_[-1]

    def create_pool(self, listener_id, **kw):
        self.calls.append("create pool")
        self.pools_.append(NS(id="p1", health_monitor_id=None, **kw))
        self._busy("lb1")
        return self.pools_[-1]

    def create_health_monitor(self, pool_id, **kw):
        self.calls.append("create monitor %s" % kw["type"])
        self.pools_[0].health_monitor_id = "hm1"
        self._busy("lb1")

    def members_(self, pool_id):
        return [NS(address=a) for a in self.members]

    def put(self, path, json):
        self.calls.append("put members %s" % sorted(m["address"] for m in json["members"]))
        self.members = [m["address"] for m in json["members"]]
        self._busy("lb1")
        return NS(status_code=202, text="")

    def delete_load_balancer(self, lb_id, cascade=False, ignore_missing=True):
        self.calls.append("delete lb cascade=%s" % cascade)
        del self.lbs[lb_id]


def resources(octavia):
    proxy = NS(
        load_balancers=octavia.load_balancers,
        create_load_balancer=octavia.create_load_balancer,
        get_load_balancer=octavia.get_load_balancer,
        find_load_balancer=octavia.find_load_balancer,
        listeners=lambda loadbalancer_id: list(octavia.listeners_),
        create_listener=octavia.create_listener,
        pools=lambda loadbalancer_id: list(octavia.pools_),
        create_pool=octavia.create_pool,
        create_health_monitor=octavia.create_health_monitor,
        members=octavia.members_,
        put=octavia.put,
        delete_load_balancer=octavia.delete_load_balancer,
    )
    conn = NS(
        load_balancer=proxy,
        network=NS(find_subnet=lambda name, ignore_missing=False: NS(id="subnet-" + name)),
        config=NS(has_service=lambda service_type: True),
        service_catalog=[{"type": "load-balancer"}],
    )
    return ClusterResources(conn, UUID, "k1")


def test_the_chain_is_made_in_order_each_waited_to_active_and_a_rerun_changes_nothing():
    octavia = FakeOctavia()
    res = resources(octavia)
    lb = res.ensure_load_balancer("private-subnet", ["10.0.0.0/8"], timeout=5, sleep=lambda s: None)
    assert octavia.calls == ["create lb", "create listener ['10.0.0.0/8']", "create pool", "create monitor TCP"]
    created = octavia.lbs["lb1"]
    assert created.name == shape.load_balancer_name("k1", UUID)
    assert created.tags == [shape.COMMON_TAG, shape.cluster_tag(UUID)]
    assert created.vip_subnet_id == "subnet-private-subnet"
    assert lb == dict(id="lb1", name=created.name, vip_address="10.0.0.99", vip_port_id="vip-port", pool_id="p1")

    assert res.ensure_members(lb, {"k1-master-0": "10.0.0.5", "k1-master-1": "10.0.0.6"}, 5, lambda s: None) == [
        "10.0.0.5",
        "10.0.0.6",
    ]
    assert octavia.calls[-1] == "put members ['10.0.0.5', '10.0.0.6']"
    # the same again: no write
    before = list(octavia.calls)
    res.changes = []
    assert res.ensure_load_balancer("private-subnet", ["10.0.0.0/8"], timeout=5, sleep=lambda s: None)["id"] == "lb1"
    res.ensure_members(lb, {"k1-master-0": "10.0.0.5", "k1-master-1": "10.0.0.6"}, 5, lambda s: None)
    assert octavia.calls == before and res.changes == []
    # never an empty pool
    res.ensure_members(lb, {}, 5, lambda s: None)
    assert octavia.calls == before

    assert res.delete_load_balancers(timeout=5, sleep=lambda s: None) == [created.name]
    assert octavia.calls[-1] == "delete lb cascade=True" and octavia.lbs == {}


def test_a_load_balancer_in_error_fails_naming_it():
    res = resources(FakeOctavia(end="ERROR"))
    with pytest.raises(CloudError) as err:
        res.ensure_load_balancer("private-subnet", timeout=5, sleep=lambda s: None)
    assert "provisioning_status ERROR while creating it" in str(err.value)
    assert shape.load_balancer_name("k1", UUID) in str(err.value)
