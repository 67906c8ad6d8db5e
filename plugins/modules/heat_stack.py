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
      - With O(cluster), whether the API gets a floating IP (on the first master's port).
      - Defaults to the live stack's (the API endpoint of a cluster does not change once made),
        else to the record's C(floating_ip_enabled) (or its template's), else to true when an
        external network is known (Magnum's default; the rule both drivers share).
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
      - The user-data names the API's addresses. With a floating IP it names them by stand-ins
        that Heat replaces as it makes each server, so a create is one stack create; without
        one a new cluster's stack is first created with no nodes (security group, server group,
        the API's port), then updated to its nodes.
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
finished:
  description:
    - With O(finish), the cluster as recorded after this module's last observation (the keys of
      M(coe.openstack.cluster)'s C(cluster) return), the lock's token, and whether the
      lock was released (the cluster came out C(*_COMPLETE)).
  returned: when O(finish) and the module waited, outside check mode
  type: dict
  sample: {"cluster": {"name": "k1", "status": "CREATE_COMPLETE"}, "lock_token": 7, "lock_released": true}
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
      description:
        - The stack's outputs, output key to value. A cluster's stack gives C(api_ip), the bare
          address of its API (the cluster's C(api_address) is C(https://<api_ip>:6443)),
          C(master_addresses), C(node_addresses), C(nodegroups) and C(coe_version).
      type: dict
      sample: {"api_ip": "10.0.0.12", "master_addresses": ["10.0.0.12"]}
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

from ansible_collections.coe.openstack.plugins.module_utils.heat.driver import (
    STACK_ARGUMENT_SPEC,
    STACK_MODULE_KWARGS,
    HeatStackDriver,
)
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class HeatStackModule(CoeModule):
    argument_spec = STACK_ARGUMENT_SPEC
    module_kwargs = STACK_MODULE_KWARGS
    uses_store = True

    def run(self):
        HeatStackDriver(self).run()


def main():
    HeatStackModule()()


if __name__ == "__main__":
    main()
