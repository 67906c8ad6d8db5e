"""clusters.finish_operation: the front door's last poll and release, in the driver's process; and
clusters.watch_operation: a poll that watches its cluster until the operation ends (cluster_sync watch)."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.clusters import (
    check_watch,
    ensure_cluster,
    ensure_template,
    finish_operation,
    watch_operation,
)
from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError, ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import FakeSynchroniser


@pytest.fixture
def recorded(tmp_path):
    store = open_store("sqlite://%s" % (tmp_path / "coe.db"))
    spec = dict(driver="nova", image_id="fcos-40", flavor_id="m1.small", coe_version="v1.30.4")
    ensure_template(store, "k8s", "present", spec_params=spec)
    desired = dict(name="demo", project_id="default", state="present", template_name="k8s")
    record = ensure_cluster(store, desired)["cluster"]
    assert record["status"] == "CREATE_IN_PROGRESS"
    token = LockManager(store).acquire("default", "demo", "create", ttl=120)["token"]
    return store, record, dict(project="default", name="demo", token=token, ttl=120)


@pytest.mark.parametrize(
    "seen, released",
    [
        ("CREATE_COMPLETE", True),
        ("CREATE_IN_PROGRESS", False),  # the front door polls on, with its lock
        ("CREATE_FAILED", False),  # the front door's failure path records the reason, then releases
    ],
)
def test_the_lock_is_released_only_when_the_operation_completed(recorded, seen, released):
    store, record, lock = recorded
    sync = FakeSynchroniser(observations={record["uuid"]: dict(exists=True, status=seen, status_reason="why")})
    out = finish_operation(store, store.get_cluster(record["uuid"]), sync, lock)
    assert out["cluster"]["status"] == seen == store.get_cluster(record["uuid"])["status"]
    assert out["lock_token"] == lock["token"]
    assert out["lock_released"] is released
    assert (LockManager(store).get("default", "demo")["holder"] is None) is released


def test_a_lock_taken_over_meanwhile_refuses_and_records_nothing(recorded):
    store, record, lock = recorded
    LockManager(store).break_lock("default", "demo", "the holder is dead")
    sync = FakeSynchroniser(observations={record["uuid"]: dict(exists=True, status="CREATE_COMPLETE")})
    with pytest.raises(CoeError):
        finish_operation(store, store.get_cluster(record["uuid"]), sync, lock)
    assert store.get_cluster(record["uuid"])["status"] == "CREATE_IN_PROGRESS"


class Exited(Exception):
    pass


class FakeModule:
    """What ModuleLogic.exit_finished uses of a CoeModule."""

    check_mode = False

    def __init__(self, store, **params):
        self.store = store
        self.params = dict(finish=True, wait=True, lock_ttl=120, actor=None, **params)

    def exit(self, **out):
        raise Exited(out)


def test_a_record_a_forced_delete_removed_is_not_finished(tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic

    store = open_store("sqlite://%s" % (tmp_path / "coe.db"))
    logic = ModuleLogic(FakeModule(store, lock_token=3))
    with pytest.raises(Exited) as exited:
        logic.exit_finished(dict(uuid="0b0c8f1e-1111-4222-8333-444455556666", name="gone"), changed=True)
    assert exited.value.args[0] == dict(changed=True)  # exits as without finish: nothing recorded


def test_without_finish_or_wait_nothing_is_observed(recorded):
    from ansible_collections.coe.openstack.plugins.module_utils.module import ModuleLogic

    store, record, lock = recorded
    for params in (dict(finish=False), dict(wait=False)):
        module = FakeModule(store, lock_token=lock["token"])
        module.params.update(params)
        with pytest.raises(Exited) as exited:
            ModuleLogic(module).exit_finished(record, changed=True)
        assert "finished" not in exited.value.args[0]
    assert store.get_cluster(record["uuid"])["status"] == "CREATE_IN_PROGRESS"
    assert LockManager(store).get("default", "demo")["holder"] is not None


def test_the_settled_cluster_is_observed_again_from_the_same_reads(recorded):
    """The operation seen complete is observed once more through the settled record (health,
    nodegroup states) with ``replay`` set: a synchroniser that keeps its reads calls no cloud."""
    store, record, lock = recorded
    seen = []

    def answer(rec):
        seen.append((rec["status"], sync.replay))
        return dict(exists=True, status="CREATE_COMPLETE")

    sync = FakeSynchroniser(observations={record["uuid"]: answer})
    out = finish_operation(store, store.get_cluster(record["uuid"]), sync, lock)
    assert out["cluster"]["status"] == "CREATE_COMPLETE"
    assert seen == [("CREATE_IN_PROGRESS", False), ("CREATE_COMPLETE", True)]
    assert sync.replay is False


# -- watch_operation --------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Watched(FakeSynchroniser):
    """The cloud finishes after ``busy_looks`` cheap looks; each look and observation is counted."""

    def __init__(self, uuid, busy_looks, cheap=True):
        super().__init__(observations={uuid: self.answer})
        self.busy_looks, self.cheap, self.looks, self.observed = busy_looks, cheap, 0, 0

    def answer(self, record):
        self.observed += 1
        done = self.looks >= self.busy_looks
        return dict(exists=True, status="CREATE_COMPLETE" if done else "CREATE_IN_PROGRESS")

    def still_working(self, record):
        if not self.cheap:
            self.looks += 1
            return False
        self.looks += 1
        return self.looks <= self.busy_looks


def test_returns_as_soon_as_the_cloud_is_done_and_releases(recorded):
    store, record, lock = recorded
    clock = Clock()
    sync = Watched(record["uuid"], busy_looks=3)
    out = watch_operation(store, record, lambda d: sync, lock, 10, release=True, clock=clock, sleep=clock.sleep)
    assert out["clusters"][0]["status"] == "CREATE_COMPLETE" == store.get_cluster(record["uuid"])["status"]
    assert clock.now == pytest.approx(4.0)  # the 4th look sees it done: not the 10 s window
    # one observation at the start, none while the cheap look says busy, then the end and its settle
    assert sync.observed == 3
    assert out["lock_released"] is True
    assert LockManager(store).get("default", "demo")["holder"] is None


def test_the_window_ends_with_what_was_seen_and_keeps_the_lock(recorded):
    store, record, lock = recorded
    clock = Clock()
    sync = Watched(record["uuid"], busy_looks=100)
    out = watch_operation(store, record, lambda d: sync, lock, 5, release=True, clock=clock, sleep=clock.sleep)
    assert out["clusters"][0]["status"] == "CREATE_IN_PROGRESS"
    assert 5.0 <= clock.now <= 5.5
    assert sync.observed == 1  # the first: the cheap looks said busy all along
    assert out["lock_released"] is False
    assert LockManager(store).get("default", "demo")["token"] == lock["token"]


def test_without_a_cheap_look_every_look_is_an_observation(recorded):
    store, record, lock = recorded
    clock = Clock()
    sync = Watched(record["uuid"], busy_looks=2, cheap=False)
    out = watch_operation(store, record, lambda d: sync, lock, 10, clock=clock, sleep=clock.sleep)
    assert out["clusters"][0]["status"] == "CREATE_COMPLETE"
    assert out["lock_released"] is False  # not asked to release
    assert sync.observed == 4  # start, two looks, and the settle of the one that saw it complete


def test_watch_zero_observes_once(recorded):
    store, record, lock = recorded
    sync = Watched(record["uuid"], busy_looks=5)
    out = watch_operation(store, record, lambda d: sync, lock, 0)
    assert out["clusters"][0]["status"] == "CREATE_IN_PROGRESS" and sync.observed == 1 and sync.looks == 0


@pytest.mark.parametrize(
    "args, field",
    [
        (dict(watch=-1), "watch"),
        (dict(watch=5, name=None), "watch"),
        (dict(release=True, name=None), "release"),
        (dict(watch=5, fail_reason="boom"), "fail_reason"),
        (dict(watch=50, lock_ttl=120), "watch"),
    ],
)
def test_bad_watch_options_name_the_field(args, field):
    given = dict(watch=0, release=False, name="demo", lock_token=3, lock_ttl=120, fail_reason=None)
    given.update(args)
    with pytest.raises(ValidationError) as e:
        check_watch(**given)
    assert e.value.details["field"] == field


def test_good_watch_options_pass():
    check_watch(watch=40, release=True, name="demo", lock_token=3, lock_ttl=120)
    check_watch(watch=0, release=False, name=None, lock_token=None, lock_ttl=120)
