# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The ``cluster_kubeconfig`` module's logic: an admin kubeconfig for a cluster, from the
cluster's CA in the store (pki.py issues and reads the certificates).

A kubeconfig already at the path is kept while it names the same server, user, group and
CA, verifies against that CA and is valid for longer than ``renew_before_hours``; a new one
is written atomically with mode 0600, and the issue is recorded as an event.
"""

from __future__ import annotations

import datetime
import os
import re
import stat

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, pki
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    NotFoundError,
    StateError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic
from ansible_collections.coe.openstack.plugins.module_utils.secrets import existing_secret_key, write_private

DIFF_KEYS = ("path", "server", "user", "groups", "expires_at", "serial", "ca_fingerprint")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class KubeconfigLogic(ModuleLogic):
    """What ``cluster_kubeconfig`` does: find the cluster, keep or issue, write, exit."""

    def run(self):
        p = self.params
        if p["validity_hours"] < 1:
            raise ValidationError("validity_hours", "must be at least 1")
        if not 0 <= p["renew_before_hours"] < p["validity_hours"]:
            raise ValidationError("renew_before_hours", "must be between 0 and validity_hours - 1")
        pki.require_cryptography()
        cluster = self._find_cluster(p["cluster"], p["project"])
        what = "write a kubeconfig for cluster %s" % cluster["name"]
        with self.action(what):
            server = endpoint.api_server_url(cluster.get("api_address"))
            group = pki.admin_group(cluster.get("coe_version"))
            box = existing_secret_key(p["secret_key"], p["state_url"])
            credentials = pki.load_cluster_credentials(self.store, cluster["uuid"], box)
            if credentials is None and cluster.get("adopted"):
                from ansible_collections.coe.openstack.plugins.module_utils.clusters import CREDENTIALS_WAY_OUT

                raise StateError(
                    "cluster %s was adopted from the cloud without its credentials (its CAs lived only in the "
                    "store that made it): a kubeconfig needs the cluster CA to sign its certificate. Way out: %s"
                    % (cluster["name"], CREDENTIALS_WAY_OUT),
                    missing=["credentials"],
                )
            if credentials is None:
                raise NotFoundError(
                    "cluster %s has no credentials in the store (was it created by this collection?)" % cluster["name"]
                )
            path = p["path"]
            existing = None if p["force"] else self._existing(path, cluster, credentials, server, group)
            result = dict(
                path=path,
                cluster=cluster["name"],
                cluster_uuid=cluster["uuid"],
                server=server,
                user=p["user"],
                groups=[group],
                ca_fingerprint=credentials.ca_fingerprint,
            )
            if existing is not None:
                summary, text = existing
                result.update(expires_at=summary["not_after"].isoformat(), serial=summary["serial"])
                changed = self._fix_mode(path)
                if p["return_content"]:
                    result["content"] = text
                self.exit(changed=changed, kubeconfig=result)

            before = self._before(path)
            if self.check_mode:
                expires = min(
                    pki.utcnow() + datetime.timedelta(hours=p["validity_hours"]), credentials.ca.not_after
                ).isoformat()
                result.update(expires_at=expires, serial="")
                self.exit(changed=True, kubeconfig=result, diff=dict(before=before, after=self._after(result)))

            issued = pki.issue_admin_certificate(
                credentials,
                cluster["coe_version"],
                user=p["user"],
                validity=datetime.timedelta(hours=p["validity_hours"]),
            )
            text = pki.kubeconfig(
                cluster["name"], server, credentials.ca.cert_pem, issued.cert_pem, issued.key_pem, p["user"]
            )
            write_private(path, text, prefix=".kubeconfig-")
            serial = pki.certificate_summary(issued.cert_pem)["serial"]
            result.update(expires_at=issued.not_after.isoformat(), serial=serial)
            self.store.add_event(
                "cluster",
                cluster["name"],
                project=cluster.get("project_id"),
                cluster_uuid=cluster["uuid"],
                operation="kubeconfig",
                message="admin kubeconfig issued to %s (%s), serial %s, expires %s"
                % (p["user"], group, serial, result["expires_at"]),
            )
            if p["return_content"]:
                result["content"] = text
            self.exit(changed=True, kubeconfig=result, diff=dict(before=before, after=self._after(result)))

    def _find_cluster(self, ref, project):
        if UUID_RE.match(ref):
            return self.store.get_cluster(ref.lower())
        found = self.store.list_clusters(project=project, name=ref)
        if not found:
            raise NotFoundError(
                "Cluster %s does not exist in the store%s" % (ref, " in project %s" % project if project else ""),
                field="cluster",
            )
        if len(found) > 1:
            raise ValidationError(
                "cluster",
                "%d clusters are named %s (projects %s): give project or the cluster's UUID"
                % (len(found), ref, ", ".join(sorted(c.get("project_id") or "?" for c in found))),
            )
        return found[0]

    def _existing(self, path, cluster, credentials, server, group):
        """(summary, text) of a kubeconfig at ``path`` that can be kept, or None."""
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
            parsed = pki.read_kubeconfig(text)
            summary = pki.certificate_summary(parsed["cert_pem"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        now = pki.utcnow()
        keep = (
            parsed["ca_pem"] == credentials.ca.cert_pem
            and parsed["server"] == server
            and parsed["cluster_name"] == cluster["name"]
            and parsed["user"] == self.params["user"]
            and summary["common_name"] == self.params["user"]
            and summary["groups"] == [group]
            and summary["not_before"] <= now
            and summary["not_after"] - now > datetime.timedelta(hours=self.params["renew_before_hours"])
            and pki.verify_issued_by(parsed["cert_pem"], credentials.ca.cert_pem)
            and pki.key_matches_certificate(parsed["key_pem"], parsed["cert_pem"])
        )
        return (summary, text) if keep else None

    def _fix_mode(self, path):
        if stat.S_IMODE(os.stat(path).st_mode) == 0o600:
            return False
        if not self.check_mode:
            os.chmod(path, 0o600)
        return True

    def _before(self, path):
        try:
            with open(path, encoding="utf-8") as handle:
                parsed = pki.read_kubeconfig(handle.read())
            summary = pki.certificate_summary(parsed["cert_pem"])
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return dict(path=path)
        return dict(
            path=path,
            server=parsed["server"],
            user=summary["common_name"],
            groups=summary["groups"],
            expires_at=summary["not_after"].isoformat(),
            serial=summary["serial"],
            ca_fingerprint=pki.certificate_fingerprint(parsed["ca_pem"]),
        )

    @staticmethod
    def _after(result):
        return {k: v for k, v in result.items() if k in DIFF_KEYS}
