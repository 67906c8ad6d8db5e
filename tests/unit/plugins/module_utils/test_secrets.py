"""Secrets at rest: AES-GCM blobs, where the key comes from, and what a wrong key does."""

import os
import stat

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import secrets
from ansible_collections.coe.openstack.plugins.module_utils.errors import SecretError

KEY = "correct horse battery staple 42"
OTHER = "a different key of decent length"


class FakeStore:
    def __init__(self):
        self.secrets = {}

    def put_secret(self, cluster_uuid, name, blob):
        self.secrets[(cluster_uuid, name)] = bytes(blob)

    def get_secret(self, cluster_uuid, name):
        return self.secrets.get((cluster_uuid, name))

    def delete_secrets(self, cluster_uuid):
        for key in [k for k in self.secrets if k[0] == cluster_uuid]:
            del self.secrets[key]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# ------------------------------------------------------------------ sealing


def test_seal_open_round_trip_and_ciphertext_hides_the_data():
    box = secrets.SecretBox(KEY)
    data = b"-----BEGIN RSA PRIVATE KEY-----\nsecret\n"
    blob = box.seal("uuid-1", "pki", data)
    assert data not in blob and b"secret" not in blob
    assert blob.startswith(secrets.MAGIC)
    assert secrets.SecretBox(KEY).open("uuid-1", "pki", blob) == data
    # a fresh nonce every time
    assert box.seal("uuid-1", "pki", data) != blob


def test_wrong_key_is_a_clear_secret_error_naming_the_source_not_the_key(monkeypatch):
    blob = secrets.SecretBox(KEY).seal("uuid-1", "pki", b"x")
    monkeypatch.setenv("COE_SECRET_KEY", OTHER)
    box = secrets.resolve_secret_key(environ=os.environ)
    with pytest.raises(SecretError) as err:
        box.open("uuid-1", "pki", blob)
    msg = str(err.value)
    assert "COE_SECRET_KEY" in msg and "not the key" in msg and "uuid-1" in msg
    assert OTHER not in msg and KEY not in msg


def test_a_blob_is_bound_to_its_cluster_and_name():
    box = secrets.SecretBox(KEY)
    blob = box.seal("uuid-1", "pki", b"x")
    with pytest.raises(SecretError):
        box.open("uuid-2", "pki", blob)
    with pytest.raises(SecretError):
        box.open("uuid-1", "other", blob)


def test_tampered_or_foreign_blobs_are_refused():
    box = secrets.SecretBox(KEY)
    blob = bytearray(box.seal("u", "pki", b"payload"))
    blob[-1] ^= 1
    with pytest.raises(SecretError):
        box.open("u", "pki", bytes(blob))
    with pytest.raises(SecretError, match="format"):
        box.open("u", "pki", b"plaintext, not ours")


@pytest.mark.parametrize("key", ["", "   ", "short"])
def test_empty_or_short_keys_are_refused(key):
    with pytest.raises(SecretError):
        secrets.SecretBox(key)


# ------------------------------------------------------------------ where the key comes from


def test_option_wins_over_environment(tmp_path):
    env = {"COE_SECRET_KEY": OTHER, "COE_SECRET_KEY_FILE": str(tmp_path / "nope")}
    box = secrets.resolve_secret_key(secret_key=KEY, environ=env)
    assert box.source == "the secret_key option"
    assert box.open("u", "n", secrets.SecretBox(KEY).seal("u", "n", b"x")) == b"x"


def test_env_key_then_env_key_file(tmp_path):
    assert "COE_SECRET_KEY" in secrets.resolve_secret_key(environ={"COE_SECRET_KEY": KEY}).source
    key_file = tmp_path / "k"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    box = secrets.resolve_secret_key(environ={"COE_SECRET_KEY_FILE": str(key_file)})
    assert str(key_file) in box.source
    assert box.open("u", "n", secrets.SecretBox(KEY).seal("u", "n", b"x")) == b"x"


def test_key_file_readable_by_others_is_refused(tmp_path):
    key_file = tmp_path / "k"
    key_file.write_text(KEY)
    key_file.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600"):
        secrets.resolve_secret_key(environ={"COE_SECRET_KEY_FILE": str(key_file)})


def test_missing_key_file_is_a_clear_error(tmp_path):
    with pytest.raises(SecretError, match="Couldn't read the secret key file"):
        secrets.resolve_secret_key(environ={"COE_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_embedded_store_generates_its_key_file_once_with_mode_0600(tmp_path):
    db = tmp_path / "state" / "coe.db"
    url = "sqlite:///%s" % db
    box = secrets.resolve_secret_key(state_url=url, environ={})
    key_file = tmp_path / "state" / "secret.key"
    assert key_file.exists() and mode(key_file) == 0o600
    assert mode(tmp_path / "state") == 0o700
    assert len(key_file.read_text().strip()) >= 43
    blob = box.seal("u", "n", b"x")
    again = secrets.resolve_secret_key(state_url=url, environ={})
    assert again.open("u", "n", blob) == b"x"


def test_default_key_file_lives_beside_the_default_store(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    secrets.resolve_secret_key(environ={})
    assert mode(tmp_path / ".local" / "state" / "coe.openstack" / "secret.key") == 0o600


def test_state_url_from_the_environment_places_the_key_file(tmp_path):
    env = {"COE_STATE_URL": "sqlite:///%s" % (tmp_path / "x" / "c.db")}
    secrets.resolve_secret_key(environ=env)
    assert (tmp_path / "x" / "secret.key").exists()


def test_check_mode_does_not_create_a_key_file(tmp_path):
    box = secrets.resolve_secret_key(state_url="sqlite:///%s" % (tmp_path / "c.db"), environ={}, create=False)
    assert box.ephemeral
    assert not (tmp_path / "secret.key").exists()


def test_shared_store_needs_a_given_key_and_the_message_hides_the_password():
    with pytest.raises(SecretError) as err:
        secrets.resolve_secret_key(state_url="postgresql://coe:hunter2@db.example:5432/coe", environ={})
    assert "COE_SECRET_KEY" in str(err.value) and "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("sqlite:////var/lib/coe/coe.db", "/var/lib/coe/coe.db"),
        ("sqlite:///tmp/c.db", "/tmp/c.db"),
        ("sqlite:///~/c.db", os.path.expanduser("~/c.db")),
        ("/srv/coe.db", "/srv/coe.db"),
        ("postgresql://u@h/db", None),
        ("postgres://u@h/db", None),
    ],
)
def test_sqlite_path(url, expected):
    assert secrets.sqlite_path(url, environ={}) == expected


# ------------------------------------------------------------------ the store's key verifier


def test_store_remembers_its_key_and_refuses_another():
    store = FakeStore()
    assert secrets.check_secret_key(store, secrets.SecretBox(KEY)) is True
    assert secrets.check_secret_key(store, secrets.SecretBox(KEY)) is False
    with pytest.raises(SecretError, match="not the key this store"):
        secrets.check_secret_key(store, secrets.SecretBox(OTHER))


def count_derivations(monkeypatch):
    calls = []
    real = secrets.Scrypt

    def counting(**kwargs):
        calls.append(kwargs["salt"])
        return real(**kwargs)

    monkeypatch.setattr(secrets, "Scrypt", counting)
    return calls


def test_a_run_that_checks_the_key_then_seals_or_opens_derives_it_once(monkeypatch):
    store = FakeStore()
    derived = count_derivations(monkeypatch)
    # the first run: the verifier is made, then a cluster's secret is sealed
    box = secrets.SecretBox(KEY)
    assert secrets.check_secret_key(store, box) is True
    store.put_secret("uuid-1", "pki", box.seal("uuid-1", "pki", b"credentials"))
    assert len(derived) == 1
    # another box of the same key in that run (a driver's, in the same process): no derivation
    assert secrets.SecretBox(KEY).open("uuid-1", "pki", store.get_secret("uuid-1", "pki")) == b"credentials"
    assert len(derived) == 1
    # a later run (a new process): the key is checked, the secret opened, another one sealed
    monkeypatch.setattr(secrets, "_DERIVED", {})
    derived.clear()
    box = secrets.SecretBox(KEY)
    secrets.check_secret_key(store, box)
    assert box.open("uuid-1", "pki", store.get_secret("uuid-1", "pki")) == b"credentials"
    blob = box.seal("uuid-2", "pki", b"more")
    assert len(derived) == 1
    # each blob keeps its own nonce and binding; a box that derived nothing yet draws a salt
    assert secrets.SecretBox(KEY).open("uuid-2", "pki", blob) == b"more"
    with pytest.raises(SecretError):
        box.open("uuid-1", "pki", blob)
    fresh = secrets.SecretBox(KEY).seal("uuid-3", "pki", b"x")
    assert fresh[4:20] != blob[4:20]


def test_verifier_is_not_written_in_check_mode():
    store = FakeStore()
    assert secrets.check_secret_key(store, secrets.SecretBox(KEY), create=False) is False
    assert store.secrets == {}


def test_with_the_real_sqlite_store(tmp_path):
    from ansible_collections.coe.openstack.plugins.module_utils import pki
    from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

    url = "sqlite:///%s" % (tmp_path / "coe.db")
    store = open_store(url)
    try:
        box = secrets.resolve_secret_key(state_url=url, environ={})
        created = pki.ensure_cluster_credentials(store, "11111111-2222-3333-4444-555555555555", box, "demo")
        loaded = pki.load_cluster_credentials(store, "11111111-2222-3333-4444-555555555555", box)
        assert loaded.ca_fingerprint == created.ca_fingerprint
        with pytest.raises(SecretError):
            pki.ensure_cluster_credentials(store, "another-uuid", secrets.SecretBox(OTHER), "other")
        # the raw database files hold the blobs, and no key material in clear
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("coe.db*"))
        assert secrets.MAGIC in raw
        assert b"PRIVATE KEY" not in raw
        pki.purge_cluster_credentials(store, "11111111-2222-3333-4444-555555555555")
        assert pki.load_cluster_credentials(store, "11111111-2222-3333-4444-555555555555", box) is None
    finally:
        store.close()


def test_two_first_runners_with_different_keys_one_is_refused():
    store = FakeStore()
    other = secrets.SecretBox(OTHER)

    def add_secret(cluster_uuid, name, blob):
        # the other runner's verifier lands between our read and our insert
        store.secrets.setdefault(
            (cluster_uuid, name), other.seal(cluster_uuid, name, b"coe.openstack secret key verifier v1")
        )
        return False

    store.add_secret = add_secret
    with pytest.raises(SecretError, match="not the key this store"):
        secrets.check_secret_key(store, secrets.SecretBox(KEY))
    assert secrets.check_secret_key(store, other) is False
