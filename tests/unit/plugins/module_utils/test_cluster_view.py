"""clusters.cluster_view: the cluster as every module returns it (Magnum's and openstack.cloud's names)."""

import re

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import clusters
from ansible_collections.coe.openstack.plugins.module_utils.clusters import cluster_view

OPENSTACK_CLOUD_KEYS = set(clusters.OPENSTACK_CLOUD_KEYS)


def test_the_keys_are_openstacksdks():
    """openstack.cloud.coe_cluster returns openstacksdk's Cluster resource, to_dict(computed=False)."""
    sdk = pytest.importorskip("openstack.container_infrastructure_management.v1.cluster")
    assert set(sdk.Cluster(id="x").to_dict(computed=False)) == OPENSTACK_CLOUD_KEYS


def record(**over):
    base = dict(
        uuid="0f2b6c1e-1111-2222-3333-444455556666",
        name="demo",
        project_id="default",
        status="CREATE_COMPLETE",
        template_version=1,
        api_address="https://172.24.4.10:6443",
        floating_ip_enabled=True,
        master_lb_enabled=None,
        overrides={"labels": {}},
        nodegroups=[dict(name="default-worker", own_flavor_id=None, own_image_id=None, own_labels={})],
    )
    base.update(over)
    return base


def test_every_key_openstack_cloud_returns_with_its_names_beside_magnums():
    view = cluster_view(dict(name="demo", uuid="u-1", status="CREATE_COMPLETE"))
    assert set(view) >= OPENSTACK_CLOUD_KEYS
    assert view["id"] == view["uuid"] == "u-1"
    view = cluster_view(record())
    assert view["is_floating_ip_enabled"] is view["floating_ip_enabled"] is True
    assert view["is_master_lb_enabled"] is None and "master_lb_enabled" in view
    assert view["discovery_url"] is None  # no etcd discovery service: kubeadm joins


def test_internal_keys_stay_inside():
    view = cluster_view(record())
    assert "overrides" not in view
    assert view["nodegroups"] == [dict(name="default-worker")]
    assert view["version"] == 1


@pytest.mark.parametrize("stored", ["172.24.4.10", "https://172.24.4.10:6443", "172.24.4.10:6443"])
def test_api_address_is_magnums_url_whatever_the_record_holds(stored):
    """Records written before 0.1.0 hold the bare address: read in both forms, returned in one."""
    assert cluster_view(record(api_address=stored))["api_address"] == "https://172.24.4.10:6443"
    assert cluster_view(record(api_address=None))["api_address"] is None


def test_the_cluster_modules_document_the_keys_they_return():
    """cluster's RETURN lists every key of the view; cluster_sync and cluster_info point at it."""
    import yaml

    from ansible_collections.coe.openstack.plugins.modules import cluster, cluster_info, cluster_sync

    documented = yaml.safe_load(cluster.RETURN)["cluster"]
    contains = set(documented["contains"])
    assert contains >= OPENSTACK_CLOUD_KEYS
    assert set(cluster_view(record())) - {"nodegroups"} <= contains | {"template", "plan"}
    assert sorted(documented["contains"]) == list(documented["contains"]), "RETURN keys sorted"
    for module, key in ((cluster_sync, "clusters"), (cluster_info, "clusters")):
        doc = yaml.safe_load(module.RETURN)[key]
        sample = doc["sample"][0]
        assert re.match(r"^https://[0-9.]+:6443$", sample["api_address"])
        assert {"id", "uuid", "is_floating_ip_enabled", "floating_ip_enabled"} <= set(sample)
