#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: nova_resources
short_description: A cluster's security group, server groups and API floating IP, or the cleanup of all of it
version_added: 0.1.0
description:
  - What the coe.openstack Nova driver needs around the servers (M(coe.openstack.nova_servers)).
  - With O(state=present), ensures the cluster's security group (ingress on O(security_group_ports)
    from anywhere, and everything between members), one server group per nodegroup listed in
    O(server_groups), and, with O(floating_ip), the API's floating IP. The floating IP is created
    unattached when no master exists yet (so the API address is known before any server boots) and
    attached to the first C(ACTIVE) master, or to O(floating_ip_server), later.
  - With O(state=absent), deletes everything of the cluster, orphans of an interrupted run included,
    in this order, servers (waiting until they are gone), floating IPs, ports, server groups,
    security groups.
  - Everything is found by the cluster's uuid. Neutron resources carry the tags C(coe-cluster) and
    C(coe-cluster-<uuid>) (and the uuid in their name or description); server groups, which cannot
    carry tags, are named C(coe-<uuid>-<nodegroup>[-v<template version>]); the security group is
    C(coe-<cluster>-<uuid>).
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.openstack
  - coe.openstack.store
  - coe.openstack.store.lease
  - coe.openstack.attributes
options:
  cluster:
    description:
      - A cluster record (the C(cluster) return of M(coe.openstack.cluster)). Used keys are C(uuid),
        C(name), C(nodegroups) (for the masters' nodegroup name), C(external_network_id) (or the
        C(template)'s) and C(floating_ip_enabled).
      - Mutually exclusive with O(cluster_uuid) and O(cluster_name).
    type: dict
  cluster_name:
    description:
      - Name of the cluster, without O(cluster).
    type: str
  cluster_uuid:
    description:
      - UUID of the cluster, without O(cluster).
    type: str
  external_network:
    description:
      - The external network of the API floating IP; overrides the record's C(external_network_id).
    type: str
  floating_ip:
    description:
      - Whether the API gets a floating IP. Defaults to the record's C(floating_ip_enabled) (or its
        template's), else to true when an external network is known (Magnum's default; the rule
        both drivers share).
    type: bool
  floating_ip_server:
    description:
      - Attach the floating IP to this server of the cluster (moving it if needed).
    type: str
  security_group:
    description:
      - Whether the cluster has its own security group.
    type: bool
    default: true
  security_group_ports:
    description:
      - TCP ports open to anyone on the security group (ssh, the Kubernetes API, the kubelet).
    type: list
    elements: int
    default: [22, 6443, 10250]
  server_groups:
    description:
      - Server group policy per nodegroup. A server group's policy cannot change.
      - With O(cluster), the masters' nodegroup always has a group; when not given here, with the
        template's C(master_server_group_policy) (the record's or its template's field, else the label
        of that name, else C(anti-affinity), as the Heat driver reads it).
      - With O(cluster), the groups are named after the record's C(template_version) too
        (C(coe-<uuid>-<nodegroup>-v<version>)), so an upgrade puts its new servers in new, empty groups,
        so that a strict C(anti-affinity) group with a member on every host does not refuse a new
        master while the old ones still run.
      - The cluster's server groups of other nodegroups (removed ones) or of other template versions
        are deleted; their servers keep running.
    type: dict
  state:
    description:
      - C(present) ensures the resources; C(absent) deletes everything of the cluster.
    type: str
    choices: [absent, present]
    default: present
notes:
  - Nova refuses an C(anti-affinity) server with C(No valid host was found) when the group already
    has a member on every compute host; use C(soft-anti-affinity) for more masters than hosts.
"""

EXAMPLES = r"""
- name: Security group, masters' server group and API floating IP of a cluster
  coe.openstack.nova_resources:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    external_network: public

- name: Spread the workers too
  coe.openstack.nova_resources:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    server_groups:
      default-master: anti-affinity
      default-worker: soft-anti-affinity

- name: Delete everything tagged with the cluster's uuid
  coe.openstack.nova_resources:
    cloud: mycloud
    cluster_name: k1
    cluster_uuid: 0b0c8f1e-1111-4222-8333-444455556666
    state: absent
"""

RETURN = r"""
api_address:
  description:
    - The cluster's API address, Magnum's C(https://ADDR:6443) of the API floating IP (else of the
      API VIP's fixed IP); the C(address) of RV(floating_ip) is the bare address.
  returned: when O(state=present) and the floating IP (or the VIP) exists
  type: str
  sample: https://172.24.4.20:6443
changes:
  description: What was (or, in check mode, would be) changed.
  returned: always
  type: list
  elements: str
  sample: ["create security group coe-k1-0b0c8f1e-1111-4222-8333-444455556666"]
deleted:
  description: Names (addresses for floating IPs) of what was deleted, by kind; C(load_balancers)
    are the API's Octavia load balancers, deleted with a cascade (their VIP port and security group
    go with them).
  returned: when O(state=absent)
  type: dict
  sample: {"servers": ["k1-master-1"], "floating_ips": ["172.24.4.20"], "ports": [], "server_groups": [],
           "security_groups": ["coe-k1-0b0c8f1e-1111-4222-8333-444455556666"], "load_balancers": []}
finished:
  description:
    - With O(finish), the cluster as recorded after this module's last observation (the keys of
      M(coe.openstack.cluster)'s C(cluster) return), the lock's token, and whether the
      lock was released (the cluster came out C(*_COMPLETE)).
  returned: when O(finish) and the module waited, outside check mode
  type: dict
  sample: {"cluster": {"name": "k1", "status": "CREATE_COMPLETE"}, "lock_token": 7, "lock_released": true}
floating_ip:
  description: The API floating IP; C(server) is the server it was attached to in this run.
  returned: when O(state=present) with a floating IP
  type: dict
  sample: {"id": "5a1e...", "address": "172.24.4.20", "port_id": "c0de...", "server": "k1-master-1"}
security_group:
  description: The cluster's security group.
  returned: when O(state=present) and O(security_group)
  type: dict
  sample: {"id": "3f2a...", "name": "coe-k1-0b0c8f1e-1111-4222-8333-444455556666", "ports": [22, 6443, 10250]}
server_groups:
  description: Server groups by nodegroup.
  returned: when O(state=present)
  type: dict
  sample: {"default-master": {"id": "9e1d...", "name": "coe-0b0c...-default-master", "policy": "anti-affinity"}}
vip:
  description:
    - The port whose fixed IP is the API's VIP (a cluster with more than one master and no load
      balancer, docs/control-plane.md), C(id), C(name), C(fixed_ip); the floating IP is on it.
  returned: when O(state=present) and the cluster's API is on a VIP
  type: dict
  sample: {"id": "7d2c...", "name": "k1-api-vip", "fixed_ip": "10.0.0.5"}
"""

from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule
from ansible_collections.coe.openstack.plugins.module_utils.nova.driver import (
    RESOURCES_ARGUMENT_SPEC,
    RESOURCES_MODULE_KWARGS,
    NovaResourcesDriver,
)


class NovaResourcesModule(CoeModule):
    argument_spec = RESOURCES_ARGUMENT_SPEC
    module_kwargs = RESOURCES_MODULE_KWARGS
    uses_store = True

    def run(self):
        NovaResourcesDriver(self).run()


def main():
    NovaResourcesModule()()


if __name__ == "__main__":
    main()
