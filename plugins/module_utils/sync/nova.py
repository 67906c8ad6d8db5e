# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The Nova driver's state synchroniser.

ONE server list, filtered server-side by the tag every cluster server
carries (``coe-cluster``), covers every cluster given: the servers are
grouped by cluster uuid (metadata, or the ``coe-cluster-<uuid>`` tag) and
aggregated per nodegroup (nova/observe.py). ONE floating IP list (same tag)
gives the API addresses. Two API calls, whatever the number of clusters
(each retried on a dropped connection). It observes and returns; it never
writes.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.nova import naming
from ansible_collections.coe.openstack.plugins.module_utils.nova.batch import retry_read, server_view
from ansible_collections.coe.openstack.plugins.module_utils.nova.observe import aggregate
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import Observation, StateSynchroniser


class NovaSynchroniser(StateSynchroniser):
    """Cluster state from the servers Nova has, for clusters of the ``nova`` driver."""

    driver = "nova"

    def list_views(self):
        """Every cluster server of the project: one tag-filtered list."""
        return retry_read(
            lambda: [server_view(s) for s in self.conn.compute.servers(details=True, tags=naming.COMMON_TAG)]
        )

    def observe(self, clusters):
        clusters = list(clusters)
        if not clusters:
            return {}
        by_uuid = {}
        for view in self.list_views():
            by_uuid.setdefault(view.get("cluster_uuid"), []).append(view)
        fips = {}
        for fip in retry_read(lambda: list(self.conn.network.ips(tags=naming.COMMON_TAG))):
            uuid = naming.uuid_from_tags(getattr(fip, "tags", None) or [])
            if uuid and fip.floating_ip_address:
                fips.setdefault(uuid, []).append(fip.floating_ip_address)
        return {
            record["uuid"]: Observation(
                **aggregate(record, by_uuid.get(record["uuid"], []), fips.get(record["uuid"], ()))
            )
            for record in clusters
        }
