# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The API's Octavia load balancer as both synchronisers read it (``master_lb_enabled``).

``has_load_balancer_service(conn)``: the cloud's catalog, as this connection sees it, has
Octavia (``load-balancer``), not hidden by the cloud entry (openstacksdk's
``has_load_balancer: false``); preflight refuses ``master_lb_enabled`` without it.

``cluster_load_balancers(conn)``: ``{cluster uuid: view}`` of every cluster load balancer
of the project, in two list calls whatever the number of clusters (load balancers, floating
IPs). A load balancer is the cluster's by its tag ``coe-cluster-<uuid>`` (Nova driver) or
by its name ``coe-<cluster>-<uuid>-api`` (shape.load_balancer_name; Heat's
OS::Octavia::LoadBalancer takes no tags). A view is ``{id, name, provisioning_status,
operating_status, vip_address, vip_port_id, floating_ip}``.

``problem(view, deleting)``: what health says of it (None: nothing), ERROR named.

Takes a connection, imports no openstack.
"""

from __future__ import annotations

import re

from ansible_collections.coe.openstack.plugins.module_utils import shape

_NAME = re.compile(r"^coe-.*-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-api$")


def has_load_balancer_service(conn):
    """Does the cloud, as ``conn`` sees it, have Octavia (module docstring)."""
    config = getattr(conn, "config", None)
    if config is not None and not config.has_service("load-balancer"):
        return False
    return any((e or {}).get("type") == "load-balancer" for e in getattr(conn, "service_catalog", None) or [])


def uuid_of(lb):
    """The cluster uuid a load balancer belongs to (tag, else name), or None."""
    uuid = shape.uuid_from_tags(getattr(lb, "tags", None) or [])
    if uuid:
        return uuid
    match = _NAME.match(getattr(lb, "name", None) or "")
    return match.group(1) if match else None


def view(lb, floating_ip=None):
    return dict(
        id=lb.id,
        name=lb.name,
        provisioning_status=lb.provisioning_status,
        operating_status=lb.operating_status,
        vip_address=lb.vip_address,
        vip_port_id=lb.vip_port_id,
        floating_ip=floating_ip,
    )


def cluster_load_balancers(conn, read=lambda fn: fn()):
    """``{uuid: view}`` (module docstring); ``read``: the caller's retry of a read."""
    if not has_load_balancer_service(conn):
        return {}
    found = {}
    for lb in read(lambda: list(conn.load_balancer.load_balancers())):
        uuid = uuid_of(lb)
        if uuid:
            found[uuid] = lb
    if not found:
        return {}
    by_port = {}
    for fip in read(lambda: list(conn.network.ips())):
        if fip.port_id:
            by_port[fip.port_id] = fip.floating_ip_address
    return {uuid: view(lb, by_port.get(lb.vip_port_id)) for uuid, lb in found.items()}


def problem(lb_view, deleting=False):
    """What the cluster's health says of its load balancer: None when nothing is wrong."""
    if lb_view is None:
        return None if deleting else "the API load balancer is missing"
    if lb_view.get("provisioning_status") == "ERROR":
        return "load balancer %s in ERROR (provisioning_status ERROR)" % lb_view.get("name")
    return None
