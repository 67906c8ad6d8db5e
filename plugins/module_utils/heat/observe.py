# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The Heat driver's state synchroniser: Heat stacks and Nova servers → cluster state.

Cost: whatever the number of clusters, one stack list call (``tags_any`` =
the clusters' ``coe-cluster-<uuid>`` tags, as a list) and one server list
call (same tags, server-side filter) per 40 clusters, plus one nested
resources call per stack that is *_FAILED (for the cloud's reasons).

Mapping: the one rule of both synchronisers (sync/base.py, docs/state-machine.md "What a
synchroniser observes"). This module reads Heat and Nova into its facts:

* the stack's status, mapped onto the record's operation (``map_status``): CREATE_COMPLETE
  seen while the record says UPDATE_IN_PROGRESS is UPDATE_COMPLETE (the update changed
  nothing Heat had to act on), and UPDATE_* seen while the record says CREATE_IN_PROGRESS
  is CREATE_* (a create with rendered user-data makes the stack without nodes, then updates
  it to its nodes); a settled record (*_COMPLETE) and a settled stack say nothing new;
* the orchestration's state: WORKING (the stack *_IN_PROGRESS), PENDING (Heat has not begun
  the operation: a stack settled before it was recorded, see ``settled_before``, flagged
  ``not_started``; a create's stack made without nodes; no stack yet within the grace of
  ``operation_started_at``), SETTLED, or GONE (no stack after the grace: a create or an
  update fails, every nodegroup with it, "Stack <name> not found in Heat"; a delete is
  complete);
* per nodegroup its servers and the failed resources inside it; the failed resources of no
  nodegroup fail the cluster (the API port, the security group, the server group);
* a settled record: Magnum says nothing of a missing stack, and neither do we (status None)
  — but ``exists`` is False and the health is UNHEALTHY naming the stack and the nodes;
  a failed operation whose stack settles with every node ACTIVE becomes *_COMPLETE;
* addresses, nodes and per-nodegroup counts come from the servers tagged
  with the cluster (their metadata says nodegroup, role and index); the API
  address is ``https://ADDR:6443`` of the first master's floating IP, else of
  its fixed IP (the address the template's ``api_ip`` output says); for a
  cluster whose API is on a VIP, of the VIP port's floating IP, else of its
  fixed IP (one port list and one floating IP list for every cluster);
* faults: {node or resource: reason} from failed resources and from servers
  in ERROR;
* health: HEALTHY when the stack is *_COMPLETE and every expected server is
  ACTIVE, UNHEALTHY with the reasons when servers are missing or broken,
  UNKNOWN while an operation is in progress.
"""

from __future__ import annotations

import concurrent.futures

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, loadbalancer, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.heat.build import (
    cluster_tag,
    stack_name,
)
from ansible_collections.coe.openstack.plugins.module_utils.heat.client import HeatClient
from ansible_collections.coe.openstack.plugins.module_utils.servers import fixed_address, floating_address, server_views
from ansible_collections.coe.openstack.plugins.module_utils.store.base import parse_iso
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import (
    GONE,
    PENDING,
    SETTLED,
    WORKING,
    Observation,
    StateSynchroniser,
    grace_left,
    nodegroup_state,
    operation_of,
    roll_up,
)

CHUNK = 40
KNOWN_STATUSES = {
    "%s_%s" % (action, state)
    for action in ("CREATE", "UPDATE", "DELETE", "ROLLBACK", "RESUME", "RESTORE", "SNAPSHOT", "CHECK", "ADOPT")
    for state in ("IN_PROGRESS", "COMPLETE", "FAILED")
}


# Seconds by which a stack's last action must precede the recorded start of an operation
# before the stack counts as settled from before it. The two times come from two clocks
# (Heat's hosts; the runner's or the store's), both truncated to whole seconds. NTP keeps
# such clocks well within a second of each other; 30 s leaves room for a poorly kept one
# and costs nothing real: the stack's time is when its last action *began*, and that
# action had to settle and be observed before a new operation could be recorded, which
# takes longer than this. Within the margin the stack counts as changed by the operation.
SETTLED_BEFORE_MARGIN = 30

# Record statuses whose operation the driver starts with a stack create or update call;
# Heat stamps the stack (creation_time, updated_time) when it begins either. A delete is
# not among them: merge_observation already ignores another operation's terminal status.
STARTED_BY_CREATE_OR_UPDATE = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS")


def epoch(value):
    """Seconds since the epoch of an ISO 8601 time (Heat's or the store's, ``parse_iso``) or a
    number; None when unknown or unreadable (the stack is then read as it always was)."""
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_iso(value)
    except ValueError:
        return None


def settled_before(stack, started_at, margin=SETTLED_BEFORE_MARGIN):
    """True when ``stack`` is settled and its last action began ``margin`` s before ``started_at``.

    ``started_at``: when the operation in progress was recorded (the record's
    ``operation_started_at``). The stack's last action is the later of its
    ``created_at`` and ``updated_at`` (Heat's creation_time and updated_time,
    the latter stamped when an update begins). Unknown times say False: the
    stack is then read as it always was.
    """
    if stack is None or str(stack.get("status") or "").endswith("_IN_PROGRESS"):
        return False
    started = epoch(started_at)
    if started is None:
        return False
    times = [t for t in (epoch(stack.get("created_at")), epoch(stack.get("updated_at"))) if t is not None]
    return bool(times) and max(times) < started - margin


def map_status(record_status, stack):
    """(status, reason) for a record in ``record_status`` and the stack seen (None: no stack)."""
    if stack is None:
        if record_status == "DELETE_IN_PROGRESS":
            return "DELETE_COMPLETE", "Stack deleted"
        if record_status == "CREATE_IN_PROGRESS":
            return "CREATE_FAILED", "Stack not found in Heat"
        if record_status == "UPDATE_IN_PROGRESS":
            return "UPDATE_FAILED", "Stack not found in Heat"
        return None, None
    status = stack.get("status")
    reason = stack.get("status_reason")
    if status == "CREATE_COMPLETE" and record_status == "UPDATE_IN_PROGRESS":
        return "UPDATE_COMPLETE", reason
    if str(record_status).endswith("_COMPLETE") and str(status).endswith("_COMPLETE") and status != record_status:
        # both settled: the stack's last action (a create with rendered user-data ends with
        # an update) says nothing new about the cluster
        return None, None
    if record_status == "CREATE_IN_PROGRESS" and str(status).startswith("UPDATE_"):
        # a create with rendered user-data is a stack create (no nodes) then an update
        return status.replace("UPDATE_", "CREATE_", 1), reason
    if status not in KNOWN_STATUSES:
        return None, reason
    return status, reason


def _chunks(items, size=CHUNK):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _index(server):
    if server.get("index") is not None:
        return server["index"]
    tail = str(server.get("name", "")).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 1 << 30


def _fault_key(record, failure):
    """A failed resource's key in ``faults``: the node's name when it is inside a node."""
    path = [str(p) for p in failure.get("path") or []]
    groups = {g["name"]: g for g in (record.get("_nodegroups") or [])}
    if len(path) >= 2 and path[0] in groups and path[1].isdigit():
        group = groups[path[0]]
        return "%s-%s-%s" % (record["name"], group["prefix"], path[1])
    return ".".join(path) or str(failure.get("resource"))


def _missing_nodes(record, nodegroup, servers, deficit):
    """Up to ``deficit`` names of nodes of ``nodegroup`` the record knew that have no server now.

    Nodes the last operation took out on purpose (``nodes_to_remove``) are not missing.
    """
    if deficit <= 0:
        return []
    present = {s["name"] for s in servers}
    removed = set(record.get("nodes_to_remove") or [])
    known = []
    for group in record.get("nodegroups") or []:
        if isinstance(group, dict) and group.get("name") == nodegroup:
            known = [n.get("name") for n in group.get("nodes") or [] if isinstance(n, dict) and n.get("name")]
    gone = [n for n in known if n not in present and n not in removed]
    return sorted(gone, key=lambda n: _index({"name": n}))[:deficit]


class HeatSynchroniser(StateSynchroniser):
    """Observe Heat-driven clusters (see the module docstring for the mapping)."""

    driver = "heat"

    def __init__(self, conn, client=None, clock=None):
        super().__init__(conn, clock=clock)
        self.client = client or HeatClient(conn)

    # -- cloud reads (each call is one API request) --------------------------

    def _stacks(self, tags):
        out = []
        for chunk in _chunks(tags):
            out.extend(self.client.list_any(chunk))
        return out

    def _servers(self, tags):
        out = []
        for chunk in _chunks(tags):
            out.extend(server_views(self.conn.compute.servers(details=True, any_tags=",".join(chunk))))
        return out

    # -- the interface ---------------------------------------------------------

    def still_working(self, record):
        """One stack list by name: the cluster's stack is ``*_IN_PROGRESS`` (Heat still works)."""
        stack = self.client.status(stack_name(record.get("name", ""), record["uuid"]))
        return bool(stack) and str(stack.get("status") or "").endswith("_IN_PROGRESS")

    def observe(self, clusters):
        clusters = [c for c in clusters if c.get("uuid")]
        if not clusters:
            return {}
        tags = [cluster_tag(c["uuid"]) for c in clusters]
        # the stacks and the servers at once (the connection made before the threads use it)
        poll.authenticated(self.conn)
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            stacks, servers = pool.submit(self._stacks, tags), pool.submit(self._servers, tags)
        stacks_by_tag = {}
        for stack in stacks.result():
            if stack.get("status") == "DELETE_COMPLETE":
                # Heat may still list a stack it has just deleted
                continue
            for tag in stack.get("tags") or []:
                stacks_by_tag.setdefault(tag, []).append(stack)
        servers_by_uuid = {}
        for server in servers.result():
            servers_by_uuid.setdefault(server["cluster_uuid"], []).append(server)
        vips = endpoint.read_vip_addresses(self.conn, clusters)
        lbs = {}
        if any(endpoint.endpoint_kind(c) == endpoint.LOAD_BALANCER for c in clusters):
            lbs = loadbalancer.cluster_load_balancers(self.conn)
        result = {}
        for record in clusters:
            stack = self._pick_stack(record, stacks_by_tag.get(cluster_tag(record["uuid"]), []))
            failures, busy = [], []
            if stack is not None and str(stack.get("status", "")).endswith("_FAILED"):
                failures, busy = self.client.failures_and_work(stack)
            result[record["uuid"]] = self.observation(
                record,
                stack,
                servers_by_uuid.get(record["uuid"], []),
                failures,
                lbs.get(record["uuid"]),
                vip=vips.get(record["uuid"]),
                busy=busy,
            )
        return result

    @staticmethod
    def _pick_stack(record, stacks):
        if not stacks:
            return None
        wanted = record.get("stack_id")
        for stack in stacks:
            if wanted and stack.get("id") == wanted:
                return stack
        name = stack_name(record.get("name", ""), record["uuid"])
        for stack in stacks:
            if stack.get("name") == name:
                return stack
        return sorted(stacks, key=lambda s: str(s.get("created_at") or ""))[-1]

    def observation(self, record, stack, servers, failures=(), load_balancer=None, vip=None, now=None, busy=()):
        """The Observation of one cluster from what was read (pure: no API call).

        ``servers``: the cluster's server views (servers.server_views). ``vip``: (fixed IP,
        floating IP or None) of the cluster's API VIP (endpoint.vip_addresses): the API
        address is then its floating IP, else its fixed IP, never a master's. ``failures``: the
        failed leaf resources of a failed stack; ``busy``: the paths of its resources still in
        progress (Heat goes on making them after marking the stack failed); ``now``: the time
        (epoch) the grace of a just recorded operation is measured at (default: the clock).
        """
        record = dict(record)
        try:
            record["_nodegroups"] = shape.read_nodegroups(record)
        except Exception:
            # a record we cannot fully interpret still gets its status mapped
            record["_nodegroups"] = []
        record_status = record.get("status") or ""
        op = operation_of(record_status)
        status, reason = map_status(record_status, stack)
        stack_status = (stack or {}).get("status") or ""
        # Heat has not begun the recorded operation: its stack status is the previous
        # operation's outcome (an update call Heat refused leaves it so). The status is
        # still reported (a driver that had nothing to change makes no stack call: its
        # operation is complete as the stack is); sync_clusters' fail_reason ignores it.
        not_started = record_status in STARTED_BY_CREATE_OR_UPDATE and settled_before(
            stack, record.get("operation_started_at")
        )
        faults = {}
        for failure in failures:
            faults[_fault_key(record, failure)] = failure.get("reason") or failure.get("status")
        servers = sorted(servers, key=lambda s: (s["nodegroup"] or "", _index(s)))
        groups = {}
        for g in record["_nodegroups"]:
            groups[g["name"]] = dict(role=g["role"], expected=g["count"], image=g.get("image"), servers=[])
        for server in servers:
            ng = server["nodegroup"] or "unknown"
            role = server["role"] or "worker"
            groups.setdefault(ng, dict(role=role, expected=None, image=None, servers=[]))["servers"].append(server)
            text = server["fault"] if server["status"] == "ERROR" else None
            if text:
                faults.setdefault(server["name"], text)
        if stack is not None and stack_status.endswith("_FAILED") and not faults and reason:
            faults[stack.get("name") or "stack"] = reason
        if stack is not None and failures and reason:
            # the stack's own reason names a resource path; the leaves say it plainly
            leaf = "; ".join("%s: %s" % (k, v) for k, v in faults.items())
            if leaf and leaf not in reason:
                reason = "%s (%s)" % (reason, leaf)

        # what the orchestration does (sync.base: the one rule)
        name_of_stack = stack_name(record.get("name", ""), record["uuid"])
        grace = None
        if stack is None:
            grace = grace_left(record, self.clock() if now is None else now) if op in ("CREATE", "UPDATE") else None
            orchestration = PENDING if grace else GONE
        elif stack_status.endswith("_IN_PROGRESS"):
            orchestration = WORKING
        elif op == "CREATE" and stack_status == "CREATE_COMPLETE" and not servers:
            # a create with rendered user-data makes the stack without nodes first, then
            # gives it its nodes: between the two, Heat has not been asked for them yet
            orchestration = PENDING
        elif op and (not_started or (status and _action(status) not in (op, "ROLLBACK"))):
            orchestration = PENDING  # the previous operation's outcome: Heat has not begun ours
        else:
            orchestration = SETTLED
        # a failed stack whose resources are still in progress: Heat goes on making them (its
        # convergence engine fails the stack at the first failure), the nodegroups they are in
        # are still being made, and so is the cluster
        working_groups = set()
        if orchestration == SETTLED and busy:
            orchestration = WORKING
            working_groups = {str(path[0]) for path in busy if path}
        owners = {}  # fault key -> its nodegroup
        for ng in groups:
            node_prefix = "%s-%s-" % (record.get("name"), _prefix(record, ng))
            for key in faults:
                if key == ng or key.startswith(ng + ".") or key.startswith(node_prefix):
                    owners.setdefault(key, ng)
            for server in groups[ng]["servers"]:
                if server["name"] in faults:
                    owners[server["name"]] = ng
        cluster_faults = {k: v for k, v in faults.items() if k not in owners}
        cluster_failure = "; ".join("%s: %s" % kv for kv in sorted(cluster_faults.items())) or None
        if orchestration == GONE:
            cluster_failure = "Stack %s not found in Heat" % name_of_stack

        # the operation the nodegroups are read for: the record's, else (a settled record)
        # the one the stack shows, if it shows a new one
        act, group_orchestration = op, orchestration
        if op is None:
            act = _action(status) if status else None
            act = act if act in ("CREATE", "UPDATE", "DELETE") else None
            group_orchestration = WORKING if str(status).endswith("_IN_PROGRESS") else SETTLED
        nodegroups = {}
        states = {}
        master_addresses, node_addresses = [], []
        api_address = None
        unhealthy = {}
        for ng, info in groups.items():
            nodes = []
            addresses = []
            for server in info["servers"]:
                addr = fixed_address(server)
                if addr:
                    addresses.append(addr)
                nodes.append(
                    dict(
                        name=server["name"],
                        id=server["id"],
                        status=server["status"],
                        addresses=[a for a in (addr, floating_address(server)) if a],
                        image_id=server.get("image_id"),
                        fault=server["fault"] if server["status"] == "ERROR" else None,
                    )
                )
                if server["status"] != "ACTIVE":
                    unhealthy[server["name"]] = "server is %s" % server["status"]
            if info["role"] == "master":
                master_addresses.extend(addresses)
                if info["servers"] and api_address is None:
                    first = info["servers"][0]
                    api_address = floating_address(first) or fixed_address(first)
            else:
                node_addresses.extend(addresses)
            expected = info["expected"]
            present = list(nodes)
            missing = []
            if expected is not None and len(info["servers"]) != expected and stack_status.endswith("_COMPLETE"):
                unhealthy[ng] = "%d of %d servers exist" % (len(info["servers"]), expected)
                # Heat still counts the members whose servers went away behind its back:
                # the nodes the record knew that are gone stay listed, MISSING, so that
                # the lifecycle plans a repair and the driver has Heat make them again
                for name in _missing_nodes(record, ng, info["servers"], expected - len(info["servers"])):
                    gone = dict(name=name, id=None, status="MISSING", addresses=[], image_id=None)
                    nodes.append(dict(gone, fault="server not found"))
                    unhealthy[name] = "server not found"
                    missing.append(name)
            ng_faults = {k: v for k, v in faults.items() if owners.get(k) == ng}
            ng_status, ng_reason = (None, None)
            if act is not None:
                ng_orchestration = group_orchestration
                if working_groups:
                    ng_orchestration = WORKING if ng in working_groups else SETTLED
                ng_status, ng_reason = nodegroup_state(
                    act,
                    present,
                    expected if expected is not None else len(present),
                    ng_orchestration,
                    faults=ng_faults,
                    missing=missing,
                    cluster_failure=cluster_failure,
                    outdated=_outdated(info, present) if act == "UPDATE" else (),
                )
            states[ng] = (ng_status, ng_reason)
            indices = [i for i in (_index(s) for s in info["servers"]) if i < 1 << 30]
            counts = {}
            for server in info["servers"]:
                counts[server["status"]] = counts.get(server["status"], 0) + 1
            nodegroups[ng] = dict(
                status=ng_status,
                status_reason=ng_reason,
                node_count=len(info["servers"]),
                node_addresses=addresses,
                nodes=nodes,
                # the same fields as the Nova synchroniser's
                counts=counts,
                last_index=max(indices) if indices else None,
            )

        status, reason, keep_nodegroups = _cluster_status(
            record, op, status, reason, orchestration, states, cluster_failure, grace, name_of_stack
        )
        if keep_nodegroups:
            # nothing new to say of the operation: each nodegroup keeps what its last one gave it
            for ng, group in nodegroups.items():
                group["status"], group["status_reason"] = _kept(record, ng), None
        if endpoint.endpoint_kind(record) == endpoint.LOAD_BALANCER and stack is not None:
            # the API's load balancer: its address is the API's; in ERROR, the cluster is unhealthy
            if load_balancer is not None:
                api_address = load_balancer.get("floating_ip") or load_balancer.get("vip_address") or api_address
            lb_problem = loadbalancer.problem(load_balancer, deleting=stack_status.startswith("DELETE"))
            if lb_problem and not stack_status.endswith("_IN_PROGRESS"):
                unhealthy[(load_balancer or {}).get("name") or "load_balancer"] = lb_problem
                if load_balancer is not None:
                    faults.setdefault(load_balancer["name"], lb_problem)

        if stack is None:
            if status is None and record_status not in ("DELETE_COMPLETE",):
                # a settled cluster whose stack is gone: name it, and the nodes it had
                health, health_reason = "UNHEALTHY", {"stack": "stack %s not found in Heat" % name_of_stack}
                present = {s["name"] for s in servers}
                for group in record.get("nodegroups") or []:
                    for node in (group.get("nodes") or []) if isinstance(group, dict) else ():
                        name = node.get("name") if isinstance(node, dict) else None
                        if name and name not in present:
                            health_reason[name] = "server not found"
            else:
                health, health_reason = None, None
        elif stack_status.endswith("_IN_PROGRESS"):
            health, health_reason = "UNKNOWN", {"stack": "stack is %s" % stack_status}
        elif op and str(status).endswith("_IN_PROGRESS"):
            health, health_reason = "UNKNOWN", {"cluster": "%s: %s" % (status, reason)}
        elif unhealthy or stack_status.endswith("_FAILED"):
            health = "UNHEALTHY"
            health_reason = dict(unhealthy)
            if stack_status.endswith("_FAILED"):
                health_reason["stack"] = "stack is %s" % stack_status
        else:
            health, health_reason = "HEALTHY", {}

        if vip is not None:
            api_address = vip[1] or vip[0]
        elif endpoint.endpoint_kind(record) == endpoint.VIP:
            api_address = None  # the VIP port is gone: no master's address stands for it
        versions = {s["coe_version"] for s in servers if s["role"] == "master"}
        versions.discard(None)
        versions.discard("")
        return Observation(
            uuid=record["uuid"],
            exists=stack is not None or bool(servers),
            status=status,
            status_reason=reason,
            faults=faults,
            api_address=endpoint.api_url(api_address),
            master_addresses=master_addresses,
            node_addresses=node_addresses,
            nodegroups=nodegroups,
            health_status=health,
            health_status_reason=health_reason,
            stack_id=(stack or {}).get("id"),
            coe_version=versions.pop() if len(versions) == 1 else None,
            not_started=not_started,
            stack_status=(stack or {}).get("status"),
        )


def _action(status):
    """``CREATE`` of ``CREATE_FAILED``; None for None."""
    if not status:
        return None
    for state in ("_IN_PROGRESS", "_COMPLETE", "_FAILED"):
        if status.endswith(state):
            return status[: -len(state)]
    return status


def _kept(record, ng):
    """A nodegroup's status when the observation says nothing new: None (the record keeps it),
    except that a nodegroup recorded in progress under a settled cluster ends as the cluster did."""
    if operation_of(record.get("status")):
        return None
    for group in record.get("nodegroups") or []:
        if isinstance(group, dict) and group.get("name") == ng and str(group.get("status")).endswith("_IN_PROGRESS"):
            return record.get("status") or None
    return None


def _outdated(info, nodes):
    """Names of the nodes an update still has to give the nodegroup's image (an id) to."""
    image = info.get("image")
    if not image or not shape.is_uuid(image):
        return []
    return [n["name"] for n in nodes if n.get("image_id") and n["image_id"] != image]


def _cluster_status(record, op, status, reason, orchestration, states, cluster_failure, grace, name):
    """``(status, reason, keep_nodegroups)`` of the cluster (sync.base.roll_up, the one rule).

    ``status``/``reason``: what the stack says (map_status); ``states``: the nodegroups'
    ``{name: (status, reason)}``; ``keep_nodegroups``: the observation has nothing new to
    say of the operation, so neither have the nodegroups.
    """
    record_status = record.get("status") or ""
    if op in ("CREATE", "UPDATE"):
        if orchestration == PENDING and grace:
            return (
                record_status,
                "stack %s does not exist yet: the %s was recorded just now (%d s of its grace left)"
                % (name, op.lower(), int(grace)),
                False,
            )
        if orchestration == GONE:
            return op + "_FAILED", cluster_failure, False
        if _action(status) != op:  # a rollback, or the stack of another operation
            return status, reason, False
        rolled, why = roll_up(op, states, orchestration, cluster_failure)
        if rolled.endswith("_COMPLETE") or not why:
            why = reason  # Heat's words
        return rolled, why, False
    if op == "DELETE":
        return status, reason, False
    # a settled record
    if status is None or status.endswith("_IN_PROGRESS"):
        return status, reason, status is None
    act = _action(status)
    if act in ("CREATE", "UPDATE") and act == _action(record_status):
        rolled, why = roll_up(act, states, SETTLED, cluster_failure)
        if rolled.endswith("_COMPLETE"):
            # the cloud converged (a failed operation's stack later completed)
            return rolled, reason, rolled == record_status
        if rolled.endswith("_FAILED") and record_status == rolled:
            return None, None, False  # the failed operation's outcome, its nodegroups as they are now
        if status == record_status:
            return status, reason, True  # the stack agrees with the record; drift is health's
        return None, None, True  # drift (health says it), or servers still changing
    return status, reason, act not in ("CREATE", "UPDATE", "DELETE")


def _prefix(record, ng):
    for g in record.get("_nodegroups") or []:
        if g["name"] == ng:
            return g["prefix"]
    return ng


Synchroniser = HeatSynchroniser
