"""clusters.finish_operation: the front door's last poll and release, in the driver's process."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.clusters import (
    ensure_cluster,
    ensure_template,
    finish_operation,
)
from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError
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
