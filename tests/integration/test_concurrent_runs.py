"""Two ansible-playbook runs on the same cluster at the same time (real processes, one store).

The first takes the cluster's lock; the second fails within seconds with a message that
names the holder and its operation - or, with coe_lock_timeout, waits for the lock and
then proceeds (finding nothing left to do).
"""

import time

import pytest
from coe_runner import CloudUser, Runner, short_id

pytestmark = pytest.mark.usefixtures("minicloud")


@pytest.fixture
def user(tmp_path, minicloud):
    u = CloudUser(tmp_path)
    yield u
    u.close()


@pytest.fixture
def runner(tmp_path, user):
    r = Runner(tmp_path, user)
    r.templates(cc_template("cc-%s" % short_id()))
    return r


def cc_template(name, **over):
    return dict(
        dict(
            name=name,
            driver="heat",
            coe_version="v1.31.1",
            image_id="fake-image",
            flavor_id="m1.small",
            master_flavor_id="m1.small",
            keypair_id="demo-key",
            fixed_network="private",
            external_network_id="public",
        ),
        **over,
    )


def template_name(runner):
    with runner.store() as store:
        return store.list_templates()[-1]["name"]


def wait_for_lock(runner, name, timeout=120):
    """Wait until somebody holds the cluster's lock; return the holder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with runner.store() as store:
            row = store.get_lock("default", name)
        if row and row["holder"]:
            return row
        time.sleep(0.2)
    raise AssertionError("nobody took the lock of %s within %ss" % (name, timeout))


def start_first(runner, name, spec):
    # the first runner is an AWX job, so that its holder name is unmistakable
    first = runner.popen("create", {name: spec}, extra={"awx_job_id": 4711, "awx_user_name": "alice"})
    lock = wait_for_lock(runner, name)
    return first, lock


def finish(proc, timeout=900):
    out = proc.communicate(timeout=timeout)[0]
    return proc.returncode, out


def test_second_run_is_refused_naming_the_holder(runner):
    name = "cc-%s" % short_id()
    spec = dict(coe_cluster_template=template_name(runner), coe_master_count=1, coe_node_count=2)
    first, lock = start_first(runner, name, spec)
    try:
        assert "AWX job 4711" in lock["holder"], lock
        started = time.monotonic()
        second = runner.run("update", {name: dict(spec, coe_node_count=3)})
        took = time.monotonic() - started
        still_running = first.poll() is None
        assert second.rc != 0, second
        assert "locked by" in second.out and "AWX job 4711" in second.out, second
        assert "for create" in second.out, second
        assert took < 30, "the refusal took %.1fs" % took
        assert still_running, "the first run ended before the second was refused: the test proved nothing"
        rc, out = finish(first)
        assert rc == 0, out[-4000:]
        # the refused run changed nothing: the cluster is as the first run made it
        record = runner.record(name)
        assert record["status"] == "CREATE_COMPLETE" and record["node_count"] == 2, record
    finally:
        if first.poll() is None:
            finish(first)
        runner.run("delete", {name: spec}, extra={"coe_force": True})


def test_second_run_waits_when_asked(runner):
    name = "cc-%s" % short_id()
    spec = dict(coe_cluster_template=template_name(runner), coe_master_count=1, coe_node_count=1)
    first = start_first(runner, name, spec)[0]
    try:
        second = runner.popen("create", {name: spec}, extra={"coe_lock_timeout": 600})
        rc1, out1 = finish(first)
        rc2, out2 = finish(second)
        assert rc1 == 0, out1[-4000:]
        assert rc2 == 0, out2[-4000:]
        assert "waited" in out2 and "for the lock held by" in out2 and "AWX job 4711" in out2, out2[-4000:]
        # the waiting run found the cluster made and had nothing left to do
        assert "changed=0" in out2.split("PLAY RECAP")[-1], out2[-2000:]
        with runner.store() as store:
            history = store.list_events(target=name)
            assert store.get_lock("default", name)["holder"] is None
        creates = [e for e in history if e["to_status"] == "CREATE_IN_PROGRESS"]
        assert len(creates) == 1, history
    finally:
        for proc in (first,):
            if proc.poll() is None:
                finish(proc)
        runner.run("delete", {name: spec}, extra={"coe_force": True})


def test_five_runs_at_once_one_acts_the_others_are_refused_at_their_first_module_call(runner):
    """Scales, an upgrade and deletes started together on one cluster: exactly one takes the
    lock and acts; each of the others fails in its first module call (plan + lock + record),
    naming the holder, and changes nothing."""
    name = "cc-%s" % short_id()
    tname = template_name(runner)
    runner.templates(cc_template(tname, image_id="fake-image-v2"))
    spec = dict(coe_cluster_template=tname, coe_cluster_template_version=1, coe_master_count=1, coe_node_count=1)
    try:
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        with runner.store() as store:
            events_before = len(store.list_events(target=name))
        runs = [
            runner.popen("update", {name: dict(spec, coe_node_count=2)}),
            runner.popen("update", {name: dict(spec, coe_node_count=3)}),
            runner.popen("update", {name: dict(spec, coe_cluster_template_version=2)}),
            runner.popen("delete", {name: spec}),
            runner.popen("delete", {name: spec}),
        ]
        outs = [finish(proc) for proc in runs]
        winners = [out for rc, out in outs if rc == 0]
        losers = [out for rc, out in outs if rc != 0]
        assert len(winners) == 1, "\n=====\n".join(out[-3000:] for _rc, out in outs)
        for out in losers:
            failed = out.split("fatal: [")[0].rsplit("TASK [", 1)[-1]
            assert failed.startswith("coe.openstack.cluster : Plan, lock and record the operation"), out[-3000:]
            assert "locked by" in out, out[-3000:]
        # one operation was recorded (and carried out): the losers wrote nothing
        with runner.store() as store:
            history = store.list_events(target=name)[events_before:]
        started = [e for e in history if (e["to_status"] or "").endswith("_IN_PROGRESS")]
        assert len(started) == 1, history
    finally:
        runner.run("delete", {name: spec}, extra={"coe_force": True})
