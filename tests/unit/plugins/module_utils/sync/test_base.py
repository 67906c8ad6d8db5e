"""The synchroniser interface, the fake, and the registry (sync/__init__.py, sync/base.py)."""

import dataclasses

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import sync
from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import (
    FakeSynchroniser,
    Observation,
    StateSynchroniser,
)


def test_observation_fields_are_the_contract():
    names = [f.name for f in dataclasses.fields(Observation)]
    assert names == [
        "uuid",
        "exists",
        "status",
        "status_reason",
        "faults",
        "api_address",
        "master_addresses",
        "node_addresses",
        "nodegroups",
        "health_status",
        "health_status_reason",
        "stack_id",
        "coe_version",
        "not_started",
        "stack_status",
    ]
    o = Observation(uuid="u", exists=False)
    assert o.status is None and o.faults == {} and o.nodegroups == {} and o.as_dict()["exists"] is False
    # defaults are not shared between instances
    o.faults["x"] = "y"
    assert Observation(uuid="v", exists=True).faults == {}


def test_base_observe_must_be_implemented():
    with pytest.raises(NotImplementedError):
        StateSynchroniser(conn=None).observe([])


def test_fake_answers_from_its_table_and_counts_calls():
    fake = FakeSynchroniser(
        observations={
            "a": Observation(uuid="a", exists=True, status="CREATE_COMPLETE"),
            "b": {"exists": True, "status": "UPDATE_FAILED"},
            "c": lambda rec: Observation(uuid=rec["uuid"], exists=True, status_reason=rec["name"]),
        }
    )
    got = fake.observe([{"uuid": u, "name": "n-" + u} for u in ("a", "b", "c", "d")])
    assert got["a"].status == "CREATE_COMPLETE" and got["b"].status == "UPDATE_FAILED"
    assert got["c"].status_reason == "n-c" and got["d"].exists is False and got["b"].uuid == "b"
    assert fake.calls == [["a", "b", "c", "d"]]


def test_registry_resolves_both_drivers_lazily():
    assert sync.synchroniser_class("heat").__name__ == "HeatSynchroniser"
    nova = sync.synchroniser_class("nova")
    assert issubclass(nova, StateSynchroniser) and nova.__module__.endswith("nova.observe")
    with pytest.raises(ValidationError) as err:
        sync.get_synchroniser("magnum", conn=None)
    assert err.value.field == "driver" and "heat" in str(err.value)


def test_register_overrides_and_unregister_restores():
    sync.register("heat", FakeSynchroniser)
    try:
        assert isinstance(sync.get_synchroniser("heat", conn="c"), FakeSynchroniser)
    finally:
        sync.unregister("heat")
    assert sync.synchroniser_class("heat").__name__ == "HeatSynchroniser"


def test_at_work_is_a_stack_in_progress_or_a_server_changing():
    sync = StateSynchroniser(None)
    busy_stack = Observation(uuid="u", exists=True, status="UPDATE_IN_PROGRESS", stack_id="s-1")
    assert sync.at_work(busy_stack) == "stack s-1 is UPDATE_IN_PROGRESS"
    # without a stack, an in-progress status is the synchroniser's reading of the servers
    nodes = {"w": {"nodes": [{"name": "n-0", "status": "ACTIVE"}, {"name": "n-1", "status": "BUILD"}]}}
    assert sync.at_work(Observation(uuid="u", exists=True, status="UPDATE_IN_PROGRESS", nodegroups=nodes)) == (
        "servers still changing: n-1"
    )
    nodes["w"]["nodes"][1]["status"] = "ERROR"
    assert sync.at_work(Observation(uuid="u", exists=True, status="UPDATE_IN_PROGRESS", nodegroups=nodes)) is None
    assert sync.at_work(Observation(uuid="u", exists=True, status="UPDATE_COMPLETE", stack_id="s-1")) is None
    assert sync.at_work(Observation(uuid="u", exists=False)) is None
