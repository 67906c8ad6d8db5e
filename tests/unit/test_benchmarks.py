# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The counting and the arithmetic of benchmarks/run.py, without a cloud."""

from __future__ import annotations

import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")
sys.path.insert(0, BENCHMARKS)

import counting  # noqa: E402
import heat_alone  # noqa: E402

ROLE = "/c/ansible_collections/coe/openstack/roles/cluster/tasks/"


def events(tmp_path, lines):
    path = tmp_path / "run.events"
    path.write_text("".join("\t".join(str(f) for f in line) + "\n" for line in lines))
    return str(path)


def test_launches_belong_to_the_task_before_them_and_the_wait_loop_is_apart(tmp_path):
    path = events(
        tmp_path,
        [
            ("P", 100.0),
            ("T", 100.5, ROLE + "main.yml:57", "coe.openstack.cluster", "Plan"),
            ("L", "AnsiballZ_cluster.py"),
            ("T", 101.5, ROLE + "operate.yml:6", "ansible.builtin.set_fact", "Note"),
            ("T", 101.6, ROLE + "wait.yml:6", "coe.openstack.cluster_sync", "Poll"),
            ("L", "AnsiballZ_cluster_sync.py"),
            ("T", 103.6, ROLE + "wait.yml:38", "ansible.builtin.wait_for", "Wait before the next poll"),
            ("L", "AnsiballZ_wait_for.py"),
            ("T", 108.6, ROLE + "wait.yml:6", "coe.openstack.cluster_sync", "Poll"),
            ("L", "AnsiballZ_cluster_sync.py"),
            ("T", 110.6, ROLE + "operate.yml:148", "coe.openstack.cluster_lock", "Release"),
            ("L", "AnsiballZ_cluster_lock.py"),
            ("E", 111.6),
        ],
    )
    ev = counting.read_events(path, started=99.0, ended=112.0)
    assert (ev["tasks"], ev["processes"], ev["polls"], ev["waits"]) == (6, 2, 2, 1)
    assert ev["modules"] == {"cluster": 1, "cluster_lock": 1}
    assert ev["startup"] == 1.5 and ev["teardown"] == 0.4
    assert ev["in_tasks"] == pytest.approx(0.1)
    assert ev["profile"][0] == (5.0, "Wait before the next poll", "ansible.builtin.wait_for", 1)
    assert ev["profile"][1] == (4.0, "Poll", "coe.openstack.cluster_sync", 2)


def test_a_missing_events_file_is_no_process(tmp_path):
    ev = counting.read_events(str(tmp_path / "none"), started=1.0, ended=2.0)
    assert (ev["tasks"], ev["processes"], ev["polls"]) == (0, 0, 0)


def test_token_sizes_read_keystone_uwsgi_lines_of_issued_tokens_only():
    text = "\n".join(
        [
            "[pid: 1|app: 0|req: 1/1] 127.0.0.1 () {32 vars in 474 bytes} [Tue Dec  1 21:36:47 2026] "
            "POST /v3/auth/tokens => generated 4078 bytes in 85 msecs (HTTP/1.1 201) 6 headers in 385 bytes",
            "[pid: 1|app: 0|req: 2/2] 127.0.0.1 () {32 vars in 474 bytes} [Tue Dec  1 21:36:48 2026] "
            "POST /v3/auth/tokens => generated 114 bytes in 85 msecs (HTTP/1.1 401) 6 headers in 385 bytes",
            "[pid: 1|app: 0|req: 3/3] 127.0.0.1 () {24 vars in 246 bytes} [Tue Dec  1 21:36:49 2026] "
            "GET /v3/auth/tokens => generated 4078 bytes in 1 msecs (HTTP/1.1 200) 6 headers in 229 bytes",
        ]
    )
    assert counting.token_sizes(text) == [4078]


def test_calls_summary_tells_token_issues_from_writes():
    calls = [
        ("POST", "keystone", "/v3/auth/tokens", 201),
        ("GET", "nova", "/v2.1/servers", 200),
        ("POST", "nova", "/v2.1/servers", 202),
        ("DELETE", "neutron", "/v2.0/ports/x", 204),
    ]
    out = counting.summarise_calls(calls)
    assert (out["total"], out["token_issues"], out["writes"]) == (4, 1, 2)
    assert out["by_service"] == {"keystone": 1, "nova": 2, "neutron": 1}


def test_heat_alone_renders_the_drivers_stack_and_trims_named_members():
    template = dict(
        name="t",
        image_id="fake-image",
        flavor_id="m1.small",
        master_flavor_id="m1.medium",
        keypair_id="demo-key",
        fixed_network="private",
        external_network_id="public",
        labels={"kube_tag": "v1.31.1"},
    )
    stack = heat_alone.HeatAlone(template, "bench-heatref10-abcd-1")
    stack.spec = stack.build(20)
    assert len(stack.spec.nodes["default-worker"]) == 20
    assert stack.spec.parameters["floating_ip_enabled"] is True  # Magnum's default with an external network
    names = ["bench-heatref10-abcd-1-default-worker-%d" % i for i in (2, 4, 6, 8, 10)]
    trimmed = stack.build(15, names)
    assert trimmed.parameters["default-worker_count"] == 15
    assert trimmed.parameters["default-worker_removal_policies"] == [{"resource_list": ["2", "4", "6", "8", "10"]}]
    assert not set(names) & set(trimmed.nodes["default-worker"])
    user_data = [v for k, v in trimmed.files.items() if heat_alone.heat_builder().is_user_data_file(k)]
    assert len(user_data) == 16 and set(user_data) == {heat_alone.PLACEHOLDER_USER_DATA}
