# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Server views: what both drivers read of a Nova server, in one shape.

``server_views(servers)`` gives the views of the servers a list call returned that still
exist (``live``: not ``DELETED``); ``server_view(server)`` takes one openstacksdk Server,
or the dict Nova's API returns for one, and gives a plain dict:

* ``id``, ``name``, ``status``, ``created_at``, ``image_id``, ``flavor_id``,
  ``flavor_name`` (Nova shows a flavor's name, not its id, since microversion 2.47);
* ``task_state``: Nova's (``scheduling``, ``spawning``...), None when idle or hidden by policy;
* ``fault``: Nova's fault text, ``"<message> (code <code>)"``, None without a fault;
* ``fixed_addresses``, ``floating_addresses``: every address of the kind, networks in
  the order the cloud lists them (the first is the first port's), IPv4 before IPv6;
* ``tags``, ``metadata`` (a copy) and what the collection's tags and metadata say
  (shape.py): ``cluster_uuid`` (metadata, else the ``coe-cluster-<uuid>`` tag),
  ``nodegroup``, ``role``, ``index`` (None when not recorded), ``coe_version``, ``template`` and
  ``template_version`` (the cluster template version it was made from, None when not recorded);
* ``key_name``: the server's keypair.

Plain Python: no ansible and no openstack import (``wait_until_forgotten`` is given the list call).
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils import poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import WaitTimeout

# what a module returns for a server (nova_servers' RETURN)
PUBLIC_KEYS = (
    "id",
    "name",
    "status",
    "nodegroup",
    "role",
    "image_id",
    "flavor_name",
    "fault",
    "fixed_addresses",
    "floating_addresses",
    "created_at",
)


def attr(obj, key, default=None):
    """An attribute of an openstacksdk resource or a key of a dict; ``default`` for None."""
    if obj is None:
        return default
    value = obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)
    return default if value is None else value


def fault_text(server):
    """Nova's fault of a server as one text, ``"<message> (code <code>)"``, or None."""
    fault = attr(server, "fault")
    if not fault:
        return None
    message = str(attr(fault, "message") or "").strip() or "unknown fault"
    code = attr(fault, "code")
    return "%s (code %s)" % (message, code) if code else message


def _is_v4(entry):
    version = entry.get("version")
    if version is not None:
        return str(version) == "4"
    return ":" not in str(entry.get("addr") or "")


def split_addresses(addresses):
    """``([fixed...], [floating...])`` from a server's ``addresses`` (Nova's
    ``{network: [{addr, version, OS-EXT-IPS:type}]}``): networks in the cloud's order,
    IPv4 before IPv6 within each kind. An entry without a type is a fixed address."""
    fixed = []
    floating = []
    for entries in (addresses or {}).values():
        for entry in entries or ():
            if not entry.get("addr"):
                continue
            kind = floating if entry.get("OS-EXT-IPS:type") == "floating" else fixed
            kind.append(entry)
    return (
        [e["addr"] for e in sorted(fixed, key=lambda e: not _is_v4(e))],
        [e["addr"] for e in sorted(floating, key=lambda e: not _is_v4(e))],
    )


def _index(metadata):
    for key in (shape.META_INDEX, shape.META_NODE_INDEX):
        value = metadata.get(key)
        if value is not None and str(value).isdigit():
            return int(value)
    return None


def server_views(servers):
    """The views of the servers a Nova list returned, without the deleted ones (``live``)."""
    return live([server_view(s) for s in servers])


def live(views):
    """The views of the servers that still exist.

    Nova lists a server it has deleted for a moment longer, with status ``DELETED``: its
    compute marks it deleted, then updates its resource tracker and Placement, and only
    then destroys the record (seconds, on a busy compute). A GET of it already says
    ``DELETED`` (openstacksdk's ``wait_for_delete`` returns there). Such a server is gone:
    missing from its nodegroup, never a member in another status. A wait for a deletion
    still waits until Nova no longer lists it. ``SOFT_DELETED`` servers (restorable) stay.
    """
    return [v for v in views if v["status"] != "DELETED"]


def listed_deleted(views):
    """The views ``live`` leaves out: the servers Nova still lists as ``DELETED``."""
    return [v for v in views if v["status"] == "DELETED"]


#: the longest wait for Nova to forget a deleted server; past it the run goes on (a server
#: Nova failed to destroy stays DELETED until Nova's own cleanup: Nova's answer then tells)
FORGET_TIMEOUT = 60


def wait_until_forgotten(list_servers, timeout=FORGET_TIMEOUT, sleep=None, interval=1.0, progress=None):
    """Wait until ``list_servers()`` (one cluster's servers, as Nova lists them) shows no
    ``DELETED`` one: until then their hosts still count in their server groups, so a member
    made again at once may find no host (an anti-affine master). One list when there is none.
    Gives up after ``timeout`` seconds (at most FORGET_TIMEOUT), saying so to ``progress``."""

    def probe():
        views = [server_view(s) for s in list_servers()]
        dying = sorted(v["name"] for v in listed_deleted(views))
        if dying:
            return poll.Pending("still listed DELETED: %s" % ", ".join(dying), servers=dying)
        return views

    try:
        poll.wait_for(
            probe, "Nova to forget the deleted servers", min(timeout, FORGET_TIMEOUT), interval=interval, sleep=sleep
        )
    except WaitTimeout as e:
        if progress is not None:
            progress("going on: %s" % e)


def server_view(server):
    """The plain dict of one server (see the module docstring)."""
    metadata = dict(attr(server, "metadata") or {})
    tags = list(attr(server, "tags") or [])
    image = attr(server, "image")
    flavor = attr(server, "flavor")
    fixed, floating = split_addresses(attr(server, "addresses"))
    return dict(
        id=attr(server, "id"),
        name=attr(server, "name"),
        status=attr(server, "status"),
        task_state=attr(server, "task_state") or None,
        cluster_uuid=metadata.get(shape.META_CLUSTER_UUID) or shape.uuid_from_tags(tags),
        nodegroup=metadata.get(shape.META_NODEGROUP),
        role=metadata.get(shape.META_ROLE),
        index=_index(metadata),
        coe_version=metadata.get(shape.META_VERSION),
        template=metadata.get(shape.META_TEMPLATE) or None,
        template_version=int(metadata[shape.META_TEMPLATE_VERSION])
        if str(metadata.get(shape.META_TEMPLATE_VERSION) or "").isdigit()
        else None,
        key_name=attr(server, "key_name") or None,
        image_id=attr(image, "id") or None,
        flavor_id=attr(flavor, "id") or None,
        flavor_name=attr(flavor, "original_name") or attr(flavor, "name") or None,
        created_at=attr(server, "created_at"),
        fault=fault_text(server),
        fixed_addresses=fixed,
        floating_addresses=floating,
        tags=tags,
        metadata=metadata,
    )


def with_floating_ips(views, floating_ips):
    """``views`` with the floating addresses Neutron has attached that Nova does not show yet.

    Neutron attaches a floating IP at once; Nova's view of the server's addresses follows
    a moment later (its network info cache). A floating IP whose ``port_details`` name a
    server (Neutron's ``fip-port-details`` extension) counts as that server's, so that an
    observation right after the attachment records what the next one will. Without the
    extension the views are what Nova shows.
    """
    by_server = {}
    for ip in floating_ips or ():
        device = attr(attr(ip, "port_details"), "device_id")
        address = attr(ip, "floating_ip_address")
        if device and address and attr(ip, "port_id"):
            by_server.setdefault(device, []).append(address)
    out = []
    for view in views:
        extra = [a for a in sorted(by_server.get(view["id"], ())) if a not in (view.get("floating_addresses") or ())]
        out.append(dict(view, floating_addresses=list(view.get("floating_addresses") or []) + extra) if extra else view)
    return out


def public_view(view):
    """What a module returns for a server."""
    return {k: view.get(k) for k in PUBLIC_KEYS}


def fixed_address(view):
    """The server's first fixed address (IPv4 first), or None."""
    return (view.get("fixed_addresses") or [None])[0]


def floating_address(view):
    """The server's first floating address (IPv4 first), or None."""
    return (view.get("floating_addresses") or [None])[0]
