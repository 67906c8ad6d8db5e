"""Who holds a lease (locks.py): the run's process, a dead holder seen at once on its own machine.

Every test runs on both backends. The process table is a fake /proc folder (FakeProc), read
by the real ``Processes`` code, so that runs are started, killed and their pids reused without
touching a real process.
"""

import os

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import LockError
from ansible_collections.coe.openstack.plugins.module_utils.locks import (
    DEFAULT_TTL,
    LEFTOVER_WAIT,
    LockManager,
    Processes,
    refusal_text,
)
from ansible_collections.coe.openstack.plugins.module_utils.poll import renewing_sleep
from ansible_collections.coe.openstack.plugins.module_utils.store import base as store_base
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

PLAYBOOK = ["/venv/bin/python3.11", "/venv/bin/ansible-playbook", "coe.openstack.create", "-i", "inv.yml"]


class FakeProc:
    """A /proc folder: processes with a parent, a command line and a start time."""

    def __init__(self, root, boot="boot-1", namespace="pid:[4026531836]"):
        self.root = root
        (root / "sys" / "kernel" / "random").mkdir(parents=True)
        (root / "sys" / "kernel" / "random" / "boot_id").write_text(boot + "\n")
        (root / "self" / "ns").mkdir(parents=True)
        os.symlink(namespace, root / "self" / "ns" / "pid")

    def spawn(self, pid, ppid, argv, start=1000, state="S", comm=None):
        folder = self.root / str(pid)
        folder.mkdir(exist_ok=True)
        comm = comm or os.path.basename(argv[0])
        rest = [state, str(ppid)] + ["0"] * 17 + [str(start)] + ["0"] * 30
        (folder / "stat").write_text("%d (%s) %s\n" % (pid, comm, " ".join(rest)))
        (folder / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        return pid

    def kill(self, *pids):
        for pid in pids:
            folder = self.root / str(pid)
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()

    def run(self, main, ppid=50, start=1000, module="cluster_servers"):
        """An ansible-playbook run: main -> worker (same command line) -> sh -> the module's python.

        Returns the pid of its module process.
        """
        self.spawn(main, ppid, PLAYBOOK, start=start)
        self.spawn(main + 1, main, PLAYBOOK, start=start + 5)
        self.spawn(main + 2, main + 1, ["/bin/sh", "-c", "python3 AnsiballZ_x.py && sleep 0"], start=start + 6)
        self.spawn(
            main + 3, main + 2, ["/venv/bin/python3.11", "/root/.ansible/tmp/AnsiballZ_%s.py" % module], start=start + 7
        )
        return main + 3

    def processes(self, pid):
        return Processes(str(self.root), pid=pid)


@pytest.fixture
def proc(tmp_path):
    fake = FakeProc(tmp_path / "proc")
    fake.spawn(1, 0, ["/sbin/init"], start=1)
    fake.spawn(50, 1, ["/bin/bash"], start=10)
    return fake


def manager(store, clock, processes):
    return LockManager(store, clock=clock, sleep=clock.sleep, processes=processes)


def test_the_holder_is_the_runs_ansible_playbook_process(proc):
    module = proc.run(100)
    assert proc.processes(module).run() == (100, 1000)  # not the worker (101), not the module
    assert proc.processes(module).me() == (module, 1007)
    # a run started by a playbook of another run is its own run
    inner = proc.run(200, ppid=102)
    assert proc.processes(inner).run() == (200, 1000)
    # a module run by hand (or through ssh): no run, so no holder process to judge by
    proc.spawn(300, 50, ["/venv/bin/python3.11", "cluster_lock.py"])
    assert proc.processes(300).run() == (None, None)
    assert proc.processes(module).machine() == "boot-1/pid:[4026531836]"
    assert Processes(str(proc.root / "nowhere"), pid=1).machine() is None


def test_a_process_is_its_pid_and_its_start_time(proc):
    proc.spawn(400, 50, ["python3"], start=77, comm="odd) name (x")
    assert proc.processes(1).stat(400) == ("S", 50, 77)
    processes = proc.processes(1)
    assert processes.alive(400, 77) and processes.alive(400)
    assert not processes.alive(400, 78)  # the pid was given to a new process
    proc.spawn(401, 50, ["python3"], start=80, state="Z")
    assert not processes.alive(401, 80)  # killed, not yet reaped by its parent
    assert not processes.alive(402) and not processes.alive(None)
    assert processes.describe(proc.run(500)) == "module cluster_servers (pid 503)"


def test_the_lease_names_one_run(store, clock, proc):
    a = manager(store, clock, proc.processes(proc.run(100)))
    lease = a.acquire("p", "c", "create", ttl=DEFAULT_TTL, actor=dict(user="alice", host="ops1"))
    assert lease["holder"] == "alice@ops1 pid 100" and lease["holder_pid"] == 100
    assert lease["holder_host"] == "ops1" and not lease["holder_gone"] and lease["taken_over"] is None
    row = store.get_lock("p", "c")
    assert (row["holder_machine"], row["holder_start"], row["task_pid"]) == ("boot-1/pid:[4026531836]", 1000, 103)
    awx = manager(store, clock, proc.processes(proc.run(200))).acquire(
        "p", "d", "update", ttl=60, actor=dict(user="bob", host="awx-ee-1", awx_job_id="4711")
    )
    assert awx["holder"] == "bob@awx-ee-1 pid 200 (AWX job 4711)" and awx["awx_job_id"] == "4711"


def test_a_live_holder_on_this_host_is_refused_with_what_to_do(store, clock, proc):
    manager(store, clock, proc.processes(proc.run(100))).acquire("p", "c", "create", ttl=DEFAULT_TTL)
    b = manager(store, clock, proc.processes(proc.run(200)))
    with pytest.raises(LockError) as err:
        b.acquire("p", "c", "update", ttl=DEFAULT_TTL)
    msg = str(err.value)
    assert "locked by " in msg and " pid 100 for create" in msg and "(token 1)" in msg
    assert "alive on this host (pid 100)" in msg and "-e coe_lock_timeout=SECONDS" in msg
    assert "lock_token" not in msg
    assert err.value.details["holder_pid"] == 100 and err.value.details["lock_operation"] == "create"
    assert b.get("p", "c")["held"]


def test_a_dead_holder_on_this_host_is_taken_over_at_once_and_named(store, clock, proc):
    manager(store, clock, proc.processes(proc.run(100))).acquire(
        "p", "c", "create", ttl=DEFAULT_TTL, actor=dict(user="alice", host="ops1")
    )
    proc.kill(100, 101, 102, 103)  # SIGKILL: the run and its module are gone
    b = manager(store, clock, proc.processes(proc.run(200)))
    view = b.get("p", "c")
    assert view["holder_gone"] and not view["held"] and not view["expired"]
    clock.advance(1)
    lease = b.acquire("p", "c", "create", ttl=DEFAULT_TTL, actor=dict(user="alice", host="ops1"))
    assert lease["token"] == 2 and lease["holder"] == "alice@ops1 pid 200"
    assert "alice@ops1 pid 100" in lease["taken_over"] and "is gone" in lease["taken_over"]
    event = store.list_events(kind="lock", target="c")[-1]
    assert event["operation"] == "lock-takeover"
    assert "lease of alice@ops1 pid 100 (create, token 1" in event["message"]
    assert "taken over at once by alice@ops1 pid 200" in event["message"] and "pid 100 on ops1" in event["message"]


def test_a_reused_pid_is_not_the_holder(store, clock, proc):
    manager(store, clock, proc.processes(proc.run(100))).acquire("p", "c", "create", ttl=DEFAULT_TTL)
    proc.kill(100, 101, 102, 103)
    proc.spawn(100, 50, PLAYBOOK, start=5000)  # another ansible-playbook got pid 100
    lease = manager(store, clock, proc.processes(proc.run(200))).acquire("p", "c", "create", ttl=DEFAULT_TTL)
    assert lease["token"] == 2 and lease["taken_over"]


def test_a_dead_runs_module_still_at_work_is_waited_for(store, clock, proc):
    manager(store, clock, proc.processes(proc.run(100))).acquire("p", "c", "create", ttl=DEFAULT_TTL)
    proc.kill(100)  # only ansible-playbook: its worker and module (103) go on
    b = manager(store, clock, proc.processes(proc.run(200)))
    assert b.get("p", "c")["holder_gone"]  # the plan goes on: the run is gone
    start = clock()
    with pytest.raises(LockError) as err:
        b.acquire("p", "c", "create", ttl=DEFAULT_TTL)  # coe_lock_timeout 0, yet it waits a little
    assert clock() - start >= LEFTOVER_WAIT
    msg = str(err.value)
    assert "That run is gone, but its module cluster_servers (pid 103) still works" in msg
    assert "coe_lock_timeout" in msg and "lock_token" not in msg

    # the module stops at its next poll: the acquire that waits for it gets the lease then
    def sleep(seconds):
        clock.advance(seconds)
        if clock() - start > LEFTOVER_WAIT + 5:
            proc.kill(101, 102, 103)

    b.sleep = sleep
    lease = b.acquire("p", "c", "create", ttl=DEFAULT_TTL)
    assert lease["token"] == 2 and "is gone" in lease["taken_over"]


def test_a_module_left_by_a_dead_run_stops(store, clock, proc):
    module = proc.run(100)
    holder = manager(store, clock, proc.processes(module))
    token = holder.acquire("p", "c", "create", ttl=30)["token"]
    renewals = []

    def renew():
        renewals.append(holder.renew("p", "c", token, 30))

    wait = renewing_sleep(renew, 30, sleep=clock.sleep, clock=clock, check=lambda: holder.check_run("p", "c"))
    wait(5)
    assert store.get_lock("p", "c")["task_pid"] == module  # the module that renews is the lease's task
    proc.kill(100)  # ansible-playbook killed; this module goes on
    with pytest.raises(LockError) as err:
        wait(5)  # its next poll: it stops, before writing anything more
    assert "Stopped working on cluster 'c'" in str(err.value) and "pid 100" in str(err.value)
    with pytest.raises(LockError):
        holder.renew("p", "c", token, 30)  # nor can it renew the lease of a run that is gone
    assert len(renewals) == 1


def test_across_machines_the_ttl_rules(store, clock, proc, tmp_path):
    manager(store, clock, proc.processes(proc.run(100))).acquire(
        "p", "c", "create", ttl=DEFAULT_TTL, actor=dict(user="alice", host="ops1")
    )
    elsewhere = FakeProc(tmp_path / "proc2", boot="boot-2")  # another host: pid 100 is not there
    elsewhere.spawn(50, 1, ["/bin/bash"])
    b = manager(store, clock, elsewhere.processes(elsewhere.run(600)))
    assert b.get("p", "c")["held"] and not b.get("p", "c")["holder_gone"]
    with pytest.raises(LockError) as err:
        b.acquire("p", "c", "update", ttl=DEFAULT_TTL)
    msg = str(err.value)
    assert "If that run is dead, its lease lapses at " in msg and "(at once for a run on ops1)" in msg
    assert "-e coe_lock_break=1" in msg and "lock_token" not in msg
    clock.advance(DEFAULT_TTL + 1)
    lease = b.acquire("p", "c", "update", ttl=DEFAULT_TTL)
    assert lease["token"] == 2 and lease["taken_over"].startswith("expired lease of alice@ops1 pid 100")


def test_a_holder_without_a_process_is_ruled_by_the_ttl(store, clock, proc):
    # a lease taken by a module outside ansible-playbook: the same machine, but no run to judge
    manager(store, clock, proc.processes(300)).acquire("p", "c", "create", ttl=60, actor=dict(user="u", host="h"))
    assert store.get_lock("p", "c")["holder_pid"] is None
    b = manager(store, clock, proc.processes(proc.run(200)))
    with pytest.raises(LockError) as err:
        b.acquire("p", "c", "create", ttl=60)
    assert "at once" not in str(err.value) and "coe_lock_break=1" in str(err.value)


def test_break_only_the_lease_named(store, clock, proc):
    locks = manager(store, clock, proc.processes(proc.run(100)))
    locks.acquire("p", "c", "create", ttl=60)
    with pytest.raises(LockError) as err:
        locks.break_lock("p", "c", "dead", token=7)
    assert "Did not break" in str(err.value) and "current token 1" in str(err.value)
    assert store.get_lock("p", "c")["holder"] is not None
    broken = locks.break_lock("p", "c", "asked with coe_lock_break=1", token=1, actor=dict(user="ops"))
    assert broken["token"] == 1 and broken["holder_pid"] == 100
    assert store.get_lock("p", "c")["holder_pid"] is None  # the holder's fields go with it
    assert locks.break_lock("p", "c", "again", token=1) is None


def test_check_mode_decides_as_the_act_and_writes_nothing(store, clock, proc):
    a = manager(store, clock, proc.processes(proc.run(100)))
    a.acquire("p", "c", "create", ttl=60)
    proc.kill(100, 101, 102, 103)
    check = LockManager(store, clock=clock, processes=proc.processes(proc.run(200)), check_mode=True)
    lease = check.acquire("p", "c", "update", ttl=60)
    assert lease["token"] == 2 and "is gone" in lease["taken_over"]
    assert check.break_lock("p", "c", "x", token=1)["token"] == 1
    assert store.get_lock("p", "c")["token"] == 1 and store.get_lock("p", "c")["holder_pid"] == 100
    assert store.list_events(kind="lock", target="c") == []
    assert store.get_lock("p", "other") is None
    assert check.acquire("p", "other", "create", ttl=60)["token"] == 1
    assert store.get_lock("p", "other") is None


def test_the_refusal_never_asks_for_a_lock_token():
    lease = dict(
        holder="alice@ops1 pid 4242",
        holder_host="ops1",
        holder_pid=4242,
        operation="create",
        acquired_at="2026-11-25T07:40:00+00:00",
        expires_at="2026-11-25T07:42:00+00:00",
        token=12,
    )
    for here, leftover in ((False, None), (True, None), (False, "module cluster_servers (pid 4300)")):
        for action in (None, "update"):
            msg = refusal_text("prod-a", lease, action=action, here=here, leftover=leftover, waited=30)
            assert "alice@ops1 pid 4242" in msg and "coe_lock_timeout" in msg and "lock_token" not in msg
            assert "Gave up after waiting 30s" in msg
    assert refusal_text("prod-a", lease, action="update").startswith("Cannot update cluster 'prod-a': it is locked by")


def test_a_lease_of_a_store_from_before_holders_were_recorded(store_url, clock, proc, monkeypatch):
    """Schema 1 -> 2 keeps a live lease; with no process recorded, the TTL rules it."""
    monkeypatch.setattr(store_base, "MIGRATIONS", store_base.MIGRATIONS[:1])
    monkeypatch.setattr(store_base, "SCHEMA_VERSION", 1)
    with open_store(store_url, clock=clock) as old, old._write():
        old._execute(
            "INSERT INTO coe_locks (project, name, token, holder, operation, acquired_at, renewed_at, expires_at) "
            "VALUES ('p', 'c', 4, 'root@ops1', 'update', ?, ?, ?)",
            (clock(), clock(), clock() + 300),
        )
    monkeypatch.undo()
    with open_store(store_url, clock=clock) as new:
        assert new.schema_version() == store_base.SCHEMA_VERSION == 2
        row = new.get_lock("p", "c")
        assert row["holder"] == "root@ops1" and row["holder_pid"] is None and row["token"] == 4
        locks = manager(new, clock, proc.processes(proc.run(200)))
        with pytest.raises(LockError):
            locks.acquire("p", "c", "create", ttl=60)
        clock.advance(301)
        assert locks.acquire("p", "c", "create", ttl=60)["token"] == 5
        assert new.get_lock("p", "c")["holder_pid"] == 200


def test_a_holder_named_by_hand_is_bound_to_no_process(store, clock, proc):
    manager(store, clock, proc.processes(proc.run(100))).acquire("p", "c", "update", ttl=600, holder="ops: maintenance")
    proc.kill(100, 101, 102, 103)  # the command that took it has ended
    with pytest.raises(LockError) as err:
        manager(store, clock, proc.processes(proc.run(200))).acquire("p", "c", "update", ttl=60)
    assert "locked by ops: maintenance for update" in str(err.value)
