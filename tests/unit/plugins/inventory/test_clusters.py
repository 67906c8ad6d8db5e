"""The coe.openstack.clusters inventory plugin, run by ansible-inventory on a real SQLite store."""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ANSIBLE_INVENTORY = os.path.join(os.path.dirname(sys.executable), "ansible-inventory")


def record(name, project="p1", status="CREATE_COMPLETE", driver="heat", template="k8s", version=1, **extra):
    base = dict(
        name=name,
        project_id=project,
        status=status,
        driver=driver,
        cluster_template_name=template,
        template_version=version,
        master_count=3,
        node_count=2,
        keypair="demo-key",
        labels={"environment": "test"},
        flavor_id="m1.small",
        master_flavor_id="m1.medium",
        api_address="https://10.0.0.5:6443",
        nodegroups=[
            dict(name="default-master", role="master", node_count=3, flavor_id="m1.medium"),
            dict(name="default-worker", role="worker", node_count=2, flavor_id="m1.small"),
            dict(name="gpu", role="worker", node_count=1, flavor_id="m1.huge", labels={"gpu": "yes"}),
        ],
    )
    base.update(extra)
    return base


@pytest.fixture
def store_url(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "coe.db")
    with open_store(url) as store:
        store.create_cluster(record("alpha"))
        store.create_cluster(record("beta", status="UPDATE_FAILED", driver="nova", template="k8s-nova", version=2))
        store.create_cluster(record("alpha", project="p2", status="CREATE_IN_PROGRESS"))
    return url


def plain(value):
    """ansible-inventory marks inventory plugin strings as unsafe: {"__ansible_unsafe": text}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory(tmp_path, config, env_url=None):
    path = tmp_path / "clusters.coe.yml"
    path.write_text(config)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    env.pop("COE_STATE_URL", None)
    if env_url:
        env["COE_STATE_URL"] = env_url
    proc = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(path), "--list"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return proc


def test_clusters_become_hosts_grouped_by_status_driver_template(tmp_path, store_url):
    proc = inventory(tmp_path, "plugin: coe.openstack.clusters\nstate_url: %s\n" % store_url)
    assert proc.returncode == 0, proc.stderr
    data = plain(json.loads(proc.stdout))
    hosts = data["_meta"]["hostvars"]
    # a name used in two projects is qualified by project; a unique name stays as is
    assert sorted(hosts) == ["alpha@p1", "alpha@p2", "beta"]
    assert sorted(data["coe_status_create_complete"]["hosts"]) == ["alpha@p1"]
    assert data["coe_status_update_failed"]["hosts"] == ["beta"]
    assert data["coe_status_create_in_progress"]["hosts"] == ["alpha@p2"]
    assert sorted(data["coe_driver_heat"]["hosts"]) == ["alpha@p1", "alpha@p2"]
    assert data["coe_driver_nova"]["hosts"] == ["beta"]
    assert data["coe_template_k8s_nova"]["hosts"] == ["beta"]

    beta = hosts["beta"]
    assert beta["coe_cluster"]["status"] == "UPDATE_FAILED"
    assert beta["coe_cluster"]["api_address"] == "https://10.0.0.5:6443"
    # the desired spec as the shared coe_* variables, ready for the operation playbooks
    assert beta["coe_cluster_name"] == "beta"
    assert beta["coe_cluster_template"] == "k8s-nova"
    assert beta["coe_cluster_template_version"] == 2
    assert beta["coe_master_count"] == 3
    assert beta["coe_node_count"] == 2
    assert beta["coe_keypair"] == "demo-key"
    assert beta["coe_flavor"] == "m1.small"
    assert beta["coe_master_flavor"] == "m1.medium"
    assert beta["coe_nodegroups"] == [dict(name="gpu", node_count=1, flavor="m1.huge", labels={"gpu": "yes"})]
    assert hosts["alpha@p2"]["coe_cluster_name"] == "alpha"
    assert beta["ansible_connection"] == "local"


def test_host_vars_drive_a_play(tmp_path, store_url):
    """The spec variables reach a play, and the local connection with the controller's Python works."""
    (tmp_path / "clusters.coe.yml").write_text("plugin: coe.openstack.clusters\nstate_url: %s\n" % store_url)
    (tmp_path / "play.yml").write_text(
        "- hosts: coe_driver_nova\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.command: python -c 'print(1)'\n"
        "      changed_when: false\n"
        "    - ansible.builtin.debug:\n"
        "        msg: 'SPEC {{ coe_cluster_name }} {{ coe_master_count + coe_node_count }} {{ coe_cluster.status }}'\n"
    )
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "clusters.coe.yml", "play.yml"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SPEC beta 5 UPDATE_FAILED" in proc.stdout


def test_filters_env_url_and_keyed_groups(tmp_path, store_url):
    config = (
        "plugin: coe.openstack.clusters\n"
        "project_id: p1\n"
        "drivers: [nova]\n"
        "keyed_groups:\n"
        "  - key: coe_cluster.labels.environment\n"
        "    prefix: env\n"
    )
    proc = inventory(tmp_path, config, env_url=store_url)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert sorted(data["_meta"]["hostvars"]) == ["beta"]
    assert data["env_test"]["hosts"] == ["beta"]


def test_unopenable_store_is_a_clear_error(tmp_path):
    proc = inventory(tmp_path, "plugin: coe.openstack.clusters\nstate_url: mysql://nowhere/x\n")
    assert "state_url" in proc.stderr
    assert "couldn't open the cluster store" in proc.stderr
    # ansible-inventory only warns when a source fails: no host comes out of it
    data = json.loads(proc.stdout or "{}")
    assert not data.get("_meta", {}).get("hostvars")
