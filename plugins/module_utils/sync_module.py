# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The ``cluster_sync`` module's logic (SyncLogic): one cluster or a store's clusters observed and
recorded (clusters.sync_clusters), one cluster watched while its operation is in progress
(clusters.watch_operation), and the orphans the cloud has."""

from __future__ import annotations

import time

from ansible_collections.coe.openstack.plugins.module_utils.census import orphans
from ansible_collections.coe.openstack.plugins.module_utils.clusters import (
    DEFAULT_PROJECT,
    LazyConnection,
    check_watch,
    sync_clusters,
    watch_operation,
)
from ansible_collections.coe.openstack.plugins.module_utils.errors import NotFoundError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle import validate_name
from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic
from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser, take_census


class SyncLogic(ModuleLogic):
    """What ``cluster_sync`` does (see its documentation)."""

    def run(self):
        p = self.params
        name, project = p["name"], p["project"]
        check_watch(p["watch"], p["release"], name, p["lock_token"], p["lock_ttl"], p["fail_reason"])
        lock = None
        if name is not None:
            validate_name("name", name)
            project = project or DEFAULT_PROJECT
            record = self.store.find_cluster(project, name)
            if record is None:
                raise NotFoundError("Cluster '%s' does not exist in project %s" % (name, project), field="name")
            records = [record]
            if p["lock_token"] is not None:
                lock = dict(project=project, name=name, token=p["lock_token"], ttl=p["lock_ttl"])
        else:
            if p["lock_token"] is not None:
                raise ValidationError("lock_token", "needs name (a lock covers one cluster)")
            records = self.store.list_clusters(project=project)
        conn = LazyConnection(lambda: self.conn)
        synchronisers = {}

        def synchroniser_for(driver):
            if driver not in synchronisers:
                synchronisers[driver] = get_synchroniser(driver, conn)
            return synchronisers[driver]

        what = "synchronise cluster %s" % name if name else "synchronise %d cluster(s)" % len(records)
        with self.action(what):
            if (p["watch"] or p["release"]) and not self.check_mode:
                # while it watches: the lease kept, and a run killed meanwhile (the holder gone) stops it
                sleep = self.keep_lease(record, time.sleep)
                result = watch_operation(
                    self.store,
                    record,
                    synchroniser_for,
                    lock,
                    p["watch"],
                    actor=p["actor"],
                    release=p["release"],
                    sleep=sleep,
                )
            else:
                result = sync_clusters(
                    self.store,
                    records,
                    synchroniser_for,
                    lock=lock,
                    check_mode=self.check_mode,
                    actor=p["actor"],
                    fail_reason=p["fail_reason"],
                )
        lease = result.pop("lock")
        if lease is not None:
            result["lock"] = lease
        if name is None:
            with self.action("look in the cloud for clusters this store does not know"):
                result["orphans"] = orphans(take_census(conn), {c["uuid"] for c in self.store.list_clusters()})
        self.exit(**result)
