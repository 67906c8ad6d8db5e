#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_sync
short_description: Observe clusters in the cloud and record what was seen
version_added: 0.1.0
description:
  - Runs each driver's state synchroniser on one cluster, or on every cluster of the store (or of
    a O(project)), grouped by driver so that the number of API calls does not grow with the
    number of clusters, and writes what was observed - status, reason, faults, addresses, nodes,
    nodegroup states, health - to each record by compare-and-set on its generation.
  - Every cluster is synchronised whatever its status, so drift (a node deleted out of band) is
    seen on complete clusters too.
  - An event is appended to the history when a status changes. The module reports C(changed)
    only when a record changed.
  - Stuck detection - an operation C(*_IN_PROGRESS) for longer than the cluster's timeout
    becomes C(*_FAILED) with a reason saying so.
  - A cluster being deleted whose resources are all gone (C(DELETE_COMPLETE)) has its record
    removed; its events stay.
  - With O(lock_token) (one cluster only), the lease is renewed first and a stale token refuses
    the sync before anything is written. Long waits call this module in a loop, which keeps the
    lease alive.
  - The mapping of cloud state onto Magnum's statuses is each driver's (C(heat), C(nova)).
  - Without O(name), the clusters the cloud has that no record of this store owns are reported
    in RV(orphans) (one list call per resource kind), never deleted.
  - With O(fail_reason) (after the runner's driver failed), a cluster still C(*_IN_PROGRESS) once
    observed, on which the cloud does no work (no Heat stack C(*_IN_PROGRESS), no server building
    or otherwise changing), becomes C(*_FAILED) with that reason, instead of waiting for its
    timeout. Re-running the same operation unchanged stays allowed.
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
  fail_reason:
    description:
      - Why the runner's driver failed (the failed task's message). After the observation, when
        cluster O(name) is still C(*_IN_PROGRESS) and its driver's synchroniser sees the cloud do
        no work on it, its status becomes the matching C(*_FAILED) and C(status_reason) this text
        (under the lock, fenced by O(lock_token)). Nothing changes when the cloud still works on
        it or its status is settled.
      - Needs O(lock_token).
    type: str
  lock_token:
    description:
      - The fencing token of the lock held on cluster O(name); the lease is renewed by
        O(lock_ttl) and a stale token is refused. Needs O(name).
    type: int
  lock_ttl:
    description:
      - Seconds the lease is extended by when O(lock_token) is given.
    type: int
    default: 120
  name:
    description:
      - The cluster to synchronise. All clusters (of O(project), when given) when not given.
    type: str
  project:
    description:
      - The project key of the clusters in the store. With O(name), defaults to the environment
        variable C(COE_PROJECT), then C(default); without O(name), not given means every project.
    type: str
  release:
    description:
      - With O(lock_token), release the lease when the operation came out C(*_COMPLETE) (the
        front door's last poll then is its release too). A cluster still in progress or failed
        keeps it. RV(lock_released) says whether it was released.
    type: bool
    default: false
  watch:
    description:
      - Seconds to go on watching cluster O(name) while its operation is C(*_IN_PROGRESS). It
        is looked at again every second (one cheap read where the driver has one, Heat's stack
        status, else a whole observation) and the module returns as soon as the operation
        leaves C(*_IN_PROGRESS), or when the time is up with what it saw last. C(0) observes once.
      - Needs O(name); with O(lock_token), at most a third of O(lock_ttl) (the lease is renewed
        by each observation).
    type: int
    default: 0
  timeout:
    description:
      - Not used by this module (one observation per run).
    type: int
    default: 3600
  wait:
    description:
      - Not used by this module (one observation per run; loop over it to wait).
    type: bool
    default: true
seealso:
  - module: coe.openstack.cluster
  - module: coe.openstack.cluster_info
"""

EXAMPLES = r"""
- name: Synchronise every cluster in the store (an AWX schedule)
  coe.openstack.cluster_sync:
    cloud: devstack

- name: After the driver failed, record the failure unless the cloud still works on the cluster
  coe.openstack.cluster_sync:
    cloud: devstack
    name: demo
    lock_token: "{{ demo_lock.lock.token }}"
    fail_reason: "{{ ansible_failed_result.msg }}"

- name: Wait for a create while renewing the lease, a progress line every 10 s at most
  coe.openstack.cluster_sync:
    cloud: devstack
    name: demo
    lock_token: "{{ demo_lock.lock.token }}"
    watch: 10
    release: true
  register: demo_sync
  until: demo_sync.clusters[0].status not in ['CREATE_IN_PROGRESS']
  retries: 360
  delay: 0
"""

RETURN = r"""
clusters:
  description:
    - The records after the sync (what would be written, in check mode), each with the keys
      RV(coe.openstack.cluster#module:cluster) documents (Magnum's field names and
      openstack.cloud's beside them); the sample shows some.
  returned: always
  type: list
  elements: dict
  sample:
    - uuid: 0f2b6c1e-1111-2222-3333-444455556666
      id: 0f2b6c1e-1111-2222-3333-444455556666
      name: demo
      status: CREATE_COMPLETE
      status_reason: Stack CREATE completed successfully
      health_status: HEALTHY
      api_address: https://172.24.4.30:6443
      floating_ip_enabled: true
      is_floating_ip_enabled: true
      master_addresses: [10.0.0.5]
      node_addresses: [10.0.0.6, 10.0.0.7]
      stack_id: 5f1e1e0c-4a1b-4e61-9b4c-2d1b9e3c7a10
      generation: 4
      operation: create
lock:
  description: The renewed lease, when O(lock_token) was given.
  returned: when O(lock_token) is given
  type: dict
  sample: {cluster: demo, project_id: default, token: 7, holder: alice@laptop pid 4242, operation: create,
           acquired_at: "2026-11-25T07:40:00+00:00", renewed_at: "2026-11-25T07:45:00+00:00",
           expires_at: "2026-11-25T07:50:00+00:00", held: true, expired: false}
orphans:
  description:
    - Clusters the cloud has (resources tagged or named for a cluster of this collection) that no
      record of this store owns, in any project of the store - twins made from another store,
      clusters of a lost store. Reported, never deleted; adopt them (M(coe.openstack.cluster_adopt))
      or delete them from the store that manages them.
    - C(project_id) is the cloud's project the resources are in; C(resources) names them by kind
      (C(stacks), C(servers), C(server groups), C(security groups), C(floating IPs)).
  returned: when O(name) is not given
  type: list
  elements: dict
  sample: [{uuid: 7d1c2b3a-1111-2222-3333-444455556666, name: prod-a, driver: nova,
            project_id: 5e2b0c7f0d6a4c8e9f1a2b3c4d5e6f70,
            resources: {servers: [prod-a-master-0, prod-a-default-worker-0]}}]
lock_released:
  description: Whether the lease was released (O(release) and the operation came out C(*_COMPLETE)).
  returned: when O(watch) or O(release) is given with O(name)
  type: bool
  sample: true
removed:
  description: Names of clusters whose record was removed because their delete completed.
  returned: always
  type: list
  elements: str
  sample: [old-demo]
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.coe.openstack.plugins.module_utils.locks import DEFAULT_TTL
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule
from ansible_collections.coe.openstack.plugins.module_utils.sync_module import SyncLogic


class ClusterSyncModule(CoeModule):
    argument_spec = dict(
        actor=dict(type="dict"),
        fail_reason=dict(),
        lock_token=dict(type="int", no_log=False),
        lock_ttl=dict(type="int", default=DEFAULT_TTL),
        name=dict(),
        project=dict(fallback=(env_fallback, ["COE_PROJECT"])),
        release=dict(type="bool", default=False),
        watch=dict(type="int", default=0),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_by=dict(lock_token="name", fail_reason="lock_token"),
        required_if=[("release", True, ["lock_token"])],
    )
    uses_cloud = True
    uses_store = True

    def run(self):
        SyncLogic(self).run()


def main():
    ClusterSyncModule()()


if __name__ == "__main__":
    main()
