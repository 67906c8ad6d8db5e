# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster's other cloud resources: security group, server groups,
floating IP for the API, and the cleanup of everything a cluster left.

Everything is found by the cluster's uuid: Neutron resources carry the tags
``coe-cluster`` and ``coe-cluster-<uuid>`` (and the uuid in their name or
description, so that a resource whose tagging was interrupted is found as
well); server groups cannot carry tags, so their name carries the uuid.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, NotFoundError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.nova import cluster as cluster_utils
from ansible_collections.coe.openstack.plugins.module_utils.nova import naming
from ansible_collections.coe.openstack.plugins.module_utils.nova.batch import NovaBatch, error_text

# ingress opened to the world on the cluster security group (ssh, the
# Kubernetes API, the kubelet); traffic between members is always allowed
DEFAULT_PORTS = (22, 6443, 10250)
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


class ClusterResources:
    """Find, ensure and clean up the non-server resources of one cluster."""

    def __init__(self, conn, cluster_uuid, cluster_name, check_mode=False):
        self.conn = conn
        self.uuid = cluster_uuid
        self.cluster_name = cluster_name
        self.tag = naming.cluster_tag(cluster_uuid)
        self.check_mode = check_mode
        self.changes = []

    def _changed(self, what):
        self.changes.append(what)

    def _tag(self, resource):
        if not self.check_mode:
            self.conn.network.set_tags(resource, [naming.COMMON_TAG, self.tag])

    # -- security group ---------------------------------------------------

    def find_security_groups(self):
        """The cluster's security groups: tagged, or named after the uuid."""
        found = {sg.id: sg for sg in self.conn.network.security_groups(tags=self.tag)}
        name = naming.security_group_name(self.cluster_name, self.uuid)
        for sg in self.conn.network.security_groups(name=name):
            found.setdefault(sg.id, sg)
        return list(found.values())

    def ensure_security_group(self, ports=DEFAULT_PORTS):
        """The cluster security group with its rules; returns a summary."""
        groups = self.find_security_groups()
        name = naming.security_group_name(self.cluster_name, self.uuid)
        if groups:
            sg = groups[0]
            if self.tag not in (sg.tags or []):
                self._changed("tag security group %s" % sg.name)
                self._tag(sg)
        else:
            self._changed("create security group %s" % name)
            if self.check_mode:
                return dict(id=None, name=name, ports=list(ports))
            sg = self.conn.network.create_security_group(
                name=name, description="coe.openstack cluster %s (%s)" % (self.cluster_name, self.uuid)
            )
            self._tag(sg)
        have = set()
        for rule in sg.security_group_rules or []:
            r = rule if isinstance(rule, dict) else rule.to_dict()
            if r.get("direction") != "ingress":
                continue
            if r.get("remote_group_id") == sg.id:
                have.add("members")
            elif r.get("protocol") == "tcp" and r.get("port_range_min") == r.get("port_range_max"):
                have.add(r.get("port_range_min"))
        wanted = [dict(ethertype="IPv4", remote_group_id=sg.id)] if "members" not in have else []
        for port in ports:
            if port not in have:
                wanted.append(
                    dict(
                        ethertype="IPv4",
                        protocol="tcp",
                        port_range_min=port,
                        port_range_max=port,
                        remote_ip_prefix="0.0.0.0/0",
                    )
                )
        for rule in wanted:
            self._changed("add rule %s to security group %s" % (rule.get("port_range_min", "members"), sg.name))
            if not self.check_mode:
                self.conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", **rule)
        return dict(id=sg.id, name=sg.name, ports=list(ports))

    # -- server groups ----------------------------------------------------

    def find_server_groups(self):
        prefix = naming.server_group_prefix(self.uuid)
        return [g for g in self.conn.compute.server_groups() if (g.name or "").startswith(prefix)]

    def ensure_server_groups(self, wanted, version=None):
        """``wanted``: ``{nodegroup: policy}``. Returns ``{nodegroup: {id, name, policy}}``.

        With ``version`` (the record's template version) the groups are those of
        that version (naming.server_group_name). The cluster's other server
        groups (of nodegroups that are gone, or of an older template version)
        are deleted; Nova keeps their members running.
        """
        existing = {g.name: g for g in self.find_server_groups()}
        result = {}
        for nodegroup, policy in sorted(wanted.items()):
            name = naming.server_group_name(self.uuid, nodegroup, version)
            group = existing.get(name)
            if group is not None:
                have = getattr(group, "policy", None) or (group.policies or [None])[0]
                if have != policy:
                    raise CloudError(
                        "Server group %s has policy %s, not %s: a server group's policy cannot change"
                        % (name, have, policy)
                    )
            else:
                self._changed("create server group %s (%s)" % (name, policy))
                if not self.check_mode:
                    group = self.conn.compute.create_server_group(name=name, policy=policy)
            result[nodegroup] = dict(id=group.id if group is not None else None, name=name, policy=policy)
        # the groups of nodegroups that are gone (or no longer have a policy)
        wanted_names = {naming.server_group_name(self.uuid, ng, version) for ng in wanted}
        for name, group in sorted(existing.items()):
            if name not in wanted_names:
                self._changed("delete server group %s" % name)
                if not self.check_mode:
                    self.conn.compute.delete_server_group(group, ignore_missing=True)
        return result

    # -- floating IP for the API ------------------------------------------

    def find_floating_ips(self):
        found = {ip.id: ip for ip in self.conn.network.ips(tags=self.tag)}
        for ip in self.conn.network.ips(description=self._fip_description()):
            found.setdefault(ip.id, ip)
        return list(found.values())

    def _fip_description(self):
        return "coe.openstack API of cluster %s" % self.uuid

    def _api_server(self, server_name=None, views=None):
        """The server that carries the API floating IP: the one named, or the
        ACTIVE master with the lowest index. None if there is none yet.
        ``views``: the cluster's servers if the caller has just listed them."""
        if views is None:
            views = NovaBatch(self.conn, self.uuid, self.cluster_name).list_views()
        if server_name:
            found = [v for v in views if v["name"] == server_name]
            if not found:
                raise NotFoundError(
                    "Server %s of cluster %s not found: it should get the API floating IP"
                    % (server_name, self.cluster_name),
                    field="floating_ip_server",
                )
            return found[0]
        masters = [v for v in views if v.get("role") == "master" and v["status"] == "ACTIVE"]
        if not masters:
            return None
        return min(masters, key=lambda v: (v.get("index") or 0, v["name"]))

    def ensure_floating_ip(self, external_network, server_name=None, views=None):
        """The cluster's API floating IP.

        Created unattached when no master exists yet (its address is the API
        address the user-data needs before any server boots); attached to the
        server named, or else, when it is attached to nothing, to the first
        ACTIVE master. An attached floating IP is not moved unless a server is
        named. ``views``: the cluster's servers, when the caller has just listed
        them (saves a list call).
        """
        network = self.conn.network.find_network(external_network, ignore_missing=True)
        if network is None:
            raise NotFoundError("External network %s not found" % external_network, field="external_network")
        fips = self.find_floating_ips()
        fip = fips[0] if fips else None
        target = None
        if server_name or fip is None or not fip.port_id:
            server = self._api_server(server_name, views)
            if server is not None:
                ports = sorted(self.conn.network.ports(device_id=server["id"]), key=lambda p: p.created_at or "")
                if not ports:
                    raise CloudError("Server %s has no port for the API floating IP" % server["name"])
                target = (server["name"], ports[0].id)
        if fip is None:
            self._changed("create floating IP on %s%s" % (external_network, " for %s" % target[0] if target else ""))
            if self.check_mode:
                return dict(id=None, address=None, port_id=target[1] if target else None, server=target and target[0])
            fip = self.conn.network.create_ip(
                floating_network_id=network.id,
                port_id=target[1] if target else None,
                description=self._fip_description(),
            )
            self._tag(fip)
        elif target is not None and fip.port_id != target[1]:
            self._changed("attach floating IP %s to %s" % (fip.floating_ip_address, target[0]))
            if not self.check_mode:
                fip = self.conn.network.update_ip(fip, port_id=target[1])
        return dict(
            id=fip.id,
            address=fip.floating_ip_address,
            port_id=fip.port_id,
            server=target[0] if target else None,
        )

    # -- everything -------------------------------------------------------

    def inventory(self):
        """Everything of the cluster that exists: ``{kind: [names]}``."""
        servers = list(self.conn.compute.servers(details=False, tags=self.tag))
        return dict(
            servers=sorted(s.name for s in servers),
            floating_ips=sorted(f.floating_ip_address for f in self.find_floating_ips()),
            ports=sorted(p.name or p.id for p in self.conn.network.ports(tags=self.tag)),
            security_groups=sorted(sg.name for sg in self.find_security_groups()),
            server_groups=sorted(g.name for g in self.find_server_groups()),
        )

    def delete_all(self, timeout=3600, concurrency=10, wait=True, progress=None):
        """Delete everything of the cluster, orphans of an interrupted run included.

        Servers first (they hold ports, floating IPs and group memberships),
        then floating IPs, tagged ports, server groups and security groups.
        Returns ``{kind: [names deleted]}``.
        """
        deleted = dict(servers=[], floating_ips=[], ports=[], server_groups=[], security_groups=[])
        batch = NovaBatch(self.conn, self.uuid, self.cluster_name, concurrency=concurrency, progress=progress)
        views = batch.list_views()
        if views:
            deleted["servers"] = sorted(v["name"] for v in views)
            self._changed("delete %d servers" % len(views))
            if not self.check_mode:
                errors = batch.delete(views)
                if errors:
                    raise CloudError(
                        "Couldn't delete servers of cluster %s: %s"
                        % (self.cluster_name, "; ".join("%s: %s" % kv for kv in sorted(errors.items())))
                    )
                # ports, security groups and server groups stay busy until
                # the servers are gone
                batch.wait([], [v["id"] for v in views], timeout)
        for fip in self.find_floating_ips():
            deleted["floating_ips"].append(fip.floating_ip_address)
            self._changed("delete floating IP %s" % fip.floating_ip_address)
            if not self.check_mode:
                self.conn.network.delete_ip(fip, ignore_missing=True)
        for port in self.conn.network.ports(tags=self.tag):
            deleted["ports"].append(port.name or port.id)
            self._changed("delete port %s" % (port.name or port.id))
            if not self.check_mode:
                self.conn.network.delete_port(port, ignore_missing=True)
        for group in self.find_server_groups():
            deleted["server_groups"].append(group.name)
            self._changed("delete server group %s" % group.name)
            if not self.check_mode:
                self.conn.compute.delete_server_group(group, ignore_missing=True)
        for sg in self.find_security_groups():
            deleted["security_groups"].append(sg.name)
            self._changed("delete security group %s" % sg.name)
            if not self.check_mode:
                try:
                    self.conn.network.delete_security_group(sg, ignore_missing=True)
                except Exception as e:
                    raise CloudError("Couldn't delete security group %s: %s" % (sg.name, error_text(e))) from e
        return deleted


def resource_settings(record=None, external_network=None, floating_ip=None, server_groups=None, ports=DEFAULT_PORTS):
    """Check the resource options of a cluster, before any cloud call.

    ``record`` is the cluster record (or None). With a record, the masters' nodegroup
    always gets a group: the policy ``server_groups`` gives it, else the template's
    (``master_server_group_policy``); ``external_network``
    to the record's (or its template's) ``external_network_id``; ``floating_ip``
    to the record's ``floating_ip_enabled``, else to whether an external network
    is known. Returns ``(server_groups, floating_ip, external_network)``; raises
    ValidationError naming the option.
    """
    for port in ports:
        if not 0 < port < 65536:
            raise ValidationError("security_group_ports", "%d is not a TCP port" % port)
    groups = dict(server_groups or {})
    if record is not None:
        masters = [g for g in cluster_utils.nodegroups_from_record(record) if g["role"] == "master"]
        if masters and masters[0]["name"] not in groups:
            # the masters always have a group; the template says which policy
            policy = master_server_group_policy(record)
            validate_policy("master_server_group_policy", policy)
            groups[masters[0]["name"]] = policy
    for nodegroup, policy in groups.items():
        if not naming.is_label(nodegroup):
            raise ValidationError("server_groups", "%r is not a nodegroup name" % nodegroup)
        validate_policy("server_groups.%s" % nodegroup, policy)
    record = record or {}
    template = record.get("template") or {}
    external = external_network or record.get("external_network_id") or template.get("external_network_id")
    floating = floating_ip
    if floating is None:
        floating = record.get("floating_ip_enabled")
    if floating is None:
        floating = bool(external)
    if floating and not external:
        raise ValidationError("external_network", "a floating IP needs an external network")
    return groups, bool(floating), external


def master_server_group_policy(record):
    """The masters' server group policy the cluster's template asks for, read as the Heat
    driver reads it: the record's (or its template spec's) ``master_server_group_policy``,
    else the label of that name, else ``anti-affinity``."""
    for source in (record, record.get("template") or {}):
        if source.get("master_server_group_policy") not in (None, ""):
            return source["master_server_group_policy"]
    labels = record.get("labels") or {}
    if isinstance(labels, dict) and labels.get("master_server_group_policy") not in (None, ""):
        return str(labels["master_server_group_policy"])
    return "anti-affinity"


def validate_policy(field, policy):
    if policy not in SERVER_GROUP_POLICIES:
        raise ValidationError(field, "must be one of %s, got %r" % (", ".join(SERVER_GROUP_POLICIES), policy))
