"""Make `ansible_collections.coe.openstack` importable for every test.

The collection's Python code imports itself as
`ansible_collections.coe.openstack...`. `.build/collections/ansible_collections/
coe/openstack` is a symlink to this repository (made here if missing, and by
`make collection-link`), and that folder goes first on sys.path.
"""

import json
import os
import sys
import tempfile
from io import StringIO
from unittest import mock

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "coe", "openstack")

if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(REPO, LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
# the modules' Keystone token cache (module.TokenCache): one of the test session's own
os.environ.setdefault("COE_TOKEN_CACHE_DIR", tempfile.mkdtemp(prefix="coe-token-cache-"))


class ModuleResult(dict):
    """What a module printed, as a dict; `.failed` says whether it failed."""

    @property
    def failed(self):
        return bool(self.get("failed"))


@pytest.fixture
def run_module():
    """Run a module's main() (or a CoeModule subclass) with args; return its result.

    Usage: ``result = run_module(cluster_info.main, {"name": "x"}, check_mode=True)``.
    """
    from ansible.module_utils.testing import patch_module_args

    def _run(main, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        out = StringIO()
        with patch_module_args(args), mock.patch("sys.stdout", out), pytest.raises(SystemExit):
            main()
        return ModuleResult(json.loads(out.getvalue()))

    return _run
