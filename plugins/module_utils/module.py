# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The base class of every module in this collection.

A module is a subclass with class attributes and a ``run()`` method::

    class ClusterInfoModule(CoeModule):
        argument_spec = dict(name=dict())
        module_kwargs = dict(supports_check_mode=True)
        uses_cloud = False
        uses_store = True

        def run(self):
            self.exit(clusters=self.store.list_clusters())

    def main():
        ClusterInfoModule()()

The base class wraps AnsibleModule (composition), merges the common
connection options (doc fragment ``coe.openstack.openstack``) and the store
option (doc fragment ``coe.openstack.store``), builds the openstacksdk
connection and opens the store lazily, and turns every error into one
``fail_json`` whose message says what we were doing and why it failed.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import sys
import traceback
from urllib.parse import unquote

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.coe.openstack.plugins.module_utils.errors import CloudError, CoeError, error_text


def _sdk():
    """openstacksdk, imported on first use: modules that only use the store never pay for it."""
    import openstack
    import openstack.config
    import openstack.exceptions

    return openstack


def is_cloud_error(error):
    """True for an openstacksdk or keystoneauth error (only if those were imported at all)."""
    sdk_exceptions = sys.modules.get("openstack.exceptions")
    if sdk_exceptions is not None and isinstance(error, sdk_exceptions.SDKException):
        return True
    ksa_exceptions = sys.modules.get("keystoneauth1.exceptions")
    return ksa_exceptions is not None and isinstance(error, ksa_exceptions.ClientException)


# The options every cloud-facing module takes, with openstack.cloud's names.
# Documented in plugins/doc_fragments/openstack.py.
OPENSTACK_ARGUMENT_SPEC = dict(
    api_timeout=dict(type="int"),
    auth=dict(type="dict", no_log=True),
    auth_type=dict(),
    ca_cert=dict(aliases=["cacert"]),
    client_cert=dict(aliases=["cert"]),
    client_key=dict(no_log=True, aliases=["key"]),
    cloud=dict(type="raw"),
    interface=dict(default="public", choices=["admin", "internal", "public"], aliases=["endpoint_type"]),
    region_name=dict(),
    timeout=dict(type="int", default=3600),
    validate_certs=dict(type="bool", aliases=["verify"]),
    wait=dict(type="bool", default=True),
)

# The option every module that reads or writes the cluster store takes.
# Documented in plugins/doc_fragments/store.py.
STORE_ARGUMENT_SPEC = dict(
    state_url=dict(fallback=(env_fallback, ["COE_STATE_URL"])),
)

# The caller's lock, for a module that waits for the cloud (doc fragment coe.openstack.store.lease;
# CoeModule.keep_lease). Spread into the module's argument_spec.
LEASE_ARGUMENT_SPEC = dict(
    actor=dict(type="dict"),
    finish=dict(type="bool", default=False),
    lock_token=dict(type="int", no_log=False),
    lock_ttl=dict(type="int", default=120),  # locks.DEFAULT_TTL (a test checks they agree)
)


def check_lease_options(params):
    """ValidationError naming ``lock_ttl`` when it is out of the locks' range (no cloud call)."""
    from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError
    from ansible_collections.coe.openstack.plugins.module_utils.locks import MAX_TTL, MIN_TTL

    if params.get("lock_token") is not None and not MIN_TTL <= params["lock_ttl"] <= MAX_TTL:
        raise ValidationError("lock_ttl", "must be between %d and %d seconds" % (MIN_TTL, MAX_TTL))


def url_secrets(url):
    """The password in a URL such as postgresql://user:PASSWORD@host/db, as a set."""
    if not url or "://" not in url:
        return set()
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    if "@" not in netloc:
        return set()
    userinfo = netloc.rsplit("@", 1)[0]
    if ":" not in userinfo:
        return set()
    password = userinfo.split(":", 1)[1]
    return {password, unquote(password)} if password else set()


class TokenCache:
    """One Keystone token for every module of a play (and of the plays after it).

    Each Ansible module call is a new process; without this, every one of them
    authenticates again (0.3-2.5 s and a token each). The first module that
    authenticates writes its auth state (token and service catalog) to
    ``~/.cache/coe-openstack/tokens/<id>.json`` (folder 0700, file 0600), where
    ``id`` is keystoneauth's cache id of the auth options (a hash of auth URL,
    user, project and secret: other credentials never share a file, and the
    secret is never written). The next module installs that state and makes no
    token request; keystoneauth authenticates again when the token is about to
    expire, and a token Keystone refuses (401) is dropped and replaced.

    Why a file rather than a returned variable: a token in a task's result is
    shown by ``-v`` and by callback plugins unless the whole task is ``no_log``,
    which would hide the failure messages too. ``COE_TOKEN_CACHE=0`` turns the
    cache off; ``COE_TOKEN_CACHE_DIR`` moves it.
    """

    def __init__(self, conn):
        self.auth = getattr(getattr(conn, "session", None), "auth", None)
        self.path = None
        if os.environ.get("COE_TOKEN_CACHE", "1") in ("0", "false", "no") or self.auth is None:
            return
        try:
            cache_id = self.auth.get_cache_id()
        except Exception:  # a plugin that cannot say who it is is not cached
            cache_id = None
        if cache_id:
            folder = os.environ.get("COE_TOKEN_CACHE_DIR") or os.path.join(
                os.path.expanduser("~"), ".cache", "coe-openstack", "tokens"
            )
            # the cache id is base64 (may hold '/'): its hash names the file
            self.path = os.path.join(folder, "%s.json" % hashlib.sha256(cache_id.encode()).hexdigest())

    def load(self):
        """True when a cached token that is not about to expire was installed."""
        if self.path is None:
            return False
        try:
            with open(self.path) as f:
                state = f.read()
            self.auth.set_auth_state(state)
        except (OSError, ValueError, KeyError, TypeError):
            return False
        auth_ref = getattr(self.auth, "auth_ref", None)
        if auth_ref is None or auth_ref.will_expire_soon(60):
            self.auth.set_auth_state(None)
            return False
        return True

    def save(self):
        if self.path is None:
            return
        try:
            state = self.auth.get_auth_state()
            if not state:
                return
            folder = os.path.dirname(self.path)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            tmp = "%s.%d.tmp" % (self.path, os.getpid())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(state)
            os.replace(tmp, self.path)
        except OSError:
            return  # no cache: the next module authenticates itself


def build_connection(params):
    """Build an openstacksdk Connection from the module's connection options.

    Raises CloudError naming the cloud and the reason when the cloud name is
    unknown, the configuration is incomplete, or authentication fails.
    """
    cloud = params.get("cloud")
    label = cloud if isinstance(cloud, str) and cloud else os.environ.get("OS_CLOUD") or "the configured cloud"
    if isinstance(cloud, dict):
        label = "the given cloud config"
    kwargs = {}
    for option in ("auth", "auth_type", "region_name", "interface", "api_timeout"):
        if params.get(option) is not None:
            kwargs[option] = params[option]
    if params.get("validate_certs") is not None:
        kwargs["verify"] = params["validate_certs"]
    if params.get("ca_cert"):
        kwargs["cacert"] = params["ca_cert"]
    if params.get("client_cert"):
        kwargs["cert"] = params["client_cert"]
        if params.get("client_key"):
            kwargs["key"] = params["client_key"]
    openstack = _sdk()
    try:
        if isinstance(cloud, dict):
            config = dict(cloud)
            config.update(kwargs)
            conn = openstack.connect(**config)
        else:
            conn = openstack.connect(cloud=cloud or None, **kwargs)
        # authenticate now, so that a bad auth URL or password fails here,
        # with the cloud's name, rather than half-way through an operation;
        # a token an earlier module of the same credentials got is used instead
        if not TokenCache(conn).load():
            conn.authorize()
            TokenCache(conn).save()
    except openstack.exceptions.ConfigException as e:
        raise CloudError("Couldn't configure cloud %s: %s" % (label, error_text(e)), cloud=label) from e
    except Exception as e:
        if is_cloud_error(e):
            raise CloudError("Couldn't connect to cloud %s: %s" % (label, error_text(e)), cloud=label) from e
        raise
    return conn


def failure(error):
    """What a module fails with for ``error``: dict(msg, **details): a CoeError's message and
    details, an SDK error's words, else the exception's type and text (with its traceback)."""
    if isinstance(error, CoeError):
        return dict(error.details, msg=error.msg)
    if is_cloud_error(error):
        return dict(msg=error_text(error), exception=traceback.format_exc())
    return dict(msg="%s: %s" % (type(error).__name__, error), exception=traceback.format_exc())


class CoeModule:
    """Base class: subclass, set the class attributes, implement ``run()``."""

    argument_spec = {}
    module_kwargs = {}
    uses_cloud = True
    uses_store = False

    def __init__(self):
        spec = {}
        if self.uses_cloud:
            spec.update(copy.deepcopy(OPENSTACK_ARGUMENT_SPEC))
        if self.uses_store:
            spec.update(copy.deepcopy(STORE_ARGUMENT_SPEC))
        spec.update(copy.deepcopy(self.argument_spec))
        self.ansible = AnsibleModule(argument_spec=spec, **copy.deepcopy(self.module_kwargs))
        self.params = self.ansible.params
        if self.uses_store:
            # a PostgreSQL URL may carry a password: never let it reach the output
            self.ansible.no_log_values.update(url_secrets(self.params.get("state_url")))
        self.check_mode = self.ansible.check_mode
        self.diff_mode = self.ansible._diff
        self._conn = None
        self._store = None

    # -- lazy resources ---------------------------------------------------

    @property
    def conn(self):
        """The openstacksdk Connection, built (and authenticated) on first use."""
        if self._conn is None:
            try:
                _sdk()
            except ImportError:
                self.ansible.fail_json(msg=missing_required_lib("openstacksdk"), exception=traceback.format_exc())
            self._conn = build_connection(self.params)
            from ansible_collections.coe.openstack.plugins.module_utils.preflight import remember_references

            remember_references(self._conn)
        return self._conn

    @property
    def store(self):
        """The cluster store named by ``state_url``, opened on first use."""
        if self._store is None:
            from ansible_collections.coe.openstack.plugins.module_utils.store import open_store

            self._store = open_store(self.params.get("state_url"))
        return self._store

    # -- the caller's lock ------------------------------------------------

    def keep_lease(self, record, sleep):
        """``sleep`` for a wait on the caller's lock (options ``lock_token``, ``lock_ttl``).

        The lease of ``record``'s cluster is renewed now, before any write (a token
        released or broken meanwhile fails the module and nothing changes), then every
        third of ``lock_ttl`` while the module waits. Without ``lock_token``: ``sleep``
        as it is. Check mode writes nothing, not even the lease.
        """
        p = self.params
        if p.get("lock_token") is None or self.check_mode:
            return sleep
        from ansible_collections.coe.openstack.plugins.module_utils.clusters import DEFAULT_PROJECT
        from ansible_collections.coe.openstack.plugins.module_utils.locks import LockManager
        from ansible_collections.coe.openstack.plugins.module_utils.poll import renewing_sleep

        locks = LockManager(self.store)
        project, name = record.get("project_id") or DEFAULT_PROJECT, record["name"]

        def renew():
            with self.action("renew the lock of cluster %s" % name):
                locks.renew(project, name, p["lock_token"], p["lock_ttl"])

        def check():  # a module left working by a killed ansible-playbook stops at its next poll
            locks.check_run(project, name)

        return renewing_sleep(renew, p["lock_ttl"], sleep, check=check)

    # -- results ----------------------------------------------------------

    def exit(self, changed=False, **kwargs):
        """Finish the module successfully."""
        self._close()
        self.ansible.exit_json(changed=changed, **kwargs)

    def fail(self, msg, **kwargs):
        """Finish the module with a failure."""
        self._close()
        self.ansible.fail_json(msg=msg, **kwargs)

    def warn(self, msg):
        self.ansible.warn(msg)

    @contextlib.contextmanager
    def action(self, what):
        """Say what we are doing, so errors read "Couldn't <what>: <why>"."""
        try:
            yield
        except CoeError as e:
            if e.msg.startswith("Couldn't "):
                raise
            raise _rewrap(e, "Couldn't %s: %s" % (what, e.msg)) from e
        except Exception as e:
            if is_cloud_error(e):
                raise CloudError("Couldn't %s: %s" % (what, error_text(e))) from e
            raise

    def run(self):
        raise NotImplementedError

    def __call__(self):
        try:
            self.run()
        except Exception as e:
            self.fail(**failure(e))
        # run() normally exits; a run() that returns reports no change
        self.exit(changed=False)

    def _close(self):
        store, self._store = self._store, None
        if store is not None and hasattr(store, "close"):
            store.close()


class ModuleLogic:
    """The logic of a module, kept in module_utils: runs on a CoeModule's options,
    connection, store, check/diff mode, ``action()``, ``exit()`` and ``fail()``.

    A module file keeps its documentation, its argument spec and a ``run()`` that
    hands itself to such a class (``HeatStackDriver(self).run()``); what the logic
    does not define itself is the module's (attribute access falls through to it).
    """

    def __init__(self, module):
        self.module = module

    def __getattr__(self, name):
        return getattr(self.module, name)

    def recorded_cluster(self):
        """The cluster record the caller's lock covers, as the store has it now.

        A driver module handed ``cluster`` with ``lock_token`` carries out the operation the
        front door recorded (its plan: nodegroups, counts, nodes to remove), whatever the dict
        it was handed says, so a re-run after a failure resumes exactly what was recorded. A
        record the store does not have (a driver module used on its own) is taken as given.
        """
        p = self.params
        given = p.get("cluster")
        if given is None or p.get("lock_token") is None or not given.get("uuid"):
            return given
        from ansible_collections.coe.openstack.plugins.module_utils.clusters import cluster_view
        from ansible_collections.coe.openstack.plugins.module_utils.errors import NotFoundError

        try:
            return cluster_view(self.store.get_cluster(given["uuid"]))
        except NotFoundError:
            return given

    def exit_finished(self, record, **out):
        """``exit(**out)``, after the front door's last poll and release when asked (``finish``).

        With ``finish``, ``lock_token`` and a recorded ``record``, outside check mode: the
        cluster is observed and recorded once more in this process, and its lock released
        if it came out ``*_COMPLETE`` (``clusters.finish_operation``), so that a driver that
        waited for its operation spares the front door a poll and a release, each a module
        process of its own. The result is returned as ``finished``.
        """
        p = self.params
        finish = p.get("finish") and p.get("wait", True) and p.get("lock_token") is not None
        if finish and (record or {}).get("uuid") and not self.check_mode:
            from ansible_collections.coe.openstack.plugins.module_utils.clusters import finish_operation
            from ansible_collections.coe.openstack.plugins.module_utils.errors import NotFoundError
            from ansible_collections.coe.openstack.plugins.module_utils.sync import get_synchroniser

            try:
                current = self.store.get_cluster(record["uuid"])
            except NotFoundError:
                self.exit(**out)  # a forced delete removed the record already: nothing to record
            lock = dict(project=current["project_id"], name=current["name"], token=p["lock_token"], ttl=p["lock_ttl"])
            with self.action("record what the cloud has of cluster %s" % current["name"]):
                out["finished"] = finish_operation(
                    self.store, current, get_synchroniser(current["driver"], self.conn), lock, actor=p.get("actor")
                )
        self.exit(**out)


def checked_options(spec, params, field):
    """``params`` checked against the argument ``spec`` as AnsibleModule checks a module's
    (types, choices, unknown keys) and with its defaults filled in; ValidationError naming
    ``field`` with Ansible's words for the first problem."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

    checked = ArgumentSpecValidator(spec).validate(params)
    if checked.error_messages:
        raise ValidationError(field, checked.error_messages[0])
    return checked.validated_parameters


class Exited(Exception):
    """What an InlineModule's logic exited with (its ``exit()`` keywords)."""

    def __init__(self, result):
        super().__init__("exited")
        self.result = result


class InlineModule(CoeModule):
    """Another module's logic run inside this module's process, on its own options.

    ``InlineModule(parent, argument_spec, params).run_logic(Logic)`` checks ``params``
    against ``argument_spec`` (plus the connection and store options) the way AnsibleModule
    would (an error is a ValidationError naming ``field``), fills in the defaults, and runs
    ``Logic(self).run()`` with the parent's connection, store and check/diff mode. The
    logic's ``exit()`` returns its keywords; an error propagates as it is. The front door
    runs the Nova driver this way: a module process, its start-up and its imports saved
    (docs/internals.md).
    """

    def __init__(self, parent, argument_spec, params, field="options"):  # pylint: disable=super-init-not-called
        spec = copy.deepcopy(OPENSTACK_ARGUMENT_SPEC)
        spec.update(copy.deepcopy(STORE_ARGUMENT_SPEC))
        spec.update(copy.deepcopy(argument_spec))
        self.parent = parent
        self.ansible = parent.ansible
        self.params = checked_options(spec, params, field)
        self.check_mode = parent.check_mode
        self.diff_mode = parent.diff_mode
        self._conn = None
        self._store = None

    @property
    def conn(self):
        return self.parent.conn

    @property
    def store(self):
        return self.parent.store

    def exit(self, changed=False, **kwargs):
        raise Exited(dict(changed=changed, **kwargs))

    def fail(self, msg, **kwargs):
        raise CoeError(msg, **kwargs)

    def warn(self, msg):
        self.parent.warn(msg)

    def run_logic(self, logic):
        try:
            logic(self).run()
        except Exited as done:
            return done.result
        return dict(changed=False)


def driver_options(options, argument_spec, allowed, field):
    """The options a caller hands a driver's converge (``allowed``, a subset of the driver
    module's ``argument_spec``) checked as the module would check them, with no defaults:
    ValidationError naming ``field`` for an unknown key or a wrong type."""
    from ansible_collections.coe.openstack.plugins.module_utils.errors import ValidationError

    for key in options:
        if key not in allowed:
            raise ValidationError(field, "%r is not one of %s" % (key, ", ".join(allowed)))
    spec = {key: dict(argument_spec[key], default=None) for key in allowed}
    return checked_options(spec, dict(options), field)


def converge_params(parent, record, lock):
    """The options a driver's converge run in the front door's process (``InlineModule``)
    shares with its parent ``cluster`` module: the recorded cluster, the lease it took, its
    timeout, actor and store; ``finish``: a driver that waits observes, records, releases."""
    p = parent.params
    return dict(
        cluster=record,
        lock_token=lock["token"],
        lock_ttl=p["lock_ttl"],
        finish=True,
        timeout=p["timeout"],
        actor=p.get("actor"),
        state_url=p.get("state_url"),
    )


def _rewrap(error, msg):
    """A copy of a CoeError with a new message and the same details."""
    new = CoeError.__new__(type(error))
    Exception.__init__(new, msg)
    new.__dict__.update(error.__dict__)
    new.msg = msg
    return new
