"""coe.openstack.cluster_info: clusters (filters), templates and versions, events, locks."""

import coe_helpers

coe = coe_helpers.coe  # the fixture


def test_reads_everything_and_filters(coe):
    coe("cluster_template", **coe_helpers.TEMPLATE)
    coe("cluster_template", **dict(coe_helpers.TEMPLATE, image_id="fcos-41"))
    coe("cluster_template", **dict(coe_helpers.TEMPLATE, name="k8s-nova", driver="nova"))
    coe("cluster", name="alpha", cluster_template="k8s", cluster_template_version=1)
    coe("cluster", name="beta", cluster_template="k8s-nova")
    coe("cluster_lock", name="beta", holder="carol@desk", operation="update")

    info = coe("cluster_info", check_mode=True)
    assert not info["changed"]
    assert [c["name"] for c in info["clusters"]] == ["alpha", "beta"]
    tpl = {t["name"]: t for t in info["cluster_templates"]}
    assert tpl["k8s"]["version"] == 2 and [v["version"] for v in tpl["k8s"]["versions"]] == [1, 2]
    assert tpl["k8s"]["in_use_by"] == ["alpha"] and tpl["k8s"]["versions"][0]["in_use_by"] == ["alpha"]
    assert tpl["k8s"]["versions"][1]["spec"]["image_id"] == "fcos-41"
    assert [(lk["cluster"], lk["holder"]) for lk in info["locks"]] == [("beta", "carol@desk")]
    assert "events" not in info

    assert [c["name"] for c in coe("cluster_info", driver="nova")["clusters"]] == ["beta"]
    assert [c["name"] for c in coe("cluster_info", cluster_template="k8s")["clusters"]] == ["alpha"]
    assert coe("cluster_info", status="CREATE_COMPLETE")["clusters"] == []
    assert coe("cluster_info", project="other")["clusters"] == []

    one = coe("cluster_info", name="beta", events=True)
    assert [c["name"] for c in one["clusters"]] == ["beta"]
    kinds = [(e["kind"], e["to_status"]) for e in one["events"]["beta"]]
    assert kinds == [("cluster", "CREATE_IN_PROGRESS")]
    coe("cluster_lock", name="beta", state="broken", reason="test")
    ops = [e["operation"] for e in coe("cluster_info", name="beta", events=True)["events"]["beta"]]
    assert ops == ["create", "lock-break"]
    assert coe("cluster_info", name="beta", events=True, event_limit=1)["events"]["beta"][0]["operation"] == (
        "lock-break"
    )
