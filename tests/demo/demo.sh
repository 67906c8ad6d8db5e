#!/usr/bin/env bash
# The main job of the README (`make demo`): from a fresh clone, set everything up, start
# the local cloud, create a Kubernetes cluster with each driver (Heat and Nova), scale
# one, show the clusters as a table, delete them, and print how long each step took.
#
#   tests/demo/demo.sh            (run from anywhere; `make demo` runs it)
#
# Everything runs through the collection's playbooks, as a user would run them:
#   ansible-playbook coe.openstack.{template,create,update,sync,delete} -i inventory
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
WORK="$REPO/.build/demo"
RUN_ID="$(date +%H%M%S)"
HEAT="demo-heat-$RUN_ID"
NOVA="demo-nova-$RUN_ID"

declare -a STEP_NAMES=() STEP_TIMES=()
step() { # step "what" command... : run, time and remember
    local what="$1" start end
    shift
    printf '\n\033[1m==> %s\033[0m\n' "$what"
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    STEP_NAMES+=("$what")
    STEP_TIMES+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
    printf '    (%.1fs)\n' "${STEP_TIMES[-1]}"
}

# -- set up (COE_DEMO_SKIP_SETUP=1: the venv and a running local cloud are already there) --
if [ -z "${COE_DEMO_SKIP_SETUP:-}" ]; then
    step "Project venv, Debian packages, collection link" make --no-print-directory venv system-deps collection-link
    step "Local OpenStack up (installs itself on first use)" tests/minicloud/minicloud up
fi

export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.build/collections"
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False
export OS_CLIENT_CONFIG_FILE="$REPO/.minicloud/clouds.yaml" OS_CLOUD=minicloud
rm -rf "$WORK" && mkdir -p "$WORK"
export COE_STATE_URL="sqlite:///$WORK/coe.db"
export COE_SECRET_KEY="demo-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
cd "$WORK"

cat > templates.yml <<YAML
coe_templates:
  - {name: k8s-heat, driver: heat, coe_version: v1.31.1, image_id: fake-image, flavor_id: m1.small, master_flavor_id: m1.medium,
     keypair_id: demo-key, fixed_network: private, external_network_id: public, labels: {kube_tag: v1.31.1}}
  - {name: k8s-nova, driver: nova, coe_version: v1.31.1, image_id: fake-image, flavor_id: m1.small, master_flavor_id: m1.medium,
     keypair_id: demo-key, fixed_network: private, external_network_id: public, labels: {kube_tag: v1.31.1}}
YAML
inventory() { # inventory NOVA_WORKERS
    cat > clusters.yml <<YAML
all:
  hosts:
    $HEAT: {coe_cluster_template: k8s-heat, coe_master_count: 3, coe_node_count: 2}
    $NOVA: {coe_cluster_template: k8s-nova, coe_master_count: 3, coe_node_count: $1}
YAML
}
playbook_strict() { # run a playbook, show its messages (plan, progress, errors), fail the demo when it fails
    local out rc=0
    out=$(ansible-playbook "$@" 2>&1) || rc=$?
    { printf '%s\n' "$out" | grep -E '"msg": "|fatal:|changed=' | sed -e 's/^ *//' -e 's/"msg": //'; } || true
    return $rc
}
table() {
    python - <<'PY'
import os, sys
sys.path.insert(0, os.environ["ANSIBLE_COLLECTIONS_PATH"])
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
rows = [("NAME", "DRIVER", "STATUS", "HEALTH", "MASTERS", "NODES", "API ADDRESS")]
with open_store() as store:
    for c in store.list_clusters():
        workers = sum(ng["node_count"] for ng in c.get("nodegroups") or [] if ng.get("role") != "master")
        rows.append((c["name"], c["driver"], c["status"], c.get("health_status") or "-",
                     str(c.get("master_count")), str(workers), c.get("api_address") or "-"))
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("    " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
PY
}
cleanup() {
    echo; echo "==> cleaning up after a failure"
    inventory 2
    ansible-playbook coe.openstack.delete -i clusters.yml -e coe_force=true >/dev/null 2>&1 || true
}
trap cleanup ERR

# -- the job -------------------------------------------------------------------------
inventory 2
step "Cluster templates k8s-heat and k8s-nova" playbook_strict coe.openstack.template -e @templates.yml
step "Create $HEAT (Heat driver: 3 masters, 2 workers)" playbook_strict coe.openstack.create -i clusters.yml -l "$HEAT"
step "Create $NOVA (Nova driver: 3 masters, 2 workers)" playbook_strict coe.openstack.create -i clusters.yml -l "$NOVA"
inventory 4
step "Scale $NOVA to 4 workers (check mode first: the plan)" playbook_strict coe.openstack.update -i clusters.yml -l "$NOVA" --check
step "Scale $NOVA to 4 workers" playbook_strict coe.openstack.update -i clusters.yml -l "$NOVA"
step "Synchronise every cluster with the cloud" playbook_strict coe.openstack.sync
step "The clusters" table
step "Delete both clusters" playbook_strict coe.openstack.delete -i clusters.yml
step "The clusters after the delete" table
trap - ERR

# -- timings ---------------------------------------------------------------------------
printf '\n\033[1m==> Time per step\033[0m\n'
total=0
for i in "${!STEP_NAMES[@]}"; do
    printf '    %7.1fs  %s\n' "${STEP_TIMES[$i]}" "${STEP_NAMES[$i]}"
    total=$(awk -v a="$total" -v b="${STEP_TIMES[$i]}" 'BEGIN { printf "%.3f", a + b }')
done
printf '    %7.1fs  total\n' "$total"
