"""heat_stack: bad input fails with the field named, before any cloud call.

The module runs as Ansible runs it (its file with an args file). The cloud
named here does not exist: any attempt to connect would fail with a different message.
"""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")


def run(module, args, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds: {}\n")
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, OS_CLIENT_CONFIG_FILE=str(clouds))
    payload = dict(args, cloud="no-such-cloud")
    if module == "heat_stack.py":
        payload["state_url"] = "sqlite:///%s" % (tmp_path / "s.db")
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": payload}))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "plugins", "modules", module), str(args_file)],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=120,
    )
    return json.loads(proc.stdout)


RECORD = dict(
    name="demo",
    uuid="3f2a9c4e-1b7d-4e5f-8a6b-0c1d2e3f4a5b",
    master_count=3,
    node_count=1,
    flavor_id="m1.small",
    image_id="fake-image",
    fixed_network="private",
)


@pytest.mark.parametrize(
    "args, field",
    [
        (dict(cluster=dict(RECORD, master_count=2)), "master_count"),
        (dict(cluster=dict(RECORD, name="Bad_Name")), "cluster.name"),
        (dict(cluster=dict(RECORD, image_id=None)), "nodegroups[0].image_id"),
        (dict(cluster=RECORD, nodes_to_remove=["someone-else-1"]), "nodes_to_remove"),
        (dict(cluster=RECORD, floating_ip_enabled=True), "external_network"),
        (dict(cluster=RECORD, batch_size=0), "batch_size"),
        (dict(cluster=RECORD, lock_token=3, lock_ttl=1), "lock_ttl"),
        (dict(name="st", template="x: 1", lock_token=3), "lock_token"),
        (dict(name="st", template="heat_template_version: 2021-04-16\nresources: [1]\n"), "template"),
        (dict(name="st"), "template"),
        (dict(name="st", template="x: 1", nodes_to_remove=["a"]), "nodes_to_remove"),
    ],
)
def test_bad_input_names_the_field_and_never_connects(args, field, tmp_path):
    result = run("heat_stack.py", args, tmp_path)
    assert result["failed"] is True
    assert result.get("field") == field, result
    assert "no-such-cloud" not in result["msg"]


def test_cluster_and_template_are_mutually_exclusive(tmp_path):
    result = run("heat_stack.py", dict(cluster=RECORD, template="x: 1"), tmp_path)
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]


def test_preflight_refuses_a_bad_record_before_connecting(tmp_path):
    result = run("heat_preflight.py", dict(cluster=dict(RECORD, master_count=4)), tmp_path)
    assert result["failed"] is True and result["field"] == "master_count"


def test_render_user_data_checks_the_bootstrap_inputs_before_connecting(tmp_path):
    # a record without an API address yet (a create) passes the checks and goes on to the cloud
    rec = dict(RECORD, api_address=None, coe_version="v1.31.1")
    result = run("heat_stack.py", dict(cluster=rec, render_user_data=True), tmp_path)
    assert result["failed"] is True
    assert "no-such-cloud" in result["msg"], result["msg"]
    # a version kubeadm cannot use is refused first
    result = run("heat_stack.py", dict(cluster=dict(rec, coe_version="banana"), render_user_data=True), tmp_path)
    assert result["failed"] is True and "no-such-cloud" not in result["msg"]
    assert result.get("field"), result
