"""Cluster PKI: real certificates, checked with cryptography and with `openssl verify`."""

import datetime
import shutil
import subprocess

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.errors import CoeError, SecretError, ValidationError

T0 = datetime.datetime(2026, 11, 25, 8, 0, tzinfo=datetime.UTC)
KEY = "correct horse battery staple 42"
OPENSSL = shutil.which("openssl")


class FakeStore:
    """The store's secret API (put_secret / get_secret / delete_secrets) in memory."""

    def __init__(self):
        self.secrets = {}

    def put_secret(self, cluster_uuid, name, blob):
        assert isinstance(blob, bytes)
        self.secrets[(cluster_uuid, name)] = blob

    def get_secret(self, cluster_uuid, name):
        return self.secrets.get((cluster_uuid, name))

    def delete_secrets(self, cluster_uuid):
        for key in [k for k in self.secrets if k[0] == cluster_uuid]:
            del self.secrets[key]


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def creds():
    return pki.generate_cluster_credentials(pki.PkiSettings(), clock=Clock(T0))


def openssl_verify(tmp_path, ca_pem, cert_pem, at=None):
    assert OPENSSL, "openssl is required for these tests"
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "cert.pem"
    ca.write_text(ca_pem)
    cert.write_text(cert_pem)
    cmd = [OPENSSL, "verify", "-x509_strict", "-CAfile", str(ca)]
    if at is not None:
        cmd += ["-attime", str(int(at.timestamp()))]
    return subprocess.run([*cmd, str(cert)], capture_output=True, text=True, check=False)


def cn(cert):
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def orgs(cert):
    return [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


# ------------------------------------------------------------------ CAs


@pytest.mark.parametrize(
    "attr,common_name", [("ca", "kubernetes"), ("front_proxy_ca", "front-proxy-ca"), ("etcd_ca", "etcd-ca")]
)
def test_each_ca_is_a_self_signed_ca_like_kubeadms(tmp_path, creds, attr, common_name):
    ca = getattr(creds, attr)
    cert = ca.certificate
    assert cn(cert) == common_name
    assert cert.issuer == cert.subject
    basic = ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is True
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.digital_signature
    ext(cert, x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc - T0 == datetime.timedelta(days=pki.DEFAULT_CA_VALIDITY_DAYS)
    assert pki.key_matches_certificate(ca.key_pem, ca.cert_pem)
    # ECDSA P-256 by default; kubeadm reads SEC1 EC keys
    assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey) and ca.private_key.curve.name == "secp256r1"
    assert ca.key_pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    result = openssl_verify(tmp_path, ca.cert_pem, ca.cert_pem, at=T0)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rsa_stays_selectable_with_a_label(tmp_path):
    settings = pki.PkiSettings.from_labels({"coe_pki_key_type": "rsa"})
    assert (settings.key_type, settings.key_size, settings.kubeadm_encryption_algorithm()) == ("rsa", 2048, "RSA-2048")
    creds = pki.generate_cluster_credentials(settings, clock=Clock(T0))
    assert isinstance(creds.ca.private_key, rsa.RSAPrivateKey) and creds.ca.private_key.key_size == 2048
    # kubeadm reads PKCS#1 RSA keys
    assert creds.ca.key_pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    issued = pki.issue_node_certificate(creds, "n1", clock=Clock(T0))
    assert isinstance(pki.load_private_key(issued.key_pem), rsa.RSAPrivateKey)
    assert ext(pki.load_certificate(issued.cert_pem), x509.KeyUsage).value.key_encipherment
    assert openssl_verify(tmp_path, creds.ca.cert_pem, issued.cert_pem, at=T0).returncode == 0


def test_the_three_cas_and_the_sa_key_are_distinct(creds):
    fingerprints = {pki.certificate_fingerprint(c.cert_pem) for c in (creds.ca, creds.front_proxy_ca, creds.etcd_ca)}
    assert len(fingerprints) == 3
    keys = {creds.ca.key_pem, creds.front_proxy_ca.key_pem, creds.etcd_ca.key_pem, creds.sa_key_pem}
    assert len(keys) == 4


def test_service_account_key_pair_matches(creds):
    assert creds.sa_pub_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pki.public_key_pem(pki.load_private_key(creds.sa_key_pem)) == creds.sa_pub_pem


def test_kubeadm_file_layout(creds):
    files = creds.kubeadm_files()
    assert sorted(files) == sorted(
        [
            "ca.crt",
            "ca.key",
            "front-proxy-ca.crt",
            "front-proxy-ca.key",
            "etcd/ca.crt",
            "etcd/ca.key",
            "sa.key",
            "sa.pub",
        ]
    )
    # no pre-made serving certificates: kubeadm issues those from the CAs
    assert "apiserver.crt" not in files and "etcd/server.crt" not in files


def test_repr_never_shows_key_material(creds):
    assert "PRIVATE" not in repr(creds) and creds.ca_fingerprint in repr(creds)


# ------------------------------------------------------------------ node certificates


def test_node_certificate_identity_and_usages(tmp_path, creds):
    issued = pki.issue_node_certificate(creds, "demo-default-worker-3", clock=Clock(T0))
    cert = pki.load_certificate(issued.cert_pem)
    assert cn(cert) == "system:node:demo-default-worker-3"
    assert orgs(cert) == ["system:nodes"]
    assert ext(cert, x509.BasicConstraints).value.ca is False
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    aki = ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == ext(creds.ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert issued.not_after - T0 == datetime.timedelta(days=pki.DEFAULT_NODE_CERT_VALIDITY_DAYS)
    assert pki.key_matches_certificate(issued.key_pem, issued.cert_pem)
    ok = openssl_verify(tmp_path, creds.ca.cert_pem, issued.cert_pem, at=T0)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # signed by the cluster CA only: the etcd CA does not vouch for it
    wrong = openssl_verify(tmp_path, creds.etcd_ca.cert_pem, issued.cert_pem, at=T0)
    assert wrong.returncode != 0


def test_each_node_gets_its_own_key(creds):
    a = pki.issue_node_certificate(creds, "demo-default-worker-0", clock=Clock(T0))
    b = pki.issue_node_certificate(creds, "demo-default-worker-0", clock=Clock(T0))
    assert a.key_pem != b.key_pem and a.cert_pem != b.cert_pem


def test_scale_out_a_year_later_still_issues_valid_node_certificates(tmp_path):
    store = FakeStore()
    box = secrets.SecretBox(KEY)
    created = pki.ensure_cluster_credentials(store, "uuid-1", box, "demo", clock=Clock(T0))
    later = T0 + datetime.timedelta(days=365)
    loaded = pki.load_cluster_credentials(store, "uuid-1", secrets.SecretBox(KEY))
    assert loaded.ca_fingerprint == created.ca_fingerprint
    issued = pki.issue_node_certificate(loaded, "demo-default-worker-9", clock=Clock(later))
    assert issued.not_before <= later < issued.not_after
    result = openssl_verify(tmp_path, loaded.ca.cert_pem, issued.cert_pem, at=later + datetime.timedelta(minutes=1))
    assert result.returncode == 0, result.stdout + result.stderr
    # and a certificate issued at create time would have expired by then
    old = pki.issue_node_certificate(loaded, "demo-default-worker-0", clock=Clock(T0))
    assert openssl_verify(tmp_path, loaded.ca.cert_pem, old.cert_pem, at=later).returncode != 0


def test_leaf_validity_is_cut_to_the_ca_and_refused_after_it(creds):
    near_end = creds.ca.not_after - datetime.timedelta(days=2)
    issued = pki.issue_node_certificate(creds, "n1", clock=Clock(near_end))
    assert issued.not_after == creds.ca.not_after
    with pytest.raises(CoeError, match="cluster CA expired"):
        pki.issue_node_certificate(creds, "n1", clock=Clock(creds.ca.not_after + datetime.timedelta(seconds=1)))


@pytest.mark.parametrize("name", ["", "Upper", "a b", "x;rm -rf", "-lead"])
def test_bad_node_names_are_refused(creds, name):
    with pytest.raises(ValidationError):
        pki.issue_node_certificate(creds, name)


def test_naive_clock_is_refused(creds):
    with pytest.raises(CoeError, match="aware"):
        pki.issue_node_certificate(creds, "n1", clock=lambda: datetime.datetime(2026, 1, 1))


# ------------------------------------------------------------------ admin certificates


@pytest.mark.parametrize(
    "version,group",
    [
        ("v1.27.3", "system:masters"),
        ("1.28", "system:masters"),
        ("v1.29.0", "kubeadm:cluster-admins"),
        ("1.31.2", "kubeadm:cluster-admins"),
    ],
)
def test_admin_certificate_group_follows_the_kubernetes_version(tmp_path, creds, version, group):
    issued = pki.issue_admin_certificate(
        creds, version, user="alice", validity=datetime.timedelta(hours=8), clock=Clock(T0)
    )
    cert = pki.load_certificate(issued.cert_pem)
    assert cn(cert) == "alice" and orgs(cert) == [group]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert issued.not_after == T0 + datetime.timedelta(hours=8)
    assert openssl_verify(tmp_path, creds.ca.cert_pem, issued.cert_pem, at=T0).returncode == 0
    assert openssl_verify(tmp_path, creds.ca.cert_pem, issued.cert_pem, at=T0 + datetime.timedelta(hours=9)).returncode


def test_admin_user_cannot_pose_as_a_node(creds):
    with pytest.raises(ValidationError):
        pki.issue_admin_certificate(creds, "1.31", user="system:node:x")


def test_bad_versions_are_refused():
    for bad in ("", "latest", "1", None):
        with pytest.raises(ValidationError):
            pki.admin_group(bad)


# ------------------------------------------------------------------ settings


def test_ecdsa_settings_make_ecdsa_keys_without_key_encipherment(tmp_path):
    settings = pki.PkiSettings.from_labels({"coe_pki_key_type": "ecdsa"})
    assert settings.key_size == 256 and settings.kubeadm_encryption_algorithm() == "ECDSA-P256"
    creds = pki.generate_cluster_credentials(settings, clock=Clock(T0))
    assert isinstance(creds.ca.private_key, ec.EllipticCurvePrivateKey)
    assert creds.ca.key_pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    issued = pki.issue_node_certificate(creds, "n1", clock=Clock(T0))
    cert = pki.load_certificate(issued.cert_pem)
    assert not ext(cert, x509.KeyUsage).value.key_encipherment
    assert openssl_verify(tmp_path, creds.ca.cert_pem, issued.cert_pem, at=T0).returncode == 0


def test_p384_signs_with_sha384():
    creds = pki.generate_cluster_credentials(pki.PkiSettings(key_type="ecdsa", key_size=384), clock=Clock(T0))
    assert isinstance(creds.ca.certificate.signature_hash_algorithm, hashes.SHA384)


def test_settings_from_labels():
    settings = pki.PkiSettings.from_labels(
        {"coe_pki_key_size": "3072", "coe_pki_ca_validity_days": "730", "coe_pki_node_cert_validity_days": "7"}
    )
    assert (settings.key_type, settings.key_size, settings.ca_validity_days, settings.node_cert_validity_days) == (
        "rsa",
        3072,
        730,
        7,
    )
    assert settings.kubeadm_encryption_algorithm() == "RSA-3072"
    assert pki.PkiSettings.from_labels({}) == pki.PkiSettings()


def test_default_keys_are_ecdsa_p256_for_the_cas_and_every_node():
    """A cluster without coe_pki_* labels gets ECDSA P-256: a node's key costs ~0.1 ms, not RSA's ~100 ms."""
    settings = pki.PkiSettings.from_labels({"kube_tag": "v1.31.1"})
    assert (settings.key_type, settings.key_size, settings.kubeadm_encryption_algorithm()) == (
        "ecdsa",
        256,
        "ECDSA-P256",
    )
    creds = pki.generate_cluster_credentials(settings, clock=Clock(T0))
    for i in range(3):
        issued = pki.issue_node_certificate(creds, "k1-default-worker-%d" % i, clock=Clock(T0))
        key = pki.load_private_key(issued.key_pem)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
        assert issued.key_pem.startswith("-----BEGIN EC PRIVATE KEY-----")
        assert pki.verify_issued_by(issued.cert_pem, creds.ca.cert_pem)


@pytest.mark.parametrize(
    "labels,expected",
    [
        ({"coe_pki_key_size": "2048"}, ("rsa", 2048)),
        ({"coe_pki_key_size": "4096"}, ("rsa", 4096)),
        ({"coe_pki_key_size": "384"}, ("ecdsa", 384)),
        ({"coe_pki_key_type": "ECDSA"}, ("ecdsa", 256)),
    ],
)
def test_a_key_size_alone_implies_its_key_type(labels, expected):
    """Labels written when RSA was the default (a size only) still mean RSA."""
    settings = pki.PkiSettings.from_labels(labels)
    assert (settings.key_type, settings.key_size) == expected


def test_a_clusters_stored_key_type_is_kept_when_the_default_changes():
    """An existing cluster keeps the key type its CAs were made with (RSA before the default changed)."""
    store = FakeStore()
    box = secrets.SecretBox(KEY)
    pki.ensure_cluster_credentials(store, "uuid-1", box, "old", settings=pki.PkiSettings(key_type="rsa"))
    again = pki.ensure_cluster_credentials(store, "uuid-1", box, "old", settings=pki.PkiSettings())
    assert (again.settings.key_type, again.settings.key_size) == ("rsa", 2048)
    issued = pki.issue_node_certificate(again, "old-default-worker-1", clock=Clock(T0))
    assert isinstance(pki.load_private_key(issued.key_pem), rsa.RSAPrivateKey)


def test_the_ca_key_is_parsed_once_for_many_node_certificates(monkeypatch):
    """Loading an RSA CA key checks it (tens of ms): a create of 50 nodes must not pay that 50 times."""
    creds = pki.generate_cluster_credentials(pki.PkiSettings(key_type="rsa"), clock=Clock(T0))
    loads = []
    real = pki.load_private_key
    monkeypatch.setattr(pki, "load_private_key", lambda pem: loads.append(pem) or real(pem))
    issued = [pki.issue_node_certificate(creds, "n%d" % i, clock=Clock(T0)) for i in range(5)]
    assert len(loads) == 1
    assert all(pki.verify_issued_by(i.cert_pem, creds.ca.cert_pem) for i in issued)


@pytest.mark.parametrize(
    "labels,field",
    [
        ({"coe_pki_key_type": "dsa"}, "coe_pki_key_type"),
        ({"coe_pki_key_size": "1024"}, "coe_pki_key_size"),
        ({"coe_pki_key_type": "ecdsa", "coe_pki_key_size": "2048"}, "coe_pki_key_size"),
        ({"coe_pki_key_size": "big"}, "coe_pki_key_size"),
        ({"coe_pki_node_cert_validity_days": "0"}, "coe_pki_node_cert_validity_days"),
        (
            {"coe_pki_ca_validity_days": "10", "coe_pki_node_cert_validity_days": "30"},
            "coe_pki_node_cert_validity_days",
        ),
    ],
)
def test_bad_settings_name_the_label(labels, field):
    with pytest.raises(ValidationError) as err:
        pki.PkiSettings.from_labels(labels)
    assert err.value.field == field


def test_ca_validity_setting_is_applied():
    creds = pki.generate_cluster_credentials(pki.PkiSettings(ca_validity_days=400), clock=Clock(T0))
    assert creds.etcd_ca.not_after - T0 == datetime.timedelta(days=400)


# ------------------------------------------------------------------ store


def test_ensure_creates_once_encrypted_then_loads():
    store = FakeStore()
    first = pki.ensure_cluster_credentials(store, "uuid-1", secrets.SecretBox(KEY), "demo", clock=Clock(T0))
    assert first.created
    blob = store.get_secret("uuid-1", pki.SECRET_NAME)
    assert b"PRIVATE KEY" not in blob and b"BEGIN" not in blob
    again = pki.ensure_cluster_credentials(store, "uuid-1", secrets.SecretBox(KEY), "demo")
    assert not again.created
    assert again.ca_fingerprint == first.ca_fingerprint
    assert again.kubeadm_files() == first.kubeadm_files()
    assert again.settings == first.settings


def test_settings_are_kept_with_the_credentials():
    store = FakeStore()
    settings = pki.PkiSettings(key_type="ecdsa", key_size=256)
    pki.ensure_cluster_credentials(store, "u", secrets.SecretBox(KEY), settings=settings)
    assert pki.load_cluster_credentials(store, "u", secrets.SecretBox(KEY)).settings == settings


def test_wrong_key_fails_clearly_and_creates_nothing():
    store = FakeStore()
    pki.ensure_cluster_credentials(store, "uuid-1", secrets.SecretBox(KEY), "demo")
    before = dict(store.secrets)
    with pytest.raises(SecretError) as err:
        pki.ensure_cluster_credentials(store, "uuid-1", secrets.SecretBox("another key, long enough"), "demo")
    assert "demo" in str(err.value) and "not the key" in str(err.value)
    assert "another key" not in str(err.value)
    # a new cluster with the wrong key is refused too, before anything is generated
    with pytest.raises(SecretError):
        pki.ensure_cluster_credentials(store, "uuid-2", secrets.SecretBox("another key, long enough"), "other")
    assert store.secrets == before
    with pytest.raises(SecretError):
        pki.load_cluster_credentials(store, "uuid-1", secrets.SecretBox("another key, long enough"))


def test_purge_drops_the_cluster_secrets_only():
    store = FakeStore()
    pki.ensure_cluster_credentials(store, "a", secrets.SecretBox(KEY))
    pki.ensure_cluster_credentials(store, "b", secrets.SecretBox(KEY))
    pki.purge_cluster_credentials(store, "a")
    assert pki.load_cluster_credentials(store, "a", secrets.SecretBox(KEY)) is None
    assert pki.load_cluster_credentials(store, "b", secrets.SecretBox(KEY)) is not None
    pki.purge_cluster_credentials(store, "a")  # idempotent


# ------------------------------------------------------------------ kubeconfig


def test_kubeconfig_round_trip(creds):
    issued = pki.issue_admin_certificate(creds, "1.31", clock=Clock(T0))
    text = pki.kubeconfig("demo", "https://10.0.0.5:6443", creds.ca.cert_pem, issued.cert_pem, issued.key_pem, "adm")
    parsed = pki.read_kubeconfig(text)
    assert parsed == dict(
        cluster_name="demo",
        server="https://10.0.0.5:6443",
        ca_pem=creds.ca.cert_pem,
        cert_pem=issued.cert_pem,
        key_pem=issued.key_pem,
        user="adm",
    )
    assert pki.verify_issued_by(parsed["cert_pem"], creds.ca.cert_pem)
    assert not pki.verify_issued_by(parsed["cert_pem"], creds.etcd_ca.cert_pem)


def test_kubeconfig_text_is_the_same_with_or_without_libyaml(creds, monkeypatch):
    """libyaml writes kubeconfigs faster; the files (and so kubeconfig idempotence) must not change."""
    issued = pki.issue_admin_certificate(creds, "1.31", clock=Clock(T0))
    args = ("demo", "https://[fd00::1]:6443", creds.ca.cert_pem, issued.cert_pem, issued.key_pem, "adm")
    fast = pki.kubeconfig(*args)
    monkeypatch.setattr(pki, "_SAFE_DUMPER", yaml.SafeDumper)
    assert pki.kubeconfig(*args) == fast


class RacingStore(FakeStore):
    """A store where another runner creates the secret between our read and our write;
    ``add_secret`` inserts only when absent, as the real store's should."""

    def __init__(self, other_box, with_add=True):
        super().__init__()
        self.other_box = other_box
        self.other = None
        if with_add:
            self.add_secret = self._add_secret

    def _race(self, cluster_uuid, name):
        if name == pki.SECRET_NAME and (cluster_uuid, name) not in self.secrets:
            self.other = pki.generate_cluster_credentials()
            self.secrets[(cluster_uuid, name)] = self.other_box.seal(cluster_uuid, name, self.other.to_json())

    def _add_secret(self, cluster_uuid, name, blob):
        self._race(cluster_uuid, name)
        if (cluster_uuid, name) in self.secrets:
            return False
        self.secrets[(cluster_uuid, name)] = blob
        return True


def test_two_runners_creating_at_once_agree_on_one_ca():
    store = RacingStore(secrets.SecretBox(KEY))
    mine = pki.ensure_cluster_credentials(store, "u", secrets.SecretBox(KEY), "demo")
    assert mine.ca_fingerprint == store.other.ca_fingerprint
    loaded = pki.load_cluster_credentials(store, "u", secrets.SecretBox(KEY))
    assert loaded.ca_fingerprint == mine.ca_fingerprint


def test_without_add_secret_the_stored_blob_is_read_back():
    store = RacingStore(secrets.SecretBox(KEY), with_add=False)
    original_put = store.put_secret

    def put_then_overwritten(cluster_uuid, name, blob):
        original_put(cluster_uuid, name, blob)
        if name == pki.SECRET_NAME:  # the other runner writes right after us
            store.other = pki.generate_cluster_credentials()
            other_blob = store.other_box.seal(cluster_uuid, name, store.other.to_json())
            store.secrets[(cluster_uuid, name)] = other_blob

    store.put_secret = put_then_overwritten
    mine = pki.ensure_cluster_credentials(store, "u", secrets.SecretBox(KEY), "demo")
    assert mine.ca_fingerprint == store.other.ca_fingerprint
