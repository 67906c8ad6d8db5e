"""Stack operations: the create/update/no-op decision, failures from nested resources, waiting."""

import copy
import json

import pytest

from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, ValidationError, WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.heat import client as s

TEMPLATE = """
heat_template_version: 2021-04-16
parameters:
  count: {type: number}
  flavor: {type: string}
  enabled: {type: boolean, default: false}
  data: {type: json, default: {}}
  batch: {type: number, default: 1}
  secret: {type: json, hidden: true, default: {}}
resources:
  group:
    type: OS::Heat::ResourceGroup
    properties:
      count: {get_param: count}
      resource_def: {type: OS::Heat::None}
"""
PARAMS = dict(count=2, flavor="m1.small", enabled=True, data={"a": [1, "x"]}, batch=2, secret={"0": "s"})


def live_stack(**over):
    """A live stack as Heat shows it: parameter values are strings, hidden ones masked."""
    stack = dict(
        id="id-1",
        name="st",
        status="CREATE_COMPLETE",
        status_reason="Stack CREATE completed successfully",
        parameters={
            "count": "2",
            "flavor": "m1.small",
            "enabled": "True",
            "data": '{"a": [1, "x"]}',
            "batch": "2",
            "secret": "******",
            "OS::stack_id": "id-1",
            "OS::stack_name": "st",
        },
        template=s.load_template(TEMPLATE),
        files={"node.yaml": "x"},
        tags=["t1"],
        outputs={},
    )
    stack.update(over)
    return stack


def decide(live, params=None, files=None, tags=None, policy=("batch",)):
    return s.plan(
        live,
        s.load_template(TEMPLATE),
        {"node.yaml": "x"} if files is None else files,
        PARAMS if params is None else params,
        ["t1"] if tags is None else tags,
        policy,
    )


def test_unquoted_version_stays_a_string():
    assert s.load_template(TEMPLATE)["heat_template_version"] == "2021-04-16"


@pytest.mark.parametrize("bad", ["", "just text", "a: [unclosed", "parameters: {}"])
def test_bad_templates_are_refused_before_any_call(bad):
    with pytest.raises(ValidationError) as e:
        s.load_template(bad)
    assert e.value.field == "template"


def test_no_stack_means_create():
    action, changes = decide(None)
    assert action == "create"
    assert changes["parameters"]["count"] == {"before": None, "after": 2}
    assert "secret" not in changes["parameters"]


def test_same_template_and_parameters_is_a_no_op():
    action, changes = decide(live_stack())
    assert (action, changes) == ("none", {})


def test_a_hidden_parameter_is_not_compared():
    action, _why = decide(live_stack(), params=dict(PARAMS, secret={"0": "other", "1": "new"}))
    assert action == "none"


def test_the_user_data_files_of_nodes_are_not_compared():
    live = live_stack()
    live["files"] = {"node.yaml": "x", "coe-user-data/workers/0": "first render"}
    files = {"node.yaml": "x", "coe-user-data/workers/0": "another render", "coe-user-data/workers/1": "new"}
    action, changes = decide(live, files=files)
    assert (action, changes) == ("none", {})


def test_a_changed_count_is_an_update():
    action, changes = decide(live_stack(), params=dict(PARAMS, count=3))
    assert action == "update"
    assert changes["parameters"] == {"count": {"before": 2, "after": 3}}


def test_a_policy_parameter_alone_is_no_update_but_is_reported():
    action, changes = decide(live_stack(), params=dict(PARAMS, batch=1))
    assert action == "none"
    assert changes["parameters"] == {"batch": {"before": 2, "after": 1}}
    action, _why = decide(live_stack(), params=dict(PARAMS, batch=1, count=5))
    assert action == "update"


@pytest.mark.parametrize(
    "over, key",
    [
        (dict(files={"node.yaml": "y"}), "files"),
        (dict(tags=["t1", "t2"]), "tags"),
        (dict(params=dict(PARAMS, enabled=False)), "parameters"),
        (dict(params=dict(PARAMS, data={"a": [1, "y"]})), "parameters"),
    ],
)
def test_each_kind_of_difference_is_an_update(over, key):
    action, changes = decide(live_stack(), **over)
    assert action == "update"
    assert key in changes


def test_a_changed_template_is_an_update():
    live = live_stack()
    live["template"] = copy.deepcopy(live["template"])
    live["template"]["resources"]["group"]["properties"]["count"] = 1
    action, changes = decide(live)
    assert action == "update" and changes["template"] is True


def test_a_failed_stack_is_retried_with_an_update():
    action, changes = decide(live_stack(status="CREATE_FAILED"))
    assert action == "update"
    assert changes["status"] == "CREATE_FAILED"


def link(rel, stack_id):
    return {"rel": rel, "href": "http://heat/v1/p/stacks/x/%s" % stack_id}


def nested_failure():
    """What Heat lists with nested_depth for a ResourceGroup whose member 3's server failed."""
    reason = 'Went to status ERROR due to "Message: No valid host was found. , Code: 500"'
    return [
        dict(
            resource_name="default-worker",
            resource_type="OS::Heat::ResourceGroup",
            resource_status="CREATE_FAILED",
            resource_status_reason="ResourceInError: resources.default-worker.resources[3].resources.server: " + reason,
            physical_resource_id="group-stack",
            links=[link("self", "top"), link("stack", "top"), link("nested", "group-stack")],
        ),
        dict(
            resource_name="secgroup",
            resource_type="OS::Neutron::SecurityGroup",
            resource_status="CREATE_COMPLETE",
            resource_status_reason="state changed",
            links=[link("stack", "top")],
        ),
        dict(
            resource_name="3",
            resource_type="coe_node.yaml",
            resource_status="CREATE_FAILED",
            resource_status_reason="ResourceInError: resources.server: " + reason,
            physical_resource_id="member-3",
            links=[link("stack", "group-stack"), link("nested", "member-3")],
        ),
        dict(
            resource_name="2",
            resource_type="coe_node.yaml",
            resource_status="CREATE_COMPLETE",
            links=[link("stack", "group-stack"), link("nested", "member-2")],
        ),
        dict(
            resource_name="server",
            resource_type="OS::Nova::Server",
            resource_status="CREATE_FAILED",
            resource_status_reason="ResourceInError: resources.server: " + reason,
            physical_resource_id="server-uuid",
            links=[link("stack", "member-3")],
        ),
    ]


def test_failed_resources_are_the_innermost_with_their_path():
    found = s.failed_resources(nested_failure())
    assert len(found) == 1
    leaf = found[0]
    assert leaf["path"] == ["default-worker", "3", "server"]
    assert leaf["type"] == "OS::Nova::Server"
    assert leaf["physical_id"] == "server-uuid"
    assert "No valid host was found" in leaf["reason"]


def test_failure_message_carries_the_clouds_reason():
    stack = dict(name="st", status="CREATE_FAILED", status_reason="Resource CREATE failed: ResourceInError: boom")
    msg = s.failure_message(stack, [dict(path=["a", "0", "server"], reason="No valid host was found.")])
    assert msg.startswith("stack st is CREATE_FAILED: Resource CREATE failed")
    assert "a.0.server: No valid host was found." in msg


def test_failed_events_fallback():
    # Heat's events carry the whole status in resource_status
    events = [
        dict(resource_name="port", resource_status="CREATE_IN_PROGRESS"),
        dict(resource_name="port", resource_status="DELETE_FAILED", resource_status_reason="busy"),
        dict(resource_name="fip", resource_status="DELETE_FAILED", resource_status_reason="x"),
        dict(resource_name="fip", resource_status="DELETE_COMPLETE"),
    ]
    assert s.failed_events(events) == [
        dict(resource="port", path=["port"], type=None, status="DELETE_FAILED", reason="busy", physical_id=None)
    ]


def heat_strings(parameters):
    """Parameter values the way Heat shows them back: strings, JSON for json ones."""
    return {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in parameters.items()}


class FakeHeat:
    """A stand-in for HeatClient: stacks in a dict, an operation finishes after ``polls`` finds."""

    def __init__(self, outcome="COMPLETE", polls=2):
        self.stacks = {}
        self.writes = []
        self.outcome = outcome
        self.polls = polls
        self.pending = {}
        self.sleep = lambda seconds: None

    def find(self, name):
        stack = self.stacks.get(name)
        if stack is None:
            return None
        if name in self.pending:
            self.pending[name] -= 1
            if self.pending[name] <= 0:
                action = self.pending.pop(name) or stack["status"].split("_")[0]
                action = stack["status"].split("_")[0]
                if action == "DELETE" and self.outcome == "COMPLETE":
                    del self.stacks[name]
                    return None
                stack["status"] = "%s_%s" % (action, self.outcome)
                stack["status_reason"] = "Resource %s failed: boom" % action if self.outcome == "FAILED" else "ok"
        return copy.deepcopy(stack)

    def live(self, name):
        return self.find(name)

    def status(self, name):
        return self.find(name)

    def mark_member_unhealthy(self, live, nodegroup, index, reason):
        self.writes.append("mark %s/%s" % (nodegroup, index))

    def create(self, name, template, files, parameters, tags, timeout_mins):
        self.writes.append("create")
        self.stacks[name] = dict(
            id="id-" + name,
            name=name,
            status="CREATE_IN_PROGRESS",
            parameters=heat_strings(parameters),
            template=template,
            files=files,
            tags=tags,
            timeout_mins=timeout_mins,
        )
        self.pending[name] = self.polls

    def update(self, stack, template, files, parameters, tags, timeout_mins):
        self.writes.append("update")
        live = self.stacks[stack["name"]]
        live.update(status="UPDATE_IN_PROGRESS", parameters=heat_strings(parameters))
        live.update(template=template, files=files, tags=tags)
        self.pending[stack["name"]] = self.polls

    def delete(self, stack):
        self.writes.append("delete")
        self.stacks[stack["name"]]["status"] = "DELETE_IN_PROGRESS"
        self.pending[stack["name"]] = self.polls

    def failures(self, stack):
        return [dict(path=["group", "0", "server"], reason="No valid host was found.", resource="server")]

    def work_left(self, stack):
        return []


class FakeTime:
    """A monotonic clock that a wait's sleeps move on."""

    def __init__(self, now=0.0):
        self.now = now

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def apply(client, params=None, check=False, **kw):
    params = PARAMS if params is None else params
    return s.ensure_present(client, "st", TEMPLATE, {"node.yaml": "x"}, params, ["t1"], ("batch",), check=check, **kw)


def test_create_then_rerun_makes_no_write_call():
    heat = FakeHeat()
    first = apply(heat)
    assert (first.action, first.stack["status"]) == ("create", "CREATE_COMPLETE")
    assert heat.writes == ["create"]
    again = apply(heat)
    assert again.action == "none" and not again.changed
    assert heat.writes == ["create"]


def test_a_repair_marks_the_broken_members_and_updates_an_unchanged_stack():
    heat = FakeHeat()
    apply(heat)
    repair = [("demo-default-worker-1", "default-worker", 1, "server not found")]
    checked = apply(heat, check=True, repair=repair)
    assert checked.action == "update" and checked.changes["repair"] == ["demo-default-worker-1"]
    assert heat.writes == ["create"]
    done = apply(heat, repair=repair)
    assert done.action == "update" and done.changed
    assert heat.writes == ["create", "mark default-worker/1", "update"]
    # once repaired (no broken node in the record) the same run does nothing
    assert apply(heat).action == "none"


def test_check_mode_says_what_would_change_and_writes_nothing():
    heat = FakeHeat()
    assert apply(heat, check=True).action == "create"
    assert heat.writes == [] and heat.stacks == {}
    apply(heat)
    result = apply(heat, params=dict(PARAMS, count=4), check=True)
    assert result.action == "update"
    assert result.changes["parameters"]["count"] == {"before": 2, "after": 4}
    assert heat.writes == ["create"]


def test_update_then_failure_raises_with_the_reasons():
    heat = FakeHeat()
    apply(heat)
    heat.outcome = "FAILED"
    with pytest.raises(CloudError) as e:
        apply(heat, params=dict(PARAMS, count=5))
    assert "UPDATE_FAILED" in str(e.value)
    assert "group.0.server: No valid host was found." in str(e.value)
    assert e.value.details["failed_resources"][0]["resource"] == "server"
    assert heat.writes == ["create", "update"]


def test_in_progress_stack_is_awaited_before_deciding():
    heat = FakeHeat(polls=4)
    apply(heat, wait=False)
    assert heat.stacks["st"]["status"] == "CREATE_IN_PROGRESS"
    with pytest.raises(CloudError) as e:
        apply(heat, check=True)
    assert "CREATE_IN_PROGRESS" in str(e.value)
    assert apply(heat).action == "none"


def test_a_stack_begun_before_is_awaited_by_a_caller_that_does_not_wait_for_its_own():
    """A re-run after a run killed half-way: Heat would refuse its update meanwhile."""
    heat = FakeHeat(polls=4)
    apply(heat, wait=False)
    result = apply(heat, params=dict(PARAMS, count=5), wait=False)
    assert result.action == "update"
    assert heat.writes == ["create", "update"]


def test_delete_and_absent_is_a_no_op():
    heat = FakeHeat()
    apply(heat)
    assert s.ensure_absent(heat, "st", check=True).action == "delete"
    assert "st" in heat.stacks
    result = s.ensure_absent(heat, "st")
    assert result.action == "delete" and result.stack["status"] == "DELETE_COMPLETE"
    assert s.ensure_absent(heat, "st").action == "none"
    assert heat.writes == ["create", "delete"]


def test_wait_times_out_on_a_monotonic_clock_and_names_what_it_waited_for():
    heat = FakeHeat(polls=10**6)
    apply(heat, wait=False)
    fake = FakeTime(100.0)
    with pytest.raises(WaitTimeout) as e:
        s.wait_for_stack(heat, "st", "CREATE", 30, clock=fake.clock, sleep=fake.sleep)
    assert str(e.value) == "Timed out after 30s waiting for stack st to finish create (still CREATE_IN_PROGRESS)"
    assert 130.0 <= fake.now < 141.0


def test_waiting_polls_the_cheap_status_and_shows_the_stack_once():
    """Showing a stack makes Heat resolve its outputs (every member's nested stack)."""

    class CountingHeat(FakeHeat):
        shows = polls = 0

        def find(self, name):
            self.shows += 1
            return super().find(name)

        def status(self, name):
            self.polls += 1
            return FakeHeat.find(self, name)

    heat = CountingHeat(polls=6)
    apply(heat, wait=False)
    heat.shows = heat.polls = 0
    stack = s.wait_for_stack(heat, "st", "CREATE", 300)
    assert stack["status"] == "CREATE_COMPLETE"
    assert heat.polls >= 5 and heat.shows == 1


def test_a_failed_stack_is_awaited_while_heat_still_makes_its_other_resources():
    """Convergence fails the stack at the first failure and goes on with the rest."""

    class StillMaking(FakeHeat):
        left = [[["master", "1", "server"]], [["master", "1", "server"]], []]

        def work_left(self, stack):
            assert stack["status"] == "CREATE_FAILED"
            return self.left.pop(0)

    heat = StillMaking(outcome="FAILED", polls=1)
    apply(heat, wait=False)
    stack = s.wait_for_stack(heat, "st", "CREATE", 300)
    assert stack["status"] == "CREATE_FAILED"
    assert heat.left == []  # asked until nothing was left in progress

    heat = StillMaking(outcome="FAILED", polls=1)
    heat.left = [[["master", "1", "server"]]] * 10**4
    apply(heat, wait=False)
    fake = FakeTime()
    with pytest.raises(WaitTimeout) as e:
        s.wait_for_stack(heat, "st", "CREATE", 30, clock=fake.clock, sleep=fake.sleep)
    assert "(CREATE_FAILED, still making master.1.server)" in str(e.value)


def test_timeout_minutes_round_up():
    assert [s.timeout_mins(x) for x in (1, 60, 61, 3600)] == [1, 1, 2, 60]


class LaggingHeat(FakeHeat):
    """Heat accepts the update but shows the old status for a few reads."""

    def __init__(self):
        super().__init__(polls=50)
        self.lag = 0

    def update(self, stack, *args):
        old = dict(self.stacks[stack["name"]])
        super().update(stack, *args)
        self.shown = dict(self.stacks[stack["name"]])
        self.stacks[stack["name"]].update(status=old["status"])
        self.lag = 3

    def find(self, name):
        if self.lag:
            self.lag -= 1
            if not self.lag:
                self.stacks[name].update(status=self.shown["status"], updated_at="later")
        return super().find(name)


def test_not_waiting_still_returns_once_heat_shows_the_update():
    heat = LaggingHeat()
    heat.pending = {}
    heat.create("st", s.load_template(TEMPLATE), {"node.yaml": "x"}, PARAMS, ["t1"], 60)
    heat.stacks["st"]["status"] = "CREATE_COMPLETE"
    heat.pending = {}
    result = apply(heat, params=dict(PARAMS, count=3), wait=False)
    assert result.action == "update"
    assert result.stack["status"] == "UPDATE_IN_PROGRESS"


def test_not_waiting_gives_up_on_the_ack_and_returns_the_stack_as_it_is():
    heat = FakeHeat()
    apply(heat)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    before = heat.find("st")
    stack = s.wait_for_ack(heat, "st", "UPDATE", before, 5, clock=lambda: now[0], sleep=sleep)
    assert stack["status"] == "CREATE_COMPLETE"
    assert 5.0 <= now[0] < 5.6
