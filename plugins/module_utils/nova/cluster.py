# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""From a cluster record to what the Nova driver creates.

Plain Python. ``nodegroups_from_record`` reads a cluster record (the
``cluster`` module's return, docs/internals.md) and gives the nodegroup
inputs of ``plan.desired_from_nodegroups``; ``bootstrap_node`` gives the
``node`` argument of ``bootstrap.render_user_data``.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.nova import naming


def record_identity(record):
    """``(uuid, name)`` of a record, checked."""
    uuid = (record or {}).get("uuid")
    name = (record or {}).get("name")
    if not naming.is_uuid(uuid or ""):
        raise ValidationError("cluster.uuid", "the cluster record needs its uuid, got %r" % (uuid,))
    if not naming.is_label(name or ""):
        raise ValidationError("cluster.name", "must be a DNS label (a-z, 0-9, '-'), got %r" % (name,))
    return uuid, name


def nodegroups_from_record(record, fixed_network=None):
    """The nodegroups of a record as planner input.

    A nodegroup's flavor and image default to the record's (``master_flavor_id``
    for masters, ``flavor_id`` for workers, ``image_id``); the record's
    ``keypair`` and ``fixed_network`` apply to every server. A record without
    ``nodegroups`` has ``default-master`` (``master_count``) and
    ``default-worker`` (``node_count``).
    """
    groups = record.get("nodegroups") or []
    if not groups:
        groups = [
            dict(name=naming.MASTER_NODEGROUP, role="master", node_count=record.get("master_count", 1)),
            dict(name=naming.WORKER_NODEGROUP, role="worker", node_count=record.get("node_count", 1)),
        ]
    network = fixed_network or record.get("fixed_network")
    result = []
    for i, group in enumerate(groups):
        role = group.get("role") or ("master" if group.get("name") == naming.MASTER_NODEGROUP else "worker")
        if role == "master":
            flavor = group.get("flavor_id") or record.get("master_flavor_id") or record.get("flavor_id")
        else:
            flavor = group.get("flavor_id") or record.get("flavor_id")
        count = group.get("node_count")
        if count is None:
            count = record.get("master_count" if role == "master" else "node_count")
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValidationError("cluster.nodegroups[%d].node_count" % i, "must be an integer, got %r" % (count,))
        entry = dict(
            name=group.get("name"),
            role=role,
            count=count,
            flavor=flavor,
            image=group.get("image_id") or record.get("image_id"),
            keypair=record.get("keypair") or None,
            nodes=[n["name"] if isinstance(n, dict) else n for n in group.get("nodes") or ()],
            last_index=group.get("last_index") or 0,
        )
        if network:
            entry["networks"] = [{"network": network}]
        result.append(entry)
    return result


def bootstrap_record(record, placeholder_api_address=None):
    """The record as the user-data renderer needs it.

    ``coe_version`` falls back to the ``kube_tag`` label (Magnum's way, and the
    Heat driver's). With ``placeholder_api_address`` (check mode, before the
    floating IP exists) a missing ``api_address`` is replaced so that the other
    inputs can be checked.
    """
    record = dict(record)
    if not record.get("coe_version"):
        record["coe_version"] = (record.get("labels") or {}).get("kube_tag")
    if placeholder_api_address and not record.get("api_address"):
        record["api_address"] = placeholder_api_address
    return record


def bootstrap_node(spec, first_master):
    """The ``node`` argument of bootstrap.render_user_data for a spec."""
    return dict(
        name=spec["name"],
        role=spec["role"],
        nodegroup=spec["nodegroup"],
        index=spec.get("index"),
        first_master=bool(first_master),
    )


def first_master_name(specs, views):
    """The master that initialises the cluster: only when no master exists yet."""
    if any(v.get("role") == "master" and v.get("status") != "ERROR" for v in views):
        return None
    masters = [s for s in specs if s["role"] == "master"]
    if not masters:
        return None
    return min(masters, key=lambda s: (s.get("index") or 0, s["name"]))["name"]
