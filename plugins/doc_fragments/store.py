# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # The option every module that reads or writes the cluster store takes.
    DOCUMENTATION = r"""
options:
  state_url:
    description:
      - Where the cluster store lives.
      - C(sqlite:///PATH) for the embedded store (one file, created with mode 0600), or
        C(postgresql://USER:PASSWORD@HOST:PORT/DB) for a store shared by a team or by AWX.
      - When not given, the environment variable C(COE_STATE_URL) is used, and then the SQLite
        file C(~/.local/state/coe.openstack/coe.db).
    type: str
"""

    # A module that waits for the cloud while the caller holds the cluster's lock.
    LEASE = r"""
options:
  actor:
    description:
      - Who acts, for the cluster's history (O(finish)); the front door passes its own.
      - Without it, the local user and host.
    type: dict
  finish:
    description:
      - With O(lock_token) and a recorded cluster, once the module has waited for its operation,
        the cluster is observed and recorded once more and, if it came out C(*_COMPLETE), its lock
        is released (the front door's last poll and release, done in this module's process).
      - The result is returned as RV(finished). A cluster still in progress or failed keeps its lock.
    type: bool
    default: false
  lock_token:
    description:
      - With O(cluster), the fencing token of the lock the caller holds on the cluster
        (M(coe.openstack.cluster_lock)); the front door's driver roles pass theirs.
      - The module renews that lease by O(lock_ttl) before its first write, and every third of
        O(lock_ttl) while it waits for the cloud, so that an operation longer than the lease keeps
        its lock. A token released or broken meanwhile (someone else acts on the cluster) fails
        the module; before its first write, nothing is changed. Check mode renews nothing.
      - The module also stops, at its next poll, once the run that holds the lease (its
        ansible-playbook process) is gone, so that the next run can take the lease over.
    type: int
  lock_ttl:
    description:
      - Seconds the lease is extended by each time (O(lock_token)).
    type: int
    default: 120
"""
