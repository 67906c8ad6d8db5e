# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The ``cluster`` module's logic (the front door's first step): options -> desired record ->
plan, lock and record (clusters.py) -> the cluster's CAs -> exit.

The cloud is reached only through the cluster's synchroniser (observe a settled cluster,
check its references), over a connection built on first use: a run with nothing to observe
never authenticates.
"""

from __future__ import annotations

import copy
import os

from ansible_collections.coe.openstack.plugins.module_utils.census import named
from ansible_collections.coe.openstack.plugins.module_utils.clusters import (
    DEFAULT_PROJECT,
    LazyConnection,
    ensure_cluster,
    lacks_credentials,
    plan_lock_record,
)
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager, check_ttl
from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic, failure
from ansible_collections.coe.openstack.plugins.module_utils.pki import PkiSettings, ensure_cluster_credentials
from ansible_collections.coe.openstack.plugins.module_utils.secrets import check_secret_key, resolve_secret_key
from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser, take_census

#: the drivers whose converge the front door runs in its own process (``converge``)
INLINE_DRIVERS = ("heat", "nova")


def driver_package(driver):
    """The ``driver.py`` of a driver's package (its ``converge`` and ``check_front_door_options``)."""
    if driver == "heat":
        from ansible_collections.coe.openstack.plugins.module_utils.heat import driver as package
    else:
        from ansible_collections.coe.openstack.plugins.module_utils.nova import driver as package
    return package


def check_driver_options(given):
    """``driver_options`` checked before anything else: driver name -> its options."""
    out = {}
    for driver, options in (given or {}).items():
        if driver not in INLINE_DRIVERS:
            raise ValidationError("driver_options", "%r is not one of %s" % (driver, ", ".join(INLINE_DRIVERS)))
        if not isinstance(options, dict):
            raise ValidationError("driver_options.%s" % driver, "must be a dict of options")
        if options:  # (a driver's package is imported only when it has options to check)
            out[driver] = driver_package(driver).check_front_door_options(options, field="driver_options.%s" % driver)
    return out


def desired_cluster(p):
    """The desired record the ``cluster`` module's options ask for (None: keep what is recorded)."""
    return dict(
        name=p["name"],
        project_id=p["project"] or DEFAULT_PROJECT,
        state=p["state"],
        template_name=p["cluster_template"],
        template_version=p["cluster_template_version"],
        master_count=p["master_count"],
        node_count=p["node_count"],
        nodegroups=[{k: v for k, v in ng.items() if v is not None} for ng in p["nodegroups"]]
        if p["nodegroups"] is not None
        else None,
        nodes_to_remove=p["nodes_to_remove"],
        keypair=p["keypair"],
        labels=p["labels"],
        flavor_id=p["flavor_id"],
        master_flavor_id=p["master_flavor_id"],
        timeout=p["timeout"],
        upgrade_batch_size=p["upgrade_batch_size"],
    )


class ClusterLogic(ModuleLogic):
    """What ``cluster`` does: validate, plan (and with ``lock``: lock and record), the CAs."""

    _census = None  # what clusters the cloud has, read once (the twin check)

    def run(self):
        p = self.params
        desired = desired_cluster(p)
        if p["force"] and p["state"] != "absent":
            raise ValidationError("force", "only with state=absent")
        box = None
        if p["state"] == "present":
            # a missing or wrong key fails here, before the record is written or the cloud touched;
            # a store's first key is recorded (its verifier) only with the first operation recorded
            box = resolve_secret_key(p["secret_key"], p["state_url"], create=not self.check_mode)
            check_secret_key(self.store, box, create=False)
        if p["lock_timeout"] < 0:
            raise ValidationError("lock_timeout", "must be >= 0 seconds, got %d" % p["lock_timeout"])
        if p["lock"]:
            check_ttl(p["lock_ttl"])
        driver_options = check_driver_options(p["driver_options"])
        options = dict(
            actor=p["actor"],
            force=p["force"],
            observe=self._observe,
            check=self._check_references,
            require_existing=p["require_existing"],
            twins=self._twins,
        )
        if p["lock"] and not self.check_mode:
            result = plan_lock_record(self.store, desired, p["lock_ttl"], p["lock_timeout"], **options)
        else:
            result = ensure_cluster(
                self.store, desired, lock_token=p["lock_token"], check_mode=self.check_mode, **options
            )
            result.update(lock=None, lock_waited=None)
        if box is not None and not self.check_mode and result["operation"] in ("create", "update", "upgrade"):
            self._ensure_credentials(result, box, desired["project_id"], p["name"])
        if (result["lock"] or {}).get("taken_over"):
            self.warn("Cluster %s: %s" % (p["name"], result["lock"]["taken_over"]))
        result.update(converged=None, converge_failed=None)
        driver = (result["cluster"] or {}).get("driver")
        if p["converge"] and result["lock"] and not self.check_mode and driver in INLINE_DRIVERS:
            result.update(self._converge(result, driver_options.get(driver) or {}))
        diff = result.pop("diff")
        if self.diff_mode:
            result["diff"] = diff
        self.exit(**result)

    def _converge(self, result, options):
        """The recorded operation, carried out by the driver in this process (``converge``):
        dict(converged=what its module returns) or, when it fails, dict(converge_failed=
        dict(msg, ...)): the front door's failure path records it and releases the lock."""
        cluster = result["cluster"]
        try:
            out = driver_package(cluster["driver"]).converge(
                self.module, cluster, result["operation"], result["lock"], options
            )
        except Exception as e:  # pylint: disable=broad-exception-caught
            return dict(converge_failed=failure(e))
        return dict(converged=out)

    def _ensure_credentials(self, result, box, project, name):
        """The cluster's CAs exist before the driver renders any user-data; on failure the
        lease this call took is released again."""
        cluster = result["cluster"]
        if lacks_credentials(self.store, cluster):
            return  # adopted without its CAs: new ones would sign nothing the cluster trusts
        try:
            check_secret_key(self.store, box)
            ensure_cluster_credentials(
                self.store,
                cluster["uuid"],
                box,
                cluster_name=cluster["name"],
                settings=PkiSettings.from_labels(cluster.get("labels")),
            )
        except BaseException:
            if result["lock"]:
                LockManager(self.store).release(project, name, result["lock"]["token"])
            raise

    def _synchroniser(self, driver):
        return get_synchroniser(driver, LazyConnection(lambda: self.conn))

    def _observe(self, record):
        what = "observe cluster %s in %s (%s driver)" % (record["name"], self._cloud_text(), record["driver"])
        with self.action(what):
            found = self._synchroniser(record["driver"]).observe([copy.deepcopy(record)])
        return found[record["uuid"]]

    def _twins(self, name):
        """The clusters called ``name`` the cloud has (one census per run: the plan runs twice)."""
        if self._census is None:
            with self.action("look in %s for clusters called %s" % (self._cloud_text(), name)):
                self._census = take_census(LazyConnection(lambda: self.conn))
        return named(self._census, name)

    def _check_references(self, cluster, operation):
        what = "check the cloud has what cluster %s needs" % cluster["name"]
        with self.action(what):
            self._synchroniser(cluster["driver"]).check_references(cluster, operation)

    def _cloud_text(self):
        cloud = self.params["cloud"]
        if isinstance(cloud, dict):
            return "the cloud of the given config"
        name = cloud or os.environ.get("OS_CLOUD")
        return "cloud %s" % name if name else "the configured cloud"
