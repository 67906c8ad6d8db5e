# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Folding what a synchroniser observed into a cluster record (with stuck detection:
an operation older than its timeout fails).

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import copy

from ansible_collections.coe.openstack.plugins.module_utils import endpoint
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.states import (
    CREATE_IN_PROGRESS,
    DELETE_COMPLETE,
    DELETE_FAILED,
    DELETE_IN_PROGRESS,
    STATUSES,
    _prefix,
)
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso, parse_iso

# -- observation -------------------------------------------------------------------

DESIRED_NODEGROUP_KEYS = (
    "name",
    "role",
    "flavor_id",
    "image_id",
    "labels",
    "min_node_count",
    "max_node_count",
    "own_flavor_id",
    "own_image_id",
    "own_labels",
)
OBSERVED_KEYS = ("api_address", "master_addresses", "node_addresses", "faults")
#: the key of ``faults`` that holds why the runner's driver failed (fail_in_progress)
RUNNER_FAULT = "driver"
OPTIONAL_OBSERVED_KEYS = ("stack_id", "coe_version", "health_status", "health_status_reason")


def merge_observation(record, obs, now):
    """Fold an Observation into a record.

    Returns ``(new_record, message)``; message (or None) says why the status
    changed. The synchroniser maps the cloud onto Magnum statuses; here only:
    an observed terminal status of another operation than the one in progress
    is stale and ignored (e.g. the stack's old UPDATE_COMPLETE while our update
    has not started), nothing left in the cloud completes a delete, and an
    *_IN_PROGRESS older than the cluster's timeout becomes *_FAILED.
    """
    new = copy.deepcopy(record)
    status = record["status"]
    message = None
    observed = obs.status
    if observed is not None and observed not in STATUSES:
        raise ValidationError("status", "synchroniser returned unknown status %r" % observed)
    if not obs.exists and status in (DELETE_IN_PROGRESS, DELETE_FAILED, DELETE_COMPLETE):
        observed = DELETE_COMPLETE
        new["status_reason"] = "nothing of the cluster is left in the cloud"
    elif not obs.exists and status != CREATE_IN_PROGRESS and observed is None:
        # drift: name what is missing, in the synchroniser's words (the stack, the nodes)
        new["health_status"] = "UNHEALTHY"
        new["health_status_reason"] = dict(
            {"cluster": "nothing of the cluster exists in the cloud"}, **(obs.health_status_reason or {})
        )
    if observed is not None and status.endswith("_IN_PROGRESS"):
        mine = _prefix(status)
        theirs = _prefix(observed)
        if theirs in ("CREATE", "UPDATE", "DELETE") and theirs != mine and not observed.endswith("_IN_PROGRESS"):
            observed = None  # stale: the state of the operation before ours
    if observed is not None and observed != status:
        new["status"] = observed
        new.pop("runner_failure", None)
        if obs.status_reason is not None:
            new["status_reason"] = obs.status_reason
        elif obs.exists:
            new["status_reason"] = None
        new["status_updated_at"] = iso(now)
        message = "observed %s" % observed + (": %s" % new["status_reason"] if new.get("status_reason") else "")
    elif observed is not None and obs.status_reason is not None and not observed.endswith("_COMPLETE"):
        # a settled state keeps the reason it was reached with (an adopted cluster's "not
        # recovered: ..."): a stack's "Stack CREATE completed successfully" is no news
        new["status_reason"] = obs.status_reason
    if not obs.exists and observed is not None:
        # nothing of the cluster in the cloud, but something to say of its operation (a stack
        # missing during a create fails it; a grace keeps it in progress): its nodegroups say it too
        for ng in new.get("nodegroups") or []:
            seen = (obs.nodegroups or {}).get(ng["name"]) or {}
            if seen.get("status") is not None:
                ng["status"] = seen["status"]
                ng["status_reason"] = seen.get("status_reason")
    if obs.exists:
        for key in OBSERVED_KEYS:
            value = getattr(obs, key)
            new[key] = copy.deepcopy(value)
        runner_fault = (
            (record.get("faults") or {}).get(RUNNER_FAULT) if isinstance(record.get("faults"), dict) else None
        )
        if new.get("runner_failure") and runner_fault:
            # the cloud cannot show why the runner's driver failed: that stays until the next operation
            new["faults"] = dict(new["faults"] or {}, **{RUNNER_FAULT: runner_fault})
        # Magnum's https://ADDR:6443, whatever form a synchroniser gives (records are read in both)
        new["api_address"] = endpoint.api_url(new["api_address"])
        for key in OPTIONAL_OBSERVED_KEYS:
            value = getattr(obs, key)
            if value is not None:
                new[key] = copy.deepcopy(value)
        by_name = obs.nodegroups or {}
        for ng in new.get("nodegroups") or []:
            seen = by_name.get(ng["name"])
            if seen is None:
                continue
            for key, value in seen.items():
                if key == "node_count":  # the desired count stays; the observed one beside it
                    ng["observed_node_count"] = value
                elif key == "last_index":  # an index is never reused: it only grows (None: none used yet)
                    known = [i for i in (value, ng.get("last_index")) if i is not None]
                    ng["last_index"] = max(known) if known else None
                elif key == "status" and value is None:
                    continue  # nothing to say: the nodegroup keeps the status its last operation gave it
                elif key not in DESIRED_NODEGROUP_KEYS:  # an observation never rewrites the desired shape
                    ng[key] = copy.deepcopy(value)
    # stuck detection: an operation older than the cluster's timeout has failed
    if new["status"].endswith("_IN_PROGRESS"):
        since = parse_iso(new.get("status_updated_at") or record.get("updated_at"))
        timeout = new.get("timeout") or 3600
        if since is not None and now - since > timeout:
            failed = _prefix(new["status"]) + "_FAILED"
            new["status_reason"] = "timed out: %s for %d s, longer than the cluster's timeout of %d s" % (
                new["status"],
                now - since,
                timeout,
            )
            new["status"] = failed
            new["status_updated_at"] = iso(now)
            message = new["status_reason"]
            for ng in new.get("nodegroups") or []:
                if (ng.get("status") or "").endswith("_IN_PROGRESS"):
                    ng["status"] = _prefix(ng["status"]) + "_FAILED"
                    ng["status_reason"] = new["status_reason"]
    return new, message


MAX_REASON = 4000


def fail_in_progress(record, reason, now):
    """The record after the runner's driver failed and the cloud shows no work on the cluster.

    ``(new_record, message)``, or ``(record, None)`` unless the record is
    ``*_IN_PROGRESS``. The status becomes the matching ``*_FAILED`` (nodegroups
    in progress too) with ``reason`` (the failed task's message) as
    ``status_reason`` and as ``faults["driver"]``, and ``runner_failure`` is set: the cloud did not fail the
    operation, so re-running it unchanged stays allowed (check_transition), as
    resuming it was while it was recorded in progress.
    """
    status = record["status"]
    if not status.endswith("_IN_PROGRESS"):
        return record, None
    reason = str(reason or "").strip() or "the driver failed"
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 3] + "..."
    new = copy.deepcopy(record)
    failed = _prefix(status) + "_FAILED"
    for ng in new.get("nodegroups") or []:
        if (ng.get("status") or "").endswith("_IN_PROGRESS"):
            ng["status"] = _prefix(ng["status"]) + "_FAILED"
    # the words the driver got from the cloud (an Octavia or Nova quota refusal, a 4xx/5xx) are the
    # operation's fault too, as a failed resource's are; kept while the runner's failure stands
    faults = dict(new["faults"]) if isinstance(new.get("faults"), dict) else {}
    faults[RUNNER_FAULT] = reason
    new.update(status=failed, status_reason=reason, status_updated_at=iso(now), runner_failure=True, faults=faults)
    operation = record.get("operation")
    return new, "%s failed in the runner, the cloud shows no work on the cluster: %s" % (operation, reason)
