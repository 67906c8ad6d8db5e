"""The shared coe_* interface: the front door and both drivers declare the same options.

docs/internals.md ("The shared coe_* variable interface") is the contract; roles/cluster,
roles/heat_driver and roles/nova_driver declare it in meta/argument_specs.yml. These tests
fail when one of them drifts (a variable added, removed, retyped, defaulted differently,
or losing no_log), and when a role's defaults/main.yml disagrees with its own spec.
"""

import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = ("cluster", "heat_driver", "nova_driver")
# the keys that make up the contract; descriptions may be worded per role
CONTRACT_KEYS = ("type", "elements", "choices", "required", "default", "no_log")
# the table's "type" column, as argument_specs types
SECRET_VARS = {"coe_auth", "coe_secret_key"}
# what the front door hands a driver besides the shared interface (docs/internals.md)
HANDOFF_VARS = {"coe_cluster", "coe_operation", "coe_lock_token", "coe_finish", "coe_actor"}


def load_spec(role, shared_only=True):
    """The options of a role's main entry point (only the shared coe_* ones unless told)."""
    path = os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")
    with open(path) as f:
        options = yaml.safe_load(f)["argument_specs"]["main"]["options"]
    if shared_only:
        options = {k: v for k, v in options.items() if k.startswith("coe_")}
    return options


def contract(options):
    """{name: {type, elements, choices, required, default, no_log, options: {...}}} of a spec."""
    result = {}
    for name, spec in options.items():
        entry = {key: spec.get(key) for key in CONTRACT_KEYS if spec.get(key) not in (None, False)}
        entry.setdefault("type", "str")
        if spec.get("options"):
            entry["options"] = contract(spec["options"])
        result[name] = entry
    return result


def documented_variables():
    """The coe_* names of the interface table in docs/internals.md."""
    with open(os.path.join(REPO, "docs", "internals.md")) as f:
        text = f.read()
    section = text.split("## The shared `coe_*` variable interface", 1)[1]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `coe_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(coe_[a-z_]+)`", first_cell))
    return names


def test_front_door_declares_exactly_the_documented_interface():
    assert set(load_spec("cluster")) == documented_variables()


@pytest.mark.parametrize("role", ROLES)
def test_private_options_carry_the_role_prefix(role):
    prefix = role.split("_")[0] + "_"
    for name in load_spec(role, shared_only=False):
        assert name.startswith(("coe_", prefix)), "roles/%s option %s is neither coe_* nor %s*" % (role, name, prefix)


@pytest.mark.parametrize("driver", ["heat_driver", "nova_driver"])
def test_driver_interface_equals_front_door(driver):
    front = contract(load_spec("cluster"))
    theirs = contract({k: v for k, v in load_spec(driver).items() if k not in HANDOFF_VARS})
    assert sorted(theirs) == sorted(front), "variables differ from roles/cluster"
    for name in front:
        assert theirs[name] == front[name], "%s: %s declares %r, roles/cluster %r" % (
            name,
            driver,
            theirs[name],
            front[name],
        )


@pytest.mark.parametrize("driver", ["heat_driver", "nova_driver"])
def test_driver_declares_what_the_front_door_hands_it(driver):
    spec = load_spec(driver)
    assert set(spec) >= HANDOFF_VARS, "%s must declare %s" % (driver, ", ".join(sorted(HANDOFF_VARS - set(spec))))
    assert spec["coe_cluster"].get("type") == "dict"
    assert set(spec["coe_operation"].get("choices") or []) >= {"create", "update", "upgrade", "delete"}


def test_front_door_does_not_take_the_handoff_variables():
    assert not HANDOFF_VARS & set(load_spec("cluster"))


@pytest.mark.parametrize("role", ROLES)
def test_secrets_are_no_log(role):
    spec = load_spec(role)
    for name in SECRET_VARS:
        assert spec[name].get("no_log") is True, "%s of roles/%s must be no_log" % (name, role)


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_agree_with_spec(role):
    spec = load_spec(role, shared_only=False)
    path = os.path.join(REPO, "roles", role, "defaults", "main.yml")
    with open(path) as f:
        defaults = yaml.safe_load(f) or {}
    for name, value in defaults.items():
        assert name in spec, "roles/%s/defaults/main.yml sets %s, which its argument_specs do not declare" % (
            role,
            name,
        )
        if "default" in spec[name]:
            assert value == spec[name]["default"], "%s: defaults/main.yml says %r, the spec %r" % (
                name,
                value,
                spec[name]["default"],
            )


def test_contract_detects_drift():
    """The comparison itself catches a changed type, a lost no_log and a changed suboption."""
    front = load_spec("cluster")
    base = contract(front)
    retyped = dict(front, coe_master_count=dict(front["coe_master_count"], type="str"))
    assert contract(retyped) != base
    leaky = dict(front, coe_auth={k: v for k, v in front["coe_auth"].items() if k != "no_log"})
    assert contract(leaky) != base
    groups = dict(front["coe_nodegroups"])
    groups["options"] = dict(groups["options"], node_count=dict(groups["options"]["node_count"], default=2))
    assert contract(dict(front, coe_nodegroups=groups)) != base


def test_the_front_doors_heat_converge_has_the_heat_driver_roles_defaults():
    """The front door converges a Heat cluster in its own module call with the heat_driver
    role's defaults (heat.driver.FRONT_DOOR_DEFAULTS) where the caller set no heat_* variable."""
    from ansible_collections.coe.openstack.plugins.module_utils.heat.driver import FRONT_DOOR_DEFAULTS

    with open(os.path.join(REPO, "roles", "heat_driver", "defaults", "main.yml")) as f:
        defaults = yaml.safe_load(f)
    assert (
        dict(
            image_update_policy=defaults["heat_image_update_policy"],
            master_image_update_policy=defaults["heat_master_image_update_policy"],
            pause_time=defaults["heat_upgrade_pause_time"],
        )
        == FRONT_DOOR_DEFAULTS
    )
