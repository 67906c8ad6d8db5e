"""cluster_adopt and cluster_sync's orphans through the modules, the cloud faked at the census."""

import coe_helpers
import pytest

from ansible_collections.coe.openstack.plugins.module_utils import sync as sync_registry
from ansible_collections.coe.openstack.plugins.module_utils.servers import server_view
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import FakeSynchroniser
from ansible_collections.coe.openstack.plugins.modules import cluster_adopt

coe = coe_helpers.coe  # the fixture
coe_helpers.MODULES["cluster_adopt"] = cluster_adopt.main

UUID = "0f2b6c1e-1111-2222-3333-444455556666"


def _server(name, nodegroup, role):
    return server_view(
        dict(
            id="id-" + name,
            name=name,
            status="ACTIVE",
            metadata=dict(
                coe_cluster_uuid=UUID,
                coe_cluster_name="prod-a",
                coe_nodegroup=nodegroup,
                coe_role=role,
                coe_index="0",
                coe_template="k8s",
                coe_template_version="1",
            ),
            tags=["coe-cluster", "coe-cluster-" + UUID],
            flavor=dict(original_name="m1.small"),
        )
    )


@pytest.fixture
def cloud():
    """The cloud has one Nova cluster, prod-a, that no store knows yet."""
    servers = [
        _server("prod-a-master-0", "default-master", "master"),
        _server("prod-a-default-worker-0", "default-worker", "worker"),
    ]

    class Fake(FakeSynchroniser):
        cloud = {
            UUID: dict(
                uuid=UUID,
                name="prod-a",
                driver="nova",
                project_id="p1",
                resources={"servers": sorted(s["name"] for s in servers)},
                servers=servers,
                stack=None,
            )
        }

    sync_registry.register("nova", Fake)
    yield Fake
    sync_registry.unregister("nova")


def test_sync_reports_the_orphan_adopt_takes_it_and_a_second_adopt_says_it_is_managed(coe, cloud):
    assert not coe("cluster_template", **dict(coe_helpers.TEMPLATE, driver="nova")).failed
    synced = coe("cluster_sync")
    assert [(o["uuid"], o["name"], o["project_id"]) for o in synced["orphans"]] == [(UUID, "prod-a", "p1")]
    assert synced["orphans"][0]["resources"]["servers"] == ["prod-a-default-worker-0", "prod-a-master-0"]

    checked = coe("cluster_adopt", check_mode=True, name="prod-a")
    assert checked["changed"] and checked["adopted"] == ["prod-a"] and coe.store().list_clusters() == []

    adopted = coe("cluster_adopt", name="prod-a")
    assert adopted["changed"] and adopted["clusters"][0]["uuid"] == UUID, adopted
    assert any("credentials" in m for m in adopted["missing"]["prod-a"])
    assert coe("cluster_sync")["orphans"] == []

    again = coe("cluster_adopt", name="prod-a")
    assert not again["changed"] and "already manages prod-a" in again["msg"], again


def test_a_name_the_cloud_lacks_is_refused(coe, cloud):
    result = coe("cluster_adopt", name="prod-b")
    assert result.failed and "no cluster called prod-b" in result["msg"] and result["field"] == "name"


KEY = "correct horse battery staple 42"


@pytest.fixture
def lost_export(tmp_path):
    """An export of the store that managed prod-a (uuid UUID), with its credentials."""
    from ansible_collections.coe.openstack.plugins.module_utils import pki, secrets
    from ansible_collections.coe.openstack.plugins.module_utils.store import export, open_store

    box = secrets.SecretBox(KEY)
    with open_store("sqlite://%s" % (tmp_path / "lost.db")) as lost:
        lost.create_cluster(
            dict(
                uuid=UUID,
                name="prod-a",
                project_id="default",
                status="CREATE_COMPLETE",
                driver="nova",
                cluster_template_name="k8s",
                template_version=1,
                labels={},
            )
        )
        creds = pki.ensure_cluster_credentials(lost, UUID, box, "prod-a")
        path = str(tmp_path / "lost.json")
        export.write_export(path, export.build_export(lost, box))
    return dict(path=path, fingerprint=creds.ca_fingerprint, box=box)


def test_adopt_with_an_export_restores_the_credentials(coe, cloud, lost_export):
    from ansible_collections.coe.openstack.plugins.module_utils import pki

    assert not coe("cluster_template", **dict(coe_helpers.TEMPLATE, driver="nova")).failed
    wrong = coe("cluster_adopt", name="prod-a", store_export=lost_export["path"], secret_key="another key, long enough")
    assert wrong.failed and "written with another secret key" in wrong["msg"]
    assert coe.store().list_clusters() == [], "refused before anything is written"

    args = dict(name="prod-a", store_export=lost_export["path"], secret_key=KEY)
    checked = coe("cluster_adopt", check_mode=True, **args)
    assert checked["changed"] and checked["credentials_restored"] == {"prod-a": ["pki"]}
    assert coe.store().list_secrets(UUID) == []

    adopted = coe("cluster_adopt", **args)
    assert adopted["credentials_restored"] == {"prod-a": ["pki"]}, adopted
    assert not any(m.startswith("credentials") for m in adopted["missing"]["prod-a"])
    assert "credentials" not in adopted["clusters"][0]["status_reason"]
    with coe.store() as store:
        assert (
            pki.load_cluster_credentials(store, UUID, lost_export["box"]).ca_fingerprint == (lost_export["fingerprint"])
        )
    again = coe("cluster_adopt", **args)
    assert not again["changed"] and again["credentials_restored"] == {}, again
    assert KEY not in str([wrong, checked, adopted, again])


def test_a_cluster_adopted_without_credentials_gets_them_from_a_later_adopt_with_the_export(coe, cloud, lost_export):
    assert not coe("cluster_template", **dict(coe_helpers.TEMPLATE, driver="nova")).failed
    first = coe("cluster_adopt", name="prod-a")
    assert any(m.startswith("credentials") for m in first["missing"]["prod-a"])
    later = coe("cluster_adopt", name="prod-a", store_export=lost_export["path"], secret_key=KEY)
    assert later["changed"] and later["credentials_restored"] == {"prod-a": ["pki"]}, later
    with coe.store() as store:
        record = store.get_cluster(UUID)
        assert store.list_secrets(UUID) == ["pki"]
    assert not any(m.startswith("credentials") for m in record["adopted"]["missing"])
    assert "credentials" not in record["status_reason"]
