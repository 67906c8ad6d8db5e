# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The interface every driver's state synchroniser implements (docs/internals.md).

A synchroniser knows HOW a driver's resources map onto cluster state; the
caller (the ``cluster_sync`` module) decides WHEN to look and what to write.
A synchroniser observes and returns; it never writes the store.
"""

from __future__ import annotations

import dataclasses
from typing import Any

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


class StateSynchroniser:
    """Base class of a driver's synchroniser."""

    #: the template ``driver`` value this synchroniser serves
    driver = None

    def __init__(self, conn):
        self.conn = conn

    def observe(self, clusters):
        """Return ``{uuid: Observation}`` for every cluster record given.

        ``clusters`` are one driver's cluster record dicts. The number of API
        calls must not grow with ``len(clusters)``. Never writes the store.
        """
        raise NotImplementedError

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
        finish by itself. An orchestration stack (``stack_id``) reported
        ``*_IN_PROGRESS`` means the orchestrator (Heat) still works; without a
        stack the status is the synchroniser's reading of the servers, so only
        a server in a transitional state (BUILD, REBUILD, RESIZE, ...) shows
        work. A driver may override this.
        """
        if observation.stack_id and (observation.status or "").endswith("_IN_PROGRESS"):
            return "stack %s is %s" % (observation.stack_id, observation.status)
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
