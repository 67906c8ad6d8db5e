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
