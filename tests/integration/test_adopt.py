"""The cloud is the source of truth for what exists: no twin from a second store, adopt a lost one.

One cluster per driver (1 master + 1 worker), made with store A, carries every step:

1. the same inventory and the create playbook run with store B (a second SQLite file) is
   refused, naming the cluster's uuid: no record, no event in B, no write call to the cloud;
2. the record is removed from A by hand: A's sync reports the cluster as an orphan (uuid, name,
   servers), deleting nothing;
3. adopted into B: the record matches what A had (counts, node names, addresses, driver,
   template version); a re-run of create with the same inventory changes nothing and makes no
   write call; scale-out is refused naming the missing credentials (no write); scale-in
   works;
4. adopted again with the export of store A (coe.openstack.store_backup, taken after the
   create): the credentials are restored, scale-out and the kubeconfig work; delete works.

Adopting a cluster the store manages already, a name the cloud lacks, a name twice, and the
kubeconfig refusal are unit tests (test_adoption.py, test_cluster_kubeconfig.py): no cloud needed.
"""

import os
import stat

import pytest
from coe_runner import RequestLog, Runner, short_id, template

from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
from ansible_collections.coe.openstack.plugins.module_utils.store import export

pytestmark = pytest.mark.usefixtures("minicloud")


def nodes(record):
    return {g["name"]: sorted(n["name"] for n in g["nodes"]) for g in record["nodegroups"]}


def shape_of(record):
    """What an adopted record must have as the original had it."""
    return dict(
        driver=record["driver"],
        template=(record["cluster_template_name"], record["template_version"]),
        master_count=record["master_count"],
        node_count=record["node_count"],
        nodes=nodes(record),
        master_addresses=sorted(record["master_addresses"]),
        node_addresses=sorted(record["node_addresses"]),
        api_address=record["api_address"],
        stack_id=record["stack_id"],
        last_index={g["name"]: g.get("last_index") for g in record["nodegroups"]},
    )


@pytest.mark.parametrize("driver", ["heat", "nova"])
def test_no_twin_orphan_report_and_adoption(driver, runner, user, tmp_path):
    tname = "ad-%s-%s" % (driver, short_id())
    name = "ad-%s-%s" % (driver[0], short_id())
    runner.templates(template(tname, driver))
    spec = dict(coe_cluster_template=tname, coe_master_count=1, coe_node_count=1)
    other = Runner(tmp_path / "b", user)  # a second store: another SQLite file, the same key
    other.env["COE_SECRET_KEY"] = runner.env["COE_SECRET_KEY"]  # what a lost store leaves: its key
    os.makedirs(other.tmp, exist_ok=True)
    export_path = os.path.join(runner.tmp, "backups", "store-a.json")
    other.templates(template(tname, driver))
    log = RequestLog(user.id)
    owner, uuid = runner, None
    try:
        result = runner.run("create", {name: spec})
        assert result.rc == 0, result
        original = runner.record(name)
        uuid = original["uuid"]
        assert original["status"] == "CREATE_COMPLETE", original
        result = runner.run("store_backup", extra={"coe_store_export": export_path})
        assert result.rc == 0 and "1 with credentials" in result.out, result
        assert stat.S_IMODE(os.stat(export_path).st_mode) == 0o600

        # (1) the twin: the same inventory with store B is refused before any write
        log.mark()
        result = other.run("create", {name: spec})
        assert result.rc != 0, result
        assert "already exists in the cloud" in result.out and uuid in result.out, result
        assert "coe.openstack.adopt" in result.out, result
        assert log.writes() == [], log.writes()
        assert other.record(name) is None
        with other.store() as store:
            assert store.list_events(target=name) == []

        # (4) the record removed by hand: A's sync reports the cluster, deletes nothing
        with runner.store() as store:
            record = store.find_cluster("default", name)
            store.delete_cluster(record, record["generation"], message="removed by hand (test)")
        result = runner.run("sync")
        assert result.rc == 0, result
        assert "orphan" in result.out and uuid in result.out and "%s-master-0" % name in result.out, result
        assert user.conn.compute.find_server("%s-master-0" % name) is not None

        # (2) adopted into store B: the record is what A had
        result = other.run("adopt", extra={"coe_cluster_name": name})
        assert result.rc == 0, result
        owner = other
        adopted = other.record(name)
        assert adopted["uuid"] == uuid and adopted["status"] == "CREATE_COMPLETE", adopted
        assert shape_of(adopted) == shape_of(original)
        assert "credentials" in adopted["status_reason"] and "credentials" in result.out, adopted
        assert adopted["adopted"]["missing"], adopted

        # a re-run of create with the same inventory changes nothing, no write call
        log.mark()
        result = other.run("create", {name: spec})
        assert result.rc == 0, result
        assert result.recap[name]["changed"] == 0, result
        assert log.writes() == [], log.writes()

        # scale-out needs the CAs: refused, naming them and the way out, before any write
        log.mark()
        result = other.run("update", {name: dict(spec, coe_node_count=2)})
        assert result.rc != 0, result
        assert "without its credentials" in result.out and "store_restore" in result.out, result
        assert log.writes() == [], log.writes()

        # scale-in works without them
        result = other.run("update", {name: dict(spec, coe_node_count=0)})
        assert result.rc == 0, result
        record = other.record(name)
        assert record["status"] == "UPDATE_COMPLETE" and record["node_count"] == 0, record
        assert nodes(record)["default-worker"] == []
        assert user.conn.compute.find_server("%s-default-worker-0" % name) is None

        # (3) adopted again with store A's export: the credentials come back, scale-out works
        result = other.run("adopt", extra={"coe_cluster_name": name, "coe_store_export": export_path})
        assert result.rc == 0 and "credentials pki restored" in result.out, result
        record = other.record(name)
        assert "credentials" not in record["status_reason"], record
        result = other.run("update", {name: dict(spec, coe_node_count=1)})
        assert result.rc == 0, result
        record = other.record(name)
        assert record["status"] == "UPDATE_COMPLETE" and record["node_count"] == 1, record
        assert len(nodes(record)["default-worker"]) == 1, record
        assert user.conn.compute.find_server(nodes(record)["default-worker"][0]) is not None
        # and the kubeconfig: signed by the cluster's own CA (the one store A made)
        kubeconfig = os.path.join(other.tmp, "kube", "%s.conf" % name)
        result = other.run("kubeconfig", {name: {"coe_kubeconfig_path": kubeconfig}})
        assert result.rc == 0, result
        assert stat.S_IMODE(os.stat(kubeconfig).st_mode) == 0o600
        with open(kubeconfig) as handle:
            text = handle.read()
        box = secrets.SecretBox(runner.env["COE_SECRET_KEY"])
        blob = export.cluster_credentials(export_path, box, uuid)["pki"]
        ca_pem = pki.ClusterCredentials.from_json(box.open(uuid, "pki", blob)).ca.cert_pem
        parsed = pki.read_kubeconfig(text)
        assert parsed["ca_pem"] == ca_pem and parsed["server"] == original["api_address"], parsed["server"]
        assert pki.verify_issued_by(parsed["cert_pem"], ca_pem)
        with open(export_path) as handle:
            assert "PRIVATE KEY" not in handle.read()
    finally:
        if uuid and owner.record(name) is None and runner.record(name) is None:
            other.run("adopt", extra={"coe_cluster_name": name})  # the test failed in between
            owner = other
        result = owner.run("delete", {name: spec})
        assert result.rc == 0, result
        assert owner.record(name) is None
        assert list(user.conn.compute.servers(tags="coe-cluster-%s" % uuid)) == []
