"""The one rule of both synchronisers, case by case, as docs/state-machine.md tables it.

Each row of the table "What a synchroniser observes" is a case here: the cloud of that row is
laid out in a fake OpenStack (fakeopenstack.py: openstacksdk's real proxies over an HTTP
transport answering in Nova's and Heat's JSON), the driver's synchroniser observes it, the
observation is folded into the record as ``cluster_sync`` does (``merge_observation``), and
the record's nodegroup statuses, cluster status and health are compared with the row. The
doc's table and ``CASES`` must name the same cases.
"""

import json
import os
import re

import pytest
from fakeopenstack import FakeOpenStack

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import merge_observation
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso
from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import GRACE_SECONDS

pytestmark = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")

DOC = os.path.join(os.path.dirname(__file__), *[".."] * 5, "docs", "state-machine.md")
UUID = "3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b"
STACK = "demo-3f2a9c4e"
NOW = 1_800_000_000.0
MASTER, WORKER0, WORKER1 = "demo-master-0", "demo-default-worker-0", "demo-default-worker-1"
NODES = {MASTER: ("default-master", "master", 0), WORKER0: ("default-worker", "worker", 0)}
NODES[WORKER1] = ("default-worker", "worker", 1)
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


# -- the doc's table ------------------------------------------------------------------


def doc_rows():
    """{case: {drivers, nodegroups: {name: (status, [words])}, cluster: (status, [words]),
    health: (status, [words]) or None}} of the doc's table."""
    with open(DOC) as f:
        text = f.read()
    section = text.split("## What a synchroniser observes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    header = None
    for line in section.splitlines():
        if line.startswith("| case |"):
            header = [c.strip() for c in line.strip().strip("|").split("|")]
            continue
        if header is None or not line.startswith("| `"):
            continue
        cells = dict(zip(header, (c.strip() for c in line.strip().strip("|").split("|")), strict=True))
        groups = {
            m.group(1): (m.group(2), re.findall(r"`([^`]+)`", m.group(3) or ""))
            for m in re.finditer(r"`([\w-]+)` ([A-Z_]+)(?: \(([^)]*)\))?", cells["nodegroups"])
        }
        rows[cells["case"].strip("`")] = dict(
            drivers=("heat", "nova") if cells["drivers"] == "both" else (cells["drivers"],),
            nodegroups=groups,
            cluster=_status_naming(cells["cluster"]),
            health=None if cells["health"] == "-" else _status_naming(cells["health"]),
        )
    return rows


def _status_naming(cell):
    status, _sep, rest = cell.partition(" naming ")
    return status.strip(), re.findall(r"`([^`]+)`", rest)


# -- the cases: each lays out its row's cloud -----------------------------------------


def record(status, nodes_known=False, started_ago=300.0, **over):
    """The cluster ``demo``: ``default-master`` (1 node), ``default-worker`` (2 nodes)."""
    groups = [
        dict(name="default-master", role="master", node_count=1, status=status),
        dict(name="default-worker", role="worker", node_count=2, status=status),
    ]
    if nodes_known:
        groups[0]["nodes"] = [dict(name=MASTER, status="ACTIVE")]
        groups[1]["nodes"] = [dict(name=WORKER0, status="ACTIVE"), dict(name=WORKER1, status="ACTIVE")]
    rec = dict(
        uuid=UUID,
        name="demo",
        project_id="default",
        driver=None,
        status=status,
        status_reason=None,
        master_count=1,
        node_count=2,
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        image_id="fake-image",
        fixed_network="private",
        timeout=3600,
        nodegroups=groups,
        operation_started_at=iso(NOW - started_ago),
        status_updated_at=iso(NOW - started_ago),
        updated_at=iso(NOW - started_ago),
    )
    rec.update(over)
    return rec


class Cloud:
    """The row's cloud in a FakeOpenStack: the same facts for both drivers."""

    def __init__(self):
        self.fake = FakeOpenStack()
        self.stack = None

    def servers(self, statuses=None, **faults):
        """Servers of every node, ``ACTIVE`` unless ``statuses`` says otherwise (None: gone)."""
        statuses = dict.fromkeys(NODES, "ACTIVE") | dict(statuses or {})
        for name, status in statuses.items():
            if status is None:
                continue
            group, role, index = NODES[name]
            self.fake.add_server(
                name,
                status=status,
                tags=[shape.COMMON_TAG, shape.cluster_tag(UUID)],
                metadata={
                    shape.META_CLUSTER_UUID: UUID,
                    shape.META_NODEGROUP: group,
                    shape.META_ROLE: role,
                    shape.META_INDEX: str(index),
                },
                fault=faults.get(name) or (NO_VALID_HOST if status == "ERROR" else None),
            )
        return self

    def heat(self, status, reason=""):
        self.stack = self.fake.add_stack(STACK, status, reason, tags=[shape.cluster_tag(UUID)])
        return self

    def failed_node(self, group, index, reason):
        """Heat's failed server resource inside a node of a nodegroup (nested stacks)."""
        self.fake.add_resource(self.stack, group, "CREATE_FAILED", reason, "OS::Heat::ResourceGroup", nested="g1")
        self.fake.add_resource(
            self.stack, str(index), "CREATE_FAILED", reason, "node.yaml", nested_in="g1", nested="n1"
        )
        self.fake.add_resource(self.stack, "server", "CREATE_FAILED", reason, nested_in="n1")
        return self

    def busy_group(self, group, status="CREATE_IN_PROGRESS"):
        """Heat still making a nodegroup: its group and a member's server resource in progress."""
        self.fake.add_resource(self.stack, group, status, "", "OS::Heat::ResourceGroup", nested="g2")
        self.fake.add_resource(self.stack, "0", status, "", "node.yaml", nested_in="g2", nested="n2")
        self.fake.add_resource(self.stack, "server", status, "", nested_in="n2")
        return self

    def failed_resource(self, name, reason, kind="OS::Neutron::Port"):
        self.fake.add_resource(self.stack, name, "CREATE_FAILED", reason, kind)
        return self


HEAT_NO_VALID_HOST = (
    'ResourceInError: resources.server: Went to status ERROR due to "Message: %s, Code: 500"' % NO_VALID_HOST
)


def failing(master_status):
    cloud = Cloud().heat("CREATE_FAILED", "Resource CREATE failed: " + HEAT_NO_VALID_HOST)
    cloud.failed_node("default-worker", 0, HEAT_NO_VALID_HOST)
    return cloud.servers({MASTER: master_status, WORKER0: "ERROR"})


def failing_before_the_masters():
    """Heat failed the stack at the worker's server before it made the master's."""
    cloud = Cloud().heat("CREATE_FAILED", "Resource CREATE failed: " + HEAT_NO_VALID_HOST)
    cloud.failed_node("default-worker", 0, HEAT_NO_VALID_HOST)
    return cloud.servers({MASTER: None, WORKER0: "ERROR"})


CASES = {
    "complete": lambda: (record("CREATE_IN_PROGRESS"), Cloud().heat("CREATE_COMPLETE").servers()),
    "building": lambda: (record("CREATE_IN_PROGRESS"), Cloud().heat("CREATE_COMPLETE").servers({WORKER1: "BUILD"})),
    "rebuilding": lambda: (record("UPDATE_IN_PROGRESS"), Cloud().heat("UPDATE_COMPLETE").servers({MASTER: "REBUILD"})),
    "failing-while-another-builds": lambda: (record("CREATE_IN_PROGRESS"), failing("BUILD")),
    "failed-once-nothing-builds": lambda: (record("CREATE_IN_PROGRESS"), failing("ACTIVE")),
    "failed-stack-still-making": lambda: (
        record("CREATE_IN_PROGRESS"),
        failing_before_the_masters().busy_group("default-master"),
    ),
    "failed-stack-stopped": lambda: (
        record("CREATE_IN_PROGRESS"),
        failing_before_the_masters().busy_group("default-master", status="INIT_COMPLETE"),
    ),
    "failed-stays-failed": lambda: (
        record("CREATE_FAILED", nodegroups=_statuses("CREATE_COMPLETE", "CREATE_FAILED")),
        failing("ACTIVE"),
    ),
    "missing-while-making": lambda: (
        record("UPDATE_IN_PROGRESS"),
        Cloud().heat("UPDATE_IN_PROGRESS").servers({WORKER1: None}),
    ),
    "missing-after-settled": lambda: (
        record("UPDATE_IN_PROGRESS"),
        Cloud().heat("UPDATE_COMPLETE").servers({WORKER1: None}),
    ),
    "drift": lambda: (
        record("CREATE_COMPLETE", nodes_known=True),
        Cloud().heat("CREATE_COMPLETE").servers({WORKER0: "ERROR", WORKER1: None}),
    ),
    "everything-gone-settled": lambda: (record("CREATE_COMPLETE", nodes_known=True), Cloud()),
    "stack-gone-settled": lambda: (record("CREATE_COMPLETE", nodes_known=True), Cloud().servers()),
    "stack-gone-create": lambda: (record("CREATE_IN_PROGRESS"), Cloud()),
    "stack-gone-update": lambda: (record("UPDATE_IN_PROGRESS", nodes_known=True), Cloud().servers()),
    "within-grace": lambda: (record("CREATE_IN_PROGRESS", started_ago=10), Cloud()),
    "grace-from-status-updated-at": lambda: (
        record("CREATE_IN_PROGRESS", started_ago=10, operation_started_at=None),
        Cloud(),
    ),
    "grace-within-the-timeout": lambda: (
        record("CREATE_IN_PROGRESS", started_ago=30, timeout=20, status_updated_at=iso(NOW)),
        Cloud(),
    ),
    "no-server-after-grace": lambda: (record("CREATE_IN_PROGRESS"), Cloud()),
    "empty-stack-first": lambda: (record("CREATE_IN_PROGRESS"), Cloud().heat("CREATE_COMPLETE")),
    "cluster-resource-failed": lambda: (
        record("CREATE_IN_PROGRESS"),
        Cloud()
        .heat("CREATE_FAILED", "Resource CREATE failed: OverQuotaClient: resources.api_port: Quota exceeded")
        .failed_resource("api_port", "OverQuotaClient: resources.api_port: Quota exceeded for resources: ['port']."),
    ),
    "nothing-left-delete": lambda: (record("DELETE_IN_PROGRESS", nodes_known=True), Cloud()),
    "group-gone-delete": lambda: (
        record("DELETE_IN_PROGRESS", nodes_known=True),
        Cloud().heat("DELETE_IN_PROGRESS").servers({WORKER0: None, WORKER1: None}),
    ),
    "failed-then-converged": lambda: (
        record("UPDATE_FAILED", nodegroups=_statuses("UPDATE_COMPLETE", "UPDATE_FAILED")),
        Cloud().heat("UPDATE_COMPLETE").servers(),
    ),
    "timed-out": lambda: (
        record("UPDATE_IN_PROGRESS", started_ago=7200),
        Cloud().heat("UPDATE_IN_PROGRESS").servers({WORKER1: "BUILD"}),
    ),
}


def _statuses(master, worker):
    return [
        dict(name="default-master", role="master", node_count=1, status=master),
        dict(name="default-worker", role="worker", node_count=2, status=worker),
    ]


ROWS = doc_rows()


def test_the_doc_and_the_suite_name_the_same_cases():
    assert ROWS, "no table under 'What a synchroniser observes' in docs/state-machine.md"
    assert sorted(ROWS) == sorted(CASES)
    for case, row in ROWS.items():
        assert row["nodegroups"], "%s: no nodegroup status in the doc's row" % case
        assert set(row["drivers"]) <= {"heat", "nova"}, case


def observe(driver, rec, cloud):
    conn = cloud.fake.connect()
    sync = get_synchroniser(driver, conn)
    sync.clock = lambda: NOW
    rec = dict(rec, driver=driver)
    obs = sync.observe([rec])[UUID]
    merged, _message = merge_observation(rec, obs, NOW)
    return obs, merged, cloud.fake.requests


@pytest.mark.parametrize(
    "case, driver", [(c, d) for c, row in sorted(ROWS.items()) for d in row["drivers"]] or [("none", "none")]
)
def test_the_rule(case, driver):
    row = ROWS[case]
    rec, cloud = CASES[case]()
    _obs, merged, requests = observe(driver, rec, cloud)
    # the synchroniser read the cloud through openstacksdk: HTTP requests in Nova's / Heat's API
    assert any("/servers/detail" in path for _method, path in requests)
    got = {ng["name"]: (ng["status"], ng.get("status_reason") or "") for ng in merged["nodegroups"]}
    for name, (status, words) in row["nodegroups"].items():
        assert got[name][0] == status, "%s/%s: nodegroup %s is %s (%s), the doc says %s" % (
            case,
            driver,
            name,
            got[name][0],
            got[name][1],
            status,
        )
        for word in words:
            assert word in got[name][1], "%s/%s: %r not in nodegroup %s's reason %r" % (
                case,
                driver,
                word,
                name,
                got[name][1],
            )
    status, words = row["cluster"]
    reason = merged.get("status_reason") or ""
    assert merged["status"] == status, "%s/%s: the cluster is %s (%s), the doc says %s" % (
        case,
        driver,
        merged["status"],
        reason,
        status,
    )
    for word in words:
        assert word in reason, "%s/%s: %r not in the cluster's reason %r" % (case, driver, word, reason)
    if row["health"] is not None:
        health, words = row["health"]
        said = json.dumps(merged.get("health_status_reason"))
        assert merged.get("health_status") == health, "%s/%s: health %s (%s)" % (
            case,
            driver,
            merged.get("health_status"),
            said,
        )
        for word in words:
            assert word in said, "%s/%s: %r not in the health reason %s" % (case, driver, word, said)


def test_heat_reads_the_failed_resources_through_the_sdk():
    rec, cloud = CASES["failed-once-nothing-builds"]()
    obs, _merged, requests = observe("heat", rec, cloud)
    assert any(path.endswith("/resources?nested_depth=5&with_detail=false") for _m, path in requests), requests
    assert "No valid host" in obs.faults[WORKER0]


def test_the_grace_is_a_minute():
    assert GRACE_SECONDS == 60
