# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""What benchmarks/run.py counts, and from where (not part of the collection).

- ``CountingProxy``: a forward proxy for plain HTTP that only the benchmarked processes
  use (``HTTP_PROXY``): every request they make, by method, service and path.
- ``LogWindow``: the services' own request logs since a point: one user's writes
  (nova-api, heat-api carry the user id) and token issues (keystone's uWSGI log carries
  no user: ``calibrate_token_size`` finds the size of the user's token responses).
- ``read_events``: the module processes and task times of one playbook run, from the
  events file that the interpreter wrapper (``WRAPPER``) and the callback
  (callback_plugins/coe_bench_events.py) append to.
"""

from __future__ import annotations

import http.client
import http.server
import os
import re
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MINICLOUD_HOME = os.environ.get("MINICLOUD_HOME") or os.path.join(REPO, ".minicloud")
LOGS = os.path.join(MINICLOUD_HOME, "logs")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PORTS = {
    15000: "keystone",
    18774: "nova",
    18778: "placement",
    19292: "glance",
    19696: "neutron",
    18004: "heat",
}
# The task files of the front door's wait loop: their module processes are the polls.
POLL_TASK_FILES = ("wait.yml",)


# ---------------------------------------------------------------------------
# Counting HTTP proxy
# ---------------------------------------------------------------------------

HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # the headers and the body go out in two writes: without TCP_NODELAY the client's
    # delayed ACK held every proxied call back ~40 ms
    disable_nagle_algorithm = True

    def log_message(self, *args):
        return

    def _forward(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=900)
        try:
            upstream.request(
                self.command, url.path + ("?" + url.query if url.query else ""), body=body, headers=headers
            )
            resp = upstream.getresponse()
            data = resp.read()
        finally:
            upstream.close()
        self.server.counter.record(self.command, url.port, url.path, resp.status)
        self.send_response_only(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class CountingProxy:
    """A forward proxy for plain HTTP that records every request it passes on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
        self.server.daemon_threads = True
        self.server.counter = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def record(self, method, port, path, status):
        with self.lock:
            self.calls.append((method, PORTS.get(port, str(port)), path, status))

    def take(self):
        with self.lock:
            calls, self.calls = self.calls, []
        return calls

    def stop(self):
        self.server.shutdown()


def summarise_calls(calls):
    """{'total', 'writes', 'token_issues', 'by_service': {svc: n}, 'writes_list': [...]}."""
    by_service = {}
    writes = []
    tokens = 0
    for method, service, path, _status in calls:
        by_service[service] = by_service.get(service, 0) + 1
        if service == "keystone" and method == "POST" and path.endswith("/auth/tokens"):
            tokens += 1
        elif method in WRITE_METHODS:
            writes.append("%s %s %s" % (service, method, path))
    return dict(total=len(calls), writes=len(writes), token_issues=tokens, by_service=by_service, writes_list=writes)


# ---------------------------------------------------------------------------
# The services' own request logs
# ---------------------------------------------------------------------------

NOVA_RE = re.compile(r'requestlog \[\S+ \S+ ([0-9a-f]{32}|-) ([0-9a-f]{32}|-) .*?\] \S+ "([A-Z]+) (\S+)"')
HEAT_RE = re.compile(
    r"heat\.common\.wsgi \[\S+ \S+ ([0-9a-f]{32}|-) ([0-9a-f]{32}|-) .*?\] Processing request: ([A-Z]+) (\S+)"
)
# keystone's uWSGI request log: no user, but the size of the response
TOKEN_RE = re.compile(r"\] POST /v3/auth/tokens\S* => generated (\d+) bytes .*?\(HTTP/1\.\d (\d+)\)")


def read_from(path, offset):
    """The text appended to ``path`` since ``offset`` ('' when the file is missing)."""
    if not os.path.exists(path):
        return ""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", "replace")


def token_sizes(text):
    """Response sizes of the token issues (201) in lines of keystone's request log."""
    sizes = []
    for line in text.splitlines():
        match = TOKEN_RE.search(line)
        if match and match.group(2) == "201":
            sizes.append(int(match.group(1)))
    return sizes


class LogWindow:
    """New lines of the services' logs since creation: one user's writes and token issues.

    nova-api's requestlog and heat-api's request lines carry the user id. Keystone's
    request log (uWSGI, keystone.out) carries none; a token issued to the user has a
    response body of its own size (``token_size``, see ``calibrate_token_size``).
    """

    FILES = {"nova": ("nova-api.log", NOVA_RE), "heat": ("heat-api.log", HEAT_RE)}
    KEYSTONE = "keystone.out"

    def __init__(self, user_id, token_size=None):
        self.user_id = user_id
        self.token_size = token_size
        self.offsets = {}
        for name in [f for f, _regex in self.FILES.values()] + [self.KEYSTONE]:
            path = os.path.join(LOGS, name)
            self.offsets[name] = os.path.getsize(path) if os.path.exists(path) else 0

    def _text(self, name):
        return read_from(os.path.join(LOGS, name), self.offsets[name])

    def writes(self):
        """{service: [method path, ...]} of the user's write requests in the window."""
        found = {}
        for key, (name, regex) in self.FILES.items():
            for line in self._text(name).splitlines():
                match = regex.search(line)
                if match and match.group(1) == self.user_id and match.group(3) in WRITE_METHODS:
                    found.setdefault(key, []).append("%s %s" % (match.group(3), match.group(4)))
        return found

    def tokens(self):
        """Token issues to the user in the window, or None when the size is not known."""
        if self.token_size is None:
            return None
        return token_sizes(self._text(self.KEYSTONE)).count(self.token_size)


def calibrate_token_size(issue, tries=3):
    """The response size of a token issued to this run's user: ``issue()`` gets one
    token; the size seen in each of ``tries`` windows is the user's (other sessions'
    tokens come in between, with other sizes). None when there is no single one."""
    path = os.path.join(LOGS, LogWindow.KEYSTONE)
    common = None
    for _try in range(tries):
        offset = os.path.getsize(path) if os.path.exists(path) else 0
        issue()
        time.sleep(0.5)  # uWSGI writes the line once the response is out
        sizes = set(token_sizes(read_from(path, offset)))
        common = sizes if common is None else common & sizes
    return next(iter(common)) if common and len(common) == 1 else None


# ---------------------------------------------------------------------------
# Module processes and task times (the events file of one playbook run)
# ---------------------------------------------------------------------------

WRAPPER = """#!/bin/sh
# coe.openstack benchmark (benchmarks/run.py): note this module process, then run it
if [ -n "$COE_BENCH_EVENTS" ]; then printf 'L\\t%%s\\n' "${1##*/}" >>"$COE_BENCH_EVENTS"; fi
exec %s "$@"
"""


def module_of(launch):
    """``AnsiballZ_cluster_sync.py`` -> ``cluster_sync`` (the short name of the module)."""
    name = launch
    if name.startswith("AnsiballZ_"):
        name = name[len("AnsiballZ_") :]
    return name[:-3] if name.endswith(".py") else name or "?"


def in_wait_loop(task):
    return os.path.basename(task["path"].rsplit(":", 1)[0]) in POLL_TASK_FILES


def read_events(path, started, ended):
    """What one playbook run did, from its events file (see the callback plugin).

    {"tasks": n, "processes": launches outside the wait loop, "polls": the collection's
    module launches in it, "waits": other launches in it (its sleeps), "modules":
    {module: launches outside the loop}, "profile": [(seconds, task, action, launches)]
    slowest first, "in_modules": seconds in tasks that launched a module process,
    "in_tasks": in the others (Ansible's own work), "startup": process start to first
    task, "teardown": last task to exit}.
    """
    tasks, play_started, play_ended = [], None, None
    text = read_from(path, 0)
    for line in text.splitlines():
        fields = line.split("\t")
        if fields[0] == "P" and len(fields) > 1:
            play_started = float(fields[1])
        elif fields[0] == "T" and len(fields) > 4:
            tasks.append(dict(start=float(fields[1]), path=fields[2], action=fields[3], name=fields[4], launches=[]))
        elif fields[0] == "L" and len(fields) > 1:
            if tasks:
                tasks[-1]["launches"].append(module_of(fields[1]))
        elif fields[0] == "E" and len(fields) > 1:
            play_ended = float(fields[1])
    last = play_ended or ended
    out = dict(tasks=len(tasks), processes=0, polls=0, waits=0, modules={}, profile=[], in_modules=0.0, in_tasks=0.0)
    by_task = {}
    for i, task in enumerate(tasks):
        seconds = (tasks[i + 1]["start"] if i + 1 < len(tasks) else last) - task["start"]
        out["in_modules" if task["launches"] else "in_tasks"] += seconds
        key = (task["name"], task["action"])
        total = by_task.setdefault(key, [0.0, 0])
        total[0] += seconds
        total[1] += len(task["launches"])
        if in_wait_loop(task):
            kind = "polls" if task["action"].startswith("coe.openstack.") else "waits"
            out[kind] += len(task["launches"])
        else:
            out["processes"] += len(task["launches"])
            for module in task["launches"]:
                out["modules"][module] = out["modules"].get(module, 0) + 1
    out["profile"] = sorted(
        ((round(s, 2), name, action, n) for (name, action), (s, n) in by_task.items()), reverse=True
    )
    out["in_modules"] = round(out["in_modules"], 2)
    out["in_tasks"] = round(out["in_tasks"], 2)
    first = tasks[0]["start"] if tasks else (play_started or ended)
    out["startup"] = round(first - started, 2)
    out["teardown"] = round(ended - last, 2) if tasks else 0.0
    return out
