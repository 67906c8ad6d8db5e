"""A fake OpenStack behind openstacksdk's real proxies: an HTTP transport answering in the
services' own JSON.

``FakeOpenStack().connect()`` is a real ``openstack.connection.Connection`` (no auth, endpoint
overrides) whose requests.Session has a transport adapter mounted that answers from the
state held here instead of a network. So ``conn.compute.servers(...)``,
``conn.orchestration.stacks(...)``, ``conn.network.ips(...)`` and the Heat client's raw
``conn.orchestration.get(path)`` go through openstacksdk's proxies, resources, query mapping
and keystoneauth's version discovery, as against a cloud: what a synchroniser reads is what
openstacksdk makes of Nova's and Heat's JSON.

The state is the services' JSON as they return it:

* ``servers``: Nova server bodies (``add_server``), served by ``GET /servers/detail`` with
  Nova's ``tags`` / ``tags-any`` filters;
* ``stacks``: Heat stack bodies as Heat's stack list returns them (``add_stack``), served by
  ``GET /stacks`` (``tags``, ``tags_any``, ``name``); ``resources`` and ``events`` per stack id,
  served by ``GET /stacks/<name>/<id>/resources`` and ``/events``;
* ``floatingips``: Neutron floating IP bodies, ``GET /v2.0/floatingips`` (``tags``).

Every request is logged in ``requests`` as ``(method, path with query)``. Another service
or call: add a route to ``ROUTES`` (a regular expression on the path and a method name).
"""

import json
import re
import urllib.parse

import requests
from requests.adapters import BaseAdapter

BASE = "http://cloud.fake.test"
ENDPOINTS = dict(
    compute=BASE + "/compute/v2.1",
    orchestration=BASE + "/heat/v1",
    network=BASE + "/network",
)

# version documents keystoneauth's discovery asks for
VERSIONS = {
    "/compute/v2.1": {
        "version": {
            "id": "v2.1",
            "status": "CURRENT",
            "min_version": "2.1",
            "version": "2.96",
            "links": [{"rel": "self", "href": BASE + "/compute/v2.1/"}],
        }
    },
    "/heat/v1": {
        "versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"rel": "self", "href": BASE + "/heat/v1/"}]}]
    },
    "/network": {
        "versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": BASE + "/network/v2.0/"}]}]
    },
}

ROUTES = [
    ("GET", r"/compute/v2\.1/servers/detail$", "list_servers"),
    ("GET", r"/heat/v1/(?:[^/]+/)?stacks$", "list_stacks"),
    ("GET", r"/heat/v1/(?:[^/]+/)?stacks/([^/]+)/([^/]+)/resources$", "list_resources"),
    ("GET", r"/heat/v1/(?:[^/]+/)?stacks/([^/]+)/([^/]+)/events$", "list_events"),
    ("GET", r"/network/v2\.0/floatingips$", "list_floatingips"),
]


def _tags(value):
    return {t for t in (value or "").split(",") if t}


class FakeOpenStack:
    """One fake project's servers, stacks and floating IPs (see the module docstring)."""

    def __init__(self):
        self.servers = []
        self.stacks = []
        self.resources = {}
        self.events = {}
        self.floatingips = []
        self.requests = []

    # -- state, in the services' JSON ---------------------------------------------------

    def add_server(self, name, status="ACTIVE", tags=(), metadata=None, fault=None, image_id="img-1", address=None):
        """A Nova server body (microversion 2.96: flavor by name, tags, fault for ERROR)."""
        body = {
            "id": "srv-%04d-%s" % (len(self.servers), name),
            "name": name,
            "status": status,
            "tags": list(tags),
            "metadata": dict(metadata or {}),
            "image": {"id": image_id, "links": []},
            "flavor": {"original_name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20, "extra_specs": {}},
            "addresses": {
                "private": [
                    {
                        "addr": address or "10.0.0.%d" % (10 + len(self.servers)),
                        "version": 4,
                        "OS-EXT-IPS:type": "fixed",
                        "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:%02x" % len(self.servers),
                    }
                ]
            },
            "created": "2027-01-15T08:00:%02dZ" % (len(self.servers) % 60),
            "updated": "2027-01-15T08:01:00Z",
            "OS-EXT-STS:vm_state": {"ACTIVE": "active", "ERROR": "error"}.get(status, "building"),
            "OS-EXT-STS:task_state": None,
            "tenant_id": "p1",
            "user_id": "u1",
            "links": [],
        }
        if fault is not None:
            body["fault"] = {"code": 500, "message": fault, "created": "2027-01-15T08:00:30Z"}
        self.servers.append(body)
        return body

    def add_stack(self, name, status, reason="", tags=(), created="2027-01-15T08:00:00Z", updated=None):
        """A stack as Heat's stack list shows it (no parameters, no outputs)."""
        body = {
            "id": "stk-%04d" % len(self.stacks),
            "stack_name": name,
            "stack_status": status,
            "stack_status_reason": reason,
            "creation_time": created,
            "updated_time": updated,
            "deletion_time": None,
            "description": "",
            "tags": list(tags),
            "stack_owner": None,
            "parent": None,
            "links": [{"rel": "self", "href": "%s/heat/v1/p1/stacks/%s/stk-%04d" % (BASE, name, len(self.stacks))}],
        }
        self.stacks.append(body)
        self.resources[body["id"]] = []
        self.events[body["id"]] = []
        return body

    def add_resource(self, stack, name, status, reason="", kind="OS::Nova::Server", nested_in=None, nested=None):
        """A resource of ``stack`` (nested_depth listing): ``nested_in``: the id of the nested
        stack holding it; ``nested``: the id of the nested stack it owns (a group, a node)."""
        owner = nested_in or stack["id"]
        links = [{"rel": "stack", "href": "%s/heat/v1/p1/stacks/x/%s" % (BASE, owner)}]
        if nested:
            links.append({"rel": "nested", "href": "%s/heat/v1/p1/stacks/y/%s" % (BASE, nested)})
        body = {
            "resource_name": name,
            "resource_type": kind,
            "resource_status": status,
            "resource_status_reason": reason,
            "physical_resource_id": "",
            "logical_resource_id": name,
            "required_by": [],
            "links": links,
            "updated_time": "2027-01-15T08:00:30Z",
        }
        self.resources[stack["id"]].append(body)
        return body

    # -- the connection ---------------------------------------------------------------

    def connect(self):
        """A real openstacksdk Connection whose HTTP goes to this fake."""
        import openstack.connection

        conn = openstack.connection.Connection(
            auth_type="none",
            auth={"endpoint": BASE},
            compute_endpoint_override=ENDPOINTS["compute"],
            orchestration_endpoint_override=ENDPOINTS["orchestration"],
            network_endpoint_override=ENDPOINTS["network"],
        )
        conn.session.session.mount(BASE, _Transport(self))
        return conn

    # -- the routes -------------------------------------------------------------------

    def list_servers(self, query):
        out = self.servers
        if "tags" in query:
            out = [s for s in out if _tags(query["tags"]) <= set(s["tags"])]
        if "tags-any" in query:
            out = [s for s in out if _tags(query["tags-any"]) & set(s["tags"])]
        return 200, {"servers": out}

    def list_stacks(self, query):
        out = self.stacks
        if "tags" in query:
            out = [s for s in out if _tags(query["tags"]) <= set(s["tags"])]
        if "tags_any" in query:
            out = [s for s in out if _tags(query["tags_any"]) & set(s["tags"])]
        if "name" in query:
            out = [s for s in out if s["stack_name"] == query["name"]]
        return 200, {"stacks": out}

    def list_resources(self, query, name, stack_id):
        if stack_id not in self.resources:
            return 404, {"explanation": "The Stack (%s) could not be found." % name, "code": 404}
        return 200, {"resources": self.resources[stack_id]}

    def list_events(self, query, name, stack_id):
        if stack_id not in self.events:
            return 404, {"explanation": "The Stack (%s) could not be found." % name, "code": 404}
        return 200, {"events": self.events[stack_id]}

    def list_floatingips(self, query):
        out = self.floatingips
        if "tags" in query:
            out = [f for f in out if _tags(query["tags"]) <= set(f.get("tags") or [])]
        return 200, {"floatingips": out}

    def answer(self, method, url):
        parts = urllib.parse.urlsplit(url)
        path = parts.path.rstrip("/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        self.requests.append((method, path + ("?" + parts.query if parts.query else "")))
        if method == "GET" and path in VERSIONS:
            return 200, VERSIONS[path]
        for verb, pattern, handler in ROUTES:
            match = re.search(pattern, path)
            if verb == method and match:
                return getattr(self, handler)(query, *match.groups())
        return 404, {"error": "no route for %s %s in the fake cloud" % (method, path)}


class _Transport(BaseAdapter):
    """A requests transport adapter: every request is answered by the FakeOpenStack."""

    def __init__(self, cloud):
        super().__init__()
        self.cloud = cloud

    def send(self, request, **kwargs):
        code, body = self.cloud.answer(request.method, request.url)
        response = requests.Response()
        response.status_code = code
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps(body).encode("utf-8")
        response.url = request.url
        response.request = request
        response.reason = "OK" if code < 400 else "Not Found"
        return response

    def close(self):
        pass
