# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Batch server operations through Nova, with one shared connection.

``NovaBatch`` runs a plan (plan.py) against the cloud:

* one tag-filtered server list (``coe-cluster-<uuid>``) tells what exists;
* references (image, flavor, keypair, networks, server groups, security
  groups) are resolved once per distinct value, before any write;
* quota headroom (instances, cores, ram, ports) is checked before the first
  create, and a too small quota fails naming the quota;
* creates and deletes run concurrently on a ThreadPoolExecutor with bounded
  parallelism, sharing ONE openstacksdk Connection (one token);
* waiting polls with one tag-filtered list per interval, never one GET per
  server, and collects Nova's fault messages for servers in ERROR.

Only ``conn`` is needed: the code uses ``conn.compute``, ``conn.image``,
``conn.network`` and ``conn.current_project_id``, so the unit tests drive it
with a fake connection.

The cluster's other cloud resources: security group, server groups,
floating IP for the API, the API's Octavia load balancer (``master_lb_enabled``:
made before the masters, members as they exist), and the cleanup of everything
a cluster left.

Everything is found by the cluster's uuid: Neutron resources carry the tags
``coe-cluster`` and ``coe-cluster-<uuid>`` (and the uuid in their name or
description, so that a resource whose tagging was interrupted is found as
well); server groups cannot carry tags, so their name carries the uuid.
"""

from __future__ import annotations

import base64
import concurrent.futures
import time

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    CloudError,
    NotFoundError,
    ValidationError,
    WaitTimeout,
    error_text,
)
from ansible_collections.coe.openstack.plugins.module_utils.loadbalancer import has_load_balancer_service
from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner
from ansible_collections.coe.openstack.plugins.module_utils.preflight import find_reference, headroom
from ansible_collections.coe.openstack.plugins.module_utils.servers import (
    attr,
    listed_deleted,
    live,
    server_view,
    wait_until_forgotten,
)

try:
    from keystoneauth1 import exceptions as ksa_exceptions
except ImportError:
    ksa_exceptions = None

DEFAULT_CONCURRENCY = 10
DEFAULT_POLL_INTERVAL = 1.0
# reads (lists) are retried on a dropped connection or a 502/503/504, after 1, 2 and 4 s;
# writes never are
READ_ATTEMPTS = 4
#: server group policies whose members are created in waves (NovaBatch.waves): Nova checks a
#: strict policy against the hosts the members have claimed, so members placed at once race
STAGGERED = ("anti-affinity", "affinity")
#: Nova's task states of a BUILD server whose compute has claimed its host
PLACED_TASK_STATES = ("networking", "block_device_mapping", "spawning")
#: the longest interval between two looks at whether Nova has placed a server (wait_placed)
PLACEMENT_POLL = 0.25


def is_transient(error):
    """A dropped connection or a gateway error: worth retrying a read."""
    if ksa_exceptions is not None and isinstance(
        error, (ksa_exceptions.ConnectFailure, ksa_exceptions.ConnectTimeout, ksa_exceptions.RetriableConnectionFailure)
    ):
        return True
    return getattr(error, "status_code", None) in (502, 503, 504)


def retry_read(fn, sleep=time.sleep, progress=None):
    """Run a read, retrying it on a transient failure (READ_ATTEMPTS in all)."""
    return poll.retry(
        fn, is_transient, "a read", attempts=READ_ATTEMPTS, interval=1.0, backoff=2.0, sleep=sleep, progress=progress
    )


class NovaBatch:
    """Create, delete and wait for a cluster's servers in batches."""

    def __init__(
        self,
        conn,
        cluster_uuid,
        cluster_name,
        concurrency=DEFAULT_CONCURRENCY,
        poll_interval=DEFAULT_POLL_INTERVAL,
        clock=time.monotonic,
        sleep=time.sleep,
        progress=None,
    ):
        self.conn = conn
        self.uuid = cluster_uuid
        self.cluster_name = cluster_name
        self.tag = shape.cluster_tag(cluster_uuid)
        self.concurrency = max(1, int(concurrency))
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.progress = progress or (lambda msg: None)
        self._cache = {}
        self.flavors = {}
        #: ``{server group id: policy}`` of the groups the specs use (``resolve``, or the driver
        #: for the groups it has just ensured); the members of a STAGGERED one go in waves
        self.group_policies = {}

    # -- reading ----------------------------------------------------------

    def list_views(self):
        """Every server of this cluster: one tag-filtered list call (retried if the connection drops)."""
        return live(self._list_all())

    #: ``{id: name}`` of the servers the last list showed ``DELETED`` (servers.live)
    dying = {}

    def _list_all(self):
        """The views of every server Nova lists for this cluster, the ``DELETED`` ones included."""
        listed = self.read(lambda: [server_view(s) for s in self.conn.compute.servers(details=True, tags=self.tag)])
        self.dying = {v["id"]: v["name"] for v in listed_deleted(listed)}
        return listed

    def read(self, fn):
        """Run a read, retrying it on a transient failure (retry_read)."""
        return retry_read(fn, self.sleep, progress=self.progress)

    def _reference(self, kind):
        """A finder of ``kind`` through ``preflight.find_reference`` (one read a process)."""
        return lambda value, ignore_missing=True: find_reference(self.conn, kind, value)

    def _cached(self, key, fetch):
        if key not in self._cache:
            self._cache[key] = fetch()
        return self._cache[key]

    def resolve(self, specs_or_groups, known=None):
        """Resolve every reference the specs use, once per distinct value.

        Reads only, made at once (at most O(concurrency) of them); raises NotFoundError
        naming the field and value when a reference does not exist. Returns
        ``{(kind, value): resolved}`` with image ids, flavors ``(id, name)``, keypair names,
        network ids, server group ids and security group ids, which ``create`` then uses (in
        this order: the first reference missing is the one named). ``known``: references
        already resolved (the server and security groups the driver has just made).
        """
        network = self.conn.network
        # kind: (what the error calls it, the field, the finder, what ``create`` needs of it)
        kinds = dict(
            # (what the plan step's reference check found in this process is not read again)
            image=("Image", "image", self._reference("image"), lambda found: found.id),
            flavor=("Flavor", "flavor", self._reference("flavor"), self._flavor_ref),
            keypair=("Keypair", "keypair", self._reference("keypair"), lambda found: found.name),
            network=("Network", "networks", self._reference("network"), lambda found: found.id),
            server_group=("Server group", "server_group", self._find_server_group, self._group_ref),
            security_group=("Security group", "security_groups", network.find_security_group, lambda found: found.id),
        )
        resolved = dict(known or {})
        wanted = []  # (kind, value, the spec's name), each reference once, in order
        seen = set()
        for spec in specs_or_groups:
            label = spec.get("name") or "?"
            refs = [(kind, spec.get(kind)) for kind in ("image", "flavor", "keypair")]
            refs += [
                ("network", net.get("uuid") or net.get("name") or net.get("network"))
                for net in spec.get("networks") or ()
                if not net.get("port")
            ]
            refs += [("server_group", spec.get("server_group"))]
            refs += [("security_group", sg) for sg in spec.get("security_groups") or ()]
            for kind, value in refs:
                if value and (kind, value) not in resolved and (kind, value) not in seen:
                    seen.add((kind, value))
                    wanted.append((kind, value, label))
        found = {}
        if wanted:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.concurrency, len(wanted))) as pool:
                futures = [
                    (
                        kind,
                        value,
                        pool.submit(
                            self._cached, (kind, value), lambda k=kind, v=value: kinds[k][2](v, ignore_missing=True)
                        ),
                    )
                    for kind, value, _label in wanted
                ]
            found = {(kind, value): future for kind, value, future in futures}
        for kind, value, label in wanted:
            what, field, _finder, use = kinds[kind]
            answer = found[(kind, value)].result()
            if answer is None:
                raise NotFoundError("%s %s (for %s) not found" % (what, value, label), field=field)
            resolved[(kind, value)] = use(answer)
        return resolved

    def _group_ref(self, group):
        self.group_policies[group.id] = group_policy(group)
        return group.id

    def _flavor_ref(self, flavor):
        self.flavors[flavor.id] = flavor
        return (flavor.id, flavor.name)

    def _find_server_group(self, ref, ignore_missing=True):
        groups = self._cached(("server_groups",), lambda: list(self.conn.compute.server_groups()))
        for group in groups:
            if group.id == ref:
                return group
        matches = [g for g in groups if g.name == ref]
        return matches[0] if matches else None

    # -- quota ------------------------------------------------------------

    def quota_shortfalls(self, creates, frees, resolved):
        """What the creates need beyond the project's free quota.

        ``frees`` are views of servers deleted before the creates (their
        usage is given back). Returns a list of messages, one per quota too
        small, each naming the quota, the need, the limit and the use.
        """
        need = dict(instances=0, cores=0, ram=0, ports=0)
        for spec in creates:
            flavor = self.flavors.get(resolved[("flavor", spec["flavor"])][0])
            need["instances"] += 1
            need["cores"] += int(attr(flavor, "vcpus", 0) or 0)
            need["ram"] += int(attr(flavor, "ram", 0) or 0)
            need["ports"] += len([n for n in spec.get("networks") or () if not n.get("port")])
        freed = dict(instances=0, cores=0, ram=0, ports=0)
        for view in frees:
            flavor = self._flavor_of(view)
            freed["instances"] += 1
            freed["cores"] += int(attr(flavor, "vcpus", 0) or 0)
            freed["ram"] += int(attr(flavor, "ram", 0) or 0)
        project = self.conn.current_project_id
        messages = []
        if need["instances"]:
            quota = self.conn.compute.get_quota_set(project, usage=True)
            usage = attr(quota, "usage") or {}
            for key in ("instances", "cores", "ram"):
                used = int(usage.get(key, 0) or 0) - freed[key]
                messages.append(headroom(key, attr(quota, key), used, need[key]))
        if need["ports"]:
            quota = self.conn.network.get_quota(project, details=True)
            ports = attr(quota, "ports")
            if isinstance(ports, dict):
                used = int(ports.get("used", 0) or 0) + int(ports.get("reserved", 0) or 0)
                messages.append(headroom("ports", ports.get("limit"), used, need["ports"]))
        messages = [m for m in messages if m]
        return messages

    def _flavor_of(self, view):
        for flavor in self.flavors.values():
            if view.get("flavor_id") in (flavor.id,) or view.get("flavor_name") == flavor.name:
                return flavor
        return None

    # -- writing ----------------------------------------------------------

    def server_body(self, spec, resolved):
        """The create_server arguments of a spec."""
        metadata = {str(k): str(v) for k, v in (spec.get("metadata") or {}).items()}
        metadata.update(
            {
                shape.META_CLUSTER_UUID: self.uuid,
                shape.META_CLUSTER_NAME: self.cluster_name,
                shape.META_NODEGROUP: spec["nodegroup"],
                shape.META_ROLE: spec["role"],
            }
        )
        if spec.get("index") is not None:
            metadata[shape.META_INDEX] = str(spec["index"])
        body = dict(
            name=spec["name"],
            image_id=resolved[("image", spec["image"])],
            flavor_id=resolved[("flavor", spec["flavor"])][0],
            metadata=metadata,
            tags=[shape.COMMON_TAG, self.tag],
        )
        networks = []
        for net in spec.get("networks") or ():
            if net.get("port"):
                networks.append({"port": net["port"]})
                continue
            entry = {"uuid": resolved[("network", net.get("uuid") or net.get("name") or net.get("network"))]}
            if net.get("fixed_ip"):
                entry["fixed_ip"] = net["fixed_ip"]
            networks.append(entry)
        body["networks"] = networks or "none"
        if spec.get("keypair"):
            body["key_name"] = resolved[("keypair", spec["keypair"])]
        if spec.get("user_data"):
            data = spec["user_data"]
            data = data if isinstance(data, bytes) else data.encode("utf-8")
            body["user_data"] = base64.b64encode(data).decode("ascii")
        if spec.get("server_group"):
            body["scheduler_hints"] = {"group": resolved[("server_group", spec["server_group"])]}
        if spec.get("security_groups"):
            body["security_groups"] = [{"name": resolved[("security_group", sg)]} for sg in spec["security_groups"]]
        if spec.get("availability_zone"):
            body["availability_zone"] = spec["availability_zone"]
        return body

    def _pool(self, jobs):
        """Run ``[(key, callable)]`` concurrently; ``{key: (result, error)}``."""
        results = {}
        if not jobs:
            return results
        workers = min(self.concurrency, len(jobs))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(fn): key for key, fn in jobs}
            for future in concurrent.futures.as_completed(futures):
                key = futures[future]
                try:
                    results[key] = (future.result(), None)
                except Exception as e:  # reported per server, the others go on
                    results[key] = (None, e)
        return results

    def create(self, specs, resolved, deadline):
        """Create servers concurrently. Returns ``({name: id}, {name: error text})``.

        The members of a server group whose policy is strict (STAGGERED) go in waves
        (``waves``): a wave is posted once Nova has placed the members of the one before
        (``wait_placed``). Nova learns where a member is only when its compute has claimed
        the host; members scheduled before that can be sent to one host, and with as many
        hosts as members the losers' alternates run out (docs/nova-driver.md). ``deadline``:
        the run's ``clock()`` value, which the waits between waves keep to.
        """
        compute = self.conn.compute
        waves = self.waves(specs, resolved)
        self.progress("creating %d servers" % len(specs))
        created = {}
        errors = {}
        for number, wave in enumerate(waves):
            if number:
                self.wait_placed(waves[number - 1], created, resolved, deadline)
            jobs = []
            for spec in wave:
                body = self.server_body(spec, resolved)
                jobs.append((spec["name"], lambda body=body: compute.create_server(**body)))
            for name, (server, error) in self._pool(jobs).items():
                if error is not None:
                    errors[name] = error_text(error)
                else:
                    created[name] = server.id
        return created, errors

    def _strict_group(self, spec, resolved):
        """``(group id, policy)`` of the spec's server group when its policy is STAGGERED."""
        if not spec.get("server_group"):
            return None
        group = resolved.get(("server_group", spec["server_group"]))
        policy = self.group_policies.get(group)
        return (group, policy) if policy in STAGGERED else None

    def waves(self, specs, resolved):
        """The specs in the order they are posted: a list of waves, each created at once.

        An ``anti-affinity`` group's members go one per wave (each must see the hosts of
        those before it); an ``affinity`` group's first member goes first and the others
        together after it (they follow its host). Every other spec is in the first wave.
        """
        waves = [[]]
        seen = {}
        for spec in specs:
            strict = self._strict_group(spec, resolved)
            number = 0
            if strict is not None:
                group, policy = strict
                before = seen.get(group, 0)
                seen[group] = before + 1
                number = before if policy == "anti-affinity" else min(before, 1)
            while len(waves) <= number:
                waves.append([])
            waves[number].append(spec)
        return [wave for wave in waves if wave]

    def wait_placed(self, wave, created, resolved, deadline):
        """Wait until Nova has placed the strict group members of ``wave`` that were created.

        Placed: out of BUILD, or BUILD with a task state past the host claim (PLACED_TASK_STATES);
        a member that is gone or in ERROR lets the next go (the final wait reports it). One
        list of the cluster's servers in BUILD (``building_views``, a light one) per
        PLACEMENT_POLL seconds at most: Nova places a server within about a second, and the
        next member waits for it. Where the cloud hides the task state, a member counts as
        placed once it is ACTIVE or ERROR.
        """
        ids = {created[s["name"]]: s["name"] for s in wave if s["name"] in created and self._strict_group(s, resolved)}
        if not ids:
            return

        def probe():
            building = {v["id"]: v for v in self.building_views()}
            waiting = sorted(
                name
                for sid, name in ids.items()
                if sid in building and building[sid].get("task_state") not in PLACED_TASK_STATES
            )
            if waiting:
                return poll.Pending(
                    "not placed yet: %s" % ", ".join(waiting),
                    progress="waiting for Nova to place %s before the next of its server group" % ", ".join(waiting),
                )
            return True

        poll.wait_for(
            probe,
            "Nova to place %s" % ", ".join(sorted(ids.values())),
            max(0.0, deadline - self.clock()),
            interval=min(self.poll_interval, PLACEMENT_POLL),
            deadline=deadline,
            clock=self.clock,
            sleep=self.sleep,
            progress=self.progress,
        )

    def delete(self, views):
        """Delete servers by id, concurrently. Returns ``{name: error text}``."""
        compute = self.conn.compute
        jobs = [((v["name"], v["id"]), lambda v=v: compute.delete_server(v["id"], ignore_missing=True)) for v in views]
        self.progress("deleting %d servers" % len(jobs))
        return {key[0]: error_text(error) for key, (_r, error) in self._pool(jobs).items() if error is not None}

    def wait_for_floating_address(self, server_name, address, timeout):
        """The views once Nova shows ``address`` among ``server_name``'s floating addresses.

        Neutron attaches a floating IP at once; Nova's view of the server's addresses
        follows a moment later. Waiting here means the observation right after the
        driver already records the address (a re-run then finds nothing to change).
        Gives up quietly after ``timeout`` seconds: the next observation records it.
        """

        def probe():
            views = self.list_views()
            if any(v["name"] == server_name and address in (v["floating_addresses"] or ()) for v in views):
                return views
            return poll.Pending("not shown yet", value=views)

        try:
            return poll.wait_for(
                probe,
                "Nova to show %s on %s" % (address, server_name),
                timeout,
                interval=self.poll_interval,
                clock=self.clock,
                sleep=self.sleep,
            )
        except WaitTimeout as e:
            return e.pending.value

    def building_views(self):
        """The views of the cluster's servers in ``BUILD``: one list, filtered by tag and status.

        What a wait for creates needs of each poll: Nova shows a server that is ACTIVE, in
        ERROR or gone no more here, and the list costs Nova little once most servers are up
        (its details list of every server grows with the cluster: ~0.5 s for 30 servers on
        the local cloud, against ~0.03 s for none in BUILD).
        """
        return self.read(
            lambda: [server_view(s) for s in self.conn.compute.servers(details=True, tags=self.tag, status="BUILD")]
        )

    def listed_ids(self):
        """``{id: name}`` of every server Nova lists for this cluster (``DELETED`` ones included):
        one summary list, what a wait for deletes needs of each poll."""
        return self.read(lambda: {s.id: s.name for s in self.conn.compute.servers(details=False, tags=self.tag)})

    def wait(self, created_ids, deleted_ids, timeout, deadline=None, on_poll=None):
        """Wait until created servers are ACTIVE or ERROR and deleted ones are gone.

        One tag-filtered list per poll interval, as light as what is awaited allows: the
        servers in BUILD while only creates are awaited (``building_views``), the servers'
        ids while only deletes are (``listed_ids``), every server's details while both are,
        or while ``on_poll(views)`` (work that can start while others build) still wants the
        views: it returns True once it has what it waited for. Then one full list, whose views
        are returned. Raises WaitTimeout naming the servers still awaited.
        """
        created_ids = set(created_ids)
        deleted_ids = set(deleted_ids)
        wants_views = [on_poll is not None]

        def probe():
            views = None
            if created_ids and not deleted_ids and not wants_views[0]:
                building = sorted(v["name"] for v in self.building_views() if v["id"] in created_ids)
                deleting = []
            elif deleted_ids and not created_ids and not wants_views[0]:
                building = []
                deleting = sorted(name for i, name in self.listed_ids().items() if i in deleted_ids)
            else:
                listed = self._list_all()
                views = live(listed)
                if on_poll is not None and wants_views[0] and on_poll(views):
                    wants_views[0] = False
                by_id = {v["id"]: v for v in views}
                building = sorted(
                    by_id[i]["name"]
                    for i in created_ids
                    if i in by_id and by_id[i]["status"] not in ("ACTIVE", "ERROR")
                )
                # a deleted server is waited for until Nova lists it no more (servers.live)
                deleting = sorted(v["name"] for v in listed if v["id"] in deleted_ids)
            if not building and not deleting:
                views = views if views is not None else self.list_views()
                vanished = sorted(i for i in created_ids if i not in {v["id"] for v in views})
                if vanished:
                    raise CloudError("Servers vanished while they were being created: %s" % ", ".join(vanished))
                return views
            parts = []
            if building:
                parts.append("still building: %s" % ", ".join(building))
            if deleting:
                parts.append("still being deleted: %s" % ", ".join(deleting))
            return poll.Pending(
                "; ".join(parts),
                progress="%d building, %d being deleted" % (len(building), len(deleting)),
                building=building,
                deleting=deleting,
            )

        return poll.wait_for(
            probe,
            "the servers of cluster %s" % self.cluster_name,
            timeout,
            interval=self.poll_interval,
            deadline=deadline,
            clock=self.clock,
            sleep=self.sleep,
            progress=self.progress,
        )

    # -- the whole run ----------------------------------------------------

    def apply(
        self, plan, resolved, wait=True, timeout=3600, batch_size=0, check_quota=True, on_poll=None, before_delete=None
    ):
        """Carry out a plan. Returns a result dict (see the module's RETURN).

        ``on_poll``: called with each list of the cluster's servers while waiting, until it
        returns True (``wait``).
        Quota is checked before the first write. Creates that the cloud
        refuses (e.g. a 403 quota) and servers that end in ERROR are listed in
        ``failed`` with the cloud's words; the caller decides to fail.
        ``before_delete(views, deletes)``: called in a rolling run once a round's new
        servers are ACTIVE, before its old ones go (the API load balancer's members move).
        """
        result = dict(created=[], deleted=[], failed={}, views=None)
        steps = planner.rounds(plan, batch_size)
        if not steps:
            result["views"] = None
            return result
        deadline = self.clock() + timeout
        if plan["create"] and self.dying:
            # a server Nova still lists as DELETED holds its host in its server group (an
            # anti-affine replacement would find none) and its quota until Nova destroys it
            self.progress("waiting for Nova to forget %s" % ", ".join(sorted(self.dying.values())))
            wait_until_forgotten(
                lambda: self.read(lambda: list(self.conn.compute.servers(details=True, tags=self.tag))),
                timeout,
                sleep=self.sleep,
                interval=self.poll_interval,
                progress=self.progress,
            )
        wait_deletes = False
        if check_quota and plan["create"]:
            if batch_size:
                # the peak is reached at some round: what is created up to it
                # minus what went before it
                needs, frees = self._rolling_peak(steps)
                short = self.quota_shortfalls(needs, frees, resolved)
            else:
                short = self.quota_shortfalls(plan["create"], [], resolved)
                frees = plan["delete"]
            if not batch_size and short and frees and not self.quota_shortfalls(plan["create"], frees, resolved):
                # it fits once the deletes are through: delete, wait, then create
                short = []
                wait_deletes = True
            if short:
                raise CloudError(
                    "Not enough quota to create %d servers for cluster %s: %s"
                    % (len(plan["create"]), self.cluster_name, "; ".join(short)),
                    quota=short,
                )
        views = None
        for creates, deletes in steps:
            if batch_size:
                # rolling: the new servers are ACTIVE before the old ones go
                views = self._create_and_wait(creates, resolved, result, timeout, deadline, True, on_poll) or views
                if result["failed"]:
                    break  # the old servers still serve; stop before the next batch
                if before_delete is not None and views is not None and deletes:
                    before_delete(views, deletes)
                views = self._delete_and_wait(deletes, result, timeout, deadline, True) or views
                if result["failed"]:
                    break
                continue
            deleted_ids = self._delete(deletes, result)
            if wait_deletes and creates and deleted_ids:
                views = self.wait([], deleted_ids, timeout, deadline)
                deleted_ids = []
            created = self._create(creates, resolved, result, deadline)
            if wait:
                views = self.wait(created.values(), deleted_ids, timeout, deadline, on_poll)
                self._collect_faults(views, created, result)
        result["views"] = views
        return result

    @staticmethod
    def _rolling_peak(steps):
        best = ([], [])
        created, deleted = [], []
        for creates, deletes in steps:
            created = created + list(creates)
            if len(created) - len(deleted) > len(best[0]) - len(best[1]):
                best = (created, list(deleted))
            deleted = deleted + list(deletes)
        return best

    def _create(self, creates, resolved, result, deadline):
        created, errors = self.create(creates, resolved, deadline)
        result["created"].extend(sorted(created))
        result["failed"].update(errors)
        return created

    def _delete(self, deletes, result):
        errors = self.delete(deletes)
        result["failed"].update({n: "delete failed: %s" % e for n, e in errors.items()})
        result["deleted"].extend(d["name"] for d in deletes if d["name"] not in errors)
        return [d["id"] for d in deletes if d["name"] not in errors]

    def _create_and_wait(self, creates, resolved, result, timeout, deadline, wait, on_poll=None):
        if not creates:
            return None
        created = self._create(creates, resolved, result, deadline)
        if not wait:
            return None
        views = self.wait(created.values(), [], timeout, deadline, on_poll)
        self._collect_faults(views, created, result)
        return views

    def _delete_and_wait(self, deletes, result, timeout, deadline, wait):
        if not deletes:
            return None
        deleted_ids = self._delete(deletes, result)
        return self.wait([], deleted_ids, timeout, deadline) if wait else None

    @staticmethod
    def _collect_faults(views, created, result):
        ids = set(created.values())
        for view in views:
            if view["id"] in ids and view["status"] == "ERROR":
                result["failed"][view["name"]] = view["fault"] or "went to ERROR without a fault message"


# ingress opened to the world on the cluster security group (ssh, the
# Kubernetes API, the kubelet); traffic between members is always allowed
DEFAULT_PORTS = (22, 6443, 10250)


def group_policy(group):
    """The policy of an openstacksdk server group (``policy`` since microversion 2.64, else the
    first of ``policies``)."""
    return getattr(group, "policy", None) or (getattr(group, "policies", None) or [None])[0]


class ClusterResources:
    """Find, ensure and clean up the non-server resources of one cluster."""

    def __init__(self, conn, cluster_uuid, cluster_name, check_mode=False):
        self.conn = conn
        self.uuid = cluster_uuid
        self.cluster_name = cluster_name
        self.tag = shape.cluster_tag(cluster_uuid)
        self.check_mode = check_mode
        self.changes = []

    def _changed(self, what):
        self.changes.append(what)

    def _tag(self, resource):
        if not self.check_mode:
            self.conn.network.set_tags(resource, [shape.COMMON_TAG, self.tag])

    # -- security group ---------------------------------------------------

    def find_security_groups(self):
        """The cluster's security groups: tagged, or named after the uuid."""
        found = {sg.id: sg for sg in self.conn.network.security_groups(tags=self.tag)}
        name = shape.security_group_name(self.cluster_name, self.uuid)
        for sg in self.conn.network.security_groups(name=name):
            found.setdefault(sg.id, sg)
        return list(found.values())

    def ensure_security_group(self, ports=DEFAULT_PORTS):
        """The cluster security group with its rules; returns a summary."""
        groups = self.find_security_groups()
        name = shape.security_group_name(self.cluster_name, self.uuid)
        if groups:
            sg = groups[0]
            if self.tag not in (sg.tags or []):
                self._changed("tag security group %s" % sg.name)
                self._tag(sg)
        else:
            self._changed("create security group %s" % name)
            if self.check_mode:
                return dict(id=None, name=name, ports=list(ports))
            sg = self.conn.network.create_security_group(
                name=name, description="coe.openstack cluster %s (%s)" % (self.cluster_name, self.uuid)
            )
            self._tag(sg)
        have = set()
        for rule in sg.security_group_rules or []:
            r = rule if isinstance(rule, dict) else rule.to_dict()
            if r.get("direction") != "ingress":
                continue
            if r.get("remote_group_id") == sg.id:
                have.add("members")
            elif r.get("protocol") == "tcp" and r.get("port_range_min") == r.get("port_range_max"):
                have.add(r.get("port_range_min"))
        wanted = [dict(ethertype="IPv4", remote_group_id=sg.id)] if "members" not in have else []
        for port in ports:
            if port not in have:
                wanted.append(
                    dict(
                        ethertype="IPv4",
                        protocol="tcp",
                        port_range_min=port,
                        port_range_max=port,
                        remote_ip_prefix="0.0.0.0/0",
                    )
                )
        for rule in wanted:
            self._changed("add rule %s to security group %s" % (rule.get("port_range_min", "members"), sg.name))
            if not self.check_mode:
                self.conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", **rule)
        return dict(id=sg.id, name=sg.name, ports=list(ports))

    # -- server groups ----------------------------------------------------

    def find_server_groups(self):
        prefix = shape.server_group_prefix(self.uuid)
        return [g for g in self.conn.compute.server_groups() if (g.name or "").startswith(prefix)]

    def ensure_server_groups(self, wanted, version=None):
        """``wanted``: ``{nodegroup: policy}``. Returns ``{nodegroup: {id, name, policy}}``.

        With ``version`` (the record's template version) the groups are those of
        that version (shape.server_group_name). The cluster's other server
        groups (of nodegroups that are gone, or of an older template version)
        are deleted; Nova keeps their members running.
        """
        existing = {g.name: g for g in self.find_server_groups()}
        result = {}
        for nodegroup, policy in sorted(wanted.items()):
            name = shape.server_group_name(self.uuid, nodegroup, version)
            group = existing.get(name)
            if group is not None:
                have = group_policy(group)
                if have != policy:
                    raise CloudError(
                        "Server group %s has policy %s, not %s: a server group's policy cannot change"
                        % (name, have, policy)
                    )
            else:
                self._changed("create server group %s (%s)" % (name, policy))
                if not self.check_mode:
                    group = self.conn.compute.create_server_group(name=name, policy=policy)
            result[nodegroup] = dict(id=group.id if group is not None else None, name=name, policy=policy)
        # the groups of nodegroups that are gone (or no longer have a policy)
        wanted_names = {shape.server_group_name(self.uuid, ng, version) for ng in wanted}
        for name, group in sorted(existing.items()):
            if name not in wanted_names:
                self._changed("delete server group %s" % name)
                if not self.check_mode:
                    self.conn.compute.delete_server_group(group, ignore_missing=True)
        return result

    # -- the API VIP (endpoint.VIP) ----------------------------------------

    def find_vip_ports(self):
        return [p for p in self.conn.network.ports(tags=self.tag) if shape.API_VIP_TAG in (p.tags or [])]

    def vip_port(self):
        """``{id, name, fixed_ip}`` of the cluster's API VIP port (all None when there is none)."""
        for port in self.find_vip_ports():
            fixed = [f.get("ip_address") for f in port.fixed_ips or [] if f.get("ip_address")]
            return dict(id=port.id, name=port.name, fixed_ip=fixed[0] if fixed else None)
        return dict(id=None, name=None, fixed_ip=None)

    def ensure_vip_port(self, network, subnet=None, security_group=None):
        """The port whose fixed IP is the API's VIP, made before the masters (its address goes
        into their user-data). ``network``/``subnet``: the cluster's (name or id). Returns
        ``{id, name, fixed_ip}`` (``id``/``fixed_ip`` None in check mode before it exists)."""
        name = shape.api_vip_port_name(self.cluster_name)
        found = self.find_vip_ports()
        if found:
            port = found[0]
        else:
            net = find_reference(self.conn, "network", network)
            if net is None:
                raise NotFoundError("Network %s not found (for the API VIP port)" % network, field="fixed_network")
            body = dict(name=name, network_id=net.id, description="coe.openstack API VIP of cluster %s" % self.uuid)
            if subnet:
                sub = find_reference(self.conn, "subnet", subnet)
                if sub is None:
                    raise NotFoundError("Subnet %s not found (for the API VIP port)" % subnet, field="fixed_subnet")
                body["fixed_ips"] = [{"subnet_id": sub.id}]
            if security_group:
                body["security_group_ids"] = [security_group]
            self._changed("create port %s" % name)
            if self.check_mode:
                return dict(id=None, name=name, fixed_ip=None)
            port = self.conn.network.create_port(**body)
            self.conn.network.set_tags(port, [shape.COMMON_TAG, self.tag, shape.API_VIP_TAG])
        fixed = [f.get("ip_address") for f in port.fixed_ips or [] if f.get("ip_address")]
        return dict(id=port.id, name=port.name, fixed_ip=fixed[0] if fixed else None)

    def ensure_vip_pairs(self, address, views):
        """Every master's port may carry the VIP's ``address`` (allowed_address_pairs): one
        port list of the cluster's network ports by device, an update only where it lacks it.
        ``views``: the cluster's servers. Returns the names of the masters updated."""
        masters = {v["id"]: v["name"] for v in views if v.get("role") == "master" and v.get("id")}
        if not masters or not address:
            return []
        updated = []
        for port in self._ports_of(masters):
            pairs = [dict(p) for p in getattr(port, "allowed_address_pairs", None) or []]
            if any(p.get("ip_address") in (address, address + "/32") for p in pairs):
                continue
            name = masters[port.device_id]
            self._changed("let %s carry the API VIP %s" % (name, address))
            updated.append(name)
            if not self.check_mode:
                self.conn.network.update_port(port, allowed_address_pairs=[*pairs, {"ip_address": address}])
        return sorted(updated)

    def _ports_of(self, servers):
        """The ports of these servers ({id: name}): one list call per server (masters: few)."""
        out = []
        for server_id in sorted(servers):
            out.extend(self.conn.network.ports(device_id=server_id))
        return out

    # -- floating IP for the API ------------------------------------------

    def find_floating_ips(self):
        found = {ip.id: ip for ip in self.conn.network.ips(tags=self.tag)}
        for ip in self.conn.network.ips(description=self._fip_description()):
            found.setdefault(ip.id, ip)
        return list(found.values())

    def _fip_description(self):
        return "coe.openstack API of cluster %s" % self.uuid

    def _api_server(self, server_name=None, views=None):
        """The server that carries the API floating IP: the one named, or the
        ACTIVE master with the lowest index. None if there is none yet.
        ``views``: the cluster's servers if the caller has just listed them."""
        if views is None:
            views = NovaBatch(self.conn, self.uuid, self.cluster_name).list_views()
        if server_name:
            found = [v for v in views if v["name"] == server_name]
            if not found:
                raise NotFoundError(
                    "Server %s of cluster %s not found: it should get the API floating IP"
                    % (server_name, self.cluster_name),
                    field="floating_ip_server",
                )
            return found[0]
        masters = [v for v in views if v.get("role") == "master" and v["status"] == "ACTIVE"]
        if not masters:
            return None
        return min(masters, key=lambda v: (v.get("index") or 0, v["name"]))

    def ensure_floating_ip(self, external_network, server_name=None, views=None, port=None):
        """The cluster's API floating IP.

        Created unattached when no master exists yet (its address is the API
        address the user-data needs before any server boots); attached to the
        server named, or else, when it is attached to nothing, to the first
        ACTIVE master. An attached floating IP is not moved unless a server is
        named. ``views``: the cluster's servers, when the caller has just listed
        them (saves a list call). ``port``: ``(name, port id)`` of the port that carries the
        API instead of a master's (the load balancer's VIP port, the API VIP's port): the
        floating IP goes there.
        """
        network = find_reference(self.conn, "network", external_network)
        if network is None:
            raise NotFoundError("External network %s not found" % external_network, field="external_network")
        fips = self.find_floating_ips()
        fip = fips[0] if fips else None
        target = port if port and port[1] else None
        if target is None and (server_name or fip is None or not fip.port_id):
            server = self._api_server(server_name, views)
            if server is not None:
                ports = sorted(self.conn.network.ports(device_id=server["id"]), key=lambda p: p.created_at or "")
                if not ports:
                    raise CloudError("Server %s has no port for the API floating IP" % server["name"])
                target = (server["name"], ports[0].id)
        if fip is None:
            self._changed("create floating IP on %s%s" % (external_network, " for %s" % target[0] if target else ""))
            if self.check_mode:
                return dict(id=None, address=None, port_id=target[1] if target else None, server=target and target[0])
            fip = self.conn.network.create_ip(
                floating_network_id=network.id,
                port_id=target[1] if target else None,
                description=self._fip_description(),
            )
            self._tag(fip)
        elif target is not None and fip.port_id != target[1]:
            self._changed("attach floating IP %s to %s" % (fip.floating_ip_address, target[0]))
            if not self.check_mode:
                fip = self.conn.network.update_ip(fip, port_id=target[1])
        return dict(
            id=fip.id,
            address=fip.floating_ip_address,
            port_id=fip.port_id,
            server=target[0] if target else None,
            # the server Neutron shows it on (its fip-port-details extension), None without it
            device_id=attr(getattr(fip, "port_details", None), "device_id") if fip.port_id else None,
        )

    # -- the API's load balancer (endpoint.LOAD_BALANCER) -----------------

    def find_load_balancers(self):
        if not has_load_balancer_service(self.conn):
            return []
        return list(self.conn.load_balancer.load_balancers(tags=self.tag))

    def wait_load_balancer(self, lb_id, doing, timeout=600, sleep=None):
        """The load balancer once ``provisioning_status`` is ACTIVE (Octavia refuses changes while
        it is PENDING_*); CloudError with Octavia's status when it goes ERROR."""

        def probe():
            lb = self.conn.load_balancer.get_load_balancer(lb_id)
            if lb.provisioning_status == "ERROR":
                raise CloudError(
                    "Load balancer %s of cluster %s went to provisioning_status ERROR while %s (operating_status %s)"
                    % (lb.name, self.cluster_name, doing, lb.operating_status),
                    faults={lb.name: "provisioning_status ERROR (%s)" % doing},
                )
            if lb.provisioning_status != "ACTIVE":
                return poll.Pending("provisioning_status %s" % lb.provisioning_status, value=lb)
            return lb

        extra = {} if sleep is None else dict(sleep=sleep)
        return poll.wait_for(
            probe, "load balancer of cluster %s (%s)" % (self.cluster_name, doing), timeout, interval=0.5, **extra
        )

    def vip_subnet(self, fixed_network=None, fixed_subnet=None):
        """The subnet of the load balancer's VIP: the cluster's ``fixed_subnet``, else the first
        IPv4 subnet (else the first) of its network."""
        if fixed_subnet:
            return fixed_subnet
        if not fixed_network:
            raise ValidationError("fixed_network", "the API load balancer needs the cluster's network for its VIP")
        net = self.conn.network.find_network(fixed_network, ignore_missing=False)
        subnets = sorted(self.conn.network.subnets(network_id=net.id), key=lambda n: (n.ip_version != 4, n.name or ""))
        if not subnets:
            raise CloudError("Network %s has no subnet for the API load balancer's VIP" % fixed_network)
        return subnets[0].id

    def ensure_load_balancer(self, subnet, allowed_cidrs=(), timeout=600, sleep=None):
        """The cluster's API load balancer: VIP on ``subnet``, a TCP listener on the API port
        (``allowed_cidrs``), a pool and a TCP health monitor, each waited to ACTIVE. Returns
        ``{id, name, vip_address, vip_port_id, pool_id}`` (ids None in check mode when new)."""
        name = shape.load_balancer_name(self.cluster_name, self.uuid)
        cidrs = sorted(allowed_cidrs or [])
        lbs = self.find_load_balancers()
        lb = lbs[0] if lbs else None
        if lb is None:
            self._changed("create load balancer %s" % name)
            if self.check_mode:
                return dict(id=None, name=name, vip_address=None, vip_port_id=None, pool_id=None)
            subnet_id = self.conn.network.find_subnet(subnet, ignore_missing=False).id
            lb = self.conn.load_balancer.create_load_balancer(
                name=name,
                vip_subnet_id=subnet_id,
                tags=[shape.COMMON_TAG, self.tag],
                description="coe.openstack API of cluster %s (%s)" % (self.cluster_name, self.uuid),
            )
        if not self.check_mode:
            lb = self.wait_load_balancer(lb.id, "creating it", timeout, sleep)
        listeners = list(self.conn.load_balancer.listeners(loadbalancer_id=lb.id)) if lb.listeners else []
        listener = listeners[0] if listeners else None
        if listener is None:
            self._changed("create listener TCP %d on load balancer %s" % (endpoint.API_PORT, name))
            if not self.check_mode:
                listener = self.conn.load_balancer.create_listener(
                    loadbalancer_id=lb.id,
                    name=name,
                    protocol="TCP",
                    protocol_port=endpoint.API_PORT,
                    allowed_cidrs=cidrs or None,
                )
                self.wait_load_balancer(lb.id, "adding its listener", timeout, sleep)
        elif sorted(listener.allowed_cidrs or []) != cidrs:
            self._changed("set allowed_cidrs of the listener of load balancer %s to %s" % (name, cidrs))
            if not self.check_mode:
                self.conn.load_balancer.update_listener(listener, allowed_cidrs=cidrs or None)
                self.wait_load_balancer(lb.id, "updating its listener's allowed_cidrs", timeout, sleep)
        pools = list(self.conn.load_balancer.pools(loadbalancer_id=lb.id)) if listener is not None else []
        pool = pools[0] if pools else None
        if pool is None:
            self._changed("create pool on load balancer %s" % name)
            if not self.check_mode:
                pool = self.conn.load_balancer.create_pool(
                    listener_id=listener.id, name=name, protocol="TCP", lb_algorithm="ROUND_ROBIN"
                )
                self.wait_load_balancer(lb.id, "adding its pool", timeout, sleep)
        if pool is None or not pool.health_monitor_id:
            self._changed("create TCP health monitor on load balancer %s" % name)
            if not self.check_mode:
                self.conn.load_balancer.create_health_monitor(
                    pool_id=pool.id, name=name, type="TCP", delay=5, timeout=5, max_retries=3
                )
                self.wait_load_balancer(lb.id, "adding its health monitor", timeout, sleep)
        return dict(
            id=lb.id,
            name=lb.name,
            vip_address=lb.vip_address,
            vip_port_id=lb.vip_port_id,
            pool_id=pool.id if pool is not None else None,
        )

    def ensure_members(self, lb, masters, timeout=600, sleep=None):
        """The pool's members are exactly ``masters`` (``{server name: fixed address}``), in one
        batch update of Octavia's when they differ. Returns the member addresses."""
        if not lb.get("pool_id") or not masters:
            return sorted(masters.values())  # never an empty pool: the API would have no member
        have = {m.address: m for m in self.conn.load_balancer.members(lb["pool_id"])}
        if set(have) == set(masters.values()):
            return sorted(have)
        self._changed("set the members of load balancer %s to %s" % (lb["name"], ", ".join(sorted(masters))))
        if not self.check_mode:
            body = [
                dict(name=server, address=address, protocol_port=endpoint.API_PORT)
                for server, address in sorted(masters.items())
            ]
            resp = self.conn.load_balancer.put("/lbaas/pools/%s/members" % lb["pool_id"], json=dict(members=body))
            if resp.status_code >= 400:
                raise CloudError(
                    "Octavia refused the members of load balancer %s: %s" % (lb["name"], resp.text.strip()[:500])
                )
            self.wait_load_balancer(lb["id"], "updating its members", timeout, sleep)
        return sorted(masters.values())

    def delete_load_balancers(self, timeout=600, sleep=None):
        """Cascade-delete the cluster's load balancers and wait until Octavia has none (their VIP
        ports and security groups go with them). Returns their names."""
        names = []
        for lb in self.find_load_balancers():
            names.append(lb.name)
            self._changed("delete load balancer %s" % lb.name)
            if self.check_mode:
                continue
            if lb.provisioning_status.startswith("PENDING_") and lb.provisioning_status != "PENDING_DELETE":
                self.wait_load_balancer(lb.id, "waiting to delete it", timeout, sleep)
            if lb.provisioning_status != "PENDING_DELETE":
                self.conn.load_balancer.delete_load_balancer(lb.id, cascade=True, ignore_missing=True)

            def gone(lb_id=lb.id):
                found = self.conn.load_balancer.find_load_balancer(lb_id, ignore_missing=True)
                if found is not None and found.provisioning_status != "DELETED":
                    return poll.Pending("provisioning_status %s" % found.provisioning_status)
                return True

            extra = {} if sleep is None else dict(sleep=sleep)
            poll.wait_for(gone, "load balancer %s to be deleted" % lb.name, timeout, interval=0.5, **extra)
        return names

    # -- everything -------------------------------------------------------

    def inventory(self):
        """Everything of the cluster that exists: ``{kind: [names]}``."""
        servers = list(self.conn.compute.servers(details=False, tags=self.tag))
        return dict(
            servers=sorted(s.name for s in servers),
            floating_ips=sorted(f.floating_ip_address for f in self.find_floating_ips()),
            ports=sorted(p.name or p.id for p in self.conn.network.ports(tags=self.tag)),
            security_groups=sorted(sg.name for sg in self.find_security_groups()),
            server_groups=sorted(g.name for g in self.find_server_groups()),
            load_balancers=sorted(lb.name for lb in self.find_load_balancers()),
        )

    def delete_all(self, timeout=3600, concurrency=10, wait=True, progress=None, sleep=None):
        """Delete everything of the cluster, orphans of an interrupted run included.

        Servers first (they hold ports, floating IPs and group memberships),
        then floating IPs, tagged ports, server groups and security groups.
        ``sleep``: the wait's sleep (one that renews the caller's lease). Returns
        ``{kind: [names deleted]}``.
        """
        deleted = dict(servers=[], floating_ips=[], ports=[], server_groups=[], security_groups=[], load_balancers=[])
        extra = {} if sleep is None else dict(sleep=sleep)
        batch = NovaBatch(self.conn, self.uuid, self.cluster_name, concurrency=concurrency, progress=progress, **extra)
        views = batch.list_views()
        if views:
            deleted["servers"] = sorted(v["name"] for v in views)
            self._changed("delete %d servers" % len(views))
            if not self.check_mode:
                errors = batch.delete(views)
                if errors:
                    raise CloudError(
                        "Couldn't delete servers of cluster %s: %s"
                        % (self.cluster_name, "; ".join("%s: %s" % kv for kv in sorted(errors.items())))
                    )
                # ports, security groups and server groups stay busy until
                # the servers are gone
                batch.wait([], [v["id"] for v in views], timeout)
        for fip in self.find_floating_ips():
            deleted["floating_ips"].append(fip.floating_ip_address)
            self._changed("delete floating IP %s" % fip.floating_ip_address)
            if not self.check_mode:
                self.conn.network.delete_ip(fip, ignore_missing=True)
        # cascade: listener, pool, members, health monitor; Octavia deletes the VIP port and the
        # lb-<id> security group it made
        deleted["load_balancers"] = self.delete_load_balancers(timeout, sleep)
        for port in self.conn.network.ports(tags=self.tag):
            deleted["ports"].append(port.name or port.id)
            self._changed("delete port %s" % (port.name or port.id))
            if not self.check_mode:
                self.conn.network.delete_port(port, ignore_missing=True)
        for group in self.find_server_groups():
            deleted["server_groups"].append(group.name)
            self._changed("delete server group %s" % group.name)
            if not self.check_mode:
                self.conn.compute.delete_server_group(group, ignore_missing=True)
        for sg in self.find_security_groups():
            deleted["security_groups"].append(sg.name)
            self._changed("delete security group %s" % sg.name)
            if not self.check_mode:
                try:
                    self.conn.network.delete_security_group(sg, ignore_missing=True)
                except Exception as e:
                    raise CloudError("Couldn't delete security group %s: %s" % (sg.name, error_text(e))) from e
        return deleted


def resource_settings(
    record=None,
    external_network=None,
    floating_ip=None,
    server_groups=None,
    ports=DEFAULT_PORTS,
    master_policy=None,
    worker_policy=None,
):
    """Check the resource options of a cluster, before any cloud call.

    ``record`` is the cluster record (or None). With a record, the masters' nodegroup
    always gets a group: the policy ``server_groups`` gives it, else ``master_policy``,
    else the template's (``master_server_group_policy``); with ``worker_policy``, every
    other nodegroup of the record gets one too (``server_groups`` wins for a nodegroup it
    names). ``floating_ip`` and ``external_network`` override the record's:
    ``endpoint.api_floating_ip`` (the rule both drivers share) says whether the API gets
    a floating IP, and from which network.
    Returns ``(server_groups, floating_ip, external_network)``; raises
    ValidationError naming the option.
    """
    for port in ports:
        if not 0 < port < 65536:
            raise ValidationError("security_group_ports", "%d is not a TCP port" % port)
    groups = dict(server_groups or {})
    if record is not None:
        nodegroups = planner.nodegroups_from_record(record)
        masters = [g for g in nodegroups if g["role"] == "master"]
        if masters and masters[0]["name"] not in groups:
            # the masters always have a group; the option, else the template, says which policy
            policy = master_policy or shape.master_server_group_policy(record)
            groups[masters[0]["name"]] = shape.check_server_group_policy("master_server_group_policy", policy)
        if worker_policy:
            shape.check_server_group_policy("worker_server_group_policy", worker_policy)
            for group in nodegroups:
                if group["role"] != "master":
                    groups.setdefault(group["name"], worker_policy)
    for nodegroup, policy in groups.items():
        if not shape.is_label(nodegroup):
            raise ValidationError("server_groups", "%r is not a nodegroup name" % nodegroup)
        shape.check_server_group_policy("server_groups.%s" % nodegroup, policy)
    floating, external = endpoint.api_floating_ip(record, floating_ip, external_network, field="external_network")
    return groups, floating, external
