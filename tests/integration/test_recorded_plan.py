"""The driver carries out the recorded plan: a retried scale-in removes the recorded nodes.

A runner records a scale-in that removes a named node (the oldest worker, not the newest)
and dies before its driver runs; its lease goes. A second run of the update playbook, which
names no node to remove, resumes the recorded operation: the recorded node goes, the newest
stay (both drivers; the Nova role used to pass the caller's coe_nodes_to_remove, which then
removed the newest). Then a bad flavor fails in the plan step, before any write: no record
change, no event, no cloud write call. And a scheduled sync that runs while a create is just
recorded (nothing made yet) leaves it in progress.
"""

import pytest
from coe_runner import RequestLog, short_id, template

from ansible_collections.coe.openstack.plugins.module_utils.clusters import plan_lock_record
from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store.base import iso

pytestmark = pytest.mark.usefixtures("minicloud")


def workers(record):
    group = next(g for g in record["nodegroups"] if g["name"] == "default-worker")
    return sorted((n["name"] for n in group["nodes"]), key=lambda n: int(n.rsplit("-", 1)[1]))


@pytest.mark.parametrize("driver", ["heat", "nova"])
def test_a_retried_scale_in_removes_the_recorded_nodes(driver, runner, user):
    tname = "rp-%s-%s" % (driver, short_id())
    name = "rp-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    spec = dict(coe_cluster_template=tname, coe_master_count=1, coe_node_count=3)
    try:
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        before = workers(runner.record(name))
        assert len(before) == 3
        victim = before[0]  # the oldest: a scale-in without names would remove the newest

        # a runner records the scale-in, then dies before its driver runs; its lease goes
        with runner.store() as store:
            desired = dict(
                name=name,
                project_id="default",
                state="present",
                template_name=tname,
                node_count=2,
                nodes_to_remove=[victim],
            )
            recorded = plan_lock_record(store, desired, lock_ttl=60)
            assert recorded["operation"] == "update" and recorded["lock"] is not None
            LockManager(store).release("default", name, recorded["lock"]["token"])

        # the retry names no node: the recorded plan decides which one goes
        result = runner.run("update", {name: dict(spec, coe_node_count=2)})
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "UPDATE_COMPLETE", record
        assert workers(record) == before[1:], (victim, workers(record))
        have = {s.name for s in user.conn.compute.servers(tags="coe-cluster-%s" % record["uuid"])}
        assert victim not in have and set(before[1:]) <= have

        # a flavor that does not exist: refused by the plan, before any write
        log = RequestLog(user.id)
        log.mark()
        generation, events = record["generation"], None
        with runner.store() as store:
            events = len(store.list_events(cluster_uuid=record["uuid"]))
        bad = [dict(name="extra", node_count=1, flavor="no-such-flavor")]
        result = runner.run("update", {name: dict(spec, coe_node_count=2, coe_nodegroups=bad)})
        assert result.rc != 0, result
        assert "Invalid value for 'flavor_id'" in result.out and "no-such-flavor" in result.out, result
        assert log.writes() == []
        with runner.store() as store:
            assert store.find_cluster("default", name)["generation"] == generation
            assert len(store.list_events(cluster_uuid=record["uuid"])) == events
    finally:
        runner.run("delete", {name: spec}, extra={"coe_force": True})
        record = runner.record(name)
        assert record is None


@pytest.mark.parametrize("driver", ["heat", "nova"])
def test_a_scheduled_sync_leaves_another_runners_just_recorded_create_in_progress(driver, runner, user):
    """A runner has recorded a create (its lock held) and has not made its stack or servers yet;
    the scheduled sync (the sync playbook) runs in between: the create stays in progress, its
    nodegroups too, for the grace after ``operation_started_at``. After the grace, with still
    nothing there, Heat's create fails naming the stack; Nova's servers are still to be made."""
    tname = "gr-%s-%s" % (driver, short_id())
    name = "gr-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    token = None
    try:
        with runner.store() as store:
            desired = dict(
                name=name, project_id="default", state="present", template_name=tname, master_count=1, node_count=1
            )
            recorded = plan_lock_record(store, desired, lock_ttl=300)
            assert recorded["operation"] == "create" and recorded["lock"] is not None
            token = recorded["lock"]["token"]

        result = runner.run("sync")
        assert result.rc == 0, result
        record = runner.record(name)
        assert record["status"] == "CREATE_IN_PROGRESS", record
        assert {g["name"]: g["status"] for g in record["nodegroups"]} == {
            "default-master": "CREATE_IN_PROGRESS",
            "default-worker": "CREATE_IN_PROGRESS",
        }, record["nodegroups"]

        # the grace is over (the create was recorded two minutes ago) and nothing is there yet
        with runner.store() as store:
            stored = store.find_cluster("default", name)
            earlier = dict(stored, operation_started_at=iso(store.now() - 120))
            store.update_cluster(earlier, stored["generation"], lock_token=token, message="test: recorded 2 min ago")
        result = runner.run("sync")
        assert result.rc == 0, result
        record = runner.record(name)
        statuses = {g["name"]: g["status"] for g in record["nodegroups"]}
        if driver == "heat":
            missing = "Stack %s-%s not found in Heat" % (name, record["uuid"][:8])
            assert (record["status"], record["status_reason"]) == ("CREATE_FAILED", missing), record
            assert statuses == {"default-master": "CREATE_FAILED", "default-worker": "CREATE_FAILED"}, statuses
        else:
            assert record["status"] == "CREATE_IN_PROGRESS", record
            assert statuses == {"default-master": "CREATE_IN_PROGRESS", "default-worker": "CREATE_IN_PROGRESS"}
    finally:
        with runner.store() as store:
            stored = store.find_cluster("default", name)
            if stored is not None:
                store.delete_cluster(stored, stored["generation"], lock_token=token, require_lock_free=False)
            if token is not None:
                LockManager(store).release("default", name, token)
        assert runner.record(name) is None
