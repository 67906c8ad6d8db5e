# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster statuses and the state-machine table: which action is allowed from which status.

Everything that decides whether an operation is allowed lives in ``TABLE``
(docs/state-machine.md draws it; a unit test reads one from the other).

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.errors import StateError

# -- statuses -------------------------------------------------------------------

ABSENT = "ABSENT"  # pseudo-status: no record
CREATE_IN_PROGRESS, CREATE_FAILED, CREATE_COMPLETE = "CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE"
UPDATE_IN_PROGRESS, UPDATE_FAILED, UPDATE_COMPLETE = "UPDATE_IN_PROGRESS", "UPDATE_FAILED", "UPDATE_COMPLETE"
DELETE_IN_PROGRESS, DELETE_FAILED, DELETE_COMPLETE = "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE"
RESUME_COMPLETE, RESUME_FAILED, RESTORE_COMPLETE = "RESUME_COMPLETE", "RESUME_FAILED", "RESTORE_COMPLETE"
ROLLBACK_IN_PROGRESS, ROLLBACK_FAILED, ROLLBACK_COMPLETE = (
    "ROLLBACK_IN_PROGRESS",
    "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE",
)
SNAPSHOT_COMPLETE, CHECK_COMPLETE, ADOPT_COMPLETE = "SNAPSHOT_COMPLETE", "CHECK_COMPLETE", "ADOPT_COMPLETE"

# Magnum's cluster statuses (magnum/objects/fields.py ClusterStatus)
STATUSES = (
    CREATE_IN_PROGRESS,
    CREATE_FAILED,
    CREATE_COMPLETE,
    UPDATE_IN_PROGRESS,
    UPDATE_FAILED,
    UPDATE_COMPLETE,
    DELETE_IN_PROGRESS,
    DELETE_FAILED,
    DELETE_COMPLETE,
    RESUME_COMPLETE,
    RESUME_FAILED,
    RESTORE_COMPLETE,
    ROLLBACK_IN_PROGRESS,
    ROLLBACK_FAILED,
    ROLLBACK_COMPLETE,
    SNAPSHOT_COMPLETE,
    CHECK_COMPLETE,
    ADOPT_COMPLETE,
)
HEALTH_STATUSES = ("HEALTHY", "UNHEALTHY", "UNKNOWN")

# Table actions. ``update`` changes labels or the set of nodegroups; ``resize``
# changes only node counts or removes named nodes; both are the driver
# operation "update". ``upgrade`` moves to another template (version).
ACTIONS = ("create", "update", "resize", "upgrade", "delete")
OPERATION_OF_ACTION = dict(create="create", update="update", resize="update", upgrade="upgrade", delete="delete")
IN_PROGRESS_OF_ACTION = dict(
    create=CREATE_IN_PROGRESS,
    update=UPDATE_IN_PROGRESS,
    resize=UPDATE_IN_PROGRESS,
    upgrade=UPDATE_IN_PROGRESS,
    delete=DELETE_IN_PROGRESS,
)


def _prefix(status):
    """The action part of a status: ``UPDATE`` of ``UPDATE_IN_PROGRESS``."""
    return status.split("_", 1)[0] if status else status


# -- the state-machine table ---------------------------------------------------------
# Rules of a cell:
ALLOW = "allow"
DENY = "deny"
RESUME = "resume"  # only the operation already in progress, unchanged (a retried run picks it up)
RETRY_UPGRADE = "retry-upgrade"  # only retrying the failed upgrade, or rolling back to the version before it
UNLESS_DELETE_LOCKED = "unless-delete-locked"  # unless somebody else's live lock holds a delete

_COMPLETE_ROW = dict(create=DENY, update=ALLOW, resize=ALLOW, upgrade=ALLOW, delete=ALLOW)
_DELETE_ONLY = dict(create=DENY, update=DENY, resize=DENY, upgrade=DENY, delete=ALLOW)

TABLE = {
    ABSENT: dict(create=ALLOW, update=DENY, resize=DENY, upgrade=DENY, delete=DENY),
    CREATE_IN_PROGRESS: dict(create=RESUME, update=DENY, resize=DENY, upgrade=DENY, delete=ALLOW),
    CREATE_FAILED: dict(_DELETE_ONLY),
    CREATE_COMPLETE: dict(_COMPLETE_ROW),
    UPDATE_IN_PROGRESS: dict(create=DENY, update=RESUME, resize=RESUME, upgrade=RESUME, delete=ALLOW),
    UPDATE_FAILED: dict(create=DENY, update=DENY, resize=ALLOW, upgrade=RETRY_UPGRADE, delete=ALLOW),
    UPDATE_COMPLETE: dict(_COMPLETE_ROW),
    DELETE_IN_PROGRESS: dict(create=DENY, update=DENY, resize=DENY, upgrade=DENY, delete=UNLESS_DELETE_LOCKED),
    DELETE_FAILED: dict(_DELETE_ONLY),
    DELETE_COMPLETE: dict(_DELETE_ONLY),
    RESUME_COMPLETE: dict(_COMPLETE_ROW),
    RESUME_FAILED: dict(_DELETE_ONLY),
    RESTORE_COMPLETE: dict(_COMPLETE_ROW),
    ROLLBACK_IN_PROGRESS: dict(_DELETE_ONLY),
    ROLLBACK_FAILED: dict(_DELETE_ONLY),
    ROLLBACK_COMPLETE: dict(_COMPLETE_ROW),
    SNAPSHOT_COMPLETE: dict(_COMPLETE_ROW),
    CHECK_COMPLETE: dict(_COMPLETE_ROW),
    ADOPT_COMPLETE: dict(_COMPLETE_ROW),
}


def allowed_actions(status):
    """The actions not plainly denied from ``status`` (for messages)."""
    return [a for a in ACTIONS if TABLE.get(status, {}).get(a, DENY) != DENY]


def _holder_text(lock):
    if lock and lock.get("held"):
        return "; lock held by %s for %s until %s" % (lock["holder"], lock["operation"], lock["expires_at"])
    return "; not locked"


def check_transition(record, action, retry=False, target=None, lock=None, own_lock=False):
    """Raise StateError unless ``action`` is allowed on ``record`` now.

    ``retry``: the desired spec equals the recorded one (a re-run of the
    operation recorded in the record). ``target``: for an upgrade, the
    ``(template name, version)`` asked. ``lock``: the current lease view (locks.lease_view)
    and ``own_lock`` whether the caller holds it.
    """
    if action not in ACTIONS:
        raise ValueError("unknown action %r" % action)
    status = record["status"] if record else ABSENT
    name = record["name"] if record else "?"
    rule = TABLE.get(status, {}).get(action, DENY)
    recorded = (record or {}).get("operation")
    if rule == DENY and retry and _runner_failed(record, action):
        rule = RESUME  # the cloud never failed it: re-running it is allowed, as resuming it was
    why = None
    if rule == DENY:
        allowed = allowed_actions(status)
        why = "%s is not allowed from %s (allowed: %s)" % (action, status, ", ".join(allowed) or "nothing")
    elif rule == RESUME:
        if not retry or _action_of_record(record) != action:
            why = "%s is not allowed while %s is in progress (%s); only re-running that same operation is" % (
                action,
                recorded,
                status,
            )
    elif rule == RETRY_UPGRADE:
        last = (record or {}).get("plan") or {}
        if recorded != "upgrade":
            why = "upgrade from UPDATE_FAILED is allowed only after a failed upgrade (the failed operation was %s)" % (
                recorded
            )
        elif target is not None and tuple(target) not in (
            (last.get("to_template"), last.get("to_version")),
            (last.get("from_template"), last.get("from_version")),
        ):
            why = (
                "after the failed upgrade from %s version %s to %s version %s, only retrying it or rolling back "
                "is allowed, not %s version %s"
                % (
                    last.get("from_template"),
                    last.get("from_version"),
                    last.get("to_template"),
                    last.get("to_version"),
                    target[0],
                    target[1],
                )
            )
    elif rule == UNLESS_DELETE_LOCKED and _deleting_by_other(lock, own_lock):
        why = "the cluster is being deleted by %s" % lock["holder"]
    if why:
        raise StateError(
            "Cannot %s cluster '%s': its status is %s (last operation %s); %s%s"
            % (action, name, status, recorded or "none", why, _holder_text(lock)),
            status=status,
            operation=action,
            lock_holder=(lock or {}).get("holder") if (lock or {}).get("held") else None,
        )


def _runner_failed(record, action):
    """Whether ``record`` is the ``*_FAILED`` of ``action`` recorded after the runner's failure (fail_in_progress)."""
    if not record or not record.get("runner_failure") or not record["status"].endswith("_FAILED"):
        return False
    return _action_of_record(record) == action and _prefix(record["status"]) == _prefix(IN_PROGRESS_OF_ACTION[action])


def _deleting_by_other(lock, own_lock):
    return bool(lock and lock.get("held") and lock.get("operation") == "delete" and not own_lock)


def _action_of_record(record):
    """The table action of the operation recorded in ``record``."""
    op = record.get("operation")
    if op == "update":
        return ((record.get("plan") or {}).get("action")) or "update"
    return op
