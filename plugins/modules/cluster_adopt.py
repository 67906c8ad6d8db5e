#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_adopt
short_description: Rebuild the records of clusters the cloud has in a store that lost them
version_added: 0.3.0
description:
  - Looks in the cloud (one list call per resource kind - servers, Heat stacks, server groups,
    security groups, floating IPs - of the connection's project) for the clusters this
    collection made, and writes a record for each one this store does not know - one cluster by
    O(name), or every cluster of the project.
  - The record is rebuilt from what the resources carry - uuid, name, driver (a Heat stack tagged
    with the cluster, else Nova), the template name and version (server metadata
    C(coe_template), C(coe_template_version)), the nodegroups, their counts, flavors and
    keypair, the node names and indices, addresses, the stack id - and the template version
    from this store supplies the rest, so it must be there (declare the templates first). The
    observed part is what the driver's synchroniser sees, as a sync would write it.
  - What the cloud cannot give back is named in RV(missing) and in the record's
    C(status_reason) and C(adopted.missing) - always the cluster's credentials (its CAs lived
    only in the store), its history, who created it, its timeout and label overrides. An adopted
    cluster without its CAs can be scaled in, synchronised and deleted; scale-out, node
    replacement, upgrade and kubeconfig are refused, naming the reason and the way out.
  - Clusters made before 0.3.0 carry no template name and version; give O(cluster_template)
    and O(cluster_template_version) for them (a cluster that carries them keeps its own).
  - Refused before anything is written, naming what was found - a name the cloud does not have;
    two clusters of the same name in the cloud (both uuids named); a name this store already
    uses for another uuid; a template version the store lacks. A cluster this store already
    manages is left as it is and named in RV(already_managed).
  - This is an option of no other module because it is the only thing that makes a record
    from the cloud rather than from a user's desired spec; M(coe.openstack.cluster_sync) only
    writes what it sees into records that exist (and reports orphans), so adopting needs its
    own module.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.openstack
  - coe.openstack.store
  - coe.openstack.attributes
options:
  actor:
    description:
      - Who is acting, recorded in the event history. Keys C(user), C(host), C(awx_job_id).
    type: dict
  cluster_template:
    description:
      - The template name of the clusters that carry none (made before 0.3.0). Needs
        O(cluster_template_version).
    type: str
  cluster_template_version:
    description:
      - The template version of the clusters that carry none. Needs O(cluster_template).
    type: int
  name:
    description:
      - The cluster to adopt. Every cluster of the cloud's project when not given.
    type: str
  project:
    description:
      - The project key of the adopted clusters in the store.
      - Defaults to the environment variable C(COE_PROJECT), then C(default).
    type: str
  secret_key:
    description:
      - With O(store_export), the key of the store the export was written from
        (C(coe_secret_key)); this store's key must be the same one (a store without clusters'
        credentials yet takes it).
      - When not given, the environment variable C(COE_SECRET_KEY), then the file named by
        C(COE_SECRET_KEY_FILE), then (embedded SQLite store only) the file C(secret.key) beside
        the SQLite file.
    type: str
  store_export:
    description:
      - An export written by M(coe.openstack.store_backup) of the store that managed the
        clusters. The credentials (CAs) it has for each cluster adopted, and for each cluster
        this store manages already without them, are restored into this store (still
        encrypted), so that scale-out, node replacement, upgrade and kubeconfig work; they are
        then not in RV(missing). Matched by the cluster's uuid.
      - Read and checked before the cloud is looked at, and refused before anything is written
        when it is missing, is not an export, comes from a newer schema or was written with
        another key than O(secret_key). Only credentials are taken from it; to restore records
        and history too, use M(coe.openstack.store_restore).
    type: path
  timeout:
    description:
      - Not used by this module (no wait).
    type: int
    default: 3600
  wait:
    description:
      - Not used by this module (no wait).
    type: bool
    default: true
seealso:
  - module: coe.openstack.cluster_sync
  - module: coe.openstack.cluster
"""

EXAMPLES = r"""
- name: Adopt cluster prod-a into a new store
  coe.openstack.cluster_adopt:
    cloud: devstack
    name: prod-a
    state_url: sqlite:////var/lib/coe/new.db

- name: Adopt cluster prod-a with its credentials from an export of the lost store
  coe.openstack.cluster_adopt:
    cloud: devstack
    name: prod-a
    store_export: /var/backups/coe/store.json
    secret_key: "{{ vault_coe_secret_key }}"

- name: Adopt every cluster of the project, those made before 0.3.0 with the template given
  coe.openstack.cluster_adopt:
    cloud: devstack
    cluster_template: k8s-heat
    cluster_template_version: 2
"""

RETURN = r"""
adopted:
  description: Names of the clusters adopted (that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [prod-a]
already_managed:
  description: The clusters found that this store already manages (left as they are).
  returned: always
  type: list
  elements: dict
  sample: [{name: prod-a, uuid: 0f2b6c1e-1111-2222-3333-444455556666, project_id: default}]
credentials_restored:
  description:
    - Per cluster, the names of the credentials restored from O(store_export) (that would be, in
      check mode); clusters adopted or managed already.
  returned: always
  type: dict
  sample: {prod-a: [pki]}
clusters:
  description:
    - The adopted records, each with the keys RV(coe.openstack.cluster#module:cluster) documents,
      plus C(adopted) (C(at), C(by), C(missing)).
  returned: always
  type: list
  elements: dict
  sample:
    - uuid: 0f2b6c1e-1111-2222-3333-444455556666
      name: prod-a
      status: CREATE_COMPLETE
      status_reason: "adopted from the cloud; not recovered: credentials; history and who created it"
      driver: nova
      template_version: 2
missing:
  description: Per adopted cluster, what the cloud could not give back.
  returned: always
  type: dict
  sample: {prod-a: ["credentials (the cluster's CAs lived only in the store ...)"]}
msg:
  description: Says that there was nothing to adopt because this store already manages the clusters.
  returned: when nothing was adopted and a cluster found is managed already
  type: str
  sample: "nothing to adopt: this store already manages prod-a (uuid 0f2b6c1e-..., project default)"
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.coe.openstack.plugins.module_utils.adoption import AdoptLogic
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class ClusterAdoptModule(CoeModule):
    argument_spec = dict(
        actor=dict(type="dict"),
        cluster_template=dict(),
        cluster_template_version=dict(type="int"),
        name=dict(),
        project=dict(fallback=(env_fallback, ["COE_PROJECT"])),
        secret_key=dict(no_log=True),
        store_export=dict(type="path"),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = True
    uses_store = True

    def run(self):
        AdoptLogic(self).run()


def main():
    ClusterAdoptModule()()


if __name__ == "__main__":
    main()
