"""Fixtures for the integration tests: the local OpenStack of tests/minicloud.

Use the session fixture ``minicloud`` in any test that talks to the cloud::

    pytestmark = pytest.mark.usefixtures("minicloud")      # whole module

    def test_x(minicloud):
        conn = minicloud.connect()                 # demo user, project demo
        admin = minicloud.connect(admin=True)      # admin user, project admin
        with minicloud.quotas(instances=2):        # demo quotas, restored afterwards
            ...

What it does, once per test session:

* runs ``tests/minicloud/minicloud status``; if not every service answers, runs
  ``tests/minicloud/minicloud up`` (installs and initialises on first use, which takes
  a few minutes; a warm start takes under a minute). It remembers that it started the
  cloud only when nothing of it was running before (a half-running cloud is somebody
  else's: it is repaired, not owned);
* sets ``OS_CLIENT_CONFIG_FILE`` to the cloud's clouds.yaml (and ``OS_CLOUD=minicloud``
  unless OS_CLOUD is already set), so ``openstack.connect(cloud="minicloud")`` works;
* yields a :class:`Minicloud` with ``clouds_yaml``, ``cloud`` ("minicloud", the demo
  user with roles member and heat_stack_owner) and ``admin_cloud`` ("minicloud-admin");
* at the end, runs ``minicloud down`` if it started the cloud, unless ``MINICLOUD_KEEP=1``
  or another test session is still using it (each session marks itself in
  ``<state folder>/sessions/<pid>`` while it runs).

``MINICLOUD_HOME`` chooses the cloud's state folder (default ``<repo>/.minicloud``).
If the cloud cannot be brought up, every test using the fixture fails (not skipped).
"""

import contextlib
import dataclasses
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "minicloud" / "minicloud"


def _load_knobs():
    spec = importlib.util.spec_from_file_location("minicloud_knobs", REPO / "tests" / "minicloud" / "knobs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Minicloud:
    """The running local cloud, as the ``minicloud`` fixture hands it to tests."""

    home: Path
    clouds_yaml: Path
    cloud: str = "minicloud"
    admin_cloud: str = "minicloud-admin"
    started_here: bool = False

    def connect(self, admin=False, **kwargs):
        """An openstacksdk Connection as the demo user (or the admin with admin=True)."""
        import openstack

        return openstack.connect(
            cloud=self.admin_cloud if admin else self.cloud, config_files=[str(self.clouds_yaml)], **kwargs
        )

    def quotas(self, project="demo", **quotas):
        """Context manager: set a project's quotas (instances=2, ports=5 ...), restore them on exit.

        Other tests may share the project: prefer a project of your own for tight quotas.
        """
        return _load_knobs().quotas(self.connect(admin=True), project, **quotas)

    @property
    def knobs(self):
        """The tests/minicloud/knobs.py module (get_quotas, set_quotas, quotas, DEFAULT_QUOTAS)."""
        return _load_knobs()


def _run(*args, timeout):
    env = dict(os.environ)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _register(home):
    """Mark this test session as a user of the cloud: <home>/sessions/<pid>."""
    path = home / "sessions" / str(os.getpid())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def _unregister(path):
    """Drop this session's mark; return the pids of other sessions still running."""
    path.unlink(missing_ok=True)
    others = []
    for entry in path.parent.glob("*"):
        try:
            os.kill(int(entry.name), 0)
            others.append(int(entry.name))
        except (ValueError, ProcessLookupError):
            entry.unlink(missing_ok=True)
        except PermissionError:
            others.append(int(entry.name))
    return others


@pytest.fixture(scope="session")
def minicloud():
    """Make sure the local OpenStack runs; yield a Minicloud (see the module docstring)."""
    home = Path(os.environ.get("MINICLOUD_HOME", REPO / ".minicloud")).resolve()
    me = _register(home)
    status = _run("status", timeout=120).returncode
    # 0: every service answers; 3: nothing runs (we start it, and so we stop it at the end);
    # anything else: partly up or slow to answer; `up` starts what is missing, but the cloud is
    # somebody else's, so it is not ours to stop.
    started = status == 3
    if status != 0:
        up = _run("up", timeout=1800)
        if up.returncode != 0:
            pytest.fail(
                "tests/minicloud/minicloud up failed (exit %d):\n%s\n%s"
                % (up.returncode, up.stdout[-3000:], up.stderr[-3000:]),
                pytrace=False,
            )
    clouds_yaml = home / "clouds.yaml"
    saved = {k: os.environ.get(k) for k in ("OS_CLIENT_CONFIG_FILE", "OS_CLOUD")}
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(clouds_yaml)
    os.environ.setdefault("OS_CLOUD", "minicloud")
    try:
        yield Minicloud(home=home, clouds_yaml=clouds_yaml, started_here=started)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        others = _unregister(me)
        if started and not others and os.environ.get("MINICLOUD_KEEP") != "1":
            with contextlib.suppress(subprocess.TimeoutExpired):
                _run("down", timeout=300)


@pytest.fixture
def user(tmp_path, minicloud):
    """A keystone user of this test's own (coe_runner.CloudUser), removed at the end.

    A test module may define its own ``user``/``runner`` fixtures; these are the common ones.
    """
    from coe_runner import CloudUser

    u = CloudUser(tmp_path)
    yield u
    u.close()


@pytest.fixture
def runner(tmp_path, user):
    """The operation playbooks run as ``user``, with a store of this test's own (coe_runner.Runner)."""
    from coe_runner import Runner

    return Runner(tmp_path, user)
