# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Turn a cluster record into what a Heat stack needs: template, files, parameters, tags.

Plain Python (Jinja2 only): no ansible and no openstack import, testable alone.

Naming (docs/internals.md): the stack is ``<cluster>-<uuid[:8]>``; a member
``N`` of a nodegroup's ResourceGroup is the server ``<cluster>-<nodegroup>-N``
(``<cluster>-master-N`` for masters). Heat never reuses an index that a
removal policy took out (its skip list), and neither do we: the nodegroup's
``<ng>_removal_policies`` parameter carries every index ever removed, so the
indices of new members can be worked out before the update call, and each new
node gets its own user-data.
"""

from __future__ import annotations

import itertools
import json
import re

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.heat import hot

try:
    import jinja2

    HAS_JINJA2 = True
except ImportError:
    jinja2 = None
    HAS_JINJA2 = False

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MASTER_NODEGROUP = "default-master"
DEFAULT_WORKER_NODEGROUP = "default-worker"
SERVER_GROUP_POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")
IMAGE_UPDATE_POLICIES = ("REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL")

# Parameters that only steer *how* Heat applies an update: a difference in
# them alone is no reason for an update call.
POLICY_SUFFIXES = ("_max_batch_size", "_pause_time")


def user_data_file(nodegroup, index):
    """The stack file holding the user-data of member ``index`` of ``nodegroup``."""
    return "%s/%s/%s" % (hot.USER_DATA_DIR, nodegroup, index)


def is_user_data_file(name):
    return str(name).startswith(hot.USER_DATA_DIR + "/")


def stack_name(cluster_name, uuid):
    """``<cluster-name>-<first 8 of uuid>``."""
    return "%s-%s" % (cluster_name, str(uuid)[:8])


def cluster_tag(uuid):
    return "coe-cluster-%s" % uuid


def node_prefix(nodegroup, role):
    """The middle part of a node name: ``master`` for masters, else the nodegroup's name."""
    return "master" if role == "master" else nodegroup


def node_name(cluster_name, nodegroup, role, index):
    return "%s-%s-%s" % (cluster_name, node_prefix(nodegroup, role), index)


def member_indices(count, skipped):
    """The member indices Heat gives a ResourceGroup of ``count`` with skip list ``skipped``."""
    skipped = {int(i) for i in skipped}
    return list(itertools.islice((i for i in itertools.count() if i not in skipped), count))


def removed_indices(removal_policies):
    """Every index listed in a ResourceGroup ``removal_policies`` value."""
    if isinstance(removal_policies, str):
        removal_policies = json.loads(removal_policies) if removal_policies.strip() else []
    out = set()
    for policy in removal_policies or []:
        for item in (policy or {}).get("resource_list", []) or []:
            try:
                out.add(int(str(item)))
            except ValueError:
                # a resource name or id rather than an index: not ours
                continue
    return out


def record_field(cluster, *names):
    """A field of the record, else of the template spec the record carries (``template``)."""
    for source in (cluster, cluster.get("template") or {}):
        for name in names:
            if source.get(name) not in (None, ""):
                return source[name]
    return None


def stable_reference(value, ids, live=None):
    """The stack parameter for a flavor, image, network or subnet the record names ``value``.

    Its id (``ids``: {name: id}) rather than its name: every member's server resolves
    the name again (a flavor name is a flavor list, an image name an image search),
    which made a third of the API calls of a 1 + 50 create. A live stack's value that
    names the same thing (the name itself, or the id) is kept as it is: Heat would
    take a name turned into its id for a new image and rebuild every server.
    """
    resolved = ids.get(value) or value
    if live not in (None, "") and live in (value, resolved):
        return live
    return resolved


def _require_str(value, field):
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(field, "is required")
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string, got %s" % type(value).__name__)
    return value


def _count(value, field, minimum=0):
    if isinstance(value, bool):
        raise ValidationError(field, "must be an integer, got a boolean")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(field, "must be an integer, got %r" % (value,)) from None
    if str(number) != str(value).strip() and not isinstance(value, int):
        raise ValidationError(field, "must be an integer, got %r" % (value,))
    if number < minimum:
        raise ValidationError(field, "must be %d or more, got %d" % (minimum, number))
    return number


def normalise_nodegroups(cluster):
    """The cluster's nodegroups, masters first, each with a flavor and an image.

    A record without ``nodegroups`` gets ``default-master`` (``master_count``)
    and ``default-worker`` (``node_count``).
    """
    name = cluster.get("name")
    groups = cluster.get("nodegroups") or []
    if not groups:
        groups = [
            dict(name=MASTER_NODEGROUP, role="master", node_count=cluster.get("master_count", 1)),
            dict(name=DEFAULT_WORKER_NODEGROUP, role="worker", node_count=cluster.get("node_count", 1)),
        ]
    out = []
    seen = set()
    for i, group in enumerate(groups):
        field = "nodegroups[%d]" % i
        if not isinstance(group, dict):
            raise ValidationError(field, "must be a dict")
        ng = _require_str(group.get("name"), field + ".name")
        if not DNS_LABEL.match(ng) or len(ng) > 63:
            raise ValidationError(field + ".name", "%r is not a DNS label (a-z, 0-9 and '-', at most 63)" % ng)
        if ng in seen:
            raise ValidationError(field + ".name", "%r appears twice" % ng)
        seen.add(ng)
        role = group.get("role") or ("master" if ng == MASTER_NODEGROUP else "worker")
        if role not in ("master", "worker"):
            raise ValidationError(field + ".role", "must be master or worker, got %r" % role)
        count = _count(group.get("node_count", 0), field + ".node_count", 1 if role == "master" else 0)
        if role == "master":
            flavor = group.get("flavor_id") or group.get("flavor") or cluster.get("master_flavor_id")
            flavor = flavor or cluster.get("flavor_id")
        else:
            flavor = group.get("flavor_id") or group.get("flavor") or cluster.get("flavor_id")
        image = group.get("image_id") or group.get("image") or cluster.get("image_id")
        out.append(
            dict(
                name=ng,
                role=role,
                count=count,
                prefix=node_prefix(ng, role),
                flavor=_require_str(flavor, field + ".flavor_id"),
                image=_require_str(image, field + ".image_id"),
            )
        )
    masters = [g for g in out if g["role"] == "master"]
    if len(masters) != 1:
        raise ValidationError("nodegroups", "needs exactly one master nodegroup, got %d" % len(masters))
    if masters[0]["count"] % 2 == 0:
        raise ValidationError("master_count", "must be odd (etcd quorum), got %d" % masters[0]["count"])
    prefixes = {}
    for g in out:
        if g["prefix"] in prefixes:
            raise ValidationError(
                "nodegroups", "%r and %r would give nodes the same names" % (prefixes[g["prefix"]], g["name"])
            )
        prefixes[g["prefix"]] = g["name"]
    if name and len(name) + 1 + max(len(g["prefix"]) for g in out) + 6 > 63:
        raise ValidationError("name", "%r is too long: node names must stay DNS labels (63)" % name)
    return masters + [g for g in out if g["role"] != "master"]


def parse_node_name(cluster_name, nodegroups, name):
    """(nodegroup, index) of a node name of this cluster, or ValidationError."""
    for ng in nodegroups:
        head = "%s-%s-" % (cluster_name, ng["prefix"])
        if name.startswith(head) and name[len(head) :].isdigit():
            return ng["name"], int(name[len(head) :])
    raise ValidationError("nodes_to_remove", "%r is not a node name of cluster %s" % (name, cluster_name))


class StackSpec:
    """What one ``create``/``update`` call sends, plus what the comparison must know."""

    def __init__(self, name, template, files, parameters, tags, policy=(), nodes=None):
        self.name = name
        self.template = template  # text
        self.files = files  # {name: text}; the nodes' user-data among them (is_user_data_file)
        self.parameters = parameters  # {name: python value}
        self.tags = list(tags)
        self.policy = set(policy)  # parameter names that alone justify no update
        self.nodes = nodes or {}  # {nodegroup: [node name, ...]} after this spec is applied


def render_cluster_template(nodegroups):
    """The cluster's HOT text for these (normalised) nodegroups."""
    if not HAS_JINJA2:
        raise ImportError("jinja2 is required to render the cluster's Heat template")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
    for ng in nodegroups:
        if not DNS_LABEL.match(ng["name"]):  # pragma: no cover - normalise_nodegroups checks first
            raise ValidationError("nodegroups", "%r is not a DNS label" % ng["name"])
    master = next(ng for ng in nodegroups if ng["role"] == "master")
    return env.from_string(hot.CLUSTER_TEMPLATE).render(
        version=hot.TEMPLATE_VERSION,
        nodegroups=nodegroups,
        workers=[ng for ng in nodegroups if ng["role"] != "master"],
        master=master,
        tcp_ports=hot.KUBERNETES_TCP_PORTS,
        node_file=hot.NODE_TEMPLATE_FILE,
    )


def build_cluster_stack(
    cluster,
    user_data=None,
    nodes_to_remove=(),
    live_parameters=None,
    upgrade=False,
    batch_size=1,
    pause_time=0,
    fixed_network=None,
    fixed_subnet=None,
    external_network=None,
    floating_ip_enabled=None,
    server_group_policy=None,
    image_update_policy=None,
    master_image_update_policy=None,
    live_members=None,
    live_files=None,
    empty=False,
    ids=None,
):
    """The StackSpec of a cluster record.

    ``user_data``: {node name: cloud-config text}; it goes into the stack file
    ``coe-user-data/<nodegroup>/<index>`` of the node. A node without an entry
    keeps the live stack's file (``live_files``), else gets empty user-data:
    user-data only matters when a server is made, and the node template tells
    Heat never to replace a server because its user-data changed.
    ``nodes_to_remove``: node names to take out (Heat removal policies); the
    nodegroup's ``node_count`` is the count *after* removal. ``live_parameters``:
    the live stack's parameters, for the indices removed earlier.
    ``live_members``: {nodegroup: [member index, ...]} of the live stack; a node
    to remove must be one of them. ``live_files``: the live stack's files. ``empty``: every nodegroup
    with no node (the first step of a create: the API's port and address
    exist before any node's user-data is written). ``upgrade``: roll through the nodes ``batch_size`` at a time
    (otherwise every changed member is updated in one batch). ``ids``: {name: id} of the
    flavors, images, network and subnet the record names (``stable_reference``).
    Raises ValidationError naming the field; makes no cloud call.
    """
    if not isinstance(cluster, dict):
        raise ValidationError("cluster", "must be a dict (a cluster record)")
    name = _require_str(cluster.get("name"), "cluster.name")
    if not DNS_LABEL.match(name):
        raise ValidationError("cluster.name", "%r is not a DNS label (a-z, 0-9 and '-')" % name)
    uuid = _require_str(cluster.get("uuid"), "cluster.uuid")
    if not re.match(r"^[0-9a-fA-F-]{8,64}$", uuid):
        raise ValidationError("cluster.uuid", "%r is not a uuid" % uuid)
    labels = cluster.get("labels") or {}
    if not isinstance(labels, dict):
        raise ValidationError("cluster.labels", "must be a dict of strings")
    labels = {str(k): "" if v is None else str(v) for k, v in labels.items()}
    nodegroups = normalise_nodegroups(cluster)
    if empty:
        nodegroups = [dict(ng, count=0) for ng in nodegroups]
    batch_size = _count(batch_size, "batch_size", 1)
    pause_time = _count(pause_time, "pause_time", 0)
    user_data = user_data or {}
    if not isinstance(user_data, dict):
        raise ValidationError("user_data", "must be a dict {node name: user-data}")
    for key, value in user_data.items():
        if not isinstance(value, str):
            raise ValidationError("user_data", "the user-data of %s must be a string" % key)

    network = fixed_network or record_field(cluster, "fixed_network")
    network = _require_str(network, "fixed_network")
    subnet = fixed_subnet if fixed_subnet is not None else record_field(cluster, "fixed_subnet")
    fip = floating_ip_enabled if floating_ip_enabled is not None else record_field(cluster, "floating_ip_enabled")
    fip = bool(fip)
    external = external_network or record_field(cluster, "external_network_id", "external_network") or ""
    if fip and not external:
        raise ValidationError("external_network", "is required when floating_ip_enabled is true")
    policy = server_group_policy or record_field(cluster, "master_server_group_policy")
    policy = policy or labels.get("master_server_group_policy") or "anti-affinity"
    if policy not in SERVER_GROUP_POLICIES:
        raise ValidationError(
            "server_group_policy", "must be one of %s, got %r" % (", ".join(SERVER_GROUP_POLICIES), policy)
        )
    image_policy = image_update_policy or labels.get("image_update_policy") or "REPLACE"
    master_image_policy = master_image_update_policy or labels.get("master_image_update_policy") or "REBUILD"
    for field, value in (
        ("image_update_policy", image_policy),
        ("master_image_update_policy", master_image_policy),
    ):
        if value not in IMAGE_UPDATE_POLICIES:
            raise ValidationError(field, "must be one of %s, got %r" % (", ".join(IMAGE_UPDATE_POLICIES), value))

    removals = {}
    for node in nodes_to_remove or ():
        ng, index = parse_node_name(name, nodegroups, node)
        if live_members is not None and index not in {int(i) for i in live_members.get(ng, ())}:
            raise ValidationError("nodes_to_remove", "%s is not a node of cluster %s (no such member)" % (node, name))
        removals.setdefault(ng, set()).add(index)

    live = live_parameters or {}
    ids = ids or {}
    params = dict(
        cluster_uuid=uuid,
        cluster_name=name,
        keypair=record_field(cluster, "keypair", "keypair_id") or "",
        fixed_network=stable_reference(network, ids, live.get("fixed_network")),
        fixed_subnet=stable_reference(subnet or "", ids, live.get("fixed_subnet")),
        external_network=external,
        floating_ip_enabled=fip,
        master_server_group_policy=policy,
        image_update_policy=image_policy,
        master_image_update_policy=master_image_policy,
        labels=labels,
        coe_version=str(cluster.get("coe_version") or labels.get("kube_tag") or ""),
        # an upgrade rolls the nodegroups one after the other, masters first
        nodegroups_in_order=bool(upgrade),
    )
    policy_params, nodes = {"nodegroups_in_order"}, {}
    live_files = live_files or {}
    files = {hot.NODE_TEMPLATE_FILE: hot.NODE_TEMPLATE}
    for ng in nodegroups:
        key = ng["name"]
        skipped = removed_indices(live.get(key + "_removal_policies")) | removals.get(key, set())
        indices = member_indices(ng["count"], skipped)
        names = [node_name(name, key, ng["role"], i) for i in indices]
        nodes[key] = names
        params[key + "_count"] = ng["count"]
        params[key + "_flavor"] = stable_reference(ng["flavor"], ids, live.get(key + "_flavor"))
        params[key + "_image"] = stable_reference(ng["image"], ids, live.get(key + "_image"))
        params[key + "_removal_policies"] = [{"resource_list": [str(i) for i in sorted(skipped)]}] if skipped else []
        params[key + "_max_batch_size"] = batch_size if upgrade else max(ng["count"], 1)
        params[key + "_pause_time"] = pause_time
        for index, node in zip(indices, names, strict=True):
            path = user_data_file(key, index)
            files[path] = user_data[node] if node in user_data else live_files.get(path, "")
        policy_params.update(key + suffix for suffix in POLICY_SUFFIXES)

    return StackSpec(
        name=stack_name(name, uuid),
        template=render_cluster_template(nodegroups),
        files=files,
        parameters=params,
        tags=[cluster_tag(uuid)],
        policy=policy_params,
        nodes=nodes,
    )
