"""Cluster locks (locks.py) on both backends, with an injectable clock."""

import itertools

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import LockError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager


@pytest.fixture
def locks(store, clock):
    return LockManager(store, clock=clock, sleep=clock.sleep)


def test_acquire_refuses_a_second_holder_naming_the_first(locks):
    lease = locks.acquire("p", "c", "create", ttl=300, holder="alice@laptop")
    assert lease["token"] == 1 and lease["held"] and lease["holder"] == "alice@laptop"
    assert lease["operation"] == "create"
    with pytest.raises(LockError) as err:
        locks.acquire("p", "c", "delete", ttl=300, holder="bob@ci")
    assert "alice@laptop" in str(err.value) and "create" in str(err.value)
    assert err.value.details["holder"] == "alice@laptop"
    # another cluster, or the same name in another project, is independent
    assert locks.acquire("p", "other", "create", ttl=300)["token"] == 1
    assert locks.acquire("q", "c", "create", ttl=300)["token"] == 1


def test_expired_lease_is_taken_over_and_logged(locks, clock, store):
    first = locks.acquire("p", "c", "update", ttl=60, holder="alice")
    clock.advance(59)
    with pytest.raises(LockError):
        locks.acquire("p", "c", "update", ttl=60, holder="bob")
    clock.advance(2)
    assert locks.get("p", "c")["expired"] is True
    second = locks.acquire("p", "c", "update", ttl=60, holder="bob")
    assert second["token"] == first["token"] + 1 and second["holder"] == "bob"
    events = store.list_events(kind="lock", target="c")
    assert events[-1]["operation"] == "lock-takeover" and "alice" in events[-1]["message"]


def test_wait_for_the_holder_with_timeout(locks, clock):
    locks.acquire("p", "c", "update", ttl=30, holder="alice")
    start = clock()
    with pytest.raises(LockError) as err:
        locks.acquire("p", "c", "update", ttl=30, holder="bob", wait=10, poll=1)
    assert "Gave up after waiting 10s" in str(err.value)
    assert clock() - start >= 10
    # waiting longer than the lease: the lease expires and bob gets it
    lease = locks.acquire("p", "c", "update", ttl=30, holder="bob", wait=60, poll=1)
    assert lease["holder"] == "bob" and lease["token"] == 2


def test_renew_extends_and_a_stale_token_cannot_renew(locks, clock):
    lease = locks.acquire("p", "c", "update", ttl=60, holder="alice")
    clock.advance(50)
    renewed = locks.renew("p", "c", lease["token"], ttl=60)
    assert renewed["token"] == lease["token"]
    clock.advance(50)
    assert locks.get("p", "c")["held"]  # would have expired without the renewal
    clock.advance(11)
    # expired but nobody took it over: still the newest token, renewal allowed
    assert locks.renew("p", "c", lease["token"], ttl=60)["held"]
    clock.advance(61)
    locks.acquire("p", "c", "delete", ttl=60, holder="bob")
    with pytest.raises(LockError) as err:
        locks.renew("p", "c", lease["token"], ttl=60)
    assert "stale" in str(err.value) and "bob" in str(err.value)


def test_release_and_fencing_token_only_grows(locks):
    tokens = []
    for _round in range(4):
        lease = locks.acquire("p", "c", "update", ttl=60)
        tokens.append(lease["token"])
        assert locks.release("p", "c", lease["token"]) is True
        assert locks.release("p", "c", lease["token"]) is False  # already released
    assert tokens == [1, 2, 3, 4]
    assert locks.get("p", "c")["held"] is False
    with pytest.raises(LockError):
        locks.release("p", "c", 2)  # a stale token never releases somebody else's lease


def test_break_needs_a_reason_and_is_logged(locks, store):
    lease = locks.acquire("p", "c", "delete", ttl=600, holder="alice@dead-runner")
    with pytest.raises(ValidationError) as err:
        locks.break_lock("p", "c", "  ", actor={"user": "ops"})
    assert err.value.field == "reason"
    broken = locks.break_lock("p", "c", "runner died at 03:00", actor={"user": "ops"})
    assert broken["holder"] == "alice@dead-runner" and broken["token"] == lease["token"]
    assert locks.break_lock("p", "c", "again") is None
    event = store.list_events(kind="lock", target="c")[-1]
    assert event["operation"] == "lock-break" and event["actor_user"] == "ops"
    assert "runner died at 03:00" in event["message"] and "alice@dead-runner" in event["message"]
    # the broken holder's token is dead; the next lease gets a bigger one
    with pytest.raises(LockError):
        locks.renew("p", "c", lease["token"], ttl=60)
    assert locks.acquire("p", "c", "delete", ttl=60)["token"] == lease["token"] + 1


@pytest.mark.parametrize("ttl", [0, -5, 10**9, "60", True])
def test_bad_ttl(locks, ttl):
    with pytest.raises(ValidationError) as err:
        locks.acquire("p", "c", "update", ttl=ttl)
    assert err.value.field == "ttl"


@pytest.mark.parametrize("token", ["abc", 0, -1, None])
def test_bad_token(locks, token):
    with pytest.raises(ValidationError) as err:
        locks.renew("p", "c", token, ttl=60)
    assert err.value.field == "lock_token"


def test_list_locks(locks, clock):
    locks.acquire("p", "a", "create", ttl=60, holder="x")
    lease = locks.acquire("p", "b", "create", ttl=600, holder="y")
    clock.advance(100)
    assert [v["cluster"] for v in locks.list("p")] == ["a", "b"]
    assert [v["cluster"] for v in locks.list("p", held_only=True)] == ["b"]
    assert locks.list(held_only=True)[0]["token"] == lease["token"]


def test_a_wait_keeps_the_lease_and_stops_when_it_is_lost(locks, clock):
    """renewing_sleep (what heat_stack and nova_servers wait with): the lease never lapses."""
    from ansible_collections.coe.openstack.plugins.module_utils.poll import renewing_sleep

    token = locks.acquire("p", "c1", "create", ttl=30)["token"]
    renewals = []

    def renew():
        renewals.append(clock())
        locks.renew("p", "c1", token, 30)

    wait = renewing_sleep(renew, 30, sleep=clock.sleep, clock=clock)
    assert renewals == [clock()]  # at once, before the caller writes anything
    for _step in range(40):  # a wait 4 times longer than the lease, in steps the caller asked for
        wait(5)
        lease = locks.get("p", "c1")
        assert lease["held"] and not lease["expired"], lease
    assert len(renewals) >= 12  # every third of the lease
    assert all(b - a <= 15 for a, b in itertools.pairwise(renewals))
    # a long sleep asked for is cut to a third of the lease
    before = clock()
    wait(600)
    assert clock() - before == 10

    # someone breaks the lock: the next renewal raises and the wait ends there
    locks.break_lock("p", "c1", "taken over")
    clock.advance(11)
    with pytest.raises(LockError):
        wait(5)
