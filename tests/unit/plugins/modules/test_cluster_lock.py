"""coe.openstack.cluster_lock: acquire, renew, release, break."""

import coe_helpers

coe = coe_helpers.coe  # the fixture


def test_acquire_refuse_renew_release(coe):
    first = coe("cluster_lock", name="demo", operation="create", holder="alice@laptop", ttl=60)
    assert first["changed"] and first["lock"]["token"] == 1 and first["lock"]["held"]
    second = coe("cluster_lock", name="demo", operation="delete", holder="bob@ci")
    assert second.failed and "alice@laptop" in second["msg"] and "create" in second["msg"]
    assert second["holder"] == "alice@laptop"
    check = coe("cluster_lock", check_mode=True, name="demo", operation="delete")
    assert check.failed and "alice@laptop" in check["msg"]
    renewed = coe("cluster_lock", name="demo", state="renewed", lock_token=1, ttl=600)
    assert renewed["changed"] and renewed["lock"]["expires_at"] > first["lock"]["expires_at"]
    stale = coe("cluster_lock", name="demo", state="released", lock_token=7)
    assert stale.failed and "stale" in stale["msg"]
    released = coe("cluster_lock", name="demo", state="released", lock_token=1)
    assert released["changed"] and released["lock"]["held"] is False
    assert not coe("cluster_lock", name="demo", state="released", lock_token=1)["changed"]
    check = coe("cluster_lock", check_mode=True, name="demo")
    assert check["changed"] and check["lock"]["token"] == 2
    assert coe.store().get_lock("default", "demo")["token"] == 1  # check mode wrote nothing
    assert coe("cluster_lock", name="demo")["lock"]["token"] == 2


def test_break_needs_a_reason_and_is_logged(coe):
    coe("cluster_lock", name="demo", holder="dead-runner")
    res = coe("cluster_lock", name="demo", state="broken")
    assert res.failed and "reason" in res["msg"]
    res = coe("cluster_lock", name="demo", state="broken", reason="  ")
    assert res.failed and res["field"] == "reason"
    check = coe("cluster_lock", check_mode=True, name="demo", state="broken", reason="runner lost")
    assert check["changed"] and coe.store().get_lock("default", "demo")["holder"] == "dead-runner"
    res = coe("cluster_lock", name="demo", state="broken", reason="runner lost", actor={"user": "ops"})
    assert res["changed"] and res["lock"]["holder"] == "dead-runner"
    event = coe.store().list_events(kind="lock", target="demo")[-1]
    assert event["actor_user"] == "ops" and "runner lost" in event["message"]
    assert not coe("cluster_lock", name="demo", state="broken", reason="again")["changed"]


def test_wait_for_a_lease_that_expires(coe):
    coe("cluster_lock", name="demo", holder="short", ttl=5)
    res = coe("cluster_lock", name="demo", holder="patient", lock_timeout=10)
    assert res["changed"] and res["lock"]["holder"] == "patient" and res["lock"]["token"] == 2


def test_bad_input(coe):
    for args, field in (
        (dict(name="Bad Name"), "name"),
        (dict(name="demo", ttl=1), "ttl"),
        (dict(name="demo", lock_timeout=-1), "lock_timeout"),
    ):
        res = coe("cluster_lock", **args)
        assert res.failed and res["field"] == field, res
    res = coe("cluster_lock", name="demo", state="renewed")
    assert res.failed and "lock_token" in res["msg"]
    assert coe.store().list_locks() == []


def test_break_only_the_token_a_refusal_named(coe):
    coe("cluster_lock", name="demo", holder="dead-runner")
    refused = coe("cluster_lock", name="demo", operation="delete")
    assert refused.failed and "-e coe_lock_break=1" in refused["msg"] and "lock_token" not in refused["msg"]
    for check_mode in (True, False):
        wrong = coe("cluster_lock", check_mode=check_mode, name="demo", state="broken", reason="dead", lock_token=2)
        assert wrong.failed and "token 2 is not its lease any more" in wrong["msg"]
    assert coe.store().get_lock("default", "demo")["holder"] == "dead-runner"
    res = coe("cluster_lock", name="demo", state="broken", reason="dead", lock_token=1)
    assert res["changed"] and res["lock"]["token"] == 1


def test_lease_defaults_agree():
    """One default lease everywhere: locks.DEFAULT_TTL, the modules' ttl/lock_ttl, coe_lock_ttl."""
    import os

    import yaml

    from ansible_collections.coe.openstack.plugins.doc_fragments.store import ModuleDocFragment
    from ansible_collections.coe.openstack.plugins.module_utils.locks import DEFAULT_TTL
    from ansible_collections.coe.openstack.plugins.module_utils.module import LEASE_ARGUMENT_SPEC
    from ansible_collections.coe.openstack.plugins.modules import cluster, cluster_lock, cluster_sync

    assert DEFAULT_TTL == 120
    assert LEASE_ARGUMENT_SPEC["lock_ttl"]["default"] == DEFAULT_TTL
    assert yaml.safe_load(ModuleDocFragment.LEASE)["options"]["lock_ttl"]["default"] == DEFAULT_TTL
    for module, option in ((cluster_lock, "ttl"), (cluster_sync, "lock_ttl"), (cluster, "lock_ttl")):
        documented = yaml.safe_load(module.DOCUMENTATION)["options"][option]["default"]
        assert documented == DEFAULT_TTL, module.__name__
    repo = os.path.dirname(os.path.abspath(cluster_lock.__file__)).rsplit(os.sep + "plugins", 1)[0]
    for role in ("cluster", "heat_driver", "nova_driver"):
        with open(os.path.join(repo, "roles", role, "defaults", "main.yml")) as f:
            assert yaml.safe_load(f)["coe_lock_ttl"] == DEFAULT_TTL, role
