#!/usr/bin/env python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Benchmark (not a test): masters of a hard anti-affinity group, in waves vs all at once.

In the same run, against the same cloud, interleaved round by round (the order swaps
every round), each round with a new server group of its own:

1. ``waves``: the Nova driver's batch code as ``nova_servers`` runs it (NovaBatch.apply):
   each master posted once Nova has placed the one before (NovaBatch.waves, wait_placed);
2. ``at once``: the same code with the group's policy unknown to NovaBatch, so the
   masters are posted together (what the driver did until 2026-12-03).

Each phase is timed from the first POST to every master ACTIVE or ERROR (one tag-filtered
list per second); its servers are deleted, untimed, and Nova made to forget them before the
next phase. Prints, per variant, the median and the rounds' times, the masters that ended
in ERROR (Nova's fault), and the ratio waves/at once. On the local cloud (3 good hosts) use
``--masters 3``: as many hosts as masters, where the race costs a master.

Usage: OS_CLIENT_CONFIG_FILE=.minicloud/clouds.yaml .venv/bin/python benchmarks/strict_groups.py
       [--cloud minicloud] [--rounds 5] [--masters 3] [--network private]
       [--flavor m1.small] [--image fake-image]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid as uuidlib

import openstack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from nova_50 import cleanup, nodegroup  # noqa: E402  (nova_50 also links the collection for the imports)


def one_phase(conn, args, staggered):
    from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner
    from ansible_collections.coe.openstack.plugins.module_utils.nova.client import NovaBatch
    from ansible_collections.coe.openstack.plugins.module_utils.servers import wait_until_forgotten

    cluster_uuid = str(uuidlib.uuid4())
    name = "bench-sg-%s" % cluster_uuid[:6]
    group = conn.compute.create_server_group(name="coe-%s-default-master" % cluster_uuid, policy="anti-affinity")
    batch = NovaBatch(conn, cluster_uuid, name, poll_interval=1.0)
    masters = nodegroup(args, "default-master", "master", args.masters, server_group=group.id)
    try:
        views = batch.list_views()
        resolved = batch.resolve([masters])
        if not staggered:
            batch.group_policies.clear()
        specs, _last, _removed = planner.desired_from_nodegroups(name, [masters], views, resolved=resolved)
        plan = planner.make_plan(specs, views)
        started = time.monotonic()
        result = batch.apply(plan, resolved, wait=True, timeout=600, check_quota=False)
        elapsed = time.monotonic() - started
        return elapsed, dict(result["failed"])
    finally:
        tag = "coe-cluster-%s" % cluster_uuid
        cleanup(conn, tag)
        # the next phase's group is a new one, but its hosts must not still hold these servers
        wait_until_forgotten(lambda: list(conn.compute.servers(details=True, tags=tag)))
        conn.compute.delete_server_group(group, ignore_missing=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", default="minicloud")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--network", default="private")
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--image", default="fake-image")
    args = parser.parse_args()
    conn = openstack.connect(cloud=args.cloud)
    conn.authorize()
    times = {"waves": [], "at once": []}
    lost = {"waves": [], "at once": []}
    for number in range(args.rounds):
        order = ["waves", "at once"] if number % 2 == 0 else ["at once", "waves"]
        for variant in order:
            elapsed, failed = one_phase(conn, args, staggered=variant == "waves")
            times[variant].append(elapsed)
            lost[variant].extend("round %d %s: %s" % (number + 1, n, f) for n, f in sorted(failed.items()))
            print(
                "round %d %-8s %6.1f s  %d of %d masters in ERROR"
                % (number + 1, variant, elapsed, len(failed), args.masters)
            )
    print()
    for variant in ("waves", "at once"):
        print(
            "%-8s median %5.1f s  rounds %s  masters in ERROR: %d of %d"
            % (
                variant,
                statistics.median(times[variant]),
                " ".join("%.1f" % t for t in times[variant]),
                len(lost[variant]),
                args.masters * args.rounds,
            )
        )
        for line in lost[variant]:
            print("    %s" % line)
    print(
        "ratio waves / at once (medians): %.2f"
        % (statistics.median(times["waves"]) / statistics.median(times["at once"]))
    )


if __name__ == "__main__":
    main()
