"""Helpers shared by the tests of the store modules (cluster, cluster_template, cluster_sync, ...)."""

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import sync as sync_registry
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import FakeSynchroniser
from ansible_collections.coe.openstack.plugins.modules import (
    cluster,
    cluster_info,
    cluster_lock,
    cluster_sync,
    cluster_template,
)

MODULES = dict(
    cluster=cluster.main,
    cluster_info=cluster_info.main,
    cluster_lock=cluster_lock.main,
    cluster_sync=cluster_sync.main,
    cluster_template=cluster_template.main,
)

TEMPLATE = dict(
    name="k8s",
    driver="heat",
    image_id="fcos-40",
    flavor_id="m1.small",
    master_flavor_id="m1.medium",
    keypair_id="ops",
    coe_version="v1.30.4",
    labels={"kube_tag": "v1.30.4"},
)


@pytest.fixture
def coe(run_module, tmp_path, monkeypatch):
    """``coe(module, check_mode=False, diff=False, **args)`` with a fresh SQLite store."""
    for var in ("COE_STATE_URL", "COE_PROJECT", "JOB_ID", "AWX_JOB_ID", "TOWER_JOB_ID", "OS_CLOUD"):
        monkeypatch.delenv(var, raising=False)
    url = "sqlite://%s" % (tmp_path / "coe.db")

    def _run(module, check_mode=False, diff=False, **args):
        args.setdefault("state_url", url)
        return run_module(MODULES[module], args, check_mode=check_mode, diff=diff)

    _run.url = url
    _run.store = lambda: open_store(url)
    # no cloud here: a driver a test did not fake answers "nothing exists, every reference does"
    faked = [d for d in ("heat", "nova") if d not in sync_registry._registered]
    for driver in faked:
        sync_registry.register(driver, FakeSynchroniser)
    yield _run
    for driver in faked:
        sync_registry.unregister(driver)


def fake_driver(answers):
    class Fake(FakeSynchroniser):
        calls = []

        def __init__(self, conn):
            super().__init__(conn, answers)
            self.calls = Fake.calls

    return Fake


@pytest.fixture
def drivers():
    """Fake synchronisers for 'heat' and 'nova': set ``drivers[name][uuid] = Observation or dict``."""
    answers = {"heat": {}, "nova": {}}
    classes = {d: fake_driver(a) for d, a in answers.items()}
    for d, cls in classes.items():
        sync_registry.register(d, cls)
    answers["classes"] = classes
    yield answers
    for d in classes:
        sync_registry.unregister(d)
