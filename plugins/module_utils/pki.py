# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Cluster PKI: the certificate authorities and identities of one cluster.

Plain Python (``cryptography`` and ``yaml``, no ansible, no openstack).

What the rest of the collection calls
=====================================

``ensure_cluster_credentials(store, cluster_uuid, secret_box, cluster_name=None,
settings=None, clock=None) -> ClusterCredentials``
    At create (front door): loads the cluster's credentials from the store, or, the
    first time, generates them and stores them encrypted. Never regenerates.
    ``settings`` defaults to ``PkiSettings.from_labels(cluster["labels"])``.
    ``created`` on the result says whether this call generated them.

``load_cluster_credentials(store, cluster_uuid, secret_box) -> ClusterCredentials | None``
    Read-only (check mode, scale-out, kubeconfig). A wrong key raises SecretError
    before anything is sent to a cloud.

``purge_cluster_credentials(store, cluster_uuid) -> None``
    At delete, once the cloud has nothing left: drops every secret of the cluster.
    The caller records an event ("credentials purged"), never the material.

``issue_node_certificate(credentials, node_name, clock=None) -> IssuedCertificate``
    Client certificate CN ``system:node:<name>``, O ``system:nodes``, signed by the
    cluster CA. bootstrap.render_user_data calls it for every node it renders.

``issue_admin_certificate(credentials, coe_version, user="kubernetes-admin",
validity=timedelta(hours=24), clock=None) -> IssuedCertificate``
    Client certificate for a human admin: O ``kubeadm:cluster-admins`` from
    Kubernetes 1.29, ``system:masters`` before (``admin_group(coe_version)``).

``kubeconfig(cluster_name, server, ca_pem, cert_pem, key_pem, user) -> str``
    A kubeconfig YAML document embedding the CA and the client credentials.

What is generated per cluster (kubeadm's file names)
----------------------------------------------------

==========================  ======================  =====================================
material                    kubeadm file            use
==========================  ======================  =====================================
cluster CA (CN kubernetes)  pki/ca.crt, ca.key      API server, kubelets, clients
front-proxy CA              front-proxy-ca.*        aggregation layer
etcd CA                     etcd/ca.*               etcd server, peer, clients
service-account key pair    sa.key, sa.pub          signs service-account tokens
==========================  ======================  =====================================

Serving certificates (API server, etcd) are NOT pre-made: kubeadm issues them on each
master from the CA files, which is what kubeadm does when the CA files already exist.

Settings (cluster labels, see ``PkiSettings``): ``coe_pki_key_type`` (``ecdsa``, the
default, | ``rsa``), ``coe_pki_key_size`` (ECDSA 256/384, default 256; RSA 2048/3072/4096,
default 2048; a size alone implies its type), ``coe_pki_ca_validity_days`` (3650),
``coe_pki_node_cert_validity_days`` (30). ECDSA P-256 is the default because every node's
user-data carries a key of its own: 51 ECDSA keys take about a millisecond, 51 RSA-2048 keys
several seconds of the controller's CPU.

The clock is any callable returning an aware ``datetime``; tests move it a year ahead.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field

from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    CoeError,
    SecretError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.validate import parse_coe_version
from ansible_collections.coe.openstack.plugins.module_utils.secrets import (
    check_secret_key,
    put_secret_once,
)
from ansible_collections.coe.openstack.plugins.module_utils.secrets import (
    require_cryptography as _require_cryptography,
)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:  # pragma: no cover - secrets.py says the library is missing (HAS_CRYPTOGRAPHY)
    x509 = hashes = serialization = ec = rsa = ExtendedKeyUsageOID = NameOID = None

try:
    import yaml

    HAS_YAML = True
    # libyaml's emitter when PyYAML has it: the same text, 20 times faster (every worker's
    # user-data carries a kubeconfig, so a 50-worker create writes 50 of them)
    _SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
except ImportError:  # pragma: no cover
    HAS_YAML = False
    _SAFE_DUMPER = None

#: Name of the one store secret holding a cluster's PKI (JSON, encrypted).
SECRET_NAME = "pki"
#: Format version of that JSON document.
PKI_FORMAT = 1

RSA_SIZES = (2048, 3072, 4096)
ECDSA_SIZES = (256, 384)
DEFAULT_KEY_TYPE = "ecdsa"
#: The size of each key type when the labels name none.
DEFAULT_KEY_SIZES = {"rsa": 2048, "ecdsa": 256}
DEFAULT_KEY_SIZE = DEFAULT_KEY_SIZES[DEFAULT_KEY_TYPE]
DEFAULT_CA_VALIDITY_DAYS = 3650
DEFAULT_NODE_CERT_VALIDITY_DAYS = 30
DEFAULT_ADMIN_VALIDITY = datetime.timedelta(hours=24)
#: Certificates start a little in the past so that clock skew between the controller
#: and the cluster does not make a fresh certificate "not yet valid".
BACKDATE = datetime.timedelta(minutes=5)

ADMIN_GROUP_129 = "kubeadm:cluster-admins"
ADMIN_GROUP_OLD = "system:masters"
NODE_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
#: X.509 limits a common name to 64 characters; "system:node:" takes 12 of them.
MAX_NODE_NAME = 64 - len(NODE_USER_PREFIX)

_LABEL_PREFIX = "coe_pki_"


def utcnow():
    """The default clock: an aware UTC datetime."""
    return datetime.datetime.now(datetime.UTC)


def require_cryptography():
    """Raise a CoeError naming the missing library (modules turn it into fail_json)."""
    _require_cryptography("for cluster credentials", CoeError)


def _now(clock):
    now = (clock or utcnow)()
    if now.tzinfo is None:
        raise CoeError("the PKI clock must return an aware datetime")
    return now.astimezone(datetime.UTC)


def admin_group(coe_version):
    """The group an admin client certificate carries for this Kubernetes version."""
    return ADMIN_GROUP_129 if parse_coe_version(coe_version) >= (1, 29) else ADMIN_GROUP_OLD


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PkiSettings:
    """Key type, size and validities for one cluster (from its labels).

    ``key_size`` None is the key type's default size (``DEFAULT_KEY_SIZES``).
    """

    key_type: str = DEFAULT_KEY_TYPE
    key_size: int | None = None
    ca_validity_days: int = DEFAULT_CA_VALIDITY_DAYS
    node_cert_validity_days: int = DEFAULT_NODE_CERT_VALIDITY_DAYS

    def __post_init__(self):
        if self.key_type not in ("rsa", "ecdsa"):
            raise ValidationError(_LABEL_PREFIX + "key_type", "must be 'ecdsa' or 'rsa', got %r" % (self.key_type,))
        if self.key_size is None:
            object.__setattr__(self, "key_size", DEFAULT_KEY_SIZES[self.key_type])
        sizes = RSA_SIZES if self.key_type == "rsa" else ECDSA_SIZES
        if self.key_size not in sizes:
            raise ValidationError(
                _LABEL_PREFIX + "key_size",
                "%s keys must be one of %s, got %r" % (self.key_type, ", ".join(map(str, sizes)), self.key_size),
            )
        if not 1 <= self.ca_validity_days <= 36500:
            raise ValidationError(_LABEL_PREFIX + "ca_validity_days", "must be between 1 and 36500")
        if not 1 <= self.node_cert_validity_days <= 3650:
            raise ValidationError(_LABEL_PREFIX + "node_cert_validity_days", "must be between 1 and 3650")
        if self.node_cert_validity_days >= self.ca_validity_days:
            raise ValidationError(
                _LABEL_PREFIX + "node_cert_validity_days", "must be shorter than coe_pki_ca_validity_days"
            )

    @classmethod
    def from_labels(cls, labels=None):
        """Read ``coe_pki_*`` labels (strings, as Magnum labels are); defaults otherwise.

        Without ``coe_pki_key_type``, a ``coe_pki_key_size`` too large for an elliptic
        curve (2048, 3072, 4096, ...) means RSA, as it did when RSA was the default; a
        smaller size, or none, means ECDSA.
        """
        labels = labels or {}
        kwargs = {}
        key_type = labels.get(_LABEL_PREFIX + "key_type")
        if key_type is not None:
            kwargs["key_type"] = str(key_type).strip().lower()
        for name in ("key_size", "ca_validity_days", "node_cert_validity_days"):
            value = labels.get(_LABEL_PREFIX + name)
            if value is None:
                continue
            try:
                kwargs[name] = int(str(value).strip())
            except ValueError:
                raise ValidationError(_LABEL_PREFIX + name, "must be an integer, got %r" % (value,)) from None
        if "key_type" not in kwargs and kwargs.get("key_size", 0) > max(ECDSA_SIZES):
            kwargs["key_type"] = "rsa"
        return cls(**kwargs)

    def to_dict(self):
        return dict(
            key_type=self.key_type,
            key_size=self.key_size,
            ca_validity_days=self.ca_validity_days,
            node_cert_validity_days=self.node_cert_validity_days,
        )

    def kubeadm_encryption_algorithm(self):
        """The value of kubeadm v1beta4's ClusterConfiguration.encryptionAlgorithm."""
        if self.key_type == "rsa":
            return "RSA-%d" % self.key_size
        return "ECDSA-P%d" % self.key_size


# --------------------------------------------------------------------------- keys


def generate_private_key(key_type=DEFAULT_KEY_TYPE, key_size=DEFAULT_KEY_SIZE):
    require_cryptography()
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    curve = {256: ec.SECP256R1, 384: ec.SECP384R1}[key_size]
    return ec.generate_private_key(curve())


def private_key_pem(key):
    """PEM the way kubeadm writes keys: PKCS#1 ``RSA PRIVATE KEY`` / SEC1 ``EC PRIVATE KEY``."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_pem(key):
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def load_private_key(pem):
    require_cryptography()
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)


def load_certificate(pem):
    require_cryptography()
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def certificate_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_fingerprint(pem):
    """SHA-256 of the DER certificate, hex: identifies a CA without revealing anything."""
    return load_certificate(pem).fingerprint(hashes.SHA256()).hex()


def _signature_hash(key):
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _not_after(cert):
    return cert.not_valid_after_utc


def _not_before(cert):
    return cert.not_valid_before_utc


# --------------------------------------------------------------------------- certificates


@dataclass
class CertificateAuthority:
    """A CA certificate and its private key, both PEM."""

    cert_pem: str
    key_pem: str
    # the parsed certificate and key, made on first use: loading an RSA key checks it,
    # which costs tens of milliseconds, and a create signs one certificate per node
    _parsed: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def certificate(self):
        if "cert" not in self._parsed:
            self._parsed["cert"] = load_certificate(self.cert_pem)
        return self._parsed["cert"]

    @property
    def private_key(self):
        if "key" not in self._parsed:
            self._parsed["key"] = load_private_key(self.key_pem)
        return self._parsed["key"]

    @property
    def not_after(self):
        return _not_after(self.certificate)

    def to_dict(self):
        return dict(cert=self.cert_pem, key=self.key_pem)

    @classmethod
    def from_dict(cls, data):
        return cls(cert_pem=data["cert"], key_pem=data["key"])


@dataclass
class IssuedCertificate:
    """A leaf certificate with its key. ``not_after`` is an aware UTC datetime."""

    cert_pem: str
    key_pem: str
    not_before: datetime.datetime
    not_after: datetime.datetime


def _name(common_name, organizations=()):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _key_usage(key_encipherment, key_cert_sign=False):
    """A KeyUsage with digitalSignature and the usages given, nothing else."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def create_ca(common_name, settings, clock=None):
    """A self-signed CA like kubeadm's (CA:TRUE, keyCertSign, digitalSignature, keyEncipherment)."""
    require_cryptography()
    now = _now(clock)
    key = generate_private_key(settings.key_type, settings.key_size)
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=settings.ca_validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(key_encipherment=True, key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, _signature_hash(key))
    )
    return CertificateAuthority(cert_pem=certificate_pem(cert), key_pem=private_key_pem(key))


def issue_client_certificate(ca, common_name, organizations, validity, key_type, key_size, clock=None):
    """A client-auth leaf certificate signed by ``ca``, valid for ``validity`` from now.

    The validity is cut to the CA's own expiry, and refused when the CA has expired.
    """
    require_cryptography()
    now = _now(clock)
    ca_cert = ca.certificate
    ca_key = ca.private_key
    ca_not_after = _not_after(ca_cert)
    if ca_not_after <= now:
        raise CoeError(
            "The cluster CA expired on %s: no certificate can be issued. Rotate the cluster CA."
            % ca_not_after.isoformat()
        )
    not_after = min(now + validity, ca_not_after)
    key = generate_private_key(key_type, key_size)
    is_rsa = key_type == "rsa"
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - BACKDATE, _not_before(ca_cert)))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(key_encipherment=is_rsa), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, _signature_hash(ca_key))
    )
    return IssuedCertificate(
        cert_pem=certificate_pem(cert),
        key_pem=private_key_pem(key),
        not_before=_not_before(cert),
        not_after=_not_after(cert),
    )


# --------------------------------------------------------------------------- the cluster's credentials


@dataclass
class ClusterCredentials:
    """Everything secret about one cluster. Never log or return an instance."""

    ca: CertificateAuthority
    front_proxy_ca: CertificateAuthority
    etcd_ca: CertificateAuthority
    sa_key_pem: str
    sa_pub_pem: str
    settings: PkiSettings = field(default_factory=PkiSettings)
    created_at: str = ""
    created: bool = False

    def __repr__(self):  # never print key material by accident
        return "<ClusterCredentials ca=%s created_at=%s>" % (self.ca_fingerprint, self.created_at)

    @property
    def ca_fingerprint(self):
        return certificate_fingerprint(self.ca.cert_pem)

    def kubeadm_files(self):
        """{path relative to /etc/kubernetes/pki: content} as kubeadm expects them on masters."""
        return {
            "ca.crt": self.ca.cert_pem,
            "ca.key": self.ca.key_pem,
            "front-proxy-ca.crt": self.front_proxy_ca.cert_pem,
            "front-proxy-ca.key": self.front_proxy_ca.key_pem,
            "etcd/ca.crt": self.etcd_ca.cert_pem,
            "etcd/ca.key": self.etcd_ca.key_pem,
            "sa.key": self.sa_key_pem,
            "sa.pub": self.sa_pub_pem,
        }

    def to_json(self):
        return json.dumps(
            dict(
                format=PKI_FORMAT,
                created_at=self.created_at,
                settings=self.settings.to_dict(),
                ca=self.ca.to_dict(),
                front_proxy_ca=self.front_proxy_ca.to_dict(),
                etcd_ca=self.etcd_ca.to_dict(),
                sa=dict(key=self.sa_key_pem, pub=self.sa_pub_pem),
            ),
            sort_keys=True,
        ).encode("utf-8")

    @classmethod
    def from_json(cls, data):
        try:
            doc = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
            if doc.get("format") != PKI_FORMAT:
                raise ValueError("unknown format %r" % (doc.get("format"),))
            return cls(
                ca=CertificateAuthority.from_dict(doc["ca"]),
                front_proxy_ca=CertificateAuthority.from_dict(doc["front_proxy_ca"]),
                etcd_ca=CertificateAuthority.from_dict(doc["etcd_ca"]),
                sa_key_pem=doc["sa"]["key"],
                sa_pub_pem=doc["sa"]["pub"],
                settings=PkiSettings(**doc["settings"]),
                created_at=doc.get("created_at", ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SecretError("The stored cluster credentials are unreadable: %s" % exc) from None


def generate_cluster_credentials(settings=None, clock=None):
    """New CAs and service-account keys for one cluster (nothing is stored)."""
    require_cryptography()
    settings = settings or PkiSettings()
    now = _now(clock)
    sa_key = generate_private_key(settings.key_type, settings.key_size)
    return ClusterCredentials(
        ca=create_ca("kubernetes", settings, clock),
        front_proxy_ca=create_ca("front-proxy-ca", settings, clock),
        etcd_ca=create_ca("etcd-ca", settings, clock),
        sa_key_pem=private_key_pem(sa_key),
        sa_pub_pem=public_key_pem(sa_key),
        settings=settings,
        created_at=now.isoformat(),
        created=True,
    )


def load_cluster_credentials(store, cluster_uuid, secret_box):
    """The cluster's credentials from the store, or None if it has none.

    A wrong secret key raises SecretError (from the secret box)."""
    blob = store.get_secret(cluster_uuid, SECRET_NAME)
    if blob is None:
        return None
    return ClusterCredentials.from_json(secret_box.open(cluster_uuid, SECRET_NAME, blob))


def ensure_cluster_credentials(store, cluster_uuid, secret_box, cluster_name=None, settings=None, clock=None):
    """Load the cluster's credentials, or create and store them the first time.

    The key is first checked against the store's verifier (secrets.check_secret_key),
    so a wrong key is refused even for a new cluster. ``cluster_name`` only improves
    error messages. ``created`` on the result is True when this call generated them.
    """
    try:
        check_secret_key(store, secret_box)
        existing = load_cluster_credentials(store, cluster_uuid, secret_box)
    except SecretError as exc:
        if cluster_name:
            raise SecretError("Couldn't read the credentials of cluster %s: %s" % (cluster_name, exc)) from None
        raise
    if existing is not None:
        return existing
    credentials = generate_cluster_credentials(settings, clock)
    ours = secret_box.seal(cluster_uuid, SECRET_NAME, credentials.to_json())
    kept = put_secret_once(store, cluster_uuid, SECRET_NAME, ours)
    if kept != ours:  # another runner created them first: use theirs
        return ClusterCredentials.from_json(secret_box.open(cluster_uuid, SECRET_NAME, kept))
    return credentials


def purge_cluster_credentials(store, cluster_uuid):
    """Drop every secret of the cluster (at delete). Idempotent."""
    store.delete_secrets(cluster_uuid)


def issue_node_certificate(credentials, node_name, clock=None, validity=None):
    """The client identity of one node: CN system:node:<name>, O system:nodes."""
    if not node_name or not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", node_name):
        raise ValidationError("node name", "%r is not a valid Kubernetes node name" % (node_name,))
    if len(node_name) > MAX_NODE_NAME:
        raise ValidationError(
            "node name",
            "%r is %d characters: a node's certificate name system:node:<name> holds at most %d, so node "
            "names (<cluster>-<nodegroup>-<index>) can have at most %d"
            % (node_name, len(node_name), 64, MAX_NODE_NAME),
        )
    settings = credentials.settings
    return issue_client_certificate(
        credentials.ca,
        NODE_USER_PREFIX + node_name,
        [NODE_GROUP],
        validity or datetime.timedelta(days=settings.node_cert_validity_days),
        settings.key_type,
        settings.key_size,
        clock,
    )


def issue_admin_certificate(
    credentials, coe_version, user="kubernetes-admin", validity=DEFAULT_ADMIN_VALIDITY, clock=None
):
    """An admin client certificate in the cluster-admin group of ``coe_version``."""
    if not user or user.startswith(NODE_USER_PREFIX) or user.startswith("system:") or len(user) > 64:
        raise ValidationError("user", "%r cannot be an admin user name (at most 64 characters, no system:)" % (user,))
    if validity <= datetime.timedelta(0):
        raise ValidationError("validity", "must be positive")
    settings = credentials.settings
    return issue_client_certificate(
        credentials.ca,
        user,
        [admin_group(coe_version)],
        validity,
        settings.key_type,
        settings.key_size,
        clock,
    )


# --------------------------------------------------------------------------- kubeconfig


def _b64(text):
    return base64.b64encode(text.encode("ascii")).decode("ascii")


def kubeconfig_dict(cluster_name, server, ca_pem, cert_pem, key_pem, user):
    context = "%s@%s" % (user, cluster_name)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [
            {"name": user, "user": {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}}
        ],
        "contexts": [{"name": context, "context": {"cluster": cluster_name, "user": user}}],
        "current-context": context,
        "preferences": {},
    }


def kubeconfig(cluster_name, server, ca_pem, cert_pem, key_pem, user):
    """A kubeconfig YAML document embedding the CA and one client identity."""
    if not HAS_YAML:
        raise CoeError("The Python library 'PyYAML' is required to write kubeconfigs")
    return yaml.dump(
        kubeconfig_dict(cluster_name, server, ca_pem, cert_pem, key_pem, user),
        Dumper=_SAFE_DUMPER,
        default_flow_style=False,
        sort_keys=False,
    )


def read_kubeconfig(text):
    """Parse a kubeconfig written by ``kubeconfig()``: dict with server, ca_pem, cert_pem, key_pem, user.

    Raises ValueError when it is not one (the caller then rewrites the file).
    """
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("not a kubeconfig")
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    ctx = contexts[doc["current-context"]]
    clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    users = {u["name"]: u["user"] for u in doc.get("users") or []}
    cluster = clusters[ctx["cluster"]]
    user = users[ctx["user"]]
    return dict(
        cluster_name=ctx["cluster"],
        server=cluster["server"],
        ca_pem=base64.b64decode(cluster["certificate-authority-data"]).decode("ascii"),
        cert_pem=base64.b64decode(user["client-certificate-data"]).decode("ascii"),
        key_pem=base64.b64decode(user["client-key-data"]).decode("ascii"),
        user=ctx["user"],
    )


def certificate_summary(cert_pem):
    """Secret-free facts about a client certificate: subject CN, groups, validity, serial."""
    cert = load_certificate(cert_pem)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return dict(
        common_name=cns[0].value if cns else None,
        groups=[o.value for o in orgs],
        not_before=_not_before(cert),
        not_after=_not_after(cert),
        serial=format(cert.serial_number, "x"),
        sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
    )


def verify_issued_by(cert_pem, ca_pem):
    """True when ``cert_pem`` was signed by the CA in ``ca_pem`` (signature checked)."""
    cert = load_certificate(cert_pem)
    ca_cert = load_certificate(ca_pem)
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError):
        return False
    except Exception as exc:  # cryptography.exceptions.InvalidSignature
        if type(exc).__name__ == "InvalidSignature":
            return False
        raise
    return True


def key_matches_certificate(key_pem, cert_pem):
    """True when the private key is the one of the certificate."""
    key = load_private_key(key_pem)
    cert = load_certificate(cert_pem)
    return public_key_pem(key) == (
        cert.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
