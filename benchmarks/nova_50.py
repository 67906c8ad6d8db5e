#!/usr/bin/env python
# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Benchmark (not a test): 50 workers with the Nova driver vs plain openstacksdk.

In the same run, against the same cloud:

1. ``driver``: the Nova driver's batch code (plugins/module_utils/nova, what
   the ``nova_servers`` module runs after connecting): one server list,
   reference lookups, quota check, 50 concurrent creates on one shared
   Connection, one tag-filtered list per poll until all are ACTIVE;
2. ``raw``: the floor: plain openstacksdk, a ThreadPoolExecutor of the same
   width on one shared Connection, ``create_server`` for the same 50 servers,
   one tag-filtered list per second until all are ACTIVE.

Each phase authenticates its own Connection inside the timed part; the servers
of each phase are deleted (untimed) before the next one. Prints both times and
the ratio driver/raw (the aim is <= 1.3).

Usage: OS_CLIENT_CONFIG_FILE=.minicloud/clouds.yaml .venv/bin/python benchmarks/nova_50.py
       [--cloud minicloud] [--count 50] [--concurrency 10] [--network private]
       [--flavor m1.small] [--image fake-image] [--order raw,driver]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
import uuid as uuidlib

import openstack

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
COLLECTIONS = os.path.join(REPO, ".build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "coe", "openstack")
if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(REPO, LINK)
sys.path.insert(0, COLLECTIONS)


def cleanup(conn, tag, timeout=300):
    servers = list(conn.compute.servers(details=False, tags=tag))
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda s: conn.compute.delete_server(s.id, ignore_missing=True), servers))
    deadline = time.monotonic() + timeout
    while list(conn.compute.servers(details=False, tags=tag)):
        if time.monotonic() > deadline:
            raise SystemExit("servers tagged %s still there after %ds" % (tag, timeout))
        time.sleep(1)


def nodegroup(args, name, role, count, **extra):
    """A nodegroup as the Nova driver reads it, of the image, flavor and network in ``args``."""
    return dict(
        name=name,
        role=role,
        count=count,
        flavor=args.flavor,
        image=args.image,
        networks=[{"network": args.network}],
        **extra,
    )


def run_driver(args, cluster_uuid, name):
    from ansible_collections.coe.openstack.plugins.module_utils.nova import build as planner
    from ansible_collections.coe.openstack.plugins.module_utils.nova.client import NovaBatch

    started = time.monotonic()
    conn = openstack.connect(cloud=args.cloud)
    conn.authorize()
    batch = NovaBatch(conn, cluster_uuid, name, concurrency=args.concurrency, poll_interval=1.0)
    group = nodegroup(args, "default-worker", "worker", args.count)
    views = batch.list_views()
    resolved = batch.resolve([group])
    specs, _last, _removed = planner.desired_from_nodegroups(name, [group], views, resolved=resolved)
    plan = planner.make_plan(specs, views)
    result = batch.apply(plan, resolved, wait=True, timeout=600)
    elapsed = time.monotonic() - started
    active = [v for v in result["views"] if v["status"] == "ACTIVE"]
    return elapsed, len(active), result["failed"], conn


def run_raw(args, tag):
    started = time.monotonic()
    conn = openstack.connect(cloud=args.cloud)
    conn.authorize()
    image = conn.image.find_image(args.image, ignore_missing=False)
    flavor = conn.compute.find_flavor(args.flavor, ignore_missing=False)
    network = conn.network.find_network(args.network, ignore_missing=False)

    def create(i):
        return conn.compute.create_server(
            name="bench-raw-%d" % i,
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"uuid": network.id}],
            tags=[tag],
        )

    with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
        ids = {s.id for s in pool.map(create, range(1, args.count + 1))}
    while True:
        servers = {s.id: s for s in conn.compute.servers(details=True, tags=tag)}
        done = [i for i in ids if i in servers and servers[i].status in ("ACTIVE", "ERROR")]
        if len(done) == len(ids):
            break
        time.sleep(1)
    elapsed = time.monotonic() - started
    active = [i for i in ids if servers[i].status == "ACTIVE"]
    return elapsed, len(active), conn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", default=os.environ.get("OS_CLOUD", "minicloud"))
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--network", default="private")
    parser.add_argument("--flavor", default="m1.small")
    parser.add_argument("--image", default="fake-image")
    parser.add_argument("--order", default="raw,driver", help="which phase first (default raw,driver)")
    args = parser.parse_args()

    suffix = uuidlib.uuid4().hex[:6]
    cluster_uuid = str(uuidlib.uuid4())
    name = "bench-nova-%s" % suffix
    raw_tag = "coe-bench-raw-%s" % suffix
    times = {}
    for phase in args.order.split(","):
        if phase == "driver":
            elapsed, active, failed, conn = run_driver(args, cluster_uuid, name)
            print("driver: %d servers ACTIVE in %.1f s (failed: %d)" % (active, elapsed, len(failed)), flush=True)
            for server, reason in sorted(failed.items())[:5]:
                print("  %s: %s" % (server, reason))
            cleanup(conn, "coe-cluster-" + cluster_uuid)
        else:
            elapsed, active, conn = run_raw(args, raw_tag)
            print("raw openstacksdk: %d servers ACTIVE in %.1f s" % (active, elapsed), flush=True)
            cleanup(conn, raw_tag)
        times[phase] = elapsed
    if "driver" in times and "raw" in times:
        print("ratio driver/raw: %.2f (aim <= 1.3)" % (times["driver"] / times["raw"]))


if __name__ == "__main__":
    main()
