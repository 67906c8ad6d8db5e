"""The attributes fragment: every module declares check_mode, diff_mode and idempotent.

The documentation is merged with its fragments by Ansible's own code (as ansible-doc and
validate-modules do), in a separate interpreter so that its collection loader stays there.
"""

import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "plugins", "modules")) if f.endswith(".py"))
# what differs from the fragment's "full": acquiring a lease gives a new token each time
PARTIAL = {"cluster_lock"}

MERGE = """
import ast, json, os, sys
import yaml
from ansible.plugins.loader import fragment_loader, init_plugin_loader
from ansible.utils.plugin_docs import add_fragments

init_plugin_loader()
out = {}
for path in sys.argv[1:]:
    tree = ast.parse(open(path).read())
    [text] = [n.value.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "DOCUMENTATION"]
    doc = yaml.safe_load(text)
    add_fragments(doc, path, fragment_loader=fragment_loader, is_module=True)
    out[os.path.basename(path)[:-3]] = doc["attributes"]
print(json.dumps(out))
"""


def test_every_module_declares_its_idempotence():
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".build", "collections"))
    paths = [
        os.path.join(
            REPO, ".build", "collections", "ansible_collections", "coe", "openstack", "plugins", "modules", "%s.py" % m
        )
        for m in MODULES
    ]
    proc = subprocess.run(
        [sys.executable, "-c", MERGE, *paths], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    attributes = json.loads(proc.stdout)
    assert sorted(attributes) == MODULES
    for name, attrs in attributes.items():
        assert set(attrs) >= {"check_mode", "diff_mode", "idempotent"}, name
        assert attrs["idempotent"]["support"] == ("partial" if name in PARTIAL else "full"), name
        assert attrs["idempotent"]["description"], name
    assert "while the certificate is valid" in attributes["cluster_kubeconfig"]["idempotent"]["description"]
    assert attributes["cluster_info"]["idempotent"]["description"] == "This module changes nothing."
