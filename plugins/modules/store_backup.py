#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: store_backup
short_description: Write an export of the cluster store (templates, clusters, credentials, history)
version_added: 0.2.0
description:
  - Writes the whole content of the coe.openstack store to one JSON file that
    M(coe.openstack.store_restore) restores, into the same backend or the other (SQLite and
    PostgreSQL alike) - every version of every template, every cluster record, each cluster's
    credentials (its CAs), the event history, and the store's schema version. Locks are not
    exported.
  - The credentials stay encrypted with the key of the store (O(secret_key)), as the store
    keeps them; nothing is decrypted into the file. The key must be the store's, and every
    credential is checked to open with it, so that an export that is written can be restored.
    Keep the key apart from the export; one is useless without the other.
  - The file is written atomically (a temporary file beside it, renamed over it) with mode
    C(0600); a missing folder is created with mode C(0700).
  - Idempotent. A file that already holds the same store content is kept (its mode set to
    C(0600) when it was wider, which is a change); otherwise it is replaced.
  - Reads the store in one transaction, so the export is one state of the store even while
    other runners write. Writes nothing to the store; makes no cloud call.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes
options:
  path:
    description:
      - The export file to write.
    type: path
    required: true
  secret_key:
    description:
      - The key that encrypts the clusters' credentials in the store (C(coe_secret_key)).
      - When not given, the environment variable C(COE_SECRET_KEY), then the file named by
        C(COE_SECRET_KEY_FILE), then (embedded SQLite store only) the file C(secret.key) beside
        the SQLite file.
    type: str
notes:
  - See the page "Operations - losing and rebuilding the store" (docs/operations-store.md).
seealso:
  - module: coe.openstack.store_restore
"""

EXAMPLES = r"""
- name: Back up the store the environment names (COE_STATE_URL, COE_SECRET_KEY)
  coe.openstack.store_backup:
    path: /var/backups/coe/store.json

- name: Back up a shared store, key from Ansible Vault
  coe.openstack.store_backup:
    path: "/var/backups/coe/store-{{ now(utc=true, fmt='%Y%m%d') }}.json"
    state_url: postgresql://coe@db.example.com/coe
    secret_key: "{{ vault_coe_secret_key }}"
"""

RETURN = r"""
backup:
  description: What the export holds (or would hold, in check mode); no secret.
  returned: success
  type: dict
  contains:
    clusters:
      description: The clusters exported, as C(project/name (uuid)).
      type: list
      elements: str
      sample: ["default/prod-a (0f2b6c1e-1111-2222-3333-444455556666)"]
    credentials:
      description: How many clusters' credentials are in the export.
      type: int
      sample: 1
    events:
      description: How many history events are in the export.
      type: int
      sample: 42
    exported_at:
      description: When the store was read (ISO 8601, UTC).
      type: str
      sample: "2026-12-02T01:30:00+00:00"
    mode:
      description: The file's mode.
      type: str
      sample: "0600"
    mode_before:
      description: The mode the file had when it was wider than C(0600).
      returned: when the file existed with another mode
      type: str
      sample: "0644"
    path:
      description: The export file.
      type: str
      sample: /var/backups/coe/store.json
    schema_version:
      description: The store's schema version.
      type: int
      sample: 2
    source:
      description: The store exported (without its password).
      type: str
      sample: "postgresql store postgresql://coe:***@db.example.com/coe"
    templates:
      description: The template versions exported, as C(name vVERSION).
      type: list
      elements: str
      sample: ["k8s v1", "k8s v2"]
    written:
      description: Whether the file was (would be) written; false when it already held this content.
      type: bool
      sample: true
"""

from ansible_collections.coe.openstack.plugins.module_utils.backup import BackupLogic
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class StoreBackupModule(CoeModule):
    argument_spec = dict(
        path=dict(type="path", required=True),
        secret_key=dict(no_log=True),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = False
    uses_store = True

    def run(self):
        BackupLogic(self).run()


def main():
    StoreBackupModule()()


if __name__ == "__main__":
    main()
