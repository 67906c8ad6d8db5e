# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The ``store_backup`` and ``store_restore`` modules' logic: options -> store/export.py -> exit.

Nothing here decrypts a secret into a file or an output: results name templates, clusters,
uuids and counts, never a credential.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic
from ansible_collections.coe.openstack.plugins.module_utils.secrets import existing_secret_key
from ansible_collections.coe.openstack.plugins.module_utils.store import export


class BackupLogic(ModuleLogic):
    """``store_backup``: write the store's export to ``path`` (0600, atomically), or keep it."""

    def run(self):
        p = self.params
        with self.action("back up the store to %s" % p["path"]):
            box = existing_secret_key(p["secret_key"], p["state_url"])
            previous = export.load_document(p["path"])
            document = export.build_export(self.store, box, previous=previous)
            changed, mode = export.write_export(p["path"], document, check_mode=self.check_mode)
        written = changed and not export.same_content(previous, document)
        result = dict(export.summary(document, p["path"]), mode="0600", written=written)
        if mode is not None and mode != 0o600:
            result["mode_before"] = "%04o" % mode
        self.exit(
            changed=changed,
            backup=result,
            diff=dict(before=export.summary(previous, p["path"]), after=export.summary(document, p["path"])),
        )


class RestoreLogic(ModuleLogic):
    """``store_restore``: add what the export at ``path`` has and the store lacks."""

    def run(self):
        p = self.params
        with self.action("restore the store from %s" % p["path"]):
            box = existing_secret_key(p["secret_key"], p["state_url"])
            found = export.read_export(p["path"], box)
            plan = export.plan_restore(self.store, box, found)
            if not self.check_mode:
                plan.apply(self.store)
        if found.mode is not None and found.mode & 0o077:
            self.warn(
                "The export %s can be read by other users (mode %04o): it holds the clusters' credentials "
                "(encrypted). Run chmod 600 %s." % (p["path"], found.mode, p["path"])
            )
        document = found.document
        self.exit(
            changed=plan.changed,
            restore=dict(
                path=p["path"],
                exported_at=document["exported_at"],
                source=document["source"],
                schema_version=found.schema_version,
                templates=plan.templates,
                clusters=plan.clusters,
                events=len(plan.rows["coe_events"]),
            ),
            diff=dict(before=plan.before, after=plan.after()),
        )
