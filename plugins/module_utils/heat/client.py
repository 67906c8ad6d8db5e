# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""Heat stack operations: find, decide (create / update / nothing), apply, wait, explain failures.

The decision is plain Python over plain dicts (``plan``) and is tested
without a cloud. ``HeatClient`` is the only place that talks to Heat; it uses
the openstacksdk Connection's orchestration proxy and, where the SDK's
resource classes would drop fields we need (a template's ``conditions``, a
nested resource's ``parent_resource``), the raw REST path on that proxy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time

from ansible_collections.coe.openstack.plugins.module_utils import poll
from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, ValidationError, WaitTimeout
from ansible_collections.coe.openstack.plugins.module_utils.heat import build as hot

try:
    import yaml

    HAS_YAML = True
except ImportError:
    yaml = None
    HAS_YAML = False

try:
    from openstack import exceptions as sdk_exceptions
except ImportError:
    sdk_exceptions = None

# Heat's own limit on stack nesting; our deepest path is group -> member -> server.
NESTED_DEPTH = 5
SETTLED = ("COMPLETE", "FAILED")


# -- templates and parameters ---------------------------------------------


def load_template(template):
    """A HOT template given as text (YAML or JSON) or as a dict → dict.

    The version stays a string even when unquoted (PyYAML would make it a date).
    """
    if isinstance(template, dict):
        data = copy.deepcopy(template)
    else:
        if not HAS_YAML:
            raise ImportError("PyYAML is required to read Heat templates")
        if not isinstance(template, str) or not template.strip():
            raise ValidationError("template", "must be a HOT template (text or dict)")
        try:
            data = yaml.safe_load(template)
        except yaml.YAMLError as e:
            raise ValidationError("template", "is not valid YAML: %s" % e) from None
        if not isinstance(data, dict):
            raise ValidationError("template", "must be a YAML mapping")
    version = data.get("heat_template_version")
    if version is None:
        raise ValidationError("template", "has no heat_template_version")
    data["heat_template_version"] = version if isinstance(version, str) else str(version)
    if not isinstance(data.get("resources", {}), dict):
        raise ValidationError("template", "resources must be a mapping")
    return data


def parameter_types(template):
    """{name: (type, hidden)} from a template's ``parameters`` section."""
    out = {}
    for name, decl in (template.get("parameters") or {}).items():
        decl = decl or {}
        out[name] = (str(decl.get("type", "string")).lower(), bool(decl.get("hidden", False)))
    return out


def normalise_value(kind, value):
    """A parameter value as Heat means it, so live (strings) and desired (Python) compare."""
    if value is None:
        return None
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return str(value)
        return int(number) if number.is_integer() else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "t", "yes", "y", "on", "1"):
            return True
        if text in ("false", "f", "no", "n", "off", "0"):
            return False
        return text
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError:
                return value
        return value
    if kind == "comma_delimited_list":
        if isinstance(value, str):
            return [v.strip() for v in value.split(",")] if value.strip() else []
        return [str(v) for v in value]
    return str(value)


def visible_parameters(parameters, types):
    """The parameters we declared and Heat shows back (hidden ones left out), normalised."""
    out = {}
    for name, (kind, hidden) in types.items():
        if hidden or name not in parameters:
            continue
        out[name] = normalise_value(kind, parameters[name])
    return out


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _strip_template(template):
    """A template reduced to what decides the stack (Heat may add nothing, but be safe)."""
    data = copy.deepcopy(template)
    data["heat_template_version"] = str(data.get("heat_template_version"))
    return data


def plan(live, desired_template, desired_files, desired_parameters, desired_tags, policy=()):
    """What to do to turn ``live`` into the desired stack.

    ``live`` is None (no stack) or a dict with ``status``, ``parameters``,
    ``template`` (dict), ``files`` ({name: text}) and ``tags``.
    Returns (action, changes): action is ``create``, ``update`` or ``none``;
    changes is {"parameters": {name: {"before", "after"}}, "template": bool,
    "files": [names], "tags": {"before", "after"}, "status": text}.
    Hidden parameters cannot be read back and are not compared, nor are the
    nodes' user-data files (``coe-user-data/...``: they only matter when a
    server is made and change on every render); parameters in
    ``policy`` (how Heat rolls an update, not what the stack is) are reported
    but alone do not make an update.
    """
    types = parameter_types(desired_template)
    after = visible_parameters(desired_parameters, types)
    if live is None:
        return "create", dict(parameters={k: dict(before=None, after=v) for k, v in after.items()}, template=True)
    before = visible_parameters(live.get("parameters") or {}, types)
    changes = {}
    params = {}
    for name in sorted(set(after) | set(before)):
        if before.get(name) != after.get(name):
            params[name] = dict(before=before.get(name), after=after.get(name))
    if params:
        changes["parameters"] = params
    if _strip_template(live.get("template") or {}) != _strip_template(desired_template):
        changes["template"] = True
    live_files = live.get("files") or {}
    files = sorted(
        n
        for n in set(live_files) | set(desired_files)
        if live_files.get(n) != desired_files.get(n) and not n.startswith(hot.USER_DATA_DIR + "/")
    )
    if files:
        changes["files"] = files
    if sorted(live.get("tags") or []) != sorted(desired_tags or []):
        changes["tags"] = dict(before=sorted(live.get("tags") or []), after=sorted(desired_tags or []))
    status = live.get("status") or ""
    if status.endswith("_FAILED"):
        # Heat retries the failed resources on an update with the same template
        changes["status"] = status
    real = {k: v for k, v in changes.items() if k != "parameters"}
    if any(name not in policy for name in params):
        real["parameters"] = params
    if not real:
        return "none", changes
    return "update", changes


# -- failures -------------------------------------------------------------


def _link_ids(resource, rel):
    out = []
    for link in resource.get("links") or []:
        if link.get("rel") == rel and link.get("href"):
            out.append(link["href"].rstrip("/").split("/")[-1])
    return out


def _path_finder(resources):
    """A function giving a resource's path from the top stack (its names, outermost first)."""
    by_nested = {}  # nested stack id -> the resource that owns it
    for res in resources:
        for nested_id in _link_ids(res, "nested"):
            by_nested[nested_id] = res

    def path_of(res):
        path = [res.get("resource_name")]
        seen = set()
        stack_ids = _link_ids(res, "stack")
        while stack_ids and stack_ids[0] in by_nested and stack_ids[0] not in seen:
            seen.add(stack_ids[0])
            parent = by_nested[stack_ids[0]]
            path.insert(0, parent.get("resource_name"))
            stack_ids = _link_ids(parent, "stack")
        return path

    return path_of


def failed_resources(resources):
    """The failed leaves among nested resources, each with its path from the top stack.

    ``resources`` are Heat resource dicts (``resource_name``, ``resource_type``,
    ``resource_status``, ``resource_status_reason``, ``physical_resource_id``,
    ``links`` with ``stack`` and ``nested`` rels). A failed resource that
    merely contains a failed nested stack is left out: its reason repeats
    the leaf's.
    """
    path_of = _path_finder(resources)
    failed = [r for r in resources if str(r.get("resource_status", "")).endswith("_FAILED")]
    stacks_with_failures = {sid for r in failed for sid in _link_ids(r, "stack")}
    leaves = [r for r in failed if not set(_link_ids(r, "nested")) & stacks_with_failures]
    out = []
    for res in leaves or failed:
        out.append(
            dict(
                resource=res.get("resource_name"),
                path=path_of(res),
                type=res.get("resource_type"),
                status=res.get("resource_status"),
                reason=" ".join(str(res.get("resource_status_reason") or "").split()),
                physical_id=res.get("physical_resource_id") or None,
            )
        )
    out.sort(key=lambda r: [str(p) for p in r["path"]])
    return out


def busy_resources(resources):
    """The paths of the resources Heat is still creating, updating or deleting (``*_IN_PROGRESS``).

    Heat's convergence engine marks a stack failed at its first failed resource while others
    are still being made: those go on, and their servers may not exist yet.
    """
    path_of = _path_finder(resources)
    busy = [r for r in resources if str(r.get("resource_status", "")).endswith("_IN_PROGRESS")]
    return sorted((path_of(r) for r in busy), key=lambda p: [str(x) for x in p])


def failed_events(events):
    """Failed resources from stack events (oldest first), when the resources list says nothing.

    Heat's events carry the whole status (``CREATE_FAILED``) in ``resource_status``.
    """
    out = {}
    for ev in events:
        status = str(ev.get("resource_status", ""))
        name = ev.get("resource_name")
        if not status.endswith("FAILED"):
            if status.endswith("COMPLETE"):
                out.pop(name, None)  # it failed once, then made it
            continue
        if ev.get("resource_action") and "_" not in status:
            status = "%s_%s" % (ev["resource_action"], status)
        out[name] = dict(
            resource=name,
            path=[name],
            type=None,
            status=status,
            reason=" ".join(str(ev.get("resource_status_reason") or "").split()),
            physical_id=ev.get("physical_resource_id") or None,
        )
    return list(out.values())


def failure_message(stack, failures):
    """One line: the stack's status and reason, then each failed leaf's reason."""
    text = "stack %s is %s" % (stack.get("name"), stack.get("status"))
    reason = " ".join(str(stack.get("status_reason") or "").split())
    if reason:
        text += ": %s" % reason
    extra = ["%s: %s" % (".".join(str(p) for p in f["path"]), f["reason"]) for f in failures if f["reason"]]
    extra = [e for e in extra if e.split(": ", 1)[1] not in reason]
    if extra:
        text += " (" + "; ".join(extra) + ")"
    return text


# -- the client -----------------------------------------------------------


def _stack_dict(stack):
    """An openstacksdk Stack (or a plain dict) as the plain dict the logic uses."""
    if stack is None:
        return None
    if isinstance(stack, dict) and not hasattr(stack, "to_dict"):
        # a plain dict already (an openstacksdk Resource is a dict subclass too)
        return stack
    outputs = {}
    for out in stack.outputs or []:
        outputs[out.get("output_key")] = out.get("output_value")
    return dict(
        id=stack.id,
        name=stack.name,
        status=stack.status,
        status_reason=stack.status_reason,
        parameters=dict(stack.parameters or {}),
        outputs=outputs,
        tags=list(stack.tags or []),
        timeout_mins=stack.timeout_mins,
        created_at=stack.created_at,
        updated_at=stack.updated_at,
    )


class HeatClient:
    """The Heat calls of the driver, on one openstacksdk Connection."""

    def __init__(self, conn, sleep=time.sleep):
        self.conn = conn
        self.sleep = sleep
        self.writes = []  # (method, what) of every write call made, for tests and reports

    @property
    def api(self):
        """The orchestration proxy (looked up on first use: building it reads the catalog)."""
        return self.conn.orchestration

    def _check(self, resp):
        if sdk_exceptions is not None:
            sdk_exceptions.raise_from_response(resp)
        return resp

    def _json(self, resp):
        self._check(resp)
        return resp.json() if resp.content else {}

    def find(self, name_or_id):
        """The stack as a dict, or None. A stack in DELETE_COMPLETE counts as gone."""
        stack = self.api.find_stack(name_or_id, ignore_missing=True)
        return _stack_dict(stack)

    def status(self, name):
        """The stack without its outputs (a list call), or None: cheap to poll.

        Showing a stack makes Heat work out its outputs, which for a cluster means
        reading every member's nested stack: too dear to do every few seconds while
        the engine is busy building those very members.
        """
        for stack in self.api.stacks(name=name):
            if stack.name == name and stack.status != "DELETE_COMPLETE":
                return _stack_dict(stack)
        return None

    def resource(self, stack_id, name):
        """One resource of a stack given by id (a nested stack's), as Heat shows it."""
        stack = self.api.find_stack(stack_id, ignore_missing=False)
        body = self._json(self.api.get("/stacks/%s/%s/resources/%s" % (stack.name, stack.id, name)))
        return stack, body.get("resource") or {}

    def mark_member_unhealthy(self, live, nodegroup, index, reason):
        """Mark member ``index`` of the nodegroup's ResourceGroup unhealthy: the next
        update replaces it (a new port and server under the same name and index)."""
        group = self.resource(live["id"], nodegroup)[1]
        if not group.get("physical_resource_id"):
            raise CloudError("stack %s has no nested stack for nodegroup %s" % (live["name"], nodegroup))
        nested, member = self.resource(group["physical_resource_id"], str(index))
        if member.get("resource_status") == "CHECK_FAILED":
            return
        self.writes.append(("PATCH", "%s/%s" % (nodegroup, index)))
        self._check(
            self.api.patch(
                "/stacks/%s/%s/resources/%s" % (nested.name, nested.id, index),
                json={"mark_unhealthy": True, "resource_status_reason": reason},
            )
        )

    def template(self, stack):
        return self._json(self.api.get("/stacks/%s/%s/template" % (stack["name"], stack["id"])))

    def files(self, stack):
        return self._json(self.api.get("/stacks/%s/%s/files" % (stack["name"], stack["id"])))

    def live(self, name):
        """The stack with its template and files, or None."""
        stack = self.find(name)
        if stack is None:
            return None
        stack["template"] = self.template(stack)
        stack["files"] = self.files(stack)
        return stack

    def create(self, name, template, files, parameters, tags, timeout_mins, disable_rollback=True, retry_for=15):
        """POST /stacks; a 409 "already exists" right after a delete of that name is retried."""
        body = dict(
            stack_name=name,
            template=template,
            files=files,
            parameters=parameters,
            timeout_mins=timeout_mins,
            disable_rollback=disable_rollback,
        )
        if tags:
            # the create/update body wants a comma string (Heat splits it)
            body["tags"] = ",".join(tags)

        def post():
            self.writes.append(("POST", name))
            data = self._json(self.api.post("/stacks", json=body))
            return data.get("stack", data)

        def name_still_held(error):
            # Heat still holds the name of a stack it has just deleted
            conflict = sdk_exceptions is not None and isinstance(error, sdk_exceptions.ConflictException)
            return conflict and self.find(name) is None

        return poll.retry(
            post, name_still_held, "the create of stack %s" % name, retry_for, interval=2, sleep=self.sleep
        )

    def update(self, stack, template, files, parameters, tags, timeout_mins, disable_rollback=True):
        body = dict(
            template=template,
            files=files,
            parameters=parameters,
            timeout_mins=timeout_mins,
            disable_rollback=disable_rollback,
            tags=",".join(tags) if tags else "",
        )
        self.writes.append(("PUT", stack["name"]))
        # 202 with a plain-text body
        self._check(self.api.put("/stacks/%s/%s" % (stack["name"], stack["id"]), json=body))

    def delete(self, stack):
        self.writes.append(("DELETE", stack["name"]))
        resp = self.api.delete("/stacks/%s/%s" % (stack["name"], stack["id"]))
        if resp.status_code == 404:
            return
        self._check(resp)

    def resources(self, stack, nested_depth=NESTED_DEPTH):
        path = "/stacks/%s/%s/resources?nested_depth=%d&with_detail=false" % (stack["name"], stack["id"], nested_depth)
        return self._json(self.api.get(path)).get("resources", [])

    def events(self, stack, nested_depth=NESTED_DEPTH, limit=200):
        path = "/stacks/%s/%s/events?nested_depth=%d&sort_dir=asc&limit=%d" % (
            stack["name"],
            stack["id"],
            nested_depth,
            limit,
        )
        return self._json(self.api.get(path)).get("events", [])

    def failures(self, stack):
        """Failed leaf resources with the cloud's reasons (resources first, events as a fallback)."""
        return self.failures_and_work(stack)[0]

    def failures_and_work(self, stack):
        """``(failed leaves, paths of the resources still in progress)`` of a stack, from one
        resources call (the failures from its events when the resources show none)."""
        resources = self.resources(stack)
        found = failed_resources(resources)
        if not found:
            found = failed_events(self.events(stack))
        return found, busy_resources(resources)

    def work_left(self, stack):
        """Paths of the stack's resources still in progress (one resources call)."""
        return busy_resources(self.resources(stack))

    def list(self, tags):
        """Stacks carrying all these tags (a list: a string would be split into characters)."""
        return [_stack_dict(s) for s in self.api.stacks(tags=list(tags))]

    def list_any(self, tags):
        """Stacks carrying any of these tags, in one call (``tags_any``, a list)."""
        return [_stack_dict(s) for s in self.api.stacks(any_tags=list(tags))]


# -- waiting --------------------------------------------------------------


def wait_for_stack(client, name, action, timeout, interval=0.5, clock=time.monotonic, sleep=None):
    """Poll until the stack leaves ``<action>_IN_PROGRESS`` and, if it failed, until none of
    its resources is still in progress; return it (None once deleted).

    Polls the cheap status (no outputs: one stack list) from every 0.5 s to every 2 s at
    most, so that the end of a short step (the empty first stack of a create) is seen
    within half a second, then reads the whole stack once.
    Uses a monotonic clock; raises WaitTimeout naming the stack, the action and
    the last status seen.
    """

    def probe():
        stack = client.status(name)
        status = (stack or {}).get("status") or ""
        if status.endswith("_IN_PROGRESS"):
            return poll.Pending("still %s" % status, value=stack, stack=stack)
        if status.endswith("_FAILED"):
            # convergence fails a stack at its first failed resource and goes on making the
            # others: wait for them too, so that what is recorded is what Heat ends with
            # (one resources call per poll, only once the stack has failed)
            busy = client.work_left(stack)
            if busy:
                what = ", ".join(".".join(str(x) for x in path) for path in busy[:3])
                return poll.Pending("%s, still making %s" % (status, what), value=stack, stack=stack)
        return True

    poll.wait_for(
        probe,
        "stack %s to finish %s" % (name, action.lower()),
        timeout,
        interval=interval,
        backoff=1.25,
        max_interval=2.0,
        clock=clock,
        sleep=sleep or client.sleep,
    )
    return client.find(name)


def wait_for_ack(client, name, verb, before, timeout, interval=0.5, clock=time.monotonic, sleep=None):
    """The stack once Heat shows it is working on ``verb`` (or done with it); the stack as
    it is when ``timeout`` runs out first.

    Without it, a caller that does not wait could read the stack's previous
    status (say the CREATE_COMPLETE before an update) and take it for the result.
    Looks with the cheap status (a stack list, no outputs: Heat is busy with the very
    members they would make it read).
    """
    old = (before or {}).get("updated_at"), (before or {}).get("status")

    def probe():
        stack = client.status(name)
        if stack is None or (
            str(stack.get("status", "")).startswith(verb + "_")
            and (stack.get("updated_at"), stack.get("status")) != old
        ):
            return stack
        return poll.Pending("still %s" % stack.get("status"), value=stack)

    try:
        return poll.wait_for(
            probe,
            "Heat to begin the %s of stack %s" % (verb.lower(), name),
            timeout,
            interval=interval,
            clock=clock,
            sleep=sleep or client.sleep,
        )
    except WaitTimeout as e:
        return e.pending.value


def timeout_mins(timeout):
    return max(math.ceil(timeout / 60.0), 1)


class StackResult:
    def __init__(self, action, changes, stack, failures=None):
        self.action = action
        self.changes = changes
        self.stack = stack
        self.failures = failures or []

    @property
    def changed(self):
        return self.action != "none"


def settled_live(client, name, timeout=3600, check=False):
    """The live stack (with template and files) once no operation runs on it, or None.

    A stack *_IN_PROGRESS is waited for (Heat refuses an update meanwhile), even by a
    caller that does not wait for its own operation: the one in progress was begun
    before (by a run killed half-way, say), and must finish first. In check mode that
    is an error saying so.
    """
    live = client.live(name)
    if live is not None and str(live.get("status", "")).endswith("_IN_PROGRESS"):
        if check:
            raise CloudError(
                "stack %s is %s; run again once it has finished" % (name, live["status"]), stack=public(live)
            )
        wait_for_stack(client, name, live["status"].split("_")[0], timeout)
        live = client.live(name)
    return live


_UNSET = object()


def ensure_present(
    client,
    name,
    template,
    files,
    parameters,
    tags,
    policy=(),
    wait=True,
    timeout=3600,
    check=False,
    live=_UNSET,
    repair=(),
):
    """Create or update the stack so it matches; nothing when it already does.

    ``live``: what ``settled_live`` returned, when the caller already read it.
    ``repair``: ``(node name, nodegroup, index, reason)`` of members whose server is
    gone or broken: they are marked unhealthy and the stack is updated even when
    nothing else differs, so that Heat makes them again.
    Raises CloudError (with ``stack`` and ``failed_resources`` details) when
    the stack ends FAILED, WaitTimeout when it does not finish in time.
    """
    template = load_template(template)
    if live is _UNSET:
        live = settled_live(client, name, timeout, check)
    if live is not None and live.get("status") in ("DELETE_FAILED",):
        raise CloudError(
            "stack %s is %s (%s); delete it again before creating it"
            % (name, live["status"], live.get("status_reason")),
            stack=public(live),
        )
    action, changes = plan(live, template, files, parameters, tags, policy)
    if repair and live is not None:
        action = "update"
        changes["repair"] = sorted(item[0] for item in repair)
    if check or action == "none":
        return StackResult(action, changes, public(live) if live else None)
    for _node, nodegroup, index, reason in repair if live is not None else ():
        client.mark_member_unhealthy(live, nodegroup, index, reason)
    if action == "create":
        client.create(name, template, files, parameters, tags, timeout_mins(timeout))
        verb = "CREATE"
    else:
        client.update(live, template, files, parameters, tags, timeout_mins(timeout))
        verb = "UPDATE"
    if not wait:
        return StackResult(action, changes, public(wait_for_ack(client, name, verb, live, min(timeout, 60))))
    stack = wait_for_stack(client, name, verb, timeout)
    if stack is None:
        raise CloudError("stack %s disappeared while %s" % (name, verb.lower()))
    if stack["status"] != "%s_COMPLETE" % verb:
        failures = client.failures(stack)
        raise CloudError(
            failure_message(stack, failures), stack=public(stack), failed_resources=failures, action=action
        )
    return StackResult(action, changes, public(stack))


def ensure_absent(client, name, wait=True, timeout=3600, check=False):
    live = client.find(name)
    if live is None:
        return StackResult("none", {}, None)
    if check:
        return StackResult("delete", dict(status=live.get("status")), public(live))
    if live.get("status") != "DELETE_IN_PROGRESS":
        client.delete(live)
    if not wait:
        return StackResult("delete", {}, public(client.find(name)))
    stack = wait_for_stack(client, name, "DELETE", timeout)
    if stack is not None:
        failures = client.failures(stack)
        raise CloudError(failure_message(stack, failures), stack=public(stack), failed_resources=failures)
    gone = public(live)
    gone["status"] = "DELETE_COMPLETE"
    gone["status_reason"] = None
    return StackResult("delete", {}, gone)


def public(stack):
    """The stack as returned to users: no template or files, hidden values masked by Heat."""
    if stack is None:
        return None
    return {
        k: stack.get(k)
        for k in (
            "id",
            "name",
            "status",
            "status_reason",
            "parameters",
            "outputs",
            "tags",
            "timeout_mins",
            "created_at",
            "updated_at",
        )
    }
