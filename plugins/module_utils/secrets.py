# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Encryption at rest of cluster secrets, with a key the user provides.

Plain Python (``cryptography``; no ansible, no openstack).

What the rest of the collection calls
=====================================

``resolve_secret_key(secret_key=None, state_url=None, environ=None, create=True) -> SecretBox``
    Finds the key, in this order: the ``secret_key`` option (``coe_secret_key``, Ansible
    Vault friendly), the environment variable ``COE_SECRET_KEY``, the file named by
    ``COE_SECRET_KEY_FILE``, then, for the embedded SQLite store only, the file
    ``secret.key`` beside the SQLite file (``~/.local/state/coe.openstack/secret.key`` by
    default), generated (mode 0600) on first use when ``create`` is true. A shared
    (PostgreSQL) store never gets a generated key: every runner must be given the same one.

``SecretBox.seal(cluster_uuid, name, data: bytes) -> bytes`` / ``SecretBox.open(...)``
    Encrypt / decrypt one blob. A blob is bound to its cluster and name (AES-GCM
    associated data), so a blob copied to another cluster does not decrypt.

``check_secret_key(store, box, create=True)``
    Compares the key with the one this store was first used with (a small encrypted
    verifier kept in the store), so a wrong key is refused before anything is created,
    even for a new cluster. ``pki.ensure_cluster_credentials`` calls it.

Format of a blob: ``b"COE1"`` + 16-byte salt + 12-byte nonce + AES-256-GCM ciphertext
and tag. The AES key is derived from the user's key with scrypt (n=2**15, r=8, p=1) and
the blob's salt, so any passphrase works, and a long random one (what the generated
key file holds) is best. Scrypt costs about 0.1 s: a box derives once per salt, and a
box seals with the salt it derived first (the store verifier's, which every module run
checks first), so the secrets of clusters made since share it and a run that checks the
key and then opens or creates a cluster's credentials derives the key once. Each blob
still has its own random nonce, and its cluster and name as associated data.
"""

from __future__ import annotations

import base64
import os
import secrets
import stat
import tempfile

from ansible_collections.coe.openstack.plugins.module_utils.errors import SecretError
from ansible_collections.coe.openstack.plugins.module_utils.store import (
    POSTGRES_SCHEMES,
    default_state_url,
    redact_url,
)
from ansible_collections.coe.openstack.plugins.module_utils.store import sqlite_path as store_sqlite_path

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by ansible-test sanity
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc
    InvalidTag = None

ENV_KEY = "COE_SECRET_KEY"
ENV_KEY_FILE = "COE_SECRET_KEY_FILE"
ENV_STATE_URL = "COE_STATE_URL"
KEY_FILE_NAME = "secret.key"
MAGIC = b"COE1"
SALT_LEN = 16
NONCE_LEN = 12
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_KEY_LEN = 16
#: Where the store keeps the verifier of the key (a reserved, non-uuid cluster id).
VERIFIER_UUID = "coe-store"
VERIFIER_NAME = "secret-key-check"
_VERIFIER_TEXT = b"coe.openstack secret key verifier v1"


def sqlite_path(state_url, environ=None):
    """The SQLite file of the store at ``state_url`` (as the store reads it), or None when the
    store is shared (PostgreSQL). No URL: ``COE_STATE_URL``, then the store's default."""
    environ = os.environ if environ is None else environ
    url = state_url or environ.get(ENV_STATE_URL) or default_state_url()
    if str(url).startswith(POSTGRES_SCHEMES):
        return None
    return store_sqlite_path(str(url))


def generate_key():
    """A new random key: 32 bytes, URL-safe base64 (what the generated key file holds)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def require_cryptography(purpose="to encrypt cluster secrets", error=SecretError):
    """Raise ``error`` naming the missing library and what it is needed for (pki.py too)."""
    if not HAS_CRYPTOGRAPHY:
        raise error("The Python library 'cryptography' is required %s: %s" % (purpose, CRYPTOGRAPHY_IMPORT_ERROR))


#: (key, salt) -> the derived AES key, for this process
_DERIVED = {}


class SecretBox:
    """Seals and opens blobs with one user key. ``source`` says where the key came from."""

    def __init__(self, key, source="the secret_key option"):
        require_cryptography()
        if isinstance(key, bytes):
            key = key.decode("utf-8")
        key = (key or "").strip()
        if not key:
            raise SecretError("The secret key from %s is empty." % source)
        if len(key) < MIN_KEY_LEN:
            raise SecretError(
                "The secret key from %s is too short (%d characters, at least %d)." % (source, len(key), MIN_KEY_LEN)
            )
        self._key = key.encode("utf-8")
        self.source = source
        #: True for the throw-away key of a check-mode run with no key file yet
        self.ephemeral = False
        self._derived = {}

    def __repr__(self):
        return "<SecretBox from %s>" % self.source

    def _aes(self, salt):
        if salt not in self._derived:
            # one derivation per key and salt in a process: the boxes a module run makes of one
            # key (the plan's, then a driver's run in the same process) share it
            derived = _DERIVED.get((self._key, salt))
            if derived is None:
                kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
                derived = _DERIVED[(self._key, salt)] = kdf.derive(self._key)
            self._derived[salt] = AESGCM(derived)
        return self._derived[salt]

    @staticmethod
    def _aad(cluster_uuid, name):
        return ("coe.openstack:%s:%s" % (cluster_uuid, name)).encode("utf-8")

    def seal(self, cluster_uuid, name, data):
        """Encrypt ``data`` (bytes) for the secret ``name`` of ``cluster_uuid``.

        The key this box derived first (for the store's verifier, in a module run) is
        used again with its salt and a fresh nonce, so that a run derives the key once;
        a box that derived none yet draws a new salt.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        salt = next(iter(self._derived), None) or secrets.token_bytes(SALT_LEN)
        nonce = secrets.token_bytes(NONCE_LEN)
        return MAGIC + salt + nonce + self._aes(salt).encrypt(nonce, data, self._aad(cluster_uuid, name))

    def open(self, cluster_uuid, name, blob):
        """Decrypt a blob made by ``seal`` for the same cluster and name.

        SecretError when the key is wrong or the blob is damaged or belongs elsewhere.
        """
        blob = bytes(blob)
        head = len(MAGIC) + SALT_LEN + NONCE_LEN
        if not blob.startswith(MAGIC) or len(blob) < head + 16:
            raise SecretError(
                "The stored secret %r of cluster %s is not in a format this collection knows." % (name, cluster_uuid)
            )
        salt = blob[len(MAGIC) : len(MAGIC) + SALT_LEN]
        nonce = blob[len(MAGIC) + SALT_LEN : head]
        try:
            return self._aes(salt).decrypt(nonce, blob[head:], self._aad(cluster_uuid, name))
        except InvalidTag:
            raise SecretError(
                "The secret key from %s cannot decrypt the stored secret %r of cluster %s: it is not the key "
                "the secret was encrypted with (or the stored secret was altered). Use the key this store "
                "was first used with (option secret_key / coe_secret_key, or %s, or %s)."
                % (self.source, name, cluster_uuid, ENV_KEY, ENV_KEY_FILE),
                key_source=self.source,
            ) from None


def _check_key_file_mode(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SecretError("Couldn't read the secret key file %s: %s" % (path, exc.strerror)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            "The secret key file %s is accessible by other users (mode %04o): run chmod 600 %s."
            % (path, stat.S_IMODE(st.st_mode), path)
        )


def read_key_file(path):
    """A SecretBox from a key file that only its owner can read."""
    path = os.path.expanduser(path)
    _check_key_file_mode(path)
    try:
        with open(path, encoding="utf-8") as handle:
            key = handle.read()
    except OSError as exc:
        raise SecretError("Couldn't read the secret key file %s: %s" % (path, exc.strerror)) from None
    except UnicodeDecodeError:
        raise SecretError("The secret key file %s is not text." % path) from None
    return SecretBox(key, source="the key file %s" % path)


def create_key_file(path):
    """Write a new random key to ``path`` (mode 0600; folder 0700). Never overwrites."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise SecretError("Couldn't create the secret key file %s: %s" % (path, exc.strerror)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(generate_key() + "\n")


def write_private(path, text, prefix=".coe-"):
    """Replace ``path`` atomically with a file of mode 0600 holding ``text`` (a kubeconfig, a
    store export): written to a temporary file of that mode beside it, synced, then renamed
    over it, so a reader sees the old file or the new one, never a part, and never a file
    others could read. A missing folder is created with mode 0700."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=folder)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def resolve_secret_key(secret_key=None, state_url=None, environ=None, create=True):
    """Find the user's key (see the module docstring for the order); a SecretBox.

    ``state_url`` is the store's URL (None: ``COE_STATE_URL``, then the store's default
    ``~/.local/state/coe.openstack/coe.db``).
    With ``create`` false (check mode) a missing default key file is not created; the
    returned box then holds a throw-away key and ``box.ephemeral`` is True.
    """
    environ = os.environ if environ is None else environ
    if secret_key:
        return SecretBox(secret_key, source="the secret_key option")
    if environ.get(ENV_KEY):
        return SecretBox(environ[ENV_KEY], source="the environment variable %s" % ENV_KEY)
    if environ.get(ENV_KEY_FILE):
        return read_key_file(environ[ENV_KEY_FILE])
    db = sqlite_path(state_url, environ)
    if db is None:
        raise SecretError(
            "No secret key: the store %s is shared, so every runner must be given the same key. Set the "
            "secret_key option (coe_secret_key, e.g. from Ansible Vault), or %s, or %s (a file of mode 0600)."
            % (redact_url(str(state_url or environ.get(ENV_STATE_URL))), ENV_KEY, ENV_KEY_FILE)
        )
    path = os.path.join(os.path.dirname(os.path.abspath(db)), KEY_FILE_NAME)
    if not os.path.exists(path):
        if not create:
            box = SecretBox(generate_key(), source="a key file %s still to be created" % path)
            box.ephemeral = True
            return box
        create_key_file(path)
    return read_key_file(path)


def existing_secret_key(secret_key=None, state_url=None, environ=None):
    """The user's key as ``resolve_secret_key`` finds it, never a new one: SecretError saying
    where to give it when there is none (for what reads secrets: a kubeconfig, a store export)."""
    box = resolve_secret_key(secret_key, state_url, environ=environ, create=False)
    if box.ephemeral:
        raise SecretError(
            "no secret key: give secret_key (coe_secret_key), %s or %s (%s does not exist)"
            % (ENV_KEY, ENV_KEY_FILE, box.source.replace("a key file ", "").replace(" still to be created", ""))
        )
    return box


def put_secret_once(store, cluster_uuid, name, blob):
    """Store ``blob`` unless the secret already exists; the blob the store keeps.

    With a store that has ``add_secret`` (insert only if absent) two runners that create
    the same secret at once agree on one. With only ``put_secret`` (an upsert) the blob is
    read back, which narrows the window without closing it.
    """
    add = getattr(store, "add_secret", None)
    if add is not None:
        add(cluster_uuid, name, blob)
    else:
        store.put_secret(cluster_uuid, name, blob)
    return store.get_secret(cluster_uuid, name)


def check_secret_key(store, box, create=True):
    """Refuse a key other than the one this store was first used with.

    The first use stores a small verifier sealed with the key (unless ``create`` is
    false: check mode). Returns True when the verifier was written now.
    """
    blob = store.get_secret(VERIFIER_UUID, VERIFIER_NAME)
    if blob is None:
        if not create or box.ephemeral:
            return False
        ours = box.seal(VERIFIER_UUID, VERIFIER_NAME, _VERIFIER_TEXT)
        blob = put_secret_once(store, VERIFIER_UUID, VERIFIER_NAME, ours)
        if blob == ours:
            return True
    try:
        box.open(VERIFIER_UUID, VERIFIER_NAME, blob)
    except SecretError:
        raise SecretError(
            "The secret key from %s is not the key this store's cluster secrets are encrypted with. "
            "Use the same key as before (option secret_key / coe_secret_key, %s or %s)."
            % (box.source, ENV_KEY, ENV_KEY_FILE),
            key_source=box.source,
        ) from None
    return False
