"""Helpers for the tests that run the collection's playbooks against the local cloud.

- ``CloudUser``: a keystone user of its own in the demo project (member + heat_stack_owner,
  with its own ``demo-key`` keypair), so that the services' request logs can tell this test's
  calls from everybody else's on the shared cloud.
- ``Runner``: ``ansible-playbook coe.openstack.<name>`` with an inventory whose hosts are
  clusters, a store of its own, the user's clouds.yaml; returns rc, output and the recap.
- ``RequestLog``: the write calls (POST/PUT/PATCH/DELETE) the cloud received from a user
  between two points in time, read from the services' own logs.
- ``run_module_file``: one module run the way Ansible runs it (its file as ``__main__``, the
  arguments on stdin), with the write calls it made read from openstacksdk's HTTP log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid as uuidlib

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the collection the playbooks run from (COE_TEST_COLLECTIONS_PATH: another copy, e.g. an installed build)
COLLECTIONS = os.environ.get("COE_TEST_COLLECTIONS_PATH") or os.path.join(REPO, ".build", "collections")
MINICLOUD_STATE = os.environ.get("MINICLOUD_STATE", os.path.join(REPO, ".minicloud"))
CLOUDS_YAML = os.path.join(MINICLOUD_STATE, "clouds.yaml")
LOGS = os.path.join(MINICLOUD_STATE, "logs")
BIN = os.path.dirname(sys.executable)

MODULES = os.path.join(COLLECTIONS, "ansible_collections", "coe", "openstack", "plugins", "modules")

# runs a module file as __main__ with openstacksdk's HTTP debug log written to a file
MODULE_RUNNER = """
import logging, runpy, sys
handler = logging.FileHandler(sys.argv[2])
handler.setLevel(logging.DEBUG)
for name in ("keystoneauth", "openstack"):
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
WRITE_CALL = re.compile(r"REQ: curl -g -i (?:--insecure )?-X (POST|PUT|PATCH|DELETE) (\S+)")

RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+"
    r"failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)",
    re.M,
)


def public_key():
    """A throwaway OpenSSH public key for the test user's own "demo-key" (keypairs belong to a user)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def short_id():
    return uuidlib.uuid4().hex[:6]


def template(name, driver, **over):
    """A cluster template the local cloud can make (its fake image, m1.small, demo-key, private/public)."""
    spec = dict(
        name=name,
        driver=driver,
        image_id="fake-image",
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        keypair_id="demo-key",
        fixed_network="private",
        external_network_id="public",
        coe_version="v1.31.1",
    )
    spec.update(over)
    return spec


class CloudUser:
    """A keystone user of the test's own in the demo project; ``close()`` removes it."""

    def __init__(self, tmp_dir):
        import openstack

        with open(CLOUDS_YAML) as f:
            clouds = yaml.safe_load(f)["clouds"]
        demo = clouds["minicloud"]
        self.admin = openstack.connect(cloud="minicloud-admin")
        project = self.admin.identity.find_project(demo["auth"]["project_name"], ignore_missing=False)
        self.name = "coe-it-%s" % short_id()
        self.password = secrets.token_urlsafe(16)
        self.user = self.admin.identity.create_user(
            name=self.name, password=self.password, default_project_id=project.id, domain_id="default"
        )
        self.id = self.user.id
        try:
            self._set_up(project, demo, tmp_dir)
        except BaseException:
            self.admin.identity.delete_user(self.user, ignore_missing=True)
            raise

    def _set_up(self, project, demo, tmp_dir):
        import openstack

        for role_name in ("member", "heat_stack_owner"):
            role = self.admin.identity.find_role(role_name)
            if role is not None:
                self.admin.identity.assign_project_role_to_user(project, self.user, role)
        auth = dict(demo["auth"], username=self.name, password=self.password)
        cloud = dict(demo, auth=auth)
        self.clouds_yaml = os.path.join(str(tmp_dir), "clouds.yaml")
        with open(self.clouds_yaml, "w") as f:
            yaml.safe_dump({"clouds": {"coe-it": cloud}}, f)
        os.chmod(self.clouds_yaml, 0o600)
        # not through the clouds.yaml: OS_CLIENT_CONFIG_FILE (the fixture's) would win over it
        self.conn = openstack.connect(
            auth=auth,
            region_name=demo.get("region_name"),
            interface=demo.get("interface", "public"),
            identity_api_version=3,
            load_yaml_config=False,
            load_envvars=False,
        )
        self.conn.compute.create_keypair(name="demo-key", public_key=public_key())

    def close(self):
        try:
            self.conn.compute.delete_keypair("demo-key", ignore_missing=True)
        finally:
            self.admin.identity.delete_user(self.user, ignore_missing=True)


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout + proc.stderr
        self.recap = {
            m.group("host"): {k: int(v) for k, v in m.groupdict().items() if k != "host"}
            for m in RECAP.finditer(proc.stdout)
        }

    def __repr__(self):
        fatal = [line[:1500] for line in self.out.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
        return "rc=%s; failures:\n%s\n--- end of output:\n%s" % (self.rc, "\n".join(fatal), self.out[-3000:])


class Runner:
    """Runs the operation playbooks for one test: its own store, inventory and cloud user."""

    def __init__(self, tmp_dir, user, state_url=None):
        self.tmp = str(tmp_dir)
        self.user = user
        self.state_url = state_url or "sqlite:///%s" % os.path.join(self.tmp, "coe.db")
        self.env = dict(
            os.environ,
            ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_LOCALHOST_WARNING="False",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
            ANSIBLE_RETRY_FILES_ENABLED="False",
            OS_CLIENT_CONFIG_FILE=user.clouds_yaml,
            OS_CLOUD="coe-it",
            COE_STATE_URL=self.state_url,
            COE_SECRET_KEY="integration-test-key-%s" % short_id(),
            PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        )
        self.env.pop("COE_PROJECT", None)

    def inventory(self, hosts):
        """An inventory file whose hosts are clusters and whose host vars are their spec."""
        path = os.path.join(self.tmp, "inventory-%s.yml" % short_id())
        with open(path, "w") as f:
            yaml.safe_dump({"all": {"hosts": hosts}}, f)
        return path

    def run(self, playbook, hosts=None, extra=None, check=False, diff=False, limit=None, timeout=1200, args=()):
        # an operation playbook of the collection by name, or a playbook file of the test's own
        target = playbook if playbook.endswith(".yml") else "coe.openstack.%s" % playbook
        cmd = [os.path.join(BIN, "ansible-playbook"), target]
        if hosts is not None:
            cmd += ["-i", self.inventory(hosts)]
        if extra:
            path = os.path.join(self.tmp, "extra-%s.json" % short_id())
            with open(path, "w") as f:
                json.dump(extra, f)
            cmd += ["-e", "@" + path]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        if limit:
            cmd += ["--limit", limit]
        cmd += list(args)
        proc = subprocess.run(
            cmd, check=False, capture_output=True, text=True, env=self.env, cwd=self.tmp, timeout=timeout
        )
        return Result(proc)

    def popen(self, playbook, hosts, extra=None):
        """Start a playbook without waiting (for concurrency tests)."""
        cmd = [os.path.join(BIN, "ansible-playbook"), "coe.openstack.%s" % playbook, "-i", self.inventory(hosts)]
        if extra:
            path = os.path.join(self.tmp, "extra-%s.json" % short_id())
            with open(path, "w") as f:
                json.dump(extra, f)
            cmd += ["-e", "@" + path]
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env, cwd=self.tmp
        )

    def store(self):
        from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

        return open_store(self.state_url)

    def record(self, name):
        with self.store() as store:
            return store.find_cluster("default", name)

    def templates(self, *templates):
        result = self.run("template", extra={"coe_templates": list(templates)})
        assert result.rc == 0, result
        return result


class RequestLog:
    """Write calls the cloud received from one user, from the services' own logs.

    nova-api's requestlog lines and heat-api's "Processing request" lines carry the
    user id, so they are attributed exactly. neutron and glance log requests through
    uWSGI only (method and path, no user); a write there counts when its path names
    one of ``resource_ids`` (this test's ports, floating IPs, security groups ...), so
    that other tests running on the same cloud at the same time are not counted.
    Getting a token (POST /v3/auth/tokens) is not a write.
    """

    USER_LOGS = {
        "nova-api.log": re.compile(r"requestlog \[\S+ \S+ (?P<user>\w+) \w+ .*\"(?P<method>[A-Z]+) (?P<path>\S+)\""),
        "heat-api.log": re.compile(
            r"\[\S+ \S+ (?P<user>\w+) \w+ .*Processing request: (?P<method>[A-Z]+) (?P<path>\S+)"
        ),
    }
    UWSGI_LOGS = ("neutron.out", "glance.out")
    UWSGI_LINE = re.compile(r"\] (?P<method>[A-Z]+) (?P<path>\S+) =>")
    WRITES = ("POST", "PUT", "PATCH", "DELETE")

    def __init__(self, user_id):
        self.user_id = user_id
        self.offsets = {}

    def _files(self):
        return list(self.USER_LOGS) + list(self.UWSGI_LOGS)

    def mark(self):
        for name in self._files():
            path = os.path.join(LOGS, name)
            self.offsets[name] = os.path.getsize(path) if os.path.exists(path) else 0

    def writes(self, resource_ids=()):
        found = []
        for name in self._files():
            path = os.path.join(LOGS, name)
            if not os.path.exists(path):
                continue
            with open(path, errors="replace") as f:
                f.seek(self.offsets.get(name, 0))
                text = f.read()
            for line in text.splitlines():
                if name in self.USER_LOGS:
                    m = self.USER_LOGS[name].search(line)
                    if m and m.group("user") == self.user_id and m.group("method") in self.WRITES:
                        found.append("%s: %s %s" % (name, m.group("method"), m.group("path")))
                else:
                    m = self.UWSGI_LINE.search(line)
                    if m and m.group("method") in self.WRITES and any(i in m.group("path") for i in resource_ids):
                        found.append("%s: %s %s" % (name, m.group("method"), m.group("path")))
        return [w for w in found if "/auth/tokens" not in w]

    def has_logs(self):
        return all(os.path.exists(os.path.join(LOGS, n)) for n in self.USER_LOGS)


def cloud_resources(conn, uuid, name):
    """What the cloud has of a cluster: everything tagged with its uuid, or named after it."""
    tag = "coe-cluster-%s" % uuid
    servers = list(conn.compute.servers(tags=tag))
    named = list(conn.compute.servers(name="^%s-" % re.escape(name)))
    found = dict(
        servers=sorted({s.name for s in servers + named}),
        stacks=sorted(s.name for s in conn.orchestration.stacks() if tag in (s.tags or []) or s.name.startswith(name)),
        ports=sorted(p.id for p in conn.network.ports(tags=tag)),
        floating_ips=sorted(f.floating_ip_address for f in conn.network.ips(tags=tag)),
        security_groups=sorted(g.id for g in conn.network.security_groups(tags=tag)),
        server_groups=sorted(
            g.name for g in conn.compute.server_groups() if uuid in (g.name or "") or (g.name or "").startswith(name)
        ),
        load_balancers=sorted(
            lb.name for lb in conn.load_balancer.load_balancers() if tag in (lb.tags or []) or uuid in (lb.name or "")
        ),
    )
    return found


def run_module_file(name, args, tmp_dir, check=False, diff=False, timeout=900):
    """Run plugins/modules/<name>.py as Ansible would, on the cloud ``minicloud``.

    Returns ``(result, writes)``: the module's JSON result and the ``(method, url)`` of every
    POST/PUT/PATCH/DELETE it sent (getting a token aside). AssertionError when it printed no JSON.
    """
    payload = dict(args, cloud="minicloud", _ansible_check_mode=check, _ansible_diff=diff)
    log = os.path.join(str(tmp_dir), "http-%s.log" % uuidlib.uuid4().hex[:8])
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run(
        [sys.executable, "-c", MODULE_RUNNER, os.path.join(MODULES, name + ".py"), log],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}),
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=timeout,
    )
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON:\n%s\n%s" % (proc.stdout, proc.stderr)) from None
    text = ""
    if os.path.exists(log):
        with open(log) as f:
            text = f.read()
    writes = [(m.group(1), m.group(2)) for m in WRITE_CALL.finditer(text) if "/auth/tokens" not in m.group(2)]
    return result, writes


def observe_while(run, observe, pause=0.2):
    """Call ``run()`` in a thread and ``observe()`` again and again until it returns.

    Returns ``(what run returned, [what observe returned, ...])``: one observation before
    ``run`` starts, those taken while it ran, and one after it returned.
    """
    done = {}

    def target():
        try:
            done["result"] = run()
        except BaseException as e:  # handed to the caller below
            done["error"] = e

    seen = [observe()]
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    while worker.is_alive():
        seen.append(observe())
        time.sleep(pause)
    worker.join()
    if "error" in done:
        raise done["error"]
    seen.append(observe())
    return done["result"], seen


def check_failing_create(name, seen, failing="default-worker", building="default-master"):
    """The one rule on a create whose nodegroup ``failing`` fails while ``building`` builds.

    ``seen``: records as ``cluster_sync`` leaves them after each observation (observe_while),
    the last one taken after the driver returned. Every observation: the cluster is never
    complete; while a node of it is in BUILD or a nodegroup is in progress it is
    CREATE_IN_PROGRESS; a nodegroup without all its nodes ACTIVE is never complete; one with a
    node in BUILD is in progress; one with a node in ERROR is CREATE_FAILED with Nova's words;
    CREATE_FAILED, once seen, stays (no flicker). The last one: the cluster CREATE_FAILED naming the failed
    nodegroup and node, ``building`` CREATE_COMPLETE (every node of it ACTIVE). Returns how many observations saw
    ``failing`` failed while the cluster was still in progress.
    """
    failed_seen = False
    early = 0
    for rec in seen:
        groups = {g["name"]: g for g in rec["nodegroups"]}
        nodes = [n for g in groups.values() for n in g.get("nodes") or []]
        assert rec["status"] in ("CREATE_IN_PROGRESS", "CREATE_FAILED"), rec
        if any(n["status"] == "BUILD" for n in nodes) or any(
            g.get("status") == "CREATE_IN_PROGRESS" for g in groups.values()
        ):
            assert rec["status"] == "CREATE_IN_PROGRESS", (rec["status"], rec["status_reason"], nodes)
        for g in groups.values():
            if any(n["status"] == "BUILD" for n in g.get("nodes") or []):
                assert g["status"] == "CREATE_IN_PROGRESS", g
            if len([n for n in g.get("nodes") or [] if n["status"] == "ACTIVE"]) < g["node_count"]:
                assert g.get("status") != "CREATE_COMPLETE", g
            if any(n["status"] == "ERROR" for n in g.get("nodes") or []):
                assert g["status"] == "CREATE_FAILED", g
                assert "No valid host was found" in g["status_reason"], g
                early += rec["status"] == "CREATE_IN_PROGRESS"
        if failed_seen:
            assert rec["status"] == "CREATE_FAILED", "CREATE_FAILED then %s: %s" % (rec["status"], rec["status_reason"])
        failed_seen = rec["status"] == "CREATE_FAILED"
    last = seen[-1]
    groups = {g["name"]: g for g in last["nodegroups"]}
    assert last["status"] == "CREATE_FAILED", (last["status"], last["status_reason"])
    node = "%s-%s-0" % (name, failing)
    for word in (failing, node, "No valid host was found"):
        assert word in last["status_reason"], (word, last["status_reason"])
    assert groups[failing]["status"] == "CREATE_FAILED" and node in groups[failing]["status_reason"], groups[failing]
    made = [n for n in groups[building].get("nodes") or [] if n["status"] == "ACTIVE"]
    if len(made) == groups[building]["node_count"]:
        assert groups[building]["status"] == "CREATE_COMPLETE", groups[building]
    else:  # the orchestration stopped before it made them all (Heat stops at the first failure)
        assert groups[building]["status"] == "CREATE_FAILED", groups[building]
    return early
