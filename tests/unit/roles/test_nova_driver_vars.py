"""The nova_driver role's derived variables (vars/main.yml), rendered by Ansible itself.

One ansible-playbook run per case on localhost, no cloud: the role's defaults and vars
files are loaded as the role loads them, and the value the driver's modules get is printed.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BIN = os.path.dirname(sys.executable)
ROLE = os.path.join(REPO, "roles", "nova_driver")


def rendered(tmp_path, variable, extra_vars):
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars_files": [os.path.join(ROLE, "defaults", "main.yml"), os.path.join(ROLE, "vars", "main.yml")],
                    "tasks": [{"ansible.builtin.debug": {"msg": "VALUE{{ %s | to_json }}VALUE" % variable}}],
                }
            ]
        )
    )
    (tmp_path / "vars.json").write_text(json.dumps(extra_vars))
    proc = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), str(playbook), "-e", "@%s" % (tmp_path / "vars.json")],
        check=False,
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False"),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    value = proc.stdout.split("VALUE", 2)[1]
    return json.loads(value.encode().decode("unicode_escape"))


CLUSTER = dict(
    nodegroups=[dict(name="default-master", role="master"), dict(name="gpu", role="worker")],
    template=dict(master_server_group_policy="soft-anti-affinity"),
)


@pytest.mark.parametrize(
    "extra, groups",
    [
        # not set: the masters' entry is left to the modules, which take the template's policy
        (dict(), {}),
        (dict(nova_driver_master_server_group_policy="affinity"), {"default-master": "affinity"}),
        (
            dict(nova_driver_worker_server_group_policy="soft-affinity"),
            {"gpu": "soft-affinity"},
        ),
    ],
)
def test_server_groups_give_the_masters_policy_only_when_the_variable_is_set(tmp_path, extra, groups):
    assert rendered(tmp_path, "nova_driver_server_groups", dict(extra, coe_cluster=CLUSTER)) == groups
