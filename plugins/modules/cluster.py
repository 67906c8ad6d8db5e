#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster
short_description: Declare a cluster's desired state and get the operation a driver must run
version_added: 0.1.0
description:
  - Records the desired state of a Kubernetes cluster in the coe.openstack store (template and
    version, master and worker counts, extra nodegroups, nodes to remove, labels, flavors,
    timeout) and says which operation the driver must run to get there - C(create), C(update)
    (scale, nodegroups, removal of named nodes, labels), C(upgrade) (another template version,
    nodes replaced in batches), C(delete) - or C(none).
  - The state machine is checked before anything else; a refused operation fails at once with
    the cluster's status, the operation asked and the lock holder if any. Update and upgrade
    are allowed from C(*_COMPLETE); resize also from C(UPDATE_FAILED); after a failed upgrade,
    retrying it or rolling back to the previous version is allowed; delete from any status,
    unless somebody else's live lock holds a delete. docs/state-machine.md draws the table.
  - A recorded operation moves the cluster to C(*_IN_PROGRESS). The driver roles then act on
    the cloud and M(coe.openstack.cluster_sync) records what they achieved. Re-running the same
    task on a cluster whose operation is in progress or failed re-runs that operation
    (resume, retry) where the state machine allows it; on a complete cluster it changes nothing.
  - Options that are not given (except O(timeout)) keep the recorded value on an existing
    cluster (an existing cluster is never moved to the latest template version unless asked).
  - Names are unique per O(project); a retried create never makes a second cluster.
  - With O(lock_token), every write is fenced; a stale token is refused by the store. Without
    it, the module refuses to change a cluster somebody else has locked.
  - The plan is made on what the cloud has now, not on the record as the last sync left it. On
    an existing cluster whose status is settled (C(*_COMPLETE), C(*_FAILED)), the driver's
    synchroniser observes the cluster first (two or three list calls, no cloud write) and the
    plan is made on the record with that observation folded in, so that nodes deleted or gone
    into C(ERROR) behind our back are repaired by the same run. When something is recorded,
    the observation is written first (fenced by O(lock_token)), then the operation; in check
    mode, or with nothing to record, nothing is written. Bad input, a stale O(lock_token) and
    another runner's lock are refused before the cloud is called.
  - The cloud is not called for a create, a delete without O(force), an operation in progress
    (it is resumed) or a failed create the cloud never saw a node of. With O(force=true), the
    driver's synchroniser is asked whether anything of the cluster is left.
  - A cloud that does not answer fails the task with a message naming the cloud, before
    anything is written.
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
      - Defaults to the local user, the host name and the AWX job id from the environment
        (C(JOB_ID)).
    type: dict
  cluster_template:
    description:
      - Name of the cluster template. Required to create a cluster.
      - Another template than the recorded one is an upgrade (the driver must be the same).
    type: str
  cluster_template_version:
    description:
      - Template version. When creating, the latest; on an existing cluster, the recorded one.
      - Another version than the recorded one is an upgrade, which must change nothing else.
    type: int
  converge:
    description:
      - With O(lock), carry out the recorded operation in this same module process, as the
        cluster's driver role would - the Nova driver's create, update, upgrade and delete, as
        M(coe.openstack.nova_servers) (or M(coe.openstack.nova_resources) to delete) would in
        the C(coe.openstack.nova_driver) role, waiting (O(wait)); the Heat driver's, as
        M(coe.openstack.heat_stack) would in the C(coe.openstack.heat_driver) role (with the
        user-data rendered), returning once Heat has the stack operation (the caller watches
        it with M(coe.openstack.cluster_sync)), except a delete, which waits for its clean-up.
        A driver that waited observes and records the cluster and, once the operation is
        complete, releases the lock. It saves a module process, its start-up and its reads.
      - What the driver returned is in RV(converged); a failure of the driver is in
        RV(converge_failed) and does not fail this task, so that the caller's failure path
        records it and releases the lock (what roles/cluster does). Ignored in check mode.
    type: bool
    default: false
  driver_options:
    description:
      - With O(converge), options of the driver's module given by the caller, by driver name;
        the rest comes from the recorded operation. Checked before anything is written.
      - C(nova) - C(concurrency), C(poll_interval), C(fixed_network), C(external_network),
        C(floating_ip), C(master_server_group_policy), C(worker_server_group_policy) (the
        C(nova_driver_*) variables).
      - C(heat) - C(image_update_policy), C(master_image_update_policy), C(pause_time),
        C(server_group_policy) (the C(heat_*) variables of the C(coe.openstack.heat_driver) role).
    type: dict
    default: {}
  flavor_id:
    description:
      - Flavor of the default workers, over the template's. Fixed once the cluster exists.
    type: str
    aliases: [flavor]
  force:
    description:
      - With O(state=absent), remove the record as soon as the driver's synchroniser reports that
        nothing of the cluster is left in the cloud (recovery after a lost or failed delete; the
        removal is logged). When something is left, the cluster is moved to
        C(DELETE_IN_PROGRESS) for the driver to delete, as without O(force).
    type: bool
    default: false
  keypair:
    description:
      - Nova keypair of the nodes, over the template's. Fixed once the cluster exists.
    type: str
  labels:
    description:
      - Labels (string to string) merged over the template's.
    type: dict
  lock:
    description:
      - Take the cluster's lock and record the operation in this one call (the front door's
        first step). The plan is made first, read only; a cluster that needs nothing is left
        alone and unlocked. Otherwise the lock is taken (waiting up to O(lock_timeout) for
        another runner), the plan made again under it and recorded with its fencing token. The
        lease is returned in RV(lock) for the driver and the release
        (M(coe.openstack.cluster_lock) O(state=released)); it is released at once when there
        is nothing for a driver to do, and when this call fails after taking it.
      - Mutually exclusive with O(lock_token).
    type: bool
    default: false
  lock_timeout:
    description:
      - With O(lock), seconds to wait for another runner's lock. C(0) refuses at once, naming the holder.
    type: int
    default: 0
  lock_token:
    description:
      - The fencing token of the cluster's lock (M(coe.openstack.cluster_lock)). Writes carrying
        a token that is not the live lease's are refused.
    type: int
  lock_ttl:
    description:
      - With O(lock), the lease's length in seconds; the driver and the waits renew it. A lease
        whose run (its ansible-playbook process) is gone from this host is taken over at once,
        with a warning naming the dead holder; one on another host when it expires.
    type: int
    default: 120
  master_count:
    description:
      - Number of masters, odd, 1 to 7. C(1) when creating; fixed once the cluster exists.
    type: int
  master_flavor_id:
    description:
      - Flavor of the masters, over the template's. Fixed once the cluster exists.
    type: str
    aliases: [master_flavor]
  name:
    description:
      - Cluster name, a DNS label (lowercase letters, digits, C(-); starting with a letter); node
        host names are C(<name>-<nodegroup>-<index>) and must fit in 63 characters.
    type: str
    required: true
  node_count:
    description:
      - Number of workers in the C(default-worker) nodegroup, 0 to 1000. C(1) when creating.
    type: int
  nodegroups:
    description:
      - Extra worker nodegroups. The whole list (the default nodegroups excluded); a nodegroup
        not listed is removed. Not given keeps the recorded ones.
    type: list
    elements: dict
    suboptions:
      flavor_id:
        description: Flavor of the nodegroup's nodes (the cluster's when not given).
        type: str
        aliases: [flavor]
      image_id:
        description: Image of the nodegroup's nodes (the template's when not given).
        type: str
        aliases: [image]
      labels:
        description: Labels merged over the cluster's.
        type: dict
      max_node_count:
        description: Upper bound of O(nodegroups[].node_count).
        type: int
      min_node_count:
        description: Lower bound of O(nodegroups[].node_count).
        type: int
      name:
        description: Nodegroup name, a DNS label.
        type: str
        required: true
      node_count:
        description: Number of nodes.
        type: int
        default: 1
  require_existing:
    description:
      - Refuse to create the cluster when the store does not know it (the update and upgrade
        playbooks change existing clusters only).
    type: bool
    default: false
  nodes_to_remove:
    description:
      - When lowering a node count, the names of the nodes to remove (as the cloud has them now,
        observed before planning; see the description); other removals take the newest nodes.
      - A node named that the cluster does not have is an error; one already removed by an
        earlier run is ignored, so the task can be re-run.
    type: list
    elements: str
    default: []
  project:
    description:
      - The project key the cluster belongs to in the store; cluster names are unique per project.
      - Use the cloud's project (or cloud name) when several projects share one store.
      - Defaults to the environment variable C(COE_PROJECT), then C(default).
    type: str
  secret_key:
    description:
      - The key that encrypts the cluster's credentials (its CAs and service-account key) in the store.
      - Defaults to the environment variable C(COE_SECRET_KEY), then the file named by C(COE_SECRET_KEY_FILE),
        then, for the embedded SQLite store only, C(secret.key) beside the store file (created with mode 0600).
      - A key other than the one the store was first used with is refused before anything is written.
      - With O(state=present), the cluster's credentials are created at the first create, update or upgrade.
    type: str
  state:
    description:
      - C(present) records the desired state; C(absent) asks for the cluster's deletion.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description:
      - Operation timeout in seconds (create, update and delete alike), 60 to 604800. An
        operation in progress for longer becomes C(*_FAILED) at the next sync.
      - A new value is recorded without running any operation.
    type: int
    default: 3600
  upgrade_batch_size:
    description:
      - Nodes replaced at once during an upgrade. C(1) when creating.
    type: int
  wait:
    description:
      - With O(converge), whether the driver waits for the cloud to finish the operation;
        otherwise not used (the driver roles wait, with M(coe.openstack.cluster_sync)).
    type: bool
    default: true
seealso:
  - module: coe.openstack.cluster_template
  - module: coe.openstack.cluster_lock
  - module: coe.openstack.cluster_sync
  - module: coe.openstack.cluster_info
"""

EXAMPLES = r"""
- name: Plan, lock and record a create in one call (what roles/cluster does)
  coe.openstack.cluster:
    name: demo
    cluster_template: k8s-small
    node_count: 2
    lock: true
  register: demo_record

- name: Take the cluster's lock
  coe.openstack.cluster_lock:
    name: demo
    operation: create
  register: demo_lock

- name: Declare a cluster with three masters and five workers
  coe.openstack.cluster:
    name: demo
    cluster_template: k8s-small
    master_count: 3
    node_count: 5
    labels:
      monitoring_enabled: "true"
    lock_token: "{{ demo_lock.lock.token }}"
  register: demo

- name: Scale in, removing one named node
  coe.openstack.cluster:
    name: demo
    node_count: 4
    nodes_to_remove: [demo-default-worker-2]

- name: Upgrade to version 2 of the template (check mode shows the plan)
  coe.openstack.cluster:
    name: demo
    cluster_template: k8s-small
    cluster_template_version: 2
  check_mode: true

- name: Ask for deletion
  coe.openstack.cluster:
    name: demo
    state: absent

- name: Drop the record of a cluster whose resources are already gone from the cloud
  coe.openstack.cluster:
    cloud: devstack
    name: demo
    state: absent
    force: true
"""

RETURN = r"""
cluster:
  description:
    - The cluster record after this run (what would be written, in check mode), with Magnum's
      field names, the names that openstack.cloud's coe_cluster module returns
      L(openstack.cloud.coe_cluster,https://docs.ansible.com/ansible/latest/collections/openstack/cloud/coe_cluster_module.html)
      beside them (C(id),
      C(is_floating_ip_enabled), C(is_master_lb_enabled)), so that a playbook written against
      openstack.cloud reads it unchanged, plus ours. M(coe.openstack.cluster_sync),
      M(coe.openstack.cluster_info) and the C(coe_cluster) fact of the playbooks return the same.
    - None when there is no cluster (O(state=absent) on an unknown name).
  returned: always
  type: dict
  contains:
    api_address:
      description:
        - The Kubernetes API, Magnum's C(https://ADDR:6443); None until the cloud has it.
        - The floating IP when the template has an external network and does not say
          C(floating_ip_enabled=false) (Magnum's default), else the first master's fixed IP.
      type: str
      sample: https://172.24.4.30:6443
    cluster_template_id:
      description: UUID of the template version in use.
      type: str
      sample: 2b4e0d3c-8c3e-4a4b-9d0e-2f1b8f7b1a11
    cluster_template_name:
      description: Name of the template.
      type: str
      sample: k8s-small
    coe_version:
      description: The Kubernetes version the cluster runs (from the masters, else the template).
      type: str
      sample: v1.30.4
    container_version:
      description: Magnum's container runtime version; always None (not reported).
      type: str
    create_timeout:
      description: The operation timeout in minutes (Magnum's name; C(timeout) in seconds).
      type: int
      sample: 60
    created_at:
      description: When the record was created (UTC, ISO 8601).
      type: str
      sample: "2026-11-25T07:40:00+00:00"
    discovery_url:
      description: Magnum's etcd discovery URL; always None (nodes join through kubeadm).
      type: str
    docker_volume_size:
      description: The template's container storage volume size in GiB, or None.
      type: int
    driver:
      description: C(heat) or C(nova), from the template.
      type: str
      sample: heat
    faults:
      description: Node or resource name to the reason the cloud gave for its failure.
      type: dict
      sample: {}
    fixed_network:
      description: The template's network of the nodes.
      type: str
      sample: private
    fixed_subnet:
      description: The template's subnet of the nodes, or None.
      type: str
    flavor_id:
      description: Flavor of the workers.
      type: str
      sample: m1.small
    floating_ip_enabled:
      description:
        - Whether the API is a floating IP, decided at create (None in records written by 0.1.0).
      type: bool
      sample: true
    generation:
      description: The record's write counter (every write adds one).
      type: int
      sample: 1
    health_status:
      description: C(HEALTHY), C(UNHEALTHY) or C(UNKNOWN), from the last observation.
      type: str
      sample: UNKNOWN
    health_status_reason:
      description: What is unhealthy, per node, nodegroup or C(cluster).
      type: dict
      sample: {}
    id:
      description: The cluster's UUID (openstack.cloud's name for C(uuid)).
      type: str
      sample: 0f2b6c1e-1111-2222-3333-444455556666
    image_id:
      description: Image of the nodes.
      type: str
      sample: fcos
    is_floating_ip_enabled:
      description: C(floating_ip_enabled) under openstack.cloud's name.
      type: bool
      sample: true
    is_master_lb_enabled:
      description: C(master_lb_enabled) under openstack.cloud's name.
      type: bool
    keypair:
      description: Nova keypair of the nodes.
      type: str
      sample: ops
    labels:
      description: The cluster's labels (the template's with the cluster's own merged over them).
      type: dict
      sample: {kube_tag: v1.30.4, monitoring_enabled: "true"}
    master_addresses:
      description: Fixed IPs of the masters.
      type: list
      elements: str
      sample: [10.0.0.5, 10.0.0.6, 10.0.0.7]
    master_count:
      description: Number of masters.
      type: int
      sample: 3
    master_flavor_id:
      description: Flavor of the masters.
      type: str
      sample: m1.medium
    master_lb_enabled:
      description: The template's C(master_lb_enabled), or None.
      type: bool
    name:
      description: The cluster's name.
      type: str
      sample: demo
    node_addresses:
      description: Fixed IPs of the workers, every worker nodegroup.
      type: list
      elements: str
      sample: [10.0.0.8, 10.0.0.9]
    node_count:
      description: Number of workers in C(default-worker).
      type: int
      sample: 5
    nodegroups:
      description:
        - One entry per nodegroup, masters first - C(name), C(role), C(node_count), C(flavor_id),
          C(image_id), C(labels), C(min_node_count), C(max_node_count), C(status),
          C(status_reason), C(node_addresses), C(nodes) (C(name), C(id), C(status),
          C(addresses), C(image_id), C(fault)), C(observed_node_count), C(last_index).
      type: list
      elements: dict
      sample:
        - {name: default-master, role: master, node_count: 3, flavor_id: m1.medium, image_id: fcos,
           labels: {}, min_node_count: null, max_node_count: null, status: null, status_reason: null,
           node_addresses: [], nodes: []}
    operation:
      description: The last operation recorded (C(create), C(update), C(upgrade), C(delete)).
      type: str
      sample: create
    operation_started_at:
      description: When that operation was recorded.
      type: str
      sample: "2026-11-25T07:40:00+00:00"
    plan:
      description: The last plan recorded (see RV(plan)).
      type: dict
    previous_template_version:
      description: The template version before the last upgrade (what a rollback goes back to).
      type: int
    project_id:
      description: The project key of the cluster in the store.
      type: str
      sample: default
    removed_nodes:
      description: Every node name a scale-in took out (an index is never reused).
      type: list
      elements: str
      sample: [demo-default-worker-2]
    runner_failure:
      description:
        - True when the last operation failed in the runner while the cloud did no work on it
          (so re-running it unchanged is allowed); absent otherwise.
      type: bool
    stack_id:
      description: The Heat stack's id (Heat driver), None with the Nova driver.
      type: str
    status:
      description: Magnum's status.
      type: str
      sample: CREATE_IN_PROGRESS
    status_reason:
      description: Why the cluster is in that status.
      type: str
      sample: create requested
    status_updated_at:
      description: When the status last changed.
      type: str
      sample: "2026-11-25T07:40:00+00:00"
    template:
      description: The spec of the template version in use.
      type: dict
    template_version:
      description: The template version in use (also as C(version)).
      type: int
      sample: 1
    timeout:
      description: The operation timeout in seconds.
      type: int
      sample: 3600
    updated_at:
      description: When the record was last written.
      type: str
      sample: "2026-11-25T07:40:00+00:00"
    upgrade_batch_size:
      description: Nodes replaced at once during an upgrade.
      type: int
      sample: 1
    user_id:
      description: Who created the cluster, as the store's events name them (not a Keystone id).
      type: str
      sample: alice
    uuid:
      description: The cluster's UUID.
      type: str
      sample: 0f2b6c1e-1111-2222-3333-444455556666
    version:
      description: C(template_version) again.
      type: int
      sample: 1
converged:
  description:
    - With O(converge), what the driver returned (M(coe.openstack.nova_servers)' return, or
      M(coe.openstack.nova_resources)' for a delete; M(coe.openstack.heat_stack)'s), with
      C(finished) when the driver waited (the cluster observed and recorded after the
      operation, and whether the lock was released). None when the driver did not run in
      this process.
  returned: always
  type: dict
  sample: {changed: true, created: [demo-default-worker-3], deleted: [],
           finished: {lock_token: 7, lock_released: true, cluster: {status: UPDATE_COMPLETE}}}
converge_failed:
  description:
    - With O(converge), why the driver failed (C(msg), with the cloud's reasons, such as
      C(faults)); the task itself does not fail, the lock is still held. None otherwise.
  returned: always
  type: dict
  sample: {msg: "server demo-default-worker-3 went into ERROR: No valid host was found."}
lock:
  description:
    - With O(lock), the lease this call took and the caller now holds (C(token), C(holder),
      C(operation), C(expires_at), ...); None when nothing was locked (nothing to do) or the
      lease was released again. C(taken_over) is the history's note of the lease it took over
      (an expired one, or one whose run is gone from this host), None when the lock was free.
  returned: always
  type: dict
  sample: {token: 7, holder: "ops@runner-1 pid 4242", operation: update, held: true,
           expires_at: "2026-11-25T07:42:00+00:00", taken_over: null}
lock_waited:
  description:
    - With O(lock) and O(lock_timeout), when this call waited for another runner's lock - its
      C(holder), C(operation) and how many C(seconds) it waited. None otherwise.
  returned: always
  type: dict
  sample: {holder: "alice@runner-1 pid 23 (AWX job 4711)", operation: create, seconds: 12.5}
diff:
  description: The desired state before and after (with C(--diff)).
  returned: when diff mode is on
  type: dict
  sample: {before: {node_count: 5}, after: {node_count: 4}}
operation:
  description: The operation the driver must run now - C(create), C(update), C(upgrade), C(delete) or C(none).
  returned: always
  type: str
  sample: update
plan:
  description:
    - What the operation does. C(action) is the state-machine action (C(create), C(update),
      C(resize), C(upgrade), C(delete)); C(retry) says the recorded operation is re-run;
      C(changes) lists field changes; C(nodegroups) gives, per nodegroup, the node counts
      C(before) and C(after), how many nodes to C(add) and the nodes to C(remove);
      C(from_version)/C(to_version) and C(from_template)/C(to_template) describe an upgrade.
  returned: always
  type: dict
  sample:
    operation: update
    action: resize
    retry: false
    changes: [{field: nodegroups.default-worker.node_count, before: 5, after: 4}]
    nodegroups: {default-worker: {before: 5, after: 4, add: 0, remove: [demo-default-worker-2]}}
    nodes_to_remove: [demo-default-worker-2]
    from_version: 1
    to_version: 1
    from_template: k8s-small
    to_template: k8s-small
drifted:
  description:
    - True when the cloud, observed before planning, differs from the record (what
      M(coe.openstack.cluster_sync) would write); the plan and RV(cluster) include what it saw.
  returned: always
  type: bool
  sample: false
observed:
  description:
    - True when the driver's synchroniser observed the cluster in the cloud before planning;
      false for a create, a delete, an operation in progress, or a failed create the cloud never
      saw a node of.
  returned: always
  type: bool
  sample: true
record_removed:
  description: True when the record was removed (O(force=true) with nothing left in the cloud).
  returned: always
  type: bool
  sample: false
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.coe.openstack.plugins.module_utils.cluster_module import ClusterLogic
from ansible_collections.coe.openstack.plugins.module_utils.locks import DEFAULT_TTL
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class ClusterModule(CoeModule):
    argument_spec = dict(
        actor=dict(type="dict"),
        cluster_template=dict(),
        cluster_template_version=dict(type="int"),
        converge=dict(type="bool", default=False),
        driver_options=dict(type="dict", default={}),
        flavor_id=dict(aliases=["flavor"]),
        force=dict(type="bool", default=False),
        keypair=dict(no_log=False),
        labels=dict(type="dict"),
        lock=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=0),
        lock_token=dict(type="int", no_log=False),
        lock_ttl=dict(type="int", default=DEFAULT_TTL),
        master_count=dict(type="int"),
        master_flavor_id=dict(aliases=["master_flavor"]),
        name=dict(required=True),
        node_count=dict(type="int"),
        nodegroups=dict(
            type="list",
            elements="dict",
            options=dict(
                flavor_id=dict(aliases=["flavor"]),
                image_id=dict(aliases=["image"]),
                labels=dict(type="dict"),
                max_node_count=dict(type="int"),
                min_node_count=dict(type="int"),
                name=dict(required=True),
                node_count=dict(type="int", default=1),
            ),
        ),
        nodes_to_remove=dict(type="list", elements="str", default=[]),
        project=dict(fallback=(env_fallback, ["COE_PROJECT"])),
        require_existing=dict(type="bool", default=False),
        secret_key=dict(no_log=True),
        state=dict(choices=["present", "absent"], default="present"),
        upgrade_batch_size=dict(type="int"),
    )
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[("lock", "lock_token")])
    uses_cloud = True
    uses_store = True

    def run(self):
        ClusterLogic(self).run()


def main():
    ClusterModule()()


if __name__ == "__main__":
    main()
