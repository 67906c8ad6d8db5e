"""The playbooks run unchanged under ansible-runner, the way AWX runs a job template.

AWX's layout: PRIVATE_DATA_DIR/project (the project checkout: here the collection's
playbooks, copied as they are), PRIVATE_DATA_DIR/inventory, env/extravars (AWX's job
identity: awx_job_id, awx_user_name, ...) and env/envvars (the OpenStack credential:
a clouds.yaml file named by OS_CLIENT_CONFIG_FILE + OS_CLOUD, or plain OS_* variables).
The job id must end up in the store's event history, and the run in runner's own
artifacts (status, rc, job events).
"""

import glob
import json
import os
import shutil
import subprocess

import pytest
import yaml
from coe_runner import BIN, COLLECTIONS, REPO, CloudUser, short_id

pytestmark = pytest.mark.usefixtures("minicloud")


@pytest.fixture
def user(tmp_path, minicloud):
    u = CloudUser(tmp_path)
    yield u
    u.close()


def private_data_dir(tmp_path, hosts, extravars, envvars):
    root = tmp_path / ("awx-%s" % short_id())
    shutil.copytree(os.path.join(REPO, "playbooks"), root / "project" / "playbooks")
    (root / "inventory").mkdir(parents=True)
    (root / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (root / "env").mkdir()
    (root / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (root / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    return root


def run_job(root, playbook):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    for key in ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "COE_STATE_URL", "COE_SECRET_KEY", "JOB_ID"):
        env.pop(key, None)  # the job gets these from env/envvars only, as under AWX
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-runner"), "run", str(root), "-p", playbook],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    artifacts = sorted(glob.glob(str(root / "artifacts" / "*")), key=os.path.getmtime)[-1]
    with open(os.path.join(artifacts, "status")) as f:
        status = f.read().strip()
    events = []
    for path in glob.glob(os.path.join(artifacts, "job_events", "*.json")):
        with open(path) as f:
            events.append(json.load(f))
    events.sort(key=lambda e: e.get("counter", 0))
    return proc, status, events


def test_create_and_delete_as_an_awx_job(tmp_path, user):
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    state_url = "sqlite:///%s" % (tmp_path / "awx.db")
    name = "awx-%s" % short_id()
    template = "awx-%s" % short_id()
    job_id = 40000 + int(short_id(), 16) % 10000
    common_env = dict(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        COE_STATE_URL=state_url,
        COE_SECRET_KEY="awx-integration-test-%s" % short_id(),
        ANSIBLE_NOCOLOR="1",
    )
    awx_vars = dict(
        awx_job_id=job_id,
        awx_job_template_name="k8s create",
        awx_user_name="alice",
        awx_user_id=7,
        tower_job_id=job_id,
        tower_user_name="alice",
        coe_templates=[
            dict(
                name=template,
                driver="nova",
                coe_version="v1.31.1",
                image_id="fake-image",
                flavor_id="m1.small",
                master_flavor_id="m1.small",
                keypair_id="demo-key",
                fixed_network="private",
                external_network_id="public",
            )
        ],
    )
    hosts = {name: dict(coe_cluster_template=template, coe_master_count=1, coe_node_count=1)}

    # the credential as AWX's OpenStack credential type injects it: a clouds.yaml file
    root = private_data_dir(
        tmp_path, hosts, awx_vars, dict(common_env, OS_CLIENT_CONFIG_FILE=user.clouds_yaml, OS_CLOUD="coe-it")
    )
    proc, status, events = run_job(root, "playbooks/template.yml")
    assert status == "successful", proc.stdout[-4000:]
    proc, status, events = run_job(root, "playbooks/create.yml")
    try:
        assert status == "successful", proc.stdout[-6000:]
        assert proc.returncode == 0
        # runner's own event stream has the play, the progress lines and a clean recap
        stats = [e for e in events if e.get("event") == "playbook_on_stats"]
        assert stats and stats[-1]["event_data"]["failures"] == {}, stats
        assert any("nodes ACTIVE" in (e.get("stdout") or "") for e in events)

        with open_store(state_url) as store:
            record = store.find_cluster("default", name)
            assert record["status"] == "CREATE_COMPLETE", record
            history = store.list_events(cluster_uuid=record["uuid"])
        # who did it: the AWX job and its user, in the history
        assert history, "no event recorded"
        assert {e["awx_job_id"] for e in history} == {str(job_id)}, history
        assert {e["actor_user"] for e in history} == {"alice"}, history

        # a scheduled sync job (AWX schedule), credential as plain OS_* variables this time
        with open(user.clouds_yaml) as f:
            auth = yaml.safe_load(f)["clouds"]["coe-it"]["auth"]
        os_env = dict(
            common_env,
            OS_AUTH_URL=auth["auth_url"],
            OS_USERNAME=auth["username"],
            OS_PASSWORD=auth["password"],
            OS_PROJECT_NAME=auth["project_name"],
            OS_USER_DOMAIN_NAME=auth["user_domain_name"],
            OS_PROJECT_DOMAIN_NAME=auth["project_domain_name"],
            OS_REGION_NAME="RegionOne",
            OS_IDENTITY_API_VERSION="3",
        )
        sync_root = private_data_dir(tmp_path, hosts, dict(awx_vars, awx_job_id=job_id + 1), os_env)
        proc, status, events = run_job(sync_root, "playbooks/sync.yml")
        assert status == "successful", proc.stdout[-4000:]
        assert name in proc.stdout and "CREATE_COMPLETE" in proc.stdout
    finally:
        proc, status, events = run_job(root, "playbooks/delete.yml")
    assert status == "successful", proc.stdout[-4000:]
    with open_store(state_url) as store:
        assert store.find_cluster("default", name) is None
        history = store.list_events(target=name)
    assert [e for e in history if e["to_status"] == "DELETE_COMPLETE" and e["awx_job_id"] == str(job_id)]
