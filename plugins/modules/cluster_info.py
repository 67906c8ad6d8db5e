#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Read clusters, templates and their versions, events and locks from the store
version_added: 0.1.0
description:
  - Returns the clusters of the coe.openstack store (filtered by name, project, status, driver
    or template), the cluster templates with all their versions, the current locks and,
    when asked, the event history of the clusters returned.
  - Reads only the store (what the last M(coe.openstack.cluster_sync) saw); no cloud call.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes.info
options:
  cluster_template:
    description:
      - Only clusters built from this template, and only this template in RV(cluster_templates).
    type: str
  driver:
    description:
      - Only clusters of this driver.
    type: str
    choices: [heat, nova]
  event_limit:
    description:
      - With O(events=true), at most this many of the latest events per cluster.
    type: int
    default: 100
  events:
    description:
      - Also return the event history (operations, status changes, lock breaks) of every cluster
        returned.
    type: bool
    default: false
  name:
    description:
      - Only the cluster with this name.
    type: str
  project:
    description:
      - Only clusters (and locks) of this project key. Every project when not given.
    type: str
  status:
    description:
      - Only clusters in this status, for example C(CREATE_FAILED).
    type: str
seealso:
  - module: coe.openstack.cluster
  - module: coe.openstack.cluster_template
  - module: coe.openstack.cluster_lock
"""

EXAMPLES = r"""
- name: Every cluster, template and lock
  coe.openstack.cluster_info:
  register: coe

- name: One cluster with its history
  coe.openstack.cluster_info:
    name: demo
    events: true
  register: demo_info

- name: Failed clusters of the Nova driver
  coe.openstack.cluster_info:
    driver: nova
    status: CREATE_FAILED
"""

RETURN = r"""
cluster_templates:
  description: The templates (the latest version of each, spec flattened) with their versions.
  returned: always
  type: list
  elements: dict
  sample:
    - name: k8s-small
      version: 2
      uuid: 2b4e0d3c-8c3e-4a4b-9d0e-2f1b8f7b1a11
      driver: heat
      image_id: fedora-coreos-41
      flavor_id: m1.small
      created_at: "2026-11-25T07:40:00+00:00"
      created_by: alice@laptop
      in_use_by: [demo]
      versions:
        - {version: 1, uuid: 9f1c0a52-0000-4000-8000-000000000001, created_at: "2026-11-20T10:00:00+00:00",
           created_by: alice@laptop, spec: {driver: heat, image_id: fedora-coreos-40}, in_use_by: []}
clusters:
  description:
    - The clusters matching the filters, each with the keys RV(coe.openstack.cluster#module:cluster)
      documents (Magnum's field names and openstack.cloud's beside them); the sample shows some.
  returned: always
  type: list
  elements: dict
  sample:
    - uuid: 0f2b6c1e-1111-2222-3333-444455556666
      id: 0f2b6c1e-1111-2222-3333-444455556666
      name: demo
      project_id: default
      status: CREATE_COMPLETE
      health_status: HEALTHY
      cluster_template_name: k8s-small
      template_version: 2
      driver: heat
      master_count: 3
      node_count: 5
      api_address: https://172.24.4.30:6443
      floating_ip_enabled: true
      is_floating_ip_enabled: true
      generation: 4
      operation: create
events:
  description:
    - With O(events=true), the history per cluster name, oldest first. Each event has C(at),
      C(kind) (C(cluster) or C(lock)), C(operation), C(from_status), C(to_status), C(message),
      C(generation), C(actor_user), C(actor_host), C(awx_job_id).
  returned: when O(events=true)
  type: dict
  sample:
    demo:
      - {id: 1, at: "2026-11-25T07:40:00+00:00", kind: cluster, target: demo, project: default,
         cluster_uuid: 0f2b6c1e-1111-2222-3333-444455556666, operation: create, from_status: null,
         to_status: CREATE_IN_PROGRESS, message: "create: state absent -> present", generation: 1,
         actor_user: alice, actor_host: laptop, awx_job_id: null}
locks:
  description: The locks currently held (live leases), of O(project) when given.
  returned: always
  type: list
  elements: dict
  sample:
    - {project_id: default, cluster: demo, token: 7, holder: alice@laptop pid 4242, holder_host: laptop,
       holder_pid: 4242, awx_job_id: null, operation: update,
       acquired_at: "2026-11-25T07:40:00+00:00", renewed_at: "2026-11-25T07:40:00+00:00",
       expires_at: "2026-11-25T07:42:00+00:00", held: true, expired: false, holder_gone: false}
"""

from ansible_collections.coe.openstack.plugins.module_utils.clusters import cluster_view, template_view
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class ClusterInfoModule(CoeModule):
    argument_spec = dict(
        cluster_template=dict(),
        driver=dict(choices=["heat", "nova"]),
        event_limit=dict(type="int", default=100),
        events=dict(type="bool", default=False),
        name=dict(),
        project=dict(),
        status=dict(),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = False
    uses_store = True

    def run(self):
        p = self.params
        store = self.store
        with self.action("read the store"):
            clusters = store.list_clusters(
                project=p["project"],
                name=p["name"],
                status=p["status"],
                driver=p["driver"],
                template=p["cluster_template"],
            )
            templates = []
            versions = store.list_templates(p["cluster_template"])
            users = {}
            for record in store.list_clusters():
                users.setdefault((record["cluster_template_name"], record["template_version"]), []).append(
                    record["name"]
                )
            by_name = {}
            for v in versions:
                by_name.setdefault(v["name"], []).append(v)
            for name in sorted(by_name):
                view = template_view(by_name[name][-1])
                view["in_use_by"] = sorted({n for v in by_name[name] for n in users.get((name, v["version"]), [])})
                view["versions"] = [
                    dict(
                        version=v["version"],
                        uuid=v["uuid"],
                        created_at=v["created_at"],
                        created_by=v["created_by"],
                        spec=v["spec"],
                        in_use_by=sorted(users.get((name, v["version"]), [])),
                    )
                    for v in by_name[name]
                ]
                templates.append(view)
            result = dict(
                changed=False,
                clusters=[cluster_view(c) for c in clusters],
                cluster_templates=templates,
                locks=LockManager(store).list(p["project"], held_only=True),
            )
            if p["events"]:
                events = {}
                for c in clusters:
                    rows = store.list_events(cluster_uuid=c["uuid"])
                    rows += store.list_events(kind="lock", target=c["name"], project=c["project_id"])
                    rows.sort(key=lambda e: e["id"])
                    events[c["name"]] = rows[-p["event_limit"] :] if p["event_limit"] > 0 else rows
                result["events"] = events
        self.exit(**result)


def main():
    ClusterInfoModule()()


if __name__ == "__main__":
    main()
