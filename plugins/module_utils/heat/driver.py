# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The Heat driver's converge: heat_stack's logic (the cluster's stack built, its user-data
rendered, applied, waited for, what is left cleaned up), heat_preflight's checks, and the
front door's converge of a recorded operation in the cluster module's own process.
"""

from __future__ import annotations

import time

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, poll, shape
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    CloudError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as heat_template
from ansible_collections.coe.openstack.plugins.module_utils.heat import client as heat_stack
from ansible_collections.coe.openstack.plugins.module_utils.module import (
    LEASE_ARGUMENT_SPEC,
    InlineModule,
    ModuleLogic,
    check_lease_options,
    converge_params,
    driver_options,
)
from ansible_collections.coe.openstack.plugins.module_utils.preflight import Preflight, find_reference
from ansible_collections.coe.openstack.plugins.module_utils.servers import wait_until_forgotten

try:
    import yaml

    HAS_YAML = True
except ImportError:
    yaml = None
    HAS_YAML = False

# --- heat_stack

# The options of coe.openstack.heat_stack (documented in plugins/modules/heat_stack.py)
STACK_ARGUMENT_SPEC = dict(
    batch_size=dict(type="int"),
    cleanup=dict(type="bool", default=True),
    cluster=dict(type="dict"),
    external_network=dict(),
    files=dict(type="dict"),
    fixed_network=dict(),
    fixed_subnet=dict(),
    floating_ip_enabled=dict(type="bool"),
    image_update_policy=dict(choices=["REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL"]),
    master_image_update_policy=dict(choices=["REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL"]),
    name=dict(),
    nodes_to_remove=dict(type="list", elements="str", default=[]),
    parameters=dict(type="dict"),
    pause_time=dict(type="int", default=0),
    render_user_data=dict(type="bool", default=False),
    secret_key=dict(no_log=True),
    server_group_policy=dict(choices=list(shape.SERVER_GROUP_POLICIES)),
    state=dict(default="present", choices=["absent", "present"]),
    tags=dict(type="list", elements="str"),
    template=dict(type="raw"),
    user_data=dict(type="dict", no_log=True),
    **LEASE_ARGUMENT_SPEC,
)

STACK_MODULE_KWARGS = dict(
    supports_check_mode=True,
    required_one_of=[("name", "cluster")],
    mutually_exclusive=[
        ("cluster", "name"),
        ("cluster", "template"),
        ("cluster", "files"),
        ("cluster", "parameters"),
        ("cluster", "tags"),
    ],
)


CLUSTER_ONLY = (
    "batch_size",
    "external_network",
    "fixed_network",
    "fixed_subnet",
    "floating_ip_enabled",
    "image_update_policy",
    "lock_token",
    "master_image_update_policy",
    "render_user_data",
    "secret_key",
    "server_group_policy",
    "user_data",
)


# the options build_cluster_stack takes as they are
STACK_OPTIONS = (
    "external_network",
    "fixed_network",
    "fixed_subnet",
    "floating_ip_enabled",
    "image_update_policy",
    "master_image_update_policy",
    "server_group_policy",
)


def check_pause_time(value, field="pause_time"):
    """The rolling upgrade's pause between batches: 0 or more seconds."""
    if value < 0:
        raise ValidationError(field, "must be 0 or more")


def _dump(data):
    if HAS_YAML:
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    import json

    return json.dumps(data, indent=2, sort_keys=True)


class HeatStackDriver(ModuleLogic):
    _ids = None  # resolve_ids(), once a run

    def validate(self):
        p = self.params
        if p["cluster"] is None:
            for option in (*CLUSTER_ONLY, "nodes_to_remove"):
                if p[option]:
                    raise ValidationError(option, "is only used with cluster")
            if p["state"] == "present" and p["template"] in (None, ""):
                raise ValidationError("template", "is required with state=present (or give cluster)")
            if p["template"] is not None and not isinstance(p["template"], (str, dict)):
                raise ValidationError("template", "must be YAML text or a dict")
        check_lease_options(p)
        if p["timeout"] is not None and p["timeout"] < 1:
            raise ValidationError("timeout", "must be 1 or more seconds")
        if p["batch_size"] is not None and p["batch_size"] < 1:
            raise ValidationError("batch_size", "must be 1 or more")
        check_pause_time(p["pause_time"])
        for key, value in (p["files"] or {}).items():
            if not isinstance(value, str):
                raise ValidationError("files", "the content of %s must be a string" % key)

    def cluster_spec(self, live, user_data=None, empty=False):
        p = self.params
        live_members = None
        if live is not None:
            groups = (live.get("outputs") or {}).get("nodegroups") or {}
            live_members = {ng: list((members or {}).keys()) for ng, members in groups.items()}
        return heat_template.build_cluster_stack(
            p["cluster"],
            user_data=user_data if user_data is not None else p["user_data"],
            nodes_to_remove=[] if empty else p["nodes_to_remove"],
            live_parameters=(live or {}).get("parameters"),
            live_members=live_members,
            live_files=(live or {}).get("files"),
            upgrade=p["batch_size"] is not None,
            batch_size=p["batch_size"] or 1,
            pause_time=p["pause_time"],
            empty=empty,
            ids=self.resolve_ids(),
            **self.stack_options(),
        )

    def stack_options(self):
        """The module's options that shape the cluster's stack, as build_cluster_stack takes them."""
        return {option: self.params[option] for option in STACK_OPTIONS}

    def resolve_ids(self):
        """{name: id} of the flavors, images, network and subnet the cluster names (once a run).

        A name Nova, Glance or Neutron does not find stays a name: Heat then says why.
        """
        if self._ids is not None:
            return self._ids
        p = self.params
        cluster = p["cluster"]
        wanted = []
        for ng in shape.read_nodegroups(cluster):
            wanted += [("flavor", ng["flavor"]), ("image", ng["image"])]
        wanted.append(("network", p["fixed_network"] or shape.record_field(cluster, "fixed_network")))
        subnet = p["fixed_subnet"] or shape.record_field(cluster, "fixed_subnet")
        if subnet:
            wanted.append(("subnet", subnet))
        self._ids = {}
        for kind, value in wanted:
            if value in self._ids:
                continue
            with self.action("look up %s" % value):
                # what the plan step's reference check found in this process is not read again
                found = find_reference(self.conn, kind, value)
            self._ids[value] = found.id if found is not None else value
        return self._ids

    def check_cluster_record(self):
        """Everything about the record that needs no cloud call (names, counts, flavors...)."""
        p = self.params
        spec = heat_template.build_cluster_stack(
            p["cluster"],
            user_data=p["user_data"],
            nodes_to_remove=p["nodes_to_remove"],
            **self.stack_options(),
        )
        if p["render_user_data"]:
            from ansible_collections.coe.openstack.plugins.module_utils import bootstrap

            record = dict(p["cluster"])
            # the API address is only known once the stack exists; its stand-ins check the rest
            record["api_address"] = record.get("api_address") or heat_template.API_IP_STANDIN
            record["api_fixed_ip"] = record.get("api_fixed_ip") or heat_template.API_FIXED_IP_STANDIN
            bootstrap.check_bootstrap_inputs(record)
        return spec.name

    def render_user_data(self, spec, api_address, first_master, live_files=None, api_fixed_ip=None, live=None):
        """{node name: cloud-config} for the nodes of ``spec`` that need it (given user-data
        wins): every node of a create or an upgrade (a node made again boots with fresh
        user-data); else the new nodes and those Heat makes again (``repairs``). The others
        keep their file (Heat ignores a new one: ``user_data_update_policy`` IGNORE), so a
        scale signs no certificate for a node that has one.

        A cluster adopted without its credentials (clusters.lacks_credentials) keeps the live
        stack's user-data for its nodes (``live_files``); the plan step refused anything that
        makes a node, so there is nothing new to sign. ``api_fixed_ip``: the endpoint's fixed
        IP (the load balancer's VIP), the nodes join through it."""
        from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, pki, secrets

        p = self.params
        record = dict(p["cluster"], api_address=api_address)
        if api_fixed_ip:
            record["api_fixed_ip"] = api_fixed_ip
        if not api_address:
            raise CloudError("stack %s has no api_ip output to write into the user-data" % spec.name)
        box = secrets.resolve_secret_key(p["secret_key"], p.get("state_url"))
        with self.action("read the credentials of cluster %s" % record["name"]):
            credentials = pki.load_cluster_credentials(self.store, record["uuid"], box)
        if credentials is None and record.get("adopted"):
            kept = set(live_files or ())
            new = [n for ng, names in spec.nodes.items() for n in names if not self._has_file(kept, ng, n)]
            if not new:
                return {}
            raise CloudError(
                "Cluster %s was adopted without its credentials: no user-data for its new nodes %s"
                % (record["name"], ", ".join(new))
            )
        if credentials is None:
            raise CloudError(
                "Cluster %s has no credentials in the store: the cluster module creates them" % record["name"]
            )
        given = p["user_data"] or {}
        roles = {ng["name"]: ng["role"] for ng in shape.read_nodegroups(record)}
        kept = set()
        if live is not None and p["batch_size"] is None:
            again = {item[0] for item in self.repairs(live)}
            kept = {
                n
                for ng, names in spec.nodes.items()
                for n in names
                if n not in again and (live_files or {}).get(heat_template.user_data_file(ng, n.rsplit("-", 1)[1]))
            }
        out = {}
        for ng, names in spec.nodes.items():
            for name in names:
                if name in given:
                    out[name] = given[name]
                    continue
                if name in kept:
                    continue
                index = int(name.rsplit("-", 1)[1])
                node = dict(
                    name=name,
                    role=roles[ng],
                    nodegroup=ng,
                    index=index,
                    first_master=bool(first_master and roles[ng] == "master" and index == 0),
                )
                out[name] = bootstrap.render_user_data(record, node, credentials)
        return out

    @staticmethod
    def _has_file(files, nodegroup, name):
        return heat_template.user_data_file(nodegroup, name.rsplit("-", 1)[1]) in files

    def run(self):
        p = self.params
        p["cluster"] = self.recorded_cluster()
        self.validate()
        cluster = p["cluster"]
        if cluster is not None:
            if p["state"] == "present":
                name = self.check_cluster_record()
            else:
                for field in ("name", "uuid"):
                    if not cluster.get(field):
                        raise ValidationError("cluster.%s" % field, "is required")
                name = heat_template.stack_name(cluster["name"], cluster["uuid"])
        else:
            name = p["name"]
            if p["state"] == "present":
                heat_stack.load_template(p["template"])
        client = heat_stack.HeatClient(self.conn)
        if cluster is not None:
            client.sleep = self.keep_lease(cluster, client.sleep)
        if p["state"] == "absent":
            self.absent(client, name)
        self.present(client, name)

    def present(self, client, name):
        p = self.params
        verb = "update"
        with self.action("read stack %s" % name):
            live = heat_stack.settled_live(client, name, p["timeout"], self.check_mode)
        if live is None:
            verb = "create"
        nodes = None
        if p["cluster"] is not None:
            spec = self.cluster_spec(live)
            if p["render_user_data"] and not self.check_mode:
                live, spec = self.prepare_user_data(client, name, live, spec)
            template, files, params, tags = spec.template, spec.files, spec.parameters, spec.tags
            policy, nodes = spec.policy, spec.nodes
        else:
            template, files, params, tags = p["template"], p["files"] or {}, p["parameters"] or {}, p["tags"] or []
            policy = ()
        repair = self.repairs(live) if p["cluster"] is not None else ()
        if repair and not self.check_mode:
            # a server Nova still lists as DELETED holds its host in its server group (servers.live)
            tag = heat_template.cluster_tag(p["cluster"]["uuid"])
            with self.action("wait for Nova to forget the deleted servers of cluster %s" % p["cluster"]["name"]):
                wait_until_forgotten(
                    lambda: self.conn.compute.servers(details=True, tags=tag), p["timeout"], sleep=client.sleep
                )
        failures = []
        try:
            with self.action("%s stack %s" % (verb, name)):
                result = heat_stack.ensure_present(
                    client,
                    name,
                    template,
                    files,
                    params,
                    tags,
                    policy=policy,
                    wait=p["wait"],
                    timeout=p["timeout"],
                    check=self.check_mode,
                    live=live,
                    repair=repair,
                )
        except CloudError as e:
            failures = e.details.get("failed_resources") or []
            e.details.setdefault("failed_resources", failures)
            e.details.setdefault("action", verb)
            e.details.setdefault("changed", True)
            raise
        action = result.action
        if verb == "create" and live is not None:
            # the stack was created empty first (render_user_data), then given its nodes
            action = "create"
        out = dict(
            changed=result.changed or action == "create",
            action=action,
            changes=result.changes,
            stack=result.stack,
            failed_resources=failures,
        )
        if nodes is not None:
            out["nodes"] = nodes
        if self.diff_mode:
            out["diff"] = self.diff(live, template, params, tags)
        self.exit_finished(p["cluster"], **out)

    def repairs(self, live):
        """(name, nodegroup, index, reason) of the stack's members that the cluster record
        (its last observation) shows MISSING or in ERROR: Heat must make them again."""
        p = self.params
        if live is None:
            return ()
        record = p["cluster"]
        members = (live.get("outputs") or {}).get("nodegroups") or {}
        groups = shape.read_nodegroups(record)
        leaving = set(p["nodes_to_remove"] or [])
        out = []
        nodes = [n for g in record.get("nodegroups") or [] if isinstance(g, dict) for n in g.get("nodes") or []]
        for node in nodes:
            name = node.get("name") if isinstance(node, dict) else None
            if not name or node.get("status") not in ("MISSING", "ERROR") or name in leaving:
                continue
            try:
                ng, index = heat_template.parse_node_name(record["name"], groups, name)
            except ValidationError:
                continue
            if str(index) not in {str(i) for i in (members.get(ng) or {})}:
                continue  # not a member any more: nothing to make again
            reason = "coe.openstack: server %s" % ("not found" if node["status"] == "MISSING" else "in ERROR")
            out.append((name, ng, index, reason))
        return out

    def prepare_user_data(self, client, name, live, spec):
        """Render the user-data when an update or create is due; (live, spec) to apply.

        The user-data names the API's addresses by their stand-ins when the API has a
        floating IP (``spec.standins``): Heat writes the addresses in as it makes each server.
        Else a new cluster's stack is created with no nodes first, so that the API's address
        (an output) exists when the user-data is written.
        """
        p = self.params
        desired = heat_stack.load_template(spec.template)
        action = heat_stack.plan(live, desired, spec.files, spec.parameters, spec.tags, spec.policy)[0]
        if action == "none":
            return live, spec
        first_master = live is None
        if spec.standins:
            if live is not None:
                first_master = not (live.get("outputs") or {}).get("master_addresses")
            fixed = heat_template.API_FIXED_IP_STANDIN if endpoint.has_own_endpoint(p["cluster"]) else None
            user_data = self.render_user_data(
                spec,
                endpoint.api_url(heat_template.API_IP_STANDIN),
                first_master,
                (live or {}).get("files"),
                api_fixed_ip=fixed,
                live=live,
            )
            return live, self.cluster_spec(live, user_data=user_data)
        if live is None:
            empty = self.cluster_spec(None, empty=True)
            with self.action("create stack %s" % name):
                heat_stack.ensure_present(
                    client,
                    name,
                    empty.template,
                    empty.files,
                    empty.parameters,
                    empty.tags,
                    policy=empty.policy,
                    wait=True,
                    timeout=p["timeout"],
                    live=None,
                )
                live = client.live(name)
        else:
            masters = (live.get("outputs") or {}).get("master_addresses") or []
            first_master = not masters
        outputs = live.get("outputs") or {}
        # api_ip: the bare address (api_address in stacks made before it was renamed)
        api_address = endpoint.api_url(outputs.get("api_ip") or outputs.get("api_address"))
        # the endpoint's fixed IP (the load balancer's VIP): the nodes join through it
        user_data = self.render_user_data(
            spec, api_address, first_master, live.get("files"), api_fixed_ip=outputs.get("api_fixed_ip"), live=live
        )
        return live, self.cluster_spec(live, user_data=user_data)

    def absent(self, client, name):
        p = self.params
        with self.action("delete stack %s" % name):
            result = heat_stack.ensure_absent(client, name, p["wait"], p["timeout"], self.check_mode)
        cleaned = []
        if p["cluster"] is not None and p["cleanup"] and (p["wait"] or result.action == "none"):
            with self.action("clean up what is left of cluster %s" % p["cluster"]["name"]):
                cleaned = self.cleanup(heat_template.cluster_tag(p["cluster"]["uuid"]), client.sleep)
        out = dict(
            changed=result.changed or bool(cleaned),
            action=result.action if result.changed or not cleaned else "delete",
            changes=result.changes,
            stack=result.stack,
            failed_resources=[],
        )
        if p["cluster"] is not None:
            out["cleaned"] = cleaned
        if self.diff_mode:
            out["diff"] = dict(before=dict(state="present" if result.changed else "absent"), after=dict(state="absent"))
        self.exit_finished(p["cluster"], **out)

    def cleanup(self, tag, sleep=time.sleep):
        """Delete the servers and ports still tagged with the cluster.

        One list call each to find them, then one tag-filtered server list per
        poll until the servers are gone (never one GET per server). ``sleep``: the
        wait's (the Heat client's, which renews the caller's lease).
        """
        conn = self.conn
        found = []
        for server in conn.compute.servers(details=False, tags=tag):
            found.append(dict(type="server", id=server.id, name=server.name))
        for port in conn.network.ports(tags=[tag]):
            found.append(dict(type="port", id=port.id, name=port.name))
            if shape.API_VIP_TAG in (getattr(port, "tags", None) or []):
                # the API VIP's floating IP (Heat's floating IPs carry no tag)
                for fip in conn.network.ips(port_id=port.id):
                    found.append(dict(type="floating_ip", id=fip.id, name=fip.floating_ip_address))
        if self.check_mode or not found:
            return found
        servers = {item["id"] for item in found if item["type"] == "server"}
        for server_id in sorted(servers):
            conn.compute.delete_server(server_id, ignore_missing=True)
        if servers and self.params["wait"]:
            names = {item["id"]: item["name"] for item in found if item["type"] == "server"}

            def gone():
                left = sorted(names[s.id] for s in conn.compute.servers(details=False, tags=tag) if s.id in servers)
                return True if not left else poll.Pending("still there: %s" % ", ".join(left), servers=left)

            poll.wait_for(
                gone, "the servers tagged %s to be deleted" % tag, self.params["timeout"], interval=2, sleep=sleep
            )
        for item in found:
            if item["type"] == "floating_ip":
                conn.network.delete_ip(item["id"], ignore_missing=True)
        for item in found:
            if item["type"] == "port":
                conn.network.delete_port(item["id"], ignore_missing=True)
        return found

    def diff(self, live, template, params, tags):
        desired = heat_stack.load_template(template)
        types = heat_stack.parameter_types(desired)
        after = dict(
            state="present",
            parameters=heat_stack.visible_parameters(params, types),
            tags=sorted(tags),
            template=_dump(desired),
        )
        if live is None:
            before = dict(state="absent")
        else:
            before = dict(
                state="present",
                status=live.get("status"),
                parameters=heat_stack.visible_parameters(live.get("parameters") or {}, types),
                tags=sorted(live.get("tags") or []),
                template=_dump(live.get("template") or {}),
            )
        return dict(before=before, after=after)


class HeatPreflightDriver(ModuleLogic):
    def run(self):
        p = self.params
        cluster = p["cluster"]
        if p["operation"] != "delete":
            # bad input is refused before any cloud call
            shape.read_nodegroups(cluster)
        check = Preflight(self.conn)
        check.run(
            cluster,
            operation=p["operation"],
            batch_size=p["batch_size"],
            fixed_network=p["fixed_network"],
            fixed_subnet=p["fixed_subnet"],
            external_network=p["external_network"],
            floating_ip_enabled=p["floating_ip_enabled"],
            replace=p["image_update_policy"] == "REPLACE",
        )
        out = dict(checked=check.checked, problems=check.problems)
        if p["operation"] != "delete":
            out["needs"] = check.needs
        if check.problems:
            raise CloudError(
                "Preflight for %s of cluster %s failed: %s"
                % (p["operation"], cluster.get("name"), "; ".join(check.problems)),
                **out,
            )
        self.exit(changed=False, **out)


# --- the front door's converge, in its own process

#: what the front door may hand the Heat driver (its heat_driver_* variables): options of
#: heat_stack; the rest of its options come from the recorded operation
FRONT_DOOR_OPTIONS = (
    "image_update_policy",
    "master_image_update_policy",
    "pause_time",
    "server_group_policy",
)

#: the heat_driver role's defaults of those
FRONT_DOOR_DEFAULTS = dict(image_update_policy="REPLACE", master_image_update_policy="REBUILD", pause_time=0)


def check_front_door_options(options, field="driver_options.heat"):
    """ValidationError naming ``field`` and the option when ``options`` are not options
    the front door may give the Heat driver, or not of their type (no cloud call)."""
    values = driver_options(options, STACK_ARGUMENT_SPEC, FRONT_DOOR_OPTIONS, field)
    if values.get("pause_time") is not None:
        check_pause_time(values["pause_time"], "%s.pause_time" % field)
    return {k: v for k, v in values.items() if v is not None}


def converge(module, record, operation, lock, options=None):
    """The recorded ``operation`` of ``record``, carried out in ``module``'s process (the
    front door's first module): what roles/heat_driver's task files do with heat_stack, on
    the same options. Heat carries out a stack operation on its own once asked, so only a
    delete waits here (its clean-up follows the stack's deletion, and ``finish`` observes,
    records and releases); a create, update or upgrade returns once Heat has it and the
    front door's polls watch it (progress lines).

    ``lock``: the lease the front door took (``token``); ``options``: its heat_driver_*
    variables (``check_front_door_options``). Returns what heat_stack would have returned;
    an error propagates (the front door's failure path records it).
    """
    p = module.params
    params = converge_params(module, record, lock)
    if operation == "delete":
        params.update(state="absent", cleanup=True, wait=p["wait"])
    else:
        params.update(
            FRONT_DOOR_DEFAULTS,
            wait=False,
            render_user_data=True,
            secret_key=p.get("secret_key"),
            nodes_to_remove=list((record.get("plan") or {}).get("nodes_to_remove") or []),
            **check_front_door_options(options or {}),
        )
        if operation == "upgrade":
            params["batch_size"] = record.get("upgrade_batch_size") or 1
    return InlineModule(module, STACK_ARGUMENT_SPEC, params).run_logic(HeatStackDriver)
