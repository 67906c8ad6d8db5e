"""poll.py: the one polling loop (a fake clock, no real sleep)."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import poll
from ansible_collections.coe.openstack.plugins.module_utils.errors import WaitTimeout


class Clock:
    def __init__(self, now=100.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_returns_the_first_result_that_is_not_pending():
    clock = Clock()
    seen = iter([poll.Pending("a"), poll.Pending("b"), None])
    assert poll.wait_for(lambda: next(seen), "x", 30, clock=clock, sleep=clock.sleep) is None
    assert clock.sleeps == [1.0, 1.0]


def test_a_timeout_names_what_was_awaited_and_what_is_still_pending():
    clock = Clock()
    with pytest.raises(WaitTimeout) as e:
        poll.wait_for(
            lambda: poll.Pending("still building: a", value="last", building=["a"]),
            "the servers of cluster k1",
            10,
            interval=3,
            clock=clock,
            sleep=clock.sleep,
        )
    assert str(e.value) == "Timed out after 10s waiting for the servers of cluster k1 (still building: a)"
    assert e.value.details == {"building": ["a"]}
    assert e.value.pending.value == "last"
    # no sleep goes past the deadline: 3, 3, 3, then the 1 s that is left
    assert clock.sleeps == [3, 3, 3, 1] and clock.now == 110.0


def test_the_interval_grows_up_to_its_maximum():
    clock = Clock()
    with pytest.raises(WaitTimeout):
        poll.wait_for(
            lambda: poll.Pending(""),
            "x",
            60,
            interval=1.0,
            backoff=2.0,
            max_interval=5.0,
            clock=clock,
            sleep=clock.sleep,
        )
    assert clock.sleeps[:5] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_shared_deadline_and_a_number_of_attempts():
    clock = Clock()
    with pytest.raises(WaitTimeout) as e:
        poll.wait_for(lambda: poll.Pending("p"), "x", 3600, deadline=102.0, clock=clock, sleep=clock.sleep)
    assert clock.now == 102.0 and "Timed out after 3600s" in str(e.value)
    calls = []
    with pytest.raises(WaitTimeout) as e:
        poll.wait_for(lambda: calls.append(1) or poll.Pending("p"), "x", None, attempts=3, sleep=clock.sleep)
    assert len(calls) == 3 and str(e.value) == "Gave up on x (p)"


def test_progress_lines_before_each_sleep():
    clock = Clock()
    lines = []
    seen = iter([poll.Pending("p", progress="2 building"), poll.Pending("p"), "done"])
    poll.wait_for(lambda: next(seen), "x", 30, clock=clock, sleep=clock.sleep, progress=lines.append)
    assert lines == ["2 building"]


def test_retry_retries_what_it_is_told_and_raises_the_last_error():
    clock = Clock()
    errors = iter([OSError("reset 1"), OSError("reset 2"), "ok"])

    def call():
        item = next(errors)
        if isinstance(item, Exception):
            raise item
        return item

    lines = []
    result = poll.retry(
        call, lambda e: isinstance(e, OSError), "a read", attempts=4, sleep=clock.sleep, progress=lines.append
    )
    assert result == "ok" and lines == ["retrying a read after: reset 1", "retrying a read after: reset 2"]

    def always():
        raise OSError("still reset")

    with pytest.raises(OSError, match="still reset"):
        poll.retry(always, lambda e: True, "a read", attempts=4, interval=1, backoff=2, sleep=clock.sleep)
    assert clock.sleeps[-3:] == [1, 2, 4]

    def other():
        raise ValueError("no")

    with pytest.raises(ValueError):
        poll.retry(other, lambda e: isinstance(e, OSError), "a read", timeout=10, sleep=clock.sleep)


def test_renewing_sleep_renews_now_then_every_third_of_the_ttl():
    clock = Clock(0.0)
    renewals = []
    wait = poll.renewing_sleep(lambda: renewals.append(clock()), 30, sleep=clock.sleep, clock=clock)
    assert renewals == [0.0]
    for _step in range(6):
        wait(5)
    assert renewals == [0.0, 10.0, 20.0]
    wait(600)
    assert clock.sleeps[-1] == 10


def test_authenticated_gets_the_token_on_this_thread_before_threads_share_the_connection():
    class Conn:
        def __init__(self):
            self.tokens = 0

        def authorize(self):
            self.tokens += 1
            return "token"

    conn = Conn()
    assert poll.authenticated(conn) is conn and conn.tokens == 1
    bare = object()  # a test's fake connection without authorize
    assert poll.authenticated(bare) is bare
