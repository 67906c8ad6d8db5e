"""The cloud is the source of truth: the census, the twin check, adoption, the credentials rule, orphans."""

import types

import pytest

from ansible_collections.coe.openstack.plugins.module_utils import census, clusters
from ansible_collections.coe.openstack.plugins.module_utils.adoption import adopt_clusters
from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    NotFoundError,
    StateError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.store import open_store
from ansible_collections.coe.openstack.plugins.module_utils.sync.base import FakeSynchroniser

UUID = "0f2b6c1e-1111-2222-3333-444455556666"
OTHER = "7d1c2b3a-aaaa-bbbb-cccc-444455556666"
TEMPLATE = dict(
    driver="nova",
    image_id="fake-image",
    flavor_id="m1.small",
    master_flavor_id="m1.small",
    keypair_id="demo-key",
    fixed_network="private",
    coe_version="v1.31.1",
)


def server(name, uuid, nodegroup, role, index, template="k8s", version=1, flavor="m1.small", status="ACTIVE"):
    metadata = dict(
        coe_cluster_uuid=uuid, coe_cluster_name=name.rsplit("-", 2)[0], coe_nodegroup=nodegroup, coe_role=role
    )
    metadata["coe_index"] = str(index)
    if template:
        metadata.update(coe_template=template, coe_template_version=str(version))
    return dict(
        id="id-" + name,
        name=name,
        status=status,
        metadata=metadata,
        tags=["coe-cluster", "coe-cluster-" + uuid],
        flavor=dict(original_name=flavor),
        image=dict(id="img"),
        key_name="demo-key",
        addresses={"private": [dict(addr="10.0.0.%d" % (index + 5), version=4)]},
    )


class FakeConn:
    """What take_census reads: one list per kind."""

    current_project_id = "p1"

    def __init__(self, servers=(), stacks=(), server_groups=(), security_groups=(), ips=()):
        self.calls = []

        def lister(kind, items):
            def call(**kwargs):
                self.calls.append(kind)
                return list(items)

            return call

        self.compute = types.SimpleNamespace(
            servers=lister("servers", servers), server_groups=lister("server groups", server_groups)
        )
        self.orchestration = types.SimpleNamespace(stacks=lister("stacks", stacks))
        self.network = types.SimpleNamespace(
            security_groups=lister("security groups", security_groups), ips=lister("floating IPs", ips)
        )


def cluster_servers(name="prod-a", uuid=UUID, workers=1, **kw):
    out = [server("%s-master-0" % name, uuid, "default-master", "master", 0, **kw)]
    out += [
        server("%s-default-worker-%d" % (name, i), uuid, "default-worker", "worker", i, **kw) for i in range(workers)
    ]
    return out


def test_census_reads_one_list_per_kind_and_groups_by_uuid():
    conn = FakeConn(
        servers=[*cluster_servers(), dict(id="x", name="unrelated", status="ACTIVE", metadata={}, tags=[])],
        stacks=[dict(id="s1", name="prod-b-%s" % OTHER[:8], status="CREATE_COMPLETE", tags=["coe-cluster-" + OTHER])],
        server_groups=[dict(name="coe-%s-default-master" % UUID), dict(name="prod-b-%s-masters" % OTHER)],
        security_groups=[dict(name="coe-prod-a-%s" % UUID, tags=["coe-cluster", "coe-cluster-" + UUID])],
        ips=[dict(floating_ip_address="172.24.4.9", tags=["coe-cluster", "coe-cluster-" + UUID])],
    )
    found = census.take_census(conn)
    assert sorted(conn.calls) == sorted(census.KINDS)
    a, b = found[UUID], found[OTHER]
    assert (a["name"], a["driver"], b["name"], b["driver"]) == ("prod-a", "nova", "prod-b", "heat")
    assert a["resources"] == {
        "servers": ["prod-a-default-worker-0", "prod-a-master-0"],
        "server groups": ["coe-%s-default-master" % UUID],
        "security groups": ["coe-prod-a-%s" % UUID],
        "floating IPs": ["172.24.4.9"],
    }
    assert b["stack"]["id"] == "s1" and b["resources"]["server groups"] == ["prod-b-%s-masters" % OTHER]
    assert [c["uuid"] for c in census.orphans(found, {UUID})] == [OTHER]


def test_pick_refuses_an_unknown_name_and_a_name_twice():
    found = census.take_census(FakeConn(servers=cluster_servers() + cluster_servers(uuid=OTHER)))
    with pytest.raises(ConflictError) as e:
        census.pick(found, "prod-a")
    assert UUID in str(e.value) and OTHER in str(e.value)
    with pytest.raises(NotFoundError) as e:
        census.pick(found, "nope")
    assert "no cluster called nope" in str(e.value)


@pytest.fixture
def store(tmp_path):
    s = open_store("sqlite:///%s" % (tmp_path / "coe.db"))
    s.put_template("k8s", TEMPLATE)
    yield s
    s.close()


def adopt(store, found, observed=None, **kw):
    """adopt_clusters with a synchroniser that sees each cluster whole (plus ``observed``)."""
    fake = FakeSynchroniser()
    fake.observations = {
        c["uuid"]: dict(
            observed or {},
            exists=True,
            master_addresses=["10.0.0.5"],
            nodegroups={
                "default-master": dict(node_count=1, nodes=[dict(name="%s-master-0" % c["name"])], last_index=0)
            },
        )
        for c in found
    }
    return adopt_clusters(store, found, "default", lambda driver: fake, **kw)


def test_adoption_rebuilds_the_record_and_names_what_is_missing(store):
    found = census.pick(census.take_census(FakeConn(servers=cluster_servers(workers=2))), "prod-a")
    result = adopt(store, found)
    assert result["adopted"] == ["prod-a"] and result["changed"]
    record = store.find_cluster("default", "prod-a")
    assert record["uuid"] == UUID and record["driver"] == "nova" and record["template_version"] == 1
    assert (record["master_count"], record["node_count"], record["status"]) == (1, 2, "CREATE_COMPLETE")
    assert record["master_addresses"] == ["10.0.0.5"]
    assert "credentials" in record["status_reason"] and any("credentials" in m for m in record["adopted"]["missing"])
    assert clusters.lacks_credentials(store, record)
    # a second adoption changes nothing and says which store record it is
    again = adopt(store, found)
    assert not again["changed"] and again["already_managed"] == [dict(name="prod-a", uuid=UUID, project_id="default")]
    assert store.find_cluster("default", "prod-a")["generation"] == record["generation"]


def test_adoption_refusals_write_nothing(store):
    old = census.pick(census.take_census(FakeConn(servers=cluster_servers(template=None))), "prod-a")
    with pytest.raises(ValidationError) as e:
        adopt(store, old)
    assert "carries no template name and version" in str(e.value) and e.value.field == "cluster_template"
    newer = census.pick(census.take_census(FakeConn(servers=cluster_servers(version=3))), "prod-a")
    with pytest.raises(ValidationError) as e:
        adopt(store, newer)
    assert "template k8s version 3" in str(e.value) and "declare the templates first" in str(e.value)
    assert store.list_clusters() == []
    # made before the metadata existed: the caller names the template, and the result says so
    result = adopt(store, old, template="k8s", template_version=1)
    assert any("given by the caller" in m for m in result["missing"]["prod-a"])
    # a name this store uses for another uuid
    twin = census.pick(census.take_census(FakeConn(servers=cluster_servers(uuid=OTHER))), "prod-a")
    with pytest.raises(ConflictError) as e:
        adopt(store, twin)
    assert OTHER in str(e.value) and UUID in str(e.value)


def desired(**over):
    return dict(dict(name="prod-a", project_id="default", state="present", template_name="k8s"), **over)


def test_a_create_the_cloud_has_a_twin_of_is_refused_before_any_write(store):
    found = census.take_census(FakeConn(servers=cluster_servers()))
    with pytest.raises(ConflictError) as e:
        clusters.ensure_cluster(store, desired(), twins=lambda name: census.named(found, name))
    text = str(e.value)
    assert UUID in text and "prod-a-master-0" in text and "coe.openstack.adopt" in text
    assert store.list_clusters() == [] and store.list_events(target="prod-a") == []
    # another name is no twin
    made = clusters.ensure_cluster(store, desired(name="prod-b"), twins=lambda name: census.named(found, name))
    assert made["operation"] == "create"


def test_an_adopted_cluster_without_its_cas_scales_in_but_not_out(store):
    found = census.pick(census.take_census(FakeConn(servers=cluster_servers(workers=2))), "prod-a")
    adopt(store, found)
    with pytest.raises(StateError) as e:
        clusters.ensure_cluster(store, desired(node_count=3), check_mode=True)
    assert "without its credentials" in str(e.value) and "store_restore" in str(e.value)
    assert e.value.details["missing"] == ["credentials"]
    result = clusters.ensure_cluster(store, desired(node_count=1), check_mode=True)
    assert result["operation"] == "update"
    # with the CAs back in the store (a restore), scale-out is planned again
    store.put_secret(UUID, "pki", b"sealed")
    assert clusters.ensure_cluster(store, desired(node_count=3), check_mode=True)["operation"] == "update"


@pytest.mark.parametrize(
    "status, reason, expected",
    [
        ("CREATE_COMPLETE", "Stack CREATE completed successfully", "not recovered: credentials"),
        ("CREATE_FAILED", "Resource CREATE failed: NoValidHost", "NoValidHost"),
    ],
    ids=["settled-stack", "failed-stack"],
)
def test_a_settled_stacks_own_reason_does_not_hide_what_adoption_missed(store, status, reason, expected):
    """A Heat stack created in one step settles CREATE_COMPLETE with its own words: the record
    still says what was not recovered; a failure the cloud shows is the reason."""
    found = census.pick(census.take_census(FakeConn(servers=cluster_servers(workers=2))), "prod-a")
    adopt(store, found, observed=dict(status=status, status_reason=reason))
    record = store.find_cluster("default", "prod-a")
    assert record["status"] == status
    assert expected in record["status_reason"], record["status_reason"]
