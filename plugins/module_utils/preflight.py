# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The check before any write, the same for both drivers: does the cloud have what the cluster needs?

Read-only: the images, flavors, keypair and networks exist (and, for the Heat driver, the
orchestration endpoint answers); the project's quota leaves room for the servers, cores, RAM,
ports and floating IPs the operation adds. Every problem is collected, so one run names them all.

``check_references`` is what the front door's plan step runs (the ``cluster`` module, before
it writes a record, an event or a secret); ``Preflight`` is also the ``heat_preflight`` module.
"""

from __future__ import annotations

import concurrent.futures
import contextlib

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError, error_text
from ansible_collections.coe.openstack.plugins.module_utils.loadbalancer import has_load_balancer_service
from ansible_collections.coe.openstack.plugins.module_utils.servers import server_views

#: the record field a problem's subject comes from, to name it in the error
FIELD_OF_KIND = (
    ("flavor", "flavor_id"),
    ("image", "image_id"),
    ("keypair", "keypair"),
    ("external network", "external_network_id"),
    ("network", "fixed_network"),
    ("subnet", "fixed_subnet"),
    ("quota", "quota"),
    ("orchestration", "driver"),
    ("no cluster network", "fixed_network"),
    ("floating_ip_enabled", "floating_ip_enabled"),
    ("master_lb_enabled", "master_lb_enabled"),
)


#: what ``find_reference`` finds, by kind: the connection's proxy and its finder
REFERENCE_FINDERS = dict(
    flavor=("compute", "find_flavor"),
    image=("image", "find_image"),
    keypair=("compute", "find_keypair"),
    network=("network", "find_network"),
    subnet=("network", "find_subnet"),
)


def remember_references(conn):
    """Give ``conn`` (a module's connection, new) an empty memo of the references found."""
    with contextlib.suppress(AttributeError):  # a connection that takes no attribute remembers nothing
        conn.coe_references = {}


def find_reference(conn, kind, name):
    """The ``kind`` (REFERENCE_FINDERS) called or numbered ``name`` as the cloud has it, or None.

    Each one is read once a module process: the plan step's reference check finds it, and
    the driver run in the same process (``converge``) is handed the same object. What is
    not found is not remembered (it may be made meanwhile).
    """
    memo = getattr(conn, "coe_references", None)
    memo = memo if isinstance(memo, dict) else None
    if memo is not None and (kind, name) in memo:
        return memo[(kind, name)]
    proxy, finder = REFERENCE_FINDERS[kind]
    found = getattr(getattr(conn, proxy), finder)(name, ignore_missing=True)
    if found is not None and memo is not None:
        memo[(kind, name)] = found
    return found


def _limit(value):
    """A quota limit, None when unlimited (-1)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    return None if value < 0 else value


def headroom(what, limit, used, needed):
    """A problem text when ``needed`` more does not fit under ``limit``; else None."""
    limit = _limit(limit)
    if limit is None or needed <= 0:
        return None
    used = int(used or 0)
    if used + needed > limit:
        return "quota for %s: %d needed, %d of %d used (%d free)" % (what, needed, used, limit, max(limit - used, 0))
    return None


class Preflight:
    """Run the checks on one openstacksdk Connection; ``problems`` says what is wrong."""

    def __init__(self, conn):
        self.conn = conn
        self.problems = []
        self.checked = []

    #: reads made at once by ``run`` (each is one GET)
    CONCURRENCY = 8

    _reads = None  # ``run``'s first pass: {what: call}, collected instead of called
    _answers = None  # its second pass: {what: (result, error)}

    def _try(self, what, call):
        if self._reads is not None:
            self._reads.setdefault(what, call)
            return None
        try:
            if self._answers is not None and what in self._answers:
                result, error = self._answers[what]
                if error is not None:
                    raise error
            else:
                result = call()
        except Exception as e:  # the cloud's own words go to the user
            self.problems.append("%s: %s" % (what, error_text(e)))
            return None
        self.checked.append(what)
        return result

    def orchestration(self):
        def call():
            resp = self.conn.orchestration.get("/build_info")
            if resp.status_code >= 400:
                raise RuntimeError("HTTP %d" % resp.status_code)
            return True

        self._try("orchestration (Heat) endpoint", call)

    def load_balancer_service(self):
        """The catalog must have Octavia (``load-balancer``); a clouds.yaml entry can hide it
        (openstacksdk's ``has_load_balancer: false``)."""

        if self._try("load-balancer service", lambda: has_load_balancer_service(self.conn)) is False:
            self.problems.append(
                "master_lb_enabled needs an Octavia load balancer for the API, and the cloud's catalog has no "
                "load-balancer service"
            )

    def find(self, kind, name, reference=None):
        """``find_reference`` of ``reference`` (default: ``kind``) ``name``; a problem when missing."""
        if not name:
            return None
        found = self._try("%s %s" % (kind, name), lambda: find_reference(self.conn, reference or kind, name))
        if found is None and ("%s %s" % (kind, name)) in self.checked:
            self.checked.remove("%s %s" % (kind, name))
            self.problems.append("%s %s does not exist" % (kind, name))
        return found

    def run(self, cluster, **kwargs):
        """Check everything for ``operation`` on ``cluster``; return the list of problems.

        The checks' reads do not depend on each other: a first pass of ``check`` collects
        them (``_try`` notes each instead of calling it), they are made at once on a few
        threads, and a second pass checks their answers. Same answers, a fraction of the wait.
        """
        self._reads = {}
        try:
            self.check(cluster, **kwargs)
        finally:
            reads, self._reads = self._reads, None
        self.problems, self.checked = [], []
        self._answers = {}
        if reads:
            poll.authenticated(self.conn)  # one token, before the threads use the connection
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(self.CONCURRENCY, len(reads))) as pool:
                futures = {what: pool.submit(call) for what, call in reads.items()}
            for what, future in futures.items():
                error = future.exception()
                self._answers[what] = (None, error) if error is not None else (future.result(), None)
        try:
            return self.check(cluster, **kwargs)
        finally:
            self._answers = None

    def check(
        self,
        cluster,
        operation="create",
        existing_servers=None,
        batch_size=1,
        fixed_network=None,
        fixed_subnet=None,
        external_network=None,
        floating_ip_enabled=None,
        replace=True,
        orchestration=True,
    ):
        """The checks, one after the other; ``run`` makes their reads at once first."""
        conn = self.conn
        groups = shape.read_nodegroups(cluster)
        if orchestration:
            self.orchestration()
        if operation == "delete":
            return self.problems
        flavors = {}
        for ng in groups:
            if ng["flavor"] not in flavors:
                flavors[ng["flavor"]] = self.find("flavor", ng["flavor"])
        images = set()
        for ng in groups:
            if ng["image"] not in images:
                images.add(ng["image"])
                image = self.find("image", ng["image"])
                status = getattr(image, "status", None) if image is not None else None
                if status and status != "active":
                    self.problems.append("image %s is %s, not active" % (ng["image"], status))
        keypair = shape.record_field(cluster, "keypair", "keypair_id")
        if keypair:
            self.find("keypair", keypair)
        network = fixed_network or shape.record_field(cluster, "fixed_network")
        if not network:
            self.problems.append("no cluster network (fixed_network) given")
        else:
            self.find("network", network)
        subnet = fixed_subnet if fixed_subnet is not None else cluster.get("fixed_subnet")
        if subnet:
            self.find("subnet", subnet)
        try:
            fip, external = endpoint.api_floating_ip(cluster, floating_ip_enabled, external_network)
        except ValidationError as e:
            fip, external = False, None
            self.problems.append(e.reason)  # "floating_ip_enabled needs an external network ..."
        if fip:  # the rule gives a floating IP only with an external network
            net = self.find("external network", external, "network")
            if net is not None and getattr(net, "is_router_external", True) is False:
                self.problems.append("network %s is not external" % external)

        if endpoint.endpoint_kind(cluster) == endpoint.LOAD_BALANCER:
            self.load_balancer_service()

        # what the operation adds
        existing = {}
        if existing_servers is None and operation != "create":
            existing_servers = (
                self._try(
                    "servers of the cluster",
                    lambda: list(conn.compute.servers(details=True, tags=shape.cluster_tag(cluster["uuid"]))),
                )
                or []
            )
        for view in server_views(existing_servers or []):
            nodegroup = view["nodegroup"]
            existing[nodegroup] = existing.get(nodegroup, 0) + 1
        add_servers = add_cores = add_ram = 0
        for ng in groups:
            more = max(ng["count"] - existing.get(ng["name"], 0), 0)
            if operation == "upgrade" and replace and ng["role"] != "master":
                # REPLACE makes the new worker before the old one goes: one batch extra at a time
                # (masters are rebuilt in place)
                more = max(more, min(batch_size, ng["count"]))
            flavor = flavors.get(ng["flavor"])
            add_servers += more
            add_cores += more * int(getattr(flavor, "vcpus", 0) or 0)
            add_ram += more * int(getattr(flavor, "ram", 0) or 0)
        add_ports = add_servers + (1 if operation == "create" else 0)
        project = conn.current_project_id
        quota = self._try("compute quota", lambda: conn.compute.get_quota_set(project, usage=True))
        if quota is not None:
            usage = getattr(quota, "usage", None) or {}
            for what, limit, needed in (
                ("instances", quota.instances, add_servers),
                ("cores", quota.cores, add_cores),
                ("ram", quota.ram, add_ram),
            ):
                problem = headroom(what, limit, usage.get(what, 0), needed)
                if problem:
                    self.problems.append(problem)
        netquota = self._try("network quota", lambda: conn.network.get_quota(project, details=True))
        if netquota is not None:
            for what, needed in (("ports", add_ports), ("floating_ips", 1 if fip and operation == "create" else 0)):
                detail = getattr(netquota, what, None) or {}
                if isinstance(detail, dict):
                    used = int(detail.get("used", 0) or 0) + int(detail.get("reserved", 0) or 0)
                    problem = headroom(what, detail.get("limit"), used, needed)
                    if problem:
                        self.problems.append(problem)
        self.needs = dict(servers=add_servers, cores=add_cores, ram=add_ram, ports=add_ports)
        return self.problems


def check_references(conn, cluster, operation, driver=None):
    """Refuse, naming the field, when the cloud lacks what ``operation`` on ``cluster`` needs.

    Raises ValidationError (field: the record field of the first problem, e.g. ``flavor_id``)
    whose message names every problem. Reads only.
    """
    if operation == "delete":
        return
    check = Preflight(conn)
    problems = check.run(
        cluster,
        operation=operation,
        batch_size=cluster.get("upgrade_batch_size") or 1,
        orchestration=driver == "heat",
    )
    if problems:
        field = next((f for kind, f in FIELD_OF_KIND if problems[0].startswith(kind)), "cluster_template")
        raise ValidationError(
            field,
            "the cloud lacks what the %s of cluster %s needs, nothing was written: %s"
            % (operation, cluster.get("name"), "; ".join(problems)),
            problems=problems,
        )
