"""A fake openstacksdk Connection for the Nova driver's unit tests.

Only what plugins/module_utils/nova uses: servers (with tags, metadata,
faults, a BUILD → ACTIVE/ERROR life, listed DELETED for ``forget_in`` more lists),
Nova's task state of a building server (``scheduling`` until the first list, ``spawning``
until ACTIVE) and the placement race of a strict server group (``create_server``),
flavors, images, keypairs, networks, server groups, security groups, ports, floating
IPs and quotas. Every call is
recorded in ``calls`` as ``(service, method, kwargs)`` so that tests can count
API calls and writes.
"""

import itertools
import threading
import types

_ids = itertools.count(1)

MAX_RETRIES = (
    "Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance x."
)


def _id(prefix):
    return "%s-%08d-0000-4000-8000-000000000000" % (prefix[:8].ljust(8, "0"), next(_ids))


class Obj(types.SimpleNamespace):
    def to_dict(self):
        return dict(vars(self))


class FakeServer(Obj):
    @property
    def task_state(self):
        """Nova's task state (``task``), None where the cloud's policy hides it."""
        return None if self.hide_task_state else self.task


class FakeCloud:
    """One fake project. ``polls_to_active``: list calls a server stays BUILD."""

    def __init__(self, polls_to_active=1, fail_flavors=("m1.huge",), quota=None, fip_port_details=True):
        self.lock = threading.Lock()
        #: Neutron's fip-port-details extension: a floating IP names the server its port is on
        self.fip_port_details = fip_port_details
        self.calls = []
        self.servers = {}
        self.polls_to_active = polls_to_active
        self.fail_flavors = set(fail_flavors)
        self.flavors = {
            "m1.small": Obj(id="f-small", name="m1.small", vcpus=1, ram=2048),
            "m1.medium": Obj(id="f-medium", name="m1.medium", vcpus=2, ram=4096),
            "m1.huge": Obj(id="f-huge", name="m1.huge", vcpus=1001, ram=1024),
        }
        self.images = {
            "fake-image": Obj(id="img-1", name="fake-image"),
            "fake-image-v2": Obj(id="img-2", name="fake-image-v2"),
        }
        self.keypairs = {"demo-key": Obj(id="demo-key", name="demo-key")}
        self.networks = {"private": Obj(id="net-1", name="private"), "public": Obj(id="net-ext", name="public")}
        self.server_groups = {}
        self.security_groups = {}
        self.ports = {}
        self.fips = {}
        self.quota = dict(instances=-1, cores=-1, ram=-1, ports=-1)
        self.quota.update(quota or {})
        self.create_errors = {}  # name -> exception raised by create_server
        #: a policy that hides ``OS-EXT-STS:task_state`` from the project's users
        self.hide_task_state = False
        self.current_project_id = "proj-1"
        self.compute = _Compute(self)
        self.image = _Image(self)
        self.network = _Network(self)
        #: a cloud whose Heat has no stack (the census of a create lists them)
        # no stack; Heat answers (the Heat driver's reference check asks its build_info)
        self.orchestration = types.SimpleNamespace(
            stacks=lambda **query: iter(()),
            get=lambda path, **kw: types.SimpleNamespace(status_code=200, json=lambda: {}),
        )

    def record(self, service, method, **kwargs):
        with self.lock:
            self.calls.append((service, method, kwargs))

    def count(self, method=None, service=None):
        return len(
            [c for c in self.calls if (method is None or c[1] == method) and (service is None or c[0] == service)]
        )

    def writes(self):
        verbs = ("create_", "delete_", "update_", "set_tags", "add_")
        return [c for c in self.calls if c[1].startswith(verbs)]

    def add_server(
        self,
        name,
        status="ACTIVE",
        tags=(),
        metadata=None,
        flavor="m1.small",
        image="fake-image",
        fault=None,
        created_at=None,
    ):
        sid = _id("srv")
        flavor_obj = self.flavors[flavor]
        server = FakeServer(
            id=sid,
            name=name,
            status=status,
            tags=list(tags),
            metadata=dict(metadata or {}),
            image=Obj(id=self.images[image].id),
            flavor=Obj(
                id=None, original_name=flavor_obj.name, name=flavor_obj.name, vcpus=flavor_obj.vcpus, ram=flavor_obj.ram
            ),
            fault=fault,
            addresses={"private": [{"addr": "10.0.0.%d" % (len(self.servers) + 10), "OS-EXT-IPS:type": "fixed"}]},
            created_at=created_at or "2026-11-25T08:%02d:00Z" % len(self.servers),
            polls=0,
            deleting=False,
            forget_in=0,
            task=None,
            hide_task_state=self.hide_task_state,
            loses=False,
        )
        self.servers[sid] = server
        return server


class _Compute:
    def __init__(self, cloud):
        self.cloud = cloud

    def servers(self, details=True, tags=None, **query):
        cloud = self.cloud
        cloud.record("compute", "servers", details=details, tags=tags, **query)
        with cloud.lock:
            # time passes: deleting servers go, building ones finish
            for sid, server in list(cloud.servers.items()):
                if server.deleting:
                    del cloud.servers[sid]
                    continue
                if server.status == "DELETED":
                    # Nova lists a deleted server a moment longer (servers.live): ``forget_in`` lists
                    if server.forget_in <= 0:
                        del cloud.servers[sid]
                        continue
                    server.forget_in -= 1
                if server.status == "BUILD":
                    server.polls += 1
                    server.task = "spawning"
                    if server.polls >= cloud.polls_to_active:
                        server.task = None
                        if server.loses:
                            server.status = "ERROR"
                            server.fault = {"code": 500, "message": MAX_RETRIES}
                        elif server.flavor.original_name in cloud.fail_flavors:
                            server.status = "ERROR"
                            server.fault = {"code": 500, "message": "No valid host was found. "}
                        else:
                            server.status = "ACTIVE"
            # a floating IP attached to a server's port shows among its addresses (as Nova shows it)
            for sid, server in cloud.servers.items():
                shown = server.addresses.setdefault("private", [])
                for fip in cloud.fips.values():
                    entry = {"addr": fip.floating_ip_address, "OS-EXT-IPS:type": "floating"}
                    if fip.port_id == "port-" + sid and entry not in shown:
                        shown.append(entry)
            wanted = set((tags or "").split(",")) - {""}
            status = query.get("status")
            return [
                s if details else Obj(id=s.id, name=s.name)
                for s in cloud.servers.values()
                if wanted <= set(s.tags) and (status is None or s.status == status)
            ]

    def create_server(self, **body):
        cloud = self.cloud
        cloud.record("compute", "create_server", **body)
        if body["name"] in cloud.create_errors:
            raise cloud.create_errors[body["name"]]
        flavor = next(f for f in cloud.flavors.values() if f.id == body["flavor_id"])
        image = next(i for i in cloud.images.values() if i.id == body["image_id"])
        group = cloud.server_groups.get((body.get("scheduler_hints") or {}).get("group"))
        with cloud.lock:
            # Nova learns a member's host only once its compute has claimed it: a member of a
            # strict group scheduled while another is still being scheduled races it and loses
            # (an affine one not once a member holds a host: the others follow it there)
            members = [
                other
                for other in cloud.servers.values()
                if group is not None
                and (getattr(other, "body", {}).get("scheduler_hints") or {}).get("group") == group.id
            ]
            racing = any(other.task == "scheduling" for other in members)
            placed = any(other.task != "scheduling" and other.status in ("BUILD", "ACTIVE") for other in members)
            loses = group is not None and (
                (group.policy == "anti-affinity" and racing) or (group.policy == "affinity" and racing and not placed)
            )
            server = cloud.add_server(
                body["name"],
                status="BUILD",
                tags=body.get("tags") or (),
                metadata=body.get("metadata"),
                flavor=flavor.name,
                image=image.name,
            )
            server.body = body
            server.task = "scheduling"
            server.loses = loses
        return Obj(id=server.id, name=server.name)

    def delete_server(self, server_id, ignore_missing=True):
        self.cloud.record("compute", "delete_server", server=server_id)
        with self.cloud.lock:
            if server_id in self.cloud.servers:
                self.cloud.servers[server_id].deleting = True

    def find_flavor(self, ref, ignore_missing=True):
        self.cloud.record("compute", "find_flavor", ref=ref)
        return next((f for f in self.cloud.flavors.values() if ref in (f.id, f.name)), None)

    def find_keypair(self, ref, ignore_missing=True):
        self.cloud.record("compute", "find_keypair", ref=ref)
        return self.cloud.keypairs.get(ref)

    def server_groups(self):
        self.cloud.record("compute", "server_groups")
        return list(self.cloud.server_groups.values())

    def create_server_group(self, name, policy):
        self.cloud.record("compute", "create_server_group", name=name, policy=policy)
        group = Obj(id=_id("sg"), name=name, policy=policy, policies=[policy], member_ids=[])
        self.cloud.server_groups[group.id] = group
        return group

    def delete_server_group(self, group, ignore_missing=True):
        self.cloud.record("compute", "delete_server_group", group=group.id)
        self.cloud.server_groups.pop(group.id, None)

    def get_quota_set(self, project, usage=False):
        cloud = self.cloud
        cloud.record("compute", "get_quota_set", project=project)
        live = [s for s in cloud.servers.values() if not s.deleting]
        used = dict(
            instances=len(live),
            cores=sum(s.flavor.vcpus for s in live),
            ram=sum(s.flavor.ram for s in live),
        )
        return Obj(instances=cloud.quota["instances"], cores=cloud.quota["cores"], ram=cloud.quota["ram"], usage=used)


class _Image:
    def __init__(self, cloud):
        self.cloud = cloud

    def find_image(self, ref, ignore_missing=True):
        self.cloud.record("image", "find_image", ref=ref)
        return next((i for i in self.cloud.images.values() if ref in (i.id, i.name)), None)


class _Network:
    def __init__(self, cloud):
        self.cloud = cloud

    def find_network(self, ref, ignore_missing=True):
        self.cloud.record("network", "find_network", ref=ref)
        return next((n for n in self.cloud.networks.values() if ref in (n.id, n.name)), None)

    def get_quota(self, project, details=False):
        self.cloud.record("network", "get_quota", project=project)
        used = len(self.cloud.ports) + len([s for s in self.cloud.servers.values() if not s.deleting])
        return Obj(ports={"limit": self.cloud.quota["ports"], "used": used, "reserved": 0})

    @staticmethod
    def _match(items, tags=None, **query):
        wanted = set(tags.split(",")) if isinstance(tags, str) else set(tags or ())
        out = []
        for item in items:
            if wanted and not wanted <= set(item.tags or ()):
                continue
            if any(getattr(item, k, None) != v for k, v in query.items()):
                continue
            out.append(item)
        return out

    def security_groups(self, **query):
        self.cloud.record("network", "security_groups", **query)
        return self._match(self.cloud.security_groups.values(), **query)

    def find_security_group(self, ref, ignore_missing=True):
        self.cloud.record("network", "find_security_group", ref=ref)
        return next((g for g in self.cloud.security_groups.values() if ref in (g.id, g.name)), None)

    def create_security_group(self, name, description=""):
        self.cloud.record("network", "create_security_group", name=name)
        sg = Obj(id=_id("secgrp"), name=name, description=description, tags=[], security_group_rules=[])
        self.cloud.security_groups[sg.id] = sg
        return sg

    def create_security_group_rule(self, security_group_id, **rule):
        self.cloud.record("network", "create_security_group_rule", security_group_id=security_group_id, **rule)
        self.cloud.security_groups[security_group_id].security_group_rules.append(
            dict(rule, security_group_id=security_group_id)
        )

    def delete_security_group(self, sg, ignore_missing=True):
        self.cloud.record("network", "delete_security_group", sg=sg.id)
        self.cloud.security_groups.pop(sg.id, None)

    def set_tags(self, resource, tags):
        self.cloud.record("network", "set_tags", id=resource.id, tags=list(tags))
        resource.tags = list(tags)

    def ips(self, **query):
        self.cloud.record("network", "ips", **query)
        return self._match(self.cloud.fips.values(), **query)

    def create_ip(self, floating_network_id, port_id=None, description=""):
        self.cloud.record("network", "create_ip", port_id=port_id)
        fip = Obj(
            id=_id("fip"),
            floating_ip_address="172.24.4.%d" % (len(self.cloud.fips) + 10),
            port_id=port_id,
            description=description,
            tags=[],
            port_details=self._port_details(port_id),
        )
        self.cloud.fips[fip.id] = fip
        return fip

    def update_ip(self, fip, port_id=None):
        self.cloud.record("network", "update_ip", port_id=port_id)
        fip.port_id = port_id
        fip.port_details = self._port_details(port_id)
        return fip

    def _port_details(self, port_id):
        if not self.cloud.fip_port_details or not port_id:
            return None
        return dict(device_id=port_id[len("port-") :] if port_id.startswith("port-") else None)

    def delete_ip(self, fip, ignore_missing=True):
        self.cloud.record("network", "delete_ip", id=fip.id)
        self.cloud.fips.pop(fip.id, None)

    def ports(self, device_id=None, tags=None, **query):
        self.cloud.record("network", "ports", device_id=device_id, tags=tags)
        if device_id:
            server = self.cloud.servers.get(device_id)
            if server is None or server.status == "DELETED":
                return []  # Nova deletes the ports it made before it marks the server deleted
            # a server's own port (Nova made it); it keeps what update_port sets
            ports = self.cloud.__dict__.setdefault("server_ports", {})
            port = ports.setdefault(
                device_id,
                Obj(
                    id="port-" + device_id,
                    name="",
                    created_at="x",
                    tags=[],
                    device_id=device_id,
                    allowed_address_pairs=[],
                ),
            )
            return [port]
        return self._match(self.cloud.ports.values(), tags=tags)

    def create_port(self, name, network_id, **body):
        self.cloud.record("network", "create_port", name=name, network_id=network_id, **body)
        port = Obj(
            id=_id("port"),
            name=name,
            network_id=network_id,
            tags=[],
            fixed_ips=[dict(ip_address="10.0.0.%d" % (200 + len(self.cloud.ports)))],
            allowed_address_pairs=[],
            device_id="",
            **body,
        )
        self.cloud.ports[port.id] = port
        return port

    def update_port(self, port, **body):
        self.cloud.record("network", "update_port", id=port.id, **body)
        for key, value in body.items():
            setattr(port, key, value)
        return port

    def delete_port(self, port, ignore_missing=True):
        self.cloud.record("network", "delete_port", id=port.id)
        self.cloud.ports.pop(port.id, None)
