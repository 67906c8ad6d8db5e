"""heat_stack's cleanup of what a deleted stack left: one tag-filtered list per poll, the
caller's (lease-renewing) sleep, a timeout that names the servers still there."""

from types import SimpleNamespace as NS

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import poll
from ansible_collections.coe.openstack.plugins.module_utils.errors import WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.heat.driver import HeatStackDriver

TAG = "coe-cluster-3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"


class Conn:
    def __init__(self, servers, lists_to_go):
        self.servers_left = list(servers)
        self.lists_to_go = lists_to_go
        self.lists = 0
        self.deleted = []
        self.compute = NS(servers=self.servers, delete_server=lambda sid, ignore_missing: self.deleted.append(sid))
        self.network = NS(
            ports=lambda tags: [NS(id="port-1", name="demo-master-0-port")],
            delete_port=lambda pid, ignore_missing: self.deleted.append(pid),
        )

    def servers(self, details=False, tags=None):
        assert tags == TAG
        self.lists += 1
        if self.deleted and self.lists > self.lists_to_go:
            return []
        return list(self.servers_left)


def driver(conn, timeout=60):
    module = NS(conn=conn, check_mode=False, params=dict(wait=True, timeout=timeout))
    return HeatStackDriver(module)


def test_cleanup_deletes_servers_waits_with_the_callers_sleep_then_deletes_ports():
    conn = Conn([NS(id="s-1", name="demo-master-0")], lists_to_go=3)
    slept = []
    found = driver(conn).cleanup(TAG, sleep=slept.append)
    assert [item["name"] for item in found] == ["demo-master-0", "demo-master-0-port"]
    assert conn.deleted == ["s-1", "port-1"]
    assert slept == [2, 2]  # one list per poll, every 2 s


def test_cleanup_timeout_names_the_servers_still_there(monkeypatch):
    conn = Conn([NS(id="s-1", name="demo-master-0")], lists_to_go=10**6)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    monkeypatch.setattr(poll, "time", NS(monotonic=lambda: now[0], sleep=sleep))
    with pytest.raises(WaitTimeout) as e:
        driver(conn, timeout=10).cleanup(TAG, sleep=sleep)
    assert str(e.value) == (
        "Timed out after 10s waiting for the servers tagged %s to be deleted (still there: demo-master-0)" % TAG
    )
    assert now[0] == 10.0
    assert conn.deleted == ["s-1"]  # the ports stay until the servers are gone


def test_cleanup_deletes_the_api_vips_floating_ip_before_its_port():
    conn = Conn([], lists_to_go=0)
    vip = NS(id="port-vip", name="demo-api-vip", tags=[TAG, "coe-cluster", "coe-api-vip"])
    conn.network.ports = lambda tags: [NS(id="port-1", name="demo-master-0-port"), vip]
    conn.network.ips = lambda port_id: (
        [NS(id="fip-1", floating_ip_address="203.0.113.7")] if port_id == "port-vip" else []
    )
    conn.network.delete_ip = lambda fid, ignore_missing: conn.deleted.append(fid)
    found = driver(conn).cleanup(TAG, sleep=lambda s: None)
    assert [item["name"] for item in found] == ["demo-master-0-port", "demo-api-vip", "203.0.113.7"]
    assert conn.deleted == ["fip-1", "port-1", "port-vip"]
