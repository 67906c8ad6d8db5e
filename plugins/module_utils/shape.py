# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Names, tags and metadata the Nova driver puts on what it creates.

The contract is in docs/internals.md ("Tags and names in the cloud"). Every
cluster server carries two tags: the common ``coe-cluster`` (one server list
covers every cluster, for the synchroniser) and ``coe-cluster-<uuid>`` (one
list covers one cluster). Metadata is payload (it cannot be filtered
server-side): cluster uuid and name, nodegroup, role.

Plain Python: no ansible and no openstack import.
"""

from __future__ import annotations

import re

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

COMMON_TAG = "coe-cluster"
CLUSTER_TAG_PREFIX = "coe-cluster-"

META_CLUSTER_UUID = "coe_cluster_uuid"
META_CLUSTER_NAME = "coe_cluster_name"
META_NODEGROUP = "coe_nodegroup"
META_ROLE = "coe_role"
META_INDEX = "coe_index"
META_NODE_INDEX = "coe_node_index"  # the Heat driver's node template names the index so
META_VERSION = "coe_version"
# what adoption needs besides (docs/operations-store.md): the template version the cluster runs
META_TEMPLATE = "coe_template"
META_TEMPLATE_VERSION = "coe_template_version"

MASTER_NODEGROUP = "default-master"
WORKER_NODEGROUP = "default-worker"
ROLES = ("master", "worker")

#: RFC 1123 label syntax, as a pattern to build on (a DNS subdomain is labels joined by dots)
DNS_LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
MAX_LABEL = 63
#: The one rule for the names the collection makes names of (clusters, nodegroups, nodes): a DNS
#: label that starts with a letter. Heat refuses stack names that do not start with a letter, and
#: node and stack names begin with the cluster's name, so both drivers take the same names.
LABEL_RULE = "lowercase letters, digits and '-', starting with a letter, not ending with '-', at most 63 characters"
_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def cluster_tag(uuid):
    """The per-cluster server/port/security-group tag."""
    return CLUSTER_TAG_PREFIX + uuid


def uuid_from_tags(tags):
    """The cluster uuid named by a resource's tags, or None."""
    for tag in tags or ():
        if tag.startswith(CLUSTER_TAG_PREFIX) and _UUID.match(tag[len(CLUSTER_TAG_PREFIX) :]):
            return tag[len(CLUSTER_TAG_PREFIX) :]
    return None


def is_label(value):
    """True when ``value`` follows the one naming rule (LABEL_RULE)."""
    return isinstance(value, str) and bool(_LABEL.match(value))


def check_label(field, value):
    """``value`` when it follows LABEL_RULE, else ValidationError naming ``field``."""
    if not is_label(value):
        raise ValidationError(field, "%r is not a DNS label: %s" % (value, LABEL_RULE))
    return value


def is_uuid(value):
    return bool(value) and bool(_UUID.match(value))


def node_prefix(cluster_name, nodegroup, role):
    """``<cluster>-master-`` for masters, ``<cluster>-<nodegroup>-`` for workers."""
    if role == "master":
        return "%s-master-" % cluster_name
    return "%s-%s-" % (cluster_name, nodegroup)


def node_name(cluster_name, nodegroup, role, index):
    return "%s%d" % (node_prefix(cluster_name, nodegroup, role), index)


def node_index(name, cluster_name, nodegroup, role):
    """The index in a node name of this nodegroup, or None if it is not one."""
    prefix = node_prefix(cluster_name, nodegroup, role)
    if name.startswith(prefix) and name[len(prefix) :].isdigit():
        return int(name[len(prefix) :])
    return None


def security_group_name(cluster_name, uuid):
    """The cluster's security group: the uuid makes it unique and findable."""
    return "coe-%s-%s" % (cluster_name, uuid)


#: The tag that marks a cluster's API VIP port (beside COMMON_TAG and the cluster's tag):
#: one tag-filtered port list finds every cluster's VIP.
API_VIP_TAG = "coe-api-vip"
API_VIP_PORT_SUFFIX = "api-vip"


def api_vip_port_name(cluster_name):
    """The Neutron port whose fixed IP is the API's VIP (both drivers)."""
    return "%s-%s" % (cluster_name, API_VIP_PORT_SUFFIX)


def load_balancer_name(cluster_name, uuid):
    """The cluster's API load balancer (it carries the cluster's tags as well)."""
    return "coe-%s-%s-api" % (cluster_name, uuid)


def server_group_name(uuid, nodegroup, version=None):
    """Server groups cannot carry tags: the name carries the uuid.

    With a template version, one group per version: an upgrade's new servers
    go into a new, empty group, so that a strict anti-affinity group that
    already has a member on every host does not refuse them while the old
    servers still run (create before delete).
    """
    if version:
        return "coe-%s-%s-v%d" % (uuid, nodegroup, int(version))
    return "coe-%s-%s" % (uuid, nodegroup)


def server_group_prefix(uuid):
    return "coe-%s-" % uuid


#: Nova's server group policies (the strict ones first)
SERVER_GROUP_POLICIES = ("anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity")


def check_server_group_policy(field, policy):
    """``policy``, or ValidationError naming ``field`` when Nova has no such policy."""
    if policy not in SERVER_GROUP_POLICIES:
        raise ValidationError(field, "must be one of %s, got %r" % (", ".join(SERVER_GROUP_POLICIES), policy))
    return policy


def master_server_group_policy(cluster):
    """The masters' server group policy a cluster's template asks for, on both drivers: the
    record's (or its template spec's) ``master_server_group_policy``, else the label of that
    name, else ``anti-affinity``."""
    policy = record_field(cluster, "master_server_group_policy")
    labels = cluster.get("labels") or {}
    if policy is None and isinstance(labels, dict) and labels.get("master_server_group_policy") not in (None, ""):
        policy = labels["master_server_group_policy"]
    return "anti-affinity" if policy is None else str(policy)


# -- a record's nodegroups ----------------------------------------------------------


def record_field(cluster, *names):
    """A field of the record, else of the template spec the record carries (``template``)."""
    for source in (cluster, cluster.get("template") or {}):
        for name in names:
            if source.get(name) not in (None, ""):
                return source[name]
    return None


def require_str(value, field):
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(field, "is required")
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string, got %s" % type(value).__name__)
    return value


def read_count(value, field, minimum=0):
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


def read_nodegroups(cluster):
    """The cluster's nodegroups, masters first, each with a flavor and an image: the one reader
    of a record's nodegroups (``[{name, role, count, prefix, flavor, image}]``; ``prefix`` is
    what stands between the cluster's name and the index in a node name).

    A record without ``nodegroups`` gets ``default-master`` (``master_count``)
    and ``default-worker`` (``node_count``).
    """
    name = cluster.get("name")
    groups = cluster.get("nodegroups") or []
    if not groups:
        groups = [
            dict(name=MASTER_NODEGROUP, role="master", node_count=cluster.get("master_count", 1)),
            dict(name=WORKER_NODEGROUP, role="worker", node_count=cluster.get("node_count", 1)),
        ]
    out = []
    seen = set()
    for i, group in enumerate(groups):
        field = "nodegroups[%d]" % i
        if not isinstance(group, dict):
            raise ValidationError(field, "must be a dict")
        ng = require_str(group.get("name"), field + ".name")
        check_label(field + ".name", ng)
        if ng in seen:
            raise ValidationError(field + ".name", "%r appears twice" % ng)
        seen.add(ng)
        role = group.get("role") or ("master" if ng == MASTER_NODEGROUP else "worker")
        if role not in ("master", "worker"):
            raise ValidationError(field + ".role", "must be master or worker, got %r" % role)
        count = read_count(group.get("node_count", 0), field + ".node_count", 1 if role == "master" else 0)
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
                prefix="master" if role == "master" else ng,
                flavor=require_str(flavor, field + ".flavor_id"),
                image=require_str(image, field + ".image_id"),
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
