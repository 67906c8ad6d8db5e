#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_template
short_description: Manage versioned cluster templates in the coe.openstack store
version_added: 0.1.0
description:
  - Creates, versions and deletes cluster templates - Magnum's ClusterTemplate fields (with the option
    names of openstack.cloud's
    L(coe_cluster_template,https://docs.ansible.com/ansible/latest/collections/openstack/cloud/coe_cluster_template_module.html)
    module) plus O(driver), the driver that builds clusters of this template.
  - Versions are immutable. With O(state=present), a spec identical to the latest version changes
    nothing; any difference stores a new version N+1. Old versions never change, so clusters keep
    running on the version they were built with until they are upgraded (M(coe.openstack.cluster)
    with another O(coe.openstack.cluster#module:cluster_template_version)).
  - With O(state=absent), deleting a template, or one O(version) of it, that a cluster uses is
    refused, naming the clusters.
  - Only the store is touched; no cloud call is made. Image, flavor, keypair and network names
    are checked by the driver when a cluster is built.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes
options:
  actor:
    description:
      - Who is acting, recorded in the event history. Keys C(user), C(host), C(awx_job_id).
      - Defaults to the local user, the host name and the AWX job id from the environment
        (C(JOB_ID)); pass C(awx_job_id) and C(awx_user_name) extra vars here under AWX.
    type: dict
  coe:
    description: Container orchestration engine.
    type: str
    choices: [kubernetes]
    default: kubernetes
  coe_version:
    description:
      - Kubernetes version the nodes run, for example C(v1.30.4) or C(1.31); from C(v1.22) on.
      - Required with O(state=present), unless O(labels) has Magnum's C(kube_tag) label, which is
        then the version (both drivers read C(coe_version), else C(kube_tag)).
      - A template without a version, or with one that is not a supported Kubernetes version, is
        refused naming the field, before anything is stored.
    type: str
  description:
    description: Free text.
    type: str
  dns_nameserver:
    description: DNS server of the cluster's network.
    type: str
  docker_storage_driver:
    description: Container storage driver, for example C(overlay2).
    type: str
  docker_volume_size:
    description: Size in GiB of a volume for container storage on every node.
    type: int
  driver:
    description:
      - The driver that builds and changes clusters of this template.
      - C(heat) orchestrates with Heat stacks; C(nova) creates servers directly.
      - Required with O(state=present).
    type: str
    choices: [heat, nova]
  external_network_id:
    description: External network (name or ID) for floating IPs and the API load balancer.
    type: str
  fixed_network:
    description: Existing private network (name or ID) for the nodes.
    type: str
  fixed_subnet:
    description: Existing subnet (name or ID) of O(fixed_network).
    type: str
  flavor_id:
    description: Flavor (name or ID) of worker nodes.
    type: str
  floating_ip_enabled:
    description:
      - Give the cluster's API a floating IP from O(external_network_id).
      - Not set, true when O(external_network_id) is given (Magnum's default), on both drivers.
      - A cluster keeps the kind of API endpoint it was created with.
    type: bool
  http_proxy:
    description: HTTP proxy for the nodes.
    type: str
  https_proxy:
    description: HTTPS proxy for the nodes.
    type: str
  image_id:
    description:
      - Image (name or ID) of all nodes. Required with O(state=present).
      - A new image means a new version; upgrading a cluster to it replaces nodes in batches.
    type: str
  insecure_registry:
    description: An insecure container registry the nodes may use.
    type: str
  is_public:
    description: Visible to every project.
    type: bool
  keypair_id:
    description: Nova keypair put on the nodes.
    type: str
  labels:
    description:
      - Magnum labels, string to string. Clusters merge their own labels over these.
    type: dict
  master_flavor_id:
    description: Flavor (name or ID) of master nodes; O(flavor_id) when not given.
    type: str
  master_lb_enabled:
    description: Put a load balancer in front of the masters.
    type: bool
  master_server_group_policy:
    description: Nova server group policy of the masters.
    type: str
    choices: [affinity, anti-affinity, soft-affinity, soft-anti-affinity]
  name:
    description:
      - Template name, a DNS label (lowercase letters, digits, C(-); starting with a letter).
    type: str
    required: true
  network_driver:
    description: Pod network.
    type: str
    choices: [flannel, calico]
  no_proxy:
    description: Hosts reached without proxy.
    type: str
  registry_enabled:
    description: Run a local registry.
    type: bool
  server_type:
    description: Server type of the nodes.
    type: str
    choices: [vm]
  state:
    description:
      - C(present) stores the spec (a new version when it differs from the latest).
      - C(absent) deletes the template, or only O(version).
    type: str
    choices: [present, absent]
    default: present
  tls_disabled:
    description: Disable TLS on the API (not recommended).
    type: bool
  version:
    description:
      - With O(state=absent), the one version to delete. Not allowed with O(state=present).
    type: int
  volume_driver:
    description: Volume driver.
    type: str
    choices: [cinder]
  worker_server_group_policy:
    description: Nova server group policy of the workers.
    type: str
    choices: [affinity, anti-affinity, soft-affinity, soft-anti-affinity]
seealso:
  - module: coe.openstack.cluster
  - module: coe.openstack.cluster_info
"""

EXAMPLES = r"""
- name: A Kubernetes template built by the Heat driver
  coe.openstack.cluster_template:
    name: k8s-small
    driver: heat
    image_id: fedora-coreos-40
    flavor_id: m1.small
    master_flavor_id: m1.medium
    external_network_id: public
    keypair_id: ops
    coe_version: v1.30.4
    labels:
      kube_tag: v1.30.4
    master_server_group_policy: soft-anti-affinity

- name: The same template with a new image is version 2; version 1 stays as it was
  coe.openstack.cluster_template:
    name: k8s-small
    driver: heat
    image_id: fedora-coreos-41
    flavor_id: m1.small
    master_flavor_id: m1.medium
    external_network_id: public
    keypair_id: ops
    coe_version: v1.31.1
    labels:
      kube_tag: v1.31.1
    master_server_group_policy: soft-anti-affinity

- name: Drop version 1 once no cluster uses it
  coe.openstack.cluster_template:
    name: k8s-small
    state: absent
    version: 1
"""

RETURN = r"""
cluster_template:
  description:
    - The template version now current (or that would be stored, in check mode), its spec
      flattened. None after O(state=absent).
  returned: always
  type: dict
  sample:
    name: k8s-small
    version: 2
    uuid: 2b4e0d3c-8c3e-4a4b-9d0e-2f1b8f7b1a11
    driver: heat
    coe: kubernetes
    image_id: fedora-coreos-41
    flavor_id: m1.small
    labels: {kube_tag: v1.31.1}
    created_at: "2026-11-25T07:40:00+00:00"
    created_by: alice@laptop
    versions:
      - {version: 1, uuid: 9f1c..., created_at: "2026-11-20T10:00:00+00:00", created_by: alice@laptop}
deleted_versions:
  description: Versions deleted by O(state=absent) (or that would be, in check mode).
  returned: when a version was deleted
  type: list
  elements: int
  sample: [1]
version:
  description: Number of the current version; None after O(state=absent).
  returned: always
  type: int
  sample: 2
versions:
  description: The template's version numbers, oldest first.
  returned: always
  type: list
  elements: int
  sample: [1, 2]
"""

from ansible_collections.coe.openstack.plugins.module_utils import shape
from ansible_collections.coe.openstack.plugins.module_utils.clusters import ensure_template
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import TEMPLATE_FIELDS
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule

SPEC_OPTIONS = dict(
    coe=dict(choices=["kubernetes"], default="kubernetes"),
    coe_version=dict(),
    description=dict(),
    dns_nameserver=dict(),
    docker_storage_driver=dict(),
    docker_volume_size=dict(type="int"),
    driver=dict(choices=["heat", "nova"]),
    external_network_id=dict(),
    fixed_network=dict(),
    fixed_subnet=dict(),
    flavor_id=dict(),
    floating_ip_enabled=dict(type="bool"),
    http_proxy=dict(),
    https_proxy=dict(),
    image_id=dict(),
    insecure_registry=dict(),
    is_public=dict(type="bool"),
    keypair_id=dict(),
    labels=dict(type="dict"),
    master_flavor_id=dict(),
    master_lb_enabled=dict(type="bool"),
    master_server_group_policy=dict(choices=list(shape.SERVER_GROUP_POLICIES)),
    network_driver=dict(choices=["flannel", "calico"]),
    no_proxy=dict(),
    registry_enabled=dict(type="bool"),
    server_type=dict(choices=["vm"]),
    tls_disabled=dict(type="bool"),
    volume_driver=dict(choices=["cinder"]),
    worker_server_group_policy=dict(choices=list(shape.SERVER_GROUP_POLICIES)),
)


class ClusterTemplateModule(CoeModule):
    argument_spec = dict(
        SPEC_OPTIONS,
        actor=dict(type="dict"),
        name=dict(required=True),
        state=dict(choices=["present", "absent"], default="present"),
        version=dict(type="int"),
    )
    module_kwargs = dict(supports_check_mode=True, required_if=[("state", "present", ("driver", "image_id"))])
    uses_cloud = False
    uses_store = True

    def run(self):
        p = self.params
        spec = {k: p[k] for k in TEMPLATE_FIELDS if k in SPEC_OPTIONS}
        what = "%s cluster template %s" % ("store" if p["state"] == "present" else "delete", p["name"])
        with self.action(what):
            changed, result = ensure_template(
                self.store,
                p["name"],
                p["state"],
                spec_params=spec,
                version=p["version"],
                check_mode=self.check_mode,
                actor=p["actor"],
            )
        if self.diff_mode:
            result["diff"] = dict(
                before=dict(versions=_before_versions(result, changed, p["state"])),
                after=dict(versions=result["versions"]),
            )
        self.exit(changed=changed, **result)


def _before_versions(result, changed, state):
    if not changed:
        return result["versions"]
    if state == "present":
        return result["versions"][:-1]
    return sorted(result["versions"] + result.get("deleted_versions", []))


def main():
    ClusterTemplateModule()()


if __name__ == "__main__":
    main()
