# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Aggregate server views into what the Nova synchroniser reports.

Plain Python (no ansible, no openstack): ``aggregate(record, views)`` takes
one cluster record (docs/internals.md) and the views (servers.server_views) of
the servers tagged with its uuid, and returns the fields of a
``sync.base.Observation``.

Status, from the record's status ``<ACTION>_<STATE>``:

* while ``<ACTION>_IN_PROGRESS``: the one rule of both synchronisers (sync/base.py,
  docs/state-machine.md "What a synchroniser observes"), the Nova driver being the
  orchestration: servers still missing are its to make (PENDING), so a nodegroup is
  ``<ACTION>_IN_PROGRESS`` while a server builds, it has more or fewer servers than desired,
  or (during an update) runs another image; ``<ACTION>_FAILED`` with the faults when a server
  is in ERROR (or not ACTIVE); ``<ACTION>_COMPLETE`` when every desired server exists and is
  ACTIVE. The cluster rolls them up, IN_PROGRESS > FAILED > COMPLETE. ``DELETE_IN_PROGRESS``
  becomes ``DELETE_COMPLETE`` when no server is left (a nodegroup, when none of its is);
* otherwise None: nothing to say, the record keeps its status (and each
  nodegroup the status its last operation gave it); health and faults still
  report what the cloud shows (drift). So a second observation of an
  unchanged cloud changes nothing in the record.

Health: UNHEALTHY with reasons (``{nodegroup or server: reason}``) naming
missing servers (fewer than desired; named after the record's known nodes,
which stay in the nodegroup's ``nodes`` with status MISSING so that the
record keeps their names until a repair creates them again),
unexpected servers (more than desired, or of no known nodegroup) and servers
in ERROR or not ACTIVE; HEALTHY (``{}``) otherwise; UNKNOWN while an
operation is in progress (as the Heat synchroniser does).

Existence: ``exists`` is true while a server of the cluster exists and, unless the cluster
is being deleted (``DELETE_*``), while the record knows nodes of it: a cluster whose
servers are all gone behind our back is reported with every known node MISSING and
UNHEALTHY (a repair rebuilds it), not as "nothing of the cluster exists".

Addresses: master and node addresses are fixed IPs; the API address is
``https://ADDR:6443`` of the cluster's tagged floating IP, else (``master_lb_enabled``)
of its load balancer's VIP, else (a cluster whose API is on a VIP) of the VIP port's
fixed IP, else of a floating IP a master shows, else of the first master's fixed IP.

Load balancer (``endpoint.endpoint_kind`` says LOAD_BALANCER): the cluster's tagged
Octavia load balancer is one of its resources. In ERROR (``provisioning_status``) it fails
an operation in progress and makes the cluster UNHEALTHY, named; missing while the cluster
exists, UNHEALTHY; PENDING_* keeps an operation in progress.

The Nova driver's state synchroniser.

ONE server list, filtered server-side by the tag every cluster server
carries (``coe-cluster``), covers every cluster given: the servers are
grouped by cluster uuid (metadata, or the ``coe-cluster-<uuid>`` tag) and
aggregated per nodegroup (nova/observe.py). ONE floating IP list (same tag)
gives the API addresses; ONE load balancer list (same tag) when a cluster has
``master_lb_enabled``. Two or three API calls, whatever the number of clusters
(each retried on a dropped connection). It observes and returns; it never
writes.
"""

from __future__ import annotations

import concurrent.futures

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, loadbalancer, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.nova.client import retry_read
from ansible_collections.coe.openstack.plugins.module_utils.servers import (
    fixed_address,
    server_views,
    with_floating_ips,
)
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import (
    PENDING,
    TRANSITIONAL_SERVER_STATUSES,
    WORKING,
    Observation,
    StateSynchroniser,
    nodegroup_state,
    roll_up,
)


def desired_nodegroups(record):
    """``[{name, role, node_count, image_id, nodes: [names]}]`` of a record."""
    groups = []
    for group in record.get("nodegroups") or ():
        nodes = [n["name"] if isinstance(n, dict) else n for n in group.get("nodes") or ()]
        groups.append(
            dict(
                name=group["name"],
                role=group.get("role") or ("master" if group["name"] == shape.MASTER_NODEGROUP else "worker"),
                node_count=int(group.get("node_count") or 0),
                image_id=group.get("image_id") or record.get("image_id"),
                nodes=nodes,
                status=group.get("status"),
            )
        )
    if not groups:
        groups = [
            dict(
                name=shape.MASTER_NODEGROUP,
                role="master",
                node_count=int(record.get("master_count") or 0),
                image_id=record.get("image_id"),
                nodes=[],
            ),
            dict(
                name=shape.WORKER_NODEGROUP,
                role="worker",
                node_count=int(record.get("node_count") or 0),
                image_id=record.get("image_id"),
                nodes=[],
            ),
        ]
    return groups


def _addresses(view):
    return list(view.get("floating_addresses") or []) + list(view.get("fixed_addresses") or [])


def _node(view):
    return dict(
        name=view["name"],
        id=view["id"],
        status=view["status"],
        addresses=_addresses(view),
        image_id=view.get("image_id"),
        fault=view.get("fault"),
    )


def _index(view, groups, cluster_name):
    if view.get("index") is not None:
        return view["index"]
    for group in groups:
        index = shape.node_index(view["name"], cluster_name, group["name"], group["role"])
        if index is not None:
            return index
    return 0


def _last_index(members, cluster_name, group):
    """The highest node index of the nodegroup's servers (None: none); indices start at 0."""
    indices = [
        v["index"]
        if v.get("index") is not None
        else shape.node_index(v["name"], cluster_name, group["name"], group["role"])
        for v in members
    ]
    indices = [i for i in indices if i is not None]
    return max(indices) if indices else None


def _group_of(view, groups, cluster_name):
    if view.get("nodegroup"):
        return view["nodegroup"]
    for group in groups:
        if shape.node_index(view["name"], cluster_name, group["name"], group["role"]) is not None:
            return group["name"]
    return None


def aggregate(record, views, floating_ips=(), load_balancer=None, vip=None):
    """The Observation fields for one cluster (see the module docstring).

    ``floating_ips``: the addresses of the cluster's tagged floating IPs (the
    API's); the first one is the API address even before Nova shows it in a
    server's addresses. ``load_balancer``: ``{name, provisioning_status, vip_address}`` of
    the cluster's tagged load balancer, or None.
    """
    uuid = record["uuid"]
    cluster_name = record.get("name") or ""
    record_status = record.get("status") or ""
    in_progress = record_status.endswith("_IN_PROGRESS")
    action = record_status[: -len("_IN_PROGRESS")] if in_progress else record_status.rpartition("_")[0]

    groups = desired_nodegroups(record)
    by_group = {g["name"]: [] for g in groups}
    strays = []
    for view in sorted(views, key=lambda v: (_index(v, groups, cluster_name), v["name"])):
        name = _group_of(view, groups, cluster_name)
        if name in by_group:
            by_group[name].append(view)
        else:
            strays.append(view)

    faults = {}
    problems = {}
    nodegroups = {}
    states = {}
    master_addresses = []
    node_addresses = []
    api_address = None

    for group in groups:
        members = by_group[group["name"]]
        counts = {}
        for view in members:
            counts[view["status"]] = counts.get(view["status"], 0) + 1
        errored = [v for v in members if v["status"] == "ERROR"]
        building = [v for v in members if v["status"] in TRANSITIONAL_SERVER_STATUSES]
        other = [v for v in members if v not in errored and v not in building and v["status"] != "ACTIVE"]
        outdated = []
        if group["image_id"] and shape.is_uuid(group["image_id"]):
            outdated = [v for v in members if v.get("image_id") and v["image_id"] != group["image_id"]]
        for view in errored:
            faults[view["name"]] = view.get("fault") or "server in ERROR"
        present = {v["name"] for v in members}
        missing_count = group["node_count"] - len(members)
        reasons = []
        missing = []
        if missing_count > 0:
            missing = [n for n in group["nodes"] if n not in present][:missing_count]
            named = list(missing)
            if len(named) < missing_count:
                named.append("%d more" % (missing_count - len(named)))
            reasons.append("missing servers: %s" % ", ".join(named))
        elif missing_count < 0:
            known = set(group["nodes"])
            ordered = [v["name"] for v in members if v["name"] not in known] + [
                v["name"] for v in members if v["name"] in known
            ]
            unexpected = ordered[:-missing_count]
            reasons.append("unexpected servers: %s" % ", ".join(unexpected))
        if errored:
            reasons.append("in ERROR: %s" % ", ".join("%s (%s)" % (v["name"], faults[v["name"]]) for v in errored))
        if other:
            reasons.append("not ACTIVE: %s" % ", ".join("%s (%s)" % (v["name"], v["status"]) for v in other))
        if in_progress:
            # the one rule (sync.base): servers still to make are the driver's to make (PENDING)
            group_status, group_reason = nodegroup_state(
                action,
                members,
                group["node_count"],
                PENDING,
                faults={v["name"]: faults[v["name"]] for v in errored},
                missing=missing,
                outdated=[v["name"] for v in outdated] if action == "UPDATE" else (),
            )
            states[group["name"]] = (group_status, group_reason)
        elif (group.get("status") or "").endswith("_IN_PROGRESS"):
            group_status = record_status or None  # the operation ended (e.g. timed out) as the cluster's did
        else:
            # no operation: the nodegroup keeps the status its last one gave it, so that observing
            # a completed cluster again changes nothing (health reports the drift)
            group_status = group.get("status")
        if reasons:
            problems[group["name"]] = "; ".join(reasons)
        addresses = [fixed_address(v) for v in members if v["status"] == "ACTIVE"]
        addresses = [a for a in addresses if a]
        if group["role"] == "master":
            master_addresses.extend(addresses)
            # the API floating IP, wherever it is, else the first master's fixed IP
            floating = [a for v in members for a in v.get("floating_addresses") or []]
            if floating:
                api_address = floating[0]
            elif addresses and api_address is None:
                api_address = addresses[0]
        else:
            node_addresses.extend(addresses)
        nodegroups[group["name"]] = dict(
            status=group_status,
            status_reason=(group_reason if in_progress else None) or "; ".join(reasons) or None,
            node_count=len(members),
            node_addresses=addresses,
            # a known node that is missing stays in the list (status MISSING), so
            # that the record keeps its name and a repair creates it again
            nodes=[_node(v) for v in members]
            + [
                dict(name=n, id=None, status="MISSING", addresses=[], image_id=None, fault="server not found")
                for n in missing
            ],
            counts=counts,
            last_index=_last_index(members, cluster_name, group),
        )
    if strays:
        for view in strays:
            problems[view["name"]] = "unexpected server (nodegroup %s is not in the cluster)" % view.get("nodegroup")
        for view in strays:
            if view["status"] == "ERROR":
                faults[view["name"]] = view.get("fault") or "server in ERROR"

    if endpoint.endpoint_kind(record) == endpoint.LOAD_BALANCER and (views or load_balancer):
        lb_problem = loadbalancer.problem(load_balancer, deleting=action == "DELETE")
        if lb_problem:
            problems[(load_balancer or {}).get("name") or "load_balancer"] = lb_problem
        if load_balancer is not None:
            if load_balancer.get("provisioning_status") == "ERROR":
                faults[load_balancer["name"]] = lb_problem
            api_address = load_balancer.get("floating_ip") or load_balancer.get("vip_address") or api_address
    if floating_ips:
        api_address = sorted(floating_ips)[0]
    elif vip is not None:
        api_address = vip[1] or vip[0]  # the API VIP's fixed IP: never a master's
    elif endpoint.endpoint_kind(record) == endpoint.VIP:
        api_address = None
    # A cluster whose servers are ALL gone still exists when the record knows nodes of it
    # and it is not being deleted: its known nodes are then all MISSING (above), health
    # names them, and the next create/update run rebuilds it (lifecycle: a repair).
    # Reporting "nothing exists" instead would leave the record's nodes as they were and
    # plan no repair. A cluster being deleted, or one whose record knows no node (a create
    # that never made a server), exists only while a server does.
    deleting = action == "DELETE"
    exists = bool(views) or bool(load_balancer) or (not deleting and any(g["nodes"] for g in groups))
    status = None
    reason = None
    if action == "DELETE" and in_progress:
        if not exists:
            status, reason = "DELETE_COMPLETE", "no server of the cluster is left"
        else:
            status, reason = "DELETE_IN_PROGRESS", "%d servers left" % len(views)
    elif in_progress:
        lb = load_balancer or {}
        lb_busy = (lb.get("provisioning_status") or "").startswith("PENDING_")
        lb_failure = None
        if lb.get("provisioning_status") == "ERROR" and action != "DELETE":
            lb_failure = "%s: %s" % (lb.get("name"), faults.get(lb.get("name")))
        # servers of no nodegroup of the record (a nodegroup being removed) are still to go
        orchestration = WORKING if strays or lb_busy else PENDING
        status, reason = roll_up(action, states, orchestration, cluster_failure=lb_failure)
        if strays and status.endswith("_IN_PROGRESS"):
            reason = "; ".join(
                [r for r in [reason] if r] + ["to remove: %s" % ", ".join(sorted(v["name"] for v in strays))]
            )
        if status.endswith("_COMPLETE"):
            reason = "all %d servers ACTIVE" % len(views)

    if in_progress and status and status.endswith("_IN_PROGRESS"):
        health, health_reason = "UNKNOWN", {"cluster": "%s: %s" % (status, reason)}
    elif problems:
        health, health_reason = "UNHEALTHY", problems
    elif not exists and any(g["node_count"] for g in groups):
        health, health_reason = "UNHEALTHY", {"cluster": "no server of the cluster exists"}
    else:
        health, health_reason = "HEALTHY", {}

    return dict(
        uuid=uuid,
        exists=exists,
        status=status,
        status_reason=reason,
        faults=faults,
        api_address=endpoint.api_url(api_address),
        master_addresses=master_addresses,
        node_addresses=node_addresses,
        nodegroups=nodegroups,
        health_status=health,
        health_status_reason=health_reason,
    )


class NovaSynchroniser(StateSynchroniser):
    """Cluster state from the servers Nova has, for clusters of the ``nova`` driver."""

    driver = "nova"

    def list_views(self):
        """Every cluster server of the project: one tag-filtered list."""
        return retry_read(lambda: server_views(self.conn.compute.servers(details=True, tags=shape.COMMON_TAG)))

    #: the reads of the last ``observe``; ``replay`` (set by sync_clusters while it observes a
    #: cluster it has just settled) answers from them instead of reading again
    _reads = None

    def read(self, clusters):
        """What ``observe`` reads, made at once: the cluster servers (Neutron's floating IP
        attachments added), the tagged floating IPs, the API VIPs and load balancers."""
        if self.replay and self._reads is not None:
            return self._reads
        poll.authenticated(self.conn)  # one token, before the threads use the connection
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            servers = pool.submit(self.list_views)
            tagged = pool.submit(retry_read, lambda: list(self.conn.network.ips(tags=shape.COMMON_TAG)))
            lbs = (
                pool.submit(loadbalancer.cluster_load_balancers, self.conn, retry_read)
                if any(endpoint.endpoint_kind(r) == endpoint.LOAD_BALANCER for r in clusters)
                else None
            )
            tagged = tagged.result()
            vips = retry_read(lambda: endpoint.read_vip_addresses(self.conn, clusters, tagged))
            views = with_floating_ips(servers.result(), tagged)
            lbs = lbs.result() if lbs is not None else {}
        self._reads = (views, tagged, vips, lbs)
        return self._reads

    def observe(self, clusters):
        clusters = list(clusters)
        if not clusters:
            return {}
        views, tagged, vips, lbs = self.read(clusters)
        by_uuid = {}
        for view in views:
            by_uuid.setdefault(view.get("cluster_uuid"), []).append(view)
        fips = {}
        for fip in tagged:
            uuid = shape.uuid_from_tags(getattr(fip, "tags", None) or [])
            if uuid and fip.floating_ip_address:
                fips.setdefault(uuid, []).append(fip.floating_ip_address)
        return {
            record["uuid"]: Observation(
                **aggregate(
                    record,
                    by_uuid.get(record["uuid"], []),
                    fips.get(record["uuid"], ()),
                    lbs.get(record["uuid"]),
                    vip=vips.get(record["uuid"]),
                )
            )
            for record in clusters
        }
