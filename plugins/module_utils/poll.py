# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""One polling loop for every wait of the collection.

``wait_for(probe, what, timeout)`` calls ``probe()`` until it returns anything but a
``Pending``, and returns that. A ``Pending`` says what is still awaited; when the time is
up the loop raises WaitTimeout, ``"Timed out after <timeout>s waiting for <what>
(<pending>)"``, with the Pending's details (and the Pending itself as ``.pending``, for a
caller that takes the last thing seen rather than an error). Time is a monotonic clock
unless the caller gives another (the locks compare with the store's clock); a sleep never
goes past the deadline by more than MIN_SLEEP; the interval may grow (``backoff``) up to
``max_interval``.

``retry(call, retriable, what, ...)``: the same loop around a call whose errors may be worth
another try (a dropped connection, a name Heat still holds); the last error is raised as it
was when the time or the attempts run out.

``authenticated(conn)``: before reads are made at once on threads of one connection, the
connection is made and authenticated on the calling thread, so that the threads share it and its
token (a module's connection is built on first use: threads racing to that first use each built
one, and each asked Keystone for a token).

``renewing_sleep(renew, ttl)``: the sleep to give the loop when the caller holds a cluster's
lease (CoeModule.keep_lease builds ``renew`` from the module's lock options): the lease is
renewed at once, then every third of its TTL, so it never lapses while the caller waits.

Plain Python: no ansible and no openstack import.
"""

from __future__ import annotations

import time

from ansible_collections.coe.openstack.plugins.module_utils.errors import WaitTimeout, error_text

# the shortest sleep when the deadline is (nearly) reached: one last look, not a busy loop
MIN_SLEEP = 0.1


class Pending:
    """What a probe returns while the thing awaited has not happened.

    ``text`` says what is still pending (it ends the timeout message); ``progress`` is the
    line for the caller's progress callback before the next sleep (None: nothing to say);
    ``value`` what was seen last; ``details`` the secret-free keys of the WaitTimeout.
    """

    def __init__(self, text, value=None, progress=None, **details):
        self.text = text
        self.value = value
        self.progress = progress
        self.details = details


def timed_out(what, timeout, pending):
    """The WaitTimeout of a wait for ``what`` that is still ``pending`` after ``timeout`` s."""
    msg = "Timed out after %ds waiting for %s" % (timeout, what) if timeout is not None else "Gave up on %s" % what
    if pending.text:
        msg = "%s (%s)" % (msg, pending.text)
    error = WaitTimeout(msg, **pending.details)
    error.pending = pending
    return error


def wait_for(
    probe,
    what,
    timeout,
    interval=1.0,
    backoff=1.0,
    max_interval=None,
    deadline=None,
    attempts=None,
    clock=None,
    sleep=None,
    progress=None,
):
    """``probe()``'s first result that is not a Pending (see the module docstring).

    ``timeout``: seconds from now (None: no time limit, then give ``attempts``);
    ``deadline``: a ``clock()`` value shared with other waits of one operation, instead of
    now + ``timeout`` (``timeout`` still names the wait in the message); ``attempts``: the
    most probes made; ``clock`` and ``sleep``: time.monotonic and time.sleep unless given.
    Raises WaitTimeout naming ``what`` and what was still pending.
    """
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    if deadline is None:
        deadline = float("inf") if timeout is None else clock() + timeout
    tries = 0
    while True:
        result = probe()
        tries += 1
        if not isinstance(result, Pending):
            return result
        if clock() >= deadline or (attempts is not None and tries >= attempts):
            raise timed_out(what, timeout, result)
        if progress is not None and result.progress:
            progress(result.progress)
        sleep(min(interval, max(deadline - clock(), MIN_SLEEP)))
        interval = interval * backoff
        if max_interval is not None:
            interval = min(interval, max_interval)


def retry(call, retriable, what, timeout=None, attempts=None, progress=None, **loop):
    """``call()``'s result, calling it again while it raises an error ``retriable(error)``
    accepts; the last such error is raised once ``timeout`` or ``attempts`` run out, any
    other error at once. ``progress`` gets ``"retrying <what> after: <error>"`` before each
    new try; ``loop``: wait_for's interval, backoff, clock and sleep."""

    def probe():
        try:
            return call()
        except Exception as e:
            if not retriable(e):
                raise
            return Pending(error_text(e), value=e, progress="retrying %s after: %s" % (what, error_text(e)))

    try:
        return wait_for(probe, what, timeout, attempts=attempts, progress=progress, **loop)
    except WaitTimeout as e:
        raise e.pending.value from None


def authenticated(conn):
    """``conn`` with its token: ``authorize()`` (openstacksdk's Connection, a LazyConnection of one)
    on this thread, before threads share it; a connection without it (a test's fake) as it is."""
    authorize = getattr(conn, "authorize", None)
    if callable(authorize):
        authorize()
    return conn


def renewing_sleep(renew, ttl, sleep=time.sleep, clock=time.monotonic, check=None):
    """A ``sleep`` for a wait that holds a lease of ``ttl`` seconds: ``renew()`` is called
    now, then again before any sleep once a third of ``ttl`` has passed since the last
    call, and no sleep lasts longer than a third of ``ttl``, so the lease never lapses
    while the caller waits. ``renew`` raises when the lease is lost: the wait ends there.
    ``check()``, called before every sleep, raises when the run holding the lease is gone
    (locks.LockManager.check_run): a module left by a killed ansible-playbook stops there.
    """
    third = ttl / 3.0
    last = [clock()]
    renew()

    def wait(seconds):
        if check is not None:
            check()
        if clock() - last[0] >= third:
            renew()
            last[0] = clock()
        sleep(min(seconds, third))

    return wait
