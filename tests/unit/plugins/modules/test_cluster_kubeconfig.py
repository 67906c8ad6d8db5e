"""cluster_kubeconfig: a real SQLite store, real certificates, the module run as Ansible runs it."""

import base64
import datetime
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.modules import cluster_kubeconfig

KEY = "correct horse battery staple 42"
OPENSSL = shutil.which("openssl")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A store with one cluster (v1.31) and its credentials, the key in the environment."""
    url = "sqlite:///%s" % (tmp_path / "state" / "coe.db")
    monkeypatch.setenv("COE_STATE_URL", url)
    monkeypatch.setenv("COE_SECRET_KEY", KEY)
    monkeypatch.delenv("COE_SECRET_KEY_FILE", raising=False)
    store = open_store(url)
    cluster = store.create_cluster(
        dict(
            name="demo",
            project_id="p1",
            status="CREATE_COMPLETE",
            driver="nova",
            cluster_template_name="k8s",
            template_version=1,
            coe_version="v1.31.2",
            api_address="https://10.0.0.10:6443",
            master_addresses=["10.0.0.11"],
            labels={},
        )
    )
    creds = pki.ensure_cluster_credentials(store, cluster["uuid"], secrets.SecretBox(KEY), "demo")
    store.close()
    return dict(url=url, cluster=cluster, creds=creds, path=str(tmp_path / "kube" / "demo.conf"), tmp=tmp_path)


def args(env, **extra):
    base = dict(cluster="demo", path=env["path"])
    base.update(extra)
    return base


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def events(env):
    store = open_store(env["url"])
    try:
        return [e for e in store.list_events(cluster_uuid=env["cluster"]["uuid"]) if e["operation"] == "kubeconfig"]
    finally:
        store.close()


def test_writes_a_0600_admin_kubeconfig_that_verifies_against_the_stored_ca(run_module, env):
    result = run_module(cluster_kubeconfig.main, args(env, validity_hours=8))
    assert not result.failed, result
    assert result["changed"] is True
    out = result["kubeconfig"]
    assert out["path"] == env["path"] and "content" not in out
    assert out["server"] == "https://10.0.0.10:6443"
    assert out["groups"] == ["kubeadm:cluster-admins"] and out["user"] == "kubernetes-admin"
    assert out["ca_fingerprint"] == env["creds"].ca_fingerprint
    assert "PRIVATE KEY" not in str(result)
    assert mode(env["path"]) == 0o600
    with open(env["path"]) as handle:
        parsed = pki.read_kubeconfig(handle.read())
    assert parsed["ca_pem"] == env["creds"].ca.cert_pem
    summary = pki.certificate_summary(parsed["cert_pem"])
    assert summary["not_after"].isoformat() == out["expires_at"]
    remaining = summary["not_after"] - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(hours=7, minutes=58) < remaining <= datetime.timedelta(hours=8)
    assert summary["groups"] == ["kubeadm:cluster-admins"]
    assert OPENSSL, "openssl is required for these tests"
    (env["tmp"] / "ca.pem").write_text(parsed["ca_pem"])
    (env["tmp"] / "cert.pem").write_text(parsed["cert_pem"])
    verify = subprocess.run(
        [OPENSSL, "verify", "-CAfile", str(env["tmp"] / "ca.pem"), str(env["tmp"] / "cert.pem")],
        capture_output=True,
        check=False,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the event history says who got a kubeconfig, without the material
    (event,) = events(env)
    assert out["serial"] in event["message"] and "PRIVATE" not in event["message"]


def test_second_run_keeps_the_valid_file(run_module, env):
    first = run_module(cluster_kubeconfig.main, args(env))
    with open(env["path"]) as handle:
        content = handle.read()
    second = run_module(cluster_kubeconfig.main, args(env))
    assert second["changed"] is False
    assert second["kubeconfig"]["serial"] == first["kubeconfig"]["serial"]
    assert second["kubeconfig"]["expires_at"] == first["kubeconfig"]["expires_at"]
    with open(env["path"]) as handle:
        assert handle.read() == content
    assert len(events(env)) == 1


def test_check_mode_writes_nothing_and_says_it_would(run_module, env):
    result = run_module(cluster_kubeconfig.main, args(env), check_mode=True, diff=True)
    assert result["changed"] is True
    assert not os.path.exists(env["path"])
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["path"] == env["path"]
    run_module(cluster_kubeconfig.main, args(env))
    assert run_module(cluster_kubeconfig.main, args(env), check_mode=True)["changed"] is False


def test_force_rotates(run_module, env):
    first = run_module(cluster_kubeconfig.main, args(env))
    again = run_module(cluster_kubeconfig.main, args(env, force=True), diff=True)
    assert again["changed"] is True
    assert again["kubeconfig"]["serial"] != first["kubeconfig"]["serial"]
    assert again["diff"]["before"]["serial"] == first["kubeconfig"]["serial"]


def test_rewrites_when_close_to_expiry_or_for_another_user(run_module, env, monkeypatch):
    first = run_module(cluster_kubeconfig.main, args(env, validity_hours=4, renew_before_hours=1))
    real_now = pki.utcnow
    monkeypatch.setattr(pki, "utcnow", lambda: real_now() + datetime.timedelta(hours=3, minutes=30))
    later = run_module(cluster_kubeconfig.main, args(env, validity_hours=4, renew_before_hours=1))
    assert later["changed"] is True and later["kubeconfig"]["serial"] != first["kubeconfig"]["serial"]
    monkeypatch.setattr(pki, "utcnow", real_now)
    other = run_module(cluster_kubeconfig.main, args(env, validity_hours=4, user="alice"))
    assert other["changed"] is True and other["kubeconfig"]["user"] == "alice"


def test_rewrites_a_file_for_another_ca(run_module, env):
    other = pki.generate_cluster_credentials()
    issued = pki.issue_admin_certificate(other, "1.31")
    os.makedirs(os.path.dirname(env["path"]))
    with open(env["path"], "w") as handle:
        handle.write(
            pki.kubeconfig(
                "demo", "https://10.0.0.10:6443", other.ca.cert_pem, issued.cert_pem, issued.key_pem, "kubernetes-admin"
            )
        )
    result = run_module(cluster_kubeconfig.main, args(env))
    assert result["changed"] is True
    with open(env["path"]) as handle:
        assert pki.read_kubeconfig(handle.read())["ca_pem"] == env["creds"].ca.cert_pem


def test_tightens_a_loose_file_mode_without_reissuing(run_module, env):
    first = run_module(cluster_kubeconfig.main, args(env))
    os.chmod(env["path"], 0o644)
    again = run_module(cluster_kubeconfig.main, args(env))
    assert again["changed"] is True and again["kubeconfig"]["serial"] == first["kubeconfig"]["serial"]
    assert mode(env["path"]) == 0o600


def test_return_content_returns_the_kubeconfig(run_module, env):
    result = run_module(cluster_kubeconfig.main, args(env, return_content=True))
    with open(env["path"]) as handle:
        assert result["kubeconfig"]["content"] == handle.read()


def test_group_before_1_29_is_system_masters(run_module, env):
    store = open_store(env["url"])
    try:
        cluster = store.create_cluster(
            dict(
                name="old",
                project_id="p1",
                status="CREATE_COMPLETE",
                driver="heat",
                cluster_template_name="k8s",
                template_version=1,
                coe_version="v1.28.9",
                api_address="10.0.0.20",
            )
        )
        pki.ensure_cluster_credentials(store, cluster["uuid"], secrets.SecretBox(KEY), "old")
    finally:
        store.close()
    result = run_module(cluster_kubeconfig.main, args(env, cluster=cluster["uuid"]))
    assert result["kubeconfig"]["groups"] == ["system:masters"]
    assert result["kubeconfig"]["server"] == "https://10.0.0.20:6443"


def test_wrong_key_fails_clearly_and_writes_nothing(run_module, env, monkeypatch):
    monkeypatch.setenv("COE_SECRET_KEY", "this is not the right key")
    result = run_module(cluster_kubeconfig.main, args(env))
    assert result.failed
    assert "Couldn't write a kubeconfig for cluster demo" in result["msg"]
    assert "not the key" in result["msg"] and "COE_SECRET_KEY" in result["msg"]
    assert "this is not the right key" not in str(result)
    assert not os.path.exists(env["path"])


def test_secret_key_option_is_no_log(run_module, env, monkeypatch):
    monkeypatch.delenv("COE_SECRET_KEY")
    result = run_module(cluster_kubeconfig.main, args(env, secret_key=KEY))
    assert not result.failed, result
    assert KEY not in str(result)


def test_no_key_at_all_is_a_clear_error(run_module, env, monkeypatch):
    monkeypatch.delenv("COE_SECRET_KEY")
    result = run_module(cluster_kubeconfig.main, args(env))
    assert result.failed and "no secret key" in result["msg"]
    # and the module never creates a key file for an existing store
    assert not (env["tmp"] / "state" / "secret.key").exists()


def test_unknown_cluster_and_bad_options(run_module, env):
    missing = run_module(cluster_kubeconfig.main, args(env, cluster="nope"))
    assert missing.failed and "nope" in missing["msg"]
    bad = run_module(cluster_kubeconfig.main, args(env, validity_hours=2, renew_before_hours=2))
    assert bad.failed and "renew_before_hours" in bad["msg"]
    assert not os.path.exists(env["path"])


def test_cluster_without_api_address_fails_before_writing(run_module, env):
    store = open_store(env["url"])
    try:
        store.create_cluster(
            dict(
                name="young",
                project_id="p1",
                status="CREATE_IN_PROGRESS",
                driver="heat",
                cluster_template_name="k8s",
                template_version=1,
                coe_version="v1.31.2",
                api_address=None,
            )
        )
    finally:
        store.close()
    result = run_module(cluster_kubeconfig.main, args(env, cluster="young"))
    assert result.failed and "API address" in result["msg"]
    assert not os.path.exists(env["path"])


def test_playbook_vvv_output_carries_no_key_material(env, tmp_path):
    """coe.openstack.kubeconfig under ansible-playbook -vvv with return_content (through the
    action plugin): the content is usable through register, yet no output shows a key."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    playbook_bin = os.path.join(repo, ".venv", "bin", "ansible-playbook")
    assert os.path.exists(playbook_bin), "ansible-playbook is required (make venv)"
    play = tmp_path / "play.yml"
    play.write_text(
        """
- name: Kubeconfig through the collection's playbook
  ansible.builtin.import_playbook: coe.openstack.kubeconfig

- name: Use the content through register
  hosts: all
  gather_facts: false
  connection: local
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Ask for the content
      coe.openstack.cluster_kubeconfig:
        cluster: demo
        path: "%s"
        return_content: true
        secret_key: "{{ coe_secret_key }}"
      register: with_content
    - name: The content is there for whoever registered it
      ansible.builtin.assert:
        that:
          - with_content.kubeconfig.content is search('client-key-data')
          - with_content is not changed
        quiet: true
"""
        % env["path"]
    )
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    demo:\n      coe_kubeconfig_path: %s\n" % env["path"])
    environ = dict(os.environ)
    environ.pop("COE_SECRET_KEY", None)
    result = subprocess.run(
        [playbook_bin, "-vvv", "-i", str(inventory), str(play), "-e", "coe_secret_key='%s'" % KEY],
        capture_output=True,
        check=False,
        text=True,
        env=environ,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "export KUBECONFIG=%s" % env["path"] in output
    with open(env["path"]) as handle:
        parsed = pki.read_kubeconfig(handle.read())
    key_b64_start = base64.b64encode(parsed["key_pem"].encode()).decode()[:40]
    for secret in ("PRIVATE KEY", "client-key-data", key_b64_start, env["creds"].ca.key_pem.splitlines()[1], KEY):
        assert secret not in output
    assert "censored" in output


def test_an_adopted_cluster_without_its_cas_is_refused_naming_the_way_out(run_module, env):
    store = open_store(env["url"])
    try:
        adopted = store.create_cluster(
            dict(
                env["cluster"],
                uuid="0f2b6c1e-1111-2222-3333-444455556666",
                name="adopted",
                adopted=dict(missing=["credentials"]),
            )
        )
        assert store.list_secrets(adopted["uuid"]) == []
    finally:
        store.close()
    result = run_module(cluster_kubeconfig.main, args(env, cluster="adopted"))
    assert result.failed and "adopted from the cloud without its credentials" in result["msg"], result
    assert "store_restore" in result["msg"] and result["missing"] == ["credentials"]
    assert not os.path.exists(env["path"])
