# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster's API endpoint: whether it is a floating IP, and how its address is written.

One rule for both drivers and the planner (docs/internals.md, "The API endpoint";
docs/control-plane.md):

- ``endpoint_kind``: what carries the API. A load balancer (``LOAD_BALANCER``) when the
  template says ``master_lb_enabled``; else a VIP (``VIP``: a Neutron port whose fixed IP
  the masters may carry, held by keepalived) when the cluster has more than one master;
  else the single master (``MASTER``, its own port). The planner records the kind at
  create (the record's ``api_endpoint``) and it never changes: another endpoint later
  would be in no certificate and no kubeconfig. A record written before the rule (no
  ``api_endpoint``) keeps the single-master endpoint its certificates name.
- ``control_plane_host`` and ``api_sans``: the endpoint's addresses. ``api_address``
  (below) is the public one (the floating IP, else the endpoint's fixed IP); a driver that
  knows the endpoint's fixed IP (the VIP's or the load balancer's) hands it to the
  renderer as the record's ``api_fixed_ip``: the nodes join through it
  (``controlPlaneEndpoint``), and the API certificate names both. Never a master's own
  address, except for the single-master endpoint, where that address is the endpoint.
- ``api_floating_ip``: the API gets a floating IP when the cluster has an external
  network and does not say ``floating_ip_enabled: false`` (Magnum's default);
  ``floating_ip_enabled: true`` without an external network is refused.
- ``api_url``: ``api_address`` is Magnum's URL, ``https://ADDR:6443``, in records,
  observations, module returns and docs alike. ``parse_api_address`` reads that form and
  the bare address that records written by 0.1.0 hold (``10.0.0.5``, ``[fd00::1]:6443``,
  ``api.example.com:443``); the bare host is what certificates (SANs) and kubeadm's
  ``controlPlaneEndpoint`` take, and what the cloud calls a floating IP's ``address``.

Plain Python: no ansible and no openstack import.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

API_PORT = 6443

#: What carries the API (``endpoint_kind``; the record's ``api_endpoint``).
LOAD_BALANCER = "load_balancer"
VIP = "vip"
MASTER = "master"
ENDPOINT_KINDS = (LOAD_BALANCER, VIP, MASTER)

_TRUE = ("true", "1", "yes", "on", "t", "y")


def as_bool(value):
    """A boolean from a record (a bool) or a Heat stack parameter (the string ``"false"``)."""
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)


def _field(cluster, *names):
    """The first of ``names`` the record sets, else the template spec it carries sets."""
    for source in (cluster or {}, (cluster or {}).get("template") or {}):
        for name in names:
            if source.get(name) not in (None, ""):
                return source[name]
    return None


def external_network(cluster, override=None):
    """The external network of the cluster's API floating IP (record, then template), or None."""
    return override or _field(cluster, "external_network_id", "external_network")


def api_floating_ip(cluster, floating_ip_enabled=None, external=None, field="external_network_id"):
    """``(floating_ip, external_network)``: does the cluster's API get a floating IP, and from where.

    ``cluster`` is a cluster record (its ``template`` spec is read after it) or a template
    spec. ``floating_ip_enabled`` and ``external`` are a caller's overrides (a driver
    option). Not set anywhere, ``floating_ip_enabled`` is true exactly when there is an
    external network. Raises ValidationError naming ``field`` (a driver names its option)
    when a floating IP is asked for without one.
    """
    network = external_network(cluster, external)
    wanted = floating_ip_enabled
    if wanted is None:
        wanted = _field(cluster, "floating_ip_enabled")
    wanted = bool(network) if wanted is None else as_bool(wanted)
    if wanted and not network:
        raise ValidationError(
            field, "floating_ip_enabled needs an external network (external_network_id) for the API's floating IP"
        )
    return wanted, network or None


# -- what carries the API ------------------------------------------------------------


def master_count(cluster):
    """The number of masters of a record (``master_count``, else its master nodegroup's), or 1."""
    cluster = cluster or {}
    if cluster.get("master_count") not in (None, ""):
        return int(cluster["master_count"])
    for group in cluster.get("nodegroups") or []:
        if isinstance(group, dict) and group.get("role") == "master" and group.get("node_count") is not None:
            return int(group["node_count"])
    return 1


def endpoint_kind(cluster, masters=None):
    """``LOAD_BALANCER``, ``VIP`` or ``MASTER``: what carries the cluster's API (module docstring).

    ``cluster``: a record (its recorded ``api_endpoint`` wins; else ``master_lb_enabled`` of
    the record, then of its template spec) or a template spec. ``masters``: the master
    count when the caller knows it (the planner's desired count), else the record's.
    """
    recorded = (cluster or {}).get("api_endpoint")
    if recorded not in (None, ""):
        if recorded not in ENDPOINT_KINDS:
            raise ValidationError("api_endpoint", "%r is not one of %s" % (recorded, ", ".join(ENDPOINT_KINDS)))
        return recorded
    if as_bool(_field(cluster, "master_lb_enabled")):
        return LOAD_BALANCER
    count = master_count(cluster) if masters is None else int(masters)
    return VIP if count > 1 else MASTER


def has_own_endpoint(cluster):
    """True when the API is on an endpoint of its own (a load balancer or a VIP), not a master."""
    return endpoint_kind(cluster) != MASTER


def control_plane_host(cluster):
    """``HOST:PORT`` the nodes join through (kubeadm's ``controlPlaneEndpoint``).

    The endpoint's fixed IP (``api_fixed_ip``, given by the driver) when the API has an
    endpoint of its own: inside the cluster's network, no floating IP on the way. Else the
    API address itself (the single master's floating or fixed IP, as before).
    """
    host, port = parse_api_address(cluster.get("api_address"))
    fixed = cluster.get("api_fixed_ip")
    if fixed and has_own_endpoint(cluster):
        host = api_host(fixed)
    return host_port(host, port)


def api_sans(cluster):
    """The endpoint's addresses the API server certificate names: the API address's host
    (the floating IP, or the endpoint's fixed IP) and the endpoint's fixed IP (``api_fixed_ip``)."""
    sans = [parse_api_address(cluster.get("api_address"))[0]]
    fixed = cluster.get("api_fixed_ip")
    if fixed and api_host(fixed) not in sans:
        sans.append(api_host(fixed))
    return sans


def vip_addresses(ports, floating_ips=()):
    """``{cluster uuid: (fixed IP, floating IP or None)}`` of the API VIP ports read (those
    tagged ``shape.API_VIP_TAG``; openstacksdk ports) and the floating IPs read (any: the
    one whose ``port_id`` is a VIP port's is that VIP's). What both synchronisers observe."""
    floating = {getattr(ip, "port_id", None): getattr(ip, "floating_ip_address", None) for ip in floating_ips}
    out = {}
    for port in ports:
        tags = getattr(port, "tags", None) or []
        uuid = shape.uuid_from_tags(tags)
        fixed = [f.get("ip_address") for f in getattr(port, "fixed_ips", None) or [] if f.get("ip_address")]
        if uuid and fixed and shape.API_VIP_TAG in tags:
            out[uuid] = (fixed[0], floating.get(port.id))
    return out


def read_vip_addresses(conn, clusters, floating_ips=None):
    """``vip_addresses`` of the cloud, read only when one of ``clusters`` has its API on a VIP:
    one tag-filtered port list, and (``floating_ips`` None) one floating IP list."""
    if not any(endpoint_kind(c) == VIP for c in clusters):
        return {}
    ports = list(conn.network.ports(tags=shape.API_VIP_TAG))
    if not ports:
        return {}
    if floating_ips is None:
        floating_ips = list(conn.network.ips())
    return vip_addresses(ports, floating_ips)


def lb_allowed_cidrs(cluster):
    """The API listener's ``allowed_cidrs``: Magnum's label ``master_lb_allowed_cidrs`` (comma
    separated; the cluster's labels, merged over its template's) or the template field of that
    name. Empty: Octavia's default, every source. ValidationError names the label."""
    value = _field(cluster, "master_lb_allowed_cidrs")
    if value is None:
        labels = dict(((cluster or {}).get("template") or {}).get("labels") or {})
        labels.update((cluster or {}).get("labels") or {})
        value = labels.get("master_lb_allowed_cidrs")
    items = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    cidrs = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            cidrs.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValidationError("labels.master_lb_allowed_cidrs", "%r is not a CIDR" % item) from None
    return sorted(set(cidrs))


# -- the address ----------------------------------------------------------------------


def parse_api_address(api_address, default_port=API_PORT):
    """'https://10.0.0.5:6443' / '10.0.0.5' / 'api.example.com:443' / '[fd00::1]:6443' → (host, port)."""
    value = str(api_address or "").strip()
    if not value:
        raise ValidationError("api_address", "the cluster has no API address yet")
    value = re.sub(r"^https?://", "", value).rstrip("/")
    host, port = value, default_port
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\](?::(\d+))?$", value)
    if match:
        host, port = match.group(1), int(match.group(2) or default_port)
    elif value.count(":") == 1:
        host, _colon, port_s = value.partition(":")
        if not port_s.isdigit():
            raise ValidationError("api_address", "%r has no valid port" % (api_address,))
        port = int(port_s)
    elif value.count(":") > 1:
        host = value  # a bare IPv6 address
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$", host):
            raise ValidationError(
                "api_address", "%r is neither an IP address nor a DNS name" % (api_address,)
            ) from None
    if not 0 < port < 65536:
        raise ValidationError("api_address", "port %d is out of range" % port)
    return host, port


def host_port(host, port):
    """'host:port', with brackets around an IPv6 address."""
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def api_server_url(api_address):
    """``https://HOST:PORT`` of an API address in any form; ValidationError when there is none."""
    return "https://" + host_port(*parse_api_address(api_address))


def api_url(api_address):
    """Magnum's ``api_address`` (``https://ADDR:6443``) of an address in any form; None stays None."""
    if api_address in (None, ""):
        return None
    return api_server_url(api_address)


def api_host(api_address):
    """The bare host of an API address in any form (what certificates and floating IPs name)."""
    return parse_api_address(api_address)[0]
