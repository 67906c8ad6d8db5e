#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: heat_preflight
short_description: Check, before any write, that the cloud has what a cluster's Heat stack needs
version_added: 0.1.0
description:
  - Read-only checks the C(coe.openstack.heat_driver) role runs before it creates or changes anything
    (the orchestration (Heat) endpoint answers; the cluster's images, flavors, keypair, network,
    subnet and external network exist; the project's quota has room for the servers, cores, RAM,
    ports and floating IP that the operation adds).
  - Every problem is reported at once; the module fails when there is any, naming each.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.openstack
  - coe.openstack.attributes.info
options:
  batch_size:
    description:
      - For O(operation=upgrade), how many nodes are replaced at once (each needs room for one
        extra server while its replacement boots).
    type: int
    default: 1
  cluster:
    description:
      - The cluster record (the C(cluster) return of M(coe.openstack.cluster)), with the desired
        node counts.
    type: dict
    required: true
  external_network:
    description:
      - The external network of the API's floating IP; overrides the record's C(external_network_id).
    type: str
  fixed_network:
    description:
      - The network of the nodes; overrides the record's C(fixed_network).
    type: str
  fixed_subnet:
    description:
      - The subnet of the nodes; overrides the record's C(fixed_subnet).
    type: str
  floating_ip_enabled:
    description:
      - Whether the API gets a floating IP. Defaults to the record's C(floating_ip_enabled) (or its
        template's), else to true when an external network is known (Magnum's default; the rule
        both drivers share).
    type: bool
  image_update_policy:
    description:
      - How an upgrade changes a server's image; C(REPLACE) needs quota for one batch of extra servers.
    type: str
    choices: [REBUILD, REPLACE, REBUILD_PRESERVE_EPHEMERAL]
    default: REPLACE
  operation:
    description:
      - The operation about to run.
    type: str
    choices: [create, update, upgrade, delete]
    default: create
"""

EXAMPLES = r"""
- name: Check the cloud before creating a cluster
  coe.openstack.heat_preflight:
    cloud: mycloud
    cluster: "{{ coe_cluster }}"
    operation: create
"""

RETURN = r"""
checked:
  description: What was checked and found fine.
  returned: always
  type: list
  elements: str
  sample: ["orchestration (Heat) endpoint", "flavor m1.small", "image fake-image", "network private"]
needs:
  description: What the operation adds to the project (servers, cores, ram in MiB, ports).
  returned: unless O(operation=delete)
  type: dict
  sample: {"servers": 5, "cores": 5, "ram": 10240, "ports": 6}
problems:
  description: What is missing or does not fit; empty when the checks pass.
  returned: always
  type: list
  elements: str
  sample: ["flavor m1.nope does not exist", "quota for instances: 5 needed, 8 of 10 used (2 free)"]
"""

from ansible_collections.coe.openstack.plugins.module_utils.heat.driver import HeatPreflightDriver
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class HeatPreflightModule(CoeModule):
    argument_spec = dict(
        batch_size=dict(type="int", default=1),
        cluster=dict(type="dict", required=True),
        external_network=dict(),
        fixed_network=dict(),
        fixed_subnet=dict(),
        floating_ip_enabled=dict(type="bool"),
        image_update_policy=dict(default="REPLACE", choices=["REBUILD", "REPLACE", "REBUILD_PRESERVE_EPHEMERAL"]),
        operation=dict(default="create", choices=["create", "update", "upgrade", "delete"]),
    )

    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        HeatPreflightDriver(self).run()


def main():
    HeatPreflightModule()()


if __name__ == "__main__":
    main()
