"""Parity: the same template and variables give the same cluster on both drivers.

One spec, created once with the Heat driver and once with the Nova driver; the two
``coe_cluster`` facts the create playbook leaves are compared field by field. Values that
must differ between two clusters (uuids, addresses, times, the driver's own ids) are
compared by shape; everything else must be equal once each cluster's name is replaced by
``<name>`` (node names are ``<name>-master-0``, ``<name>-default-worker-1`` ... on both).
Both results also carry every key ``openstack.cloud.coe_cluster`` returns, and the API
address is of the same kind on both: Magnum's ``https://ADDR:6443`` of a floating IP (the
template has an external network and does not say ``floating_ip_enabled: false``).
"""

import ipaddress
import json
import os
import re

import pytest
from coe_runner import CloudUser, Runner, cloud_resources, short_id
from test_cluster_lifecycle import template

from ansible_collections.coe.openstack.plugins.module_utils import clusters

pytestmark = pytest.mark.usefixtures("minicloud")

OPENSTACK_CLOUD_KEYS = clusters.OPENSTACK_CLOUD_KEYS

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
API_URL = re.compile(r"^https://(?P<host>[0-9.]+):6443$")


def is_uuid(value):
    return isinstance(value, str) and bool(UUID.match(value))


def is_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_time(value):
    return isinstance(value, str) and bool(ISO.match(value))


def ips(value):
    return isinstance(value, list) and all(is_ip(v) for v in value)


# {path: check(heat value, nova value) -> True when both have the shape they must have}.
# A path is the keys from the top, nodegroup and node entries by position ("*" any).
BY_SHAPE = {
    ("uuid",): lambda h, n: is_uuid(h) and is_uuid(n) and h != n,
    ("id",): lambda h, n: is_uuid(h) and is_uuid(n) and h != n,
    ("cluster_template_id",): lambda h, n: is_uuid(h) and is_uuid(n),
    ("api_address",): lambda h, n: bool(API_URL.match(h or "")) and bool(API_URL.match(n or "")),
    ("master_addresses",): lambda h, n: ips(h) and ips(n) and len(h) == len(n),
    ("node_addresses",): lambda h, n: ips(h) and ips(n) and len(h) == len(n),
    ("created_at",): lambda h, n: is_time(h) and is_time(n),
    ("updated_at",): lambda h, n: is_time(h) and is_time(n),
    ("status_updated_at",): lambda h, n: is_time(h) and is_time(n),
    ("operation_started_at",): lambda h, n: is_time(h) and is_time(n),
    # the number of writes each driver's run made
    ("generation",): lambda h, n: isinstance(h, int) and isinstance(n, int) and h > 0 and n > 0,
    # the driver's own words for the same status
    ("status_reason",): lambda h, n: isinstance(h, (str, type(None))) and isinstance(n, (str, type(None))),
    # what differs by definition: the driver, and the Heat stack the Nova driver has none of
    ("driver",): lambda h, n: (h, n) == ("heat", "nova"),
    ("template", "driver"): lambda h, n: (h, n) == ("heat", "nova"),
    ("stack_id",): lambda h, n: is_uuid(h) and n is None,
    ("nodegroups", "*", "node_addresses"): lambda h, n: ips(h) and ips(n) and len(h) == len(n),
    ("nodegroups", "*", "nodes", "*", "id"): lambda h, n: is_uuid(h) and is_uuid(n) and h != n,
    ("nodegroups", "*", "nodes", "*", "addresses"): lambda h, n: ips(h) and ips(n) and len(h) == len(n),
}


def _shape_check(path):
    for pattern, check in BY_SHAPE.items():
        if len(pattern) == len(path) and all(p in ("*", k) for p, k in zip(pattern, path, strict=True)):
            return check
    return None


def differences(heat, nova, path=()):
    """Every place where the two results differ in a way they must not, as text."""
    check = _shape_check(path)
    if check is not None:
        return [] if check(heat, nova) else ["%s: heat %r, nova %r" % (".".join(map(str, path)), heat, nova)]
    if isinstance(heat, dict) and isinstance(nova, dict):
        found = []
        for key in sorted(set(heat) | set(nova)):
            if key not in heat or key not in nova:
                where = "heat" if key in heat else "nova"
                found.append("%s: only the %s cluster has it" % (".".join(map(str, (*path, key))), where))
                continue
            found += differences(heat[key], nova[key], (*path, key))
        return found
    if isinstance(heat, list) and isinstance(nova, list) and len(heat) == len(nova):
        found = []
        for i, (h, n) in enumerate(zip(heat, nova, strict=True)):
            found += differences(h, n, (*path, i))
        return found
    if heat != nova:
        return ["%s: heat %r, nova %r" % (".".join(map(str, path)) or "(top)", heat, nova)]
    return []


def without_name(value, name):
    """``value`` with the cluster's name replaced by ``<name>`` in every string."""
    return json.loads(json.dumps(value).replace(name, "<name>"))


KEEP_FACT = """
- name: Create
  ansible.builtin.import_playbook: coe.openstack.create

- name: Keep the coe_cluster fact of every cluster
  hosts: all
  gather_facts: false
  connection: local
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Write coe_cluster
      ansible.builtin.copy:
        content: "{{ coe_cluster | to_nice_json }}"
        dest: "{{ coe_fact_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
"""


@pytest.fixture
def user(tmp_path, minicloud):
    u = CloudUser(tmp_path)
    yield u
    u.close()


def test_same_spec_same_cluster_on_both_drivers(tmp_path, user):
    playbook = os.path.join(str(tmp_path), "create-and-keep.yml")
    with open(playbook, "w") as f:
        f.write(KEEP_FACT)
    ident = short_id()
    tname = "par-%s" % ident
    spec = dict(coe_cluster_template=tname, coe_master_count=1, coe_node_count=2, coe_labels={"team": "parity"})
    runs = {}
    try:
        for driver in ("heat", "nova"):
            folder = tmp_path / driver
            folder.mkdir()
            runner = Runner(folder, user)
            # the same template in each store, but for its driver
            runner.templates(template(tname, driver))
            name = "par-%s-%s" % (driver[0], ident)
            runs[driver] = (runner, name)
            result = runner.run(playbook, {name: spec}, extra={"coe_fact_dir": str(folder)})
            assert result.rc == 0, result
        facts = {}
        for driver, (_runner, name) in runs.items():
            with open(os.path.join(str(tmp_path / driver), "%s.json" % name)) as f:
                facts[driver] = json.load(f)
            assert facts[driver]["status"] == "CREATE_COMPLETE", facts[driver]
            missing = [k for k in OPENSTACK_CLOUD_KEYS if k not in facts[driver]]
            assert missing == [], "%s: coe_cluster lacks openstack.cloud's %s" % (driver, missing)
            assert facts[driver]["id"] == facts[driver]["uuid"]

        heat = without_name(facts["heat"], runs["heat"][1])
        nova = without_name(facts["nova"], runs["nova"][1])
        found = differences(heat, nova)
        assert found == [], "the drivers disagree:\n" + "\n".join(found)

        # the same kind of API address: a floating IP of the cluster (Magnum's default with an
        # external network), not a master's fixed IP
        for driver, fact in facts.items():
            host = API_URL.match(fact["api_address"]).group("host")
            assert host not in fact["master_addresses"], (driver, fact["api_address"])
            assert list(user.conn.network.ips(floating_ip_address=host)), (driver, host)
            assert fact["floating_ip_enabled"] is True and fact["is_floating_ip_enabled"] is True
            # the record holds the same form
            assert runs[driver][0].record(runs[driver][1])["api_address"] == fact["api_address"]
    finally:
        for driver, (runner, name) in runs.items():
            record = runner.record(name)
            if record is not None:
                result = runner.run("delete", {name: spec})
                if result.rc != 0:
                    runner.run("delete", {name: spec}, extra={"coe_force": True})
                assert runner.record(name) is None, result
                left = cloud_resources(user.conn, record["uuid"], name)
                assert not any(left.values()), (driver, left)
