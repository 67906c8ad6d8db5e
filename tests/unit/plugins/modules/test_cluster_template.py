"""coe.openstack.cluster_template: versions are immutable, in-use templates are kept."""

import coe_helpers

TEMPLATE = coe_helpers.TEMPLATE
coe = coe_helpers.coe  # the fixture


def test_create_version_and_idempotence(coe):
    check = coe("cluster_template", check_mode=True, diff=True, **TEMPLATE)
    assert check["changed"] and check["version"] == 1 and check["diff"]["after"]["versions"] == [1]
    assert coe.store().list_templates() == []  # check mode wrote nothing

    first = coe("cluster_template", **TEMPLATE)
    assert first["changed"] and first["version"] == 1 and first["versions"] == [1]
    tpl = first["cluster_template"]
    assert tpl["driver"] == "heat" and tpl["image_id"] == "fcos-40" and tpl["uuid"]
    assert tpl["labels"] == {"kube_tag": "v1.30.4"} and tpl["coe"] == "kubernetes"

    again = coe("cluster_template", **TEMPLATE)
    assert not again["changed"] and again["version"] == 1

    newer = dict(TEMPLATE, image_id="fcos-41")
    check = coe("cluster_template", check_mode=True, **newer)
    assert check["changed"] and check["version"] == 2
    assert [v["version"] for v in coe.store().list_templates("k8s")] == [1]
    second = coe("cluster_template", **newer)
    assert second["changed"] and second["version"] == 2 and second["versions"] == [1, 2]
    assert coe.store().get_template("k8s", 1)["spec"]["image_id"] == "fcos-40"


def test_absent_refused_while_in_use_naming_the_cluster(coe):
    coe("cluster_template", **TEMPLATE)
    coe("cluster_template", **dict(TEMPLATE, image_id="fcos-41"))
    made = coe("cluster", name="web", cluster_template="k8s", cluster_template_version=1)
    assert made["changed"], made
    for check_mode in (True, False):
        res = coe("cluster_template", check_mode=check_mode, name="k8s", state="absent")
        assert res.failed and "web" in res["msg"] and res["clusters"] == ["web"]
    res = coe("cluster_template", name="k8s", state="absent", version=1)
    assert res.failed and "web (version 1)" in res["msg"]
    assert [v["version"] for v in coe.store().list_templates("k8s")] == [1, 2]
    dropped = coe("cluster_template", name="k8s", state="absent", version=2)
    assert dropped["changed"] and dropped["deleted_versions"] == [2] and dropped["versions"] == [1]
    assert not coe("cluster_template", name="k8s", state="absent", version=2)["changed"]


def test_bad_input_names_the_field_and_writes_nothing(coe):
    cases = [
        (dict(TEMPLATE, name="K8s_Template"), "name"),
        (dict(TEMPLATE, labels={"boot_volume_size": 10}), "labels"),
        (dict(TEMPLATE, image_id="   "), "image_id"),
        (dict(TEMPLATE, docker_volume_size=0), "docker_volume_size"),
        (dict(TEMPLATE, version=3), "version"),
    ]
    for args, field in cases:
        res = coe("cluster_template", **args)
        assert res.failed and res["field"] == field, res
        assert field in res["msg"]
    res = coe("cluster_template", name="k8s", image_id="x")
    assert res.failed and "driver" in res["msg"]
    res = coe("cluster_template", **dict(TEMPLATE, driver="magnum"))
    assert res.failed and "driver" in res["msg"]
    res = coe("cluster_template", **dict(TEMPLATE, colour="blue"))
    assert res.failed and "colour" in res["msg"]
    assert coe.store().list_templates() == []


def test_unopenable_state_url(coe):
    res = coe("cluster_template", state_url="mysql://nowhere/db", **TEMPLATE)
    assert res.failed and res["field"] == "state_url"
    res = coe("cluster_template", state_url="sqlite:///proc/nope/coe.db", **TEMPLATE)
    assert res.failed and res["field"] == "state_url" and "/proc/nope/coe.db" in res["msg"]


def test_a_template_without_a_usable_kubernetes_version_is_refused_before_any_write(coe):
    no_version = {k: v for k, v in TEMPLATE.items() if k not in ("coe_version", "labels")}
    cases = [
        (no_version, "coe_version", "is required"),
        (dict(no_version, coe_version=""), "coe_version", "must not be empty"),
        (dict(no_version, coe_version="banana"), "coe_version", "'banana' is not a Kubernetes version"),
        (dict(no_version, coe_version="v1.21.14"), "coe_version", "older than the oldest supported Kubernetes"),
        (dict(no_version, labels={"kube_tag": "banana"}), "labels.kube_tag", "'banana' is not a Kubernetes version"),
        (dict(TEMPLATE, coe_version="1.2"), "coe_version", "older than"),
    ]
    for check_mode in (True, False):
        for args, field, words in cases:
            res = coe("cluster_template", check_mode=check_mode, **args)
            assert res.failed and res["field"] == field, res
            assert "'%s'" % field in res["msg"] and words in res["msg"], res["msg"]
    assert coe.store().list_templates() == []
    # a new version of a good template is refused as well, and the good one stays as it was
    assert coe("cluster_template", **TEMPLATE)["version"] == 1
    res = coe("cluster_template", **dict(TEMPLATE, coe_version="banana", image_id="fcos-41"))
    assert res.failed and res["field"] == "coe_version"
    assert [v["version"] for v in coe.store().list_templates("k8s")] == [1]


def test_the_kubernetes_version_is_coe_version_else_the_kube_tag_label(coe):
    no_version = {k: v for k, v in TEMPLATE.items() if k not in ("coe_version", "labels")}
    for args, version in (
        (dict(no_version, name="plain", coe_version="v1.31.2"), "v1.31.2"),
        (dict(no_version, name="short", coe_version="1.30"), "1.30"),
        (dict(no_version, name="magnum", labels={"kube_tag": "v1.30.4"}), None),
    ):
        res = coe("cluster_template", **args)
        assert res["changed"] and res["cluster_template"].get("coe_version") == version, res
    # a cluster built on the kube_tag-only template records that version, as the drivers read it
    made = coe("cluster", name="web", cluster_template="magnum")
    assert made["changed"] and made["cluster"]["coe_version"] == "v1.30.4", made
