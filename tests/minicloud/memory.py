"""Memory of the running local cloud: RSS and PSS per service, summed over its process group.

Usage: memory.py STATE_DIR [--watch SECONDS]   (``minicloud mem`` runs it)
With --watch it samples every 0.5 s for that long and prints the peak total.
"""

import os
import sys
import time


def groups(state_dir):
    """{service name: process group id} from the PID files (each service is its own group)."""
    run = os.path.join(state_dir, "run")
    result = {}
    for entry in sorted(os.listdir(run)) if os.path.isdir(run) else []:
        if entry.endswith(".pid"):
            with open(os.path.join(run, entry)) as f:
                result[entry[:-4]] = int(f.read().strip() or 0)
    return result


def rollup(pid):
    """(RSS KiB, PSS KiB) of one process, or None when it is gone."""
    values = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                key, _sep, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    values[key] = int(rest.split()[0])
    except OSError:
        return None
    return values.get("Rss", 0), values.get("Pss", 0)


def sample(state_dir):
    """{service: [rss KiB, pss KiB, process count]}; a service's processes share its group id
    (erlang's helper processes start their own groups: they are counted by parent)."""
    wanted = groups(state_dir)
    by_group = {pgid: name for name, pgid in wanted.items()}
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(entry)] = (int(fields[1]), int(fields[2]))  # ppid, pgrp
    owner = {}

    def service_of(pid, depth=0):
        if pid in owner:
            return owner[pid]
        ppid, pgrp = procs.get(pid, (0, 0))
        name = by_group.get(pgrp)
        if name is None and ppid > 1 and depth < 20:
            name = service_of(ppid, depth + 1)
        owner[pid] = name
        return name

    result = {}
    for pid in procs:
        name = service_of(pid)
        if name is None:
            continue
        mem = rollup(pid)
        if mem is None:
            continue
        entry = result.setdefault(name, [0, 0, 0])
        entry[0] += mem[0]
        entry[1] += mem[1]
        entry[2] += 1
    return result


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--watch"):
        sys.exit(__doc__)
    state_dir = argv[1]
    if len(argv) == 4:
        end = time.monotonic() + float(argv[3])
        peak = (0, 0)
        while time.monotonic() < end:
            per = sample(state_dir)
            total = (sum(v[0] for v in per.values()), sum(v[1] for v in per.values()))
            peak = max(peak, total)
            time.sleep(0.5)
        print("peak total RSS %.0f MiB, PSS %.0f MiB" % (peak[0] / 1024, peak[1] / 1024))
        return
    per = sample(state_dir)
    print("%-24s %9s %9s %6s" % ("SERVICE", "RSS MiB", "PSS MiB", "PROCS"))
    for name in sorted(per):
        rss, pss, n = per[name]
        print("%-24s %9.0f %9.0f %6d" % (name, rss / 1024, pss / 1024, n))
    rss = sum(v[0] for v in per.values())
    pss = sum(v[1] for v in per.values())
    print("%-24s %9.0f %9.0f %6d" % ("total", rss / 1024, pss / 1024, sum(v[2] for v in per.values())))


if __name__ == "__main__":
    main(sys.argv)
