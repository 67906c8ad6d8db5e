"""The front-door role through the operation playbooks, without a cloud.

What happens before any cloud call is checked here with a real SQLite store and real
ansible-playbook runs: bad input named, check mode printing the plan and writing
nothing, a locked cluster refused at once naming the holder (or waited for), the update
playbook refusing a cluster that does not exist. The cloud is never reached: these
runs point at a cloud that does not exist, so any attempt to reach it would fail them.
"""

import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)


@pytest.fixture
def env(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    # a cloud nobody answers for: reaching it would fail the run
    clouds.write_text(
        yaml.safe_dump(
            {
                "clouds": {
                    "nowhere": {
                        "auth": {
                            "auth_url": "http://127.0.0.1:9/v3",
                            "username": "x",
                            "password": "x",
                            "project_name": "x",
                        }
                    }
                }
            }
        )
    )
    url = "sqlite:///%s" % (tmp_path / "coe.db")
    with open_store(url) as store:
        spec = dict(
            driver="heat", image_id="fake-image", flavor_id="m1.small", keypair_id="demo-key", coe_version="v1.31.2"
        )
        store.put_template("k8s", spec)
    return dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="False",
        OS_CLIENT_CONFIG_FILE=str(clouds),
        OS_CLOUD="nowhere",
        COE_STATE_URL=url,
        COE_SECRET_KEY="unit-test-key-0123456789",
    )


def play(env, tmp_path, playbook, hosts, *args):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "coe.openstack.%s" % playbook, "-i", str(inventory), *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def clusters(env):
    with open_store(env["COE_STATE_URL"]) as store:
        return store.list_clusters()


@pytest.mark.parametrize(
    "host,spec,field",
    [
        ("Bad_Name", {"coe_cluster_template": "k8s"}, "Invalid value for 'name'"),
        ("c1", {"coe_cluster_template": "k8s", "coe_master_count": 2}, "Invalid value for 'master_count'"),
        ("c1", {"coe_cluster_template": "k8s", "coe_cluster_template_version": 9}, "cluster_template_version"),
        ("c1", {"coe_cluster_template": "nope"}, "Invalid value for 'cluster_template'"),
        ("c1", {"coe_node_count": 2}, "Invalid value for 'coe_cluster_template'"),
        ("c1", {"coe_cluster_template": "k8s", "coe_labels": {"a": 1}}, "labels"),
        ("c1", {"coe_cluster_template": "k8s", "coe_master_count": "three"}, "coe_master_count"),
        # the heat_* variables reach the driver the front door converges, checked before any write
        ("c1", {"coe_cluster_template": "k8s", "heat_upgrade_pause_time": -1}, "driver_options.heat.pause_time"),
        ("c1", {"coe_cluster_template": "k8s", "heat_image_update_policy": "SWAP"}, "driver_options.heat"),
        ("c1", {"coe_cluster_template": "k8s", "nova_driver_concurrency": 0}, "driver_options.nova.concurrency"),
    ],
)
def test_bad_input_is_named_and_nothing_is_written(env, tmp_path, host, spec, field):
    rc, out = play(env, tmp_path, "create", {host: spec})
    assert rc != 0, out
    assert field in out, out
    assert clusters(env) == []


def test_check_mode_asks_the_cloud_for_the_references_and_writes_nothing(env, tmp_path):
    # a check-mode create checks the cloud's flavors, images, keypair, networks and quota
    # (tests/integration/test_cluster_lifecycle.py prints its plan on the real cloud): with a
    # cloud that does not answer it fails naming the cloud, writing nothing
    spec = {
        "coe_cluster_template": "k8s",
        "coe_master_count": 3,
        "coe_node_count": 2,
        "coe_nodegroups": [{"name": "gpu", "node_count": 1, "flavor": "m1.medium"}],
    }
    rc, out = play(env, tmp_path, "create", {"c1": spec}, "--check", "--diff")
    assert rc != 0, out
    assert "Couldn't connect to cloud nowhere" in out, out
    assert clusters(env) == []
    with open_store(env["COE_STATE_URL"]) as store:
        assert store.get_lock("default", "c1") is None  # check mode takes no lock


def test_check_mode_of_a_delete_prints_the_plan_and_writes_nothing(env, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.clusters import ensure_cluster

    with open_store(env["COE_STATE_URL"]) as store:
        desired = dict(name="c1", project_id="default", state="present", template_name="k8s")
        record = ensure_cluster(store, desired)["cluster"]
    rc, out = play(env, tmp_path, "delete", {"c1": {}}, "--check", "--diff")
    assert rc == 0, out
    assert "c1: delete" in out, out
    with open_store(env["COE_STATE_URL"]) as store:
        assert store.get_cluster(record["uuid"])["generation"] == record["generation"]
        assert (store.get_lock("default", "c1") or {}).get("holder") is None  # no lock taken


def test_update_refuses_a_cluster_that_does_not_exist(env, tmp_path):
    rc, out = play(env, tmp_path, "update", {"typo": {"coe_cluster_template": "k8s"}})
    assert rc != 0
    assert "does not exist" in out and "coe.openstack.create" in out
    assert clusters(env) == []


def test_locked_cluster_is_refused_at_once_naming_the_holder(env, tmp_path):
    with open_store(env["COE_STATE_URL"]) as store:
        LockManager(store).try_acquire("default", "c1", "create", ttl=120, holder="bob@laptop (AWX job 7)")
    rc, out = play(env, tmp_path, "create", {"c1": {"coe_cluster_template": "k8s"}})
    assert rc != 0
    assert "locked by bob@laptop (AWX job 7) for create" in out
    assert clusters(env) == []


def test_locked_cluster_is_waited_for_when_asked(env, tmp_path):
    with open_store(env["COE_STATE_URL"]) as store:
        LockManager(store).try_acquire("default", "c1", "update", ttl=120, holder="bob@laptop")
    rc, out = play(env, tmp_path, "create", {"c1": {"coe_cluster_template": "k8s"}}, "-e", "coe_lock_timeout=3")
    assert rc != 0
    assert "Gave up after waiting 3s" in out and "bob@laptop" in out
    assert clusters(env) == []


def test_a_cloud_that_does_not_answer_fails_naming_it_before_anything_is_written(env, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.clusters import ensure_cluster

    # an existing, complete cluster: the plan observes it in the cloud first
    with open_store(env["COE_STATE_URL"]) as store:
        desired = dict(name="c1", project_id="default", state="present", template_name="k8s")
        record = ensure_cluster(store, desired)["cluster"]
        record = store.update_cluster(dict(store.get_cluster(record["uuid"]), status="CREATE_COMPLETE"), 1)
    rc, out = play(env, tmp_path, "create", {"c1": {"coe_cluster_template": "k8s"}})
    assert rc != 0
    assert "Couldn't connect to cloud nowhere" in out, out
    with open_store(env["COE_STATE_URL"]) as store:
        assert store.get_cluster(record["uuid"])["generation"] == record["generation"]
        assert store.get_lock("default", "c1")["holder"] is None  # no lock was taken


def test_a_driver_failure_with_a_cloud_that_cannot_be_asked_leaves_the_operation_to_resume(env, tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils.clusters import ensure_cluster

    # a delete plans without asking the cloud; the driver then fails: the cloud does not answer
    with open_store(env["COE_STATE_URL"]) as store:
        desired = dict(name="c1", project_id="default", state="present", template_name="k8s")
        record = ensure_cluster(store, desired)["cluster"]
        store.update_cluster(dict(store.get_cluster(record["uuid"]), status="CREATE_COMPLETE"), 1)
    rc, out = play(env, tmp_path, "delete", {"c1": {}}, "-v")
    assert rc != 0, out
    # the rescue asked the cloud with the driver's failure as fail_reason (its arguments were
    # valid), and since the cloud could not say whether it still works, nothing was failed
    rescue = out.split("TASK [coe.openstack.cluster : Record what the cloud says after the failure]")[1]
    rescue = rescue.split("TASK [")[0]
    assert "Couldn't synchronise cluster c1" in rescue or "Couldn't connect to cloud nowhere" in rescue, rescue
    assert "fail_reason" not in rescue  # no argument error
    assert "stays DELETE_IN_PROGRESS; re-run to resume" in out
    with open_store(env["COE_STATE_URL"]) as store:
        assert store.find_cluster("default", "c1")["status"] == "DELETE_IN_PROGRESS"
        assert store.get_lock("default", "c1")["holder"] is None  # released


def complete_cluster(env, name="c1"):
    from ansible_collections.coe.openstack.plugins.module_utils.clusters import ensure_cluster

    with open_store(env["COE_STATE_URL"]) as store:
        desired = dict(name=name, project_id="default", state="present", template_name="k8s")
        record = ensure_cluster(store, desired)["cluster"]
        return store.update_cluster(dict(store.get_cluster(record["uuid"]), status="CREATE_COMPLETE"), 1)


def die_holding_the_lock(env, tmp_path, name="c1"):
    """A real ansible-playbook run that takes the cluster's lock and ends without releasing it
    (as one killed would); returns its lease."""
    playbook = tmp_path / "take-lock.yml"
    task = {"coe.openstack.cluster_lock": {"name": name, "operation": "update"}, "register": "taken"}
    show = {"ansible.builtin.debug": {"msg": "holder pid {{ taken.lock.holder_pid }}"}}
    playbook.write_text(
        yaml.safe_dump(
            [
                dict(
                    hosts="localhost",
                    gather_facts=False,
                    connection="local",
                    vars={"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                    tasks=[task, show],
                )
            ]
        )
    )
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), str(playbook)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open_store(env["COE_STATE_URL"]) as store:
        return LockManager(store).get("default", name)


def test_a_dead_run_on_this_host_is_taken_over_at_once_naming_it(env, tmp_path):
    complete_cluster(env)
    dead = die_holding_the_lock(env, tmp_path)
    assert dead["holder_gone"] and not dead["held"] and not dead["expired"], dead
    assert dead["holder"].endswith(" pid %d" % dead["holder_pid"])
    # a delete plans without the cloud; the driver then fails (nobody answers): the lock was ours
    rc, out = play(env, tmp_path, "delete", {"c1": {}})
    assert rc != 0, out
    assert "locked by" not in out, out
    warning = "lease of %s (update, token 1, until %s) taken over at once by " % (dead["holder"], dead["expires_at"])
    assert warning in " ".join(out.split()), out
    with open_store(env["COE_STATE_URL"]) as store:
        events = [e for e in store.list_events(kind="lock", target="c1") if e["operation"] == "lock-takeover"]
        assert len(events) == 1 and "pid %d on " % dead["holder_pid"] in events[0]["message"], events
        assert "is gone" in events[0]["message"]
        assert store.find_cluster("default", "c1")["status"] == "DELETE_IN_PROGRESS"  # recorded under the lock
        assert store.get_lock("default", "c1")["token"] == 2


def test_a_refusal_names_the_run_and_says_what_to_do(env, tmp_path):
    complete_cluster(env)
    with open_store(env["COE_STATE_URL"]) as store:
        LockManager(store).try_acquire("default", "c1", "update", ttl=120, actor=dict(user="bob", host="ci-7"))
    rc, out = play(env, tmp_path, "delete", {"c1": {}})
    text = " ".join(out.split())
    assert rc != 0
    assert "Cannot delete cluster 'c1': it is locked by bob@ci-7 for update since " in text, out
    assert "run again with -e coe_lock_timeout=SECONDS" in text
    assert "run again with -e coe_lock_break=1 (recorded in the history)" in text
    assert "lock_token" not in text


def test_coe_lock_break_breaks_only_the_lease_named(env, tmp_path):
    complete_cluster(env)
    with open_store(env["COE_STATE_URL"]) as store:
        LockManager(store).try_acquire("default", "c1", "update", ttl=120, holder="bob@ci-7")
    rc, out = play(env, tmp_path, "delete", {"c1": {}}, "-e", "coe_lock_break=5")
    assert rc != 0
    assert "Did not break the lock of cluster 'c1': token 5 is not its lease any more" in out, out
    with open_store(env["COE_STATE_URL"]) as store:
        assert store.get_lock("default", "c1")["holder"] == "bob@ci-7"
    rc, out = play(env, tmp_path, "delete", {"c1": {}}, "-e", "coe_lock_break=1")
    assert "locked by" not in out, out  # broken, then the delete went on (to a cloud that does not answer)
    with open_store(env["COE_STATE_URL"]) as store:
        event = next(e for e in store.list_events(kind="lock", target="c1") if e["operation"] == "lock-break")
        assert "lock of bob@ci-7 (update, token 1) broken by " in event["message"]
        assert "asked with coe_lock_break=1" in event["message"]
        assert store.find_cluster("default", "c1")["status"] == "DELETE_IN_PROGRESS"
