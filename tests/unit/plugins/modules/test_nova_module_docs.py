"""The Nova driver's modules document themselves completely: ansible-doc renders them,
options match the argument spec, every RETURN key says when it is returned and shows a sample."""

import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.coe.openstack.plugins.doc_fragments.store import ModuleDocFragment as StoreFragment
from ansible_collections.coe.openstack.plugins.module_utils.module import (
    LEASE_ARGUMENT_SPEC,
    OPENSTACK_ARGUMENT_SPEC,
    STORE_ARGUMENT_SPEC,
)
from ansible_collections.coe.openstack.plugins.modules import nova_resources, nova_servers

MODULES = {"nova_servers": nova_servers, "nova_resources": nova_resources}
CLASSES = {
    "nova_servers": nova_servers.NovaServersModule,
    "nova_resources": nova_resources.NovaResourcesModule,
}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_documentation_matches_the_argument_spec(name):
    doc = yaml.safe_load(MODULES[name].DOCUMENTATION)
    options = doc["options"]
    assert list(options) == sorted(options), "options are not sorted"
    own = dict(CLASSES[name].argument_spec)
    fragments = doc["extends_documentation_fragment"]
    if "coe.openstack.store.lease" in fragments:
        # the lease options are documented by the fragment, exactly as LEASE_ARGUMENT_SPEC declares them
        leased = yaml.safe_load(StoreFragment.LEASE)["options"]
        for option, spec in LEASE_ARGUMENT_SPEC.items():
            assert own.pop(option) == spec, option
            assert leased[option]["type"] == spec["type"] and leased[option].get("default") == spec.get("default")
    assert set(options) == set(own), "documented %s, spec %s" % (sorted(options), sorted(own))
    for option, spec in own.items():
        documented = options[option]
        assert documented.get("type", "str") == spec.get("type", "str"), option
        assert documented.get("default") == spec.get("default"), option
        assert sorted(documented.get("choices") or []) == sorted(spec.get("choices") or []), option
    assert "coe.openstack.openstack" in fragments
    assert ("coe.openstack.store" in fragments) == CLASSES[name].uses_store
    assert set(OPENSTACK_ARGUMENT_SPEC).isdisjoint(own) and set(STORE_ARGUMENT_SPEC).isdisjoint(own)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_return_key_says_when_and_shows_a_sample(name):
    ret = yaml.safe_load(MODULES[name].RETURN)
    assert list(ret) == sorted(ret)
    for key, spec in ret.items():
        assert spec.get("returned"), key
        assert "sample" in spec, key


@pytest.mark.parametrize("name", sorted(MODULES))
def test_examples_use_fully_qualified_names(name):
    examples = yaml.safe_load(MODULES[name].EXAMPLES)
    assert examples
    for task in examples:
        assert "coe.openstack.%s" % name in task, task["name"]


def test_ansible_doc_renders_them():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    proc = subprocess.run(
        [doc, "coe.openstack.nova_servers", "coe.openstack.nova_resources"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr, proc.stderr
    assert "coe.openstack.nova_servers" in proc.stdout and "coe.openstack.nova_resources" in proc.stdout
