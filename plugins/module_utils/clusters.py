# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""What the cluster modules do, as plain functions on a store (testable without Ansible).

``ensure_template`` (cluster_template), ``ensure_cluster`` (cluster),
``sync_clusters`` (cluster_sync) and ``views`` for cluster_info. The
modules only turn options into arguments and results into exit_json.

No ansible and no openstack import: the cloud is reached only through a
synchroniser factory handed in by the caller.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import time

from ansible_collections.coe.openstack.plugins.module_utils import census, endpoint, lifecycle, poll
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    LockError,
    NotFoundError,
    StateError,
    ValidationError,
    WaitTimeout,
)
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store.base import resolve_actor, spec_hash

DEFAULT_PROJECT = "default"
CAS_RETRIES = 5

# keys kept inside the record for the drivers and the planner, not Magnum fields
INTERNAL_KEYS = ("overrides",)


# what openstack.cloud.coe_cluster returns: openstacksdk's Cluster resource, to_dict(computed=False)
# (a unit test holds this to the installed SDK); every one is in the view
OPENSTACK_CLOUD_KEYS = (
    "api_address",
    "cluster_template_id",
    "coe_version",
    "create_timeout",
    "created_at",
    "discovery_url",
    "fixed_network",
    "fixed_subnet",
    "flavor_id",
    "id",
    "is_floating_ip_enabled",
    "is_master_lb_enabled",
    "keypair",
    "labels",
    "master_addresses",
    "master_count",
    "master_flavor_id",
    "name",
    "node_addresses",
    "node_count",
    "project_id",
    "stack_id",
    "status",
    "status_reason",
    "updated_at",
    "uuid",
)
# openstacksdk's names for Magnum's ({sdk name: Magnum name}; the other keys are the same in both)
SDK_NAMES = dict(id="uuid", is_floating_ip_enabled="floating_ip_enabled", is_master_lb_enabled="master_lb_enabled")
# Magnum's fields beyond those, None in the view when the record has nothing to say
MAGNUM_ONLY_FIELDS = (
    "container_version",
    "docker_volume_size",
    "faults",
    "health_status",
    "health_status_reason",
    "user_id",
)


def cluster_view(record):
    """A cluster record as returned by the modules: Magnum's field names, openstack.cloud's
    (``openstack.cloud.coe_cluster``, openstacksdk's names) beside them, plus ours.

    ``api_address`` is Magnum's ``https://ADDR:6443`` whatever form the record holds
    (records written by 0.1.0 hold the bare address).
    """
    if record is None:
        return None
    view = {k: copy.deepcopy(v) for k, v in record.items() if k not in INTERNAL_KEYS}
    for ng in view.get("nodegroups") or []:
        for key in ("own_flavor_id", "own_image_id", "own_labels"):
            ng.pop(key, None)
    for key in (*OPENSTACK_CLOUD_KEYS, *SDK_NAMES.values(), *MAGNUM_ONLY_FIELDS):
        if key not in SDK_NAMES:
            view.setdefault(key, None)
    with contextlib.suppress(ValidationError):  # not an address at all: shown as it is
        view["api_address"] = endpoint.api_url(view["api_address"])
    for sdk_name, magnum_name in SDK_NAMES.items():
        view[sdk_name] = view[magnum_name]
    view["version"] = view.get("template_version")
    return view


def template_view(version, versions=None):
    """A template version as returned by the modules: its spec flattened, plus identity."""
    view = dict(copy.deepcopy(version["spec"]))
    view.update(
        name=version["name"],
        version=version["version"],
        uuid=version.get("uuid"),
        created_at=version.get("created_at"),
        created_by=version.get("created_by"),
    )
    if versions is not None:
        view["versions"] = [
            dict(version=v["version"], uuid=v["uuid"], created_at=v["created_at"], created_by=v["created_by"])
            for v in versions
        ]
    return view


class LazyConnection:
    """A stand-in for a connection, built by ``factory`` on first attribute access.

    A sync with nothing to observe, or a synchroniser that is a test fake,
    never authenticates.
    """

    def __init__(self, factory):
        self._factory = factory
        self._conn = None

    def __getattr__(self, name):
        if self._conn is None:
            self._conn = self._factory()
        return getattr(self._conn, name)


# -- templates -----------------------------------------------------------------------


def ensure_template(store, name, state, spec_params=None, version=None, check_mode=False, actor=None):
    """Make template ``name`` present (new version when the spec differs) or absent.

    Returns ``(changed, result)`` where result has ``cluster_template`` (the
    version, or None), ``version`` and ``versions``.
    """
    lifecycle.validate_name("name", name)
    if state == "present":
        if version is not None:
            raise ValidationError("version", "only with state=absent (versions are numbered by the store)")
        spec = lifecycle.normalise_template_spec(spec_params or {})
        versions = store.list_templates(name)
        latest = versions[-1] if versions else None
        if latest is not None and latest["spec_hash"] == spec_hash(spec):
            return False, _template_result(latest, versions)
        if check_mode:
            would = dict(
                name=name,
                version=(latest["version"] + 1) if latest else 1,
                uuid=None,
                spec=spec,
                created_at=None,
                created_by=None,
            )
            return True, _template_result(would, [*versions, would])
        created = store.put_template(name, spec, actor=actor)[0]
        return True, _template_result(created, store.list_templates(name))

    if version is not None:
        lifecycle.validate_int("version", version, 1, 10**9)
    versions = store.list_templates(name)
    doomed = [v for v in versions if version is None or v["version"] == version]
    if not doomed:
        return False, dict(cluster_template=None, version=None, versions=[v["version"] for v in versions])
    if check_mode:
        users = store.template_users(name, version)
        if users:
            raise ConflictError(
                "Cannot delete %s: in use by cluster(s) %s"
                % (
                    "version %s of cluster template '%s'" % (version, name)
                    if version
                    else "cluster template '%s'" % name,
                    ", ".join("%s (version %d)" % (u["name"], u["template_version"]) for u in users),
                ),
                clusters=sorted({u["name"] for u in users}),
            )
        left = [v["version"] for v in versions if v not in doomed]
    else:
        store.delete_template(name, version, actor=actor)
        left = [v["version"] for v in store.list_templates(name)]
    return True, dict(
        cluster_template=None, version=None, versions=left, deleted_versions=[v["version"] for v in doomed]
    )


def _template_result(version, versions):
    return dict(
        cluster_template=template_view(version, versions),
        version=version["version"],
        versions=[v["version"] for v in versions],
    )


# -- clusters ------------------------------------------------------------------------


def resolve_template(store, record, template_name, template_version):
    """The template version a desired spec asks for (the record's when it says nothing)."""
    if template_name is None:
        if record is None:
            raise ValidationError("cluster_template", "is required to create a cluster")
        template_name = record["cluster_template_name"]
    lifecycle.validate_name("cluster_template", template_name)
    if template_version is None and record is not None and record["cluster_template_name"] == template_name:
        template_version = record["template_version"]  # never upgrade behind the user's back
    try:
        return store.get_template(template_name, template_version)
    except NotFoundError as e:
        raise ValidationError(e.details.get("field", "cluster_template"), e.msg) from e


def _check_lock(locks, project, name, lock_token, operation):
    """(lease view, whether we hold it); LockError now if our token is stale or another holds it."""
    lease = locks.get(project, name)
    own = False
    if lock_token is not None:
        token = int(lock_token)
        if lease is None or lease["token"] != token or not lease["held"]:
            raise LockError(
                "Lock token %s for cluster '%s' is not the live lease (%s); nothing was written"
                % (
                    lock_token,
                    name,
                    "current token %d held by %s" % (lease["token"], lease["holder"])
                    if lease and lease["held"]
                    else "current token %s, not held" % (lease["token"] if lease else "none"),
                ),
                holder=lease["holder"] if lease and lease["held"] else None,
            )
        own = True
    elif lease and lease["held"] and operation != "none":
        raise LockError(
            locks.refusal(name, lease, action=operation),
            holder=lease["holder"],
            lock_operation=lease["operation"],
        )
    return lease, own


def ensure_cluster(
    store,
    desired,
    lock_token=None,
    check_mode=False,
    actor=None,
    force=False,
    observe=None,
    now=None,
    check=None,
    record_drift=False,
    require_existing=False,
    twins=None,
):
    """Record the desired state of a cluster and say which operation the driver must run.

    ``desired``: name, project_id, state, template_name, template_version,
    master_count, node_count, nodegroups, nodes_to_remove, keypair, labels,
    flavor_id, master_flavor_id, timeout, upgrade_batch_size (None = keep).
    ``observe(record) -> Observation``: what the driver's synchroniser sees of
    the cluster now. The plan is made on the record with that observation
    folded in (``lifecycle.observes_before_planning`` says when it is needed),
    after bad input, a stale token and another runner's lock were refused
    without a cloud call. When something is recorded, the observation is
    written first (fenced by ``lock_token``), then the operation; in check mode,
    or with nothing to record, nothing is written. Without ``observe`` the plan
    is made on the record alone.

    ``check(cluster, operation)``: the driver's read-only check of the cloud's
    references (flavors, images, keypair, networks, quota) for what the plan
    asks, run for a create, update or upgrade after the plan and before any
    write (in check mode too); it raises to refuse. ``record_drift``: write
    the observation of a cluster that needs no operation when it differs from
    the record (a sync would). ``require_existing``: refuse to create.
    ``twins(name) -> [cluster]``: the clusters of that name the cloud has
    (census.py); a create is refused, before any write, when the cloud has one
    this store does not manage (another uuid than the record's).

    Returns a dict: changed, operation, plan, cluster, record_removed,
    observed (the cloud was asked), drifted (it differs from the record),
    diff (before/after of the desired part).
    """
    desired = lifecycle.validate_desired(dict(desired))
    project, name = desired["project_id"], desired["name"]
    now = store.now() if now is None else now
    locks = LockManager(store)
    record = store.find_cluster(project, name)
    if require_existing and record is None and desired["state"] == "present":
        raise NotFoundError(
            "Cluster %s does not exist in the store (name); this playbook only changes existing clusters: "
            "use coe.openstack.create to create one" % name,
            field="name",
        )

    if desired["state"] == "absent" and force and record is not None:
        return _force_delete(store, locks, record, lock_token, check_mode, actor, observe)

    template = None
    if desired["state"] == "present":
        template = resolve_template(store, record, desired.get("template_name"), desired.get("template_version"))
    # bad input, a stale token and another runner's lock are refused before any cloud call
    p = lifecycle.plan(desired, record, template)
    if p["action"] in ("create", "upgrade"):
        # a template stored before coe_version was required: refused before the driver renders user-data
        lifecycle.check_template_version(template, p["desired"]["overrides"].get("labels"))
    lease, own = _check_lock(locks, project, name, lock_token, p["operation"])
    stored, seen, seen_message = record, None, None
    observed = observe is not None and lifecycle.observes_before_planning(record, desired["state"])
    if observed:
        seen, seen_message = lifecycle.merge_observation(record, observe(record), now)
        if _differs(seen, record):
            record = seen
            p = lifecycle.plan(desired, record, template)
            lease, own = _check_lock(locks, project, name, lock_token, p["operation"])
        else:
            seen = None
    if p["action"] is not None:
        target = (p["to_template"], p["to_version"]) if p["action"] == "upgrade" else None
        lifecycle.check_transition(record, p["action"], retry=p["retry"], target=target, lock=lease, own_lock=own)
    if twins is not None and p["operation"] == "create":
        others = [c for c in twins(name) if c["uuid"] != (record or {}).get("uuid")]
        if others:
            census.refuse_twin(name, None, others, (record or {}).get("uuid"))
    refuse_without_credentials(store, record, p)

    new = lifecycle.apply_plan(record, p, now)
    if record is None and p["action"] is not None:
        new["user_id"] = resolve_actor(actor)["user"]  # Magnum's user_id: who created the cluster
    if p["action"] is not None:
        # when the operation was recorded (its start); unlike status_updated_at no observation moves
        # it, so a synchroniser can tell a cloud state settled before the operation from its result
        new["operation_started_at"] = new["status_updated_at"]
    before, after = lifecycle.diff_view(record), lifecycle.diff_view(new) if desired["state"] == "present" else {}
    resume = p["retry"] and record is not None and record["status"].endswith("_IN_PROGRESS")
    desired_changed = (
        desired["state"] == "present" and record is not None and _desired_part(new) != _desired_part(record)
    )
    needs_write = (p["action"] is not None and not resume) or desired_changed
    if check is not None and p["operation"] in ("create", "update", "upgrade"):
        # references and quota, read only: a bad one is refused before anything is written
        check(cluster_view(new), p["operation"])
    result = dict(
        changed=needs_write,
        operation=p["operation"],
        plan=lifecycle.public_plan(p),
        diff=dict(before=before, after=after),
        record_removed=False,
        observed=observed,
        drifted=seen is not None,
    )
    if record_drift and not needs_write and not check_mode and seen is not None:
        written = store.update_cluster(
            seen,
            stored["generation"],
            actor=actor,
            lock_token=lock_token,
            message=seen_message or "observed",
            operation="sync",
        )
        result.update(changed=True, cluster=cluster_view(written))
        return result
    if not needs_write or check_mode:
        shown = new if needs_write else record
        result["cluster"] = cluster_view(shown)
        return result
    if seen is not None:
        # what the cloud has now goes in first, as a sync would write it, with the same token
        record = store.update_cluster(
            seen,
            stored["generation"],
            actor=actor,
            lock_token=lock_token,
            message=seen_message or "observed before planning",
            operation="sync",
        )
    message = "%s%s: %s" % (
        p["operation"],
        " (retry)" if p["retry"] else "",
        "; ".join(_change_text(c) for c in p["changes"]) or "re-run",
    )
    if record is None:
        written = store.create_cluster(new, actor=actor, lock_token=lock_token, message=message)
    else:
        written = store.update_cluster(
            new,
            record["generation"],
            actor=actor,
            lock_token=lock_token,
            message=message,
            operation=p["operation"],
            force_event=p["action"] is not None,
        )
    result["cluster"] = cluster_view(written)
    return result


def needs_credentials(p):
    """What in plan ``p`` needs the cluster's CAs (new nodes' certificates and user-data), or None."""
    if p["action"] in ("create", "upgrade"):
        return "the %s (it makes nodes)" % p["operation"]
    grown = sorted(name for name, ng in (p.get("nodegroups") or {}).items() if ng.get("add"))
    if grown:
        return "the scale-out of %s" % ", ".join(grown)
    if any(c["field"] == "repair" for c in p.get("changes") or ()):
        return "the node replacement (repair of %s)" % ", ".join(
            next(c["before"] for c in p["changes"] if c["field"] == "repair")
        )
    return None


def lacks_credentials(store, record):
    """True for an adopted cluster whose CAs are not in this store (they lived only in the lost one)."""
    from ansible_collections.coe.openstack.plugins.module_utils.pki import SECRET_NAME

    return bool(record and record.get("adopted")) and SECRET_NAME not in store.list_secrets(record["uuid"])


#: the way out, named by every refusal of an adopted cluster without its CAs
CREDENTIALS_WAY_OUT = (
    "restore them from an export of the store that managed it (coe.openstack.adopt with coe_store_export, "
    "or coe.openstack.store_restore), or "
    "create a new cluster and move the workloads; scale-in, sync and delete work without them"
)


def refuse_without_credentials(store, record, p):
    """StateError, before any write, when plan ``p`` needs CAs that the adopted ``record`` lacks."""
    why = needs_credentials(p)
    if why and lacks_credentials(store, record):
        raise StateError(
            "Cluster %s was adopted from the cloud without its credentials (its CAs lived only in the "
            "store that made it): %s needs them to sign the new nodes' certificates; nothing was written. "
            "Way out: %s" % (record["name"], why, CREDENTIALS_WAY_OUT),
            missing=["credentials"],
        )


def plan_lock_record(store, desired, lock_ttl, lock_timeout=0, actor=None, holder=None, **kwargs):
    """The front door's first step in one call: plan, lock, record.

    The plan is made first without the lock (read only, the cloud observed):
    bad input, a refused transition and a bad reference fail here with nothing
    written; a cluster that needs nothing is left alone, unlocked. Otherwise
    the cluster's lock is taken (waiting up to ``lock_timeout`` for another
    runner), the plan is made again under it (the cluster may have changed
    while we waited; an unchanged record reuses the observation) and recorded
    with the lease's fencing token. The lease is released again when there is
    nothing for a driver to do, and whenever this call fails after taking it (a
    forced delete that removed the record keeps it: the driver still cleans up).

    ``kwargs`` go to ``ensure_cluster`` (force, observe, check, require_existing).
    Returns ensure_cluster's result plus ``lock``: the lease the caller now
    holds (pass its token to the driver and release it at the end), or None;
    and ``lock_waited``: ``{holder, operation, seconds}`` when it waited for
    another runner's lock, else None.
    """
    observe = _reusing(kwargs.pop("observe", None))
    if kwargs.get("check") is not None:
        kwargs["check"] = _check_once(kwargs["check"])
    desired = dict(desired)
    first, waited = None, None
    try:
        first = ensure_cluster(store, desired, check_mode=True, actor=actor, observe=observe, **kwargs)
    except LockError as e:
        if not lock_timeout:
            raise
        # another runner holds the cluster: wait for its lock below, then plan under it
        waited = dict(holder=e.details.get("holder"), operation=e.details.get("lock_operation"))
    # nothing for a driver: no lock (a re-run of an operation in progress writes nothing, yet
    # needs the lock and its driver: it resumes the recorded operation)
    if first is not None and first["operation"] == "none" and not first["changed"] and not first.get("drifted"):
        first.update(lock=None, lock_waited=None)
        return first
    if first is None:
        operation = "delete" if desired.get("state") == "absent" else "update"
    else:
        operation = first["operation"] if first["operation"] != "none" else "sync"
    locks = LockManager(store)
    project, name = desired.get("project_id") or DEFAULT_PROJECT, desired["name"]
    started = locks.clock()
    lease = locks.acquire(project, name, operation, lock_ttl, holder=holder, wait=lock_timeout, actor=actor)
    if waited is not None:
        waited["seconds"] = round(locks.clock() - started, 1)
    try:
        result = ensure_cluster(
            store, desired, lock_token=lease["token"], actor=actor, observe=observe, record_drift=True, **kwargs
        )
    except BaseException:
        locks.release(project, name, lease["token"])
        raise
    if result["operation"] == "none":
        locks.release(project, name, lease["token"])
        result["lock"] = None
    else:
        result["lock"] = lease
    result["lock_waited"] = waited
    return result


def _check_once(check):
    """``check`` run once per distinct (cluster spec, operation): the second plan asks nothing new."""
    done = set()

    def once(cluster, operation):
        key = json.dumps([_desired_part(cluster), cluster.get("nodegroups"), operation], sort_keys=True, default=str)
        if key not in done:
            check(cluster, operation)
            done.add(key)

    return once


def _reusing(observe):
    """``observe`` that answers a second time from the first answer while the record is unchanged."""
    if observe is None:
        return None
    seen = {}

    def cached(record):
        key = (record.get("uuid"), record.get("generation"))
        if key not in seen:
            seen.clear()
            seen[key] = observe(record)
        return seen[key]

    return cached


def _desired_part(record):
    view = lifecycle.diff_view(record)
    view["nodegroups"] = [lifecycle._group_shape(ng) for ng in record.get("nodegroups") or []]
    return view


def _change_text(change):
    return "%s %s -> %s" % (change["field"], change["before"], change["after"])


def _force_delete(store, locks, record, lock_token, check_mode, actor, observe):
    """Remove the record once the synchroniser reports nothing of the cluster left."""
    lease, own = _check_lock(locks, record["project_id"], record["name"], lock_token, "delete")
    if observe is None:
        raise ValidationError("force", "needs a connection to the cloud to check that nothing is left")
    obs = observe(record)
    plan = dict(operation="delete", action="delete", retry=False, force=True, exists_in_cloud=obs.exists)
    result = dict(operation="delete", plan=plan, diff=dict(before=lifecycle.diff_view(record), after={}))
    if obs.exists:
        # something is left: this is an ordinary delete the driver must run first
        lifecycle.check_transition(
            record, "delete", retry=record.get("operation") == "delete", lock=lease, own_lock=own
        )
        if record.get("operation") == "delete" and record["status"] == lifecycle.DELETE_IN_PROGRESS:
            result.update(changed=False, record_removed=False, cluster=cluster_view(record))
            return result
        p = lifecycle.empty_plan(operation="delete", action="delete")
        new = lifecycle.apply_plan(record, p, store.now())
        new["status_reason"] = "force delete: the cloud still has resources of the cluster; delete them first"
        result.update(changed=True, record_removed=False)
        if check_mode:
            result["cluster"] = cluster_view(new)
            return result
        written = store.update_cluster(
            new,
            record["generation"],
            actor=actor,
            lock_token=lock_token,
            message="force delete requested; the cloud still has resources",
            operation="delete",
            force_event=True,
        )
        result["cluster"] = cluster_view(written)
        return result
    gone = dict(record, status=lifecycle.DELETE_COMPLETE, status_reason="force delete: nothing left in the cloud")
    result.update(changed=True, record_removed=True, cluster=cluster_view(gone))
    if not check_mode:
        store.delete_cluster(
            record,
            record["generation"],
            actor=actor,
            lock_token=lock_token,
            message="force delete: the synchroniser reports nothing of the cluster in the cloud; "
            "record removed (was %s)" % record["status"],
        )
    return result


# -- synchronisation -----------------------------------------------------------------


def _differs(a, b):
    strip = ("updated_at", "generation")
    return {k: v for k, v in a.items() if k not in strip} != {k: v for k, v in b.items() if k not in strip}


def sync_clusters(
    store, records, synchroniser_for, lock=None, check_mode=False, actor=None, now=None, fail_reason=None, settle=True
):
    """Observe ``records`` (grouped by driver) and write what changed, by CAS.

    ``synchroniser_for(driver)`` gives a StateSynchroniser. ``lock``: dict
    (project, name, token, ttl) of the lease held on the one cluster synced;
    it is renewed first, and a stale token refuses the whole sync.
    ``fail_reason`` (with ``lock``): the runner's driver failed; the locked
    cluster, if still ``*_IN_PROGRESS`` after the observation while its
    synchroniser sees the cloud do no work on it (``at_work``), becomes
    ``*_FAILED`` with that reason (``lifecycle.fail_in_progress``).
    ``settle``: a cluster this sync moved from ``*_IN_PROGRESS`` to ``*_COMPLETE`` is observed once
    more in the same call (a synchroniser reads a settled record differently: health,
    nodegroup states, an address attached last), so that what is recorded is what the
    next sync would record, and a re-run finds nothing to change. That second observation
    is made with the synchronisers' ``replay`` set: one that keeps its reads (Nova's) reads
    the same cloud through the settled record instead of calling the cloud again.
    Returns dict(changed, clusters, removed, lock).
    """
    if fail_reason is not None and lock is None:
        raise ValidationError("fail_reason", "needs the lock of the cluster (lock_token)")
    locks = LockManager(store)
    lease = None
    if lock is not None:
        if check_mode:
            lease = _check_lock(locks, lock["project"], lock["name"], lock["token"], "sync")[0]
        else:
            lease = locks.renew(lock["project"], lock["name"], lock["token"], lock["ttl"])
    by_driver = {}
    for record in records:
        by_driver.setdefault(record["driver"], []).append(record)
    observations = {}
    for driver in sorted(by_driver):
        # copies: a synchroniser may annotate what it is given, and that must not be written back
        observations.update(synchroniser_for(driver).observe(copy.deepcopy(by_driver[driver])))
    working = {}  # uuid: why the cloud still works on the cluster whose driver failed, or None
    settled = []  # uuids this sync moved out of *_IN_PROGRESS
    changed, out, removed = False, [], []
    for record in records:
        obs = observations.get(record["uuid"])
        if obs is None:
            out.append(cluster_view(record))
            continue
        token = (
            lock["token"]
            if lock and (lock["project"], lock["name"]) == (record["project_id"], record["name"])
            else None
        )
        if fail_reason is not None and token is not None and obs.not_started:
            # the cloud's status is the previous operation's outcome, not this failed one's
            obs = dataclasses.replace(obs, status=None, status_reason=None)
        current = record
        for _attempt in range(CAS_RETRIES):
            when = store.now() if now is None else now
            new, message = lifecycle.merge_observation(current, obs, when)
            if fail_reason is not None and token is not None and new["status"].endswith("_IN_PROGRESS"):
                if record["uuid"] not in working:
                    working[record["uuid"]] = synchroniser_for(record["driver"]).at_work(obs)
                if working[record["uuid"]] is None:
                    new, message = lifecycle.fail_in_progress(new, fail_reason, when)
            if not _differs(new, current):
                out.append(cluster_view(current))
                break
            changed = True
            if check_mode:
                out.append(cluster_view(new))
                break
            try:
                if new["status"] == lifecycle.DELETE_COMPLETE and current.get("operation") == "delete":
                    store.delete_cluster(
                        current,
                        current["generation"],
                        actor=actor,
                        lock_token=token,
                        require_lock_free=False,
                        message="deleted: nothing of the cluster is left in the cloud",
                    )
                    removed.append(current["name"])
                    out.append(cluster_view(new))
                else:
                    out.append(
                        cluster_view(
                            store.update_cluster(
                                new,
                                current["generation"],
                                actor=actor,
                                lock_token=token,
                                require_lock_free=False,
                                message=message,
                                operation="sync",
                            )
                        )
                    )
                    if current["status"].endswith("_IN_PROGRESS") and new["status"].endswith("_COMPLETE"):
                        settled.append(record["uuid"])
                break
            except ConflictError:
                try:
                    current = store.get_cluster(record["uuid"])  # somebody wrote: merge again on the fresh record
                except NotFoundError:
                    removed.append(record["name"])
                    break
        else:
            raise ConflictError(
                "Cluster '%s' kept changing under the sync; gave up after %d tries" % (record["name"], CAS_RETRIES)
            )
    if settle and settled and fail_reason is None:
        # the same cloud read again through the settled record (synchronisers that keep their reads)
        again_records = [store.get_cluster(u) for u in settled]
        replaying = {synchroniser_for(d) for d in {r["driver"] for r in again_records}}
        for synchroniser in replaying:
            synchroniser.replay = True
        try:
            again = sync_clusters(store, again_records, synchroniser_for, lock=lock, actor=actor, settle=False)
        finally:
            for synchroniser in replaying:
                synchroniser.replay = False
        fresh = {c["uuid"]: c for c in again["clusters"]}
        out = [fresh.get(c["uuid"], c) for c in out]
        lease = again["lock"] or lease
    return dict(changed=changed, clusters=out, removed=removed, lock=lease)


__all__ = [
    "DEFAULT_PROJECT",
    "StateError",
    "cluster_view",
    "ensure_cluster",
    "ensure_template",
    "resolve_template",
    "sync_clusters",
    "template_view",
]


#: seconds between two looks of ``watch_operation`` (a cheap read each, where the driver has one)
WATCH_INTERVAL = 1.0


def check_watch(watch, release, name, lock_token, lock_ttl, fail_reason=None):
    """Refuse ``cluster_sync``'s ``watch``/``release`` where they cannot apply (ValidationError)."""
    if watch < 0:
        raise ValidationError("watch", "must be >= 0 seconds, got %d" % watch)
    if (watch or release) and name is None:
        raise ValidationError("watch" if watch else "release", "needs name (one cluster is watched)")
    if (watch or release) and fail_reason is not None:
        raise ValidationError("fail_reason", "is recorded by a sync of its own, without watch or release")
    if watch and lock_token is not None and watch * 3 > lock_ttl:
        raise ValidationError(
            "watch", "must be at most a third of lock_ttl (%ds): the lease must outlive it, got %d" % (lock_ttl, watch)
        )


def watch_operation(store, record, synchroniser_for, lock, seconds, actor=None, release=False, clock=None, sleep=None):
    """One cluster's sync that goes on watching while its operation is in progress.

    The cluster is synchronised (``sync_clusters``: the lease renewed, what changed written);
    while it stays ``*_IN_PROGRESS`` it is looked at again every WATCH_INTERVAL for up to
    ``seconds``: through the synchroniser's ``still_working`` (one cheap read: Heat's stack
    status) where it has one, and synchronised again whenever that does not say the cloud
    still works on it (or it has no such read). Returns as soon as the operation leaves
    ``*_IN_PROGRESS``, so the front door's poll sees the end within about a second of the
    cloud instead of waiting out its interval in a sleep of its own; when the time is up, with
    what the last observation saw (the next poll observes first). ``seconds`` must stay
    well under the lease's TTL (each sync renews the lease; so does the caller's ``sleep``).
    ``release``: the lease is released when the operation came out ``*_COMPLETE`` (the front
    door's release, in the same process). ``sleep``: the caller's (``CoeModule.keep_lease``: it
    renews the lease and stops the watch of a run killed meanwhile). Returns sync_clusters'
    result and ``lock_released``.
    """
    clock = clock or time.monotonic

    def in_progress(result):
        return bool(result["clusters"]) and result["clusters"][0]["status"].endswith("_IN_PROGRESS")

    result = sync_clusters(store, [record], synchroniser_for, lock=lock, actor=actor)

    def probe():
        try:
            current = store.get_cluster(record["uuid"])
        except NotFoundError:
            return dict(result, clusters=[])  # a delete that completed removed the record
        if synchroniser_for(current["driver"]).still_working(current):
            return poll.Pending("the cloud still works on cluster %s" % current["name"])
        seen = sync_clusters(store, [current], synchroniser_for, lock=lock, actor=actor)
        return poll.Pending("", value=seen) if in_progress(seen) else seen

    if in_progress(result) and seconds > 0:
        deadline = clock() + seconds
        (sleep or time.sleep)(min(WATCH_INTERVAL, seconds))  # the first look a second after the sync
        try:
            result = poll.wait_for(
                probe,
                "cluster %s" % record["name"],
                seconds,
                interval=WATCH_INTERVAL,
                deadline=deadline,
                clock=clock,
                sleep=sleep,
            )
        except WaitTimeout as e:
            # still at work: what the last observation saw (the next poll observes first)
            result = e.pending.value or result
    done = release and lock is not None and result["clusters"]
    result["lock_released"] = bool(done) and release_when_complete(store, result["clusters"][0], lock)
    return result


def release_when_complete(store, view, lock):
    """Release the lease ``lock`` holds when the cluster ``view`` came out ``*_COMPLETE``.

    The front door's release, made by the process that saw the end; a cluster still in
    progress or failed keeps its lock (the polls, the failure path). True if released.
    """
    if not view["status"].endswith("_COMPLETE"):
        return False
    return LockManager(store).release(lock["project"], lock["name"], lock["token"])


def finish_operation(store, record, synchroniser, lock, actor=None):
    """The front door's last poll and release, in the process of the driver that waited.

    ``record``: the cluster as the store has it now; ``lock``: dict(project, name, token,
    ttl) of the lease the caller holds. The cluster is observed once by ``synchroniser``
    and recorded (``sync_clusters``: the lease renewed first, a settled cluster observed
    once more). A cluster that came out ``*_COMPLETE`` has its lock released; one still
    in progress or failed keeps it, for the front door's polls or its failure path.
    Returns dict(cluster, lock_token, lock_released).
    """
    result = sync_clusters(store, [record], lambda driver: synchroniser, lock=lock, actor=actor)
    view = result["clusters"][0]
    return dict(cluster=view, lock_token=lock["token"], lock_released=release_when_complete(store, view, lock))
