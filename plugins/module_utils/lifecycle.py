# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster lifecycle: the state-machine table, validation, and planning.

Everything that decides whether an operation is allowed lives in ``TABLE``
(docs/state-machine.md draws it). ``plan(desired, record)`` says which
operation a desired spec needs (create, update, upgrade, delete or none),
with the node additions and removals per nodegroup; ``apply_plan`` makes the
record to write; ``merge_observation`` folds what a synchroniser saw into a
record (with stuck detection).

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import copy
import math
import re

from ansible_collections.coe.openstack.plugins.module_utils import bootstrap
from ansible_collections.coe.openstack.plugins.module_utils.errors import StateError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso, parse_iso

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


# -- validation -----------------------------------------------------------------------

# a DNS label starting with a letter: a cluster name becomes host names and a Heat stack
# name (which must start with a letter); nothing Jinja or YAML could read as syntax
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_NAME = 63
MAX_MASTER_COUNT = 7
MAX_NODE_COUNT = 1000
MAX_TIMEOUT = 7 * 24 * 3600
MIN_TIMEOUT = 60
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,251}[A-Za-z0-9])?$")
JINJA_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")
MASTER_NODEGROUP = "default-master"
WORKER_NODEGROUP = "default-worker"
DRIVERS = ("heat", "nova")


def validate_name(field, value):
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValidationError(
            field,
            "%r is not a DNS label: lowercase letters, digits and '-', starting with a letter, "
            "not ending with '-', at most %d characters" % (value, MAX_NAME),
        )
    return value


def validate_int(field, value, minimum, maximum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, "must be an integer, got %r" % (value,))
    if value < minimum or value > maximum:
        raise ValidationError(field, "must be between %d and %d, got %d" % (minimum, maximum, value))
    return value


def validate_master_count(value, field="master_count"):
    validate_int(field, value, 1, MAX_MASTER_COUNT)
    if value % 2 == 0:
        raise ValidationError(field, "must be odd (etcd needs a majority), got %d" % value)
    return value


def validate_labels(field, labels):
    """Labels are a dict of string to string, without template markers."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise ValidationError(field, "must be a dict of string to string, got %s" % type(labels).__name__)
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_RE.match(key):
            raise ValidationError(field, "label name %r must be letters, digits, '_', '.', '-', '/'" % (key,))
        if not isinstance(value, str):
            raise ValidationError(
                field, "label %r must be a string, got %s %r (quote it)" % (key, type(value).__name__, value)
            )
        if any(m in value or m in key for m in JINJA_MARKERS):
            raise ValidationError(field, "label %r contains a template marker ({{ }}, {%% %%}, {# #})" % key)
        if len(value) > 1024:
            raise ValidationError(field, "label %r is longer than 1024 characters" % key)
    return dict(labels)


def validate_timeout(value, field="timeout"):
    return validate_int(field, value, MIN_TIMEOUT, MAX_TIMEOUT)


def validate_nodegroups(nodegroups, field="nodegroups"):
    """Extra worker nodegroups: ``[{name, node_count, flavor_id, image_id, labels, min/max_node_count}]``."""
    if nodegroups is None:
        return None
    if not isinstance(nodegroups, list):
        raise ValidationError(field, "must be a list of nodegroups")
    seen = set()
    result = []
    for i, ng in enumerate(nodegroups):
        where = "%s[%d]" % (field, i)
        if not isinstance(ng, dict):
            raise ValidationError(where, "must be a dict")
        unknown = set(ng) - {
            "name",
            "node_count",
            "flavor_id",
            "image_id",
            "labels",
            "min_node_count",
            "max_node_count",
        }
        if unknown:
            raise ValidationError(where, "unknown key(s) %s" % ", ".join(sorted(unknown)))
        name = validate_name("%s.name" % where, ng.get("name"))
        if name in (MASTER_NODEGROUP, WORKER_NODEGROUP) or name in seen:
            raise ValidationError("%s.name" % where, "nodegroup %r is given twice or is a default nodegroup" % name)
        seen.add(name)
        count = ng.get("node_count", 1)
        validate_int("%s.node_count" % where, count, 0, MAX_NODE_COUNT)
        low, high = ng.get("min_node_count"), ng.get("max_node_count")
        if low is not None:
            validate_int("%s.min_node_count" % where, low, 0, MAX_NODE_COUNT)
        if high is not None:
            validate_int("%s.max_node_count" % where, high, 0, MAX_NODE_COUNT)
        if (low is not None and count < low) or (high is not None and count > high):
            raise ValidationError(
                "%s.node_count" % where, "%d is outside min_node_count/max_node_count (%s..%s)" % (count, low, high)
            )
        for key in ("flavor_id", "image_id"):
            if ng.get(key) is not None and (not isinstance(ng[key], str) or not ng[key].strip()):
                raise ValidationError("%s.%s" % (where, key), "must be a non-empty string")
        result.append(
            dict(
                name=name,
                node_count=count,
                flavor_id=ng.get("flavor_id"),
                image_id=ng.get("image_id"),
                labels=validate_labels("%s.labels" % where, ng.get("labels")),
                min_node_count=low,
                max_node_count=high,
            )
        )
    return result


def check_node_names(cluster_name, nodegroups):
    """The longest host name a nodegroup can produce must stay a DNS label (<= 63)."""
    for ng in nodegroups:
        part = "master" if ng["role"] == "master" else ng["name"]
        longest = "%s-%s-%d" % (cluster_name, part, max(ng["node_count"], 1) * 10)
        if len(longest) > MAX_NAME:
            raise ValidationError(
                "name",
                "node host names like %r would be longer than %d characters; use a shorter cluster or "
                "nodegroup name" % (longest, MAX_NAME),
            )


# -- templates --------------------------------------------------------------------

# Magnum's ClusterTemplate fields (with openstack.cloud's option names) plus ours.
TEMPLATE_FIELDS = dict(
    coe=str,
    coe_version=str,
    description=str,
    dns_nameserver=str,
    docker_storage_driver=str,
    docker_volume_size=int,
    driver=str,
    external_network_id=str,
    fixed_network=str,
    fixed_subnet=str,
    flavor_id=str,
    floating_ip_enabled=bool,
    http_proxy=str,
    https_proxy=str,
    image_id=str,
    insecure_registry=str,
    is_public=bool,
    keypair_id=str,
    labels=dict,
    master_flavor_id=str,
    master_lb_enabled=bool,
    master_server_group_policy=str,
    network_driver=str,
    no_proxy=str,
    registry_enabled=bool,
    server_type=str,
    tls_disabled=bool,
    volume_driver=str,
    worker_server_group_policy=str,
)
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")
TEMPLATE_CHOICES = dict(
    coe=("kubernetes",),
    driver=DRIVERS,
    server_type=("vm",),
    network_driver=("flannel", "calico"),
    volume_driver=("cinder",),
    master_server_group_policy=SERVER_GROUP_POLICIES,
    worker_server_group_policy=SERVER_GROUP_POLICIES,
)
TEMPLATE_REQUIRED = ("driver", "image_id")


def normalise_template_spec(params):
    """A template spec from options: None dropped, types and choices checked.

    Two specs that mean the same normalise to the same dict (and hash).
    """
    unknown = set(params) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], "is not a cluster template field")
    spec = {}
    for key, kind in TEMPLATE_FIELDS.items():
        value = params.get(key)
        if value is None:
            continue
        if key == "labels":
            value = validate_labels("labels", value)
            if not value:
                continue
        elif kind is int:
            validate_int(key, value, 1, 16384)
        elif not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise ValidationError(key, "must be a %s, got %r" % (kind.__name__, value))
        elif kind is str:
            value = value.strip()
            if not value:
                raise ValidationError(key, "must not be empty")
            if any(m in value for m in JINJA_MARKERS):
                raise ValidationError(key, "contains a template marker")
        if key in TEMPLATE_CHOICES and value not in TEMPLATE_CHOICES[key]:
            raise ValidationError(key, "must be one of %s, got %r" % (", ".join(TEMPLATE_CHOICES[key]), value))
        spec[key] = value
    spec.setdefault("coe", "kubernetes")
    for key in TEMPLATE_REQUIRED:
        if key not in spec:
            raise ValidationError(key, "is required for a cluster template")
    field, version = coe_version_of(spec)
    if field is None:
        raise ValidationError(
            "coe_version",
            "is required for a cluster template: the Kubernetes version its nodes run, like v1.31.2 "
            "(Magnum's label kube_tag is read when coe_version is not given)",
        )
    validate_coe_version(field, version)
    return spec


def coe_version_of(spec, labels=None):
    """``(field, version)``: the Kubernetes version clusters of a template spec run.

    ``coe_version``, else the ``kube_tag`` label (Magnum's way; both drivers read
    it so). ``labels``: the cluster's effective labels (the template's with the
    cluster's over them); the template's labels when None. ``(None, None)`` when
    neither says.
    """
    if spec.get("coe_version"):
        return "coe_version", spec["coe_version"]
    labels = spec.get("labels") or {} if labels is None else labels
    if labels.get("kube_tag"):
        return "labels.kube_tag", labels["kube_tag"]
    return None, None


def validate_coe_version(field, version):
    """ValidationError naming ``field`` unless ``version`` is a Kubernetes version the bootstrap supports."""
    if version is None or not str(version).strip():
        raise ValidationError(field, "must not be empty: the Kubernetes version the nodes run, like v1.31.2")
    try:
        bootstrap.kubeadm_api_version(version)
    except ValidationError as e:
        reason = e.reason
        if "older than" not in reason:
            reason += " (supported: v%d.%d and newer)" % bootstrap.MIN_VERSION
        raise ValidationError(field, reason) from None
    return version


def check_template_version(template, cluster_labels=None):
    """Refuse to build or upgrade a cluster on a template version without a usable Kubernetes version.

    Templates stored before ``coe_version`` was required can lack it. The
    cluster's own ``labels`` (``cluster_labels``) may give ``kube_tag``, as the
    drivers read it. Raises ValidationError naming ``labels`` when the version
    comes from the cluster's labels, else ``cluster_template``.
    """
    spec = template["spec"]
    labels = dict(spec.get("labels") or {})
    labels.update(cluster_labels or {})
    field, version = coe_version_of(spec, labels)
    where = "cluster template '%s' version %d" % (template["name"], template["version"])
    if field is None:
        raise ValidationError(
            "cluster_template",
            "%s has no coe_version (nor a kube_tag label): the version its nodes would run is unknown; "
            "store a new version of the template with coe_version, or pass labels.kube_tag" % where,
        )
    own = field == "labels.kube_tag" and (cluster_labels or {}).get("kube_tag")
    try:
        validate_coe_version(field, version)
    except ValidationError as e:
        if own:
            raise ValidationError("labels", "kube_tag: %s" % e.reason) from None
        raise ValidationError("cluster_template", "%s: %s %s" % (where, field, e.reason)) from None
    return version


# -- desired state ----------------------------------------------------------------------

DESIRED_KEYS = (
    "flavor_id",
    "keypair",
    "labels",
    "master_count",
    "master_flavor_id",
    "node_count",
    "nodegroups",
    "timeout",
    "upgrade_batch_size",
)


def validate_desired(desired):
    """Check a desired spec (a dict of the cluster module's options) before anything else."""
    validate_name("name", desired.get("name"))
    if desired.get("template_name") is not None:
        validate_name("cluster_template", desired["template_name"])
    if desired.get("template_version") is not None:
        validate_int("cluster_template_version", desired["template_version"], 1, 10**9)
    if desired.get("master_count") is not None:
        validate_master_count(desired["master_count"])
    if desired.get("node_count") is not None:
        validate_int("node_count", desired["node_count"], 0, MAX_NODE_COUNT)
    if desired.get("timeout") is not None:
        validate_timeout(desired["timeout"])
    if desired.get("upgrade_batch_size") is not None:
        validate_int("upgrade_batch_size", desired["upgrade_batch_size"], 1, MAX_NODE_COUNT)
    if desired.get("labels") is not None:
        desired["labels"] = validate_labels("labels", desired["labels"])
    if desired.get("nodegroups") is not None:
        desired["nodegroups"] = validate_nodegroups(desired["nodegroups"])
    for key in ("keypair", "flavor_id", "master_flavor_id"):
        value = desired.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValidationError(key, "must be a non-empty string")
    remove = desired.get("nodes_to_remove") or []
    if not isinstance(remove, list) or not all(isinstance(n, str) and n for n in remove):
        raise ValidationError("nodes_to_remove", "must be a list of node names")
    if len(set(remove)) != len(remove):
        raise ValidationError("nodes_to_remove", "names a node twice")
    return desired


def _effective(record_overrides, template_spec):
    """Flavors, image, keypair and labels from the cluster's overrides over the template."""
    labels = dict(template_spec.get("labels") or {})
    labels.update(record_overrides.get("labels") or {})
    flavor = record_overrides.get("flavor_id") or template_spec.get("flavor_id")
    return dict(
        flavor_id=flavor,
        master_flavor_id=record_overrides.get("master_flavor_id") or template_spec.get("master_flavor_id") or flavor,
        image_id=template_spec.get("image_id"),
        keypair=record_overrides.get("keypair") or template_spec.get("keypair_id"),
        labels=labels,
        coe_version=coe_version_of(template_spec, labels)[1],
    )


def _nodegroup_entry(name, role, node_count, flavor_id, image_id, labels, low=None, high=None, old=None):
    entry = dict(
        name=name,
        role=role,
        node_count=node_count,
        flavor_id=flavor_id,
        image_id=image_id,
        labels=labels,
        min_node_count=low,
        max_node_count=high,
        status=None,
        status_reason=None,
        node_addresses=[],
        nodes=[],
    )
    if old:  # keep what was observed
        for key, value in old.items():
            if key not in entry or key in ("status", "status_reason", "node_addresses", "nodes"):
                entry[key] = value
    return entry


def desired_record(desired, template, record=None):
    """The record's desired part for ``desired`` (options; None = keep) on ``template``."""
    base = record or {}
    overrides = dict(base.get("overrides") or {})
    for key in ("flavor_id", "master_flavor_id", "keypair", "labels"):
        if desired.get(key) is not None:
            overrides[key] = desired[key]
    spec = template["spec"]
    eff = _effective(overrides, spec)
    if not eff["flavor_id"]:
        raise ValidationError(
            "flavor_id", "no flavor: give flavor_id or set flavor_id in template %s" % (template["name"])
        )
    master_count = desired.get("master_count")
    if master_count is None:
        master_count = base.get("master_count", 1)
    node_count = desired.get("node_count")
    if node_count is None:
        node_count = base.get("node_count", 1)
    old_groups = {ng["name"]: ng for ng in base.get("nodegroups") or []}
    extra = desired.get("nodegroups")
    if extra is None:  # keep the recorded extra nodegroups
        extra = [
            dict(
                name=ng["name"],
                node_count=ng["node_count"],
                flavor_id=ng.get("own_flavor_id"),
                image_id=ng.get("own_image_id"),
                labels=ng.get("own_labels") or {},
                min_node_count=ng.get("min_node_count"),
                max_node_count=ng.get("max_node_count"),
            )
            for ng in base.get("nodegroups") or []
            if ng["name"] not in (MASTER_NODEGROUP, WORKER_NODEGROUP)
        ]
    groups = [
        _nodegroup_entry(
            MASTER_NODEGROUP,
            "master",
            master_count,
            eff["master_flavor_id"],
            eff["image_id"],
            eff["labels"],
            old=old_groups.get(MASTER_NODEGROUP),
        ),
        _nodegroup_entry(
            WORKER_NODEGROUP,
            "worker",
            node_count,
            eff["flavor_id"],
            eff["image_id"],
            eff["labels"],
            old=old_groups.get(WORKER_NODEGROUP),
        ),
    ]
    for ng in extra:
        labels = dict(eff["labels"])
        labels.update(ng.get("labels") or {})
        entry = _nodegroup_entry(
            ng["name"],
            "worker",
            ng["node_count"],
            ng.get("flavor_id") or eff["flavor_id"],
            ng.get("image_id") or eff["image_id"],
            labels,
            ng.get("min_node_count"),
            ng.get("max_node_count"),
            old=old_groups.get(ng["name"]),
        )
        entry.update(
            own_flavor_id=ng.get("flavor_id"), own_image_id=ng.get("image_id"), own_labels=ng.get("labels") or {}
        )
        groups.append(entry)
    check_node_names(desired["name"], groups)
    timeout = desired.get("timeout") or base.get("timeout") or 3600
    return dict(
        name=desired["name"],
        project_id=desired["project_id"],
        driver=spec["driver"],
        cluster_template_id=template["uuid"],
        cluster_template_name=template["name"],
        template_version=template["version"],
        template=copy.deepcopy(spec),
        master_count=master_count,
        node_count=node_count,
        nodegroups=groups,
        overrides=overrides,
        flavor_id=eff["flavor_id"],
        master_flavor_id=eff["master_flavor_id"],
        image_id=eff["image_id"],
        keypair=eff["keypair"],
        labels=eff["labels"],
        coe_version=eff["coe_version"] or base.get("coe_version"),
        # Magnum's cluster carries these template fields too
        fixed_network=spec.get("fixed_network"),
        fixed_subnet=spec.get("fixed_subnet"),
        floating_ip_enabled=spec.get("floating_ip_enabled"),
        master_lb_enabled=spec.get("master_lb_enabled"),
        docker_volume_size=spec.get("docker_volume_size"),
        timeout=timeout,
        create_timeout=math.ceil(timeout / 60.0),
        upgrade_batch_size=desired.get("upgrade_batch_size") or base.get("upgrade_batch_size") or 1,
    )


# the parts of the desired record whose change is an update/resize, and those that are an upgrade
_SHAPE_KEYS = ("flavor_id", "master_flavor_id", "image_id", "keypair")


def _group_shape(ng):
    return {
        k: ng.get(k) for k in ("name", "role", "flavor_id", "image_id", "labels", "min_node_count", "max_node_count")
    }


def _observed_nodes(record):
    """{node name: nodegroup name} of the nodes the last sync saw."""
    names = {}
    for ng in record.get("nodegroups") or []:
        for node in ng.get("nodes") or []:
            if node.get("name"):
                names[node["name"]] = ng["name"]
    return names


def _broken_nodes(record):
    """Names of the nodes the last sync found missing from the cloud or in ERROR."""
    return sorted(
        node["name"]
        for ng in record.get("nodegroups") or []
        for node in ng.get("nodes") or []
        if node.get("name") and node.get("status") in ("MISSING", "ERROR")
    )


def observes_before_planning(record, state):
    """Whether the plan for ``record`` must be made on what the cloud has now.

    Only a settled record can be stale in a way that changes the plan: a
    ``*_COMPLETE`` or ``*_FAILED`` cluster whose nodes went missing or into
    ERROR behind our back (a repair), or whose failure the cloud has since
    converged from. Nothing to observe for a create (no record), a delete (it is
    planned whatever the cloud has), an operation in progress (it is resumed:
    the driver converges the cloud and the wait loop observes it), a cluster
    being deleted, or a failed create the cloud never saw a node of.
    """
    if record is None or state == "absent":
        return False
    status = record.get("status") or ""
    if status.endswith("_IN_PROGRESS") or status.startswith("DELETE_"):
        return False
    never_seen = status == CREATE_FAILED and not record.get("stack_id") and not _observed_nodes(record)
    return not never_seen


def plan(desired, record, template):
    """Which operation ``desired`` needs, given ``record`` (None if absent) and ``template``.

    ``desired``: validated options (``validate_desired``) plus ``state``;
    ``template``: the store's template version (the desired one, or for delete
    any). Returns a dict: ``operation`` (create, update, upgrade, delete, none),
    ``action`` (the table action or None), ``retry`` (re-running the recorded
    operation), ``changes`` ([{field, before, after}]), ``nodegroups`` ({name:
    {before, after, add, remove}}), ``nodes_to_remove``, ``from_version``,
    ``to_version``, ``from_template``, ``to_template`` and ``desired`` (the
    record's new desired part, None for delete/none). The state machine is
    checked separately (check_transition) so that callers can name the lock.
    """
    result = dict(
        operation="none",
        action=None,
        retry=False,
        changes=[],
        nodegroups={},
        nodes_to_remove=[],
        from_version=None,
        to_version=None,
        from_template=None,
        to_template=None,
        desired=None,
    )
    if desired.get("state") == "absent":
        if record is not None:
            retry = record.get("operation") == "delete"
            result.update(
                operation="delete",
                action="delete",
                retry=retry,
                changes=[] if retry else [dict(field="state", before="present", after="absent")],
            )
        return result

    new = desired_record(desired, template, record)
    result["desired"] = new
    result.update(to_version=new["template_version"], to_template=new["cluster_template_name"])
    if record is None:
        result.update(operation="create", action="create", from_version=None)
        for ng in new["nodegroups"]:
            result["nodegroups"][ng["name"]] = dict(before=0, after=ng["node_count"], add=ng["node_count"], remove=[])
        result["changes"] = [dict(field="state", before="absent", after="present")]
        return result

    result.update(from_version=record["template_version"], from_template=record["cluster_template_name"])
    if new["driver"] != record["driver"]:
        raise ValidationError(
            "cluster_template",
            "template %s version %d uses driver %s; cluster %s was built with %s and cannot change driver"
            % (template["name"], template["version"], new["driver"], record["name"], record["driver"]),
        )
    if new["master_count"] != record["master_count"]:
        raise ValidationError(
            "master_count",
            "cannot change on an existing cluster (%d -> %d); create a new cluster"
            % (record["master_count"], new["master_count"]),
        )
    upgrade = (new["template_version"], new["cluster_template_name"]) != (
        record["template_version"],
        record["cluster_template_name"],
    )
    changes = []
    if upgrade:
        changes.append(
            dict(
                field="template",
                before="%s v%s" % (record["cluster_template_name"], record["template_version"]),
                after="%s v%s" % (new["cluster_template_name"], new["template_version"]),
            )
        )
    else:
        for key in _SHAPE_KEYS:
            if new.get(key) != record.get(key):
                raise ValidationError(
                    key,
                    "cannot change on an existing cluster (%r -> %r): node shapes change through a new "
                    "template version (upgrade), which replaces nodes in batches" % (record.get(key), new.get(key)),
                )
    if new["labels"] != record.get("labels") and not upgrade:
        changes.append(dict(field="labels", before=record.get("labels"), after=new["labels"]))
    old_groups = {ng["name"]: ng for ng in record.get("nodegroups") or []}
    new_groups = {ng["name"]: ng for ng in new["nodegroups"]}
    structural = bool(changes and not upgrade)
    for name in sorted(set(old_groups) | set(new_groups)):
        old, cur = old_groups.get(name), new_groups.get(name)
        if old is None or cur is None:
            structural = True
            changes.append(dict(field="nodegroups", before=name if old else None, after=name if cur else None))
            result["nodegroups"][name] = dict(
                before=old["node_count"] if old else 0,
                after=cur["node_count"] if cur else 0,
                add=cur["node_count"] if cur else 0,
                remove=[],
            )
            continue
        if not upgrade and _group_shape(old) != _group_shape(cur):
            for key in ("flavor_id", "image_id"):
                if old.get(key) != cur.get(key):
                    raise ValidationError(
                        "nodegroups",
                        "nodegroup %s: %s cannot change on an existing nodegroup (%r -> %r)"
                        % (name, key, old.get(key), cur.get(key)),
                    )
            structural = True
            changes.append(dict(field="nodegroups.%s" % name, before=_group_shape(old), after=_group_shape(cur)))
        if old["node_count"] != cur["node_count"]:
            changes.append(
                dict(field="nodegroups.%s.node_count" % name, before=old["node_count"], after=cur["node_count"])
            )
        result["nodegroups"][name] = dict(
            before=old["node_count"],
            after=cur["node_count"],
            add=max(cur["node_count"] - old["node_count"], 0),
            remove=[],
        )

    # nodes named for removal: known to the last sync, not masters, and within the decrease
    removed_before = set(record.get("removed_nodes") or [])
    observed = _observed_nodes(record)
    new_removals = []
    for node in desired.get("nodes_to_remove") or []:
        if node in removed_before:
            continue  # asked and recorded before: re-running the same play changes nothing
        group = observed.get(node)
        if group is None:
            raise ValidationError(
                "nodes_to_remove",
                "node %r does not exist in cluster %s (known nodes: %s)"
                % (node, record["name"], ", ".join(sorted(observed)) or "none; run cluster_sync first"),
            )
        if old_groups.get(group, {}).get("role") == "master":
            raise ValidationError("nodes_to_remove", "node %r is a master; masters cannot be removed" % node)
        new_removals.append((node, group))
    for name in {g for n, g in new_removals}:
        named = [n for n, g in new_removals if g == name]
        entry = result["nodegroups"].get(name)
        decrease = entry["before"] - entry["after"] if entry else 0
        if len(named) > decrease:
            raise ValidationError(
                "nodes_to_remove",
                "%d node(s) of nodegroup %s named for removal but its node_count drops by %d (%s)"
                % (len(named), name, decrease, ", ".join(named)),
            )
        entry["remove"] = named
    result["nodes_to_remove"] = [n for n, g in new_removals]
    settings = [
        dict(field=key, before=record.get(key), after=new[key])
        for key in ("timeout", "upgrade_batch_size")
        if new[key] != record.get(key)
    ]
    if settings and not changes and not new_removals:
        # settings alone (how long an operation may take, how many nodes an upgrade replaces
        # at once) are recorded without running anything
        result.update(operation="none", action=None, changes=settings)
        return result

    if upgrade:
        others = [c for c in changes if c["field"] != "template"]
        if others:
            raise ValidationError(
                "cluster_template_version",
                "an upgrade must change only the template (version); this run also changes %s: "
                "run those changes separately" % ", ".join(c["field"] for c in others),
            )
        result.update(operation="upgrade", action="upgrade", changes=changes)
        return result
    if changes:
        action = "update" if structural else "resize"
        result.update(operation="update", action=action, changes=changes)
        return result
    # nothing new: a re-run. Pick up an operation in progress or failed; repair a complete
    # cluster whose last sync found nodes missing or in ERROR (drift); else nothing to do.
    status = record["status"]
    broken = _broken_nodes(record)
    if broken and status in (CREATE_COMPLETE, UPDATE_COMPLETE):
        result.update(
            operation="update",
            action="resize",
            changes=[dict(field="repair", before=broken, after="replaced")],
            nodegroups={
                ng["name"]: dict(before=ng["node_count"], after=ng["node_count"], add=0, remove=[])
                for ng in record.get("nodegroups") or []
            },
        )
        return result
    if status.endswith("_IN_PROGRESS") or status.endswith("_FAILED"):
        action = _action_of_record(record)
        if action in ACTIONS:
            last = record.get("plan") or {}
            result.update(
                operation=OPERATION_OF_ACTION[action],
                action=action,
                retry=True,
                nodegroups=last.get("nodegroups") or {},
                nodes_to_remove=last.get("nodes_to_remove") or [],
                from_version=last.get("from_version", result["from_version"]),
                to_version=last.get("to_version", result["to_version"]),
            )
    return result


def public_plan(p):
    """The plan as returned to users (without the internal desired record)."""
    return {k: v for k, v in p.items() if k != "desired"}


def apply_plan(record, p, now):
    """The record to write for plan ``p`` (record None for a create). Status moves to *_IN_PROGRESS."""
    new = copy.deepcopy(record) if record else {}
    if p["desired"] is not None:
        new.update(copy.deepcopy(p["desired"]))
    if p["action"] is None:
        return new
    if record is None:
        new.update(
            status=None,
            status_reason=None,
            health_status="UNKNOWN",
            health_status_reason={},
            api_address=None,
            master_addresses=[],
            node_addresses=[],
            stack_id=None,
            faults={},
            removed_nodes=[],
        )
    new["status"] = IN_PROGRESS_OF_ACTION[p["action"]]
    new.pop("runner_failure", None)
    new["status_reason"] = "%s%s requested" % (p["operation"], " (retry)" if p["retry"] and record else "")
    new["operation"] = p["operation"]
    new["status_updated_at"] = iso(now)
    if not (p["retry"] and record):
        new["plan"] = public_plan(p)
        if p["action"] == "upgrade":
            new["previous_template_version"] = record["template_version"]
        removed = list(new.get("removed_nodes") or [])
        removed.extend(n for n in p["nodes_to_remove"] if n not in removed)
        new["removed_nodes"] = removed
    return new


def diff_view(record):
    """The desired part of a record, for --diff."""
    if record is None:
        return {}
    keys = (
        "name",
        "cluster_template_name",
        "template_version",
        "driver",
        "master_count",
        "node_count",
        "flavor_id",
        "master_flavor_id",
        "image_id",
        "keypair",
        "labels",
        "timeout",
        "upgrade_batch_size",
    )
    view = {k: record.get(k) for k in keys}
    view["nodegroups"] = {ng["name"]: ng["node_count"] for ng in record.get("nodegroups") or []}
    return view


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
OPTIONAL_OBSERVED_KEYS = ("stack_id", "coe_version", "health_status", "health_status_reason")


def _prefix(status):
    return status.split("_", 1)[0] if status else status


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
        new["health_status"] = "UNHEALTHY"
        new["health_status_reason"] = {"cluster": "nothing of the cluster exists in the cloud"}
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
    elif observed is not None and obs.status_reason is not None:
        new["status_reason"] = obs.status_reason
    if obs.exists:
        for key in OBSERVED_KEYS:
            value = getattr(obs, key)
            new[key] = copy.deepcopy(value)
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
                elif key == "last_index":  # an index is never reused: it only grows
                    ng["last_index"] = max(value or 0, ng.get("last_index") or 0)
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
    return new, message


MAX_REASON = 4000


def fail_in_progress(record, reason, now):
    """The record after the runner's driver failed and the cloud shows no work on the cluster.

    ``(new_record, message)``, or ``(record, None)`` unless the record is
    ``*_IN_PROGRESS``. The status becomes the matching ``*_FAILED`` (nodegroups
    in progress too) with ``reason`` (the failed task's message) as
    ``status_reason``, and ``runner_failure`` is set: the cloud did not fail the
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
    new.update(status=failed, status_reason=reason, status_updated_at=iso(now), runner_failure=True)
    operation = record.get("operation")
    return new, "%s failed in the runner, the cloud shows no work on the cluster: %s" % (operation, reason)
