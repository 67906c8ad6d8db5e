# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""From a cluster record to what the Nova driver creates.

Plain Python. ``nodegroups_from_record`` reads a cluster record (the
``cluster`` module's return, docs/internals.md) and gives the nodegroup
inputs of ``plan.desired_from_nodegroups``; ``bootstrap_node`` gives the
``node`` argument of ``bootstrap.render_user_data``.

What the Nova driver must do: desired servers versus the servers that exist.

Plain Python (no ansible, no openstack): everything here works on plain
dicts, so it is tested without a cloud.

A *spec* is a desired server::

    {name, nodegroup, role, index, flavor, image, keypair, user_data,
     metadata, server_group, networks, security_groups, availability_zone}

A *view* is an existing server, flattened from openstacksdk (batch.py makes
them)::

    {id, name, status, nodegroup, role, index, image_id, flavor_name,
     flavor_id, created_at, fault, fixed_addresses, floating_addresses}

``desired_from_nodegroups`` turns nodegroup counts into specs (names,
indexes, which nodes go when scaling in); ``make_plan`` compares specs with
views and says which servers to create, keep, replace and delete.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError


def record_identity(record):
    """``(uuid, name)`` of a record, checked."""
    uuid = (record or {}).get("uuid")
    name = (record or {}).get("name")
    if not shape.is_uuid(uuid or ""):
        raise ValidationError("cluster.uuid", "the cluster record needs its uuid, got %r" % (uuid,))
    if not shape.is_label(name or ""):
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
            dict(name=shape.MASTER_NODEGROUP, role="master", node_count=record.get("master_count", 1)),
            dict(name=shape.WORKER_NODEGROUP, role="worker", node_count=record.get("node_count", 1)),
        ]
    network = fixed_network or record.get("fixed_network")
    result = []
    for i, group in enumerate(groups):
        role = group.get("role") or ("master" if group.get("name") == shape.MASTER_NODEGROUP else "worker")
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
            last_index=group.get("last_index"),  # None: no index used yet
        )
        if record.get("cluster_template_name") and record.get("template_version"):
            # what adoption reads back (docs/operations-store.md)
            entry["metadata"] = {
                shape.META_TEMPLATE: record["cluster_template_name"],
                shape.META_TEMPLATE_VERSION: str(record["template_version"]),
            }
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
    if placeholder_api_address and not record.get("api_fixed_ip"):
        record["api_fixed_ip"] = placeholder_api_address
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


# the order in which duplicates (same name twice) are kept: best first
_STATUS_RANK = {"ACTIVE": 0, "BUILD": 1, "REBUILD": 1, "SHUTOFF": 2, "ERROR": 9}

SPEC_FIELDS = (
    "availability_zone",
    "flavor",
    "image",
    "keypair",
    "metadata",
    "networks",
    "security_groups",
    "server_group",
    "user_data",
)


def _rank(view):
    return (_STATUS_RANK.get(view.get("status"), 5), view.get("created_at") or "", view.get("id") or "")


def _check_entry(where, what, name, seen, role):
    """One entry of a list of servers or nodegroups: a name not ``seen`` before, a known role."""
    if name in seen:
        raise ValidationError("%s.name" % where, "%s %r is given twice" % (what, name))
    seen.add(name)
    if role not in shape.ROLES:
        raise ValidationError("%s.role" % where, "must be one of %s, got %r" % (", ".join(shape.ROLES), role))


def validate_specs(specs, field="servers"):
    """Check a list of explicit specs before any cloud call."""
    seen = set()
    for i, spec in enumerate(specs):
        where = "%s[%d]" % (field, i)
        name = spec.get("name")
        if not name:
            raise ValidationError("%s.name" % where, "a server needs a name")
        _check_entry(where, "server name", name, seen, spec.get("role"))
        if not spec.get("nodegroup"):
            raise ValidationError("%s.nodegroup" % where, "a server needs its nodegroup")
        for key in ("flavor", "image"):
            if not spec.get(key):
                raise ValidationError("%s.%s" % (where, key), "server %s needs a %s" % (name, key))


def validate_nodegroups(nodegroups, field="nodegroups"):
    """Check nodegroup counts before any cloud call."""
    names = set()
    masters = 0
    for i, group in enumerate(nodegroups):
        where = "%s[%d]" % (field, i)
        name = group.get("name")
        if not shape.is_label(name or ""):
            raise ValidationError("%s.name" % where, "must be a DNS label (a-z, 0-9, '-'), got %r" % (name,))
        _check_entry(where, "nodegroup", name, names, group.get("role"))
        if group["role"] == "master":
            masters += 1
        count = group.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValidationError("%s.count" % where, "must be an integer >= 0, got %r" % (count,))
        for key in ("flavor", "image"):
            if not group.get(key) and count:
                raise ValidationError("%s.%s" % (where, key), "nodegroup %s needs a %s" % (name, key))
    if masters > 1:
        raise ValidationError(field, "only one nodegroup may have role master")


def _group_members(views, cluster_name, group):
    """The existing servers of a nodegroup, by metadata or, failing that, by name."""
    members = []
    for view in views:
        if view.get("nodegroup"):
            if view["nodegroup"] == group["name"]:
                members.append(view)
        elif shape.node_index(view["name"], cluster_name, group["name"], group["role"]) is not None:
            members.append(view)
    return members


def _index_of(view, cluster_name, group):
    index = shape.node_index(view["name"], cluster_name, group["name"], group["role"])
    if index is None and view.get("index") is not None:
        index = view["index"]
    return index


def is_outdated(view, spec_or_group, image_id=None, flavor_names=()):
    """True when a server runs another image (or flavor) than the one desired.

    ``image_id`` is the resolved id of the desired image; ``flavor_names`` the
    desired flavor's id and name (servers report the flavor's name).
    """
    if image_id and view.get("image_id") and view["image_id"] != image_id:
        return True
    if flavor_names:
        have = {view.get("flavor_name"), view.get("flavor_id")} - {None}
        if have and not (have & set(flavor_names)):
            return True
    return False


def desired_from_nodegroups(cluster_name, nodegroups, views, remove_nodes=(), replace_outdated=False, resolved=None):
    """Turn nodegroup counts into the desired specs.

    ``nodegroups``: ``[{name, role, count, flavor, image, ..., nodes: [names the
    cluster is known to have], last_index: highest index ever used}]``.

    Per nodegroup:

    * known nodes (``nodes``) and existing servers are kept, up to ``count``;
      a known node that is missing is recreated under its own name (repair);
    * scaling in removes, in this order: the nodes named in ``remove_nodes``,
      known nodes that are missing, nodes in ERROR, then the newest nodes;
    * scaling out and replacements get new indexes above every index ever
      used (``last_index``, known and existing names): an index is never reused;
    * with ``replace_outdated``, a server whose image or flavor differs from
      the nodegroup's gets a replacement with a new index (the old one is then
      surplus: make_plan deletes it, after its replacement is ACTIVE when
      batching).

    Returns ``(specs, last_indexes, removed)``: the specs, the highest index
    per nodegroup after this plan, and the names chosen for removal.
    """
    resolved = resolved or {}
    remove = set(remove_nodes or ())
    specs = []
    last_indexes = {}
    removed = []
    all_names = {view["name"] for view in views}
    for group in nodegroups:
        members = _group_members(views, cluster_name, group)
        by_name = {}
        for view in sorted(members, key=_rank):
            by_name.setdefault(view["name"], view)
        known = [
            n
            for n in group.get("nodes") or ()
            if shape.node_index(n, cluster_name, group["name"], group["role"]) is not None
        ]
        indexes = [group.get("last_index")]
        indexes += [shape.node_index(n, cluster_name, group["name"], group["role"]) for n in known]
        indexes += [_index_of(v, cluster_name, group) for v in members]
        # indices start at 0, as a Heat ResourceGroup's (the same node names on both drivers)
        last = max((i for i in indexes if i is not None), default=-1)

        image_id = resolved.get(("image", group.get("image")))
        flavor_names = resolved.get(("flavor", group.get("flavor"))) or ()

        # candidates: existing servers plus known-but-missing nodes
        candidates = []
        for name, view in by_name.items():
            candidates.append(dict(name=name, view=view))
        for name in known:
            if name not in by_name:
                candidates.append(dict(name=name, view=None))

        # nodes named for removal always go, whatever the count; then, when
        # there are more than ``count``: missing known nodes, nodes in ERROR,
        # then the newest (latest creation time, then highest index)
        named = [c for c in candidates if c["name"] in remove]
        rest = [c for c in candidates if c["name"] not in remove]
        missing = [c for c in rest if c["view"] is None]
        errored = [c for c in rest if c["view"] is not None and c["view"].get("status") == "ERROR"]
        others = [c for c in rest if c["view"] is not None and c["view"].get("status") != "ERROR"]
        others.sort(
            key=lambda c, group=group: (
                c["view"].get("created_at") or "",
                _index_of(c["view"], cluster_name, group) or 0,
            ),
            reverse=True,
        )
        newest_first = missing + errored + others
        surplus = max(0, len(rest) - group["count"])
        going = named + newest_first[:surplus]
        going_names = {c["name"] for c in going}
        removed.extend(c["name"] for c in going if c["view"] is not None)
        staying = [c for c in candidates if c["name"] not in going_names]

        base = {k: group.get(k) for k in SPEC_FIELDS if group.get(k) is not None}
        base.update(nodegroup=group["name"], role=group["role"])
        for c in sorted(
            staying, key=lambda c: shape.node_index(c["name"], cluster_name, group["name"], group["role"]) or 0
        ):
            view = c["view"]
            if replace_outdated and view is not None and is_outdated(view, group, image_id, flavor_names):
                last += 1
                spec = dict(base, name=shape.node_name(cluster_name, group["name"], group["role"], last), index=last)
                spec["replaces"] = c["name"]
                specs.append(spec)
                continue
            index = shape.node_index(c["name"], cluster_name, group["name"], group["role"])
            specs.append(dict(base, name=c["name"], index=index))
        for _missing in range(group["count"] - len(staying)):
            last += 1
            name = shape.node_name(cluster_name, group["name"], group["role"], last)
            while name in all_names:
                last += 1
                name = shape.node_name(cluster_name, group["name"], group["role"], last)
            specs.append(dict(base, name=name, index=last))
        last_indexes[group["name"]] = last
    return specs, last_indexes, removed


def make_plan(specs, views, prune=True, delete=(), replace_errored=True):
    """Compare desired specs with existing servers.

    Returns a dict:

    * ``create``: specs to create (missing, or replacing a server in ERROR);
    * ``keep``: views of servers that stay as they are;
    * ``replace``: views in ERROR that are deleted and created again (same name);
    * ``delete``: views to delete (named in ``delete``, surplus when ``prune``,
      and duplicates of a name);
    * ``absent``: names asked to be deleted that do not exist.
    """
    delete = list(delete or ())
    desired_names = {s["name"] for s in specs}
    both = sorted(desired_names & set(delete))
    if both:
        raise ValidationError("delete", "server %s is both desired and to be deleted" % ", ".join(both))

    by_name = {}
    for view in sorted(views, key=_rank):
        by_name.setdefault(view["name"], []).append(view)

    plan = dict(create=[], keep=[], replace=[], delete=[], absent=[])
    for spec in specs:
        found = by_name.get(spec["name"]) or []
        best = found[0] if found else None
        for dup in found[1:]:
            plan["delete"].append(dict(dup, reason="duplicate of %s (%s)" % (spec["name"], best["id"])))
        if best is None or best.get("status") == "SOFT_DELETED":  # DELETED ones: servers.live
            plan["create"].append(spec)
        elif best.get("status") == "ERROR" and replace_errored:
            plan["replace"].append(best)
            plan["delete"].append(dict(best, reason="in ERROR: replaced"))
            plan["create"].append(spec)
        else:
            plan["keep"].append(best)
    for name, found in by_name.items():
        if name in desired_names:
            continue
        if name in delete:
            reason = "asked to be deleted"
        elif prune:
            reason = "not desired"
        else:
            continue
        for view in found:
            plan["delete"].append(dict(view, reason=reason))
    plan["absent"] = sorted(n for n in delete if n not in by_name)
    return plan


def plan_changed(plan):
    return bool(plan["create"] or plan["delete"])


def rounds(plan, batch_size):
    """Split a plan into create-before-delete rounds.

    Without a batch size (0) there is one round: deletes and creates go
    together. With one, servers in ERROR and duplicates go first (they serve
    nothing), then each round creates up to ``batch_size`` servers and, once
    they are ACTIVE, deletes as many surplus servers of the same nodegroups
    (the server a spec ``replaces`` first); the surplus left at the end goes
    in a last round. Returns ``[(creates, deletes), ...]``.
    """
    creates = list(plan["create"])
    deletes = list(plan["delete"])
    if not batch_size or batch_size <= 0:
        return [(creates, deletes)] if creates or deletes else []
    first = [d for d in deletes if d.get("status") == "ERROR" or str(d.get("reason", "")).startswith("duplicate")]
    pending = [d for d in deletes if d not in first]
    result = []
    if first:
        result.append(([], first))
    for start in range(0, len(creates), batch_size):
        batch = creates[start : start + batch_size]
        goes = []
        for spec in batch:
            pick = None
            if spec.get("replaces"):
                pick = next((d for d in pending if d["name"] == spec["replaces"]), None)
            if pick is None:
                pick = next((d for d in pending if d.get("nodegroup") == spec.get("nodegroup")), None)
            if pick is not None:
                pending.remove(pick)
                goes.append(pick)
        result.append((batch, goes))
    if pending:
        result.append(([], pending))
    return result
