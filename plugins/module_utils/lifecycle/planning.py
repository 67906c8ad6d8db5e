# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Planning: the desired record of a cluster, which operation it needs (create, update,
upgrade, delete or none) with the node additions and removals per nodegroup, and the
record to write (``apply_plan``).

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import copy
import math

from ansible_collections.coe.openstack.plugins.module_utils import endpoint
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.states import (
    ACTIONS,
    CREATE_COMPLETE,
    CREATE_FAILED,
    IN_PROGRESS_OF_ACTION,
    OPERATION_OF_ACTION,
    UPDATE_COMPLETE,
    _action_of_record,
)
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.validate import (
    MASTER_NODEGROUP,
    MAX_NODE_COUNT,
    WORKER_NODEGROUP,
    check_node_names,
    coe_version_of,
    validate_int,
    validate_labels,
    validate_master_count,
    validate_name,
    validate_nodegroups,
    validate_timeout,
)
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso

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
    api_endpoint = recorded_endpoint(record, spec, master_count)
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
        # whether the API is a floating IP: decided once, at create (endpoint.api_floating_ip,
        # Magnum's rule); another endpoint later would be in no certificate and no kubeconfig
        floating_ip_enabled=(
            base["floating_ip_enabled"] if "floating_ip_enabled" in base else endpoint.api_floating_ip(spec)[0]
        ),
        # what carries the API (endpoint.endpoint_kind: a load balancer, a VIP or the single
        # master): decided once, at create, for the same reason; a record written before the
        # rule keeps the single master's endpoint its certificates name
        api_endpoint=api_endpoint,
        master_lb_enabled=api_endpoint == endpoint.LOAD_BALANCER,
        docker_volume_size=spec.get("docker_volume_size"),
        timeout=timeout,
        create_timeout=math.ceil(timeout / 60.0),
        upgrade_batch_size=desired.get("upgrade_batch_size") or base.get("upgrade_batch_size") or 1,
    )


def recorded_endpoint(record, spec, master_count):
    """The record's ``api_endpoint`` (endpoint.endpoint_kind), decided at create and kept.

    A template version whose ``master_lb_enabled`` says otherwise than the cluster's
    endpoint is refused, naming the field: the endpoint cannot move under a running cluster.
    """
    if record is None:
        return endpoint.endpoint_kind(dict(spec, master_count=master_count), master_count)
    kind = record.get("api_endpoint") or endpoint.MASTER
    if record.get("api_endpoint") and "master_lb_enabled" in spec:
        wanted = endpoint.as_bool(spec.get("master_lb_enabled"))
        if wanted != (kind == endpoint.LOAD_BALANCER):
            raise ValidationError(
                "master_lb_enabled",
                "cluster %s has its API on %s; a template version with master_lb_enabled: %s cannot change it "
                "(the endpoint is in every certificate and kubeconfig): create a new cluster"
                % (record.get("name"), ENDPOINT_WORDS[kind], "true" if wanted else "false"),
            )
    return kind


#: How the messages and docs name each endpoint kind.
ENDPOINT_WORDS = {
    endpoint.LOAD_BALANCER: "a load balancer",
    endpoint.VIP: "a VIP",
    endpoint.MASTER: "its single master",
}


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


def empty_plan(**over):
    """A plan (see ``plan``) that changes nothing, with ``over``'s keys set."""
    return dict(
        dict(
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
        ),
        **over,
    )


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
    result = empty_plan()
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
