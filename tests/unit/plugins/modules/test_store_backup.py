"""store_backup / store_restore: the modules as Ansible runs them, and the playbooks
coe.openstack.store_backup / store_restore through ansible-playbook, on real SQLite stores
with real credentials. No cloud is involved."""

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.modules import store_backup, store_restore

KEY = "correct horse battery staple 42"
OTHER = "a different key of decent length"
BIN = os.path.dirname(sys.executable)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A store with a template and one cluster with credentials; the key in the environment."""
    url = "sqlite://%s" % (tmp_path / "state" / "coe.db")
    monkeypatch.setenv("COE_STATE_URL", url)
    monkeypatch.setenv("COE_SECRET_KEY", KEY)
    monkeypatch.delenv("COE_SECRET_KEY_FILE", raising=False)
    with open_store(url) as store:
        template = store.put_template("k8s", {"driver": "nova", "coe": "kubernetes", "image_id": "i", "labels": {}})[0]
        cluster = store.create_cluster(
            dict(
                name="demo",
                project_id="p1",
                status="CREATE_COMPLETE",
                driver="nova",
                cluster_template_name="k8s",
                template_version=1,
                cluster_template_id=template["uuid"],
                coe_version="v1.31.2",
                api_address="https://10.0.0.10:6443",
                labels={},
            )
        )
        creds = pki.ensure_cluster_credentials(store, cluster["uuid"], secrets.SecretBox(KEY), "demo")
    return dict(
        url=url,
        cluster=cluster,
        creds=creds,
        path=str(tmp_path / "backups" / "coe.json"),
        new=os.environ["COE_STATE_URL"].replace("state/coe.db", "new/coe.db"),
        tmp=tmp_path,
    )


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def secret_strings(env):
    """What must never show: the key, and the CA key material in every encoding it could take."""
    key_pem = env["creds"].ca.key_pem
    return [KEY, "PRIVATE KEY", key_pem.splitlines()[1], base64.b64encode(key_pem.encode()).decode()[:40]]


def test_backup_check_mode_then_write_then_unchanged(run_module, env):
    checked = run_module(store_backup.main, dict(path=env["path"]), check_mode=True, diff=True)
    assert checked["changed"] and not checked.failed
    assert not os.path.exists(env["path"]), "check mode writes nothing"
    assert checked["diff"]["before"] == {}
    assert checked["diff"]["after"]["clusters"] == ["p1/demo (%s)" % env["cluster"]["uuid"]]

    done = run_module(store_backup.main, dict(path=env["path"]))
    assert done["changed"] and done["backup"]["written"]
    assert mode(env["path"]) == 0o600 and mode(os.path.dirname(env["path"])) == 0o700
    backup = done["backup"]
    assert backup["templates"] == ["k8s v1"] and backup["credentials"] == 1 and backup["schema_version"] == 2
    assert backup["source"] == "sqlite store %s" % env["url"]

    again = run_module(store_backup.main, dict(path=env["path"]))
    assert not again["changed"] and not again["backup"]["written"]
    for text in secret_strings(env):
        assert text not in json.dumps([checked, done, again])


def test_backup_sets_a_world_readable_export_to_0600(run_module, env):
    run_module(store_backup.main, dict(path=env["path"]))
    os.chmod(env["path"], 0o644)
    fixed = run_module(store_backup.main, dict(path=env["path"]))
    assert fixed["changed"] and not fixed["backup"]["written"]
    assert fixed["backup"]["mode_before"] == "0644" and mode(env["path"]) == 0o600


def test_backup_with_a_wrong_key_or_none_fails_and_writes_nothing(run_module, env, monkeypatch):
    wrong = run_module(store_backup.main, dict(path=env["path"], secret_key=OTHER))
    assert wrong.failed and "not the key this store" in wrong["msg"]
    assert wrong["msg"].startswith("Couldn't back up the store to %s" % env["path"])
    monkeypatch.delenv("COE_SECRET_KEY")
    none = run_module(store_backup.main, dict(path=env["path"]))
    assert none.failed and "no secret key" in none["msg"]
    assert not os.path.exists(env["path"])
    assert OTHER not in json.dumps(wrong)


def test_restore_check_mode_restore_and_again(run_module, env):
    run_module(store_backup.main, dict(path=env["path"]))
    args = dict(path=env["path"], state_url=env["new"])
    checked = run_module(store_restore.main, args, check_mode=True, diff=True)
    assert checked["changed"] and not checked.failed
    assert checked["diff"] == dict(
        before=dict(templates=[], clusters=[]),
        after=dict(templates=["k8s v1"], clusters=["p1/demo (%s)" % env["cluster"]["uuid"]]),
    )
    with open_store(env["new"]) as new:
        assert new.is_empty(), "check mode writes nothing"

    done = run_module(store_restore.main, args)
    assert done["changed"]
    assert [(c["name"], c["action"], c["credentials"]) for c in done["restore"]["clusters"]] == [
        ("demo", "restored", ["pki"])
    ]
    assert done["restore"]["events"] >= 2
    with open_store(env["new"]) as new:
        assert new.get_cluster(env["cluster"]["uuid"])["name"] == "demo"
        box = secrets.SecretBox(KEY)
        assert pki.load_cluster_credentials(new, env["cluster"]["uuid"], box).ca_fingerprint == (
            env["creds"].ca_fingerprint
        )

    again = run_module(store_restore.main, args, diff=True)
    assert not again["changed"]
    assert again["restore"]["clusters"][0]["action"] == "present"
    assert again["diff"]["before"] == again["diff"]["after"]
    for text in secret_strings(env):
        assert text not in json.dumps([checked, done, again])


def test_restore_refuses_bad_input_before_writing(run_module, env, tmp_path):
    run_module(store_backup.main, dict(path=env["path"]))
    cases = {
        "another key": (dict(path=env["path"], secret_key=OTHER), "was written with another secret key"),
        "missing": (dict(path=str(tmp_path / "nowhere.json")), "No such file or directory"),
        "not an export": (dict(path=env["url"][len("sqlite://") :]), "is not a coe.openstack store export"),
    }
    for name, (args, words) in cases.items():
        result = run_module(store_restore.main, dict(args, state_url=env["new"]))
        assert result.failed, name
        assert words in result["msg"] and result["msg"].startswith("Couldn't "), name
        assert OTHER not in json.dumps(result)
    assert run_module(store_restore.main, dict(path=str(tmp_path / "x"), state_url=env["new"]))["field"] == "path"
    with open_store(env["new"]) as new:
        assert new.is_empty()


def test_restore_warns_about_an_export_others_can_read(run_module, env):
    run_module(store_backup.main, dict(path=env["path"]))
    os.chmod(env["path"], 0o644)
    result = run_module(store_restore.main, dict(path=env["path"], state_url=env["new"]))
    assert result["changed"]
    assert any("can be read by other users (mode 0644)" in w for w in map(str, result["warnings"]))


# -- the playbooks ------------------------------------------------------------------


def play(env, name, *args):
    environ = dict(os.environ)
    environ.pop("COE_SECRET_KEY", None)
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "coe.openstack.%s" % name, "-v", *args],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        cwd=env["tmp"],
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_playbooks_back_up_and_restore_showing_no_secret(env):
    key = ["-e", "coe_secret_key='%s'" % KEY]
    rc, out = play(env, "store_backup", *key)
    assert rc != 0 and "coe_store_export: the export file to write" in out

    rc, out = play(env, "store_backup", "-e", "coe_store_export=%s" % env["path"], *key)
    assert rc == 0, out[-3000:]
    assert "(written, mode 0600, schema 2): 1 template version(s), 1 cluster(s) (1 with credentials)" in out
    assert mode(env["path"]) == 0o600

    restore = ["-e", "coe_store_export=%s" % env["path"], "-e", "coe_state_url=%s" % env["new"], *key]
    rc, out = play(env, "store_restore", "--check", "--diff", *restore)
    assert rc == 0, out[-3000:]
    assert "Would restore from %s" % env["path"] in out
    assert "cluster p1/demo (%s, CREATE_COMPLETE): restored, credentials pki" % env["cluster"]["uuid"] in out
    rc, out = play(env, "store_restore", *restore)
    assert rc == 0 and "changed=1" in out, out[-3000:]
    rc, again = play(env, "store_restore", *restore)
    assert rc == 0 and "changed=0" in again and "template k8s version 1: present" in again, again[-3000:]
    rc, wrong = play(env, "store_restore", *restore[:4], "-e", "coe_secret_key='%s'" % OTHER)
    assert rc != 0 and "was written with another secret key" in wrong
    for text in [*secret_strings(env), OTHER]:
        assert text not in out + again + wrong
