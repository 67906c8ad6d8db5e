# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Cluster locks: leases with a holder, an operation, an expiry and a fencing token.

One lock per (project, cluster name) — a create is locked before the cluster
has a uuid. Every acquire (including the take-over of an expired lease) gets a
token one higher than any token ever given for that cluster; the store refuses
writes that carry any other token (store.base.Store._check_lock). Releasing or
breaking keeps the token, so an old holder's token stays stale for ever.

Times come from an injectable ``clock`` (epoch seconds) and waits use an
injectable ``sleep``, so expiry is tested without waiting. Runners on several
machines compare their clocks with the lease expiry: keep them in NTP sync;
the TTL should be much larger than the skew.

Plain Python: no ansible, no openstack import.
"""

from __future__ import annotations

import time

from ansible_collections.coe.openstack.plugins.module_utils.errors import LockError, ValidationError, WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.poll import Pending, wait_for
from ansible_collections.coe.openstack.plugins.module_utils.store.base import actor_label, iso, resolve_actor

MIN_TTL = 5
MAX_TTL = 7 * 24 * 3600


def lease_view(row, now):
    """A lock row as returned to users: times in ISO 8601, ``held`` and ``expired`` flags."""
    if row is None:
        return None
    held = row["holder"] is not None
    expired = bool(held and row["expires_at"] is not None and row["expires_at"] <= now)
    return dict(
        project_id=row["project"],
        cluster=row["name"],
        token=row["token"],
        holder=row["holder"],
        operation=row["operation"],
        acquired_at=iso(row["acquired_at"]) if held else None,
        renewed_at=iso(row["renewed_at"]) if held else None,
        expires_at=iso(row["expires_at"]) if held else None,
        held=held and not expired,
        expired=expired,
    )


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


class LockManager:
    """Acquire, renew, release and break cluster locks in a store."""

    def __init__(self, store, clock=None, sleep=None):
        self.store = store
        self.clock = clock or store.clock or time.time
        self.sleep = sleep or time.sleep

    def get(self, project, name):
        """The lease view of a cluster's lock (None when never taken)."""
        return lease_view(self.store.get_lock(project, name), self.clock())

    def list(self, project=None, held_only=False):
        now = self.clock()
        views = [lease_view(r, now) for r in self.store.list_locks(project)]
        return [v for v in views if v["held"]] if held_only else views

    def try_acquire(self, project, name, operation, ttl, holder=None, actor=None):
        """One attempt: the new lease, or LockError naming the current holder."""
        check_ttl(ttl)
        who = resolve_actor(actor)
        holder = holder or actor_label(who)
        with self.store.lock_row(project, name) as row:
            now = self.clock()
            if row["holder"] is not None and row["expires_at"] > now:
                raise LockError(
                    "Cluster '%s' is locked by %s for %s since %s, until %s (token %d)"
                    % (
                        name,
                        row["holder"],
                        row["operation"],
                        iso(row["acquired_at"]),
                        iso(row["expires_at"]),
                        row["token"],
                    ),
                    holder=row["holder"],
                    lock_operation=row["operation"],
                    expires_at=iso(row["expires_at"]),
                )
            if row["holder"] is not None:
                row.events.append(
                    dict(
                        actor=actor,
                        operation="lock-takeover",
                        message="expired lease of %s (%s, token %d, expired %s) taken over by %s"
                        % (row["holder"], row["operation"], row["token"], iso(row["expires_at"]), holder),
                    )
                )
            row.update(
                token=row["token"] + 1,
                holder=holder,
                operation=operation,
                acquired_at=now,
                renewed_at=now,
                expires_at=now + ttl,
            )
            lease = dict(row)
        return lease_view(lease, now)

    def acquire(self, project, name, operation, ttl, holder=None, wait=0, poll=0.5, actor=None):
        """Acquire the lock, waiting up to ``wait`` seconds for the current holder."""
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait < 0:
            raise ValidationError("wait", "must be a number of seconds >= 0, got %r" % (wait,))

        def attempt():
            try:
                return self.try_acquire(project, name, operation, ttl, holder=holder, actor=actor)
            except LockError as e:
                return Pending(e.msg, value=e)

        try:
            return wait_for(attempt, "the lock of cluster '%s'" % name, wait, poll, clock=self.clock, sleep=self.sleep)
        except WaitTimeout as e:
            refused = e.pending.value
            if wait:
                raise LockError("%s; gave up after waiting %ss" % (refused.msg, wait), **refused.details) from None
            raise refused from None

    def _held_row(self, row, name, token, what):
        if row["token"] != token:
            raise LockError(
                "Cannot %s the lock of cluster '%s': token %d is stale (current token %d%s)"
                % (what, name, token, row["token"], ", held by %s" % row["holder"] if row["holder"] else ""),
                holder=row["holder"],
            )

    def renew(self, project, name, token, ttl):
        """Extend a lease we hold by ``ttl`` seconds from now.

        An expired lease that nobody took over may still be renewed: its token
        is still the newest, so no other writer can have come in between.
        """
        check_ttl(ttl)
        token = _check_token(token)
        with self.store.lock_row(project, name) as row:
            self._held_row(row, name, token, "renew")
            if row["holder"] is None:
                raise LockError(
                    "Cannot renew the lock of cluster '%s': token %d was released or broken" % (name, token)
                )
            now = self.clock()
            row.update(renewed_at=now, expires_at=now + ttl)
            lease = dict(row)
        return lease_view(lease, now)

    def release(self, project, name, token):
        """Release a lease we hold. Returns True if released, False if it already was."""
        token = _check_token(token)
        with self.store.lock_row(project, name) as row:
            self._held_row(row, name, token, "release")
            if row["holder"] is None:
                return False
            row.update(holder=None, operation=None, acquired_at=None, renewed_at=None, expires_at=None)
        return True

    def break_lock(self, project, name, reason, actor=None):
        """Break whoever holds the lock (an explicit act, logged with the reason).

        Returns the lease that was broken, or None when the lock was free.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("reason", "breaking a lock needs a reason, which is recorded in the history")
        who = actor_label(resolve_actor(actor))
        with self.store.lock_row(project, name) as row:
            if row["holder"] is None:
                return None
            broken = lease_view(dict(row), self.clock())
            row.events.append(
                dict(
                    actor=actor,
                    operation="lock-break",
                    message="lock of %s (%s, token %d) broken by %s: %s"
                    % (row["holder"], row["operation"], row["token"], who, reason.strip()),
                )
            )
            row.update(holder=None, operation=None, acquired_at=None, renewed_at=None, expires_at=None)
        return broken
