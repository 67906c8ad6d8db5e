#!/usr/bin/python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_lock
short_description: Acquire, renew, release or break a cluster's lock
version_added: 0.1.0
description:
  - Every mutating operation on a cluster holds the cluster's lock - a lease with a holder, an
    operation, an expiry and a fencing token that only grows. The store refuses writes that
    carry a stale token, so a runner that lost its lease cannot overwrite a newer one's work.
  - O(state=acquired) takes the lock, refusing at once (naming the holder, its operation and
    expiry, and what the caller can do) when somebody else holds a live lease, or waiting up
    to O(lock_timeout) seconds. An expired lease is taken over (logged in the history).
  - The holder is the run, not the module process - the C(ansible-playbook) process above this
    module (found through /proc), recorded with its start time, host, machine and AWX job id. A
    lease whose run is gone from this machine is taken over at once (event C(lock-takeover)
    naming the dead holder, and a warning); the last module process of a dead run that still
    works on the cluster is waited for, up to 60 seconds, whatever O(lock_timeout). A holder on
    another machine is only ever timed out by its lease (O(ttl)).
  - O(state=renewed) extends a lease we hold; O(state=released) gives it up; both need
    O(lock_token).
  - O(state=broken) takes the lock away from whoever holds it - an explicit act that needs a
    O(reason), recorded in the history with who did it. The holder's token is stale from then on.
    With O(lock_token), only the lease of that token is broken; a lease taken since is refused.
  - The lock exists before the cluster does (it is keyed by project and cluster name), so a
    create is locked too. Only the store is touched.
author:
  - coe.openstack contributors (@coe-openstack)
extends_documentation_fragment:
  - coe.openstack.store
  - coe.openstack.attributes
attributes:
  idempotent:
    description: Releasing or breaking a free lock changes nothing; acquiring always gives a new token.
    support: partial
options:
  actor:
    description:
      - Who is acting, recorded in the event history and used as the default O(holder). Keys
        C(user), C(host), C(awx_job_id).
    type: dict
  holder:
    description:
      - How the holder is named to others. Defaults to C(user@host pid N) (the pid of the
        run's ansible-playbook process), plus the AWX job id when there is one.
      - A lease without O(holder) belongs to the run that took it - once that run's process is
        gone (an ad-hoc C(ansible) command ends at once), a run on the same host takes it over.
        A lease with O(holder) is bound to no process and ends only with its O(ttl) (or a break);
        use it to hold a cluster across runs, e.g. during maintenance.
    type: str
  lock_timeout:
    description:
      - With O(state=acquired), how long to wait for another holder's lease, in seconds
        (C(0) refuses at once).
    type: int
    default: 0
  lock_token:
    description:
      - The fencing token of our lease; required with O(state=renewed) and O(state=released).
      - With O(state=broken), the token of the lease to break (the one a refusal named).
    type: int
  name:
    description:
      - Cluster name.
    type: str
    required: true
  operation:
    description:
      - With O(state=acquired), the operation the lock is taken for, shown to others.
    type: str
    default: update
  project:
    description:
      - The project key of the cluster in the store. Defaults to the environment variable
        C(COE_PROJECT), then C(default).
    type: str
  reason:
    description:
      - Why the lock is broken; required with O(state=broken) and recorded in the history.
    type: str
  state:
    description:
      - C(acquired), C(renewed), C(released) or C(broken).
    type: str
    choices: [acquired, renewed, released, broken]
    default: acquired
  ttl:
    description:
      - Lease length in seconds (5 to 604800), for O(state=acquired) and O(state=renewed). Renew
        before it runs out (every third of it); a lease that expired may be taken over by another
        runner. The default bounds the wait for a runner that died on another machine to two minutes.
    type: int
    default: 120
seealso:
  - module: coe.openstack.cluster
  - module: coe.openstack.cluster_info
"""

EXAMPLES = r"""
- name: Take the lock for an update, waiting up to 2 minutes for another runner
  coe.openstack.cluster_lock:
    name: demo
    operation: update
    ttl: 600
    lock_timeout: 120
  register: demo_lock

- name: Renew it during a long wait
  coe.openstack.cluster_lock:
    name: demo
    state: renewed
    lock_token: "{{ demo_lock.lock.token }}"
    ttl: 600

- name: Release it
  coe.openstack.cluster_lock:
    name: demo
    state: released
    lock_token: "{{ demo_lock.lock.token }}"

- name: Break the lock of a runner that died (only that lease, token 12)
  coe.openstack.cluster_lock:
    name: demo
    state: broken
    lock_token: 12
    reason: runner vm-17 was lost during the upgrade at 03:10
"""

RETURN = r"""
lock:
  description:
    - The lease after this run (the one that would be taken, in check mode). For
      O(state=broken), the lease that was broken (None when the lock was free).
    - C(holder_gone) says that the holder's run is known to be gone (seen on its own machine);
      such a lease is not C(held), the next run takes it over at once. With O(state=acquired),
      C(taken_over) is the history's note of the lease this one took over (an expired one, or one
      whose run is gone), null when the lock was free.
  returned: always
  type: dict
  sample:
    project_id: default
    cluster: demo
    token: 7
    holder: alice@laptop pid 4242
    holder_host: laptop
    holder_pid: 4242
    awx_job_id: null
    operation: update
    acquired_at: "2026-11-25T07:40:00+00:00"
    renewed_at: "2026-11-25T07:40:00+00:00"
    expires_at: "2026-11-25T07:42:00+00:00"
    held: true
    expired: false
    holder_gone: false
    taken_over: null
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.coe.openstack.plugins.module_utils.clusters import DEFAULT_PROJECT
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import validate_name
from ansible_collections.coe.openstack.plugins.module_utils.locks import DEFAULT_TTL, LockManager
from ansible_collections.coe.openstack.plugins.module_utils.module import CoeModule


class ClusterLockModule(CoeModule):
    argument_spec = dict(
        actor=dict(type="dict"),
        holder=dict(),
        lock_timeout=dict(type="int", default=0),
        lock_token=dict(type="int", no_log=False),
        name=dict(required=True),
        operation=dict(default="update"),
        project=dict(fallback=(env_fallback, ["COE_PROJECT"])),
        reason=dict(),
        state=dict(choices=["acquired", "renewed", "released", "broken"], default="acquired"),
        ttl=dict(type="int", default=DEFAULT_TTL),
    )
    module_kwargs = dict(
        supports_check_mode=True,
        required_if=[
            ("state", "renewed", ("lock_token",)),
            ("state", "released", ("lock_token",)),
            ("state", "broken", ("reason",)),
        ],
    )
    uses_cloud = False
    uses_store = True

    def run(self):
        p = self.params
        name = validate_name("name", p["name"])
        project = p["project"] or DEFAULT_PROJECT
        if p["lock_timeout"] < 0:
            raise ValidationError("lock_timeout", "must be >= 0 seconds, got %d" % p["lock_timeout"])
        # check mode: the same acts, deciding as they would and writing nothing
        locks = LockManager(self.store, check_mode=self.check_mode)
        state = p["state"]
        with self.action("%s the lock of cluster %s" % (_VERB[state], name)):
            if state == "acquired":
                lease = locks.acquire(
                    project,
                    name,
                    p["operation"],
                    p["ttl"],
                    holder=p["holder"],
                    wait=p["lock_timeout"],
                    actor=p["actor"],
                )
                if lease["taken_over"] and not self.check_mode:
                    self.warn("Cluster %s: %s" % (name, lease["taken_over"]))
                self.exit(changed=True, lock=lease)
            elif state == "renewed":
                self.exit(changed=True, lock=locks.renew(project, name, p["lock_token"], p["ttl"]))
            elif state == "released":
                released = locks.release(project, name, p["lock_token"])
                self.exit(changed=released, lock=locks.get(project, name))
            else:
                broken = locks.break_lock(project, name, p["reason"], actor=p["actor"], token=p["lock_token"])
                self.exit(changed=broken is not None, lock=broken)


_VERB = dict(acquired="acquire", renewed="renew", released="release", broken="break")


def main():
    ClusterLockModule()()


if __name__ == "__main__":
    main()
