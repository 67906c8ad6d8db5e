# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The "Heat alone" reference of benchmarks/run.py (not part of the collection).

The stack the Heat driver renders, made, scaled, trimmed and deleted by plain
openstacksdk calls: what the Heat driver is measured against.
"""

from __future__ import annotations

import time
import uuid as uuidlib

import openstack
import yaml

CLOUD = "minicloud"
# A node's user-data in the "Heat alone" stack: about the size of the driver's (a
# 1 + 50 stack holds ~0.5 MB of user-data files); Heat only stores and hands it on.
PLACEHOLDER_USER_DATA = "#cloud-config\n" + "# coe.openstack benchmark: placeholder user-data\n" * 200


def heat_builder():
    """The collection's Heat stack builder (``build_cluster_stack``, ``is_user_data_file``).

    The one place that names its module: when it moves, this is the line to change.
    """
    from ansible_collections.coe.openstack.plugins.module_utils.heat import build

    return build


class HeatAlone:
    """The stack the Heat driver renders for a cluster of this template, made by hand.

    The template, files and parameters come from the collection's own builder
    (``heat_builder()``) for a record of the same template and counts; every node's
    user-data is a placeholder of about the driver's size. Plain openstacksdk calls
    (the orchestration proxy's REST methods: openstacksdk's Stack resource sends tags
    as a list, which Heat refuses), one stack create with every node (as the driver
    does when the API has a floating IP; without one it makes the stack empty first,
    for the API's address: that is the driver's own cost), a PUT per change, and a
    stack list by name once a second until the stack settles.
    """

    def __init__(self, template, name, interval=1.0, timeout=1800):
        self.template = template
        self.interval = interval
        self.timeout = timeout
        external = template.get("external_network_id") or ""
        self.record = dict(
            name=name,
            uuid=str(uuidlib.uuid4()),
            master_count=1,
            flavor_id=template["flavor_id"],
            master_flavor_id=template.get("master_flavor_id") or template["flavor_id"],
            image_id=template["image_id"],
            keypair_id=template.get("keypair_id") or "",
            fixed_network=template["fixed_network"],
            external_network_id=external,
            # Magnum's default, which both drivers follow (issue 19): a floating IP for
            # the API when the template has an external network and does not say no
            floating_ip_enabled=template.get("floating_ip_enabled", bool(external)),
            labels=dict(template.get("labels") or {}),
            coe_version=template.get("coe_version") or "",
            template=dict(template),
        )
        self.conn = None
        self.ids = None
        self.spec = None
        self.stack = None  # {"id", "name"}

    def build(self, workers, remove=()):
        """The StackSpec for ``workers`` workers after removing ``remove`` (node names)."""
        builder = heat_builder()
        live = self.spec.parameters if self.spec is not None else None
        record = dict(self.record, node_count=workers)
        spec = builder.build_cluster_stack(
            record,
            nodes_to_remove=list(remove),
            live_parameters=live,
            floating_ip_enabled=record["floating_ip_enabled"],
            ids=self.ids,
        )
        for path in spec.files:
            if builder.is_user_data_file(path):
                spec.files[path] = PLACEHOLDER_USER_DATA
        return spec

    def _call(self, method, path, **kwargs):
        resp = getattr(self.conn.orchestration, method)(path, **kwargs)
        openstack.exceptions.raise_from_response(resp)
        return resp

    def _body(self, spec):
        return dict(
            template=yaml.safe_load(spec.template),
            files=spec.files,
            parameters=spec.parameters,
            tags=",".join(spec.tags),
            timeout_mins=max(self.timeout // 60, 1),
            disable_rollback=True,
        )

    def status(self):
        """The stack from a list by name (no outputs: cheap), or None once it is gone."""
        name = self.spec.name
        for stack in self.conn.orchestration.stacks(name=name):
            if stack.name == name and stack.status != "DELETE_COMPLETE":
                return stack
        return None

    def wait(self, verb, before=None):
        """Poll the stack's status once a second until ``verb`` settles (gone for DELETE)."""
        deadline = time.monotonic() + self.timeout
        while True:
            stack = self.status()
            if verb == "DELETE":
                if stack is None:
                    return
                if stack.status == "DELETE_FAILED":
                    raise RuntimeError("Heat alone: %s DELETE_FAILED: %s" % (stack.name, stack.status_reason))
            elif stack is None:
                raise RuntimeError("Heat alone: stack %s is gone during %s" % (self.spec.name, verb))
            elif verb == "CREATE" or stack.updated_at != before:
                if stack.status == verb + "_COMPLETE":
                    return
                if stack.status.endswith("_FAILED"):
                    raise RuntimeError("Heat alone: %s %s: %s" % (stack.name, stack.status, stack.status_reason))
            if time.monotonic() > deadline:
                raise RuntimeError("Heat alone: %s still %s after %ds" % (self.spec.name, verb, self.timeout))
            time.sleep(self.interval)

    def create(self, workers):
        """Connect, look the names up once (as the driver does), create, wait: seconds."""
        started = time.monotonic()
        self.conn = openstack.connect(cloud=CLOUD)
        self.conn.authorize()
        template = self.template
        self.ids = {}
        for value, finder in (
            (template["flavor_id"], self.conn.compute.find_flavor),
            (self.record["master_flavor_id"], self.conn.compute.find_flavor),
            (template["image_id"], self.conn.image.find_image),
            (template["fixed_network"], self.conn.network.find_network),
        ):
            if value not in self.ids:
                self.ids[value] = finder(value, ignore_missing=False).id
        self.spec = self.build(workers)
        body = dict(self._body(self.spec), stack_name=self.spec.name)
        data = self._call("post", "/stacks", json=body).json()
        self.stack = dict(id=(data.get("stack") or data)["id"], name=self.spec.name)
        self.wait("CREATE")
        return time.monotonic() - started

    def update(self, workers, remove=()):
        """PUT the stack for ``workers`` workers (less ``remove``), wait: seconds."""
        started = time.monotonic()
        before = self.status().updated_at
        self.spec = self.build(workers, remove)
        self._call("put", "/stacks/%s/%s" % (self.stack["name"], self.stack["id"]), json=self._body(self.spec))
        self.wait("UPDATE", before)
        return time.monotonic() - started

    def delete(self):
        started = time.monotonic()
        resp = self.conn.orchestration.delete("/stacks/%s/%s" % (self.stack["name"], self.stack["id"]))
        if resp.status_code != 404:
            openstack.exceptions.raise_from_response(resp)
        self.wait("DELETE")
        self.stack = None
        return time.monotonic() - started
