"""The user-data renderer, checked with real validators: cloud-init's schema, openssl, sh -n."""

import base64
import datetime
import gzip
import re
import shutil
import subprocess

import pytest
import yaml
from cryptography.x509.oid import NameOID

from ansible_collections.coe.openstack.plugins.module_utils import bootstrap, pki
from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError, ValidationError

T0 = datetime.datetime(2026, 11, 25, 8, 0, tzinfo=datetime.UTC)
CLOUD_INIT = shutil.which("cloud-init")
OPENSSL = shutil.which("openssl")


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def creds():
    return pki.generate_cluster_credentials(pki.PkiSettings(), clock=Clock(T0))


def make_cluster(version="v1.31.2", **overrides):
    cluster = dict(
        name="demo",
        uuid="0f2b6c1e-1111-2222-3333-444455556666",
        coe_version=version,
        api_address="https://10.0.0.10:6443",
        master_addresses=["10.0.0.11", "10.0.0.12", "10.0.0.13"],
        labels={"kube_tag": "v1.31.2", "example.com/team": "blue", "example.com/tier": "gold"},
        nodegroups=[
            dict(name="default-master", role="master", labels={}),
            dict(name="default-worker", role="worker", labels={"example.com/tier": "silver"}),
            dict(name="gpu", role="worker", labels={"example.com/gpu": "true"}),
        ],
    )
    cluster.update(overrides)
    return cluster


FIRST = dict(name="demo-master-0", role="master", nodegroup="default-master", index=0, first_master=True)
OTHER_MASTER = dict(name="demo-master-1", role="master", nodegroup="default-master", index=1, first_master=False)
WORKER = dict(name="demo-default-worker-0", role="worker", nodegroup="default-worker", index=0, first_master=False)
GPU = dict(name="demo-gpu-4", role="worker", nodegroup="gpu", index=4, first_master=False)
NODES = {"first_master": FIRST, "other_master": OTHER_MASTER, "worker": WORKER}


def cloud_init_schema(tmp_path, text):
    assert CLOUD_INIT, "cloud-init is required (Debian package cloud-init) to validate user-data"
    path = tmp_path / "user-data"
    path.write_text(text)
    return subprocess.run(
        [CLOUD_INIT, "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )


def parse(text):
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def files_of(text):
    return {f["path"]: f for f in parse(text)["write_files"]}


def kubeadm_docs(text):
    return [d for d in yaml.safe_load_all(files_of(text)[bootstrap.KUBEADM_CONFIG]["content"]) if d]


def openssl_verify(tmp_path, ca_pem, cert_pem, at):
    assert OPENSSL, "openssl is required for these tests"
    (tmp_path / "ca.pem").write_text(ca_pem)
    (tmp_path / "cert.pem").write_text(cert_pem)
    return subprocess.run(
        [
            OPENSSL,
            "verify",
            "-x509_strict",
            "-attime",
            str(int(at.timestamp())),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "cert.pem"),
        ],
        capture_output=True,
        check=False,
        text=True,
    )


def node_labels_arg(doc):
    args = doc["nodeRegistration"]["kubeletExtraArgs"]
    if isinstance(args, list):
        (value,) = [a["value"] for a in args if a["name"] == "node-labels"]
    else:
        value = args["node-labels"]
    return dict(item.split("=", 1) for item in value.split(","))


# ------------------------------------------------------------------ validity of every rendered user-data


@pytest.mark.parametrize("version", ["v1.28.9", "1.30.4", "v1.31.2", "v1.34.1"])
@pytest.mark.parametrize("role", sorted(NODES))
def test_every_user_data_passes_cloud_init_schema(tmp_path, creds, version, role):
    text = bootstrap.render_user_data(make_cluster(version), NODES[role], creds, clock=Clock(T0))
    result = cloud_init_schema(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_the_schema_check_really_rejects_bad_user_data(tmp_path, creds):
    # the validator the tests rely on does fail on a malformed write_files entry
    doc = parse(bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0)))
    doc["write_files"][0]["permissions"] = ["0600"]
    result = cloud_init_schema(tmp_path, "#cloud-config\n" + yaml.safe_dump(doc))
    assert result.returncode != 0


@pytest.mark.parametrize(
    "version,api",
    [
        ("v1.22.0", "kubeadm.k8s.io/v1beta3"),
        ("v1.28.9", "kubeadm.k8s.io/v1beta3"),
        ("1.30", "kubeadm.k8s.io/v1beta3"),
        ("v1.31.0", "kubeadm.k8s.io/v1beta4"),
        ("1.34.1", "kubeadm.k8s.io/v1beta4"),
    ],
)
def test_kubeadm_documents_have_the_right_kinds_and_api_version(creds, version, api):
    cluster = make_cluster(version)
    first = kubeadm_docs(bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0)))
    assert [(d["apiVersion"], d["kind"]) for d in first] == [(api, "InitConfiguration"), (api, "ClusterConfiguration")]
    for node in (OTHER_MASTER, WORKER):
        docs = kubeadm_docs(bootstrap.render_user_data(cluster, node, creds, clock=Clock(T0)))
        assert [(d["apiVersion"], d["kind"]) for d in docs] == [(api, "JoinConfiguration")]
    labels_arg = first[0]["nodeRegistration"]["kubeletExtraArgs"]
    assert isinstance(labels_arg, list if api.endswith("v1beta4") else dict)


# The fields of the kubeadm config types this renderer may use, per API version, from the
# kubeadm config API reference (kubeadm.k8s.io/v1beta3 and v1beta4). kubeadm only warns on
# unknown fields, so a misspelt one would be silently ignored on a real node: refuse it here.
_COMMON = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "nodeRegistration", "localAPIEndpoint"}
    | {"certificateKey", "skipPhases", "patches"},
    "ClusterConfiguration": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion"}
    | {"controlPlaneEndpoint", "apiServer", "controllerManager", "scheduler", "dns", "certificatesDir"}
    | {"imageRepository", "featureGates", "clusterName"},
    "JoinConfiguration": {"apiVersion", "kind", "nodeRegistration", "caCertPath", "discovery", "controlPlane"}
    | {"skipPhases", "patches"},
    "nodeRegistration": {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors"}
    | {"imagePullPolicy"},
    "localAPIEndpoint": {"advertiseAddress", "bindPort"},
    "controlPlane": {"localAPIEndpoint", "certificateKey"},
    "networking": {"serviceSubnet", "podSubnet", "dnsDomain"},
    "apiServer": {"extraArgs", "extraVolumes", "certSANs"},
    "discovery": {"bootstrapToken", "file", "tlsBootstrapToken"},
    "file": {"kubeConfigPath"},
}
KUBEADM_FIELDS = {
    "kubeadm.k8s.io/v1beta3": dict(
        _COMMON,
        apiServer=_COMMON["apiServer"] | {"timeoutForControlPlane"},
        discovery=_COMMON["discovery"] | {"timeout"},
    ),
    "kubeadm.k8s.io/v1beta4": dict(
        _COMMON,
        InitConfiguration=_COMMON["InitConfiguration"] | {"dryRun", "timeouts"},
        ClusterConfiguration=_COMMON["ClusterConfiguration"]
        | {"proxy", "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod"},
        JoinConfiguration=_COMMON["JoinConfiguration"] | {"dryRun", "timeouts"},
        nodeRegistration=_COMMON["nodeRegistration"] | {"imagePullSerial"},
        apiServer=_COMMON["apiServer"] | {"extraEnvs"},
        timeouts={
            "controlPlaneComponentHealthCheck",
            "kubeletHealthCheck",
            "kubernetesAPICall",
            "etcdAPICall",
            "tlsBootstrap",
            "discovery",
            "upgradeManifests",
        },
    ),
}


def assert_known_fields(fields, name, value, where):
    if name in fields and isinstance(value, dict):
        unknown = set(value) - fields[name]
        assert not unknown, "%s: unknown kubeadm fields %s" % (where, sorted(unknown))
        for key, sub in value.items():
            assert_known_fields(fields, key, sub, "%s.%s" % (where, key))


@pytest.mark.parametrize("version", ["v1.28.9", "v1.30.4", "v1.31.2", "v1.34.1"])
@pytest.mark.parametrize("role", sorted(NODES))
def test_kubeadm_documents_use_only_known_fields(creds, version, role):
    for doc in kubeadm_docs(bootstrap.render_user_data(make_cluster(version), NODES[role], creds, clock=Clock(T0))):
        assert_known_fields(KUBEADM_FIELDS[doc["apiVersion"]], doc["kind"], doc, doc["kind"])
        timeouts = [*(doc.get("timeouts") or {}).values(), (doc.get("discovery") or {}).get("timeout")]
        for duration in filter(None, timeouts):
            assert re.match(r"^(\d+h)?(\d+m)?(\d+s)?$", duration) and duration, duration
        algorithm = doc.get("encryptionAlgorithm")
        if algorithm is not None:
            assert algorithm in ("RSA-2048", "RSA-3072", "RSA-4096", "ECDSA-P256", "ECDSA-P384")


def test_the_field_check_catches_a_misspelt_field():
    doc = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"file": {"kubeconfig": "x"}},
    }
    with pytest.raises(AssertionError, match="kubeconfig"):
        assert_known_fields(KUBEADM_FIELDS[doc["apiVersion"]], doc["kind"], doc, doc["kind"])


def test_too_old_kubernetes_is_refused(creds):
    with pytest.raises(ValidationError, match="oldest supported"):
        bootstrap.render_user_data(make_cluster("v1.21.3"), FIRST, creds)


def test_bootstrap_script_is_valid_shell(tmp_path, creds):
    text = bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0))
    script = files_of(text)[bootstrap.BOOTSTRAP_SCRIPT]
    assert script["permissions"] == "0700"
    (tmp_path / "s.sh").write_text(script["content"])
    result = subprocess.run(["sh", "-n", str(tmp_path / "s.sh")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ first master


def test_first_master_gets_the_ca_material_and_init(creds):
    text = bootstrap.render_user_data(make_cluster(), FIRST, creds, clock=Clock(T0))
    files = files_of(text)
    for name, content in creds.kubeadm_files().items():
        entry = files["/etc/kubernetes/pki/" + name]
        assert entry["content"] == content
        assert entry["permissions"] == "0600" and entry["owner"] == "root:root"
    assert files[bootstrap.KUBEADM_CONFIG]["permissions"] == "0600"
    init, config = kubeadm_docs(text)
    assert init["nodeRegistration"]["name"] == "demo-master-0"
    assert config["controlPlaneEndpoint"] == "10.0.0.10:6443"
    assert config["clusterName"] == "demo"
    assert config["kubernetesVersion"] == "v1.31.2"
    assert config["apiServer"]["certSANs"] == ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert config["networking"] == dict(
        podSubnet="10.100.0.0/16", serviceSubnet="10.254.0.0/16", dnsDomain="cluster.local"
    )
    assert config["encryptionAlgorithm"] == "ECDSA-P256"
    command = parse(text)["runcmd"][0]
    assert command[:4] == [bootstrap.BOOTSTRAP_SCRIPT, "init", "1.31.2", "10.0.0.10:6443"]
    assert init["localAPIEndpoint"] == {"bindPort": 6443}
    assert command[4] == bootstrap.DEFAULT_CNI_MANIFEST


def test_api_address_forms_and_ipv6(creds):
    cluster = make_cluster(api_address="fd00::10", master_addresses=["fd00::11"])
    text = bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0))
    config = kubeadm_docs(text)[1]
    assert config["controlPlaneEndpoint"] == "[fd00::10]:6443"
    assert config["apiServer"]["certSANs"] == ["fd00::10", "fd00::11"]
    dns = make_cluster(api_address="https://api.demo.example.com:443")
    config = kubeadm_docs(bootstrap.render_user_data(dns, FIRST, creds, clock=Clock(T0)))[1]
    assert config["controlPlaneEndpoint"] == "api.demo.example.com:443"
    assert config["apiServer"]["certSANs"][0] == "api.demo.example.com"


def test_version_without_patch_and_api_behind_another_port(creds):
    cluster = make_cluster("1.31", api_address="https://api.example.com:443")
    text = bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0))
    init, config = kubeadm_docs(text)
    assert config["kubernetesVersion"] == "stable-1.31"
    assert config["controlPlaneEndpoint"] == "api.example.com:443"
    # the API servers themselves listen on 6443 behind the load balancer
    assert init["localAPIEndpoint"] == {"bindPort": 6443}
    assert parse(text)["runcmd"][0][2:4] == ["1.31", "api.example.com:443"]
    (join,) = kubeadm_docs(bootstrap.render_user_data(cluster, OTHER_MASTER, creds, clock=Clock(T0)))
    assert join["controlPlane"]["localAPIEndpoint"] == {"bindPort": 6443}


def test_network_labels(creds):
    cluster = make_cluster(
        labels={
            "pod_network_cidr": "192.168.0.0/16",
            "service_cluster_ip_range": "10.96.0.0/12",
            "dns_cluster_domain": "k8s.example",
            "cni_manifest_url": "none",
        }
    )
    text = bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0))
    assert kubeadm_docs(text)[1]["networking"] == dict(
        podSubnet="192.168.0.0/16", serviceSubnet="10.96.0.0/12", dnsDomain="k8s.example"
    )
    assert len(parse(text)["runcmd"][0]) == 4


@pytest.mark.parametrize(
    "labels",
    [
        {"pod_network_cidr": "10.0.0.0/33"},
        {"pod_network_cidr": "10.254.0.0/20"},  # overlaps the default service range
        {"cni_manifest_url": "http://insecure.example/cni.yaml"},
        {"cni_manifest_url": "https://x.example/a b"},
        {"dns_cluster_domain": "bad domain"},
    ],
)
def test_bad_network_labels_fail_before_rendering(creds, labels):
    with pytest.raises(ValidationError):
        bootstrap.check_bootstrap_inputs(make_cluster(labels=labels))


def test_ecdsa_on_v1beta3_uses_the_feature_gate_and_p384_needs_1_34(creds):
    cluster = make_cluster("v1.30.2", labels={"coe_pki_key_type": "ecdsa"})
    ec_creds = pki.generate_cluster_credentials(pki.PkiSettings(key_type="ecdsa", key_size=256), clock=Clock(T0))
    config = kubeadm_docs(bootstrap.render_user_data(cluster, FIRST, ec_creds, clock=Clock(T0)))[1]
    assert config["featureGates"] == {"PublicKeysECDSA": True}
    with pytest.raises(ValidationError, match=r"1\.34"):
        bootstrap.check_bootstrap_inputs(
            make_cluster("v1.33.0", labels={"coe_pki_key_type": "ecdsa", "coe_pki_key_size": "384"})
        )
    bootstrap.check_bootstrap_inputs(
        make_cluster("v1.34.0", labels={"coe_pki_key_type": "ecdsa", "coe_pki_key_size": "384"})
    )


# ------------------------------------------------------------------ a rebuilt first master joins instead


def test_first_master_can_also_join_as_a_control_plane_node(tmp_path, creds):
    text = bootstrap.render_user_data(make_cluster(), FIRST, creds, clock=Clock(T0))
    files = files_of(text)
    (join,) = [d for d in yaml.safe_load_all(files[bootstrap.KUBEADM_JOIN_CONFIG]["content"]) if d]
    assert files[bootstrap.KUBEADM_JOIN_CONFIG]["permissions"] == "0600"
    assert join["kind"] == "JoinConfiguration" and join["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert join["controlPlane"] == {"localAPIEndpoint": {"bindPort": 6443}}
    # its nodeRegistration (node name and labels) is the InitConfiguration's, copied by the
    # script (see test_script_joins_when_the_api_address_answers): not twice in the user-data
    assert "nodeRegistration" not in join
    assert join["discovery"] == {"file": {"kubeConfigPath": bootstrap.DISCOVERY_KUBECONFIG}}
    identity = discovery_identity(text)
    assert identity["server"] == "https://10.0.0.10:6443"
    cert = pki.load_certificate(identity["cert_pem"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:demo-master-0"
    result = openssl_verify(tmp_path, creds.ca.cert_pem, identity["cert_pem"], T0)
    assert result.returncode == 0, result.stdout + result.stderr
    # where it looks for a control plane: the API address first, then every master's
    assert files[bootstrap.CONTROL_PLANE_ADDRESSES]["content"].splitlines() == [
        "10.0.0.10:6443",
        "10.0.0.11:6443",
        "10.0.0.12:6443",
        "10.0.0.13:6443",
    ]
    # the renderer's decision stays "init": the script makes the other one
    assert parse(text)["runcmd"][0][1] == "init"


def test_control_plane_addresses_with_ipv6_another_port_and_no_masters(creds):
    cluster = make_cluster(api_address="https://[fd00::10]:443", master_addresses=["fd00::11", "fd00::10"])
    assert bootstrap.control_plane_addresses(cluster) == ["[fd00::10]:443", "[fd00::11]:6443", "[fd00::10]:6443"]
    assert bootstrap.control_plane_addresses(make_cluster(master_addresses=[])) == ["10.0.0.10:6443"]


def test_only_the_first_master_gets_the_join_fallback(creds):
    for node in (OTHER_MASTER, WORKER):
        files = files_of(bootstrap.render_user_data(make_cluster(), node, creds, clock=Clock(T0)))
        assert bootstrap.KUBEADM_JOIN_CONFIG not in files
        assert bootstrap.CONTROL_PLANE_ADDRESSES not in files


def test_the_script_checks_for_a_control_plane_before_kubeadm_init():
    script = bootstrap.BOOTSTRAP_SH
    init = script.index("kubeadm init --config")
    check = script.index("if found=$(existing_control_plane); then")
    assert check < init
    assert '--cacert "$ca"' in script
    assert "join_conf=" + bootstrap.KUBEADM_JOIN_CONFIG.replace(bootstrap.COE_DIR, "$coe_dir") in script
    assert "candidates=" + bootstrap.CONTROL_PLANE_ADDRESSES.replace(bootstrap.COE_DIR, "$coe_dir") in script


# the node runs the script with /bin/sh (dash on Debian and Ubuntu): so do the tests
POSIX_SH = shutil.which("dash") or shutil.which("sh")
FAKE_CURL = r"""#!/bin/bash
# fake curl: answers (HTTP 401) for the URLs whose host:port is listed in $FAKE/answering (or,
# for calls without --cacert, $FAKE/answering_plain when it exists), else "000" as curl does
# when nothing answers; every call is logged
echo "curl $*" >> "$FAKE/calls"
url="${@: -1}"
hostport=${url#https://}
hostport=${hostport%%/*}
listed=$FAKE/answering
case " $* " in *" --cacert "*) ;; *) [ -e "$FAKE/answering_plain" ] && listed=$FAKE/answering_plain ;; esac
if grep -qxF "$hostport" "$listed" 2>/dev/null; then
  case " $* " in *" -w "*) printf 401 ;; esac
  exit 0
fi
case " $* " in *" -w "*) printf 000 ;; esac
exit 7
"""
FAKE_LOGGER = """#!/bin/bash
echo "$(basename "$0") $*" >> "$FAKE/calls"
"""
FAKE_HOSTNAME = """#!/bin/bash
cat "$FAKE/own" 2>/dev/null
"""


FAKE_KUBEADM = """#!/bin/bash
echo "kubeadm $1 --config $(basename "$3")" >> "$FAKE/calls"
cp "$3" "$FAKE/kubeadm-config-used"
"""


def run_part(tmp_path, path):
    """Run the decision part written by run_decision in /bin/sh with this PATH and the fakes."""
    env = {"PATH": path, "FAKE": str(tmp_path / "fake")}
    return subprocess.run(
        [POSIX_SH, str(tmp_path / "part.sh")], capture_output=True, text=True, check=False, env=env, timeout=60
    )


def run_decision(tmp_path, user_data, mode, candidates, answering=(), own="10.0.0.11 192.168.5.2 "):
    """Run the kubeadm part of BOOTSTRAP_SH in /bin/sh with fake curl, kubeadm, kubectl,
    hostname and sleep on PATH, and the kubeadm files of ``user_data`` in a folder of its
    own; return (exit code, the calls made, stderr)."""
    assert POSIX_SH, "a POSIX shell is required for this test"
    script = bootstrap.BOOTSTRAP_SH
    start = script.index("# --- coe-bootstrap: decide and run kubeadm")
    end = script.index("# --- end of the part the unit tests run")
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("curl", FAKE_CURL),
        ("kubeadm", FAKE_KUBEADM),
        ("kubectl", FAKE_LOGGER),
        ("sleep", FAKE_LOGGER),
        ("hostname", FAKE_HOSTNAME),
    ):
        (fake / "bin" / name).write_text(text)
        (fake / "bin" / name).chmod(0o755)
    (fake / "answering").write_text("".join(a + "\n" for a in answering))
    (fake / "own").write_text(own)
    coe_dir = tmp_path / "coe"
    coe_dir.mkdir()
    files = files_of(user_data)
    for path in (bootstrap.KUBEADM_CONFIG, bootstrap.KUBEADM_JOIN_CONFIG, bootstrap.DISCOVERY_KUBECONFIG):
        if path in files:
            (coe_dir / path.rsplit("/", 1)[1]).write_text(files[path]["content"])
    (coe_dir / "candidates").write_text("".join(a + "\n" for a in candidates))
    prelude = (
        "set -eu\nmode=%s\nendpoint=10.0.0.10:6443\ncni_manifest=https://example.com/cni.yaml\n"
        "coe_dir=%s\nconf=$coe_dir/kubeadm.yaml\njoin_conf=$coe_dir/kubeadm-join.yaml\n"
        "candidates=$coe_dir/candidates\nca=/etc/kubernetes/pki/ca.crt\n"
        'probe_rounds=3\nprobe_interval=10\nlog() { echo "coe-bootstrap: $*" >&2; }\n'
    ) % (mode, coe_dir)
    (tmp_path / "part.sh").write_text(prelude + script[start:end] + "run_kubeadm\n")
    result = run_part(tmp_path, "%s:/usr/bin:/bin" % (fake / "bin"))
    calls = (fake / "calls").read_text().splitlines() if (fake / "calls").exists() else []
    return result.returncode, calls, result.stderr


@pytest.fixture(scope="module")
def first_text(creds):
    return bootstrap.render_user_data(make_cluster(), FIRST, creds, clock=Clock(T0))


def kubeadm_calls(calls):
    return [c for c in calls if c.startswith("kubeadm ")]


ADDRESSES = ["10.0.0.10:6443", "10.0.0.11:6443", "10.0.0.12:6443", "10.0.0.13:6443"]


def test_script_initialises_when_no_control_plane_answers(tmp_path, first_text):
    code, calls, err = run_decision(tmp_path, first_text, "init", ADDRESSES)
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm init --config kubeadm.yaml"]
    assert "kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f https://example.com/cni.yaml" in calls
    probed = [c.split()[-1] for c in calls if c.startswith("curl ") and "--cacert" in c]
    # three rounds over every address but this node's own (10.0.0.11), each checked against the CA
    assert probed == ["https://%s/readyz" % a for a in ADDRESSES if a != "10.0.0.11:6443"] * 3
    assert [c for c in calls if c.startswith("sleep")] == ["sleep 10", "sleep 10"]


def test_script_joins_when_the_api_address_answers(tmp_path, first_text):
    code, calls, err = run_decision(tmp_path, first_text, "init", ADDRESSES, answering=["10.0.0.10:6443"])
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm join --config kubeadm-join-full.yaml"]
    assert "a control plane of this cluster answers at 10.0.0.10:6443" in err
    assert not [c for c in calls if c.startswith("kubectl")]
    # what kubeadm got: the full JoinConfiguration of this master, its node labels included
    (used,) = [d for d in yaml.safe_load_all((tmp_path / "fake" / "kubeadm-config-used").read_text()) if d]
    (expected,) = bootstrap.join_documents(make_cluster(), FIRST)
    assert used == expected
    assert used["controlPlane"] and node_labels_arg(used)["example.com/team"] == "blue"


@pytest.mark.parametrize("version", ["v1.29.4", "v1.34.1"])
def test_script_composes_a_valid_join_for_both_kubeadm_apis(tmp_path, creds, version):
    cluster = make_cluster(version)
    text = bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0))
    code, calls, err = run_decision(tmp_path, text, "init", ADDRESSES, answering=["10.0.0.12:6443", "10.0.0.10:6443"])
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm join --config kubeadm-join-full.yaml"]
    (used,) = [d for d in yaml.safe_load_all((tmp_path / "fake" / "kubeadm-config-used").read_text()) if d]
    assert used == bootstrap.join_documents(cluster, FIRST)[0]
    assert_known_fields(KUBEADM_FIELDS[used["apiVersion"]], used["kind"], used, used["kind"])


def test_script_joins_when_only_another_master_answers(tmp_path, first_text):
    # the API address (a floating IP on this very node) is silent; master 3 answers; the
    # join goes through once the API address answers again (the floating IP moved)
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "answering_plain").write_text("10.0.0.10:6443\n")
    code, calls, err = run_decision(tmp_path, first_text, "init", ADDRESSES, answering=["10.0.0.13:6443"])
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm join --config kubeadm-join-full.yaml"]
    assert "answers at 10.0.0.13:6443" in err
    code, calls, err = run_decision(
        tmp_path / "b", first_text, "init", ["10.0.0.10:6443", "[fd00::13]:6443"], ["[fd00::13]:6443"]
    )
    assert "answers at [fd00::13]:6443" in err
    assert kubeadm_calls(calls) == []


def test_script_never_initialises_beside_a_live_control_plane_even_if_the_join_cannot_go_through(tmp_path, first_text):
    # the API address is a floating IP on this very node (silent); master 3 answers: the
    # join has to go through the API address, which never answers: the script fails, no init
    code, calls, err = run_decision(tmp_path, first_text, "init", ADDRESSES, answering=["10.0.0.13:6443"])
    assert code == 1
    assert kubeadm_calls(calls) == []
    assert "did not answer in 30 minutes" in err and "move it to a running master" in err


def test_script_does_not_take_its_own_address_for_a_control_plane(tmp_path, first_text):
    # something answering at this node's own address (10.0.0.11) is not another control plane
    code, calls, err = run_decision(tmp_path, first_text, "init", ADDRESSES, answering=["10.0.0.11:6443"])
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm init --config kubeadm.yaml"]


def test_script_joins_when_a_peer_answers_only_in_a_later_round(tmp_path, first_text):
    # the peer comes up after the first round: the fake sleep makes it answer
    sleeper = '#!/bin/bash\necho "sleep $*" >> "$FAKE/calls"\necho 10.0.0.12:6443 > "$FAKE/answering"\n'
    calls = run_decision(tmp_path, first_text, "init", ADDRESSES)[1]
    assert kubeadm_calls(calls)[0].startswith("kubeadm init")
    (tmp_path / "fake" / "bin" / "sleep").write_text(sleeper)
    (tmp_path / "fake" / "answering").write_text("")
    (tmp_path / "fake" / "answering_plain").write_text("10.0.0.10:6443\n")
    (tmp_path / "fake" / "calls").write_text("")
    result = run_part(tmp_path, "%s:/usr/bin:/bin" % (tmp_path / "fake" / "bin"))
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "fake" / "calls").read_text().splitlines()
    assert kubeadm_calls(calls) == ["kubeadm join --config kubeadm-join-full.yaml"]
    assert "answers at 10.0.0.12:6443" in result.stderr


def test_script_without_curl_refuses_to_initialise_blindly(tmp_path, first_text):
    run_decision(tmp_path, first_text, "init", ADDRESSES)  # writes the fake tools and the part
    bare = tmp_path / "bare"
    bare.mkdir()
    for tool in ("awk", "cat", "rm"):
        (bare / tool).symlink_to(shutil.which(tool))
    for tool in ("kubeadm", "kubectl", "sleep", "hostname"):
        (bare / tool).symlink_to(tmp_path / "fake" / "bin" / tool)
    (tmp_path / "fake" / "calls").write_text("")
    result = run_part(tmp_path, str(bare))
    assert result.returncode == 1
    assert "curl is required" in result.stderr
    assert kubeadm_calls((tmp_path / "fake" / "calls").read_text().splitlines()) == []


def test_script_join_mode_never_looks_for_a_control_plane(tmp_path, creds):
    worker = bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0))
    code, calls, err = run_decision(tmp_path, worker, "join", ADDRESSES, answering=["10.0.0.10:6443"])
    assert code == 0, err
    assert kubeadm_calls(calls) == ["kubeadm join --config kubeadm.yaml"]
    assert not [c for c in calls if "--cacert" in c]


# ------------------------------------------------------------------ other masters and workers


def discovery_identity(text):
    return pki.read_kubeconfig(files_of(text)[bootstrap.DISCOVERY_KUBECONFIG]["content"])


def test_other_master_joins_as_control_plane_with_the_same_cas(tmp_path, creds):
    text = bootstrap.render_user_data(make_cluster(), OTHER_MASTER, creds, clock=Clock(T0))
    files = files_of(text)
    for name, content in creds.kubeadm_files().items():
        assert files["/etc/kubernetes/pki/" + name]["content"] == content
    (join,) = kubeadm_docs(text)
    assert join["controlPlane"] == {"localAPIEndpoint": {"bindPort": 6443}}
    assert "certificateKey" not in join["controlPlane"]
    assert join["discovery"] == {"file": {"kubeConfigPath": bootstrap.DISCOVERY_KUBECONFIG}}
    assert join["timeouts"] == {"discovery": bootstrap.DISCOVERY_TIMEOUT}
    identity = discovery_identity(text)
    cert = pki.load_certificate(identity["cert_pem"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:demo-master-1"
    assert openssl_verify(tmp_path, creds.ca.cert_pem, identity["cert_pem"], T0).returncode == 0
    assert parse(text)["runcmd"][0][:2] == [bootstrap.BOOTSTRAP_SCRIPT, "join"]


def test_worker_joins_with_its_own_client_certificate_and_no_ca_key(tmp_path, creds):
    text = bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0))
    files = files_of(text)
    assert not [p for p in files if p.startswith("/etc/kubernetes/pki/")]
    for secret in (creds.ca.key_pem, creds.etcd_ca.key_pem, creds.front_proxy_ca.key_pem, creds.sa_key_pem):
        assert secret not in text
        assert base64.b64encode(secret.encode()).decode() not in text
    assert files[bootstrap.DISCOVERY_KUBECONFIG]["permissions"] == "0600"
    (join,) = kubeadm_docs(text)
    assert "controlPlane" not in join
    assert join["nodeRegistration"]["name"] == "demo-default-worker-0"
    assert join["discovery"]["file"]["kubeConfigPath"] == bootstrap.DISCOVERY_KUBECONFIG
    assert "tlsBootstrapToken" not in join["discovery"] and "bootstrapToken" not in join["discovery"]
    identity = discovery_identity(text)
    assert identity["server"] == "https://10.0.0.10:6443"
    assert identity["ca_pem"] == creds.ca.cert_pem
    cert = pki.load_certificate(identity["cert_pem"])
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:demo-default-worker-0"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert pki.key_matches_certificate(identity["key_pem"], identity["cert_pem"])
    result = openssl_verify(tmp_path, creds.ca.cert_pem, identity["cert_pem"], T0)
    assert result.returncode == 0, result.stdout + result.stderr


def test_v1beta3_join_keeps_the_discovery_timeout_in_discovery(creds):
    (join,) = kubeadm_docs(bootstrap.render_user_data(make_cluster("v1.29.4"), WORKER, creds, clock=Clock(T0)))
    assert join["discovery"]["timeout"] == bootstrap.DISCOVERY_TIMEOUT and "timeouts" not in join


def test_scale_out_a_year_later_gives_a_valid_node_identity(tmp_path, creds):
    later = T0 + datetime.timedelta(days=365)
    text = bootstrap.render_user_data(make_cluster(), GPU, creds, clock=Clock(later))
    identity = discovery_identity(text)
    result = openssl_verify(tmp_path, creds.ca.cert_pem, identity["cert_pem"], later + datetime.timedelta(hours=1))
    assert result.returncode == 0, result.stdout + result.stderr
    assert pki.load_certificate(identity["cert_pem"]).not_valid_before_utc > T0 + datetime.timedelta(days=364)


# ------------------------------------------------------------------ node labels


def test_node_labels_from_template_cluster_and_nodegroup(creds):
    cluster = make_cluster()
    worker = node_labels_arg(kubeadm_docs(bootstrap.render_user_data(cluster, WORKER, creds, clock=Clock(T0)))[0])
    assert worker == {
        "example.com/team": "blue",
        "example.com/tier": "silver",  # the nodegroup overrides the cluster
        "coe.openstack.org/role": "worker",
        "coe.openstack.org/nodegroup": "default-worker",
    }
    gpu = node_labels_arg(kubeadm_docs(bootstrap.render_user_data(cluster, GPU, creds, clock=Clock(T0)))[0])
    assert gpu["example.com/gpu"] == "true" and gpu["example.com/tier"] == "gold"
    assert gpu["coe.openstack.org/nodegroup"] == "gpu"
    master = node_labels_arg(kubeadm_docs(bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0)))[0])
    assert master["coe.openstack.org/role"] == "master"
    # unprefixed labels are settings (Magnum's kube_tag...), not node labels
    assert "kube_tag" not in worker


@pytest.mark.parametrize(
    "labels",
    [
        {"example.com/x": "a\nruncmd: [reboot]"},
        {"example.com/x": "a,b=c"},
        {"example.com/x": "$(reboot)"},
        {"kubernetes.io/role": "x"},
        {"node-role.kubernetes.io/worker": ""},
        {"Bad_Prefix/x": "y"},
        {"example.com/" + "n" * 64: "y"},
    ],
)
def test_labels_that_would_break_or_inject_are_refused(creds, labels):
    with pytest.raises(ValidationError):
        bootstrap.render_user_data(make_cluster(labels=labels), WORKER, creds)


def test_allowed_kubelet_label_namespaces(creds):
    cluster = make_cluster(labels={"node.kubernetes.io/instance-type": "m1.large"})
    labels = node_labels_arg(kubeadm_docs(bootstrap.render_user_data(cluster, WORKER, creds, clock=Clock(T0)))[0])
    assert labels["node.kubernetes.io/instance-type"] == "m1.large"


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "Demo_1"},
        {"name": "demo\nruncmd"},
        {"api_address": None},
        {"api_address": "bad host!"},
        {"master_addresses": ["10.0.0.1; reboot"]},
        {"coe_version": "latest"},
    ],
)
def test_bad_cluster_fields_are_refused(creds, overrides):
    with pytest.raises(ValidationError):
        bootstrap.render_user_data(make_cluster(**overrides), WORKER, creds)


@pytest.mark.parametrize(
    "node",
    [
        dict(WORKER, role="boss"),
        dict(WORKER, first_master=True),
        dict(WORKER, name="Worker 1"),
        {"name": "x", "role": "worker"},
    ],
)
def test_bad_nodes_are_refused(creds, node):
    with pytest.raises(ValidationError):
        bootstrap.render_user_data(make_cluster(), node, creds)


# ------------------------------------------------------------------ size


@pytest.fixture(scope="module")
def largest():
    """The largest supported shape: RSA 4096 keys, 7 masters on IPv6, node names of the
    longest length a node certificate allows (52), and 30 node labels of maximum length."""
    settings = pki.PkiSettings(key_type="rsa", key_size=4096)
    creds = pki.generate_cluster_credentials(settings, clock=Clock(T0))
    name = "c" * 40
    labels = {"coe_pki_key_size": "4096", "cni_manifest_url": "https://example.com/" + "m" * 200 + ".yaml"}
    for i in range(30):
        labels["%s.example.com/%s" % ("p" * 40, ("l%02d" % i) * 21)] = "v" * 63
    cluster = make_cluster(
        "v1.34.1",
        name=name,
        api_address="https://[fd00:1234:5678:9abc:def0:1234:5678:9abc]:6443",
        master_addresses=["fd00:1234:5678:9abc:def0:1234:5678:%x" % i for i in range(7)],
        labels=labels,
        nodegroups=[dict(name="n" * 8, role="worker", labels={"example.com/ng": "x" * 63})],
    )
    return cluster, creds


@pytest.mark.parametrize("first_master,role", [(True, "master"), (False, "master"), (False, "worker")])
def test_user_data_fits_novas_limit_at_the_largest_shape_without_compression(tmp_path, largest, first_master, role):
    cluster, creds = largest
    node = dict(name=("c" * 40 + "-master-6") if role == "master" else "c" * 40 + "-nnnnnnnn-99", role=role)
    assert len(node["name"]) <= pki.MAX_NODE_NAME
    node.update(nodegroup="default-master" if role == "master" else "n" * 8, index=6, first_master=first_master)
    text = bootstrap.render_user_data(cluster, node, creds, clock=Clock(T0))
    assert bootstrap.user_data_size(text) <= bootstrap.NOVA_USER_DATA_LIMIT
    assert bootstrap.encode_user_data(text) == text.encode()
    result = cloud_init_schema(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_too_many_labels_for_heat_is_a_clear_error_and_nova_gets_gzip(tmp_path, creds):
    labels = {"%s.example.com/l%03d" % ("p" * 230, i): "v" * 63 for i in range(220)}
    cluster = make_cluster(labels=labels)
    with pytest.raises(CoeError, match="over Nova's limit"):
        bootstrap.render_user_data(cluster, WORKER, creds, clock=Clock(T0), allow_gzip=False)
    text = bootstrap.render_user_data(cluster, WORKER, creds, clock=Clock(T0))
    assert bootstrap.user_data_size(text) > bootstrap.NOVA_USER_DATA_LIMIT
    packed = bootstrap.encode_user_data(text)
    assert packed[:2] == b"\x1f\x8b" and bootstrap.user_data_size(packed) <= bootstrap.NOVA_USER_DATA_LIMIT
    result = cloud_init_schema(tmp_path, gzip.decompress(packed).decode())
    assert result.returncode == 0, result.stdout + result.stderr


def test_oversized_user_data_is_gzipped_for_nova_and_stays_readable():
    text = "#cloud-config\n" + yaml.safe_dump({"write_files": [{"path": "/x", "content": "a" * 60000}]})
    assert bootstrap.user_data_size(text) > bootstrap.NOVA_USER_DATA_LIMIT
    packed = bootstrap.encode_user_data(text)
    assert bootstrap.user_data_size(packed) <= bootstrap.NOVA_USER_DATA_LIMIT
    assert gzip.decompress(packed).decode() == text


def test_node_names_too_long_for_a_certificate_are_refused(creds):
    node = dict(WORKER, name="w" * (pki.MAX_NODE_NAME + 1))
    with pytest.raises(ValidationError, match="at most 52"):
        bootstrap.render_user_data(make_cluster(), node, creds)


def test_every_render_issues_a_fresh_node_identity(creds):
    a = discovery_identity(bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0)))
    b = discovery_identity(bootstrap.render_user_data(make_cluster(), WORKER, creds, clock=Clock(T0)))
    assert a["key_pem"] != b["key_pem"]


@pytest.mark.parametrize("role", sorted(NODES))
def test_user_data_text_is_the_same_with_or_without_libyaml(creds, monkeypatch, role):
    """libyaml renders 51 nodes' user-data ~15 times faster; the text a node gets must not change."""
    documents = []
    real = bootstrap._dump
    monkeypatch.setattr(bootstrap, "_dump", lambda doc: documents.append(doc) or real(doc))
    bootstrap.render_user_data(make_cluster(), NODES[role], creds, clock=Clock(T0))

    class PurePython(yaml.SafeDumper):
        pass

    PurePython.add_representer(str, bootstrap._Dumper.yaml_representers[str])
    assert documents
    for doc in documents:
        pure = yaml.dump(doc, Dumper=PurePython, default_flow_style=False, sort_keys=False, width=1000)
        assert real(doc) == pure


# ------------------------------------------------------------------ the endpoint: a VIP or a load balancer


def vip_cluster(**overrides):
    """Three masters behind a VIP (10.0.0.5) with a floating IP (203.0.113.7)."""
    fields = dict(api_address="https://203.0.113.7:6443", api_fixed_ip="10.0.0.5", master_count=3)
    fields.update(overrides)
    return make_cluster(**fields)


ENDPOINTS = dict(
    vip=vip_cluster(),
    load_balancer=vip_cluster(master_lb_enabled=True, api_endpoint="load_balancer"),
    vip_without_floating_ip=vip_cluster(api_address="https://10.0.0.5:6443"),
)


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
@pytest.mark.parametrize("role", sorted(NODES))
def test_endpoint_user_data_passes_cloud_init_schema_and_names_only_the_endpoint(tmp_path, creds, kind, role):
    cluster = ENDPOINTS[kind]
    text = bootstrap.render_user_data(cluster, NODES[role], creds, clock=Clock(T0))
    result = cloud_init_schema(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    # every node joins through the endpoint's fixed address, never a master's
    assert parse(text)["runcmd"][0][3] == "10.0.0.5:6443"
    assert discovery_identity(text)["server"] == "https://10.0.0.5:6443"
    docs = kubeadm_docs(text)
    if role == "first_master":
        config = docs[1]
        assert config["controlPlaneEndpoint"] == "10.0.0.5:6443"
        sans = config["apiServer"]["certSANs"]
        assert sans == sorted({"10.0.0.5", bootstrap.endpoint.api_host(cluster["api_address"])}, key=sans.index)
        assert not set(sans) & set(cluster["master_addresses"])
        # where a rebuilt first master looks for a running control plane: the endpoint first
        candidates = files_of(text)[bootstrap.CONTROL_PLANE_ADDRESSES]["content"].splitlines()
        assert candidates[0] == "10.0.0.5:6443"


def apiserver_certificate(tmp_path, creds, sans):
    """What kubeadm's ``certs apiserver`` phase makes from the certSANs: a serving
    certificate signed by the cluster CA, with its own defaults beside the extra SANs.
    Made and read with openssl, the way an operator checks the one a node has."""
    (tmp_path / "ca.crt").write_text(creds.ca.cert_pem)
    (tmp_path / "ca.key").write_text(creds.ca.key_pem)
    defaults = ["DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "IP:10.254.0.1"]
    ext = "subjectAltName=" + ",".join(defaults + ["IP:%s" % s for s in sans])
    (tmp_path / "ext.cnf").write_text(ext + "\n")

    def openssl(*args):
        return subprocess.run([OPENSSL, *args], capture_output=True, text=True, check=True, cwd=tmp_path).stdout

    key = ["-newkey", "rsa:2048", "-nodes", "-keyout", "apiserver.key"]
    openssl("req", "-new", *key, "-subj", "/CN=kube-apiserver", "-out", "apiserver.csr")
    sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf"]
    openssl("x509", "-req", "-in", "apiserver.csr", *sign, "-out", "apiserver.crt")
    return openssl("x509", "-in", "apiserver.crt", "-noout", "-text")


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
def test_the_api_certificate_names_the_endpoints_addresses(tmp_path, creds, kind):
    assert OPENSSL, "openssl is required for these tests"
    cluster = ENDPOINTS[kind]
    config = kubeadm_docs(bootstrap.render_user_data(cluster, FIRST, creds, clock=Clock(T0)))[1]
    text = apiserver_certificate(tmp_path, creds, config["apiServer"]["certSANs"])
    (line,) = [ln for ln in text.splitlines() if "IP Address:" in ln]
    ips = set(re.findall(r"IP Address:([0-9a-fA-F.:]+)", line))
    assert "10.0.0.5" in ips  # the VIP's / load balancer's fixed IP
    assert bootstrap.endpoint.api_host(cluster["api_address"]) in ips  # the floating IP (or the fixed one)
    assert not ips & set(cluster["master_addresses"]), "a master's own address is no endpoint"


def test_a_single_master_keeps_its_own_address_in_the_certificate(creds):
    config = kubeadm_docs(bootstrap.render_user_data(make_cluster(master_count=1), FIRST, creds, clock=Clock(T0)))[1]
    assert config["controlPlaneEndpoint"] == "10.0.0.10:6443"
    assert config["apiServer"]["certSANs"] == ["10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.13"]


def test_a_bad_endpoint_fixed_ip_is_refused(creds):
    with pytest.raises(ValidationError) as err:
        bootstrap.render_user_data(vip_cluster(api_fixed_ip="vip"), FIRST, creds, clock=Clock(T0))
    assert err.value.field == "api_fixed_ip"


@pytest.mark.parametrize("role", sorted(NODES))
def test_every_master_of_a_vip_cluster_runs_keepalived_holding_the_vip(creds, role):
    node = NODES[role]
    text = bootstrap.render_user_data(vip_cluster(), node, creds, clock=Clock(T0))
    files = files_of(text)
    lb = files_of(bootstrap.render_user_data(ENDPOINTS["load_balancer"], node, creds, clock=Clock(T0)))
    assert bootstrap.KEEPALIVED_MANIFEST not in lb  # a load balancer needs no keepalived
    if node["role"] != "master":
        assert bootstrap.KEEPALIVED_MANIFEST not in files
        return
    pod = yaml.safe_load(files[bootstrap.KEEPALIVED_MANIFEST]["content"])
    assert pod["kind"] == "Pod" and pod["spec"]["hostNetwork"] is True
    (container,) = pod["spec"]["containers"]
    assert container["image"] == bootstrap.DEFAULT_KEEPALIVED_IMAGE
    assert "NET_ADMIN" in container["securityContext"]["capabilities"]["add"]
    conf = files[bootstrap.KEEPALIVED_CONF]["content"]
    assert "    10.0.0.5/32\n" in conf  # the VIP, never a master's address
    assert "nopreempt" in conf and "state BACKUP" in conf and "interface @INTERFACE@" in conf
    router_id, _password = bootstrap.vrrp_identity(vip_cluster())
    assert "virtual_router_id %d\n" % router_id in conf and 1 <= router_id <= 255
    assert files[bootstrap.KEEPALIVED_CHECK]["permissions"] == "0755"
    # kubeadm accepts the manifests folder that holds the keepalived pod
    registration = kubeadm_docs(text)[0]["nodeRegistration"]
    assert registration["ignorePreflightErrors"] == [bootstrap.MANIFESTS_PREFLIGHT]


def test_the_vip_and_the_keepalived_image_are_checked(creds):
    with pytest.raises(ValidationError) as err:
        bootstrap.check_bootstrap_inputs(vip_cluster(api_fixed_ip=None))
    assert err.value.field == "api_fixed_ip"
    with pytest.raises(ValidationError) as err:
        bootstrap.check_bootstrap_inputs(vip_cluster(labels={"keepalived_image": "a b"}))
    assert err.value.field == "labels.keepalived_image"
