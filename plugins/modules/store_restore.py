#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: store_restore
short_description: Restore an export of the cluster store (templates, clusters, credentials, history)
version_added: 0.2.0
description:
  - Restores what an export written by M(coe.openstack.store_backup) holds into the store
    O(state_url) names, SQLite or PostgreSQL, whichever backend it was exported from.
  - Before anything is written, the export is checked and refused, naming the file and the
    reason, when it is missing, is not an export, is damaged, comes from a newer schema than
    this collection's (the rule the store follows for itself), or was written with another
    secret key (every credential in it must open with O(secret_key)); the store's own key must
    be the same key.
  - Adds only what the store lacks, in one transaction, and never overwrites. Into an empty store
    everything is restored, the whole history included. Into a store that already has templates
    or clusters, what it has is kept - a template version with the same spec, and a cluster whose
    uuid it has (its record stays; the credentials it lacks are added, for a cluster adopted from
    the cloud). Each template version and cluster is named in the result with what was done. A
    template version the store has with another spec, or a cluster name that the store gives to
    another uuid, refuses the whole restore, naming each; nothing is written.
  - No lock is restored; the restored store holds no lease. A cluster exported during an
    operation keeps its C(*_IN_PROGRESS) status until the next sync
    (M(coe.openstack.cluster_sync)) compares it with the cloud; run one after a restore.
  - Idempotent. Restoring the same export again changes nothing. Makes no cloud call.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes
options:
  path:
    description:
      - The export file to restore. A file that other users can read is restored with a warning.
    type: path
    required: true
  secret_key:
    description:
      - The key of the store the export was written from (C(coe_secret_key)); the restored store
        uses it from then on.
      - When not given, the environment variable C(COE_SECRET_KEY), then the file named by
        C(COE_SECRET_KEY_FILE), then (embedded SQLite store only) the file C(secret.key) beside
        the SQLite file. None is ever generated here.
    type: str
notes:
  - See the page "Operations - losing and rebuilding the store" (docs/operations-store.md).
seealso:
  - module: coe.openstack.store_backup
  - module: coe.openstack.cluster_sync
"""

EXAMPLES = r"""
- name: Restore an export into a new SQLite store
  coe.openstack.store_restore:
    path: /var/backups/coe/store.json
    state_url: sqlite:///var/lib/coe/coe.db
    secret_key: "{{ vault_coe_secret_key }}"

- name: See what a restore would add, without writing
  coe.openstack.store_restore:
    path: /var/backups/coe/store.json
  check_mode: true
  register: coe_restore_plan
"""

RETURN = r"""
restore:
  description: What was restored (or would be, in check mode); no secret.
  returned: success
  type: dict
  contains:
    clusters:
      description:
        - Every cluster of the export, with C(name), C(project), C(uuid), C(status),
          C(credentials) (the names of the credentials restored) and C(action) -
          C(restored) (its record, credentials and history were added), C(present) (the store
          has it; nothing done) or C(credentials) (the store has its record but lacked the
          credentials restored).
      type: list
      elements: dict
      sample:
        - {name: prod-a, project: default, uuid: 0f2b6c1e-1111-2222-3333-444455556666,
           status: CREATE_COMPLETE, action: restored, credentials: [pki]}
    events:
      description: How many history events of the export were restored.
      type: int
      sample: 42
    exported_at:
      description: When the export was written (ISO 8601, UTC).
      type: str
      sample: "2026-12-02T01:30:00+00:00"
    path:
      description: The export file.
      type: str
      sample: /var/backups/coe/store.json
    schema_version:
      description: The schema version of the store the export was written from.
      type: int
      sample: 2
    source:
      description: The store the export was written from (without its password).
      type: str
      sample: "sqlite store sqlite:///home/alice/.local/state/coe.openstack/coe.db"
    templates:
      description:
        - Every template version of the export, with C(name), C(version), C(uuid) and C(action),
          C(restored) or C(present).
      type: list
      elements: dict
      sample:
        - {name: k8s, version: 1, uuid: 4d3c2b1a-0000-1111-2222-333344445555, action: restored}
"""

from ansible_collections.coe.openstack.plugins.module_utils.backup import RestoreLogic
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class StoreRestoreModule(CoeModule):
    argument_spec = dict(
        path=dict(type="path", required=True),
        secret_key=dict(no_log=True),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = False
    uses_store = True

    def run(self):
        RestoreLogic(self).run()


def main():
    StoreRestoreModule()()


if __name__ == "__main__":
    main()
