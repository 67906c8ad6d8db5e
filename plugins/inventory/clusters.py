# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE) or GNU General Public License v3.0+ (see COPYING):
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
"""Inventory plugin: the clusters in the store as inventory hosts."""

from __future__ import annotations

DOCUMENTATION = r"""
name: clusters
short_description: The clusters in the coe.openstack store as inventory hosts
version_added: 0.1.0
author:
  - coe.openstack contributors (@coe-openstack)
description:
  - Reads the cluster store (SQLite or PostgreSQL) and adds one host per cluster.
  - Each host carries the cluster record (Magnum's field names) in the host variable C(coe_cluster),
    and the cluster's desired spec as the shared C(coe_*) variables (C(coe_cluster_name),
    C(coe_cluster_template), C(coe_cluster_template_version), C(coe_master_count), C(coe_node_count),
    C(coe_nodegroups), C(coe_keypair), C(coe_labels), C(coe_flavor), C(coe_master_flavor)), so that the
    operation playbooks (C(coe.openstack.update), C(coe.openstack.delete) ...) run on them unchanged.
  - Hosts are grouped by status (C(coe_status_create_complete) ...), by driver (C(coe_driver_heat),
    C(coe_driver_nova)) and by template (C(coe_template_<name>)); group names are lowercase with
    non-alphanumerics replaced by C(_).
  - The inventory file's name must end with C(coe_clusters.yml), C(coe_clusters.yaml), C(clusters.coe.yml)
    or C(clusters.coe.yaml).
  - Reading the store needs no cloud access and writes nothing.
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin; C(coe.openstack.clusters).
    required: true
    type: str
    choices: [coe.openstack.clusters]
  state_url:
    description:
      - The cluster store, C(sqlite:///PATH) or C(postgresql://USER:PASSWORD@HOST:PORT/DB).
      - When not set, C(COE_STATE_URL) from the environment, then C(~/.local/state/coe.openstack/coe.db).
    type: str
    env:
      - name: COE_STATE_URL
  project_id:
    description:
      - Only the clusters of this project (id). All projects when not set.
    type: str
  statuses:
    description:
      - Only the clusters in one of these statuses (for example C(CREATE_COMPLETE)). All when empty.
    type: list
    elements: str
    default: []
  drivers:
    description:
      - Only the clusters of these drivers (C(heat), C(nova)). All when empty.
    type: list
    elements: str
    default: []
  local_connection:
    description:
      - Give every host C(ansible_connection=local) and the controller's Python as its interpreter,
        so that ad-hoc commands and other playbooks run against the cluster hosts on the controller.
    type: bool
    default: true
"""

EXAMPLES = r"""
# clusters.coe.yml — every cluster of the store named by COE_STATE_URL
plugin: coe.openstack.clusters
---
# prod.coe_clusters.yml — the clusters of one project in a shared store, plus a group per label
plugin: coe.openstack.clusters
state_url: postgresql://coe@db.example.com/coe
project_id: 2f1e6b5a0c6c4f9e8f0a6b9c3d2e1f00
statuses: [CREATE_COMPLETE, UPDATE_COMPLETE, UPDATE_FAILED]
keyed_groups:
  - key: coe_cluster.labels.environment | default('none')
    prefix: env

# Then, for example:
#   ansible-inventory -i clusters.coe.yml --graph
#   ansible-playbook coe.openstack.update -i clusters.coe.yml -l coe_driver_nova -e coe_node_count=5
"""

import re

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.template import trust_as_template

from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError

FILE_SUFFIXES = ("coe_clusters.yml", "coe_clusters.yaml", "clusters.coe.yml", "clusters.coe.yaml")

DEFAULT_MASTER_GROUP = "default-master"
DEFAULT_WORKER_GROUP = "default-worker"


def group_name(prefix, value):
    """``coe_<prefix>_<value>``, lowercase, non-alphanumerics as ``_``."""
    return "coe_%s_%s" % (prefix, re.sub(r"[^a-z0-9]+", "_", str(value).lower()).strip("_"))


def spec_vars(record):
    """The shared ``coe_*`` variables that describe a cluster record's desired spec.

    Flavors, keypair and labels are the cluster's own overrides when the record has them (so
    that an upgrade to a template version with other flavors is not pinned to the old ones),
    else the record's values.
    """
    overrides = record.get("overrides")
    source = overrides if isinstance(overrides, dict) else record
    spec = dict(
        coe_cluster_name=record["name"],
        coe_cluster_template=record.get("cluster_template_name"),
        coe_cluster_template_version=record.get("template_version"),
        coe_master_count=record.get("master_count"),
        coe_node_count=record.get("node_count"),
        coe_labels=dict(source.get("labels") or {}),
    )
    for var, key in (
        ("coe_keypair", "keypair"),
        ("coe_flavor", "flavor_id"),
        ("coe_master_flavor", "master_flavor_id"),
    ):
        if source.get(key):
            spec[var] = source[key]
    extra = []
    for group in record.get("nodegroups") or []:
        if group.get("role") == "master" or group.get("name") in (DEFAULT_MASTER_GROUP, DEFAULT_WORKER_GROUP):
            if group.get("name") == DEFAULT_WORKER_GROUP and group.get("node_count") is not None:
                spec["coe_node_count"] = group["node_count"]
            continue
        item = dict(name=group["name"], node_count=group.get("node_count", 0))
        for key, src in (("flavor", "flavor_id"), ("image", "image_id"), ("labels", "labels")):
            value = group.get("own_" + src, group.get(src))
            if value:
                item[key] = value
        extra.append(item)
    spec["coe_nodegroups"] = extra
    return spec


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "coe.openstack.clusters"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        try:
            from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

            store = open_store(self.get_option("state_url"))
        except CoeError as e:
            raise AnsibleParserError("coe.openstack.clusters: couldn't open the cluster store: %s" % e.msg) from e
        except ImportError as e:
            raise AnsibleParserError("coe.openstack.clusters: %s" % to_native(e)) from e
        try:
            clusters = store.list_clusters(project=self.get_option("project_id"))
        except CoeError as e:
            raise AnsibleParserError("coe.openstack.clusters: couldn't read the cluster store: %s" % e.msg) from e
        finally:
            store.close()
        statuses = set(self.get_option("statuses") or [])
        drivers = set(self.get_option("drivers") or [])
        clusters = [
            c
            for c in clusters
            if (not statuses or c.get("status") in statuses) and (not drivers or c.get("driver") in drivers)
        ]
        self._populate(clusters)

    def _populate(self, clusters):
        names = [c["name"] for c in clusters]
        strict = self.get_option("strict")
        for record in clusters:
            # a name used in several projects becomes name@project so that no cluster hides another
            host = record["name"]
            if names.count(host) > 1:
                host = "%s@%s" % (host, record["project_id"])
            self.inventory.add_host(host)
            hostvars = dict(spec_vars(record), coe_cluster=record)
            if self.get_option("local_connection"):
                hostvars.update(
                    ansible_connection="local",
                    # inventory plugin data is not templated unless trusted: this one template is ours
                    ansible_python_interpreter=trust_as_template("{{ ansible_playbook_python }}"),
                )
            for key, value in hostvars.items():
                self.inventory.set_variable(host, key, value)
            for prefix, value in (
                ("status", record.get("status")),
                ("driver", record.get("driver")),
                ("template", record.get("cluster_template_name")),
            ):
                if value:
                    group = self.inventory.add_group(group_name(prefix, value))
                    self.inventory.add_child(group, host)
            variables = self.inventory.get_host(host).get_vars()
            self._set_composite_vars(self.get_option("compose"), variables, host, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), variables, host, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host, strict=strict)
