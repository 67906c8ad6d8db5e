"""Failure knobs of the local test cloud: project quotas.

Importable by tests (the ``minicloud`` fixture exposes them), and a command line
behind ``tests/minicloud/minicloud quota``::

    minicloud quota instances=2 cores=4        # the demo project
    minicloud quota --project admin ports=10
    minicloud quota load_balancers=0           # Octavia's quota
    minicloud quota --defaults                 # back to what init set
    minicloud quota                            # show

In a test, with an admin connection (cloud ``minicloud-admin``)::

    with knobs.quotas(admin_conn, "demo", instances=1):
        ...  # the second server create now fails with 403 "Quota exceeded for instances"

Other failure knobs need no code: flavor ``m1.huge`` fits no host (NoValidHost), the
compute host ``host-fail`` (alone in availability zone ``failzone``) fails every port
binding, and a 4th member of an anti-affinity group finds no host (3 good hosts).
"""

import argparse
import contextlib
import sys

COMPUTE_KEYS = ("instances", "cores", "ram", "key_pairs", "server_groups", "server_group_members", "metadata_items")
NETWORK_KEYS = ("ports", "networks", "subnets", "routers", "floating_ips", "security_groups", "security_group_rules")
# Octavia's (openstacksdk's names); -1 unlimited, Octavia's default
LOAD_BALANCER_KEYS = ("load_balancers", "listeners", "pools", "members", "health_monitors")
ALL_KEYS = COMPUTE_KEYS + NETWORK_KEYS + LOAD_BALANCER_KEYS

# What init sets for the demo project. cores/ram unlimited, so that m1.huge reaches the
# scheduler (NoValidHost) instead of failing the cores quota at API time.
DEFAULT_QUOTAS = {
    "instances": 200,
    "cores": -1,
    "ram": -1,
    "server_groups": 100,
    "server_group_members": 100,
    "ports": 500,
    "security_groups": 100,
    "security_group_rules": 1000,
    "floating_ips": 50,
}


def _split(quotas):
    unknown = sorted(set(quotas) - set(ALL_KEYS))
    if unknown:
        raise ValueError("unknown quota %s; known: %s" % (", ".join(unknown), ", ".join(ALL_KEYS)))
    compute = {k: int(v) for k, v in quotas.items() if k in COMPUTE_KEYS}
    network = {k: int(v) for k, v in quotas.items() if k in NETWORK_KEYS}
    octavia = {k: int(v) for k, v in quotas.items() if k in LOAD_BALANCER_KEYS}
    return compute, network, octavia


def _project_id(admin_conn, project):
    return admin_conn.identity.find_project(project, ignore_missing=False).id


def get_quotas(admin_conn, project="demo", keys=None):
    """Return {quota name: limit} for ``keys`` (default: all known) of ``project``."""
    keys = list(keys or ALL_KEYS)
    compute, network, octavia = _split(dict.fromkeys(keys, 0))
    result = {}
    if octavia:
        q = admin_conn.load_balancer.get_quota(_project_id(admin_conn, project))
        result.update({k: -1 if getattr(q, k) is None else getattr(q, k) for k in octavia})
    if compute:
        qs = admin_conn.get_compute_quotas(project)
        result.update({k: getattr(qs, k) for k in compute})
    if network:
        q = admin_conn.get_network_quotas(project)
        result.update({k: getattr(q, k) for k in network})
    return result


def set_quotas(admin_conn, project="demo", **quotas):
    """Set quotas of ``project`` (name or id); return the previous values of those quotas."""
    compute, network, octavia = _split(quotas)
    previous = get_quotas(admin_conn, project, quotas)
    if octavia:
        admin_conn.load_balancer.update_quota(_project_id(admin_conn, project), **octavia)
    if compute:
        admin_conn.set_compute_quotas(project, **compute)
    if network:
        admin_conn.set_network_quotas(project, **network)
    return previous


@contextlib.contextmanager
def quotas(admin_conn, project="demo", **new):
    """Context manager: set quotas of ``project``, restore the previous values on exit."""
    previous = set_quotas(admin_conn, project, **new)
    try:
        yield previous
    finally:
        set_quotas(admin_conn, project, **previous)


def main(argv=None):
    import openstack

    parser = argparse.ArgumentParser(prog="minicloud quota", description="Show or set project quotas.")
    parser.add_argument("--project", default="demo")
    parser.add_argument("--cloud", default="minicloud-admin")
    parser.add_argument("--defaults", action="store_true", help="restore the quotas init set")
    parser.add_argument("quota", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    new = dict(DEFAULT_QUOTAS) if args.defaults else {}
    for item in args.quota:
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            parser.error("expected KEY=INTEGER, got %r" % item)
        new[key] = int(value)
    conn = openstack.connect(cloud=args.cloud)
    try:
        before = set_quotas(conn, args.project, **new) if new else {}
    except ValueError as e:
        parser.error(str(e))
    now = get_quotas(conn, args.project)
    for key in ALL_KEYS:
        change = " (was %s)" % before[key] if key in before and before[key] != now[key] else ""
        print("%-22s %s%s" % (key, now[key], change))
    return 0


if __name__ == "__main__":
    sys.exit(main())
