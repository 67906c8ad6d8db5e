# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The Nova driver's converge."""

from __future__ import annotations

import concurrent.futures
import time

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.module import (
    LEASE_ARGUMENT_SPEC,
    InlineModule,
    ModuleLogic,
    check_lease_options,
    converge_params,
    driver_options,
)
from ansible_collections.coe.openstack.plugins.module_utils.nova import build as cluster_utils
from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner
from ansible_collections.coe.openstack.plugins.module_utils.nova.client import (
    DEFAULT_PORTS,
    ClusterResources,
    NovaBatch,
    group_policy,
    resource_settings,
)
from ansible_collections.coe.openstack.plugins.module_utils.servers import fixed_address, public_view, with_floating_ips

# --- nova_servers

# The options of coe.openstack.nova_servers (documented in plugins/modules/nova_servers.py)
SERVERS_ARGUMENT_SPEC = dict(
    batch_size=dict(type="int", default=0),
    cluster=dict(type="dict"),
    cluster_name=dict(),
    cluster_uuid=dict(),
    concurrency=dict(type="int", default=10),
    external_network=dict(),
    fixed_network=dict(),
    floating_ip=dict(type="bool"),
    master_server_group_policy=dict(),
    nodes_to_remove=dict(type="list", elements="str", default=[]),
    poll_interval=dict(type="float", default=1.0),
    prune=dict(type="bool", default=True),
    render_user_data=dict(type="bool", default=False),
    replace_errored=dict(type="bool", default=True),
    replace_outdated=dict(type="bool", default=False),
    resources=dict(type="bool", default=False),
    secret_key=dict(no_log=True),
    security_group_ports=dict(type="list", elements="int", default=list(DEFAULT_PORTS)),
    server_groups=dict(type="dict"),
    servers=dict(
        type="list",
        elements="dict",
        options=dict(
            availability_zone=dict(),
            flavor=dict(required=True),
            image=dict(required=True),
            index=dict(type="int"),
            keypair=dict(no_log=False),
            metadata=dict(type="dict"),
            name=dict(required=True),
            networks=dict(
                type="list",
                elements="dict",
                options=dict(fixed_ip=dict(), network=dict(), port=dict()),
            ),
            nodegroup=dict(required=True),
            role=dict(required=True, choices=["master", "worker"]),
            security_groups=dict(type="list", elements="str"),
            server_group=dict(),
            user_data=dict(no_log=True),
        ),
    ),
    state=dict(default="present", choices=["absent", "present"]),
    user_data=dict(type="dict", no_log=True),
    worker_server_group_policy=dict(),
    **LEASE_ARGUMENT_SPEC,
)

SERVERS_MODULE_KWARGS = dict(
    supports_check_mode=True,
    mutually_exclusive=[("cluster", "servers"), ("cluster", "cluster_uuid"), ("cluster", "cluster_name")],
    required_one_of=[("cluster", "cluster_uuid")],
    required_together=[("cluster_uuid", "cluster_name")],
)


def check_batch_settings(values, prefix=""):
    """ValidationError naming the option (after ``prefix``) when ``batch_size``,
    ``concurrency`` or ``poll_interval`` is out of range; options not given pass."""
    for key, low in (("batch_size", 0), ("concurrency", 1)):
        if values.get(key) is not None and values[key] < low:
            raise ValidationError(prefix + key, "must be >= %d, got %d" % (low, values[key]))
    if values.get("poll_interval") is not None and values["poll_interval"] <= 0:
        raise ValidationError(prefix + "poll_interval", "must be > 0")


def api_master_ready(views):
    """Whether the master that takes the API floating IP (the lowest index) is ACTIVE."""
    masters = [v for v in views if v.get("role") == "master"]
    if not masters:
        return False
    return min(masters, key=lambda v: (v.get("index") or 0, v["name"]))["status"] == "ACTIVE"


class NovaServersDriver(ModuleLogic):
    def validate(self):
        p = self.params
        check_batch_settings(p)
        if p["lock_token"] is not None and p["cluster"] is None:
            raise ValidationError("lock_token", "needs cluster (a lock covers one cluster record)")
        check_lease_options(p)
        if p["timeout"] is not None and p["timeout"] <= 0:
            raise ValidationError("timeout", "must be > 0")
        self.resource_options = None
        self.load_balancer = False
        self.allowed_cidrs = []
        if p["resources"] and (p["cluster"] is None or p["state"] != "present"):
            raise ValidationError(
                "resources",
                "needs cluster and state=present (coe.openstack.nova_resources with state=absent deletes them)",
            )
        self.vip = False
        self.resources_out = None
        if p["cluster"] is not None:
            uuid, name = cluster_utils.record_identity(p["cluster"])
            self.vip = p["state"] == "present" and endpoint.endpoint_kind(p["cluster"]) == endpoint.VIP
            groups = cluster_utils.nodegroups_from_record(p["cluster"], p["fixed_network"])
            if p["state"] == "present":
                planner.validate_nodegroups(groups, field="cluster.nodegroups")
            if p["resources"]:
                self.resource_options = resource_settings(
                    p["cluster"],
                    p["external_network"],
                    p["floating_ip"],
                    p["server_groups"],
                    p["security_group_ports"],
                    master_policy=p["master_server_group_policy"],
                    worker_policy=p["worker_server_group_policy"],
                )
                self.load_balancer = endpoint.endpoint_kind(p["cluster"]) == endpoint.LOAD_BALANCER
                self.allowed_cidrs = endpoint.lb_allowed_cidrs(p["cluster"]) if self.load_balancer else []
                if (
                    not self.resource_options[1]
                    and not self.load_balancer
                    and not self.vip
                    and not p["cluster"].get("api_address")
                ):
                    # the address goes into the user-data before the first node boots, and a
                    # master's fixed IP cannot follow a replaced master
                    raise ValidationError(
                        "floating_ip",
                        "the Nova driver needs a floating IP for the API of cluster %s (an external network: the "
                        "template's external_network_id or nova_driver_external_network) or an api_address in "
                        "the record" % name,
                    )
            return uuid, name, groups
        if not shape.is_uuid(p["cluster_uuid"]):
            raise ValidationError("cluster_uuid", "must be a UUID, got %r" % p["cluster_uuid"])
        if not shape.is_label(p["cluster_name"]):
            raise ValidationError("cluster_name", "must be a DNS label (a-z, 0-9, '-'), got %r" % p["cluster_name"])
        specs = [self._clean(s) for s in p["servers"] or []]
        if p["state"] == "present":
            planner.validate_specs(specs)
        return p["cluster_uuid"], p["cluster_name"], None

    @staticmethod
    def _clean(spec):
        spec = {k: v for k, v in spec.items() if v is not None}
        if spec.get("networks"):
            spec["networks"] = [{k: v for k, v in n.items() if v is not None} for n in spec["networks"]]
        return spec

    def run(self):
        p = self.params
        p["cluster"] = self.recorded_cluster()
        uuid, name, groups = self.validate()
        sleep = self.keep_lease(p["cluster"], time.sleep) if p["cluster"] is not None else time.sleep
        self.sleep = sleep
        batch = NovaBatch(
            self.conn, uuid, name, concurrency=p["concurrency"], poll_interval=p["poll_interval"], sleep=sleep
        )
        last_indexes = None
        resources = None
        self.record = p["cluster"]
        if self.resource_options is None:
            with self.action("read the servers of cluster %s" % name):
                views = batch.list_views()
        else:
            resources = ClusterResources(self.conn, uuid, name, check_mode=self.check_mode)
            # the servers are read while the resources are ensured (the floating IP waits for them)
            poll.authenticated(self.conn)  # one token, before the threads use the connection
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as reader:
                listed = reader.submit(batch.list_views)
                self.resources_out = self._ensure_resources(resources, listed.result)
            with self.action("read the servers of cluster %s" % name):
                views = listed.result()
            if self.resources_out.get("api_address"):
                self.record = dict(p["cluster"], api_address=self.resources_out["api_address"])
            lb = self.resources_out.get("load_balancer") or {}
            if lb.get("vip_address"):
                # the nodes join through the VIP; the API certificate names it and the floating IP
                self.record = dict(self.record, api_fixed_ip=lb["vip_address"])
            if (self.resources_out.get("vip") or {}).get("fixed_ip"):
                self.record = dict(self.record, api_fixed_ip=self.resources_out["vip"]["fixed_ip"])
        if p["state"] == "absent":
            specs = []
            plan = planner.make_plan([], views, prune=True)
            resolved = {}
        else:
            with self.action("look up what the servers of cluster %s need" % name):
                if groups is not None:
                    known = self._attach_nova_resources(batch, uuid, groups)
                    resolved = batch.resolve(groups, known)
                    specs, last_indexes, _removed = planner.desired_from_nodegroups(
                        name, groups, views, p["nodes_to_remove"], p["replace_outdated"], resolved
                    )
                    plan = planner.make_plan(specs, views, prune=True, replace_errored=p["replace_errored"])
                else:
                    specs = [self._clean(s) for s in p["servers"] or []]
                    resolved = batch.resolve(specs)
                    plan = planner.make_plan(
                        specs,
                        views,
                        prune=p["prune"],
                        delete=p["nodes_to_remove"],
                        replace_errored=p["replace_errored"],
                    )

        created = [s["name"] for s in plan["create"]]
        deleted = sorted(d["name"] for d in plan["delete"])
        replaced = sorted(v["name"] for v in plan["replace"])
        before = sorted({v["name"] for v in views})
        after = sorted(({v["name"] for v in views} - {d["name"] for d in plan["delete"]}) | set(created))
        out = dict(
            created=created,
            deleted=deleted,
            replaced=replaced,
            faults={v["name"]: v["fault"] for v in views if v.get("fault")},
            servers=[public_view(v) for v in views],
        )
        if last_indexes is not None:
            out["nodegroups"] = {
                g["name"]: dict(last_index=last_indexes[g["name"]], node_count=g["count"]) for g in groups
            }
        if self.diff_mode:
            out["diff"] = dict(before=dict(servers=before), after=dict(servers=after))
        if resources is not None:
            out["resources"] = dict(self.resources_out, changes=resources.changes)
        if not planner.plan_changed(plan) and not self._members_differ(resources, views):
            # no server to change; a master may still lack the VIP's pair (a run that stopped)
            pairs = self._vip_pairs(resources, uuid, name, views, out) if p["state"] == "present" else []
            self.exit_finished(p["cluster"], changed=bool(resources and resources.changes) or bool(pairs), **out)
        if self.check_mode:
            if p["render_user_data"] and groups is not None and plan["create"]:
                from ansible_collections.coe.openstack.plugins.module_utils import bootstrap

                # the API address may not exist before the first run: check the rest
                bootstrap.check_bootstrap_inputs(cluster_utils.bootstrap_record(self.record, "192.0.2.1"))
            with self.action("check the quota for cluster %s" % name):
                short = batch.quota_shortfalls(plan["create"], [], resolved) if plan["create"] else []
                if short and plan["delete"]:
                    short = batch.quota_shortfalls(plan["create"], plan["delete"], resolved)
            if short:
                raise CloudError(
                    "Not enough quota to create %d servers for cluster %s: %s" % (len(created), name, "; ".join(short)),
                    quota=short,
                )
            self.exit(changed=True, **out)

        if p["render_user_data"] and groups is not None:
            self._render_user_data(plan, views)
        elif p["user_data"]:
            for spec in plan["create"]:
                if spec["name"] in p["user_data"]:
                    spec["user_data"] = p["user_data"][spec["name"]]

        lb = (getattr(self, "resources_out", None) or {}).get("load_balancer")

        def before_delete(views, deletes):
            # a rolling replace: the new masters in the pool, the ones about to go out of it
            gone = {d["name"] for d in deletes}
            masters = {
                v["name"]: fixed_address(v)
                for v in views
                if v.get("role") == "master" and v["status"] == "ACTIVE" and v["name"] not in gone
            }
            resources.ensure_members(lb, {k: a for k, a in masters.items() if a}, p["timeout"], sleep)

        attached = {}
        # the API floating IP on a master (not on a load balancer's or a VIP's port)
        early_fip = resources is not None and self.resource_options[1] and not self.load_balancer and not self.vip

        # the API floating IP goes onto the first master as soon as it is ACTIVE, on a thread
        # of its own while the wait goes on and the other servers still build
        attaching = concurrent.futures.ThreadPoolExecutor(max_workers=1) if early_fip else None

        def on_poll(views):
            if not attached and api_master_ready(views):
                attached["fip"] = attaching.submit(resources.ensure_floating_ip, self.resource_options[2], views=views)
            return bool(attached)  # the wait needs to show it no more views

        try:
            with self.action("change the servers of cluster %s" % name):
                result = batch.apply(
                    plan,
                    resolved,
                    wait=p["wait"],
                    timeout=p["timeout"],
                    batch_size=p["batch_size"],
                    on_poll=on_poll if early_fip else None,
                    before_delete=before_delete if resources is not None and lb else None,
                )
            if attached:
                with self.action("attach the API floating IP of cluster %s" % name):
                    attached["fip"] = attached["fip"].result()
        finally:
            if attaching is not None:
                attaching.shutdown(wait=True)
        final = result["views"] if result["views"] is not None else batch.list_views()
        out.update(
            created=result["created"],
            deleted=sorted(result["deleted"]),
            faults={v["name"]: v["fault"] for v in final if v.get("fault")},
            servers=[public_view(v) for v in final],
        )
        out["faults"].update(result["failed"])
        if self.diff_mode:
            out["diff"]["after"] = dict(servers=sorted({v["name"] for v in final}))
        if self.vip:
            self._vip_pairs(resources, uuid, name, final, out)
        if resources is not None and self.load_balancer and out["resources"].get("load_balancer"):
            # the masters that exist are the pool's members (an upgrade's new ones, a repaired one)
            with self.action("set the load balancer members of cluster %s" % name):
                masters = {v["name"]: fixed_address(v) for v in final if v.get("role") == "master" and fixed_address(v)}
                out["resources"]["load_balancer"]["members"] = resources.ensure_members(
                    out["resources"]["load_balancer"], masters, p["timeout"], sleep
                )
            out["resources"]["changes"] = resources.changes
        elif resources is not None and self.resource_options[1] and not result["failed"]:
            # the servers are up: the API floating IP goes onto the first ACTIVE master
            fip = attached.get("fip")
            if fip is None:
                with self.action("attach the API floating IP of cluster %s" % name):
                    fip = resources.ensure_floating_ip(self.resource_options[2], views=final)
            if p["wait"] and fip.get("server") and fip.get("address") and not fip.get("device_id"):
                # Neutron does not say where it is (no fip-port-details): what Nova shows is what
                # the observation reads
                with self.action("wait for Nova to show the API floating IP of cluster %s" % name):
                    final = batch.wait_for_floating_address(fip["server"], fip["address"], min(60, p["timeout"]))
            elif fip.get("device_id"):
                final = with_floating_ips(final, [dict(fip, floating_ip_address=fip["address"], port_details=fip)])
            out["servers"] = [public_view(v) for v in final]
            out["resources"].update(floating_ip=fip, changes=resources.changes)
        if result["failed"]:
            msg = "%d of %d servers of cluster %s failed: %s" % (
                len(result["failed"]),
                len(plan["create"]) + len(plan["delete"]),
                name,
                "; ".join("%s: %s" % kv for kv in sorted(result["failed"].items())),
            )
            self.fail(msg, changed=bool(result["created"] or result["deleted"]), **out)
        self.exit_finished(p["cluster"], changed=True, **out)

    def _members_differ(self, resources, views):
        """With a load balancer: do its members differ from the ACTIVE masters (a repair)?"""
        lb = (getattr(self, "resources_out", None) or {}).get("load_balancer")
        if resources is None or not lb or not lb.get("pool_id"):
            return False
        masters = {fixed_address(v) for v in views if v.get("role") == "master" and v["status"] == "ACTIVE"}
        masters.discard(None)
        return {m.address for m in self.conn.load_balancer.members(lb["pool_id"])} != masters

    def _vip_pairs(self, resources, uuid, name, views, out):
        """Every master's port may carry the VIP (new masters included: a repair, an upgrade);
        the names of the masters whose port was (or would be) changed."""
        if not self.vip:
            return []
        pairs = resources or ClusterResources(self.conn, uuid, name, check_mode=self.check_mode)
        with self.action("let the masters of cluster %s carry the API VIP" % name):
            vip = (self.resources_out or {}).get("vip") or pairs.vip_port()
            out["vip_pairs"] = pairs.ensure_vip_pairs(vip.get("fixed_ip"), views)
        if resources is not None:
            out["resources"].update(changes=resources.changes)
        return out["vip_pairs"]

    def _ensure_resources(self, resources, views):
        """Security group, server groups, the API's load balancer (master_lb_enabled) and floating
        IP (O(resources)), before the servers. ``views()``: the cluster's servers (being read
        meanwhile; the floating IP needs them).

        The load balancer comes first (the floating IP goes on its VIP port); the security group,
        server groups and floating IP do not depend on each other: they are made at once, each
        with its own ClusterResources on the same connection, and their changes reported in this
        order.
        """
        server_groups, floating, external = self.resource_options
        name = resources.cluster_name
        version = self.params["cluster"].get("template_version")
        ports = self.params["security_group_ports"]
        out = {}
        vip_port = None
        if self.vip:
            record = self.params["cluster"]
            # the VIP's port is in the cluster's security group: that first, then the port
            with self.action("ensure the security group of cluster %s" % name):
                out["security_group"] = resources.ensure_security_group(ports)
            with self.action("ensure the API VIP port of cluster %s" % name):
                vip = out["vip"] = resources.ensure_vip_port(
                    self.params["fixed_network"] or record.get("fixed_network"),
                    record.get("fixed_subnet"),
                    out["security_group"].get("id"),
                )
            if vip.get("fixed_ip"):
                out["api_address"] = endpoint.api_url(vip["fixed_ip"])
            vip_port = (vip["name"], vip["id"]) if vip.get("id") else None
        if self.load_balancer:
            p = self.params
            with self.action("ensure the API load balancer of cluster %s" % name):
                subnet = resources.vip_subnet(
                    p["fixed_network"] or p["cluster"].get("fixed_network"), p["cluster"].get("fixed_subnet")
                )
                out["load_balancer"] = resources.ensure_load_balancer(
                    subnet, self.allowed_cidrs, p["timeout"], self.sleep
                )
            vip_port = (out["load_balancer"]["name"], out["load_balancer"]["vip_port_id"])
            if out["load_balancer"].get("vip_address"):
                out["api_address"] = endpoint.api_url(out["load_balancer"]["vip_address"])
        parts = (
            []
            if "security_group" in out
            else [("security_group", "security group", lambda r: r.ensure_security_group(ports))]
        )
        parts.append(("server_groups", "server groups", lambda r: r.ensure_server_groups(server_groups, version)))
        if floating:
            parts.append(
                (
                    "floating_ip",
                    "API floating IP",
                    lambda r: r.ensure_floating_ip(external, views=views(), port=vip_port),
                )
            )
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(parts)) as pool:
            futures = []
            for key, what, call in parts:
                each = ClusterResources(self.conn, resources.uuid, name, check_mode=self.check_mode)
                futures.append((key, what, each, pool.submit(call, each)))
        for key, what, each, future in futures:
            with self.action("ensure the %s of cluster %s" % (what, name)):
                out[key] = future.result()
            resources.changes.extend(each.changes)
        if out.get("floating_ip", {}).get("address"):
            out["api_address"] = endpoint.api_url(out["floating_ip"]["address"])
        return out

    def _attach_nova_resources(self, batch, uuid, groups):
        """Use the cluster's security group and server groups when they exist.

        Returns the references known without a lookup (``NovaBatch.resolve``'s ``known``).
        """
        if self.resource_options is not None:
            # just ensured: no need to look them up (in check mode, what does not exist yet has no id)
            known = {}
            sg_id = self.resources_out["security_group"].get("id")
            for group in groups:
                if sg_id and group.get("networks"):
                    group["security_groups"] = [sg_id]
                    known[("security_group", sg_id)] = sg_id
                server_group = self.resources_out["server_groups"].get(group["name"]) or {}
                if server_group.get("id"):
                    group["server_group"] = server_group["id"]
                    known[("server_group", server_group["id"])] = server_group["id"]
                    batch.group_policies[server_group["id"]] = server_group["policy"]
            return known
        conn = self.conn
        sg_name = shape.security_group_name(self.params["cluster"]["name"], uuid)
        sgs = list(conn.network.security_groups(name=sg_name))
        server_groups = {g.name: g for g in conn.compute.server_groups()}
        for group in groups:
            if sgs and group.get("networks"):
                group["security_groups"] = [sgs[0].id]
            version = self.params["cluster"].get("template_version")
            sg = server_groups.get(shape.server_group_name(uuid, group["name"], version)) or server_groups.get(
                shape.server_group_name(uuid, group["name"])
            )
            if sg is not None:
                group["server_group"] = sg.id
                batch.group_policies[sg.id] = group_policy(sg)
        return {}

    def _render_user_data(self, plan, views):
        from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, pki, secrets

        if not plan["create"]:
            return  # no new server, no user-data: the credentials are not read (nor made)

        record = cluster_utils.bootstrap_record(self.record)
        if self.vip and not record.get("api_fixed_ip"):
            # resources made by an earlier call (nova_resources): the VIP port has the address
            record["api_fixed_ip"] = ClusterResources(self.conn, record["uuid"], record["name"]).vip_port()["fixed_ip"]
        bootstrap.check_bootstrap_inputs(record)
        box = secrets.resolve_secret_key(self.params["secret_key"], self.params.get("state_url"))
        with self.action("read the credentials of cluster %s" % record["name"]):
            credentials = pki.ensure_cluster_credentials(
                self.store,
                record["uuid"],
                box,
                cluster_name=record["name"],
                settings=pki.PkiSettings.from_labels(record.get("labels")),
            )
        first = cluster_utils.first_master_name(plan["create"], [v for v in views if v not in plan["delete"]])
        given = self.params["user_data"] or {}
        for spec in plan["create"]:
            if spec["name"] in given:
                spec["user_data"] = given[spec["name"]]
                continue
            node = cluster_utils.bootstrap_node(spec, spec["name"] == first)
            spec["user_data"] = bootstrap.encode_user_data(bootstrap.render_user_data(record, node, credentials))


# --- nova_resources

# The options of coe.openstack.nova_resources (documented in plugins/modules/nova_resources.py)
RESOURCES_ARGUMENT_SPEC = dict(
    cluster=dict(type="dict"),
    cluster_name=dict(),
    cluster_uuid=dict(),
    external_network=dict(),
    floating_ip=dict(type="bool"),
    floating_ip_server=dict(),
    security_group=dict(type="bool", default=True),
    security_group_ports=dict(type="list", elements="int", default=list(DEFAULT_PORTS)),
    server_groups=dict(type="dict"),
    state=dict(default="present", choices=["absent", "present"]),
    **LEASE_ARGUMENT_SPEC,
)

RESOURCES_MODULE_KWARGS = dict(
    supports_check_mode=True,
    mutually_exclusive=[("cluster", "cluster_uuid"), ("cluster", "cluster_name")],
    required_one_of=[("cluster", "cluster_uuid")],
    required_together=[("cluster_uuid", "cluster_name")],
)


class NovaResourcesDriver(ModuleLogic):
    def validate(self):
        p = self.params
        if p["cluster"] is not None:
            uuid, name = cluster_utils.record_identity(p["cluster"])
        else:
            uuid, name = p["cluster_uuid"], p["cluster_name"]
            if not shape.is_uuid(uuid):
                raise ValidationError("cluster_uuid", "must be a UUID, got %r" % uuid)
            if not shape.is_label(name):
                raise ValidationError("cluster_name", "must be a DNS label (a-z, 0-9, '-'), got %r" % name)
        groups, floating, external = resource_settings(
            p["cluster"], p["external_network"], p["floating_ip"], p["server_groups"], p["security_group_ports"]
        )
        return uuid, name, groups, floating, external

    def run(self):
        p = self.params
        check_lease_options(p)
        uuid, name, groups, floating, external = self.validate()
        res = ClusterResources(self.conn, uuid, name, check_mode=self.check_mode)
        out = {}
        if p["state"] == "absent":
            # the caller's lease is renewed before the first delete and while the servers go
            sleep = self.keep_lease(p["cluster"] or dict(name=name), time.sleep)
            with self.action("delete the resources of cluster %s" % name):
                out["deleted"] = res.delete_all(timeout=p["timeout"], sleep=sleep)
        else:
            if p["security_group"]:
                with self.action("ensure the security group of cluster %s" % name):
                    out["security_group"] = res.ensure_security_group(p["security_group_ports"])
            with self.action("ensure the server groups of cluster %s" % name):
                version = (p["cluster"] or {}).get("template_version")
                out["server_groups"] = res.ensure_server_groups(groups, version)
            vip = None
            if p["cluster"] is not None and endpoint.endpoint_kind(p["cluster"]) == endpoint.VIP:
                with self.action("ensure the API VIP port of cluster %s" % name):
                    security_group = (out.get("security_group") or {}).get("id")
                    if security_group is None:
                        found = res.find_security_groups()
                        security_group = found[0].id if found else None
                    vip = out["vip"] = res.ensure_vip_port(
                        p["cluster"].get("fixed_network"), p["cluster"].get("fixed_subnet"), security_group
                    )
                if vip.get("fixed_ip"):
                    out["api_address"] = endpoint.api_url(vip["fixed_ip"])
            if floating:
                with self.action("ensure the API floating IP of cluster %s" % name):
                    fip = res.ensure_floating_ip(
                        external,
                        p["floating_ip_server"],
                        port=(vip["name"], vip["id"]) if vip and vip.get("id") else None,
                    )
                out["floating_ip"] = fip
                if fip.get("address"):
                    out["api_address"] = endpoint.api_url(fip["address"])
        out["changes"] = res.changes
        if self.diff_mode:
            out["diff"] = dict(before="", after="\n".join(res.changes) + ("\n" if res.changes else ""))
        self.exit_finished(p["cluster"], changed=bool(res.changes), **out)


# --- the front door's converge, in its own process

#: what the front door may hand the Nova driver (its nova_driver_* variables): options of
#: nova_servers; the rest of its options come from the recorded operation
FRONT_DOOR_OPTIONS = (
    "concurrency",
    "external_network",
    "fixed_network",
    "floating_ip",
    "master_server_group_policy",
    "poll_interval",
    "worker_server_group_policy",
)


def check_front_door_options(options, field="driver_options.nova"):
    """ValidationError naming ``field`` and the option when ``options`` are not options
    the front door may give the Nova driver, or not of their type (no cloud call)."""
    values = driver_options(options, SERVERS_ARGUMENT_SPEC, FRONT_DOOR_OPTIONS, field)
    check_batch_settings(values, prefix=field + ".")
    for key in ("master_server_group_policy", "worker_server_group_policy"):
        if values.get(key):
            shape.check_server_group_policy("%s.%s" % (field, key), values[key])
    return {k: v for k, v in values.items() if v is not None}


def converge(module, record, operation, lock, options=None):
    """The recorded ``operation`` of ``record``, carried out in ``module``'s process (the
    front door's first module): what roles/nova_driver's task files do with nova_servers
    (create, update, upgrade: resources, servers, wait) or nova_resources (delete), on the
    same options and with the same ``finish`` (observed, recorded, released when complete).

    ``lock``: the lease the front door took (``token``); ``options``: its nova_driver_*
    variables (``check_front_door_options``). Returns what the driver module would have
    returned; an error propagates (the front door's failure path records it).
    """
    p = module.params
    common = dict(converge_params(module, record, lock), wait=p["wait"])
    if operation == "delete":
        inline = InlineModule(module, RESOURCES_ARGUMENT_SPEC, dict(common, state="absent"))
        return inline.run_logic(NovaResourcesDriver)
    params = dict(
        common,
        resources=True,
        render_user_data=True,
        secret_key=p.get("secret_key"),
        nodes_to_remove=list((record.get("plan") or {}).get("nodes_to_remove") or []),
        replace_outdated=operation == "upgrade",
        batch_size=(record.get("upgrade_batch_size") or 1) if operation == "upgrade" else 0,
        **check_front_door_options(options or {}),
    )
    return InlineModule(module, SERVERS_ARGUMENT_SPEC, params).run_logic(NovaServersDriver)
