"""A create killed with SIGKILL half-way, then a re-run on the same host (real processes, both drivers).

The killed run holds a lease of 15 minutes. The re-run, with the default coe_lock_timeout (0:
refuse at once), is not refused: the dead run's ansible-playbook process is gone from this
host, so its lease is taken over at once (a warning and a lock-takeover event name the dead
holder). What Ansible's worker of the killed run still does (Nova: the servers module, which
stops at its next poll) is waited for. The re-run converges the cluster the dead run started,
without a twin of any server, and the delete after it leaves nothing of the cluster in the cloud.
"""

import contextlib
import os
import signal
import time

import pytest
from coe_runner import cloud_resources, short_id, template

pytestmark = pytest.mark.usefixtures("minicloud")

DEAD_RUN_TTL = 900  # the killed run's lease: waiting it out would take 15 minutes


def half_way(user, record, servers_wanted):
    """What shows that the cloud is still making the cluster (None when it has not begun or is done)."""
    tag = "coe-cluster-%s" % record["uuid"]
    stacks = [s for s in user.conn.orchestration.stacks() if tag in (s.tags or [])]
    if stacks:
        return "stack %s" % stacks[0].status if stacks[0].status == "CREATE_IN_PROGRESS" else None
    servers = list(user.conn.compute.servers(tags=tag))
    active = [s for s in servers if s.status == "ACTIVE"]
    if servers and len(active) < servers_wanted:
        return "%d of %d servers ACTIVE" % (len(active), servers_wanted)
    return None


def kill_half_way(runner, user, name, proc, servers_wanted, timeout=300):
    """SIGKILL the run once its create is recorded and the cloud is making the cluster; the record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the first run ended before it was killed:\n%s" % proc.communicate()[0][-3000:]
        record = runner.record(name)
        if record is not None and record["status"] == "CREATE_IN_PROGRESS" and half_way(user, record, servers_wanted):
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            return record
        time.sleep(0.1)
    raise AssertionError("the create of %s did not reach the cloud within %ss" % (name, timeout))


def processes_of(proc):
    """Live processes running the command of ``proc`` (a killed ansible-playbook's workers carry it)."""
    want = [str(a) for a in proc.args]
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")[:-1]
            with open("/proc/%s/stat" % pid) as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if argv[-len(want) :] == want and not zombie:  # after the interpreter of the script's #! line
            found.append(int(pid))
    return found


@pytest.mark.parametrize("driver", ["heat", "nova"])
def test_a_create_killed_half_way_is_converged_by_a_rerun_without_waiting(driver, runner, user):
    tname = "dr-%s-%s" % (driver, short_id())
    name = "dr-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    workers = 10  # 11 servers: the cloud takes some seconds to make them, time to kill the run
    spec = dict(coe_cluster_template=tname, coe_master_count=1, coe_node_count=workers)
    first = runner.popen("create", {name: spec}, extra={"coe_lock_ttl": DEAD_RUN_TTL})
    record = None
    try:
        record = kill_half_way(runner, user, name, first, workers + 1)
        killed_at = time.time()
        with runner.store() as store:
            lease = store.get_lock("default", name)
        assert lease["holder_pid"] == first.pid and lease["holder"].endswith("pid %d" % first.pid), lease
        assert lease["expires_at"] - killed_at > DEAD_RUN_TTL - 120, lease

        started = time.monotonic()
        rerun = runner.run("create", {name: spec})
        took = time.monotonic() - started
        assert rerun.rc == 0, rerun
        text = " ".join(rerun.out.split())
        assert "locked by" not in text, rerun
        assert "taken over at once by " in text and "lease of %s (create, token 1" % lease["holder"] in text, rerun
        assert took < 600, "the re-run took %.0fs" % took

        with runner.store() as store:
            events = store.list_events(kind="lock", target=name)
            lock = store.get_lock("default", name)
        takeovers = [e for e in events if e["operation"] == "lock-takeover"]
        assert len(takeovers) == 1, events
        assert "pid %d on " % first.pid in takeovers[0]["message"] and "is gone" in takeovers[0]["message"]
        from ansible_collections.coe.openstack.plugins.module_utils.store.base import parse_iso

        # at once: what the re-run waited for was the dead run's last module, never its lease
        assert parse_iso(takeovers[0]["at"]) - killed_at < 90, (takeovers, killed_at)
        assert lock["holder"] is None and lock["token"] == 2, lock

        record = runner.record(name)
        assert record["status"] == "CREATE_COMPLETE", record
        servers = [s.name for s in user.conn.compute.servers(tags="coe-cluster-%s" % record["uuid"])]
        assert len(servers) == workers + 1 and len(set(servers)) == workers + 1, servers  # no twin of a server
        assert len(record["node_addresses"]) == workers and len(record["master_addresses"]) == 1, record
        assert processes_of(first) == [], "the killed run left processes behind"

        deleted = runner.run("delete", {name: spec})
        assert deleted.rc == 0, deleted
        assert runner.record(name) is None
        left = cloud_resources(user.conn, record["uuid"], name)
        assert all(not v for v in left.values()), left
        record = None
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate(timeout=60)
        for pid in processes_of(first):  # the killed run's workers, had any survived
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if record is not None or runner.record(name) is not None:
            runner.run("delete", {name: spec}, extra={"coe_force": True})
