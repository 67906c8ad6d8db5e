"""The module base class: options, lazy connection, and errors turned into one fail_json."""

import socket

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import module as base
from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, NotFoundError, ValidationError


def _closed_port():
    """A loopback port nothing listens on (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def clouds_yaml(tmp_path, monkeypatch):
    """A clouds.yaml with one cloud whose Keystone is a closed loopback port."""
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n"
        "  deadcloud:\n"
        "    auth:\n"
        "      auth_url: http://127.0.0.1:%d/v3\n"
        "      username: u\n"
        "      password: p\n"
        "      project_name: p\n"
        "      user_domain_name: Default\n"
        "      project_domain_name: Default\n"
        "    region_name: RegionOne\n" % _closed_port()
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    for var in ("OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"):
        monkeypatch.delenv(var, raising=False)
    return path


class EchoModule(base.CoeModule):
    """Returns its params; optionally raises what the test asks for."""

    argument_spec = dict(name=dict(required=True), raise_what=dict(default="nothing"))
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        what = self.params["raise_what"]
        if what == "validation":
            raise ValidationError("name", "must be a DNS label")
        if what == "notfound":
            with self.action("find cluster %s" % self.params["name"]):
                raise NotFoundError("no cluster named %s" % self.params["name"], name=self.params["name"])
        if what == "connect":
            self.conn.compute.servers()
        if what == "bug":
            raise KeyError("oops")
        self.exit(changed=False, name=self.params["name"], check_mode=self.check_mode, diff_mode=self.diff_mode)


class StoreOnlyModule(base.CoeModule):
    argument_spec = dict(name=dict())
    module_kwargs = dict(supports_check_mode=True)
    uses_cloud = False
    uses_store = True

    def run(self):
        self.exit(state_url=self.params["state_url"])


def main():
    EchoModule()()


def store_main():
    StoreOnlyModule()()


def test_common_options_have_openstack_cloud_defaults(run_module):
    result = run_module(main, {"name": "c1"}, check_mode=True, diff=True)
    assert not result.failed
    assert result["name"] == "c1"
    assert result["check_mode"] is True
    assert result["diff_mode"] is True


def test_unknown_option_is_refused_naming_it(run_module):
    result = run_module(main, {"name": "c1", "colour": "red"})
    assert result.failed
    assert "colour" in result["msg"]


def test_store_module_takes_state_url_from_environment(run_module, monkeypatch):
    monkeypatch.setenv("COE_STATE_URL", "sqlite:////tmp/x.db")
    result = run_module(store_main, {})
    assert result["state_url"] == "sqlite:////tmp/x.db"
    # a store-only module does not take the cloud options
    result = run_module(store_main, {"cloud": "x"})
    assert result.failed and "cloud" in result["msg"]


def test_validation_error_names_the_field(run_module):
    result = run_module(main, {"name": "c1", "raise_what": "validation"})
    assert result.failed
    assert result["msg"] == "Invalid value for 'name': must be a DNS label"
    assert result["field"] == "name"
    assert "exception" not in result


def test_action_adds_what_we_were_doing_and_keeps_details(run_module):
    result = run_module(main, {"name": "c1", "raise_what": "notfound"})
    assert result.failed
    assert result["msg"] == "Couldn't find cluster c1: no cluster named c1"
    assert result["name"] == "c1"


def test_unexpected_exception_is_a_failure_not_a_traceback_dump(run_module):
    result = run_module(main, {"name": "c1", "raise_what": "bug"})
    assert result.failed
    assert result["msg"] == "KeyError: 'oops'"
    assert "Traceback" not in result["msg"]


def test_unknown_cloud_name_fails_naming_the_cloud(run_module, clouds_yaml):
    result = run_module(main, {"name": "c1", "raise_what": "connect", "cloud": "nosuchcloud"})
    assert result.failed
    assert result["msg"].startswith("Couldn't configure cloud nosuchcloud: ")
    assert "nosuchcloud" in result["msg"][len("Couldn't configure cloud nosuchcloud: ") :]
    assert result["cloud"] == "nosuchcloud"


def test_unreachable_auth_url_fails_naming_the_cloud_and_the_error(run_module, clouds_yaml):
    result = run_module(main, {"name": "c1", "raise_what": "connect", "cloud": "deadcloud", "api_timeout": 5})
    assert result.failed
    assert result["msg"].startswith("Couldn't connect to cloud deadcloud: ")
    assert "127.0.0.1" in result["msg"]
    # no secret in the output
    assert "password" not in str(result).lower().replace("'password'", "")


def test_connection_is_lazy(clouds_yaml, monkeypatch):
    calls = []
    monkeypatch.setattr(base, "build_connection", lambda params: calls.append(params) or object())
    from ansible.module_utils.testing import patch_module_args

    with patch_module_args({"name": "c1", "cloud": "deadcloud"}):
        module = EchoModule()
    assert calls == []
    first = module.conn
    assert module.conn is first
    assert len(calls) == 1


def test_build_connection_passes_connection_options(monkeypatch):
    seen = {}

    class FakeConn:
        def authorize(self):
            seen["authorized"] = True

    def fake_connect(**kwargs):
        seen.update(kwargs)
        return FakeConn()

    import openstack

    monkeypatch.setattr(openstack, "connect", fake_connect)
    params = dict(
        cloud="c",
        auth=None,
        auth_type="password",
        region_name="R1",
        interface="internal",
        api_timeout=7,
        validate_certs=False,
        ca_cert="/ca.pem",
        client_cert="/c.pem",
        client_key="/k.pem",
    )
    base.build_connection(params)
    assert seen == dict(
        cloud="c",
        auth_type="password",
        region_name="R1",
        interface="internal",
        api_timeout=7,
        verify=False,
        cacert="/ca.pem",
        cert="/c.pem",
        key="/k.pem",
        authorized=True,
    )


def test_cloud_error_from_sdk_carries_the_clouds_words():
    from openstack import exceptions

    err = exceptions.HttpException(message="Quota exceeded for instances", details="Requested 5, but already used 9")
    with pytest.raises(CloudError) as e:
        module = object.__new__(base.CoeModule)
        with base.CoeModule.action(module, "create cluster c1"):
            raise err
    assert str(e.value).startswith("Couldn't create cluster c1: Quota exceeded for instances")
    assert "Requested 5" in str(e.value)


def test_store_url_password_never_reaches_the_output(run_module):
    url = "postgresql://coe:s3cr%40t@127.0.0.1:5432/coe"
    result = run_module(store_main, {"state_url": url, "_ansible_verbosity": 3})
    text = str(result)
    assert "s3cr%40t" not in text and "s3cr@t" not in text
    assert "127.0.0.1:5432/coe" in result["state_url"]


def test_url_secrets():
    assert base.url_secrets(None) == set()
    assert base.url_secrets("sqlite:////var/lib/coe.db") == set()
    assert base.url_secrets("postgresql://coe@db/coe") == set()
    assert base.url_secrets("postgresql://coe:pw@db/coe") == {"pw"}


def test_store_only_modules_do_not_import_openstacksdk(tmp_path):
    """A module that never connects must not pay for importing openstacksdk (about 0.3-1 s)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, %r);"
        "from ansible_collections.coe.openstack.plugins.module_utils import module;"
        "print('openstack' in sys.modules)" % base.__file__.rsplit("/ansible_collections/", 1)[0]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _AuthRef:
    def __init__(self, expires_soon=False):
        self.expires_soon = expires_soon

    def will_expire_soon(self, seconds):
        return self.expires_soon


class _Plugin:
    """What keystoneauth's identity plugins offer for caching (get_cache_id, auth state)."""

    def __init__(self, cache_id, expires_soon=False):
        self.cache_id, self.expires_soon, self.auth_ref = cache_id, expires_soon, None

    def get_cache_id(self):
        return self.cache_id

    def get_auth_state(self):
        return '{"auth_token": "tok-%s", "body": {}}' % self.cache_id if self.auth_ref else None

    def set_auth_state(self, data):
        self.auth_ref = _AuthRef(self.expires_soon) if data else None


def _token_run(monkeypatch, cache_id="a/b+c=", expires_soon=False):
    """build_connection once; True when it asked Keystone for a token (authorize)."""
    seen = {}

    class FakeConn:
        def __init__(self):
            self.session = type("S", (), {})()
            self.session.auth = _Plugin(cache_id, expires_soon)

        def authorize(self):
            seen["authorized"] = True
            self.session.auth.auth_ref = _AuthRef(expires_soon)

    import openstack

    monkeypatch.setattr(openstack, "connect", lambda **kwargs: FakeConn())
    base.build_connection(dict(cloud="c"))
    return seen.get("authorized", False)


def test_one_token_for_every_module_of_the_same_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("COE_TOKEN_CACHE_DIR", str(tmp_path / "tokens"))
    assert _token_run(monkeypatch) is True
    files = list((tmp_path / "tokens").iterdir())
    assert len(files) == 1
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tokens").stat().st_mode & 0o777 == 0o700
    assert "/" not in files[0].name  # the cache id is base64: its hash names the file
    # the next module (a new process in real life) installs the token: no token request
    assert _token_run(monkeypatch) is False
    # other credentials (another cache id) authenticate themselves
    assert _token_run(monkeypatch, cache_id="other") is True
    assert len(list((tmp_path / "tokens").iterdir())) == 2


def test_a_token_about_to_expire_is_not_reused(monkeypatch, tmp_path):
    monkeypatch.setenv("COE_TOKEN_CACHE_DIR", str(tmp_path))
    assert _token_run(monkeypatch, expires_soon=True) is True
    assert _token_run(monkeypatch, expires_soon=True) is True


def test_token_cache_can_be_turned_off(monkeypatch, tmp_path):
    monkeypatch.setenv("COE_TOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("COE_TOKEN_CACHE", "0")
    assert _token_run(monkeypatch) is True
    assert _token_run(monkeypatch) is True
    assert list(tmp_path.iterdir()) == []
