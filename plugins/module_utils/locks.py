# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Cluster locks: leases with a holder, an operation, an expiry and a fencing token.

One lock per (project, cluster name) — a create is locked before the cluster
has a uuid. Every acquire (including the take-over of an expired lease) gets a
token one higher than any token ever given for that cluster; the store refuses
writes that carry any other token (store.base.Store._check_lock). Releasing or
breaking keeps the token, so an old holder's token stays stale for ever.

The holder is a run, not a module process: every Ansible module call is a
process of its own that lives for one task, so a lease records the process that
owns the run — the ``ansible-playbook`` (or ``ansible``) process found by walking
up from the module through /proc (AWX and ansible-runner start ansible-playbook
too) — with its start time (so that a pid the kernel gave to a new process is
not taken for the old one), the machine it runs on (boot id and pid namespace:
who can see that pid), the host name, the AWX job id, and the module process
that last renewed the lease (which may outlive a killed ansible-playbook). A run
on the same machine whose holder process no longer exists takes the lease over
at once, logged with the dead holder's name; across machines the TTL rules.
This module finds the run itself rather than having the role pass an identity:
Ansible gives a play no variable with its pid, and a module cannot be fooled by
a stale or copied variable.

Defaults: a lease of ``DEFAULT_TTL`` (120 s), renewed every third of it while a
run waits (the front door renews at every poll, a driver's module every 40 s),
so a live run must miss two renewals in a row to lose it, and the lease of a
dead run on another host lapses at most two minutes after its last renewal.

Times come from an injectable ``clock`` (epoch seconds) and waits use an
injectable ``sleep``; the process table is an injectable ``Processes`` (a /proc
folder), so expiry and dead holders are tested without waiting or killing.
Runners on several machines compare their clocks with the lease expiry: keep
them in NTP sync; the TTL should be much larger than the skew.

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.coe.openstack.plugins.module_utils.errors import LockError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.poll import Pending, wait_for
from ansible_collections.coe.openstack.plugins.module_utils.store.base import (
    LOCK_COLUMNS,
    actor_label,
    iso,
    resolve_actor,
)

MIN_TTL = 5
MAX_TTL = 7 * 24 * 3600
# The default lease (coe_lock_ttl, the modules' ttl/lock_ttl): bounds the wait for a dead run
# on another host; renewed every third of it (poll.renewing_sleep), at every poll of the front door.
DEFAULT_TTL = 120
# How long an acquire waits, whatever its own lock_timeout, for the last module process of a
# dead run to notice that its run is gone (at its next poll) and stop.
LEFTOVER_WAIT = 60

# the commands whose process owns a run (the modules' ancestor)
ANSIBLE_COMMANDS = frozenset(("ansible-playbook", "ansible", "ansible-console", "ansible-pull"))
_MODULE_FILE = re.compile(r"AnsiballZ_(\w+)\.py")

# what the holder of a lease is known to be, seen from this machine
ALIVE = "alive"
GONE = "gone"  # its run and its last module process are gone: take it over at once
LEFTOVER = "leftover"  # its run is gone, its last module process still works: wait for it

# the lock row's fields that belong to a holder (None when the lock is free)
HOLDER_FIELDS = tuple(c for c in LOCK_COLUMNS if c not in ("project", "name", "token"))
_FREE = dict.fromkeys(HOLDER_FIELDS)


class Processes:
    """This machine's processes as the locks see them: Linux's /proc (``root``); nothing elsewhere.

    A process is named by its pid and its start time (clock ticks since boot, field 22
    of /proc/PID/stat), so that a reused pid is not the old process. ``pid`` is the
    process asking (this one).
    """

    def __init__(self, root="/proc", pid=None):
        self.root = root
        self.pid = os.getpid() if pid is None else pid
        self._machine = self._run = None

    def _read(self, pid, what):
        try:
            with open(os.path.join(self.root, str(pid), what), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return None

    def stat(self, pid):
        """``(state, ppid, start)`` of a process, or None when there is none."""
        text = self._read(pid, "stat")
        if not text or ")" not in text:
            return None
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) on
        try:
            return fields[0], int(fields[1]), int(fields[19])
        except (IndexError, ValueError):
            return None

    def argv(self, pid):
        text = self._read(pid, "cmdline")
        return [a for a in (text or "").split("\0") if a]

    def alive(self, pid, start=None):
        """Whether process ``pid`` (started at ``start`` ticks, when known) still runs (a zombie does not)."""
        if not pid:
            return False
        st = self.stat(pid)
        return st is not None and st[0] not in ("Z", "X", "x") and (start is None or st[2] == int(start))

    def machine(self):
        """What two processes share when they see each other's pids: ``<boot id>/<pid namespace>``.

        None when it cannot be read (not Linux): then no holder is judged by its process.
        """
        if self._machine is None:
            boot = self._read("sys/kernel/random", "boot_id")
            try:
                namespace = os.readlink(os.path.join(self.root, "self", "ns", "pid"))
            except OSError:
                namespace = None
            self._machine = "%s/%s" % (boot.strip(), namespace) if boot and namespace else ""
        return self._machine or None

    def is_ansible(self, pid):
        return any(os.path.basename(arg) in ANSIBLE_COMMANDS for arg in self.argv(pid)[:2])

    def run(self):
        """``(pid, start)`` of the ansible-playbook process that owns this process's run.

        Walks up from this process to the first ansible command (a worker of
        ansible-playbook carries its command line too), then on while the parent is
        one: that is the run's main process. ``(None, None)`` when there is none
        (a module run by hand, through ssh, or not on Linux).
        """
        if self._run is None:
            found, pid = (None, None), self.pid
            for _step in range(64):
                st = self.stat(pid)
                if st is None:
                    break
                if self.is_ansible(pid):
                    found = (pid, st[2])
                elif found[0] is not None:
                    break
                if st[1] <= 1:
                    break
                pid = st[1]
            self._run = found
        return self._run

    def me(self):
        """``(pid, start)`` of this process."""
        st = self.stat(self.pid)
        return self.pid, st[2] if st else None

    def describe(self, pid):
        """A process for a message: the module it runs (``cluster_servers``) or its command."""
        argv = self.argv(pid)
        for arg in argv:
            m = _MODULE_FILE.search(arg)
            if m:
                return "module %s (pid %d)" % (m.group(1), pid)
        return "%s (pid %d)" % (os.path.basename(argv[0]) if argv else "process", pid)


def holder_label(actor, pid=None):
    """How a holder is named to others: ``user@host pid N`` (plus `` (AWX job N)``)."""
    text = "%s@%s" % (actor["user"], actor["host"])
    if pid:
        text += " pid %d" % pid
    if actor.get("awx_job_id"):
        text += " (AWX job %s)" % actor["awx_job_id"]
    return text


def lease_view(row, now, gone=False):
    """A lock row as returned to users: times in ISO 8601, ``held``, ``expired``, ``holder_gone``.

    ``gone``: the holder's run is known to have ended (LockManager checks it on the
    holder's machine); such a lease is not held: the next run takes it over.
    """
    if row is None:
        return None
    held = row["holder"] is not None
    expired = bool(held and row["expires_at"] is not None and row["expires_at"] <= now)
    gone = bool(held and gone)
    return dict(
        project_id=row["project"],
        cluster=row["name"],
        token=row["token"],
        holder=row["holder"],
        holder_host=row.get("holder_host") if held else None,
        holder_pid=row.get("holder_pid") if held else None,
        awx_job_id=row.get("awx_job_id") if held else None,
        operation=row["operation"],
        acquired_at=iso(row["acquired_at"]) if held else None,
        renewed_at=iso(row["renewed_at"]) if held else None,
        expires_at=iso(row["expires_at"]) if held else None,
        held=held and not expired and not gone,
        expired=expired,
        holder_gone=gone,
    )


def refusal_text(name, lease, action=None, here=False, leftover=None, waited=None):
    """The one message that refuses an act because another run holds cluster ``name``'s lock.

    ``lease``: its lease view. ``action``: what was refused (``update``), or None for the
    lock itself. ``here``: the holder is a live run on this machine. ``leftover``: the
    description of a dead run's module process that still works on the cluster.
    ``waited``: the seconds the caller waited before giving up. Says
    who holds the lock (a name that one run has, not every run of a user) and what the
    caller can do with the playbooks' own variables: wait with ``coe_lock_timeout``,
    break a dead holder's lock with ``coe_lock_break``.
    """
    head = "Cluster '%s' is locked" % name
    if action is not None:
        head = "Cannot %s cluster '%s': it is locked" % (action, name)
    text = "%s by %s for %s since %s, until %s (token %d)." % (
        head,
        lease["holder"],
        lease["operation"],
        lease["acquired_at"],
        lease["expires_at"],
        lease["token"],
    )
    wait = "run again with -e coe_lock_timeout=SECONDS"
    if waited:
        text += " Gave up after waiting %ss." % waited
        wait += " (more than %s)" % waited
    if leftover:
        advice = "That run is gone, but its %s still works on the cluster: stop that process, or %s to wait for it." % (
            leftover,
            wait,
        )
    elif here:
        advice = (
            "That run is alive on this host (pid %s): %s to wait for it. If it hangs, stop that process: "
            "the next run on this host takes the lock of a dead run over at once." % (lease.get("holder_pid"), wait)
        )
    else:
        at_once = " (at once for a run on %s)" % lease["holder_host"] if lease.get("holder_pid") else ""
        advice = (
            "To wait for it, %s. If that run is dead, its lease lapses at %s%s; to break its lock now, "
            "run again with -e coe_lock_break=%d (recorded in the history)."
            % (wait, lease["expires_at"], at_once, lease["token"])
        )
    return "%s %s" % (text, advice)


def check_ttl(ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not MIN_TTL <= ttl <= MAX_TTL:
        raise ValidationError("ttl", "must be a number of seconds between %d and %d, got %r" % (MIN_TTL, MAX_TTL, ttl))


def _check_token(token):
    try:
        value = int(token)
    except (TypeError, ValueError):
        raise ValidationError("lock_token", "must be an integer fencing token, got %r" % (token,)) from None
    if value < 1 or isinstance(token, bool):
        raise ValidationError("lock_token", "must be a positive integer, got %r" % (token,))
    return value


def _empty_row(project, name):
    return dict(_FREE, project=project, name=name, token=0)


class LockManager:
    """Acquire, renew, release and break cluster locks in a store."""

    def __init__(self, store, clock=None, sleep=None, processes=None, check_mode=False):
        """``check_mode``: every act reads and decides as it would, and writes nothing."""
        self.store = store
        self.check_mode = check_mode
        self.clock = clock or store.clock or time.time
        self.sleep = sleep or time.sleep
        self.processes = processes or Processes()
        self._renewed = {}  # (project, name): the row as this process last renewed it
        self._rows = {}  # (project, name): the row behind the last view get() or list() gave

    # -- who holds a lease ---------------------------------------------------

    def identity(self, actor=None, holder=None):
        """The holder fields of a lease taken by this process's run.

        A ``holder`` named by the caller is bound to no process: only its TTL ends it
        (a lease taken by hand, meant to outlive the command that took it).
        """
        who = resolve_actor(actor)
        pid, start = self.processes.run() if holder is None else (None, None)
        task_pid, task_start = self.processes.me()
        return dict(
            holder=holder or holder_label(who, pid),
            holder_host=who["host"],
            holder_machine=self.processes.machine(),
            holder_pid=pid,
            holder_start=start,
            awx_job_id=who["awx_job_id"],
            task_pid=task_pid,
            task_start=task_start,
        )

    def holder_state(self, row):
        """ALIVE, GONE or LEFTOVER when the holder runs on this machine; None when that cannot be told.

        None: the lock is free, the holder is on another machine (or in another pid
        namespace), or it recorded no process (a module run outside ansible-playbook,
        a lease from before the holder's process was recorded): the TTL rules.
        """
        if row is None or row["holder"] is None or not row.get("holder_pid") or not row.get("holder_machine"):
            return None
        if row["holder_machine"] != self.processes.machine():
            return None
        if self.processes.alive(row["holder_pid"], row.get("holder_start")):
            return ALIVE
        if row.get("task_pid") and self.processes.alive(row["task_pid"], row.get("task_start")):
            return LEFTOVER
        return GONE

    def _view(self, row, now):
        if row is not None:
            self._rows[(row["project"], row["name"])] = row
        return lease_view(row, now, gone=self.holder_state(row) in (GONE, LEFTOVER))

    def refusal(self, name, lease, action=None):
        """refusal_text for a lease view this manager gave (get, list), told from this machine."""
        row = self._rows.get((lease["project_id"], lease["cluster"]))
        return self._refusal(name, row, lease, action)

    def _refusal(self, name, row, lease, action=None, waited=None):
        state = self.holder_state(row)
        leftover = self.processes.describe(row["task_pid"]) if state == LEFTOVER else None
        return refusal_text(name, lease, action=action, here=state == ALIVE, leftover=leftover, waited=waited)

    def _locked(self, name, row, now, state, waited=None):
        lease = lease_view(row, now)
        return LockError(
            self._refusal(name, row, lease, waited=waited),
            holder=row["holder"],
            holder_host=row.get("holder_host"),
            holder_pid=row.get("holder_pid"),
            lock_operation=row["operation"],
            expires_at=lease["expires_at"],
            leftover_pid=row.get("task_pid") if state == LEFTOVER else None,
        )

    def _decide(self, row, now, new_holder):
        """The history's note of the lease an acquire takes over (None: the lock is free); LockError when refused."""
        if row["holder"] is None:
            return None
        old = "%s (%s, token %d" % (row["holder"], row["operation"], row["token"])
        if row["expires_at"] <= now:
            return "expired lease of %s, expired %s) taken over by %s" % (
                old,
                iso(row["expires_at"]),
                new_holder,
            )
        state = self.holder_state(row)
        if state == GONE:
            return "lease of %s, until %s) taken over at once by %s: its run (pid %s on %s) is gone" % (
                old,
                iso(row["expires_at"]),
                new_holder,
                row["holder_pid"],
                row.get("holder_host"),
            )
        raise self._locked(row["name"], row, now, state)

    # -- reading -------------------------------------------------------------

    def get(self, project, name):
        """The lease view of a cluster's lock (None when never taken)."""
        return self._view(self.store.get_lock(project, name), self.clock())

    def list(self, project=None, held_only=False):
        now = self.clock()
        views = [self._view(r, now) for r in self.store.list_locks(project)]
        return [v for v in views if v["held"]] if held_only else views

    # -- acts ----------------------------------------------------------------

    def _row(self, project, name):
        return self.store.lock_row(project, name, write=not self.check_mode)

    def try_acquire(self, project, name, operation, ttl, holder=None, actor=None, assume_free=False):
        """One attempt: the new lease, or LockError naming the current holder.

        The lease returned says under ``taken_over`` whose lease it took over (an
        expired one, or a dead run's on this machine), else None. ``assume_free``
        (check mode, for a caller that would wait): the lease it would get.
        """
        check_ttl(ttl)
        me = self.identity(actor, holder)
        with self._row(project, name) as row:
            now = self.clock()
            takeover = None
            if not assume_free:
                takeover = self._decide(row, now, me["holder"])
            if takeover:
                row.events.append(dict(actor=actor, operation="lock-takeover", message=takeover))
            row.update(
                me,
                token=row["token"] + 1,
                operation=operation,
                acquired_at=now,
                renewed_at=now,
                expires_at=now + ttl,
            )
            lease = dict(row)
        return dict(lease_view(lease, now), taken_over=takeover)

    def acquire(self, project, name, operation, ttl, holder=None, wait=0, poll=0.5, actor=None):
        """Acquire the lock, waiting up to ``wait`` seconds for the current holder.

        A dead run's module process that still works is waited for up to
        LEFTOVER_WAIT seconds even when ``wait`` is shorter: it stops at its next poll.
        In check mode nothing is waited for: a lock that would be waited for gives
        the lease the wait would end with.
        """
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise ValidationError("wait", "must be a number of seconds >= 0, got %r" % (wait,))
        start = self.clock()

        def attempt():
            try:
                return self.try_acquire(project, name, operation, ttl, holder=holder, actor=actor)
            except LockError as e:
                if self.check_mode and wait:
                    return self.try_acquire(project, name, operation, ttl, holder=holder, actor=actor, assume_free=True)
                limit = max(wait, LEFTOVER_WAIT) if e.details.get("leftover_pid") else wait
                if self.check_mode or self.clock() - start >= limit:
                    raise self._gave_up(project, name, e, wait) from None
                return Pending(e.msg, value=e)

        # the attempt says when to give up: a dead run's last module is waited for longer
        return wait_for(attempt, "the lock of cluster '%s'" % name, None, poll, clock=self.clock, sleep=self.sleep)

    def _gave_up(self, project, name, refused, wait):
        """The refusal after waiting ``wait`` seconds (told as it is now), or ``refused`` itself."""
        row = self.store.get_lock(project, name) if wait else None
        if row is None or row["holder"] is None:
            return refused
        return self._locked(name, row, self.clock(), self.holder_state(row), waited=wait)

    def _held_row(self, row, name, token, what):
        if row["token"] != token:
            raise LockError(
                "Cannot %s the lock of cluster '%s': token %d is stale (current token %d%s)"
                % (what, name, token, row["token"], ", held by %s" % row["holder"] if row["holder"] else ""),
                holder=row["holder"],
            )

    def renew(self, project, name, token, ttl):
        """Extend a lease we hold by ``ttl`` seconds from now; this process is its task from then on.

        An expired lease that nobody took over may still be renewed: its token
        is still the newest, so no other writer can have come in between. A lease
        whose run is gone is not renewed: that run's module processes stop, so that
        the next run takes the lease over.
        """
        check_ttl(ttl)
        token = _check_token(token)
        with self._row(project, name) as row:
            self._held_row(row, name, token, "renew")
            if row["holder"] is None:
                raise LockError(
                    "Cannot renew the lock of cluster '%s': token %d was released or broken" % (name, token)
                )
            if self.holder_state(row) in (GONE, LEFTOVER):
                raise self._run_gone(name, row)
            now = self.clock()
            task_pid, task_start = self.processes.me()
            row.update(renewed_at=now, expires_at=now + ttl, task_pid=task_pid, task_start=task_start)
            lease = dict(row)
        self._renewed[(project, name)] = lease
        return lease_view(lease, now)

    def _run_gone(self, name, row):
        return LockError(
            "Stopped working on cluster '%s': the run that holds its lock, %s, is gone (pid %s on %s); "
            "the next run takes the lock over" % (name, row["holder"], row["holder_pid"], row.get("holder_host")),
            holder=row["holder"],
        )

    def check_run(self, project, name):
        """LockError when the run holding the lease this process last renewed is gone (no store read).

        A module that waits calls it before each sleep: a module process left working
        by a killed ansible-playbook stops at its next poll.
        """
        row = self._renewed.get((project, name))
        if row is not None and self.holder_state(row) in (GONE, LEFTOVER):
            raise self._run_gone(name, row)

    def release(self, project, name, token):
        """Release a lease we hold. Returns True if released, False if it already was."""
        token = _check_token(token)
        with self._row(project, name) as row:
            self._held_row(row, name, token, "release")
            if row["holder"] is None:
                return False
            row.update(_FREE)
        return True

    def break_lock(self, project, name, reason, actor=None, token=None):
        """Break whoever holds the lock (an explicit act, logged with the reason).

        With ``token``, only the lease of that token: a lease taken since (a newer
        token) is refused, never broken. Returns the lease that was broken, or None
        when the lock was free.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "breaking a lock needs a reason, which is recorded in the history")
        if token is not None:
            token = _check_token(token)
        who = actor_label(resolve_actor(actor))
        with self._row(project, name) as row:
            if token is not None and row["token"] != token:
                raise LockError(
                    "Did not break the lock of cluster '%s': token %d is not its lease any more (current token %d%s)"
                    % (name, token, row["token"], ", held by %s" % row["holder"] if row["holder"] else ", free"),
                    holder=row["holder"],
                )
            if row["holder"] is None:
                return None
            broken = self._view(dict(row), self.clock())
            row.events.append(
                dict(
                    actor=actor,
                    operation="lock-break",
                    message="lock of %s (%s, token %d) broken by %s: %s"
                    % (row["holder"], row["operation"], row["token"], who, reason.strip()),
                )
            )
            row.update(_FREE)
        return broken
