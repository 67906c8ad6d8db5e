# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The one cloud-init user-data renderer both drivers use.

Plain Python (``yaml`` and pki.py; no ansible, no openstack). Every document is built
from Python dicts and dumped with ``yaml.safe_dump``: no text templating, so no value
(cluster name, label, address) can inject YAML or shell.

What the drivers and the front door call
========================================

``check_bootstrap_inputs(cluster) -> None``
    Validates what the renderer will need (coe_version, api_address, labels, network
    CIDRs, key settings for this version). The front door calls it before any cloud
    call so bad input fails early; ``render_user_data`` calls it too.

``render_user_data(cluster, node, credentials, clock=None, allow_gzip=True) -> str``
    ``cluster``: the cluster record (docs/internals.md): name, uuid, coe_version,
    api_address, api_endpoint, master_addresses, labels, nodegroups; and ``api_fixed_ip``,
    the endpoint's fixed IP, which the driver adds when the API has an endpoint of its own. ``node``: ``{name, role
    ("master"|"worker"), nodegroup, index, first_master: bool}``. ``credentials``:
    ``pki.ClusterCredentials`` (from ``pki.ensure_cluster_credentials`` or
    ``pki.load_cluster_credentials``). Returns ``#cloud-config`` text. Every call issues
    a fresh node certificate (valid from ``clock()``), so render per node, at the time
    the server is created. The text is secret: pass it to Heat as a stack file (never a
    parameter), never log or return it. Heat passes ``allow_gzip=False``: the text must then
    fit Nova's limit as it is (it does at every supported shape; a CoeError says so if not).

``encode_user_data(text) -> bytes``
    The bytes to give Nova: the text itself, or gzip of it when the text would pass
    Nova's limit (cloud-init reads gzip). Heat cannot carry binary user-data: use the
    text there (it fits: see ``NOVA_USER_DATA_LIMIT`` and the tests).

``user_data_size(data) -> int``
    Size after base64, what Nova checks against ``NOVA_USER_DATA_LIMIT`` (65535).

What a node gets
================

- first master: the cluster's CAs and service-account keys under /etc/kubernetes/pki
  (mode 0600, root), a kubeadm InitConfiguration + ClusterConfiguration, ``kubeadm init``;
  and, for when it is rebuilt or replaced and a control plane already answers (see
  BOOTSTRAP_SH), a JoinConfiguration with ``controlPlane``, its own node identity and the
  addresses to look at (CONTROL_PLANE_ADDRESSES): then it joins instead;
- other masters: the same CA material and a JoinConfiguration with ``controlPlane`` (no
  ``--upload-certs``: kubeadm makes each master's serving certificates from the CAs);
- workers: a JoinConfiguration whose discovery is a file kubeconfig carrying THAT node's
  own client certificate (CN system:node:<name>, O system:nodes): no bootstrap token.

kubeadm API: ``kubeadm.k8s.io/v1beta4`` from Kubernetes 1.31, ``v1beta3`` before
(1.22 to 1.30). ``controlPlaneEndpoint`` is the endpoint the nodes join through
(endpoint.control_plane_host: the VIP's or load balancer's fixed IP, ``api_fixed_ip``, when
the API has an endpoint of its own, else the API address); the API server's certSANs hold
the endpoint's addresses (endpoint.api_sans), and, for a single master only, every known
master address (docs/control-plane.md).

Cluster labels used here (Magnum's names where Magnum has one):
``pod_network_cidr`` (or ``calico_ipv4pool`` / ``flannel_network_cidr``; default
10.100.0.0/16), ``service_cluster_ip_range`` (10.254.0.0/16), ``dns_cluster_domain``
(cluster.local), ``cni_manifest_url`` (a CNI manifest the first master applies;
``none`` to skip; default Calico). A label whose key has a DNS prefix
(``example.com/team``) becomes a Kubernetes node label, from the cluster (template +
coe_labels) and, overriding those, from the node's nodegroup; every node also gets
``coe.openstack.org/role`` and ``coe.openstack.org/nodegroup``.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import re

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, pki, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.validate import (
    MIN_COE_VERSION,
    supported_coe_version,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - exercised by ansible-test sanity
    yaml = None
    HAS_YAML = False

#: Nova refuses user-data longer than this once base64-encoded.
NOVA_USER_DATA_LIMIT = 65535
#: The oldest Kubernetes minor the renderer supports (kubeadm v1beta3 appeared in 1.22).
MIN_VERSION = MIN_COE_VERSION
#: kubeadm config API v1beta4 from this Kubernetes minor on.
V1BETA4_FROM = (1, 31)
#: ECDSA P-384 keys are accepted by kubeadm from this minor on.
ECDSA_P384_FROM = (1, 34)

PKI_DIR = "/etc/kubernetes/pki"
COE_DIR = "/etc/kubernetes/coe"
KUBEADM_CONFIG = COE_DIR + "/kubeadm.yaml"
DISCOVERY_KUBECONFIG = COE_DIR + "/discovery.conf"
#: The first master only: its JoinConfiguration (controlPlane), used instead of
#: kubeadm init when a control plane already answers at one of CONTROL_PLANE_ADDRESSES.
KUBEADM_JOIN_CONFIG = COE_DIR + "/kubeadm-join.yaml"
CONTROL_PLANE_ADDRESSES = COE_DIR + "/control-plane-addresses"
BOOTSTRAP_SCRIPT = "/usr/local/sbin/coe-bootstrap"
#: The API VIP (endpoint.VIP): keepalived as a static pod on every master holds it
#: (docs/control-plane.md, "Why keepalived").
KEEPALIVED_MANIFEST = "/etc/kubernetes/manifests/keepalived.yaml"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
KEEPALIVED_CHECK = "/etc/keepalived/check_apiserver.sh"
#: The image of the keepalived static pod (label ``keepalived_image``), the one kubeadm's
#: high-availability guide uses.
DEFAULT_KEEPALIVED_IMAGE = "osixia/keepalived:2.0.20"
#: kubeadm refuses a non-empty manifests folder; the keepalived pod is there before it runs
MANIFESTS_PREFLIGHT = "DirAvailable--etc-kubernetes-manifests"
#: The port every API server listens on; the API address (a load balancer, a floating IP)
#: may use another one, which only controlPlaneEndpoint carries.
API_PORT = endpoint.API_PORT
DISCOVERY_TIMEOUT = "30m0s"

DEFAULT_POD_CIDR = "10.100.0.0/16"
DEFAULT_SERVICE_CIDR = "10.254.0.0/16"
DEFAULT_DNS_DOMAIN = "cluster.local"
DEFAULT_CNI_MANIFEST = "https://raw.githubusercontent.com/projectcalico/calico/v3.28.2/manifests/calico.yaml"

LABEL_ROLE = "coe.openstack.org/role"
LABEL_NODEGROUP = "coe.openstack.org/nodegroup"

_DNS_LABEL = shape.DNS_LABEL_PATTERN
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^%s(\.%s)*$" % (_DNS_LABEL, _DNS_LABEL))
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# kubelet refuses to set labels of these namespaces on itself, except the allowed ones
_RESTRICTED = ("kubernetes.io", "k8s.io")
_ALLOWED_RESTRICTED_PREFIXES = ("kubelet.kubernetes.io", "node.kubernetes.io")

# The node's bootstrap, run once by cloud-init's runcmd with fixed arguments:
#   coe-bootstrap init|join VERSION API_HOST:PORT [CNI_MANIFEST_URL]
# (VERSION: 1.31 or 1.31.2, what to install when the image lacks kubeadm)
# Values come as arguments (a YAML list, no shell parsing), never pasted into the text.
#
# "init" is what the renderer decided when it rendered the user-data: the cluster had no
# master. That stays true only for the server's first boot: Heat's REBUILD keeps the
# user-data, and a replaced first master gets the same decision. So the script checks
# first (existing_control_plane, below) and joins as a control-plane node when a control
# plane of THIS cluster already answers: a second `kubeadm init` would make a second,
# empty control plane (split brain) that the API address may then point at.
#
# What is checked before "init": every line of CONTROL_PLANE_ADDRESSES (host:port, written
# by the renderer: the cluster's API address first, then each master address the cluster
# record held when this user-data was rendered, on port 6443). An address is a control
# plane of this cluster when it answers HTTPS with a certificate that the cluster CA
# (/etc/kubernetes/pki/ca.crt) signed for that address: any HTTP status counts (a 401, or a
# 500 while etcd settles, is still a control plane holding the cluster's data). Addresses
# of this node itself (hostname -I) are skipped. Silence proves nothing about the API
# address, which may be a floating IP pointing at this very node (it runs no API server
# yet): that is why the masters' own addresses are asked too. Three rounds, 10 s apart, so
# that a peer briefly unreachable is not taken for none. Remaining risk: when no other
# master's address was known at render time and the API address is this node's, or when
# no other master runs, nothing answers and the node initialises again
# (docs/credentials.md, "A rebuilt or replaced first master").
# (These comments live here, not in the script: it is in every node's user-data, whose size
# Nova limits.)
BOOTSTRAP_SH = r"""#!/bin/sh
# coe.openstack node bootstrap, written by cloud-init and run once per instance.
set -eu
mode="$1"
version="$2"
endpoint="$3"
cni_manifest="${4:-}"
coe_dir=/etc/kubernetes/coe
conf=$coe_dir/kubeadm.yaml
join_conf=$coe_dir/kubeadm-join.yaml
candidates=$coe_dir/control-plane-addresses
ca=/etc/kubernetes/pki/ca.crt
probe_rounds=3
probe_interval=10
log() { echo "coe-bootstrap: $*" >&2; }

if [ -e /etc/kubernetes/kubelet.conf ]; then
  log "this node is already part of a cluster; nothing to do"
  exit 0
fi

swapoff -a || true
sed -i '/[[:space:]]swap[[:space:]]/ s/^[^#]/#&/' /etc/fstab || true
modprobe overlay || true
modprobe br_netfilter || true
sysctl --system >/dev/null || true

if ! command -v kubeadm >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "kubeadm is not installed and this image has no apt-get:"
    log "use an image with kubeadm, kubelet and a container runtime"
    exit 1
  fi
  minor=$(echo "$version" | sed -E 's/^v?([0-9]+\.[0-9]+).*/\1/')
  patch=$(echo "$version" | sed -nE 's/^v?([0-9]+\.[0-9]+\.[0-9]+).*/\1/p')
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q apt-transport-https ca-certificates curl gpg containerd
  mkdir -p -m 0755 /etc/apt/keyrings
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/v$minor/deb/Release.key" \
    | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$minor/deb/ /" \
    > /etc/apt/sources.list.d/kubernetes.list
  apt-get update -q
  if [ -n "$patch" ]; then
    apt-get install -y -q "kubelet=$patch-*" "kubeadm=$patch-*" "kubectl=$patch-*"
  else
    apt-get install -y -q kubelet kubeadm kubectl
  fi
  apt-mark hold kubelet kubeadm kubectl
fi

# containerd with the systemd cgroup driver, which kubeadm configures the kubelet for
if command -v containerd >/dev/null 2>&1 && ! grep -qs 'SystemdCgroup = true' /etc/containerd/config.toml; then
  mkdir -p /etc/containerd
  containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > /etc/containerd/config.toml
  systemctl restart containerd || true
fi
systemctl enable kubelet || true

# the API VIP's keepalived: the interface that reaches the VIP's subnet, known only here
if grep -qs '@INTERFACE@' /etc/keepalived/keepalived.conf; then
  vip=${endpoint%:*}
  vip=${vip#\[}
  vip=${vip%\]}
  dev=$(ip -o route get "$vip" 2>/dev/null | sed -n 's/.* dev \([^ ]*\).*/\1/p')
  sed -i "s/@INTERFACE@/${dev:-eth0}/" /etc/keepalived/keepalived.conf
fi

# --- coe-bootstrap: decide and run kubeadm (the unit tests run this part alone)
own_addresses() { hostname -I 2>/dev/null || true; }

answers() {
  code=$(curl -s -o /dev/null -w '%{http_code}' --connect-timeout 5 --max-time 10 \
    --cacert "$ca" "https://$1/readyz" 2>/dev/null) || true
  case "$code" in
    "" | 000) return 1 ;;
  esac
  return 0
}

existing_control_plane() {
  [ -r "$candidates" ] || return 1
  own=" $(own_addresses) "
  round=1
  while :; do
    while read -r address; do
      [ -n "$address" ] || continue
      host=${address%:*}
      host=${host#\[}
      host=${host%\]}
      case "$own" in
        *" $host "*) continue ;;
      esac
      if answers "$address"; then
        echo "$address"
        return 0
      fi
    done <"$candidates"
    if [ "$round" -ge "$probe_rounds" ]; then
      return 1
    fi
    round=$((round + 1))
    sleep "$probe_interval"
  done
}

wait_for_api() {
  log "waiting for the API server at $endpoint"
  tries=0
  until curl -ksf -o /dev/null "https://$endpoint/readyz"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 180 ]; then
      log "the API server at $endpoint did not answer in 30 minutes"
      exit 1
    fi
    sleep 10
  done
}

# the first master's JoinConfiguration comes without nodeRegistration (it would double the
# node labels in the user-data): it is the InitConfiguration's, from $conf
join_config() {
  cat "$join_conf"
  awk '/^nodeRegistration:/ { p = 1; print; next } p && /^[^ ]/ { exit } p { print }' "$conf"
}

run_kubeadm() {
  case "$mode" in
    init)
      if ! command -v curl >/dev/null 2>&1; then
        log "curl is required to look for a running control plane before kubeadm init"
        exit 1
      fi
      if found=$(existing_control_plane); then
        log "a control plane of this cluster answers at $found: joining it as a control-plane node"
        log "instead of running kubeadm init again (a second, empty control plane)"
        if [ "$found" != "$endpoint" ]; then
          # kubeadm joins through the API address (controlPlaneEndpoint): when it points at
          # this node it never answers, and the join fails here rather than initialising
          log "the join goes through the API address $endpoint: if it points at this node,"
          log "move it to a running master"
        fi
        wait_for_api
        join_config >"$coe_dir/kubeadm-join-full.yaml"
        kubeadm join --config "$coe_dir/kubeadm-join-full.yaml"
        rm -f "$coe_dir/discovery.conf"
        return 0
      fi
      log "no control plane answers at any address in $candidates: kubeadm init"
      kubeadm init --config "$conf"
      rm -f "$coe_dir/discovery.conf"
      if [ -n "$cni_manifest" ]; then
        kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f "$cni_manifest"
      fi
      ;;
    join)
      wait_for_api
      kubeadm join --config "$conf"
      rm -f "$coe_dir/discovery.conf"
      ;;
    *)
      log "unknown mode $mode"
      exit 2
      ;;
  esac
}
# --- end of the part the unit tests run

run_kubeadm
log "done"
"""

MODULES_LOAD = "overlay\nbr_netfilter\n"
SYSCTL = "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n"


# --------------------------------------------------------------------------- versions


def kubeadm_api_version(coe_version):
    """'kubeadm.k8s.io/v1beta4' from Kubernetes 1.31, 'kubeadm.k8s.io/v1beta3' before."""
    version = supported_coe_version(coe_version)
    return "kubeadm.k8s.io/v1beta4" if version >= V1BETA4_FROM else "kubeadm.k8s.io/v1beta3"


def kubernetes_version(coe_version):
    """kubeadm's kubernetesVersion: 'v1.31.2', or 'stable-1.31' when no patch is given."""
    match = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", str(coe_version).strip())
    if match.group(3) is None:
        return "stable-%s.%s" % (match.group(1), match.group(2))
    return "v%s.%s.%s" % match.groups()


# --------------------------------------------------------------------------- labels and network


def _is_node_label_key(key):
    return "/" in key


def validate_node_label(key, value):
    """ValidationError unless key=value is a label the kubelet may set on its own node."""
    field = "labels.%s" % key
    prefix, _slash, name = key.rpartition("/")
    if not prefix or len(prefix) > 253 or not _PREFIX.match(prefix):
        raise ValidationError(field, "the prefix %r of a node label must be a DNS subdomain" % prefix)
    if not _NAME_PART.match(name):
        raise ValidationError(field, "%r is not a valid label name (63 characters, alphanumeric, - _ .)" % name)
    restricted = any(prefix == ns or prefix.endswith("." + ns) for ns in _RESTRICTED)
    allowed = any(prefix == ns or prefix.endswith("." + ns) for ns in _ALLOWED_RESTRICTED_PREFIXES)
    if restricted and not allowed:
        raise ValidationError(field, "the kubelet may not set labels under %s on its own node" % prefix)
    if not isinstance(value, str) or not _LABEL_VALUE.match(value):
        raise ValidationError(field, "%r is not a valid label value (63 characters, alphanumeric, - _ .)" % (value,))


def _find_nodegroup(cluster, name):
    for nodegroup in cluster.get("nodegroups") or []:
        if nodegroup.get("name") == name:
            return nodegroup
    return None


def node_labels(cluster, node):
    """The Kubernetes labels of one node: ours, then the cluster's, then its nodegroup's."""
    labels = {}
    for key, value in sorted((cluster.get("labels") or {}).items()):
        if _is_node_label_key(key):
            labels[key] = str(value)
    nodegroup = _find_nodegroup(cluster, node.get("nodegroup")) or {}
    for key, value in sorted((nodegroup.get("labels") or {}).items()):
        if _is_node_label_key(key):
            labels[key] = str(value)
    for key, value in labels.items():
        validate_node_label(key, value)
    labels[LABEL_ROLE] = node["role"]
    labels[LABEL_NODEGROUP] = node["nodegroup"]
    validate_node_label(LABEL_NODEGROUP, node["nodegroup"])
    return labels


def _label(cluster, *names, default=None):
    labels = cluster.get("labels") or {}
    for name in names:
        value = labels.get(name)
        if value not in (None, ""):
            return str(value).strip()
    return default


def _cidr(cluster, field, names, default):
    value = _label(cluster, *names, default=default)
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValidationError("labels.%s" % names[0], "%r is not a network CIDR: %s" % (value, exc)) from None


def network_settings(cluster):
    pod = _cidr(cluster, "pod", ("pod_network_cidr", "calico_ipv4pool", "flannel_network_cidr"), DEFAULT_POD_CIDR)
    service = _cidr(cluster, "service", ("service_cluster_ip_range",), DEFAULT_SERVICE_CIDR)
    if ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(service)):
        raise ValidationError(
            "labels.pod_network_cidr", "the pod network %s overlaps the service network %s" % (pod, service)
        )
    domain = _label(cluster, "dns_cluster_domain", default=DEFAULT_DNS_DOMAIN)
    if len(domain) > 253 or not _PREFIX.match(domain):
        raise ValidationError("labels.dns_cluster_domain", "%r is not a DNS domain" % domain)
    return dict(podSubnet=pod, serviceSubnet=service, dnsDomain=domain)


def cni_manifest_url(cluster):
    value = _label(cluster, "cni_manifest_url", default=DEFAULT_CNI_MANIFEST)
    if value.lower() == "none":
        return ""
    if not re.match(r"^https://[^\s]+$", value):
        raise ValidationError("labels.cni_manifest_url", "%r must be an https:// URL, or 'none'" % value)
    return value


def cert_sans(cluster):
    """The API server certificate's extra SANs: the endpoint's addresses (endpoint.api_sans:
    the API address's host and the VIP's or load balancer's fixed IP); for a single master,
    whose own address is the endpoint, every known master address as well."""
    sans = endpoint.api_sans(cluster)
    for address in cluster.get("master_addresses") or []:
        try:
            address = str(ipaddress.ip_address(str(address).strip()))
        except ValueError:
            raise ValidationError("master_addresses", "%r is not an IP address" % (address,)) from None
        if address not in sans and not endpoint.has_own_endpoint(cluster):
            sans.append(address)
    return sans


def control_plane_addresses(cluster):
    """host:port where the first master looks for a control plane before ``kubeadm init``:
    the endpoint the nodes join through, the API address, then every master address of the
    record on API_PORT."""
    host, port = endpoint.parse_api_address(cluster.get("api_address"))
    cert_sans(cluster)  # validates the master addresses
    out = [endpoint.control_plane_host(cluster)]
    for candidate in [endpoint.host_port(host, port)] + [
        endpoint.host_port(str(ipaddress.ip_address(str(address).strip())), API_PORT)
        for address in cluster.get("master_addresses") or []
    ]:
        if candidate not in out:
            out.append(candidate)
    return out


def check_bootstrap_inputs(cluster):
    """Everything render_user_data will validate, with no node and no credentials."""
    if not HAS_YAML:
        raise CoeError("The Python library 'PyYAML' is required to render user-data")
    name = str(cluster.get("name") or "")
    shape.check_label("name", name)
    version = pki.parse_coe_version(cluster.get("coe_version"))
    kubeadm_api_version(cluster.get("coe_version"))
    endpoint.parse_api_address(cluster.get("api_address"))
    if cluster.get("api_fixed_ip"):
        try:
            ipaddress.ip_address(str(cluster["api_fixed_ip"]))
        except ValueError:
            raise ValidationError("api_fixed_ip", "%r is not an IP address" % (cluster["api_fixed_ip"],)) from None
    if endpoint.endpoint_kind(cluster) == endpoint.VIP:
        if not cluster.get("api_fixed_ip"):
            raise ValidationError("api_fixed_ip", "a cluster whose API is on a VIP needs the VIP's address")
        keepalived_image(cluster)
    cert_sans(cluster)
    network_settings(cluster)
    cni_manifest_url(cluster)
    settings = pki.PkiSettings.from_labels(cluster.get("labels"))
    if settings.key_type == "ecdsa" and settings.key_size == 384 and version < ECDSA_P384_FROM:
        raise ValidationError(
            "labels.coe_pki_key_size", "kubeadm accepts ECDSA P-384 keys from Kubernetes 1.34; use 256 or RSA"
        )
    for key, value in (cluster.get("labels") or {}).items():
        if _is_node_label_key(key):
            validate_node_label(key, str(value))
    for nodegroup in cluster.get("nodegroups") or []:
        for key, value in (nodegroup.get("labels") or {}).items():
            if _is_node_label_key(key):
                validate_node_label(key, str(value))


# --------------------------------------------------------------------------- kubeadm documents


def _extra_args(api_version, args):
    """kubeadm extra args: a map in v1beta3, a list of {name, value} in v1beta4."""
    if api_version.endswith("v1beta4"):
        return [{"name": key, "value": value} for key, value in args.items()]
    return dict(args)


def _node_registration(api_version, node, labels, cluster=None):
    registration = {
        "name": node["name"],
        "kubeletExtraArgs": _extra_args(
            api_version, {"node-labels": ",".join("%s=%s" % item for item in labels.items())}
        ),
    }
    if cluster is not None and holds_vip(cluster, node):
        registration["ignorePreflightErrors"] = [MANIFESTS_PREFLIGHT]
    return registration


def _cluster_configuration(api_version, cluster, settings):
    doc = {
        "apiVersion": api_version,
        "kind": "ClusterConfiguration",
        "clusterName": cluster["name"],
        "kubernetesVersion": kubernetes_version(cluster["coe_version"]),
        "controlPlaneEndpoint": endpoint.control_plane_host(cluster),
        "certificatesDir": PKI_DIR,
        "apiServer": {"certSANs": cert_sans(cluster)},
        "networking": network_settings(cluster),
    }
    if api_version.endswith("v1beta4"):
        doc["encryptionAlgorithm"] = settings.kubeadm_encryption_algorithm()
    elif settings.key_type == "ecdsa":
        doc["featureGates"] = {"PublicKeysECDSA": True}
    return doc


def _discovery(api_version):
    discovery = {"file": {"kubeConfigPath": DISCOVERY_KUBECONFIG}}
    if not api_version.endswith("v1beta4"):
        discovery["timeout"] = DISCOVERY_TIMEOUT
    return discovery


def kubeadm_documents(cluster, node, settings):
    """The kubeadm configuration documents of one node, as dicts (the first master's
    InitConfiguration + ClusterConfiguration; everybody else's JoinConfiguration)."""
    if node["role"] == "master" and node.get("first_master"):
        api_version = kubeadm_api_version(cluster["coe_version"])
        registration = _node_registration(api_version, node, node_labels(cluster, node), cluster)
        init = {
            "apiVersion": api_version,
            "kind": "InitConfiguration",
            "nodeRegistration": registration,
            "localAPIEndpoint": {"bindPort": API_PORT},
        }
        return [init, _cluster_configuration(api_version, cluster, settings)]
    return join_documents(cluster, node)


def join_documents(cluster, node, registration=True):
    """The JoinConfiguration of one node (with ``controlPlane`` for a master). The first
    master gets one too, for when a control plane already answers (BOOTSTRAP_SH), without
    ``nodeRegistration`` (``registration=False``): the script copies its InitConfiguration's,
    so that the node labels are not twice in the user-data."""
    api_version = kubeadm_api_version(cluster["coe_version"])
    join = {"apiVersion": api_version, "kind": "JoinConfiguration", "discovery": _discovery(api_version)}
    if registration:
        join["nodeRegistration"] = _node_registration(api_version, node, node_labels(cluster, node), cluster)
    if node["role"] == "master":
        join["controlPlane"] = {"localAPIEndpoint": {"bindPort": API_PORT}}
    if api_version.endswith("v1beta4"):
        join["timeouts"] = {"discovery": DISCOVERY_TIMEOUT}
    return [join]


# --------------------------------------------------------------------------- the API VIP (keepalived)


def holds_vip(cluster, node):
    """True for a master of a cluster whose API is on a VIP: it runs keepalived."""
    return node["role"] == "master" and endpoint.endpoint_kind(cluster) == endpoint.VIP


def keepalived_image(cluster):
    value = _label(cluster, "keepalived_image", default=DEFAULT_KEEPALIVED_IMAGE)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$", value):
        raise ValidationError("labels.keepalived_image", "%r is not a container image reference" % value)
    return value


def vrrp_identity(cluster):
    """(virtual_router_id, auth_pass) of the cluster's VRRP instance, from its uuid: two
    clusters on one network keep apart (the password is no secret, only a cluster's mark)."""
    digits = re.sub(r"[^0-9a-fA-F]", "", str(cluster.get("uuid") or "")) or "0"
    return int(digits[:8], 16) % 255 + 1, (digits[8:16] or digits).lower()[:8]


def keepalived_files(cluster, node):
    """The keepalived static pod of a master, its configuration and its health check.

    Every master is a BACKUP with the same priority and ``nopreempt``: the one that holds
    the VIP keeps it while its API server answers; when its check fails (or the master is
    gone) another master takes the address and announces it (gratuitous ARP). The
    interface is filled in by the bootstrap script (``@INTERFACE@``)."""
    vip = endpoint.api_host(cluster["api_fixed_ip"])
    prefix = 128 if ":" in vip else 32
    router_id, password = vrrp_identity(cluster)
    conf = (
        "global_defs {\n"
        "  router_id %(node)s\n"
        "  enable_script_security\n"
        "  script_user root\n"
        "  vrrp_garp_master_refresh 60\n"
        "}\n"
        "vrrp_script coe_apiserver {\n"
        '  script "%(check)s"\n'
        "  interval 3\n"
        "  timeout 5\n"
        "  fall 3\n"
        "  rise 2\n"
        "}\n"
        "vrrp_instance coe_api {\n"
        "  state BACKUP\n"
        "  nopreempt\n"
        "  interface @INTERFACE@\n"
        "  virtual_router_id %(router_id)d\n"
        "  priority 100\n"
        "  advert_int 1\n"
        "  authentication {\n"
        "    auth_type PASS\n"
        "    auth_pass %(password)s\n"
        "  }\n"
        "  virtual_ipaddress {\n"
        "    %(vip)s/%(prefix)d\n"
        "  }\n"
        "  track_script {\n"
        "    coe_apiserver\n"
        "  }\n"
        "}\n"
    ) % dict(node=node["name"], check=KEEPALIVED_CHECK, router_id=router_id, password=password, vip=vip, prefix=prefix)
    check = (
        "#!/bin/sh\n"
        "# coe.openstack: this master may hold the API VIP while its own API server answers\n"
        "exec curl -sfk --max-time 3 -o /dev/null https://127.0.0.1:%d/healthz\n" % API_PORT
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "keepalived", "namespace": "kube-system", "labels": {"app": "coe-api-vip"}},
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "containers": [
                {
                    "name": "keepalived",
                    "image": keepalived_image(cluster),
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_BROADCAST", "NET_RAW"]}},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/usr/local/etc/keepalived/keepalived.conf", "readOnly": True},
                        {"name": "check", "mountPath": KEEPALIVED_CHECK, "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "hostPath": {"path": KEEPALIVED_CONF, "type": "File"}},
                {"name": "check", "hostPath": {"path": KEEPALIVED_CHECK, "type": "File"}},
            ],
        },
    }
    return [
        _file(KEEPALIVED_CONF, conf, "0644"),
        _file(KEEPALIVED_CHECK, check, "0755"),
        _file(KEEPALIVED_MANIFEST, _dump(pod), "0600"),
    ]


# --------------------------------------------------------------------------- cloud-config


# libyaml's emitter when PyYAML has it: the same text, ~15 times faster (a 50-worker
# create renders 51 user-data documents before its first server is created)
if HAS_YAML:

    class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
        """SafeDumper that writes multi-line strings (PEM, scripts) as literal blocks."""

    def _str(dumper, data):
        if "\n" in data:
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
        return dumper.represent_scalar("tag:yaml.org,2002:str", data)

    _Dumper.add_representer(str, _str)


def _dump(doc):
    return yaml.dump(doc, Dumper=_Dumper, default_flow_style=False, sort_keys=False, width=1000)


def _file(path, content, permissions="0600"):
    return {"path": path, "content": content, "owner": "root:root", "permissions": permissions}


def _check_node(cluster, node):
    for key in ("name", "role", "nodegroup"):
        if not node.get(key):
            raise ValidationError("node.%s" % key, "is required to render user-data")
    if node["role"] not in ("master", "worker"):
        raise ValidationError("node.role", "must be 'master' or 'worker', got %r" % (node["role"],))
    if node.get("first_master") and node["role"] != "master":
        raise ValidationError("node.first_master", "only a master can be the first master")
    shape.check_label("node.name", node["name"])


def package_version(coe_version):
    """'v1.31.2' → '1.31.2', '1.31' → '1.31': what the bootstrap script installs."""
    match = re.match(r"^v?(\d+\.\d+(?:\.\d+)?)", str(coe_version).strip())
    return match.group(1)


def render_user_data(cluster, node, credentials, clock=None, allow_gzip=True):
    """The ``#cloud-config`` user-data of one node (see the module docstring).

    CoeError when the text is over Nova's limit even gzipped, or, with ``allow_gzip``
    false (Heat, which cannot carry binary user-data), over the limit at all.
    """
    check_bootstrap_inputs(cluster)
    _check_node(cluster, node)
    # the nodes join through the endpoint's fixed address when the API has one of its own
    api_endpoint = endpoint.control_plane_host(cluster)
    files = []
    is_master = node["role"] == "master"
    if is_master:
        for name, content in credentials.kubeadm_files().items():
            files.append(_file("%s/%s" % (PKI_DIR, name), content))
    documents = kubeadm_documents(cluster, node, credentials.settings)
    files.append(_file(KUBEADM_CONFIG, "".join("---\n" + _dump(doc) for doc in documents)))
    first = is_master and node.get("first_master")
    if first:
        # what the script needs to join instead of initialising (see BOOTSTRAP_SH)
        files.append(
            _file(
                KUBEADM_JOIN_CONFIG,
                "".join("---\n" + _dump(doc) for doc in join_documents(cluster, node, registration=False)),
            )
        )
        files.append(
            _file(CONTROL_PLANE_ADDRESSES, "".join(a + "\n" for a in control_plane_addresses(cluster)), "0644")
        )
    # every node, the first master included, has its own identity to join with
    identity = pki.issue_node_certificate(credentials, node["name"], clock=clock)
    files.append(
        _file(
            DISCOVERY_KUBECONFIG,
            pki.kubeconfig(
                cluster["name"],
                "https://" + api_endpoint,
                credentials.ca.cert_pem,
                identity.cert_pem,
                identity.key_pem,
                pki.NODE_USER_PREFIX + node["name"],
            ),
        )
    )
    files.append(_file("/etc/modules-load.d/coe-kubernetes.conf", MODULES_LOAD, "0644"))
    files.append(_file("/etc/sysctl.d/90-coe-kubernetes.conf", SYSCTL, "0644"))
    files.append(_file(BOOTSTRAP_SCRIPT, BOOTSTRAP_SH, "0700"))
    if holds_vip(cluster, node):
        files.extend(keepalived_files(cluster, node))
    command = [BOOTSTRAP_SCRIPT, "init" if first else "join", package_version(cluster["coe_version"]), api_endpoint]
    if first and cni_manifest_url(cluster):
        command.append(cni_manifest_url(cluster))
    doc = {"write_files": files, "runcmd": [command]}
    text = "#cloud-config\n" + _dump(doc)
    size = user_data_size(text)
    if size > NOVA_USER_DATA_LIMIT:
        packed = user_data_size(gzip.compress(text.encode("utf-8"), mtime=0))
        if not allow_gzip or packed > NOVA_USER_DATA_LIMIT:
            raise CoeError(
                "The user-data of node %s is %d bytes in base64, over Nova's limit of %d%s: use fewer or "
                "shorter labels." % (node["name"], size, NOVA_USER_DATA_LIMIT, " even compressed" if allow_gzip else "")
            )
    return text


def user_data_size(data):
    """Length of ``data`` (str or bytes) once base64-encoded, as Nova counts it."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return len(base64.b64encode(data))


def encode_user_data(text):
    """Bytes for Nova: the text as is when it fits, else gzip (cloud-init reads gzip)."""
    raw = text.encode("utf-8")
    if user_data_size(raw) <= NOVA_USER_DATA_LIMIT:
        return raw
    packed = gzip.compress(raw, mtime=0)
    if user_data_size(packed) > NOVA_USER_DATA_LIMIT:
        raise CoeError("The user-data is over Nova's limit of %d bytes even compressed." % NOVA_USER_DATA_LIMIT)
    return packed
