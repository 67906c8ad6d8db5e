#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: heat_stack
short_description: Create, update or delete a Heat stack, or a cluster's stack
version_added: 0.1.0
description:
  - Makes one OpenStack Heat stack match a template, its files, parameters and tags, idempotently.
  - The live stack's template, files, visible parameters and tags are compared with the desired
    ones; when they are the same no update call is made. Hidden parameters cannot be read back
    from Heat and are not compared.
  - With O(cluster), the stack is the one the coe.openstack Heat driver builds for a cluster record
    (the output of the M(coe.openstack.cluster) module). It holds a server group for the masters, one
    C(OS::Heat::ResourceGroup) per nodegroup (ports on the cluster network, a security group with
    the Kubernetes ports, per-node user-data), a floating IP for the API when enabled, and outputs
    for the addresses. Every value that comes from the record goes in as a Heat parameter.
  - When the stack ends in a C(*_FAILED) status the module fails with the stack's reason and the
    reasons of the failed resources (nested resources included), and returns them in
    RV(failed_resources).
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.openstack
  - coe.openstack.store
  - coe.openstack.store.lease
  - coe.openstack.attributes
options:
  batch_size:
    description:
      - With O(cluster), roll an update through each nodegroup this many nodes at a time
        (the ResourceGroup's C(rolling_update) C(max_batch_size)); use it for upgrades.
      - When not given, every member that changes is updated in one batch.
    type: int
  cleanup:
    description:
      - With O(cluster) and O(state=absent), once the stack is gone also delete servers and ports
        that still carry the cluster's tag C(coe-cluster-<uuid>) (left behind by a failed delete or
        created outside the stack).
    type: bool
    default: true
  cluster:
    description:
      - A cluster record (the C(cluster) return of M(coe.openstack.cluster)) with C(name), C(uuid),
        C(nodegroups) (or C(master_count) and C(node_count)), C(flavor_id), C(master_flavor_id),
        C(image_id), C(keypair), C(labels), C(fixed_network), C(fixed_subnet),
        C(external_network_id), C(floating_ip_enabled).
      - The stack's name is C(<name>-<first 8 characters of uuid>) and it is tagged
        C(coe-cluster-<uuid>).
      - Mutually exclusive with O(name), O(template), O(files), O(parameters) and O(tags).
    type: dict
  external_network:
    description:
      - With O(cluster), the external network of the API's floating IP; overrides the record's
        C(external_network_id).
    type: str
  files:
    description:
      - Files the template refers to (nested templates), name to content.
    type: dict
  fixed_network:
    description:
      - With O(cluster), the network the nodes' ports are on; overrides the record's C(fixed_network).
    type: str
  fixed_subnet:
    description:
      - With O(cluster), the subnet of the nodes' fixed IPs; overrides the record's C(fixed_subnet).
    type: str
  floating_ip_enabled:
    description:
      - With O(cluster), whether the API gets a floating IP (on the first master's port); overrides
        the record's C(floating_ip_enabled).
    type: bool
  image_update_policy:
    description:
      - With O(cluster), what a new image does to a worker. C(REPLACE) (the default) creates a new
        server, which boots with fresh user-data and joins the cluster, before deleting the old one
        (the node keeps its name and port); C(REBUILD) rebuilds the server in place (same id), which
        re-runs the user-data the server was first created with.
      - When not given, the label C(image_update_policy), else C(REPLACE).
    type: str
    choices: [REBUILD, REPLACE, REBUILD_PRESERVE_EPHEMERAL]
  master_image_update_policy:
    description:
      - With O(cluster), what a new image does to a master. C(REBUILD) (the default) rebuilds it in
        place, keeping its id, port and address (etcd's members keep their addresses), and never needs
        a host more than the masters' anti-affinity group has; C(REPLACE) creates the new server first,
        which a hard anti-affinity group refuses when every host already runs a master.
      - When not given, the label C(master_image_update_policy), else C(REBUILD).
    type: str
    choices: [REBUILD, REPLACE, REBUILD_PRESERVE_EPHEMERAL]
  name:
    description:
      - Name of the stack. Required unless O(cluster) is given.
    type: str
  nodes_to_remove:
    description:
      - With O(cluster), node names to take out when a nodegroup shrinks (Heat removal policies);
        the nodegroup's C(node_count) in O(cluster) is its size after the removal.
      - An index taken out is never given to a new node.
    type: list
    elements: str
    default: []
  parameters:
    description:
      - Parameters of the template.
    type: dict
  pause_time:
    description:
      - With O(cluster) and O(batch_size), seconds to wait between batches.
    type: int
    default: 0
  render_user_data:
    description:
      - With O(cluster), render each node's cloud-init user-data with the collection's bootstrap
        renderer (kubeadm configuration, the node's own client certificate signed by the cluster CA),
        from the cluster's credentials in the store (O(state_url), O(secret_key)).
      - The API address the user-data names must exist before any node boots, so a new cluster's
        stack is first created with no nodes (security group, server group, the API's port and
        floating IP), then updated to its nodes.
      - User-data given in O(user_data) for a node wins.
    type: bool
    default: false
  secret_key:
    description:
      - The key the cluster secrets are encrypted with in the store, for O(render_user_data).
      - When not given, C(COE_SECRET_KEY), then the key file next to the store.
    type: str
  server_group_policy:
    description:
      - With O(cluster), the policy of the masters' server group.
    type: str
    choices: [anti-affinity, affinity, soft-anti-affinity, soft-affinity]
  state:
    description:
      - C(present) creates or updates the stack, C(absent) deletes it.
    type: str
    choices: [absent, present]
    default: present
  tags:
    description:
      - Tags of the stack. They replace the live stack's tags.
    type: list
    elements: str
  template:
    description:
      - The HOT template, as YAML text or as a dict. Required with O(state=present) unless
        O(cluster) is given.
    type: raw
  user_data:
    description:
      - With O(cluster), the cloud-init user-data of each node, node name to text. A node without
        an entry boots with empty user-data.
      - Sent as the stack file C(coe-user-data/<nodegroup>/<index>) of the node (Heat keeps one copy
        of the files for the whole stack, so the stack grows linearly with the number of nodes); never
        logged or returned. Project members who may read the stack's files through Heat's API can
        read it, as they could read hidden parameters through the stack's environment.
      - Changing the user-data of an existing node does not replace it (user-data only matters at
        first boot).
    type: dict
notes:
  - Heat's own timeout (C(timeout_mins)) is set from O(timeout), so a create or update that takes
    too long fails in Heat too.
  - Rollback is disabled, so a failed stack keeps its failed resources for inspection; running the
    module again retries them.
"""

EXAMPLES = r"""
- name: A stack from a template
  coe.openstack.heat_stack:
    cloud: mycloud
    name: web
    template: "{{ lookup('ansible.builtin.file', 'web.yaml') }}"
    parameters:
      flavor: m1.small
    tags: [web]
    timeout: 900

- name: The Heat stack of a cluster record
  coe.openstack.heat_stack:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    user_data: "{{ node_user_data }}"
  no_log: true

- name: Scale the default workers in, removing one named node
  coe.openstack.heat_stack:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    nodes_to_remove: [mycluster-default-worker-1]

- name: Roll a new image through the nodes one at a time
  coe.openstack.heat_stack:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    batch_size: 1

- name: Delete a stack
  coe.openstack.heat_stack:
    cloud: mycloud
    name: web
    state: absent
"""

RETURN = r"""
action:
  description: What was done (or, in check mode, would be done).
  returned: always
  type: str
  sample: update
changes:
  description:
    - What differs between the live stack and the desired one. C(parameters) maps each changed
      visible parameter to C(before) and C(after); C(template) is true when the template changed;
      C(files) lists changed files; C(tags) has C(before) and C(after); C(status) is set when the
      live stack is C(*_FAILED) (an update retries it); C(repair) lists the nodes the cluster record
      shows C(MISSING) or in C(ERROR), whose members are marked unhealthy so that the update makes
      them again under the same name.
  returned: always
  type: dict
  sample: {"parameters": {"default-worker_count": {"before": 2, "after": 4}}}
cleaned:
  description: Servers and ports carrying the cluster's tag deleted after the stack (O(cleanup)).
  returned: when O(state=absent) with O(cluster)
  type: list
  elements: dict
  sample: [{"type": "server", "id": "9c5f...", "name": "c1-default-worker-0"}]
failed_resources:
  description:
    - The failed resources (innermost first) with the cloud's reason, when the stack failed.
    - C(path) is the resource's path from the top stack, for example
      C([default-worker, "3", server]).
  returned: always
  type: list
  elements: dict
  sample:
    - resource: server
      path: [default-worker, "0", server]
      type: OS::Nova::Server
      status: CREATE_FAILED
      reason: >-
        ResourceInError: resources.server: Went to status ERROR due to
        "Message: No valid host was found. , Code: 500"
      physical_id: 0f4b2c36-3a7e-4a43-8f0c-1f5b3f1d8a11
nodes:
  description: With O(cluster), the node names of each nodegroup once the stack matches.
  returned: when O(cluster) is given
  type: dict
  sample: {"default-master": ["c1-master-0"], "default-worker": ["c1-default-worker-0", "c1-default-worker-2"]}
stack:
  description: The stack (after the change). Hidden parameter values are masked by Heat.
  returned: always (null when there is no stack)
  type: dict
  contains:
    created_at:
      description: When the stack was created.
      type: str
      sample: "2026-11-25T08:00:00Z"
    id:
      description: The stack's id.
      type: str
      sample: 5f1e1e0c-4a1b-4e61-9b4c-2d1b9e3c7a10
    name:
      description: The stack's name.
      type: str
      sample: c1-0123abcd
    outputs:
      description: The stack's outputs, output key to value.
      type: dict
      sample: {"api_address": "10.0.0.12", "master_addresses": ["10.0.0.12"]}
    parameters:
      description: The stack's parameters as Heat shows them (strings; hidden ones masked).
      type: dict
      sample: {"default-worker_count": "2"}
    status:
      description: The stack's status.
      type: str
      sample: CREATE_COMPLETE
    status_reason:
      description: Heat's reason for the status.
      type: str
      sample: Stack CREATE completed successfully
    tags:
      description: The stack's tags.
      type: list
      elements: str
      sample: ["coe-cluster-0123abcd-..."]
    timeout_mins:
      description: Heat's timeout for the stack's operations, in minutes.
      type: int
      sample: 60
    updated_at:
      description: When the stack was last updated.
      type: str
      sample: "2026-11-25T08:10:00Z"
  sample: {"id": "5f1e...", "name": "c1-0123abcd", "status": "CREATE_COMPLETE"}
"""

import time

from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, ValidationError, WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as heat_template
from ansible_collections.coe.openstack.plugins.module_utils.heat import client as heat_stack
from ansible_collections.coe.openstack.plugins.module_utils.module import (
    LEASE_ARGUMENT_SPEC,
    CoeModule,
    check_lease_options,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:
    yaml = None
    HAS_YAML = False

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


class HeatStackModule(CoeModule):
    argument_spec = dict(
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
        server_group_policy=dict(choices=["anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"]),
        state=dict(default="present", choices=["absent", "present"]),
        tags=dict(type="list", elements="str"),
        template=dict(type="raw"),
        user_data=dict(type="dict", no_log=True),
        **LEASE_ARGUMENT_SPEC,
    )
    uses_store = True
    _ids = None  # resolve_ids(), once a run
    module_kwargs = dict(
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

    # -- input ---------------------------------------------------------------

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
        if p["pause_time"] < 0:
            raise ValidationError("pause_time", "must be 0 or more")
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
            fixed_network=p["fixed_network"],
            fixed_subnet=p["fixed_subnet"],
            external_network=p["external_network"],
            floating_ip_enabled=p["floating_ip_enabled"],
            server_group_policy=p["server_group_policy"],
            image_update_policy=p["image_update_policy"],
            master_image_update_policy=p["master_image_update_policy"],
            empty=empty,
            ids=self.resolve_ids(),
        )

    def resolve_ids(self):
        """{name: id} of the flavors, images, network and subnet the cluster names (once a run).

        A name Nova, Glance or Neutron does not find stays a name: Heat then says why.
        """
        if self._ids is not None:
            return self._ids
        p = self.params
        cluster = p["cluster"]
        conn = self.conn
        finders = []
        for ng in heat_template.normalise_nodegroups(cluster):
            finders.append((ng["flavor"], conn.compute.find_flavor))
            finders.append((ng["image"], conn.image.find_image))
        network = p["fixed_network"] or heat_template.record_field(cluster, "fixed_network")
        subnet = p["fixed_subnet"] or heat_template.record_field(cluster, "fixed_subnet")
        finders.append((network, conn.network.find_network))
        if subnet:
            finders.append((subnet, conn.network.find_subnet))
        self._ids = {}
        for value, finder in finders:
            if value in self._ids:
                continue
            with self.action("look up %s" % value):
                found = finder(value, ignore_missing=True)
            self._ids[value] = found.id if found is not None else value
        return self._ids

    def check_cluster_record(self):
        """Everything about the record that needs no cloud call (names, counts, flavors...)."""
        p = self.params
        spec = heat_template.build_cluster_stack(
            p["cluster"],
            user_data=p["user_data"],
            nodes_to_remove=p["nodes_to_remove"],
            fixed_network=p["fixed_network"],
            fixed_subnet=p["fixed_subnet"],
            external_network=p["external_network"],
            floating_ip_enabled=p["floating_ip_enabled"],
            server_group_policy=p["server_group_policy"],
            image_update_policy=p["image_update_policy"],
            master_image_update_policy=p["master_image_update_policy"],
        )
        if p["render_user_data"]:
            from ansible_collections.coe.openstack.plugins.module_utils import bootstrap

            record = dict(p["cluster"])
            # the API address is only known once the stack exists; any valid one checks the rest
            record["api_address"] = record.get("api_address") or "192.0.2.1"
            bootstrap.check_bootstrap_inputs(record)
        return spec.name

    def render_user_data(self, spec, api_address, first_master):
        """{node name: cloud-config} for every node of ``spec`` (given user-data wins)."""
        from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, pki, secrets

        p = self.params
        record = dict(p["cluster"], api_address=api_address)
        if not api_address:
            raise CloudError("stack %s has no api_address output to write into the user-data" % spec.name)
        box = secrets.resolve_secret_key(p["secret_key"], p.get("state_url"))
        with self.action("read the credentials of cluster %s" % record["name"]):
            credentials = pki.load_cluster_credentials(self.store, record["uuid"], box)
        if credentials is None:
            raise CloudError(
                "Cluster %s has no credentials in the store: the cluster module creates them" % record["name"]
            )
        given = p["user_data"] or {}
        roles = {ng["name"]: ng["role"] for ng in heat_template.normalise_nodegroups(record)}
        out = {}
        for ng, names in spec.nodes.items():
            for name in names:
                if name in given:
                    out[name] = given[name]
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

    # -- run -----------------------------------------------------------------

    def run(self):
        p = self.params
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
            live = heat_stack.settled_live(client, name, p["wait"], p["timeout"], self.check_mode)
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
                    repair=self.repairs(live) if p["cluster"] is not None else (),
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
        self.exit(**out)

    def repairs(self, live):
        """(name, nodegroup, index, reason) of the stack's members that the cluster record
        (its last observation) shows MISSING or in ERROR: Heat must make them again."""
        p = self.params
        if live is None:
            return ()
        record = p["cluster"]
        members = (live.get("outputs") or {}).get("nodegroups") or {}
        groups = heat_template.normalise_nodegroups(record)
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

        A new cluster's stack is created with no nodes first, so that the API's
        address (an output) exists when the user-data is written.
        """
        p = self.params
        desired = heat_stack.load_template(spec.template)
        action = heat_stack.plan(live, desired, spec.files, spec.parameters, spec.tags, spec.policy)[0]
        if action == "none":
            return live, spec
        first_master = live is None
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
        api_address = (live.get("outputs") or {}).get("api_address")
        user_data = self.render_user_data(spec, api_address, first_master)
        return live, self.cluster_spec(live, user_data=user_data)

    def absent(self, client, name):
        p = self.params
        with self.action("delete stack %s" % name):
            result = heat_stack.ensure_absent(client, name, p["wait"], p["timeout"], self.check_mode)
        cleaned = []
        if p["cluster"] is not None and p["cleanup"] and (p["wait"] or result.action == "none"):
            with self.action("clean up what is left of cluster %s" % p["cluster"]["name"]):
                cleaned = self.cleanup(heat_template.cluster_tag(p["cluster"]["uuid"]))
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
        self.exit(**out)

    def cleanup(self, tag):
        """Delete the servers and ports still tagged with the cluster.

        One list call each to find them, then one tag-filtered server list per
        poll until the servers are gone (never one GET per server).
        """
        conn = self.conn
        found = []
        for server in conn.compute.servers(details=False, tags=tag):
            found.append(dict(type="server", id=server.id, name=server.name))
        for port in conn.network.ports(tags=[tag]):
            found.append(dict(type="port", id=port.id, name=port.name))
        if self.check_mode or not found:
            return found
        servers = {item["id"] for item in found if item["type"] == "server"}
        for server_id in sorted(servers):
            conn.compute.delete_server(server_id, ignore_missing=True)
        if servers and self.params["wait"]:
            deadline = time.monotonic() + self.params["timeout"]
            while servers & {s.id for s in conn.compute.servers(details=False, tags=tag)}:
                if time.monotonic() > deadline:
                    raise WaitTimeout(
                        "Timed out after %ds waiting for the servers tagged %s to be deleted"
                        % (self.params["timeout"], tag)
                    )
                time.sleep(2)
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


def _dump(data):
    if HAS_YAML:
        return yaml.safe_dump(data, default_flow_style=False, sort_keys=True)
    import json

    return json.dumps(data, indent=2, sort_keys=True)


def main():
    HeatStackModule()()


if __name__ == "__main__":
    main()
