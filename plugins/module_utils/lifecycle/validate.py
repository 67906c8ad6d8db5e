# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Input validation: names, counts, labels, timeouts, nodegroups, and the template schema.

Every check raises ValidationError naming the field and the reason, before any write.

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import re

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

# -- validation -----------------------------------------------------------------------

# a DNS label starting with a letter: a cluster name becomes host names and a Heat stack
# name (which must start with a letter); nothing Jinja or YAML could read as syntax
MAX_NAME = shape.MAX_LABEL
MAX_MASTER_COUNT = 7
MAX_NODE_COUNT = 1000
MAX_TIMEOUT = 7 * 24 * 3600
MIN_TIMEOUT = 60
LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.\-/]{0,251}[A-Za-z0-9])?$")
JINJA_MARKERS = ("{{", "}}", "{%", "%}", "{#", "#}")
MASTER_NODEGROUP = shape.MASTER_NODEGROUP
WORKER_NODEGROUP = shape.WORKER_NODEGROUP
DRIVERS = ("heat", "nova")


def validate_name(field, value):
    """A cluster or nodegroup name: the one rule of shape.py."""
    return shape.check_label(field, value)


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
TEMPLATE_CHOICES = dict(
    coe=("kubernetes",),
    driver=DRIVERS,
    server_type=("vm",),
    network_driver=("flannel", "calico"),
    volume_driver=("cinder",),
    master_server_group_policy=shape.SERVER_GROUP_POLICIES,
    worker_server_group_policy=shape.SERVER_GROUP_POLICIES,
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


#: The oldest Kubernetes minor the bootstrap supports.
MIN_COE_VERSION = (1, 22)


def parse_coe_version(coe_version):
    """'v1.30.2' / '1.30' → (1, 30). ValidationError if it is not a Kubernetes version."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$", str(coe_version or "").strip())
    if not match:
        raise ValidationError("coe_version", "%r is not a Kubernetes version like v1.31.2" % (coe_version,))
    return int(match.group(1)), int(match.group(2))


def supported_coe_version(coe_version):
    """(major, minor) of a Kubernetes version the bootstrap supports, else ValidationError."""
    version = parse_coe_version(coe_version)
    if version < MIN_COE_VERSION:
        raise ValidationError(
            "coe_version",
            "%s is older than the oldest supported Kubernetes (%d.%d)" % ((coe_version, *MIN_COE_VERSION)),
        )
    return version


def validate_coe_version(field, version):
    """ValidationError naming ``field`` unless ``version`` is a Kubernetes version the bootstrap supports."""
    if version is None or not str(version).strip():
        raise ValidationError(field, "must not be empty: the Kubernetes version the nodes run, like v1.31.2")
    try:
        supported_coe_version(version)
    except ValidationError as e:
        reason = e.reason
        if "older than" not in reason:
            reason += " (supported: v%d.%d and newer)" % MIN_COE_VERSION
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
