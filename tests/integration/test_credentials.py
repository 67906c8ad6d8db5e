"""Cluster credentials end to end on the local cloud, with each driver's module.

The servers of the local cloud run nothing, so the bootstrap is checked the way a node
would receive it: each server's user-data is read back from Nova with the admin cloud
(microversion 2.3, ``OS-EXT-SRV-ATTR:user_data``) and checked with cloud-init's schema
validator, the kubeadm documents are parsed, and every node certificate is verified with
``openssl verify`` against the CA held (encrypted) in the store. Then an admin kubeconfig
is written with cluster_kubeconfig and verified the same way.
"""

import base64
import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid as uuidlib

import pytest
import yaml

from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, endpoint, pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
MODULES = os.path.join(REPO, "plugins", "modules")
KEY = "integration secret key, long enough"
CLOUD_INIT = shutil.which("cloud-init")
OPENSSL = shutil.which("openssl")

pytestmark = pytest.mark.usefixtures("minicloud")


def run_module(name, args, env, check=False):
    """Run plugins/modules/<name>.py as Ansible would; its JSON result."""
    payload = dict(args, _ansible_check_mode=check)
    proc = subprocess.run(
        [sys.executable, os.path.join(MODULES, name + ".py")],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}),
        capture_output=True,
        check=False,
        text=True,
        env=dict(os.environ, PYTHONPATH=COLLECTIONS, **env),
        timeout=900,
    )
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module printed no JSON:\n%s\n%s" % (proc.stdout, proc.stderr)) from None


@pytest.fixture
def conn():
    import openstack

    return openstack.connect(cloud="minicloud")


@pytest.fixture
def admin():
    import openstack

    return openstack.connect(cloud="minicloud-admin", compute_api_version="2.3")


@pytest.fixture
def state(tmp_path):
    """A SQLite store and the environment that points the modules at it with the key."""
    url = "sqlite:///%s" % (tmp_path / "coe.db")
    return dict(url=url, env={"COE_STATE_URL": url, "COE_SECRET_KEY": KEY}, tmp=tmp_path)


def make_record(driver, **over):
    uuid = str(uuidlib.uuid4())
    rec = dict(
        name="cred-%s-%s" % (driver, uuid[:6]),
        uuid=uuid,
        project_id="demo",
        status="CREATE_IN_PROGRESS",
        driver=driver,
        cluster_template_name="k8s",
        template_version=1,
        coe_version="v1.31.2",
        master_count=3,
        node_count=2,
        flavor_id="m1.small",
        master_flavor_id="m1.small",
        image_id="fake-image",
        keypair="demo-key",
        fixed_network="private",
        labels={"example.com/team": "blue"},
    )
    rec.update(over)
    return rec


def store_cluster(state, rec):
    """The record in the store with its credentials, as the cluster module makes them."""
    store = open_store(state["url"])
    try:
        store.create_cluster(rec)
        return pki.ensure_cluster_credentials(store, rec["uuid"], secrets.SecretBox(KEY), rec["name"])
    finally:
        store.close()


def set_api_address(state, rec, api_address):
    store = open_store(state["url"])
    try:
        current = store.get_cluster(rec["uuid"])
        store.update_cluster(dict(current, api_address=api_address), current["generation"])
    finally:
        store.close()


def user_data_of(admin, server_id):
    raw = admin.compute.get_server(server_id).user_data
    assert raw, "server %s has no user-data" % server_id
    data = base64.b64decode(raw)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def openssl_verify(tmp, ca_pem, cert_pem):
    assert OPENSSL, "openssl is required"
    (tmp / "ca.pem").write_text(ca_pem)
    (tmp / "cert.pem").write_text(cert_pem)
    return subprocess.run(
        [OPENSSL, "verify", "-x509_strict", "-CAfile", str(tmp / "ca.pem"), str(tmp / "cert.pem")],
        capture_output=True,
        check=False,
        text=True,
    )


def check_servers_user_data(admin, servers, creds, api_address, tmp, vip):
    """Every server's user-data: valid cloud-config, the right kubeadm documents, its own
    node identity signed by the store's CA, CA keys on masters only; every node joins through
    the API VIP's fixed IP ``vip`` and the certificate names it and the API address, never a
    master's own address. Returns the kinds seen."""
    assert CLOUD_INIT, "cloud-init is required (Debian package cloud-init)"
    host, port = endpoint.parse_api_address(api_address)
    own = {a for s in servers for net in (s.addresses or {}).values() for a in [i["addr"] for i in net]}
    kinds = {}
    for server in servers:
        text = user_data_of(admin, server.id)
        path = tmp / ("%s.yaml" % server.name)
        path.write_text(text)
        schema = subprocess.run(
            [CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
        )
        assert schema.returncode == 0, (server.name, schema.stdout + schema.stderr)
        files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
        docs = [d for d in yaml.safe_load_all(files[bootstrap.KUBEADM_CONFIG]) if d]
        assert {d["apiVersion"] for d in docs} == {"kubeadm.k8s.io/v1beta4"}
        kinds[server.name] = [d["kind"] for d in docs]
        role = server.metadata["coe_role"]
        if role == "master":
            assert files["/etc/kubernetes/pki/ca.key"] == creds.ca.key_pem
            assert files["/etc/kubernetes/pki/etcd/ca.key"] == creds.etcd_ca.key_pem
        else:
            assert creds.ca.key_pem not in text and "/etc/kubernetes/pki/ca.key" not in files
        if role == "master":
            # keepalived holds the VIP on every master
            assert vip + "/32" in files[bootstrap.KEEPALIVED_CONF]
        if docs[0]["kind"] == "InitConfiguration":
            config = docs[1]
            assert config["controlPlaneEndpoint"] == endpoint.host_port(vip, port)
            assert {host, vip} <= set(config["apiServer"]["certSANs"])
            assert not set(config["apiServer"]["certSANs"]) & (own - {host, vip})  # no node's own address
            continue
        join = docs[0]
        assert ("controlPlane" in join) == (role == "master")
        identity = pki.read_kubeconfig(files[bootstrap.DISCOVERY_KUBECONFIG])
        assert identity["server"] == "https://" + endpoint.host_port(vip, port)
        summary = pki.certificate_summary(identity["cert_pem"])
        assert summary["common_name"] == "system:node:%s" % server.name
        assert summary["groups"] == ["system:nodes"]
        result = openssl_verify(tmp, creds.ca.cert_pem, identity["cert_pem"])
        assert result.returncode == 0, (server.name, result.stdout + result.stderr)
    return kinds


def check_kubeconfig(state, rec, creds, api_address):
    path = state["tmp"] / "admin.conf"
    result = run_module("cluster_kubeconfig", dict(cluster=rec["name"], path=str(path)), state["env"])
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and "content" not in result["kubeconfig"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    parsed = pki.read_kubeconfig(path.read_text())
    assert parsed["server"] == endpoint.api_server_url(api_address)
    # the CA in the file is the one the store holds, and the client certificate chains to it
    store = open_store(state["url"])
    try:
        held = pki.load_cluster_credentials(store, rec["uuid"], secrets.SecretBox(KEY))
    finally:
        store.close()
    assert held.ca.cert_pem == parsed["ca_pem"] == creds.ca.cert_pem
    verify = openssl_verify(state["tmp"], held.ca.cert_pem, parsed["cert_pem"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert pki.certificate_summary(parsed["cert_pem"])["groups"] == ["kubeadm:cluster-admins"]
    again = run_module("cluster_kubeconfig", dict(cluster=rec["name"], path=str(path)), state["env"])
    assert again["changed"] is False
    # the event history tells who got a kubeconfig, and carries no key material
    store = open_store(state["url"])
    try:
        history = json.dumps(store.list_events(cluster_uuid=rec["uuid"]), default=str)
    finally:
        store.close()
    assert result["kubeconfig"]["serial"] in history
    for secret in (parsed["key_pem"], held.ca.key_pem, held.sa_key_pem):
        assert secret.splitlines()[1] not in history
    assert "PRIVATE KEY" not in history


@pytest.mark.alone  # see pytest.ini
def test_nova_driver_user_data_and_kubeconfig(conn, admin, state):
    # three masters and no external network: the API is the VIP's fixed IP
    rec = make_record("nova", api_endpoint="vip")
    creds = store_cluster(state, rec)
    tag = "coe-cluster-%s" % rec["uuid"]
    args = dict(cloud="minicloud", cluster=rec, render_user_data=True, resources=True)
    try:
        result = run_module("nova_servers", args, state["env"])
        assert not result.get("failed"), result.get("msg")
        vip = result["resources"]["vip"]["fixed_ip"]
        api_address = result["resources"]["api_address"]
        assert api_address == "https://%s:6443" % vip
        servers = list(conn.compute.servers(details=True, tags=tag))
        assert len(servers) == 5
        kinds = check_servers_user_data(admin, servers, creds, api_address, state["tmp"], vip)
        assert sorted(map(tuple, kinds.values())) == sorted(
            [("InitConfiguration", "ClusterConfiguration")] + [("JoinConfiguration",)] * 4
        )

        # scale out with a wrong key: a clear refusal, and no server created
        wrong = dict(state["env"], COE_SECRET_KEY="not the key of this store, sorry")
        refused = run_module("nova_servers", dict(args, cluster=dict(rec, node_count=3)), wrong)
        assert refused.get("failed")
        assert "not the key" in refused["msg"] and "COE_SECRET_KEY" in refused["msg"]
        assert "not the key of this store, sorry" not in json.dumps(refused)
        assert len(list(conn.compute.servers(tags=tag))) == 5

        set_api_address(state, rec, api_address)
        check_kubeconfig(state, rec, creds, api_address)
    finally:
        done = run_module(
            "nova_resources",
            dict(cloud="minicloud", cluster_name=rec["name"], cluster_uuid=rec["uuid"], state="absent"),
            state["env"],
        )
        assert not done.get("failed"), done.get("msg")


def test_heat_driver_user_data_and_kubeconfig(conn, admin, state):
    rec = make_record("heat", external_network_id="public", floating_ip_enabled=True)
    creds = store_cluster(state, rec)
    args = dict(cloud="minicloud", cluster=rec, render_user_data=True)
    try:
        result = run_module("heat_stack", args, state["env"])
        assert not result.get("failed"), result.get("msg")
        api_address = "https://%s:6443" % result["stack"]["outputs"]["api_ip"]
        servers = list(conn.compute.servers(details=True, tags="coe-cluster-%s" % rec["uuid"]))
        assert len(servers) == 5
        vip = result["stack"]["outputs"]["api_fixed_ip"]
        kinds = check_servers_user_data(admin, servers, creds, api_address, state["tmp"], vip)
        assert sorted(map(tuple, kinds.values())) == sorted(
            [("InitConfiguration", "ClusterConfiguration")] + [("JoinConfiguration",)] * 4
        )
        # the stack shows no user-data: its parameters are hidden
        assert all(v == "******" for k, v in result["stack"]["parameters"].items() if k.endswith("user_data"))
        set_api_address(state, rec, api_address)
        check_kubeconfig(state, rec, creds, api_address)
    finally:
        done = run_module("heat_stack", dict(cloud="minicloud", cluster=rec, state="absent"), state["env"])
        assert not done.get("failed"), done.get("msg")
