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

import datetime
import os
import re
import stat
import tempfile

from ansible_collections.coe.openstack.plugins.module_utils import endpoint, pki
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    NotFoundError,
    SecretError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule
from ansible_collections.coe.openstack.plugins.module_utils.secrets import resolve_secret_key

DIFF_KEYS = ("path", "server", "user", "groups", "expires_at", "serial", "ca_fingerprint")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


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
            box = resolve_secret_key(secret_key=p["secret_key"], state_url=p["state_url"], create=False)
            if box.ephemeral:
                raise SecretError(
                    "no secret key: give secret_key (coe_secret_key), COE_SECRET_KEY or COE_SECRET_KEY_FILE "
                    "(%s does not exist)" % box.source.replace("a key file ", "").replace(" still to be created", "")
                )
            credentials = pki.load_cluster_credentials(self.store, cluster["uuid"], box)
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
            _write_private(path, text)
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


def _write_private(path, text):
    """Replace ``path`` atomically with a file of mode 0600 holding ``text``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main():
    ClusterKubeconfigModule()()


if __name__ == "__main__":
    main()
