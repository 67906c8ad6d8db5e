#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nova_servers
short_description: Create, repair, scale, replace and delete a cluster's servers in one batch
version_added: 0.1.0
description:
  - The batch servers primitive of the coe.openstack Nova driver. Makes the servers of one cluster
    match a desired set in one module run, with one authentication and one shared connection.
  - Missing servers are created concurrently (at most O(concurrency) API calls at once); servers
    that are not desired (or named in O(nodes_to_remove)) are deleted; with O(replace_errored),
    servers in C(ERROR) are deleted and created again (repair).
  - The members of an C(anti-affinity) server group are created one after another, each once
    Nova has placed the one before; those of an C(affinity) group once their first is placed
    (Nova would otherwise race with itself for the hosts; docs/nova-driver.md).
  - Idempotent by server name and cluster uuid. Every server carries the tags C(coe-cluster) and
    C(coe-cluster-<uuid>) and the metadata C(coe_cluster_uuid), C(coe_cluster_name),
    C(coe_nodegroup), C(coe_role), C(coe_index). An existing server is never modified; a server
    whose image or flavor differs from the desired one is replaced only with O(replace_outdated).
  - The desired set comes from a cluster record (O(cluster)) or from an explicit list (O(servers)).
    From a record, node names are C(<cluster>-master-<index>) and C(<cluster>-<nodegroup>-<index>);
    a new node gets an index above every index the nodegroup ever used (the nodegroup's
    C(last_index) and every known or existing name), so an index is never reused.
  - "Scaling in removes, in this order: the nodes named in O(nodes_to_remove), known nodes that are
    missing, nodes in C(ERROR), then the newest nodes."
  - A known node (in the record's nodegroup C(nodes)) that was deleted behind our back is created
    again under its own name.
  - With O(resources), the same run also ensures what M(coe.openstack.nova_resources) ensures
    with O(cluster) (the security group, the server groups and the API floating IP) before the
    servers, the floating IP's address being the API address in every node's user-data, and
    attaches the floating IP to the first C(ACTIVE) master after them. The whole create or update
    of a cluster is then one module run, with one authentication.
  - Before the first write, every reference (image, flavor, keypair, networks, server groups,
    security groups) is looked up and the project's quota (instances, cores, ram, ports) is checked;
    a quota too small fails naming the quota, and nothing is created.
  - Waiting polls with ONE server list filtered by the cluster's tag per O(poll_interval), never a
    request per server. A server that goes to C(ERROR) makes the module fail with Nova's fault
    message for it (for example C(No valid host was found.)); the other servers are kept.
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
      - Create-before-delete in batches (rolling replacement, for upgrades). Each batch creates up
        to this many servers, waits until they are C(ACTIVE), then deletes as many of the servers
        they replace; the first batch that fails stops the run with the old servers still in place.
      - C(0) creates and deletes everything at once.
    type: int
    default: 0
  cluster:
    description:
      - A cluster record (the C(cluster) return of M(coe.openstack.cluster)); the desired servers
        are derived from it. Used keys are C(uuid), C(name), C(nodegroups) (C(name), C(role),
        C(node_count), C(flavor_id), C(image_id), C(nodes), C(last_index)) or C(master_count) and
        C(node_count), C(flavor_id), C(master_flavor_id), C(image_id), C(keypair),
        C(fixed_network); with O(render_user_data) also what the user-data renderer needs
        (C(api_address), C(coe_version) or else the C(kube_tag) label, C(labels)).
      - The cluster's security group and the nodegroups' server groups (made by
        M(coe.openstack.nova_resources)) are used when they exist.
      - Mutually exclusive with O(servers).
    type: dict
  cluster_name:
    description:
      - Name of the cluster, with O(servers).
    type: str
  cluster_uuid:
    description:
      - UUID of the cluster, with O(servers); every server is tagged with it.
    type: str
  concurrency:
    description:
      - How many create or delete calls run at once. They share one connection.
    type: int
    default: 10
  external_network:
    description:
      - With O(resources), the external network of the API floating IP; overrides the record's
        C(external_network_id) (or its C(template)'s).
    type: str
  fixed_network:
    description:
      - With O(cluster), the network of the servers' ports (Nova creates one port per server);
        overrides the record's C(fixed_network).
    type: str
  floating_ip:
    description:
      - With O(resources), whether the API gets a floating IP. Defaults to the record's
        C(floating_ip_enabled) (or its template's), else to true when an external network is
        known (Magnum's default; the rule both drivers share).
    type: bool
  master_server_group_policy:
    description:
      - With O(resources) and O(cluster), the policy of the masters' server group, over the
        template's (what the role variable C(nova_driver_master_server_group_policy) sets).
    type: str
  nodes_to_remove:
    description:
      - Names of servers to delete. With O(cluster), nodes taken out when scaling in (each
        nodegroup's C(node_count) is its size after the removal); with O(servers), servers to
        delete whether or not O(prune) is set.
    type: list
    elements: str
    default: []
  poll_interval:
    description:
      - Seconds between two server lists while waiting.
    type: float
    default: 1.0
  prune:
    description:
      - With O(servers), delete the cluster's servers that are not in the list. With O(cluster) a
        server that is not desired is always deleted.
    type: bool
    default: true
  render_user_data:
    description:
      - With O(cluster), render each new node's cloud-init user-data with the collection's one
        renderer (cluster CAs from the store, a client certificate per worker). Needs O(state_url)
        and O(secret_key) (or their environment variables).
      - User-data given in O(user_data) for a node wins.
    type: bool
    default: false
  replace_errored:
    description:
      - Delete servers in C(ERROR) and create them again under the same name.
    type: bool
    default: true
  replace_outdated:
    description:
      - With O(cluster), replace servers whose image or flavor differs from their nodegroup's by new
        servers with new indexes (an upgrade). Use O(batch_size) to roll it.
    type: bool
    default: false
  resources:
    description:
      - With O(cluster) and O(state=present), also ensure the cluster's security group (O(security_group_ports)),
        its server groups (O(server_groups)) and, with O(floating_ip), the API floating IP, as
        M(coe.openstack.nova_resources) does, before the servers; the servers get the security
        group and their nodegroup's server group, the user-data the floating IP's address as the API
        address, and, once the servers are C(ACTIVE), the floating IP is attached to the first
        C(ACTIVE) master when it is attached to nothing.
      - When the cluster's API is behind a load balancer (the record's C(api_endpoint) is
        C(load_balancer), from the template's C(master_lb_enabled)), the Octavia load balancer,
        its TCP listener on 6443 (C(allowed_cidrs) from the label C(master_lb_allowed_cidrs)), pool
        and TCP health monitor are made first, each waited to C(provisioning_status=ACTIVE); the
        floating IP goes on its VIP port, the API address is the load balancer's, and once the
        servers are up the pool's members are set to the masters that exist.
      - Without it, the security group and server groups are used when they exist.
    type: bool
    default: false
  secret_key:
    description:
      - The key the cluster secrets are encrypted with in the store, for O(render_user_data).
      - Defaults to C(COE_SECRET_KEY), then C(COE_SECRET_KEY_FILE), then the key file next to a
        SQLite store.
    type: str
  security_group_ports:
    description:
      - With O(resources), the TCP ports open to anyone on the cluster's security group.
    type: list
    elements: int
    default: [22, 6443, 10250]
  server_groups:
    description:
      - With O(resources), the server group policy per nodegroup, as in
        M(coe.openstack.nova_resources). The masters' nodegroup always has a group; when not given
        here, with the template's C(master_server_group_policy) (the record's or its template's field,
        else the label of that name, else C(anti-affinity)).
      - A nodegroup named here takes this policy over O(master_server_group_policy) and
        O(worker_server_group_policy).
    type: dict
  servers:
    description:
      - The desired servers, explicitly. Mutually exclusive with O(cluster).
    type: list
    elements: dict
    suboptions:
      availability_zone:
        description: Availability zone.
        type: str
      flavor:
        description: Flavor name or id.
        type: str
        required: true
      image:
        description: Image name or id.
        type: str
        required: true
      index:
        description: The node's index, stored in the C(coe_index) metadata.
        type: int
      keypair:
        description: Keypair name.
        type: str
      metadata:
        description: Extra metadata; the C(coe_*) keys are always set by the module.
        type: dict
      name:
        description: Server name, unique in the cluster.
        type: str
        required: true
      networks:
        description: Networks (Nova creates the port) or existing ports.
        type: list
        elements: dict
        suboptions:
          fixed_ip:
            description: A fixed IP on O(servers[].networks[].network).
            type: str
          network:
            description: Network name or id.
            type: str
          port:
            description: An existing port id.
            type: str
      nodegroup:
        description: The nodegroup the server belongs to.
        type: str
        required: true
      role:
        description: The server's role.
        type: str
        required: true
        choices: [master, worker]
      security_groups:
        description: Security group names or ids for the ports Nova creates.
        type: list
        elements: str
      server_group:
        description: Server group name or id (scheduler hint).
        type: str
      user_data:
        description: Cloud-init user-data text.
        type: str
  state:
    description:
      - C(present) makes the servers match; C(absent) deletes every server of the cluster.
    type: str
    choices: [absent, present]
    default: present
  user_data:
    description:
      - User-data text per node name (for nodes created by this run). Never logged or returned.
    type: dict
  worker_server_group_policy:
    description:
      - With O(resources) and O(cluster), a server group with this policy for every worker
        nodegroup of the record (C(nova_driver_worker_server_group_policy)); without it, workers
        have no server group.
    type: str
notes:
  - Servers are created with Nova-made ports on the given networks, with the cluster's security
    group; Nova deletes those ports with the server.
  - The module never waits longer than O(timeout) in total; a timeout names the servers still
    building or being deleted.
"""

EXAMPLES = r"""
- name: The servers of a cluster record, user-data rendered per node
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    render_user_data: true
    secret_key: "{{ coe_secret_key }}"
  no_log: true

- name: The whole cluster in one run - security group, server groups, API floating IP, servers
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    resources: true
    external_network: public
    render_user_data: true

- name: Scale in, removing one named node
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    nodes_to_remove: [k1-default-worker-2]

- name: Upgrade (the record's image changed), one node at a time
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    replace_outdated: true
    batch_size: 1

- name: An explicit set of servers
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster_name: k1
    cluster_uuid: 0b0c8f1e-1111-4222-8333-444455556666
    servers:
      - name: k1-master-1
        nodegroup: default-master
        role: master
        flavor: m1.small
        image: fake-image
        keypair: demo-key
        networks: [{network: private}]
        server_group: k1-masters
      - name: k1-default-worker-1
        nodegroup: default-worker
        role: worker
        flavor: m1.small
        image: fake-image
        networks: [{network: private}]

- name: Delete every server of a cluster
  coe.openstack.nova_servers:
    cloud: mycloud
    cluster_name: k1
    cluster_uuid: 0b0c8f1e-1111-4222-8333-444455556666
    state: absent
"""

RETURN = r"""
created:
  description: Names of the servers created (in check mode, that would be created).
  returned: always
  type: list
  elements: str
  sample: [k1-default-worker-3]
deleted:
  description: Names of the servers deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: str
  sample: [k1-default-worker-1]
faults:
  description: Servers that failed, with the cloud's reason (Nova's fault message, or the error of
    a refused create).
  returned: always
  type: dict
  sample: {"k1-default-worker-3": "No valid host was found. (code 500)"}
finished:
  description:
    - With O(finish), the cluster as recorded after this module's last observation (the keys of
      M(coe.openstack.cluster)'s C(cluster) return), the lock's token, and whether the
      lock was released (the cluster came out C(*_COMPLETE)).
  returned: when O(finish) and the module waited, outside check mode
  type: dict
  sample: {"cluster": {"name": "k1", "status": "CREATE_COMPLETE"}, "lock_token": 7, "lock_released": true}
nodegroups:
  description: Per nodegroup, the highest node index used so far (to keep in the record so that an
    index is never reused) and the number of servers desired.
  returned: with O(cluster)
  type: dict
  sample: {"default-worker": {"last_index": 3, "node_count": 2}}
replaced:
  description: Names of servers in C(ERROR) that were (or would be) deleted and created again.
  returned: always
  type: list
  elements: str
  sample: [k1-default-worker-2]
resources:
  description: With O(resources), the cluster's other resources, as M(coe.openstack.nova_resources)
    returns them, and what was (or, in check mode, would be) changed.
  returned: with O(resources)
  type: dict
  sample: {"api_address": "https://172.24.4.20:6443", "changes": [], "security_group": {"name": "coe-k1-0b0c8f1e"}}
  contains:
    api_address:
      description:
        - The cluster's API address, Magnum's C(https://ADDR:6443) of the API floating IP (absent in
          check mode before it exists); C(floating_ip.address) is the bare address.
      type: str
      sample: https://172.24.4.20:6443
    changes:
      description: What was (or would be) changed, one line per change.
      type: list
      elements: str
      sample: ["create security group coe-k1-0b0c8f1e-1111-4222-8333-444455556666"]
    load_balancer:
      description: The API's load balancer, C(id), C(name), C(vip_address), C(vip_port_id),
        C(pool_id), C(members) (the masters' addresses), when the API is behind one.
      type: dict
      sample: {"id": "3c1d...", "name": "coe-k1-0b0c8f1e-1111-4222-8333-444455556666-api", "vip_address": "10.0.0.99",
               "vip_port_id": "77ab...", "pool_id": "5e2f...", "members": ["10.0.0.11", "10.0.0.12", "10.0.0.13"]}
    floating_ip:
      description: The API floating IP, C(id), C(address), C(port_id), C(server) (the server it is
        attached to), with O(floating_ip).
      type: dict
      sample: {"id": "5b1e...", "address": "172.24.4.20", "port_id": "9c3a...", "server": "k1-master-1"}
    security_group:
      description: The security group, C(id), C(name), C(ports).
      type: dict
      sample: {"id": "0f2e...", "name": "coe-k1-0b0c8f1e-1111-4222-8333-444455556666", "ports": [22, 6443, 10250]}
    server_groups:
      description: Per nodegroup, the server group's C(id), C(name) and C(policy).
      type: dict
      sample: {"default-master": {"id": "8a9d...", "name": "coe-0b0c...-default-master-v1", "policy": "anti-affinity"}}
    vip:
      description: The API VIP's port, C(id), C(name), C(fixed_ip), when the cluster's API is on a VIP
        (more than one master, no load balancer); the floating IP is on it.
      type: dict
      sample: {"id": "7d2c...", "name": "k1-api-vip", "fixed_ip": "10.0.0.5"}
servers:
  description: The cluster's servers after the run (before it, in check mode or without O(wait)).
  returned: always
  type: list
  elements: dict
  contains:
    created_at:
      description: Creation time.
      type: str
      sample: "2026-11-25T08:00:00Z"
    fault:
      description: Nova's fault message when the server is in C(ERROR), else null.
      type: str
      sample: "No valid host was found. (code 500)"
    fixed_addresses:
      description: Fixed IP addresses.
      type: list
      sample: [10.0.0.12]
    flavor_name:
      description: Flavor name.
      type: str
      sample: m1.small
    floating_addresses:
      description: Floating IP addresses.
      type: list
      sample: [172.24.4.20]
    id:
      description: Server id.
      type: str
      sample: 7d1c...
    image_id:
      description: Image id.
      type: str
      sample: 4b8e...
    name:
      description: Server name.
      type: str
      sample: k1-default-worker-1
    nodegroup:
      description: Nodegroup.
      type: str
      sample: default-worker
    role:
      description: C(master) or C(worker).
      type: str
      sample: worker
    status:
      description: Nova status.
      type: str
      sample: ACTIVE
  sample: [{"name": "k1-master-1", "status": "ACTIVE", "fixed_addresses": ["10.0.0.12"]}]
vip_pairs:
  description:
    - Names of the masters whose port was (or, in check mode, would be) let carry the API VIP's
      address (allowed-address-pairs), when the cluster's API is on a VIP (docs/control-plane.md).
  returned: when the cluster's API is on a VIP and the servers changed
  type: list
  elements: str
  sample: [k1-master-3]
"""

from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule
from ansible_collections.coe.openstack.plugins.module_utils.nova.driver import (
    SERVERS_ARGUMENT_SPEC,
    SERVERS_MODULE_KWARGS,
    NovaServersDriver,
)


class NovaServersModule(CoeModule):
    argument_spec = SERVERS_ARGUMENT_SPEC
    module_kwargs = SERVERS_MODULE_KWARGS
    uses_store = True

    def run(self):
        NovaServersDriver(self).run()


def main():
    NovaServersModule()()


if __name__ == "__main__":
    main()
