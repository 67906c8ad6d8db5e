# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""What clusters the cloud has, whatever a store knows: the one lookup behind the twin check
(a create refused when the cloud already has a cluster of that name), adoption
(``cluster_adopt``) and the orphan report (``cluster_sync``).

``take_census(conn)`` makes one list call per resource kind of the connection's project —
servers, Heat stacks, server groups, security groups, floating IPs — and groups what
carries a cluster's uuid (tags, metadata, the names the drivers give: shape.py, heat/build.py)
by that uuid. The synchronisers read clusters a store knows (tag-filtered by uuid); this
reads the ones it may not know, so it filters by what is ours, client-side.

A cluster found is a dict: ``uuid, name, driver ("heat" when a stack carries its tag, else
"nova"), project_id (the cloud's), resources ({kind: [names]}), servers (server views,
servers.server_views), stack (the stack list's dict, or None)``.
"""

from __future__ import annotations

import concurrent.futures
import re

from ansible_collections.coe.openstack.plugins.module_utils import poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ConflictError, NotFoundError
from ansible_collections.coe.openstack.plugins.module_utils.servers import server_views

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: names that carry a cluster's uuid: Nova's server groups (coe-<uuid>-<nodegroup>[-vN]) and security
#: group (coe-<name>-<uuid>); Heat's master server group and security group (<name>-<uuid>-masters|nodes)
NAMED = (
    re.compile(r"^coe-(?P<uuid>%s)-" % UUID),
    re.compile(r"^coe-(?P<name>.+)-(?P<uuid>%s)$" % UUID),
    re.compile(r"^(?P<name>.+)-(?P<uuid>%s)-(masters|nodes)$" % UUID),
)
KINDS = ("stacks", "servers", "server groups", "security groups", "floating IPs")


def _attr(obj, key):
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _named(name):
    """(uuid, cluster name or None) a resource name carries, or (None, None)."""
    for pattern in NAMED:
        m = pattern.match(name or "")
        if m:
            return m.group("uuid"), m.groupdict().get("name")
    return None, None


def _stacks(conn):
    """Every stack of the project that carries a cluster tag; [] on a cloud without Heat."""
    try:
        stacks = list(conn.orchestration.stacks())
    except Exception as e:
        if type(e).__name__ == "EndpointNotFound":  # a cloud without Heat has no Heat cluster
            return []
        raise
    out = []
    for stack in stacks:
        tags = list(_attr(stack, "tags") or [])
        if _attr(stack, "status") == "DELETE_COMPLETE" or not shape.uuid_from_tags(tags):
            continue
        out.append(dict(id=_attr(stack, "id"), name=_attr(stack, "name"), status=_attr(stack, "status"), tags=tags))
    return out


def take_census(conn):
    """``{uuid: cluster}`` of every cluster of the connection's project (see the module docstring)."""
    found = {}

    def entry(uuid):
        return found.setdefault(
            uuid,
            dict(
                uuid=uuid,
                name=None,
                driver="nova",
                project_id=conn.current_project_id,
                resources={},
                servers=[],
                stack=None,
            ),
        )

    def add(uuid, kind, name, cluster_name=None):
        cluster = entry(uuid)
        cluster["resources"].setdefault(kind, []).append(name)
        if cluster_name and not cluster["name"]:
            cluster["name"] = cluster_name

    # the five list calls at once (they do not depend on each other)
    poll.authenticated(conn)  # one token, before the threads use the connection
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(KINDS)) as pool:
        reads = [
            pool.submit(_stacks, conn),
            pool.submit(lambda: list(conn.compute.servers(details=True))),
            pool.submit(lambda: list(conn.compute.server_groups())),
            pool.submit(lambda: list(conn.network.security_groups())),
            pool.submit(lambda: list(conn.network.ips(tags=shape.COMMON_TAG))),
        ]
    stacks, servers, server_groups, security_groups, ips = (r.result() for r in reads)
    for stack in stacks:
        uuid = shape.uuid_from_tags(stack["tags"])
        # the stack is <cluster name>-<first 8 of uuid>
        add(uuid, "stacks", stack["name"], stack["name"][:-9] if stack["name"].endswith("-" + uuid[:8]) else None)
        entry(uuid).update(driver="heat", stack=stack)
    for view in server_views(servers):
        if not view["cluster_uuid"]:
            continue
        add(view["cluster_uuid"], "servers", view["name"], view["metadata"].get(shape.META_CLUSTER_NAME))
        entry(view["cluster_uuid"])["servers"].append(view)
    for group in server_groups:
        uuid, name = _named(_attr(group, "name"))
        if uuid:
            add(uuid, "server groups", _attr(group, "name"), name)
    for sg in security_groups:
        uuid = shape.uuid_from_tags(_attr(sg, "tags")) or _named(_attr(sg, "name"))[0]
        if uuid:
            add(uuid, "security groups", _attr(sg, "name"), _named(_attr(sg, "name"))[1])
    for ip in ips:
        uuid = shape.uuid_from_tags(_attr(ip, "tags"))
        if uuid:
            add(uuid, "floating IPs", _attr(ip, "floating_ip_address"))
    for cluster in found.values():
        for names in cluster["resources"].values():
            names.sort()
    return found


def named(census, name):
    """The clusters of the census called ``name``, oldest uuid first (sorted by uuid)."""
    return sorted((c for c in census.values() if c["name"] == name), key=lambda c: c["uuid"])


def describe(cluster):
    """``uuid 1234... (heat driver): stacks a-1234abcd; servers a-master-0, ...``"""
    parts = ["%s %s" % (kind, ", ".join(cluster["resources"][kind])) for kind in KINDS if kind in cluster["resources"]]
    return "uuid %s (%s driver): %s" % (cluster["uuid"], cluster["driver"], "; ".join(parts))


def refuse_twin(name, project, found, store_uuid=None):
    """ConflictError: the cloud has cluster ``name`` that this store does not manage (a twin)."""
    known = (
        "this store knows cluster %s under uuid %s" % (name, store_uuid)
        if store_uuid
        else "this store does not know it"
    )
    raise ConflictError(
        "Cluster %s already exists in the cloud (%s) and %s; a create would make a twin, nothing was written. "
        "Found: %s. Point coe_state_url at the store that manages it, or adopt it into this store "
        "(ansible-playbook coe.openstack.adopt -e coe_cluster_name=%s%s)"
        % (
            name,
            "project %s" % project if project else "this project",
            known,
            " | ".join(describe(c) for c in found),
            name,
            "" if not store_uuid else "; first remove the store's record of %s" % store_uuid,
        ),
        twins=[dict(uuid=c["uuid"], driver=c["driver"], resources=c["resources"]) for c in found],
    )


def pick(census, name=None):
    """The clusters to adopt: the one called ``name``, or all. Refuses a name the cloud does not
    have, and a name two clusters carry (naming both uuids), before anything is written."""
    clusters = list(census.values())
    if name is not None:
        clusters = named(census, name)
        if not clusters:
            raise NotFoundError(
                "The cloud has no cluster called %s in this project (%d cluster(s) found: %s)"
                % (name, len(census), ", ".join(sorted(str(c["name"]) for c in census.values())) or "none"),
                field="name",
            )
    names = {}
    for cluster in clusters:
        names.setdefault(cluster["name"], []).append(cluster["uuid"])
    twice = {n: sorted(u) for n, u in names.items() if len(u) > 1}
    if twice:
        raise ConflictError(
            "The cloud has more than one cluster of the same name, nothing was adopted: %s. Delete the "
            "twin (e.g. with its own store) before adopting"
            % "; ".join("%s: uuids %s" % (n, " and ".join(u)) for n, u in sorted(twice.items())),
            clusters=dict(twice),
        )
    return sorted(clusters, key=lambda c: (str(c["name"]), c["uuid"]))


def orphans(census, store_uuids):
    """The census's clusters that no record of the store owns: ``[{uuid, name, driver, project_id,
    resources}]`` (reported by a sync, never deleted)."""
    return [
        {k: c[k] for k in ("uuid", "name", "driver", "project_id", "resources")}
        for c in sorted(census.values(), key=lambda c: (str(c["name"]), c["uuid"]))
        if c["uuid"] not in store_uuids
    ]
