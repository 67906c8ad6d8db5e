#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_kubeconfig
short_description: Write an admin kubeconfig for a cluster (Magnum's cluster config)
version_added: 0.1.0
description:
  - Writes a kubeconfig that reaches the cluster's API as an administrator, like
    C(openstack coe cluster config) did with Magnum.
  - The client certificate is issued on the Ansible controller, signed by the cluster CA that
    the collection keeps (encrypted) in its store. Its group is C(kubeadm:cluster-admins) from
    Kubernetes 1.29 and C(system:masters) before, and it is short-lived (O(validity_hours)).
  - The file is written with mode C(0600). The module returns the path and the expiry, never the
    key, unless O(return_content=true); the whole result is then marked C(no_log) so the
    content shows in no output, and can only be used through C(register).
  - Idempotent. An existing file is kept when it holds a certificate for the same CA, user,
    group and API address that is still valid for more than O(renew_before_hours); otherwise
    (or with O(force=true)) a new certificate and key are issued and the file is replaced.
  - No cloud call is made; the cluster must exist in the store and have an API address.
  - Writing a kubeconfig is recorded in the cluster's event history (user, expiry, serial),
    without any key material.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes
attributes:
  idempotent:
    description: A second run with the same arguments changes nothing while the certificate is valid.
options:
  cluster:
    description:
      - Name or UUID of the cluster.
    type: str
    required: true
  force:
    description:
      - Issue a new certificate and rewrite the file even when the existing one is still valid
        (rotation).
    type: bool
    default: false
  path:
    description:
      - Where to write the kubeconfig. Missing parent folders are created with mode C(0700).
    type: path
    required: true
  project:
    description:
      - Project ID of the cluster, when clusters of the same name exist in several projects.
    type: str
  renew_before_hours:
    description:
      - Replace an existing file whose certificate expires within this many hours.
      - Must be less than O(validity_hours).
    type: int
    default: 1
  return_content:
    description:
      - Also return the kubeconfig (with its private key) as RV(kubeconfig.content).
      - The task result is then marked C(no_log).
    type: bool
    default: false
  secret_key:
    description:
      - The key that encrypts the cluster's credentials in the store (C(coe_secret_key)).
      - When not given, the environment variable C(COE_SECRET_KEY), then the file named by
        C(COE_SECRET_KEY_FILE), then (embedded SQLite store only) the file C(secret.key) beside
        the SQLite file.
    type: str
  user:
    description:
      - User name (certificate common name) the cluster sees, for example in its audit log.
    type: str
    default: kubernetes-admin
  validity_hours:
    description:
      - How long the client certificate is valid, in hours. It never outlives the cluster CA.
    type: int
    default: 24
notes:
  - To rotate, run again with O(force=true), or let the certificate come within
    O(renew_before_hours) of its expiry. A certificate already handed out stays valid until it
    expires; keep O(validity_hours) short.
seealso:
  - module: coe.openstack.cluster
"""

EXAMPLES = r"""
- name: Write an admin kubeconfig valid for 8 hours
  coe.openstack.cluster_kubeconfig:
    cluster: demo
    path: ~/.kube/demo.conf
    validity_hours: 8

- name: Rotate it now, in the name of the person running the play
  coe.openstack.cluster_kubeconfig:
    cluster: demo
    path: ~/.kube/demo.conf
    user: "{{ lookup('ansible.builtin.env', 'USER') }}"
    force: true

- name: Get the content to hand to another tool (the result is hidden from output)
  coe.openstack.cluster_kubeconfig:
    cluster: demo
    path: /tmp/demo.kubeconfig
    return_content: true
    secret_key: "{{ vault_coe_secret_key }}"
  register: demo_kubeconfig
"""

RETURN = r"""
kubeconfig:
  description: The kubeconfig written (or that would be written in check mode).
  returned: success
  type: dict
  contains:
    ca_fingerprint:
      description: SHA-256 fingerprint of the cluster CA certificate.
      type: str
      sample: 4560264e09774b9e8397684c9562514b321ae7b9884b2d1acb0fdf3806e322e9
    cluster:
      description: Name of the cluster.
      type: str
      sample: demo
    cluster_uuid:
      description: UUID of the cluster.
      type: str
      sample: 0f2b6c1e-1111-2222-3333-444455556666
    content:
      description: The kubeconfig, private key included.
      returned: when O(return_content=true)
      type: str
      sample: "apiVersion: v1\nkind: Config\n..."
    expires_at:
      description: When the client certificate expires (ISO 8601, UTC). In check mode, when a new one would.
      type: str
      sample: "2026-11-26T08:00:00+00:00"
    groups:
      description: Groups of the client certificate.
      type: list
      elements: str
      sample: [kubeadm:cluster-admins]
    path:
      description: Path of the file.
      type: str
      sample: /home/alice/.kube/demo.conf
    serial:
      description: Serial number of the client certificate (hex). Empty in check mode when a new one would be issued.
      type: str
      sample: 3be053ba67166f4745692e48ea4635b0ceb0f396
    server:
      description: The API server URL in the kubeconfig.
      type: str
      sample: https://10.0.0.10:6443
    user:
      description: User name (common name) of the client certificate.
      type: str
      sample: kubernetes-admin
"""

from ansible_collections.coe.openstack.plugins.module_utils.kubeconfig import KubeconfigLogic
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class ClusterKubeconfigModule(CoeModule):
    argument_spec = dict(
        cluster=dict(required=True),
        force=dict(type="bool", default=False),
        path=dict(type="path", required=True),
        project=dict(),
        renew_before_hours=dict(type="int", default=1),
        return_content=dict(type="bool", default=False),
        secret_key=dict(no_log=True),
        user=dict(default="kubernetes-admin"),
        validity_hours=dict(type="int", default=24),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = False
    uses_store = True

    def run(self):
        KubeconfigLogic(self).run()


def main():
    ClusterKubeconfigModule()()


if __name__ == "__main__":
    main()
