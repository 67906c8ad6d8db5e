"""The Nova driver's planning: names, indexes, scale in/out, repair, rolling rounds."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner


def view(
    name,
    status="ACTIVE",
    nodegroup="default-worker",
    role="worker",
    created="2026-11-25T08:00:00Z",
    image="img-1",
    **kw,
):
    return dict(
        id="id-" + name + kw.pop("suffix", ""),
        name=name,
        status=status,
        nodegroup=nodegroup,
        role=role,
        image_id=image,
        flavor_name="m1.small",
        created_at=created,
        **kw,
    )


def groups(masters=1, workers=2, **extra):
    return [
        dict(name="default-master", role="master", count=masters, flavor="m1.small", image="fake-image"),
        dict(name="default-worker", role="worker", count=workers, flavor="m1.small", image="fake-image", **extra),
    ]


def names(specs):
    return [s["name"] for s in specs]


def test_create_from_nothing_names_nodes_from_index_0():
    specs, last, removed = planner.desired_from_nodegroups("k1", groups(3, 2), [])
    assert names(specs) == ["k1-master-0", "k1-master-1", "k1-master-2", "k1-default-worker-0", "k1-default-worker-1"]
    assert last == {"default-master": 2, "default-worker": 1}
    assert removed == []
    assert specs[0]["role"] == "master" and specs[3]["nodegroup"] == "default-worker"


def test_existing_servers_are_kept_and_scale_out_uses_next_index():
    existing = [view("k1-default-worker-1"), view("k1-default-worker-2")]
    specs, _last, _removed = planner.desired_from_nodegroups("k1", groups(0, 3), existing)
    assert names(specs) == ["k1-default-worker-1", "k1-default-worker-2", "k1-default-worker-3"]


def test_index_is_never_reused_after_the_newest_was_removed():
    existing = [view("k1-default-worker-1")]
    specs, last, _removed = planner.desired_from_nodegroups("k1", groups(0, 2, last_index=4), existing)
    assert names(specs) == ["k1-default-worker-1", "k1-default-worker-5"]
    assert last["default-worker"] == 5


def test_scale_in_removes_named_nodes_then_newest_first():
    existing = [
        view("k1-default-worker-1", created="2026-11-25T08:00:00Z"),
        view("k1-default-worker-2", created="2026-11-25T08:01:00Z"),
        view("k1-default-worker-3", created="2026-11-25T08:02:00Z"),
        view("k1-default-worker-4", created="2026-11-25T08:03:00Z"),
    ]
    specs, _last, removed = planner.desired_from_nodegroups(
        "k1", groups(0, 2), existing, remove_nodes=["k1-default-worker-1"]
    )
    # worker-1 was named; of the rest, the newest (worker-4) goes
    assert names(specs) == ["k1-default-worker-2", "k1-default-worker-3"]
    assert sorted(removed) == ["k1-default-worker-1", "k1-default-worker-4"]


def test_scale_in_prefers_servers_in_error_over_healthy_ones():
    existing = [
        view("k1-default-worker-1", status="ERROR", created="2026-11-25T08:00:00Z"),
        view("k1-default-worker-2", created="2026-11-25T08:01:00Z"),
        view("k1-default-worker-3", created="2026-11-25T08:02:00Z"),
    ]
    specs, _last, removed = planner.desired_from_nodegroups("k1", groups(0, 2), existing)
    assert names(specs) == ["k1-default-worker-2", "k1-default-worker-3"]
    assert removed == ["k1-default-worker-1"]


def test_known_node_deleted_behind_our_back_is_recreated_under_its_name():
    existing = [view("k1-default-worker-1"), view("k1-default-worker-3")]
    nodes = ["k1-default-worker-1", "k1-default-worker-2", "k1-default-worker-3"]
    specs, _last, _removed = planner.desired_from_nodegroups("k1", groups(0, 3, nodes=nodes), existing)
    assert names(specs) == nodes


def test_outdated_servers_get_replacements_with_new_indexes():
    existing = [view("k1-default-worker-1", image="img-1"), view("k1-default-worker-2", image="img-1")]
    resolved = {("image", "fake-image-v2"): "img-2", ("flavor", "m1.small"): ("f-small", "m1.small")}
    grps = groups(0, 2)
    grps[1]["image"] = "fake-image-v2"
    specs, _last, _removed = planner.desired_from_nodegroups(
        "k1", grps, existing, replace_outdated=True, resolved=resolved
    )
    assert names(specs) == ["k1-default-worker-3", "k1-default-worker-4"]
    assert [s["replaces"] for s in specs] == ["k1-default-worker-1", "k1-default-worker-2"]
    # without replace_outdated the servers stay as they are
    specs, _last, _removed = planner.desired_from_nodegroups("k1", grps, existing, resolved=resolved)
    assert names(specs) == ["k1-default-worker-1", "k1-default-worker-2"]


def test_plan_creates_missing_keeps_existing_and_prunes_surplus():
    specs = [dict(name="a", nodegroup="g", role="worker"), dict(name="b", nodegroup="g", role="worker")]
    plan = planner.make_plan(specs, [view("a"), view("c")])
    assert names(plan["create"]) == ["b"]
    assert names(plan["keep"]) == ["a"]
    assert names(plan["delete"]) == ["c"]
    assert planner.plan_changed(plan)


def test_plan_without_prune_deletes_only_named_servers():
    specs = [dict(name="a", nodegroup="g", role="worker")]
    plan = planner.make_plan(specs, [view("a"), view("c"), view("d")], prune=False, delete=["d", "zz"])
    assert names(plan["delete"]) == ["d"]
    assert plan["absent"] == ["zz"]


def test_plan_of_an_up_to_date_cluster_changes_nothing():
    specs = [dict(name="a", nodegroup="g", role="worker")]
    plan = planner.make_plan(specs, [view("a")])
    assert not planner.plan_changed(plan)
    assert planner.rounds(plan, 0) == []


def test_plan_replaces_servers_in_error_and_removes_duplicates():
    specs = [dict(name="a", nodegroup="g", role="worker"), dict(name="b", nodegroup="g", role="worker")]
    existing = [
        view("a", status="ERROR"),
        view("b"),
        view("b", status="BUILD", suffix="-dup", created="2026-11-25T09:00:00Z"),
    ]
    plan = planner.make_plan(specs, existing)
    assert names(plan["create"]) == ["a"]
    assert names(plan["replace"]) == ["a"]
    deleted = {d["id"]: d["reason"] for d in plan["delete"]}
    assert deleted["id-a"].startswith("in ERROR")
    assert deleted["id-b-dup"].startswith("duplicate")
    # without replace_errored the server in ERROR is left alone
    plan = planner.make_plan(specs, [view("a", status="ERROR"), view("b")], replace_errored=False)
    assert not planner.plan_changed(plan)


def test_a_name_both_desired_and_deleted_is_refused():
    with pytest.raises(ValidationError) as err:
        planner.make_plan([dict(name="a", nodegroup="g", role="worker")], [], delete=["a"])
    assert err.value.field == "delete"


def test_rolling_rounds_create_before_delete_in_batches():
    existing = [view("w-1"), view("w-2"), view("w-3")]
    specs = [
        dict(name="w-4", nodegroup="default-worker", role="worker", replaces="w-1"),
        dict(name="w-5", nodegroup="default-worker", role="worker", replaces="w-2"),
        dict(name="w-6", nodegroup="default-worker", role="worker", replaces="w-3"),
    ]
    plan = planner.make_plan(specs, existing)
    steps = planner.rounds(plan, 2)
    assert [(names(c), names(d)) for c, d in steps] == [(["w-4", "w-5"], ["w-1", "w-2"]), (["w-6"], ["w-3"])]
    # without a batch size: one round
    assert len(planner.rounds(plan, 0)) == 1


@pytest.mark.parametrize(
    "bad, field",
    [
        (dict(name="Bad_Name", role="worker", count=1, flavor="f", image="i"), "nodegroups[0].name"),
        (dict(name="ok", role="boss", count=1, flavor="f", image="i"), "nodegroups[0].role"),
        (dict(name="ok", role="worker", count=-1, flavor="f", image="i"), "nodegroups[0].count"),
        (dict(name="ok", role="worker", count=1, image="i"), "nodegroups[0].flavor"),
    ],
)
def test_bad_nodegroups_name_the_field(bad, field):
    with pytest.raises(ValidationError) as err:
        planner.validate_nodegroups([bad])
    assert err.value.field == field


def test_bad_specs_name_the_field():
    with pytest.raises(ValidationError) as err:
        planner.validate_specs([dict(name="a", nodegroup="g", role="worker", flavor="f", image="i")] * 2)
    assert err.value.field == "servers[1].name"
    with pytest.raises(ValidationError) as err:
        planner.validate_specs([dict(name="a", nodegroup="g", role="worker", flavor="f")])
    assert err.value.field == "servers[0].image"
