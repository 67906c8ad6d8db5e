# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Adoption: rebuild the records of clusters the cloud has (census.py) in a store that lost them.

``adopt_clusters(store, found, project, synchroniser_for, ...)`` takes the clusters to adopt
(``census.pick``), refuses before any write what cannot be adopted (a name the store already
uses for another uuid, a template version the store lacks, a cluster that says nothing of its
template when none is given), then writes one record per cluster: the desired part rebuilt from
what the resources carry (template name and version, nodegroups and their counts, flavors,
keypair; the template version from the store supplies the rest), the observed part from the
driver's synchroniser, exactly as a sync would write it. What the cloud cannot give back is
named in the record's ``adopted.missing`` and ``status_reason``; the cluster's CAs are always
among it (they live only in the store), so operations that need them are refused
(clusters.refuse_without_credentials) until they are restored.

No ansible and no openstack import: the cloud is read through the synchronisers
(``sync.take_census``, ``observe``) on the module's connection.
"""

from __future__ import annotations

import copy

from ansible_collections.coe.openstack.plugins.module_utils import lifecycle, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ConflictError, NotFoundError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.planning import _effective, desired_record
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.states import CREATE_COMPLETE
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso, resolve_actor

ADOPTED = "adopted from the cloud"
#: what no cloud resource carries, for every adopted cluster
ALWAYS_MISSING = (
    "credentials (the cluster's CAs lived only in the store: scale-out, node replacement, upgrade "
    "and kubeconfig are refused until they are restored)",
    "history (events) and who created the cluster (user_id)",
    "timeout and upgrade_batch_size (the defaults are recorded)",
    "label overrides (coe_labels): the template's labels are recorded",
)


def _nodegroup_of(view, name):
    """The nodegroup and role of a server of cluster ``name``: its metadata, else its name."""
    if view.get("nodegroup"):
        return view["nodegroup"], view.get("role") or (
            "master" if view["nodegroup"] == shape.MASTER_NODEGROUP else "worker"
        )
    if shape.node_index(view["name"], name, shape.MASTER_NODEGROUP, "master") is not None:
        return shape.MASTER_NODEGROUP, "master"
    rest = view["name"][len(name) + 1 :] if view["name"].startswith(name + "-") else ""
    group = rest.rpartition("-")[0]
    return (group, "worker") if group else (None, None)


def _flavor_of(views):
    """The flavor name (or id) the servers of a nodegroup run: the most common one."""
    seen = {}
    for view in views:
        flavor = view.get("flavor_name") or view.get("flavor_id")
        if flavor:
            seen[flavor] = seen.get(flavor, 0) + 1
    return max(sorted(seen), key=seen.get) if seen else None


def _same_flavor(views, wanted):
    return any(wanted in (v.get("flavor_name"), v.get("flavor_id")) for v in views)


def template_of(cluster, template=None, template_version=None):
    """``(name, version, from_cloud)`` of the template version the cluster runs.

    The servers' metadata (``coe_template``, ``coe_template_version``; the highest version
    when an upgrade stopped half way), else the caller's ``template``/``template_version``
    (clusters made before the metadata existed). ValidationError naming what is missing.
    """
    names = {v["template"] for v in cluster["servers"] if v.get("template")}
    versions = [v["template_version"] for v in cluster["servers"] if v.get("template_version")]
    if len(names) == 1 and versions:
        return names.pop(), max(versions), True
    if template and template_version:
        return template, template_version, False
    raise ValidationError(
        "cluster_template",
        "cluster %s (uuid %s) carries no template name and version (%s): give cluster_template and "
        "cluster_template_version, the template version it was created or last upgraded with"
        % (
            cluster["name"],
            cluster["uuid"],
            "its servers name %s" % ", ".join(sorted(names)) if len(names) > 1 else "made before 0.3.0",
        ),
    )


def rebuild(store, cluster, project, template=None, template_version=None):
    """``(record, missing)``: the record of one census cluster, not yet observed, and what the cloud
    cannot give back. Refuses (ValidationError, NotFoundError) naming what is missing."""
    name = cluster["name"]
    if not shape.is_label(name or ""):
        raise ValidationError("name", "cluster uuid %s has no readable name (%r)" % (cluster["uuid"], name))
    tname, tversion, from_cloud = template_of(cluster, template, template_version)
    try:
        tmpl = store.get_template(tname, tversion)
    except NotFoundError:
        raise ValidationError(
            "cluster_template",
            "cluster %s runs template %s version %s, which this store does not have: declare the templates "
            "first (coe.openstack.template, the same versions in the same order), then adopt" % (name, tname, tversion),
            template=tname,
            template_version=tversion,
        ) from None
    spec = tmpl["spec"]
    if spec.get("driver") != cluster["driver"]:
        raise ValidationError(
            "cluster_template",
            "cluster %s is a %s cluster in the cloud, template %s version %s uses the %s driver"
            % (name, cluster["driver"], tname, tversion, spec.get("driver")),
        )
    groups = {}
    for view in cluster["servers"]:
        group, role = _nodegroup_of(view, name)
        if group:
            groups.setdefault(group, dict(role=role, views=[]))["views"].append(view)
    masters = groups.get(shape.MASTER_NODEGROUP, dict(views=[]))["views"]
    missing = list(ALWAYS_MISSING)
    if not from_cloud:
        missing.append("template name and version (given by the caller: %s v%s)" % (tname, tversion))
    eff = _effective({}, spec)
    desired = dict(
        name=name,
        project_id=project,
        state="present",
        master_count=max(len(masters), 1),
        node_count=len(groups.get(shape.WORKER_NODEGROUP, dict(views=[]))["views"]),
        nodegroups=[],
    )
    if not masters:
        missing.append("masters: the cloud has none (master_count 1 recorded)")
    master_flavor = _flavor_of(masters)
    if master_flavor and not _same_flavor(masters, eff["master_flavor_id"]):
        desired["master_flavor_id"] = master_flavor
    workers = groups.get(shape.WORKER_NODEGROUP, dict(views=[]))["views"]
    worker_flavor = _flavor_of(workers)
    if worker_flavor and not _same_flavor(workers, eff["flavor_id"]):
        desired["flavor_id"] = worker_flavor
    keys = {v.get("key_name") for v in cluster["servers"] if v.get("key_name")}
    if len(keys) == 1 and keys != {eff["keypair"]}:
        desired["keypair"] = keys.pop()
    for group in sorted(g for g in groups if g not in (shape.MASTER_NODEGROUP, shape.WORKER_NODEGROUP)):
        views = groups[group]["views"]
        extra = dict(name=group, node_count=len(views))
        flavor = _flavor_of(views)
        if flavor and not _same_flavor(views, desired.get("flavor_id") or eff["flavor_id"]):
            extra["flavor_id"] = flavor
        desired["nodegroups"].append(extra)
    desired = lifecycle.validate_desired(desired)
    record = desired_record(desired, tmpl)
    if cluster["driver"] == "nova":
        missing.append("indices of removed nodes above the highest one left (a new node may take such an index again)")
    return record, missing


def adopt_clusters(
    store,
    found,
    project,
    synchroniser_for,
    template=None,
    template_version=None,
    check_mode=False,
    actor=None,
    credentials=None,
):
    """Adopt the census clusters ``found`` into ``project`` of ``store`` (see the module docstring).

    ``credentials``: None, or ``credentials(uuid, check_mode) -> [names restored]`` that puts the
    credentials an export has for a cluster into the store (``export.restore_credentials``);
    it is called for every cluster adopted and every one managed already that lacks them.

    Returns dict(changed, clusters (the adopted records' views), adopted (names),
    already_managed ([{name, uuid, project_id}]), missing ({name: [what was not recovered]}),
    credentials_restored ({name: [names]})).
    """
    from ansible_collections.coe.openstack.plugins.module_utils.clusters import cluster_view

    now = store.now()
    managed, todo, restored = [], [], {}
    for cluster in found:
        try:
            known = store.get_cluster(cluster["uuid"])
        except NotFoundError:
            known = None
        if known is not None:
            managed.append(dict(name=known["name"], uuid=known["uuid"], project_id=known["project_id"]))
            if credentials is not None:
                names = credentials(known["uuid"], check_mode)
                if names:
                    restored[known["name"]] = names
                    if not check_mode:
                        _without_missing_credentials(store, known, actor)
            continue
        other = store.find_cluster(project, cluster["name"])
        if other is not None:
            raise ConflictError(
                "Cannot adopt cluster %s (uuid %s): this store has another cluster of that name in project %s "
                "(uuid %s, %s); nothing was adopted. Remove that record (coe.openstack.delete with coe_force) "
                "if its cluster is gone, or adopt into another project"
                % (cluster["name"], cluster["uuid"], project, other["uuid"], other["status"]),
                field="name",
            )
        record, missing = rebuild(store, cluster, project, template, template_version)
        if credentials is not None and credentials(cluster["uuid"], True):
            missing.remove(ALWAYS_MISSING[0])  # the export has them (written once the record is)
        todo.append((cluster, record, missing))
    by_driver = {}
    for cluster, record, missing in todo:
        record.update(
            uuid=cluster["uuid"],
            status=CREATE_COMPLETE,
            status_reason="%s; not recovered: %s" % (ADOPTED, "; ".join(m.split(" (")[0] for m in missing)),
            status_updated_at=iso(now),
            operation="adopt",
            health_status="UNKNOWN",
            health_status_reason={},
            api_address=None,
            master_addresses=[],
            node_addresses=[],
            stack_id=(cluster.get("stack") or {}).get("id"),
            faults={},
            removed_nodes=[],
            plan=lifecycle.public_plan(lifecycle.empty_plan(operation="adopt")),
            user_id=None,
            adopted=dict(at=iso(now), by=resolve_actor(actor)["user"], missing=missing),
        )
        by_driver.setdefault(record["driver"], []).append(record)
    observations = {}
    for driver, records in sorted(by_driver.items()):
        observations.update(synchroniser_for(driver).observe(copy.deepcopy(records)))
    out, names, missing_by_name = [], [], {}
    for _cluster, record, missing in todo:
        new, _message = lifecycle.merge_observation(record, observations[record["uuid"]], now)
        names.append(record["name"])
        missing_by_name[record["name"]] = missing
        if check_mode:
            out.append(cluster_view(new))
            continue
        written = store.create_cluster(
            new,
            actor=actor,
            message="%s (%s driver, template %s v%s): not recovered: %s"
            % (ADOPTED, new["driver"], new["cluster_template_name"], new["template_version"], "; ".join(missing)),
        )
        out.append(cluster_view(written))
    for _cluster, record, missing in todo:
        if ALWAYS_MISSING[0] not in missing:
            restored[record["name"]] = credentials(record["uuid"], check_mode)
    return dict(
        changed=bool(todo or restored),
        clusters=out,
        adopted=names,
        already_managed=managed,
        missing=missing_by_name,
        credentials_restored=restored,
    )


def _without_missing_credentials(store, record, actor):
    """A managed (adopted) record whose credentials were restored no longer says they are missing."""
    adopted = record.get("adopted")
    if not adopted or ALWAYS_MISSING[0] not in adopted.get("missing", ()):
        return
    missing = [m for m in adopted["missing"] if m != ALWAYS_MISSING[0]]
    store.update_cluster(
        dict(
            record,
            adopted=dict(adopted, missing=missing),
            status_reason="%s; not recovered: %s" % (ADOPTED, "; ".join(m.split(" (")[0] for m in missing)),
        ),
        record["generation"],
        actor=actor,
        message="credentials restored from a store export",
        operation="adopt",
        force_event=True,
    )


class AdoptLogic:
    """What ``cluster_adopt`` does: census, pick, adopt, exit (the module's options and connection)."""

    def __init__(self, module):
        self.module = module

    def run(self):
        from ansible_collections.coe.openstack.plugins.module_utils import census
        from ansible_collections.coe.openstack.plugins.module_utils.clusters import DEFAULT_PROJECT, LazyConnection
        from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser, take_census

        m, p = self.module, self.module.params
        if p["name"] is not None:
            lifecycle.validate_name("name", p["name"])
        if (p["cluster_template"] is None) != (p["cluster_template_version"] is None):
            raise ValidationError("cluster_template", "give cluster_template and cluster_template_version together")
        project = p["project"] or DEFAULT_PROJECT
        conn = LazyConnection(lambda: m.conn)
        with m.action("look for clusters in the cloud"):
            found = take_census(conn)
        chosen = census.pick(found, p["name"])
        synchronisers = {}

        def synchroniser_for(driver):
            return synchronisers.setdefault(driver, get_synchroniser(driver, conn))

        credentials = None
        if p["store_export"]:
            credentials = export_credentials(m, p)
        with m.action("adopt %s" % ("cluster %s" % p["name"] if p["name"] else "the clusters of the cloud")):
            result = adopt_clusters(
                m.store,
                chosen,
                project,
                synchroniser_for,
                template=p["cluster_template"],
                template_version=p["cluster_template_version"],
                check_mode=m.check_mode,
                actor=p["actor"],
                credentials=credentials,
            )
        managed = result["already_managed"]
        if managed and not result["adopted"] and not result["credentials_restored"]:
            result["msg"] = "nothing to adopt: this store already manages %s" % ", ".join(
                "%s (uuid %s, project %s)" % (c["name"], c["uuid"], c["project_id"]) for c in managed
            )
        m.exit(**result)


def export_credentials(module, p):
    """``credentials(uuid, check_mode)`` for ``adopt_clusters``: from the export ``store_export``,
    read and checked once, before the cloud is looked at (store/export.py: the key must open it)."""
    from ansible_collections.coe.openstack.plugins.module_utils.secrets import existing_secret_key
    from ansible_collections.coe.openstack.plugins.module_utils.store import export

    with module.action("read the store export %s" % p["store_export"]):
        box = existing_secret_key(p["secret_key"], p["state_url"])
        found = export.read_export(p["store_export"], box)
    have = {row["uuid"] for row in found.clusters if row["secrets"]}

    def credentials(uuid, check_mode):
        if uuid not in have:
            return []
        with module.action("restore the credentials of cluster %s from %s" % (uuid, p["store_export"])):
            return export.restore_credentials(module.store, box, found, uuid, check_mode=check_mode)

    return credentials
