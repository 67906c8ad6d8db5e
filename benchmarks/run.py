#!/usr/bin/env python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Benchmarks (not tests) of coe.openstack on the local cloud: `make bench`.

Every operation of the collection is measured against a reference doing the same
cloud work in the same run, interleaved, and against the Ansible floor, so that what
the collection's machinery costs by itself can be read on a busy machine:

  overhead = ours - reference - floor   (medians of the run)

  operations  create 1 master + N workers (--workers), scale out +10, remove 5 named
              workers (--scale), an idempotent re-run of create, delete; per driver, each one
              `ansible-playbook coe.openstack.create|update|delete` end to end
  references  Nova driver: "raw openstacksdk", the same cloud work as the driver's done
              by plain concurrent openstacksdk (one shared Connection): the security
              group with its rules, the masters' server group and the API floating IP
              at once, the servers from 10 threads, the floating IP attached to the
              master once it is ACTIVE, one tag-filtered list per second (Run.raw_create;
              until 2026-12-02 the servers alone, benchmarks/nova_50.py's run_raw);
              Heat driver: "Heat alone", the very stack template the Heat driver
              renders (the collection's own builder) created, scaled (+10), trimmed
              (5 named members, through the ResourceGroup's removal_policies) and
              deleted by plain openstacksdk calls to Heat, polling the stack's status
              once a second; an idempotent re-run has no cloud work to do (0)
  floor       one `ansible-playbook` run of a single ansible.builtin.ping task on
              localhost (connection local), timed in every round of the same run
  besides     a playbook looping openstack.cloud.server (openstack.cloud 2.5.0 from
              the `ansible` 12 package, in .build/bench-venv with openstacksdk
              4.14.0), what people do today; `coe.openstack.sync` of 10, 50 and 200
              clusters; the fixed cost of one module invocation

Counted per operation:

  module processes  every module process Ansible launches: the play's interpreter is
                    a wrapper (-e ansible_python_interpreter) that appends a line per
                    launch to an events file, in which a callback
                    (benchmarks/callback_plugins) writes a line per task start, so each
                    launch is the task's before it. Launches by tasks of the front
                    door's wait loop (roles/cluster/tasks/wait.yml: counting.POLL_TASK_FILES)
                    are counted apart: "polls" (the collection's modules) and the
                    loop's sleeps (wait_for). The task times make the profile.
  tokens            POST /v3/auth/tokens made by the benchmarked process, counted by a
                    counting HTTP proxy that only the benchmarked processes use
                    (HTTP_PROXY in their environment; the in-process references too),
                    so neither the services' calls to each other nor other sessions on
                    the shared cloud count; cross-checked in Keystone's own request log
                    (keystone.out, uWSGI): its lines carry no user, but a token issued
                    to the run's own user has a response size of its own (the user's
                    name is part of it), measured at the start
  write calls       POST/PUT/PATCH/DELETE through the proxy (every service); cross-
                    checked in nova-api's and heat-api's request logs, whose lines carry
                    the user id

Everything runs as a user of its own, coe-bench-XXXX…, made in the demo project
with the demo user's roles (and a keypair demo-key with the demo user's public key),
removed at the end: other sessions use the demo user. The local cloud's files are
read from $MINICLOUD_HOME (default .minicloud): clouds.yaml and logs/.

Usage:
  .venv/bin/python benchmarks/run.py            full run (3 runs; sizes 10 and 50)
  .venv/bin/python benchmarks/run.py --quick    1 run, 1 + 2 workers, +3 -2, a few minutes
  .venv/bin/python benchmarks/run.py --render .build/bench/<run>/results.json
                                                the table again, without measuring
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import types
import uuid as uuidlib

# benchmarks/ is sys.path[0] when this file runs as a script
import nova_50  # the Nova engineer's floor (run_raw, cleanup); importing it links the collection
import openstack
import yaml
from counting import WRAPPER, CountingProxy, LogWindow, calibrate_token_size, read_events, summarise_calls
from heat_alone import HeatAlone

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COLLECTIONS = os.path.join(REPO, ".build", "collections")
BIN = os.path.join(REPO, ".venv", "bin")
BENCH_VENV = os.path.join(REPO, ".build", "bench-venv")
WORK = os.path.join(REPO, ".build", "bench")
MINICLOUD_HOME = os.environ.get("MINICLOUD_HOME") or os.path.join(REPO, ".minicloud")
CALLBACKS = os.path.join(HERE, "callback_plugins")
DOC = os.path.join(REPO, "docs", "benchmarks.md")
BASELINE_NAME = "benchmarks/baseline.json"
BASELINE = os.path.join(REPO, BASELINE_NAME)
CLOUD = "minicloud"
MARK_START = "<!-- results: generated by benchmarks/run.py, do not edit by hand -->"
MARK_END = "<!-- end of generated results -->"
# The aims of issue 19 (seconds): overhead of every measured operation, re-run vs floor.
AIM_OVERHEAD = 3.0
AIM_RERUN = 1.0
AIM_PROCESSES = 4

os.environ.setdefault("OS_CLIENT_CONFIG_FILE", os.path.join(MINICLOUD_HOME, "clouds.yaml"))


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

# Who did an operation: the collection's drivers, their references, the floor.
REFERENCE = {"nova": "raw openstacksdk", "heat": "Heat alone"}


def raw_cleanup(conn, tag):
    """Everything the raw reference made under ``tag``: servers first (waited for), then the rest."""
    nova_50.cleanup(conn, tag)
    for fip in conn.network.ips(tags=tag):
        conn.network.delete_ip(fip, ignore_missing=True)
    for group in conn.compute.server_groups():
        if group.name == tag:
            conn.compute.delete_server_group(group, ignore_missing=True)
    for sg in conn.network.security_groups(name=tag):
        conn.network.delete_security_group(sg, ignore_missing=True)


FLOOR_CASE = "Ansible floor"
FLOOR_WHO = "ansible-playbook, one ping task"
OSC = "openstack.cloud loop"
# The order of the operations in the table (by the start of their label), then by size.
OP_KINDS = ("create", "scale out", "remove", "idempotent re-run", "delete")
# Per operation and subject, besides the wall time ("wall", seconds).
COUNTS = ("processes", "polls", "waits", "tasks", "tokens", "tokens (keystone log)", "writes", "writes (logs)", "calls")


def op_create(workers):
    return "create 1 + %d" % workers


def op_scale(workers, add):
    return "scale out +%d (from 1 + %d)" % (add, workers)


def op_remove(workers, add, remove):
    return "remove %d named (from 1 + %d)" % (remove, workers + add)


def op_rerun(workers):
    return "idempotent re-run (1 + %d)" % workers


def op_delete(workers):
    return "delete (1 + %d)" % workers


def driver_who(driver):
    return "%s driver" % driver


class Results:
    """Values of every run by (case, subject, metric); metric None for the plain rows."""

    def __init__(self):
        self.values = {}  # (case, subject, metric) -> [float]
        self.units = {}
        self.order = []

    def add(self, case, subject, value, unit="s", metric=None):
        key = (case, subject, metric)
        if key not in self.values:
            self.values[key] = []
            self.order.append(key)
        self.values[key].append(value)
        self.units[key] = unit

    def add_op(self, op, who, metric, value):
        self.add(op, who, value, "s" if metric == "wall" else "n", metric)

    def stats(self, key):
        vals = self.values.get(key) or []
        if not vals:
            return None
        return dict(median=statistics.median(vals), min=min(vals), max=max(vals), n=len(vals))

    def median(self, case, subject, metric=None):
        st = self.stats((case, subject, metric))
        return st["median"] if st else None

    def to_json(self):
        return [
            dict(case=c, subject=s, metric=m, unit=self.units[(c, s, m)], values=self.values[(c, s, m)])
            for c, s, m in self.order
        ]

    @classmethod
    def from_json(cls, rows):
        res = cls()
        for row in rows:
            for value in row["values"]:
                res.add(row["case"], row["subject"], value, row["unit"], row.get("metric"))
        return res

    def operations(self):
        """The operation labels measured, in table order."""
        ops = []
        for case, subject, metric in self.order:
            if metric == "wall" and subject.endswith(" driver") and case not in ops:
                ops.append(case)

        def rank(op):
            kind = next((i for i, k in enumerate(OP_KINDS) if op.startswith(k)), len(OP_KINDS))
            size = [int(x) for x in re.findall(r"\d+", op)]
            return kind, size

        return sorted(ops, key=rank)


def fmt(value, unit):
    if value is None:
        return "-"
    if unit == "s":
        return "%.2f" % value if abs(value) < 10 else "%.1f" % value
    if unit == "x":
        return "%.2f" % value
    return "%d" % value if float(value).is_integer() else "%.1f" % value


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------


def local_play(name, tasks):
    """A playbook of one play on localhost (connection local, the playbook's Python)."""
    return (
        "---\n- name: %s\n  hosts: localhost\n  gather_facts: false\n  connection: local\n"
        '  vars:\n    ansible_python_interpreter: "{{ ansible_playbook_python }}"\n  tasks:\n%s'
    ) % (name, tasks)


FLOOR_PLAYBOOK = local_play(
    "The Ansible floor, one ping task",
    """    - name: Ping
      ansible.builtin.ping:
""",
)

OSC_PLAYBOOK = local_play(
    "Servers, one openstack.cloud.server task per server (what people do today)",
    """    - name: Server
      openstack.cloud.server:
        cloud: minicloud
        name: "{{ item }}"
        image: fake-image
        flavor: "{{ 'm1.medium' if item is search('-master-') else 'm1.small' }}"
        network: private
        key_name: demo-key
        auto_ip: false
        wait: true
        timeout: 600
      loop: "{{ bench_names }}"
""",
)


def fixed_play(what, task):
    """K invocations of one module (case 5): ``-e bench_k=K``."""
    return local_play(
        "K %s" % what,
        '    - name: %s\n      %s\n      loop: "{{ range(bench_k | int) | list }}"\n' % (what, task),
    )


class Bench:
    def __init__(self, args):
        self.args = args
        self.suffix = uuidlib.uuid4().hex[:4]
        self.work = os.path.join(WORK, time.strftime("%Y%m%d-%H%M%S-") + self.suffix)
        os.makedirs(self.work, exist_ok=True)
        self.results = Results()
        self.proxy = CountingProxy()
        self.bench_user = None
        self.make_user()
        try:
            self.conn = openstack.connect(cloud=CLOUD)
            self.conn.authorize()
            self.user_id = self.conn.current_user_id
            self.conn.compute.create_keypair(name="demo-key", public_key=self.public_key)
            self.token_size = calibrate_token_size(lambda: openstack.connect(cloud=CLOUD).authorize())
        except Exception:
            self.admin.identity.delete_user(self.bench_user, ignore_missing=True)
            raise
        self.state_url = "sqlite:///%s" % os.path.join(self.work, "coe.db")
        self.env = dict(os.environ)
        self.env.update(
            ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
            ANSIBLE_LOCALHOST_WARNING="False",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_CALLBACK_PLUGINS=CALLBACKS,
            ANSIBLE_CALLBACKS_ENABLED="coe_bench_events",
            OS_CLIENT_CONFIG_FILE=os.environ["OS_CLIENT_CONFIG_FILE"],
            OS_CLOUD=CLOUD,
            COE_STATE_URL=self.state_url,
            COE_SECRET_KEY="bench-" + uuidlib.uuid4().hex,
            # the collection's token cache (one token for the plays after the first): the
            # run's own, never ~/.cache; --token-cache cold gives each operation a new one
            COE_TOKEN_CACHE_DIR=os.path.join(self.work, "token-cache"),
            PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
        )
        for key in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            self.env.pop(key, None)
        self.osc_env = dict(self.env)
        self.osc_env.pop("ANSIBLE_COLLECTIONS_PATH")
        self.osc_env["PATH"] = os.path.join(BENCH_VENV, "bin") + os.pathsep + os.environ.get("PATH", "")
        self.templates = dict(nova="bench-k8s-nova-" + self.suffix, heat="bench-k8s-heat-" + self.suffix)
        self.template_specs = {driver: self.template_spec(driver, name) for driver, name in self.templates.items()}
        self.wrappers = {}  # ansible bin folder -> interpreter wrapper
        self.created = []  # cluster names to delete at the end if still there
        self.osc_names = []
        self.raw_tags = []
        self.heat_alone = []  # HeatAlone stacks to delete at the end if still there
        self.runs_logged = 0
        self.cold_caches = 0
        self.last_events = None
        self.details = []  # free-text lines for the report
        self.profiles = []  # what each of our playbook runs did (results.json, details)
        self.wall = 0.0
        self.started = time.monotonic()

    # -- a user of our own ----------------------------------------------------

    def make_user(self):
        """A user coe-bench-XXXX… in the demo project with the demo user's roles and a
        keypair demo-key holding the demo user's public key: its id in the services'
        request logs tells this run's requests from other sessions' (who use the demo
        user), and its name's length the size of its tokens in Keystone's."""
        base = os.environ["OS_CLIENT_CONFIG_FILE"]
        demo = openstack.connect(cloud=CLOUD)
        self.public_key = demo.compute.get_keypair("demo-key").public_key
        admin = openstack.connect(cloud=CLOUD + "-admin")
        project = admin.identity.find_project("demo", ignore_missing=False)
        demo_user = admin.identity.find_user("demo", ignore_missing=False)
        password = uuidlib.uuid4().hex
        self.bench_user = admin.identity.create_user(
            # a name of a length of its own: the size of its tokens in Keystone's log
            name="coe-bench-%s" % uuidlib.uuid4().hex[: random.randint(8, 32)],
            password=password,
            default_project_id=project.id,
            domain_id="default",
        )
        self.admin = admin
        for assignment in admin.identity.role_assignments(user_id=demo_user.id, scope_project_id=project.id):
            role = admin.identity.get_role(assignment.role["id"])
            admin.identity.assign_project_role_to_user(project, self.bench_user, role)
        with open(base, encoding="utf-8") as handle:
            clouds = yaml.safe_load(handle)
        mine = json.loads(json.dumps(clouds["clouds"][CLOUD]))
        mine["auth"]["username"] = self.bench_user.name
        mine["auth"]["password"] = password
        clouds["clouds"][CLOUD] = mine
        path = os.path.join(self.work, "clouds.yaml")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            yaml.safe_dump(clouds, handle)
        os.environ["OS_CLIENT_CONFIG_FILE"] = path

    def drop_user(self):
        if self.bench_user is None:
            return
        try:
            self.conn.compute.delete_keypair("demo-key", ignore_missing=True)
        finally:
            self.admin.identity.delete_user(self.bench_user, ignore_missing=True)
            self.bench_user = None

    # -- helpers -------------------------------------------------------------

    def counted_env(self, env):
        env = dict(env)
        env["HTTP_PROXY"] = env["http_proxy"] = self.proxy.url
        return env

    def measured_env(self, env):
        """The environment of a measured playbook: counted, and with --token-cache cold
        an empty token cache of the collection's of its own."""
        env = self.counted_env(env)
        if self.args.token_cache == "cold":
            self.cold_caches += 1
            env["COE_TOKEN_CACHE_DIR"] = os.path.join(self.work, "token-cache-%d" % self.cold_caches)
        return env

    class _Proxied:
        """This process's own openstacksdk calls through the counting proxy (requests
        reads the proxy from the environment at each request)."""

        KEYS = ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")

        def __init__(self, url):
            self.url = url
            self.saved = {}

        def __enter__(self):
            self.saved = {k: os.environ.pop(k) for k in self.KEYS if k in os.environ}
            os.environ["HTTP_PROXY"] = os.environ["http_proxy"] = self.url

        def __exit__(self, *exc):
            for key in self.KEYS:
                os.environ.pop(key, None)
            os.environ.update(self.saved)

    def wrapper(self, ansible_bin):
        """The interpreter wrapper for the playbooks of this Ansible (notes each launch)."""
        if ansible_bin not in self.wrappers:
            path = os.path.join(self.work, "python-%d" % len(self.wrappers))
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(WRAPPER % os.path.join(ansible_bin, "python"))
            os.chmod(path, 0o755)
            self.wrappers[ansible_bin] = path
        return self.wrappers[ansible_bin]

    def playbook(self, args, env=None, what=None, ansible_bin=BIN):
        """Run ansible-playbook; the seconds it took. Its module processes and task
        starts go to an events file (self.last_events)."""
        self.runs_logged += 1
        stem = "%03d-%s" % (self.runs_logged, re.sub(r"[^A-Za-z0-9_.-]+", "_", what or args[-1])[:60])
        events = os.path.join(self.work, stem + ".events")
        env = dict(env or self.env, COE_BENCH_EVENTS=events)
        cmd = [
            os.path.join(ansible_bin, "ansible-playbook"),
            *list(args),
            "-e",
            "ansible_python_interpreter=%s" % self.wrapper(ansible_bin),
        ]
        self.last_started = time.time()
        started = time.monotonic()
        proc = subprocess.run(cmd, env=env, cwd=self.work, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
        self.last_ended = time.time()
        self.last_events = events
        # every playbook's output stays in the work folder, to read what a slow run did
        self.write(stem + ".log", proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
            raise RuntimeError("%s failed (rc %d):\n%s" % (what or " ".join(args), proc.returncode, tail))
        return elapsed

    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def inventory(self, name, driver, workers, remove=None):
        host = {"coe_cluster_template": self.templates[driver], "coe_master_count": 1, "coe_node_count": workers}
        if remove:
            host["coe_nodes_to_remove"] = remove
        return self.write("inv-%s.yml" % name, json.dumps({"all": {"hosts": {name: host}}}))

    # -- counting one operation -------------------------------------------------

    def counted(self, op, who, calls, window, run):
        """Record the calls, writes and token issues of one measured operation."""
        time.sleep(1)  # the services write their log lines once the responses are out
        res = self.results
        res.add_op(op, who, "tokens", calls["token_issues"])
        res.add_op(op, who, "writes", calls["writes"])
        res.add_op(op, who, "calls", calls["total"])
        logged = window.writes()
        res.add_op(op, who, "writes (logs)", sum(len(v) for v in logged.values()))
        tokens = window.tokens()
        if tokens is not None:
            res.add_op(op, who, "tokens (keystone log)", tokens)
        if run == 1:
            self.details.append("%s, %s: API calls by service %s" % (op, who, calls["by_service"]))

    def ours(self, op, driver, args, run):
        """One playbook of ours, counted: wall time, module processes, calls, tokens, writes."""
        who = driver_who(driver)
        env = self.measured_env(self.env)
        window = LogWindow(self.user_id, self.token_size)
        self.proxy.take()
        elapsed = self.playbook(args, env=env, what="%s %s" % (op, who))
        calls = summarise_calls(self.proxy.take())
        self.results.add_op(op, who, "wall", elapsed)
        self.processes(op, who, run)
        self.counted(op, who, calls, window, run)
        if calls["writes"] and op.startswith("idempotent"):
            self.details.append("%s, %s (run %d): writes %s" % (op, who, run, calls["writes_list"][:10]))
        return elapsed

    def processes(self, op, who, run):
        ev = read_events(self.last_events, self.last_started, self.last_ended)
        for metric in ("processes", "polls", "waits", "tasks"):
            self.results.add_op(op, who, metric, ev[metric])
        self.profiles.append(dict(op=op, who=who, run=run, **ev))

    def reference(self, op, who, run, action):
        """A reference in this process, counted through the proxy: ``action()`` returns
        (seconds, value); returns the value."""
        window = LogWindow(self.user_id, self.token_size)
        self.proxy.take()
        with self._Proxied(self.proxy.url):
            elapsed, value = action()
        calls = summarise_calls(self.proxy.take())
        self.results.add_op(op, who, "wall", elapsed)
        self.counted(op, who, calls, window, run)
        return value

    def floor(self, run):
        """The Ansible floor: one ansible-playbook run of a single ping task."""
        self.proxy.take()
        elapsed = self.playbook(["floor.yml"], what="Ansible floor")
        self.results.add_op(FLOOR_CASE, FLOOR_WHO, "wall", elapsed)
        self.processes(FLOOR_CASE, FLOOR_WHO, run)

    # -- set-up --------------------------------------------------------------

    def template_spec(self, driver, name):
        return dict(
            name=name,
            driver=driver,
            image_id="fake-image",
            flavor_id="m1.small",
            master_flavor_id="m1.medium",
            keypair_id="demo-key",
            fixed_network="private",
            external_network_id="public",
            coe_version="v1.31.1",
            labels={"kube_tag": "v1.31.1"},
        )

    def setup(self):
        templates = [self.template_specs[driver] for driver in sorted(self.template_specs)]
        extra = self.write("templates.json", json.dumps({"coe_templates": templates}))
        self.playbook(["coe.openstack.template", "-e", "@" + extra], what="templates")
        self.write("floor.yml", FLOOR_PLAYBOOK)
        self.write("osc-servers.yml", OSC_PLAYBOOK)
        self.write("fixed-ping.yml", fixed_play("Ping", "ansible.builtin.ping:"))
        self.write("fixed-osc-auth.yml", fixed_play("Auth", "openstack.cloud.auth:\n        cloud: minicloud"))
        self.write(
            "fixed-coe-sync.yml",
            fixed_play(
                "Sync one cluster",
                'coe.openstack.cluster_sync:\n        name: "{{ bench_cluster }}"\n'
                '        state_url: "{{ bench_state_url }}"',
            ),
        )

    # -- the references ----------------------------------------------------------

    def raw_create(self, count, tag):
        """The Nova driver's cloud work, done by hand with openstacksdk: (seconds, conn).

        What the driver makes for a cluster of 1 master + ``count - 1`` workers, as a
        person who knows the APIs would make it: the security group (its rules in one
        bulk call), the masters' server group (anti-affinity) and the API floating IP at
        once; then the servers from 10 threads (the master in its group, all in the
        security group); the floating IP attached to the master as soon as it is ACTIVE;
        done when every server is ACTIVE and Nova shows the floating IP on the master.
        No user-data (the Heat probe in docs/benchmarks.md: user-data is not a cost).
        """
        started = time.monotonic()
        self.raw_tags.append(tag)
        conn = openstack.connect(cloud=CLOUD)
        conn.authorize()

        def security_group():
            sg = conn.network.create_security_group(name=tag, description=tag)
            conn.network.set_tags(sg, [tag])
            rules = [dict(remote_group_id=sg.id)] + [
                dict(protocol="tcp", port_range_min=p, port_range_max=p, remote_ip_prefix="0.0.0.0/0")
                for p in (22, 6443, 10250)
            ]
            list(
                conn.network.create_security_group_rules(
                    [dict(r, security_group_id=sg.id, direction="ingress", ethertype="IPv4") for r in rules]
                )
            )
            return sg

        def floating_ip():
            fip = conn.network.create_ip(floating_network_id=conn.network.find_network("public").id, description=tag)
            conn.network.set_tags(fip, [tag])
            return fip

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = dict(
                sg=pool.submit(security_group),
                group=pool.submit(lambda: conn.compute.create_server_group(name=tag, policy="anti-affinity")),
                fip=pool.submit(floating_ip),
                image=pool.submit(lambda: conn.image.find_image("fake-image", ignore_missing=False)),
                flavor=pool.submit(lambda: conn.compute.find_flavor("m1.small", ignore_missing=False)),
                network=pool.submit(lambda: conn.network.find_network("private", ignore_missing=False)),
            )
        got = {k: f.result() for k, f in futures.items()}

        def create(i):
            extra = dict(scheduler_hints={"group": got["group"].id}) if i == 0 else {}
            return conn.compute.create_server(
                name="%s-%s-%d" % (tag, "master" if i == 0 else "worker", i),
                image_id=got["image"].id,
                flavor_id=got["flavor"].id,
                networks=[{"uuid": got["network"].id}],
                security_groups=[{"name": got["sg"].id}],
                tags=[tag],
                **extra,
            )

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            servers = list(pool.map(create, range(count)))
        master, ids = servers[0].id, {s.id for s in servers}
        address, attached = got["fip"].floating_ip_address, False
        while True:
            views = {v.id: v for v in conn.compute.servers(details=True, tags=tag)}
            if not attached and views.get(master) is not None and views[master].status == "ACTIVE":
                port = next(iter(conn.network.ports(device_id=master)))
                conn.network.update_ip(got["fip"], port_id=port.id)
                attached = True
            shown = attached and any(
                a.get("addr") == address for nets in (views[master].addresses or {}).values() for a in nets
            )
            if shown and all(views.get(i) is not None and views[i].status in ("ACTIVE", "ERROR") for i in ids):
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
        active = sum(1 for i in ids if views[i].status == "ACTIVE")
        if active != count:
            raise RuntimeError("raw: %d of %d servers ACTIVE" % (active, count))
        return elapsed, conn

    def raw_add(self, conn, tag, count):
        """Boot ``count`` more tagged servers into the security group ``raw_create`` made (as
        the driver's new workers go into the cluster's) and wait for them: (seconds, their ids)."""
        started = time.monotonic()
        image = conn.image.find_image("fake-image", ignore_missing=False)
        flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
        network = conn.network.find_network("private", ignore_missing=False)
        sg = conn.network.find_security_group(tag, ignore_missing=False)

        def create(i):
            return conn.compute.create_server(
                name="bench-raw-add-%d" % i,
                image_id=image.id,
                flavor_id=flavor.id,
                networks=[{"uuid": network.id}],
                security_groups=[{"name": sg.id}],
                tags=[tag],
            ).id

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            ids = list(pool.map(create, range(count)))
        while True:
            servers = {s.id: s.status for s in conn.compute.servers(details=True, tags=tag)}
            if all(servers.get(i) in ("ACTIVE", "ERROR") for i in ids):
                break
            time.sleep(1)
        return time.monotonic() - started, ids

    def raw_remove(self, conn, tag, gone):
        """Delete the servers ``gone`` and wait until they are: (seconds, None)."""
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            list(pool.map(conn.compute.delete_server, gone))
        while True:
            left = {s.id for s in conn.compute.servers(details=False, tags=tag)}
            if not left.intersection(gone):
                break
            time.sleep(1)
        return time.monotonic() - started, None

    def raw_delete(self, conn, tag):
        """Servers (waiting until they are gone), then the floating IP, the server group and the security group."""
        started = time.monotonic()
        raw_cleanup(conn, tag)
        return time.monotonic() - started, None

    def osc_names_for(self, prefix, workers):
        return ["%s-master-1" % prefix] + ["%s-worker-%d" % (prefix, i) for i in range(1, workers + 1)]

    def osc_run(self, names, counted=False):
        extra = self.write("osc-names.json", json.dumps({"bench_names": names}))
        env = self.counted_env(self.osc_env) if counted else self.osc_env
        return self.playbook(
            ["osc-servers.yml", "-e", "@" + extra],
            env=env,
            what="openstack.cloud loop",
            ansible_bin=os.path.join(BENCH_VENV, "bin"),
        )

    def osc_cleanup(self, prefix):
        servers = list(self.conn.compute.servers(details=False, name="^%s-" % re.escape(prefix)))
        for server in servers:
            self.conn.compute.delete_server(server.id, ignore_missing=True)
        deadline = time.monotonic() + 300
        while list(self.conn.compute.servers(details=False, name="^%s-" % re.escape(prefix))):
            if time.monotonic() > deadline:
                raise RuntimeError("servers %s-* still there" % prefix)
            time.sleep(1)

    def delete_cluster(self, name, driver):
        inv = self.inventory(name, driver, 0)
        elapsed = self.playbook(["coe.openstack.delete", "-i", inv], what="delete %s" % name)
        if name in self.created:
            self.created.remove(name)
        return elapsed

    # -- the cases -------------------------------------------------------------

    def case_create(self, run, workers, subjects):
        for subject in subjects:
            log("run %d, %d workers: %s" % (run, workers, subject))
            try:
                self.one_subject(run, workers, subject)
            except (RuntimeError, openstack.exceptions.SDKException) as e:
                text = str(e)
                fatal = [line for line in text.splitlines() if "fatal:" in line or "Invalid value" in line]
                why = (fatal[-1] if fatal else text.splitlines()[0])[:400]
                log("FAILED: %s" % why)
                self.details.append("FAILED (run %d, %d workers, %s): %s" % (run, workers, subject, why))

    def scaled(self, workers):
        """Whether the scale and re-run cases run at this size (the smallest only)."""
        return workers == min(self.args.workers)

    def final_workers(self, workers):
        add, remove = self.args.scale
        return workers + add - remove if "scale" in self.args.cases and self.scaled(workers) else workers

    def one_subject(self, run, workers, subject):
        cases = self.args.cases
        scale = "scale" in cases and self.scaled(workers)
        add, remove = self.args.scale
        op_out, op_in = op_scale(workers, add), op_remove(workers, add, remove)
        if subject == "floor":
            self.floor(run)
        elif subject == "raw":
            who = REFERENCE["nova"]
            tag = "coe-bench-raw-%s-%d-%d" % (self.suffix, workers, run)
            conn = self.reference(op_create(workers), who, run, lambda: self.raw_create(workers + 1, tag))
            if scale:
                ids = self.reference(op_out, who, run, lambda: self.raw_add(conn, tag, add))
                self.reference(op_in, who, run, lambda: self.raw_remove(conn, tag, ids[:remove]))
            self.reference(op_delete(self.final_workers(workers)), who, run, lambda: self.raw_delete(conn, tag))
            self.raw_tags.remove(tag)
        elif subject == "heat-alone":
            who = REFERENCE["heat"]
            stack = HeatAlone(self.template_specs["heat"], "bench-heatref%d-%s-%d" % (workers, self.suffix, run))
            self.heat_alone.append(stack)

            def create():
                return stack.create(workers), None

            self.reference(op_create(workers), who, run, create)
            if scale:
                self.reference(op_out, who, run, lambda: (stack.update(workers + add), None))
                names = self.to_remove(stack.record["name"])
                self.reference(op_in, who, run, lambda: (stack.update(workers + add - remove, names), None))
            self.reference(op_delete(self.final_workers(workers)), who, run, lambda: (stack.delete(), None))
            self.heat_alone.remove(stack)
        elif subject == "osc":
            self.osc_subject(run, workers)
        else:
            # one floor more next to each driver's operations: it moves with the load
            self.floor(run)
            self.driver_subject(run, workers, subject, scale)

    def to_remove(self, name):
        """The named workers that the remove case takes out: every other one from 2 (nodes
        of both drivers: Heat's members count from 0, the Nova driver's from 1)."""
        return ["%s-default-worker-%d" % (name, 2 * i) for i in range(1, self.args.scale[1] + 1)]

    def driver_subject(self, run, workers, driver, scale):
        name = "bench-%s%d-%s-%d" % (driver, workers, self.suffix, run)
        self.created.append(name)
        done = False
        try:
            inv = self.inventory(name, driver, workers)
            self.ours(op_create(workers), driver, ["coe.openstack.create", "-i", inv], run)
            if "idem" in self.args.cases and self.scaled(workers):
                self.ours(op_rerun(workers), driver, ["coe.openstack.create", "-i", inv], run)
            if scale:
                add, remove = self.args.scale
                inv = self.inventory(name, driver, workers + add)
                self.ours(op_scale(workers, add), driver, ["coe.openstack.update", "-i", inv], run)
                inv = self.inventory(name, driver, workers + add - remove, remove=self.to_remove(name))
                self.ours(op_remove(workers, add, remove), driver, ["coe.openstack.update", "-i", inv], run)
            inv = self.inventory(name, driver, 0)
            self.ours(op_delete(self.final_workers(workers)), driver, ["coe.openstack.delete", "-i", inv], run)
            self.created.remove(name)
            done = True
        finally:
            if not done:
                self.delete_cluster(name, driver)

    def osc_subject(self, run, workers):
        prefix = "bench-osc-%s-%d-%d" % (self.suffix, workers, run)
        names = self.osc_names_for(prefix, workers)
        self.osc_names.append(prefix)
        try:
            elapsed = self.osc_run(names)
            self.results.add_op(op_create(workers), OSC, "wall", elapsed)
            if "idem" in self.args.cases and self.scaled(workers):
                idem_label = "idempotent re-run of the openstack.cloud loop (1 + %d)" % workers
                window = LogWindow(self.user_id, self.token_size)
                self.proxy.take()
                elapsed = self.osc_run(names, counted=True)
                calls = summarise_calls(self.proxy.take())
                time.sleep(1)
                logged = window.writes()
                self.results.add(idem_label, "wall time", elapsed)
                if run == 1:
                    self.details.append(
                        "openstack.cloud.server loop re-run (1 + %d servers): writes %s; calls by service %s"
                        % (workers, sorted(set(calls["writes_list"])), calls["by_service"])
                    )
                self.results.add(idem_label, "write calls (proxy)", calls["writes"], "n")
                self.results.add(idem_label, "API calls (proxy)", calls["total"], "n")
                self.results.add(idem_label, "token issues (proxy)", calls["token_issues"], "n")
                self.results.add(
                    idem_label, "bench-user writes in nova/heat logs", sum(len(v) for v in logged.values()), "n"
                )
        finally:
            self.osc_cleanup(prefix)
            self.osc_names.remove(prefix)

    def case_sync(self):
        """Case 4: one real Nova cluster (1 master, 0 workers) + clones of its record."""
        from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

        name = "bench-sync-%s" % self.suffix
        inv = self.inventory(name, "nova", 0)
        self.created.append(name)
        self.playbook(["coe.openstack.create", "-i", inv], what="create %s" % name)
        try:
            base = os.path.join(self.work, "coe.db")
            urls = {}
            for size in self.args.sync_sizes:
                path = os.path.join(self.work, "sync-%d.db" % size)
                with open_store(self.state_url) as store:
                    real = store.find_cluster("default", name)
                shutil.copyfile(base, path)
                urls[size] = "sqlite:///%s" % path
                with open_store(urls[size]) as store:
                    for i in range(1, size):
                        clone = dict(real)
                        clone["uuid"] = str(uuidlib.uuid4())
                        clone["name"] = "bench-clone-%d" % i
                        clone["generation"] = 1
                        store.create_cluster(clone)
                    count = len(store.list_clusters())
                self.details.append("sync store of size %d holds %d cluster records" % (size, count))
            for run in range(1, self.args.runs + 1):
                for size in self.args.sync_sizes if run % 2 else list(reversed(self.args.sync_sizes)):
                    env = self.measured_env(self.env)
                    env["COE_STATE_URL"] = urls[size]
                    self.proxy.take()
                    log("run %d: sync of %d clusters" % (run, size))
                    elapsed = self.playbook(["coe.openstack.sync"], env=env, what="sync %d" % size)
                    calls = summarise_calls(self.proxy.take())
                    label = "4. sync (coe.openstack.sync playbook)"
                    self.results.add(label, "%d clusters: wall time" % size, elapsed)
                    self.results.add(label, "%d clusters: API calls (all, proxy)" % size, calls["total"], "n")
                    self.results.add(
                        label,
                        "%d clusters: API calls without auth (keystone)" % size,
                        calls["total"] - calls["by_service"].get("keystone", 0),
                        "n",
                    )
                    self.results.add(label, "%d clusters: cloud write calls" % size, calls["writes"], "n")
                    if run == 1:
                        self.details.append(
                            "sync of %d clusters, API calls by service: %s" % (size, calls["by_service"])
                        )
            return name
        except Exception:
            self.delete_cluster(name, "nova")
            raise

    def case_fixed(self, sync_cluster):
        """Case 5: cost per module invocation = (t(K=6) - t(K=1)) / 5, per module."""
        label = "5. fixed cost of one module invocation (incl. Ansible's per-task work)"
        k_hi = 6
        subjects = [
            ("ansible.builtin.ping (interpreter only)", "fixed-ping.yml", self.env, BIN, {}),
            (
                "coe.openstack.cluster_sync of 1 cluster (import, auth, 2 reads)",
                "fixed-coe-sync.yml",
                self.env,
                BIN,
                {"bench_cluster": sync_cluster, "bench_state_url": self.state_url},
            ),
            (
                "openstack.cloud.auth (import, auth)",
                "fixed-osc-auth.yml",
                self.osc_env,
                os.path.join(BENCH_VENV, "bin"),
                {},
            ),
        ]
        for _run in range(1, self.args.runs + 1):
            for title, book, env, ansible_bin, extra in subjects:
                times = {}
                for k in (1, k_hi):
                    extra_file = self.write("fixed-extra.json", json.dumps(dict(extra, bench_k=k)))
                    times[k] = self.playbook(
                        [book, "-e", "@" + extra_file], env=env, what=title, ansible_bin=ansible_bin
                    )
                self.results.add(label, title, (times[k_hi] - times[1]) / (k_hi - 1))
        # the same pieces without Ansible, in this venv
        for _run in range(1, self.args.runs + 1):
            code = (
                "import time; t=time.monotonic(); import openstack; t1=time.monotonic(); "
                "c=openstack.connect(cloud='minicloud'); c.authorize(); t2=time.monotonic(); "
                "print(t1-t, t2-t1)"
            )
            started = time.monotonic()
            proc = subprocess.run(
                [os.path.join(BIN, "python"), "-c", code], env=self.env, capture_output=True, text=True, check=True
            )
            total = time.monotonic() - started
            t_import, t_auth = (float(x) for x in proc.stdout.split())
            self.results.add(label, "python: interpreter + import openstack + auth (no Ansible)", total)
            self.results.add(label, "python: import openstack", t_import)
            self.results.add(label, "python: connect + authorize (one token)", t_auth)

    # -- clean-up --------------------------------------------------------------

    def cleanup(self):
        for name in list(self.created):
            for driver in ("nova", "heat"):
                try:
                    self.delete_cluster(name, driver)
                    break
                except RuntimeError as e:
                    log("clean-up of %s (%s): %s" % (name, driver, str(e).splitlines()[0]))
        for prefix in list(self.osc_names):
            self.osc_cleanup(prefix)
        for tag in list(self.raw_tags):
            raw_cleanup(self.conn, tag)
        for stack in list(self.heat_alone):
            if stack.stack is not None:
                try:
                    stack.delete()
                except (RuntimeError, openstack.exceptions.SDKException) as e:
                    log("clean-up of Heat alone %s: %s" % (stack.stack["name"], e))
        try:
            extra = self.write(
                "templates-absent.json",
                json.dumps({"coe_templates": [dict(name=n, state="absent") for n in self.templates.values()]}),
            )
            self.playbook(["coe.openstack.template", "-e", "@" + extra], what="templates absent")
        except RuntimeError as e:
            log("templates not removed: %s" % str(e).splitlines()[0])
        self.proxy.stop()
        self.drop_user()

    # -- the run ---------------------------------------------------------------

    def subjects(self):
        """Who does the create round: the floor, the references, ours, the loop."""
        subjects = ["floor", "raw", *list(self.args.drivers)]
        if "heat" in self.args.drivers:
            subjects.append("heat-alone")
        if not self.args.no_osc:
            subjects.append("osc")
        return subjects

    def run(self):
        args = self.args
        self.started = time.monotonic()
        self.setup()
        sync_cluster = None
        try:
            if "sync" in args.cases or "fixed" in args.cases:
                sync_cluster = self.case_sync() if "sync" in args.cases else None
                if "fixed" in args.cases:
                    if sync_cluster is None:
                        sync_cluster = "bench-sync-%s" % self.suffix
                        self.created.append(sync_cluster)
                        self.playbook(
                            ["coe.openstack.create", "-i", self.inventory(sync_cluster, "nova", 0)], what="create"
                        )
                    self.case_fixed(sync_cluster)
                self.delete_cluster(sync_cluster, "nova")
                self.checkpoint("sync and fixed cost done")
            if "create" in args.cases:
                for run in range(1, args.runs + 1):
                    for workers in args.workers:
                        subjects = self.subjects()
                        # the loop is slow: at the largest size it runs --osc-runs-large times
                        if "osc" in subjects and workers == max(args.workers) and run > args.osc_runs_large:
                            subjects.remove("osc")
                        # interleave: rotate the order each run so no subject always goes first
                        shift = (run - 1) % len(subjects)
                        subjects = subjects[shift:] + subjects[:shift]
                        self.case_create(run, workers, subjects)
                        self.checkpoint("create cases: run %d of %d, %d workers done" % (run, args.runs, workers))
        finally:
            self.cleanup()
        self.wall = time.monotonic() - self.started

    def checkpoint(self, where):
        """Write what was measured so far (a run cut short still leaves real numbers)."""
        self.wall = time.monotonic() - self.started
        text = render(self, datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"))
        text += "\n**Partial results** (%s; the run was still going).\n" % where
        dump_json(self, "partial")
        if not self.args.no_docs:
            write_doc(text)
        log("checkpoint: %s" % where)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def machine():
    mem = 0
    with open("/proc/meminfo", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    return dict(cores=os.cpu_count(), mem_mib=mem, load=os.getloadavg(), host=socket.gethostname())


def count_text(res, op, who, metric):
    """The median of a count, with its range when the runs differ ('-' when not measured)."""
    st = res.stats((op, who, metric))
    if st is None:
        return "-"
    text = fmt(st["median"], "n")
    if st["min"] != st["max"]:
        text += " (%s–%s)" % (fmt(st["min"], "n"), fmt(st["max"], "n"))
    return text


def op_rows(res, drivers):
    """One row per operation and driver: medians of ours, the reference, the floor, and
    overhead = ours - reference - floor, with the counts and the aim of issue 19."""
    floor = res.median(FLOOR_CASE, FLOOR_WHO, "wall")
    rows = []
    for op in res.operations():
        for driver in drivers:
            who = driver_who(driver)
            ours = res.median(op, who, "wall")
            if ours is None:
                continue
            rerun = op.startswith("idempotent")
            ref_who = None if rerun else REFERENCE[driver]
            ref = 0.0 if rerun else res.median(op, ref_who, "wall")
            overhead = ours - ref - floor if ref is not None and floor is not None else None
            processes = res.median(op, who, "processes")
            tokens = res.median(op, who, "tokens")
            writes = res.median(op, who, "writes")
            aim = ""
            if rerun:
                met = (
                    overhead is not None
                    and overhead <= AIM_RERUN
                    and writes == 0
                    and tokens is not None
                    and tokens <= 1
                )
                aim = "≤ %g s over the floor, 0 writes, 1 token: %s" % (AIM_RERUN, "met" if met else "**missed**")
            elif not op.startswith("delete") and overhead is not None:
                met = overhead <= AIM_OVERHEAD
                aim = "≤ %g s: %s" % (AIM_OVERHEAD, "met" if met else "**missed**")
                if op.startswith("create") and processes is not None:
                    ok = processes <= AIM_PROCESSES
                    aim += "; ≤ %d processes + polls: %s" % (AIM_PROCESSES, "met" if ok else "**missed**")
            procs = "%s + %s polls" % (count_text(res, op, who, "processes"), count_text(res, op, who, "polls"))
            if res.median(op, who, "waits"):
                procs += " + %s sleeps" % count_text(res, op, who, "waits")
            tokens_text = count_text(res, op, who, "tokens")
            logged = count_text(res, op, who, "tokens (keystone log)")
            if logged not in ("-", tokens_text):
                tokens_text += " (Keystone's log: %s)" % logged
            rows.append(
                dict(
                    op=op,
                    driver=driver,
                    ours=ours,
                    ref=ref,
                    ref_who=ref_who,
                    floor=floor,
                    overhead=overhead,
                    ratio=ours / ref if ref else None,
                    processes=procs,
                    tokens=tokens_text,
                    writes="%s / %s"
                    % (count_text(res, op, who, "writes"), "0" if rerun else count_text(res, op, ref_who, "writes")),
                    aim=aim or "-",
                )
            )
    return rows


def load_baseline(path):
    """{(op, driver): {...}} of the "before" numbers, and their label."""
    if not path or not os.path.exists(path):
        return {}, None
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    return {(row["op"], row["driver"]): row for row in data["ops"]}, data


def before_after(rows, baseline, info):
    """Lines of the before/after table (empty without a baseline)."""
    if not baseline:
        return []
    lines = [
        "Before and after. Before: %s; after: this run. Overhead = ours − reference − floor. %s"
        % (info.get("label", "?"), info.get("note", "")),
        "",
        "| operation | driver | ours (s) | reference (s) | overhead (s) | module processes | tokens | writes |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def text(value, unit="n"):
        return value if isinstance(value, str) else fmt(value, unit)

    for row in rows:
        old = baseline.get((row["op"], row["driver"]))
        if old is None:
            continue
        floor = info.get("floor")
        star = "" if floor is not None else "*"
        floor = row["floor"] if floor is None else floor
        old_over = None
        if old.get("reference") is not None and floor is not None:
            old_over = old["ours"] - old["reference"] - floor
        cells = [
            (text(old.get("ours"), "s"), fmt(row["ours"], "s")),
            (text(old.get("reference"), "s"), fmt(row["ref"], "s")),
            (text(old_over, "s") + (star if old_over is not None else ""), fmt(row["overhead"], "s")),
            (text(old.get("processes")), row["processes"]),
            (text(old.get("tokens")), row["tokens"]),
            (text(old.get("writes")), row["writes"].split(" / ")[0]),
        ]
        lines.append("| %s | %s | %s |" % (row["op"], row["driver"], " | ".join("%s → %s" % pair for pair in cells)))
    if len(lines) == 4:
        return ["Before and after: no operation of this run has a 'before' (%s has other sizes)." % BASELINE_NAME, ""]
    lines.append("")
    return lines


def ratios(res, workers_list, drivers):
    rows = []
    for workers in workers_list:
        op = op_create(workers)
        raw = res.median(op, REFERENCE["nova"], "wall")
        osc = res.median(op, OSC, "wall")
        for driver in drivers:
            mine = res.median(op, driver_who(driver), "wall")
            if mine is None:
                continue
            if raw:
                aim = "<= 1.3" if (driver == "nova" and workers == max(workers_list)) else ""
                rows.append(("%s driver / raw SDK, %d workers" % (driver, workers), mine / raw, aim))
            heat = res.median(op, REFERENCE["heat"], "wall")
            if driver == "heat" and heat:
                rows.append(("heat driver / Heat alone, %d workers" % workers, mine / heat, ""))
            if osc:
                aim = ">= 5" if workers == max(workers_list) else ""
                rows.append(("openstack.cloud loop / %s driver, %d workers" % (driver, workers), osc / mine, aim))
    return rows


def short_task(name, width=70):
    """A task's name without its role (``coe.openstack.cluster : ``), at most ``width``."""
    name = name.split(" : ", 1)[-1]
    return name if len(name) <= width else name[: width - 1] + "…"


def profile_lines(profiles):
    """What each of our operations ran, from the first run: processes by module, polls,
    the slowest tasks (the profile of what is left above the reference)."""
    lines = []
    for prof in profiles:
        if prof["run"] != 1 or not prof["who"].endswith(" driver"):
            continue
        modules = ", ".join("%s %d" % (m, n) for m, n in sorted(prof["modules"].items()))
        slow = "; ".join(
            "%s %.1f s (%s%s)"
            % (short_task(name), secs, action, ", %d process%s" % (n, "es" if n > 1 else "") if n else "")
            for secs, name, action, n in prof["profile"][:6]
        )
        lines.append(
            "%s, %s (run 1): %d tasks; module processes %d (%s), polls %d, sleeps between polls %d; "
            "startup %.1f s, tasks with a module process %.1f s, the others %.1f s, exit %.1f s; slowest: %s"
            % (
                prof["op"],
                prof["who"],
                prof["tasks"],
                prof["processes"],
                modules or "none",
                prof["polls"],
                prof["waits"],
                prof["startup"],
                prof.get("in_modules", 0.0),
                prof.get("in_tasks", 0.0),
                prof["teardown"],
                slow,
            )
        )
    return lines


def render(bench, finished, info=None):
    res = bench.results
    info = info or machine()
    args = bench.args
    lines = []
    lines.append(
        "Run %s UTC, `benchmarks/run.py %s`, %s, wall %.0f min; machine: **%d cores, %d MiB memory**, "
        "load average at the end %.1f / %.1f / %.1f (the local cloud and other sessions share it)."
        % (
            finished,
            " ".join(args.argv) or "(defaults)",
            "%d run(s)" % args.runs,
            bench.wall / 60,
            info["cores"],
            info["mem_mib"],
            *info["load"],
        )
    )
    lines.append("")
    rows = op_rows(res, args.drivers)
    if rows:
        lines.append(
            "Operations, medians of the runs. Reference: raw openstacksdk (Nova), Heat alone (Heat), nothing "
            "for a re-run; floor: `ansible-playbook` of one ping task, %s s. Overhead = ours − reference − floor. "
            "Module processes outside the wait loop + its polls; tokens issued (proxy; the collection's token "
            "cache %s); write calls, ours / the reference's."
            % (
                fmt(rows[0]["floor"], "s"),
                "empty at the start of each operation"
                if args.token_cache == "cold"
                else "shared by the whole run (--token-cache warm)",
            )
        )
        lines.append("")
        lines.append(
            "| operation | driver | ours (s) | reference (s) | floor (s) | overhead (s) | ours / ref "
            "| module processes | tokens | writes | aim (issue 19) |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---:|---|---:|---|---|")
        for row in rows:
            lines.append(
                "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
                % (
                    row["op"],
                    row["driver"],
                    fmt(row["ours"], "s"),
                    fmt(row["ref"], "s"),
                    fmt(row["floor"], "s"),
                    fmt(row["overhead"], "s"),
                    fmt(row["ratio"], "x"),
                    row["processes"],
                    row["tokens"],
                    row["writes"],
                    row["aim"],
                )
            )
        lines.append("")
    baseline, binfo = load_baseline(getattr(args, "baseline", None))
    lines.extend(before_after(rows, baseline, binfo or {}))
    lines.append("Every time measured (seconds unless said) and the other cases:")
    lines.append("")
    lines.append("| case | subject | median | min | max | runs | unit |")
    lines.append("|---|---|---:|---:|---:|---:|---|")
    for key in res.order:
        if key[2] not in (None, "wall"):
            continue
        st = res.stats(key)
        unit = res.units[key]
        lines.append(
            "| %s | %s | %s | %s | %s | %d | %s |"
            % (
                key[0],
                key[1],
                fmt(st["median"], unit),
                fmt(st["min"], unit),
                fmt(st["max"], unit),
                st["n"],
                "s" if unit == "s" else "calls",
            )
        )
    lines.append("")
    ratio_rows = ratios(res, args.workers, args.drivers)
    if ratio_rows:
        lines.append("Ratios of the medians (same run):")
        lines.append("")
        lines.append("| ratio | value | aim |")
        lines.append("|---|---:|---|")
        for what, value, aim in ratio_rows:
            lines.append("| %s | %.2f | %s |" % (what, value, aim or "-"))
        lines.append("")
    details = list(bench.details) + profile_lines(getattr(bench, "profiles", []))
    if details:
        lines.append("Details:")
        lines.append("")
        for detail in details:
            lines.append("- " + detail)
        lines.append("")
    return "\n".join(lines)


def write_doc(text):
    if os.path.exists(DOC):
        with open(DOC, encoding="utf-8") as handle:
            doc = handle.read()
    else:
        doc = "# Benchmarks\n\n" + MARK_START + "\n" + MARK_END + "\n"
    if MARK_START in doc and MARK_END in doc:
        head, rest = doc.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        doc = head + MARK_START + "\n" + text + "\n" + MARK_END + tail
    else:
        doc = doc.rstrip("\n") + "\n\n" + MARK_START + "\n" + text + "\n" + MARK_END + "\n"
    with open(DOC, "w", encoding="utf-8") as handle:
        handle.write(doc)


def dump_json(bench, finished):
    meta = dict(
        argv=bench.args.argv,
        runs=bench.args.runs,
        workers=bench.args.workers,
        drivers=bench.args.drivers,
        wall=bench.wall,
        finished=finished,
        token_size=bench.token_size,
        token_cache=bench.args.token_cache,
    )
    with open(os.path.join(bench.work, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(
            dict(
                meta=meta,
                results=bench.results.to_json(),
                details=bench.details,
                profiles=bench.profiles,
                machine=machine(),
            ),
            handle,
            indent=1,
        )


def rerender(path, baseline=BASELINE):
    """Render a results.json again (the table and docs/benchmarks.md), without measuring."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    meta = data["meta"]
    shim = types.SimpleNamespace(
        results=Results.from_json(data["results"]),
        details=data["details"],
        profiles=data.get("profiles", []),
        wall=meta["wall"],
        args=types.SimpleNamespace(
            argv=meta["argv"],
            runs=meta["runs"],
            workers=meta["workers"],
            drivers=meta["drivers"],
            token_cache=meta.get("token_cache", "warm"),
            baseline=baseline,
        ),
    )
    return render(shim, meta["finished"], data.get("machine"))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1 run, 1 + 2 workers, scale +3 then 2 removed, sync of 2 and 10 clusters",
    )
    parser.add_argument("--runs", type=int, default=None, help="runs of every case (default 3; --quick 1)")
    parser.add_argument(
        "--workers",
        default=None,
        help="worker counts of the create case, comma-separated (default 10,50; --quick 2); the scale, "
        "remove and re-run cases run on the smallest",
    )
    parser.add_argument(
        "--osc-runs-large",
        type=int,
        default=1,
        help="runs of the openstack.cloud loop at the largest size (default 1: 5-7 min a run at 50)",
    )
    parser.add_argument("--no-osc", action="store_true", help="leave the openstack.cloud loop out")
    parser.add_argument(
        "--scale",
        default=None,
        metavar="ADD,REMOVE",
        help="the scale case: workers added, then named workers removed (default 10,5; --quick 3,2)",
    )
    parser.add_argument(
        "--sync-sizes", default=None, help="cluster counts of the sync case (default 10,50,200; --quick 2,10)"
    )
    parser.add_argument(
        "--cases",
        default="create,idem,scale,sync,fixed",
        help="which cases, comma-separated: create (create and delete, with the references and the floor), "
        "idem (the re-run), scale (scale out and remove named), sync, fixed (default: all)",
    )
    parser.add_argument("--drivers", default="nova,heat", help="drivers, comma-separated (default nova,heat)")
    parser.add_argument(
        "--token-cache",
        choices=("cold", "warm"),
        default="cold",
        help="cold (default): each measured operation starts with an empty token cache of the collection's, "
        "as a first play does, and authenticates once as its reference does; warm: one cache for the whole "
        "run, as plays run one after the other within a token's lifetime",
    )
    parser.add_argument("--no-docs", action="store_true", help="print only, do not write docs/benchmarks.md")
    parser.add_argument("--render", metavar="RESULTS_JSON", help="only render a results.json again (no measuring)")
    parser.add_argument(
        "--baseline",
        default=BASELINE,
        metavar="JSON",
        help="the 'before' numbers of the before/after table (default benchmarks/baseline.json; '' for none)",
    )
    args = parser.parse_args(argv)
    args.argv = list(argv)
    quick = args.quick
    args.runs = args.runs or (1 if quick else 3)
    args.workers = [int(x) for x in (args.workers or ("2" if quick else "10,50")).split(",")]
    args.scale = [int(x) for x in (args.scale or ("3,2" if quick else "10,5")).split(",")]
    if len(args.scale) != 2 or 2 * args.scale[1] >= args.scale[0] + min(args.workers):
        parser.error("--scale ADD,REMOVE: REMOVE at most half the workers after ADD")
    args.sync_sizes = [int(x) for x in (args.sync_sizes or ("2,10" if quick else "10,50,200")).split(",")]
    args.cases = set(args.cases.split(","))
    args.drivers = [d for d in args.drivers.split(",") if d]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.render:
        text = rerender(args.render, args.baseline)
        print(text)
        if not args.no_docs:
            write_doc(text)
        return 0
    needs_osc = "fixed" in args.cases or ("create" in args.cases and not args.no_osc)
    if needs_osc and not os.path.exists(os.path.join(BENCH_VENV, "bin", "ansible-playbook")):
        log("creating %s (ansible 12 with openstack.cloud 2.5.0, openstacksdk 4.14.0)" % BENCH_VENV)
        subprocess.run([sys.executable, "-m", "venv", BENCH_VENV], check=True)
        subprocess.run(
            [os.path.join(BENCH_VENV, "bin", "pip"), "install", "-q", "ansible>=12,<13", "openstacksdk==4.14.0"],
            check=True,
        )
    try:
        openstack.connect(cloud=CLOUD).authorize()
    except (openstack.exceptions.SDKException, OSError) as e:
        log("the local cloud does not answer (%s): start it with tests/minicloud/minicloud up" % e)
        return 2
    bench = Bench(args)
    log(
        "work folder %s, bench user %s (%s), its token responses %s bytes"
        % (bench.work, bench.bench_user.name, bench.user_id, bench.token_size)
    )
    if bench.token_size is None:
        bench.details.append("Keystone's log: no token size of the bench user's own (not counted there)")
    failed = None
    try:
        bench.run()
    except (RuntimeError, subprocess.SubprocessError, openstack.exceptions.SDKException) as e:
        failed = e
        bench.wall = 0.0
        log("FAILED: %s" % e)
    finished = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    text = render(bench, finished)
    if failed is not None:
        text += "\n**This run did not finish**: %s\n" % str(failed).splitlines()[0]
    print()
    print(text)
    dump_json(bench, finished)
    if not args.no_docs:
        write_doc(text)
        log("wrote %s" % DOC)
    return 1 if failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
