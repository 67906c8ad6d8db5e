# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The interface every driver's state synchroniser implements (docs/internals.md).

A synchroniser knows HOW a driver's resources map onto cluster state; the
caller (the ``cluster_sync`` module) decides WHEN to look and what to write.
A synchroniser observes and returns; it never writes the store.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ansible_collections.coe.openstack.plugins.module_utils.store.base import parse_iso

# Magnum's cluster statuses and health statuses (lifecycle.py holds the rules).
HEALTH_STATUSES = ("HEALTHY", "UNHEALTHY", "UNKNOWN")


@dataclasses.dataclass
class Observation:
    """What the cloud says about one cluster.

    ``status`` None means "nothing to say" (the record's status is kept);
    ``exists`` False means nothing of the cluster is left in the cloud.
    ``not_started``: the cloud shows no sign of the recorded operation (its
    ``status`` is then the state left by the operation before; the front
    door's ``fail_reason`` does not take it for this operation's result).
    ``nodegroups`` is ``{name: {status, status_reason, node_count,
    node_addresses, nodes}}`` with ``nodes`` a list of ``{name, id, status,
    addresses, image_id, fault}``.
    """

    uuid: str
    exists: bool
    status: str | None = None
    status_reason: str | None = None
    faults: dict[str, str] = dataclasses.field(default_factory=dict)
    api_address: str | None = None
    master_addresses: list[str] = dataclasses.field(default_factory=list)
    node_addresses: list[str] = dataclasses.field(default_factory=list)
    nodegroups: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    health_status: str | None = None
    health_status_reason: Any | None = None
    stack_id: str | None = None
    coe_version: str | None = None
    # the cloud shows no sign of the recorded operation having begun (Heat: the stack
    # settled before it was recorded); ``status`` is then the previous operation's outcome
    not_started: bool = False
    # the orchestration's own status (Heat: the stack's), None without one; at_work reads it
    stack_status: str | None = None

    def as_dict(self):
        return dataclasses.asdict(self)


# Nova server states that change by themselves: the cloud is still carrying out a request
TRANSITIONAL_SERVER_STATUSES = (
    "BUILD",
    "REBUILD",
    "RESIZE",
    "VERIFY_RESIZE",
    "REVERT_RESIZE",
    "MIGRATING",
    "REBOOT",
    "HARD_REBOOT",
    "PASSWORD",
)

# -- the one rule of both synchronisers (docs/state-machine.md, "What a synchroniser observes")

#: the orchestration's state, as a synchroniser tells it to the rule:
#: WORKING  it is making what was asked (a Heat stack *_IN_PROGRESS);
#: PENDING  what is missing is still to be made, nothing is at work on it yet (the Nova
#:          driver, whose servers appear as it makes them; a Heat stack of the previous
#:          operation, or made without nodes first, that the driver has still to update;
#:          no stack yet within the grace);
#: SETTLED  it has done what it will do (a Heat stack *_COMPLETE or *_FAILED);
#: GONE     it is not there (no stack after the grace).
WORKING = "working"
PENDING = "pending"
SETTLED = "settled"
GONE = "gone"

#: seconds after an operation was recorded (``operation_started_at``) during which a cluster
#: whose stack or servers do not exist yet stays *_IN_PROGRESS: the runner that recorded it
#: has not made them yet (another runner's sync may look in between). Never longer than the
#: operation's timeout.
GRACE_SECONDS = 60

#: the record statuses whose operation makes the cluster's resources (a grace applies)
MAKING = ("CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS")


def operation_of(status):
    """``CREATE``, ``UPDATE`` or ``DELETE`` of a record ``*_IN_PROGRESS``; None otherwise."""
    status = status or ""
    if not status.endswith("_IN_PROGRESS"):
        return None
    action = status[: -len("_IN_PROGRESS")]
    return action if action in ("CREATE", "UPDATE", "DELETE") else None


def grace_left(record, now, grace=GRACE_SECONDS):
    """Seconds left of the grace of ``record``'s operation at ``now`` (epoch); None when none is left.

    The grace starts at the record's ``operation_started_at`` (written with the operation, never
    moved by a sync); a record without it (written before that field existed) takes the time it
    entered its status (``status_updated_at``, which a sync does not move either while the status
    stays); without both, no grace. It lasts ``grace`` seconds, at most the record's ``timeout``.
    Only a create or an update has one (a delete makes nothing).
    """
    if record.get("status") not in MAKING:
        return None
    try:
        started = parse_iso(record.get("operation_started_at") or record.get("status_updated_at"))
    except (TypeError, ValueError):
        started = None
    if started is None:
        return None
    limit = min(grace, int(record.get("timeout") or 3600))
    left = limit - (now - started)
    return left if left > 0 else None


def node_label(node):
    return node.get("name") or node.get("id") or "?"


def _fault_of(node, faults):
    name = node_label(node)
    text = faults.get(name) or node.get("fault")
    if text:
        return "%s: %s" % (name, text)
    return "%s: server is %s" % (name, node.get("status"))


def nodegroup_state(action, nodes, desired, orchestration, faults=None, missing=(), cluster_failure=None, outdated=()):
    """``(status, reason)`` of one nodegroup while ``action`` (CREATE, UPDATE, DELETE) runs.

    ``nodes``: the nodegroup's servers that exist (dicts with ``name``, ``status``, ``fault``);
    ``desired``: how many it should have; ``missing``: names of desired nodes without a server
    (for the reason); ``orchestration``: WORKING, PENDING, SETTLED or GONE (above); ``faults``: ``{node
    or resource of the nodegroup: the cloud's words}`` (Heat's failed resources, Nova's faults);
    ``cluster_failure``: the cloud's words about a failed resource of the cluster itself (or
    the stack that is gone), which no nodegroup can be complete without; ``outdated``: names
    of nodes an update still has to replace (another image).

    In this order (the first that holds):

    * delete: no server left, or the orchestration is gone (Heat deleted the stack) ->
      DELETE_COMPLETE; the orchestration failed (a Heat stack
      DELETE_FAILED) -> DELETE_FAILED with the faults; else DELETE_IN_PROGRESS;
    * the orchestration is gone -> *_FAILED, the cluster's reason (the stack it names);
    * a node BUILD/REBUILD/RESIZE/... -> *_IN_PROGRESS, whatever the stack says;
    * a node in ERROR (or not ACTIVE), or a failed resource of the nodegroup -> *_FAILED
      with the nodes' own faults;
    * desired nodes missing, more nodes than desired, or nodes still to replace: while the
      orchestration works or has them still to make -> *_IN_PROGRESS; once it settled, missing nodes -> *_FAILED
      naming them (extra or outdated ones are drift: health);
    * a failed resource of the cluster -> *_FAILED with its words;
    * else (every desired node exists and is ACTIVE) -> *_COMPLETE.
    """
    faults = dict(faults or {})
    missing = list(missing)
    if action == "DELETE":
        if not nodes or orchestration == GONE:
            return "DELETE_COMPLETE", None
        if orchestration == SETTLED:
            words = "; ".join("%s: %s" % kv for kv in sorted(faults.items())) or cluster_failure
            return "DELETE_FAILED", words or "%d servers left" % len(nodes)
        return "DELETE_IN_PROGRESS", "%d servers left" % len(nodes)
    if orchestration == GONE:
        return action + "_FAILED", cluster_failure
    busy = [n for n in nodes if n.get("status") in TRANSITIONAL_SERVER_STATUSES]
    if busy:
        return action + "_IN_PROGRESS", "building: %s" % ", ".join(
            "%s (%s)" % (node_label(n), n.get("status")) for n in busy
        )
    broken = [n for n in nodes if n.get("status") != "ACTIVE" or node_label(n) in faults]
    own = {k: v for k, v in faults.items() if k not in {node_label(n) for n in nodes}}
    if broken or own:
        words = [_fault_of(n, faults) for n in broken] + ["%s: %s" % kv for kv in sorted(own.items())]
        return action + "_FAILED", "; ".join(words)
    short = max(desired - len(nodes), 0)
    extra = max(len(nodes) - desired, 0)
    if orchestration in (WORKING, PENDING) and (short or extra or outdated):
        parts = []
        if short:
            parts.append("%d of %d servers exist" % (len(nodes), desired))
        if extra:
            parts.append("%d servers to remove" % extra)
        if outdated:
            parts.append("to replace: %s" % ", ".join(outdated))
        return action + "_IN_PROGRESS", "; ".join(parts)
    if short:
        named = missing[:short] + (["%d more" % (short - len(missing))] if len(missing) < short else [])
        reason = "%d of %d servers exist, missing: %s" % (len(nodes), desired, ", ".join(named))
        if cluster_failure:
            reason += " (%s)" % cluster_failure
        return action + "_FAILED", reason
    if cluster_failure:
        return action + "_FAILED", cluster_failure
    return action + "_COMPLETE", None


def roll_up(action, nodegroups, orchestration, cluster_failure=None, working_reason=None):
    """``(status, reason)`` of the cluster from its nodegroups' ``{name: (status, reason)}``.

    IN_PROGRESS > FAILED > COMPLETE: a nodegroup in progress (or an orchestration still
    working) keeps the cluster *_IN_PROGRESS; only then does a failed nodegroup or a failed
    resource of the cluster make it *_FAILED, the reason naming them (the nodegroups with
    their nodes' faults); else *_COMPLETE. A delete: DELETE_COMPLETE once every nodegroup is.
    """
    failed = sorted((n, r) for n, (s, r) in nodegroups.items() if s.endswith("_FAILED"))
    busy = sorted((n, r) for n, (s, r) in nodegroups.items() if s.endswith("_IN_PROGRESS"))
    failures = []
    if cluster_failure and orchestration != GONE:
        failures.append(cluster_failure)
    failures.extend("nodegroup %s failed: %s" % (n, r) if r else "nodegroup %s failed" % n for n, r in failed)
    if orchestration == GONE and action != "DELETE":
        return action + "_FAILED", cluster_failure
    if busy or orchestration == WORKING:
        parts = ["nodegroup %s: %s" % (n, r) if r else "nodegroup %s" % n for n, r in busy]
        if not busy and working_reason:
            parts.append(working_reason)
        if failures and action != "DELETE":
            parts.append("failing: %s" % "; ".join(failures))
        return action + "_IN_PROGRESS", "; ".join(parts) or None
    if failures:
        return action + "_FAILED", "; ".join(failures)
    return action + "_COMPLETE", None


class StateSynchroniser:
    """Base class of a driver's synchroniser."""

    #: the template ``driver`` value this synchroniser serves
    driver = None

    #: True while ``sync_clusters`` observes again a cluster it has just settled: a synchroniser
    #: that keeps its last reads may answer from them (the record changed, not the cloud)
    replay = False

    def __init__(self, conn, clock=None):
        self.conn = conn
        #: the time now (epoch seconds): the grace of a just recorded operation is measured with it
        self.clock = clock or time.time

    def observe(self, clusters):
        """Return ``{uuid: Observation}`` for every cluster record given.

        ``clusters`` are one driver's cluster record dicts. The number of API
        calls must not grow with ``len(clusters)``. Never writes the store.
        """
        raise NotImplementedError

    def still_working(self, record):
        """Whether one cheap read shows the cloud still carrying out ``record``'s operation, so that
        a watch (clusters.watch_operation) need not observe the whole cluster yet. False: no such
        read, or it does not say so; observe. Reads only."""
        return False

    def check_references(self, cluster, operation):
        """Refuse, naming the field, when the cloud lacks what ``operation`` on ``cluster`` needs.

        Flavors, images, keypair, networks and quota (preflight.py, the same for every
        driver; the Heat driver also needs its orchestration endpoint). Reads only: the
        front door's plan step runs it before anything is written.
        """
        from ansible_collections.coe.openstack.plugins.module_utils.preflight import check_references

        check_references(self.conn, cluster, operation, driver=self.driver)

    def census(self):
        """``{uuid: cluster}`` of every cluster the cloud has in the project, whatever a store knows
        (census.py: one list call per resource kind). Reads only."""
        from ansible_collections.coe.openstack.plugins.module_utils.census import take_census

        return take_census(self.conn)

    def at_work(self, observation):
        """Why the cloud, as ``observation`` shows it, is still carrying out an operation; None if it is not.

        Asked after the runner's driver failed (``cluster_sync`` ``fail_reason``):
        a cluster still ``*_IN_PROGRESS`` that the cloud does no work on will not
        finish by itself. An orchestration stack (``stack_id``) whose own status
        (``stack_status``) is ``*_IN_PROGRESS`` means the orchestrator (Heat) still
        works; the cluster's status is the synchroniser's reading of the stack and
        the servers (a grace, a stack created empty before its nodes), so only a
        server in a transitional state (BUILD, REBUILD, RESIZE, ...) shows work
        besides. A driver may override this.
        """
        stack_status = observation.stack_status if observation.stack_status is not None else observation.status
        if observation.stack_id and (stack_status or "").endswith("_IN_PROGRESS"):
            return "stack %s is %s" % (observation.stack_id, stack_status)
        busy = sorted(
            node.get("name") or node.get("id") or "?"
            for group in (observation.nodegroups or {}).values()
            for node in group.get("nodes") or ()
            if node.get("status") in TRANSITIONAL_SERVER_STATUSES
        )
        if busy:
            return "servers still changing: %s" % ", ".join(busy)
        return None


class FakeSynchroniser(StateSynchroniser):
    """A synchroniser for unit tests: answers from a dict, counts its calls.

    ``observations`` maps a cluster uuid to an Observation, a dict of
    Observation fields, or a callable ``(record) -> Observation``. A cluster
    it knows nothing about is reported as not existing.
    """

    driver = "fake"

    def __init__(self, conn=None, observations=None):
        super().__init__(conn)
        self.observations = dict(observations or {})
        self.calls = []
        self.checked = []

    #: what ``check_references`` refuses: ``(field, reason)``, or None (everything exists)
    refuse = None
    #: what ``census`` answers: ``{uuid: cluster}`` (census.py's shape)
    cloud = {}

    def census(self):
        return {k: dict(v) for k, v in self.cloud.items()}

    def check_references(self, cluster, operation):
        from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

        self.checked.append((cluster.get("name"), operation))
        if self.refuse is not None:
            raise ValidationError(*self.refuse)

    def observe(self, clusters):
        self.calls.append([c["uuid"] for c in clusters])
        result = {}
        for record in clusters:
            answer = self.observations.get(record["uuid"])
            if callable(answer):
                answer = answer(record)
            if answer is None:
                answer = Observation(uuid=record["uuid"], exists=False)
            elif isinstance(answer, dict):
                answer = Observation(**dict(answer, uuid=record["uuid"]))
            result[record["uuid"]] = answer
        return result
