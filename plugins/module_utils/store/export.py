# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""An export of the store, and restoring one (``store_backup`` / ``store_restore``).

Plain Python (no ansible, no openstack). What the rest of the collection calls:

``build_export(store, box, previous=None) -> dict``
    The export of a store (JSON-ready): its templates, clusters (records and credentials) and
    history, with the store's schema version. Locks are left out: a restored store holds no
    lease. Credentials stay the blobs the store keeps, encrypted with the user's key; nothing
    is decrypted into the export. The key must be the store's (``secrets.check_secret_key``),
    and every blob is opened once in memory, so an export that is written can be restored.
``write_export(path, document, check_mode) -> (changed, before)``
    Writes it atomically with mode 0600, or keeps a file that already holds the same content.
``read_export(path, box) -> Export``
    Reads and checks one: a file that is not an export, a damaged one, one from a newer schema
    (``schema.refuse_newer``, the rule the store itself follows) and one whose secrets the
    key cannot open are refused, naming the file and the reason, before anything is restored.
``plan_restore(store, box, export) -> RestorePlan`` and ``RestorePlan.apply(store)``
    Restoring: what the store lacks is added, what it has is kept (below).
``cluster_credentials(path, box, cluster_uuid) -> {name: blob}``
    For adoption: the encrypted credentials of one cluster, from a checked export.
``restore_credentials(store, box, path_or_export, cluster_uuid, check_mode=False) -> [name]``
    Puts those the store lacks into the store; the names added (``cluster_adopt``'s
    ``store_export``).

Restoring never overwrites: a template version the store has with the same spec, a cluster
whose uuid the store has (its record stays; the credentials it lacks are added) are kept. A
template version the store has with another spec, or a cluster name the store gives to another
uuid, refuse the whole restore before any write, naming each. Into an empty store (no
templates, clusters or history) the whole history is copied; into another, the history of
each cluster restored. Restoring the same export again changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat

from ansible_collections.coe.openstack.plugins.module_utils.errors import (
    ConflictError,
    NotFoundError,
    SecretError,
    StoreError,
    ValidationError,
)
from ansible_collections.coe.openstack.plugins.module_utils.secrets import (
    ENV_KEY,
    ENV_KEY_FILE,
    VERIFIER_NAME,
    VERIFIER_UUID,
    check_secret_key,
    put_secret_once,
    write_private,
)
from ansible_collections.coe.openstack.plugins.module_utils.store.base import canonical_json, iso
from ansible_collections.coe.openstack.plugins.module_utils.store.schema import refuse_newer

#: what the ``format`` key of an export says
FORMAT = "coe.openstack store export"
#: the layout of the file (not the store's schema, which ``schema_version`` gives)
FORMAT_VERSION = 1
#: keys left out when two exports are compared (a backup of an unchanged store keeps the file)
_UNCOMPARED = ("exported_at", "sha256")


def _b64(blob):
    return base64.b64encode(bytes(blob)).decode("ascii")


def _unb64(text):
    return base64.b64decode(text.encode("ascii"), validate=True)


def _digest(document):
    body = {k: v for k, v in document.items() if k != "sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _wrong_key(what, box):
    return SecretError(
        "%s was written with another secret key: the key from %s does not open its credentials. Nothing "
        "was restored. Give the key of the store it was exported from (secret_key / coe_secret_key, %s or %s)."
        % (what, box.source, ENV_KEY, ENV_KEY_FILE),
        key_source=box.source,
    )


# -- writing ------------------------------------------------------------------


def build_export(store, box, previous=None):
    """The export document of ``store``. ``box`` must hold the store's key: SecretError else.

    ``previous``: the document already at the target (or None); its key check is kept when
    the store has none of its own and the key opens it, so an unchanged store exports the
    same content again.
    """
    check_secret_key(store, box, create=False)
    version, tables = store.export_rows()
    secrets = {}
    verifier = None
    for row in tables["coe_secrets"]:
        if row["cluster_uuid"] == VERIFIER_UUID and row["name"] == VERIFIER_NAME:
            verifier = row["blob"]
            continue
        secrets.setdefault(row["cluster_uuid"], {})[row["name"]] = row
    if verifier is None:
        verifier = _previous_key_check(previous, box)
    if verifier is None:
        verifier = box.seal(VERIFIER_UUID, VERIFIER_NAME, b"coe.openstack export key check")
    clusters = []
    for row in tables["coe_clusters"]:
        kept = secrets.get(row["uuid"], {})
        for name, secret in kept.items():
            box.open(row["uuid"], name, secret["blob"])  # a secret the key cannot open: not exported
        clusters.append(
            dict(
                row,
                record=json.loads(row["record"]),
                secrets={n: dict(blob=_b64(s["blob"]), updated_at=s["updated_at"]) for n, s in sorted(kept.items())},
            )
        )
    document = dict(
        format=FORMAT,
        format_version=FORMAT_VERSION,
        schema_version=version,
        exported_at=iso(store.now()),
        source=store.describe(),
        key_check=_b64(verifier),
        templates=[dict(row, spec=json.loads(row["spec"])) for row in tables["coe_templates"]],
        clusters=clusters,
        events=tables["coe_events"],
    )
    document["sha256"] = _digest(document)
    return document


def _previous_key_check(previous, box):
    if not previous or not previous.get("key_check"):
        return None
    try:
        blob = _unb64(previous["key_check"])
        box.open(VERIFIER_UUID, VERIFIER_NAME, blob)
    except (SecretError, ValueError, binascii.Error, AttributeError):
        return None
    return blob


def load_document(path):
    """The export at ``path`` as a dict, or None when there is none or it is not one (no check
    of its content or key: a backup uses it only to compare)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("format") == FORMAT else None


def same_content(one, other):
    """True when two export documents hold the same store content (when written aside)."""
    if one is None or other is None:
        return False
    return canonical_json(_compared(one)) == canonical_json(_compared(other))


def _compared(document):
    return {k: v for k, v in document.items() if k not in _UNCOMPARED}


def summary(document, path=None):
    """What an export holds, without a secret: counts, names, uuids, the schema version."""
    if not document:
        return {}
    return dict(
        path=path,
        exported_at=document.get("exported_at"),
        source=document.get("source"),
        schema_version=document.get("schema_version"),
        templates=["%s v%s" % (t["name"], t["version"]) for t in document.get("templates", ())],
        clusters=[_cluster_line(c) for c in document.get("clusters", ())],
        credentials=sum(1 for c in document.get("clusters", ()) if c.get("secrets")),
        events=len(document.get("events", ())),
    )


def _cluster_line(row):
    return "%s/%s (%s)" % (row["project"], row["name"], row["uuid"])


def file_mode(path):
    """The permission bits of ``path`` (None when it does not exist)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def write_export(path, document, check_mode=False):
    """Write ``document`` to ``path`` (atomically, mode 0600) unless the file there holds the
    same content; a file kept whose mode lets others in is set to 0600.

    Returns ``(changed, mode_before)``.
    """
    mode = file_mode(path)
    if same_content(load_document(path), document):
        if mode == 0o600:
            return False, mode
        if not check_mode:
            os.chmod(path, 0o600)
        return True, mode
    if not check_mode:
        write_private(path, json.dumps(document, sort_keys=True, indent=1) + "\n", prefix=".coe-export-")
    return True, mode


# -- reading ------------------------------------------------------------------


class Export:
    """A checked export: ``document``, ``path``, ``mode`` (of the file) and its parts."""

    def __init__(self, path, document, mode):
        self.path = path
        self.document = document
        self.mode = mode
        self.schema_version = document["schema_version"]
        self.templates = document["templates"]
        self.clusters = document["clusters"]
        self.events = document["events"]

    def describe(self):
        return "The export %s (of the %s, %s)" % (self.path, self.document["source"], self.document["exported_at"])

    def cluster(self, cluster_uuid):
        for row in self.clusters:
            if row["uuid"] == cluster_uuid:
                return row
        raise NotFoundError(
            "The export %s has no cluster %s (it has %s)"
            % (self.path, cluster_uuid, ", ".join(_cluster_line(c) for c in self.clusters) or "no cluster"),
            field="cluster_uuid",
        )

    def credentials(self, cluster_uuid):
        """``{name: blob}``: the encrypted credentials of one cluster, as the store keeps them."""
        return {name: _unb64(s["blob"]) for name, s in self.cluster(cluster_uuid)["secrets"].items()}


def _not_an_export(path, why):
    return ValidationError("path", "%s is not a coe.openstack store export (%s)" % (path, why), path=path)


def read_export(path, box):
    """Read and check the export at ``path``; every secret in it must open with ``box``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        mode = file_mode(path)
    except OSError as e:
        raise StoreError("Couldn't read the export %s: %s" % (path, e.strerror), field="path", path=path) from None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _not_an_export(path, "not JSON: %s" % str(e).split(":", maxsplit=1)[0]) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _not_an_export(path, "no 'format: %s'" % FORMAT)
    version = document.get("schema_version")
    if not isinstance(version, int):
        raise _not_an_export(path, "no schema_version")
    refuse_newer(version, "The export %s" % path)
    if not isinstance(document.get("format_version"), int) or document["format_version"] > FORMAT_VERSION:
        raise ValidationError(
            "path",
            "%s is in export format %s, written by a newer coe.openstack; this version reads up to %d"
            % (path, document.get("format_version"), FORMAT_VERSION),
            path=path,
        )
    if document.get("sha256") != _digest(document):
        raise _not_an_export(path, "damaged or edited: its sha256 does not match its content")
    for key, kind in (("templates", list), ("clusters", list), ("events", list), ("key_check", str)):
        if not isinstance(document.get(key), kind):
            raise _not_an_export(path, "no %s" % key)
    export = Export(path, document, mode)
    try:
        box.open(VERIFIER_UUID, VERIFIER_NAME, _unb64(document["key_check"]))
        for row in export.clusters:
            for name, blob in export.credentials(row["uuid"]).items():
                box.open(row["uuid"], name, blob)
    except SecretError:
        raise _wrong_key("The export %s" % path, box) from None
    except (ValueError, binascii.Error, KeyError, TypeError) as e:
        raise _not_an_export(path, "damaged credentials: %s" % e) from None
    return export


def cluster_credentials(path, box, cluster_uuid):
    """For adoption: ``{name: blob}``, the credentials of cluster ``cluster_uuid`` in the export at
    ``path``, encrypted as the store keeps them (``store.add_secret(cluster_uuid, name, blob)``
    takes them as they are). The export is checked first (``read_export``): the key must open
    every secret in it. NotFoundError (field ``cluster_uuid``) when it has no such cluster."""
    return read_export(path, box).credentials(cluster_uuid)


def restore_credentials(store, box, source, cluster_uuid, check_mode=False):
    """Put the credentials of ``cluster_uuid`` from the export ``source`` (a path, or an Export
    ``read_export`` gave) that ``store`` lacks into it (a secret the store has is kept); returns
    the names added (that would be, in check mode). The key must be the store's too
    (``secrets.check_secret_key``; a store without a key check takes this key)."""
    found = source if isinstance(source, Export) else read_export(source, box)
    blobs = found.credentials(cluster_uuid)
    check_secret_key(store, box, create=not check_mode)
    have = set(store.list_secrets(cluster_uuid))
    added = sorted(name for name in blobs if name not in have)
    if not check_mode:
        for name in added:
            put_secret_once(store, cluster_uuid, name, blobs[name])
    return added


# -- restoring ------------------------------------------------------------------


class RestorePlan:
    """What a restore adds: ``templates`` and ``clusters`` (``[{..., action}]``, every one of the
    export, ``action`` ``restored``, ``present`` or ``credentials``), the rows and events."""

    def __init__(self, export):
        self.export = export
        self.templates = []
        self.clusters = []
        self.rows = dict(coe_templates=[], coe_clusters=[], coe_secrets=[], coe_events=[])
        self.events = []
        self.before = {}

    @property
    def changed(self):
        return any(self.rows.values())

    def after(self):
        return dict(
            templates=sorted(set(self.before["templates"]) | {_template_line(t) for t in self.templates}),
            clusters=sorted(set(self.before["clusters"]) | {_cluster_line(c) for c in self.clusters}),
        )

    def apply(self, store):
        if self.changed:
            store.import_rows(self.rows, events=self.events)


def _template_line(row):
    return "%s v%s" % (row["name"], row["version"])


def plan_restore(store, box, export):
    """Plan restoring ``export`` (read with ``read_export``) into ``store``: nothing is written.

    ConflictError, naming each, when the store has a template version with another spec, a
    template uuid for another version, or a cluster name for another uuid; SecretError when
    the store's own key check is not ``box``'s key.
    """
    check_secret_key(store, box, create=False)
    plan = RestorePlan(export)
    have_templates = {(t["name"], t["version"]): t for t in store.list_templates()}
    template_uuids = {t["uuid"]: t for t in have_templates.values()}
    have_clusters = store.list_clusters()
    by_uuid = {c["uuid"]: c for c in have_clusters}
    by_name = {(c["project_id"], c["name"]): c for c in have_clusters}
    empty = store.is_empty()
    plan.before = dict(
        templates=sorted(_template_line(t) for t in have_templates.values()),
        clusters=sorted("%s/%s (%s)" % (c["project_id"], c["name"], c["uuid"]) for c in have_clusters),
    )
    conflicts = []
    template_ids = {}  # the export's template uuid -> the store's, for the records restored
    for row in export.templates:
        line = dict(name=row["name"], version=row["version"], uuid=row["uuid"])
        have = have_templates.get((row["name"], row["version"]))
        if have is not None:
            if have["spec_hash"] != row["spec_hash"]:
                conflicts.append(
                    "template %s version %s differs from the store's (another spec)" % (row["name"], row["version"])
                )
            template_ids[row["uuid"]] = have["uuid"]
            plan.templates.append(dict(line, uuid=have["uuid"], action="present"))
            continue
        if row["uuid"] in template_uuids:
            other = template_uuids[row["uuid"]]
            conflicts.append(
                "template %s version %s has the uuid of the store's %s version %s"
                % (row["name"], row["version"], other["name"], other["version"])
            )
            continue
        plan.templates.append(dict(line, action="restored"))
        plan.rows["coe_templates"].append(dict(row, spec=canonical_json(row["spec"])))
    known = set(have_templates) | {(t["name"], t["version"]) for t in export.templates}
    restored = set()
    for row in export.clusters:
        line = dict(name=row["name"], project=row["project"], uuid=row["uuid"], status=row["status"])
        secrets = {n: dict(s, blob=_unb64(s["blob"])) for n, s in row["secrets"].items()}
        have = by_uuid.get(row["uuid"])
        if have is not None:
            theirs = set(store.list_secrets(row["uuid"]))
            missing = sorted(n for n in secrets if n not in theirs)
            plan.clusters.append(dict(line, status=have["status"], action="credentials" if missing else "present"))
            plan.clusters[-1]["credentials"] = missing
            plan.rows["coe_secrets"].extend(_secret_row(row["uuid"], n, secrets[n]) for n in missing)
            if missing:
                plan.events.append(_event(row, have["status"], export, "credentials %s restored" % ", ".join(missing)))
            continue
        other = by_name.get((row["project"], row["name"]))
        if other is not None:
            conflicts.append(
                "cluster %s in project %s is %s in this store and %s in the export"
                % (row["name"], row["project"], other["uuid"], row["uuid"])
            )
            continue
        if (row["template_name"], row["template_version"]) not in known:
            conflicts.append(
                "cluster %s uses template %s version %s, which neither the export nor this store has"
                % (row["name"], row["template_name"], row["template_version"])
            )
            continue
        record = dict(row["record"])
        if record.get("cluster_template_id") in template_ids:
            record["cluster_template_id"] = template_ids[record["cluster_template_id"]]
        cluster_row = {k: v for k, v in row.items() if k != "secrets"}
        plan.rows["coe_clusters"].append(dict(cluster_row, record=canonical_json(record)))
        plan.rows["coe_secrets"].extend(_secret_row(row["uuid"], n, s) for n, s in sorted(secrets.items()))
        plan.clusters.append(dict(line, action="restored", credentials=sorted(secrets)))
        plan.events.append(_event(row, row["status"], export, "record restored"))
        restored.add(row["uuid"])
    if conflicts:
        raise ConflictError(
            "Couldn't restore %s into the %s: %s. Nothing was restored; restore into an empty store, or "
            "remove the store's records that clash." % (export.path, store.describe(), "; ".join(conflicts)),
            conflicts=conflicts,
        )
    plan.rows["coe_events"] = [e for e in export.events if empty or e.get("cluster_uuid") in restored]
    if plan.changed and store.get_secret(VERIFIER_UUID, VERIFIER_NAME) is None:
        # the store takes the export's key from now on (secrets.check_secret_key)
        key_check = dict(blob=_unb64(export.document["key_check"]), updated_at=export.document["exported_at"])
        plan.rows["coe_secrets"].insert(0, _secret_row(VERIFIER_UUID, VERIFIER_NAME, key_check))
    return plan


def _secret_row(cluster_uuid, name, secret):
    return dict(cluster_uuid=cluster_uuid, name=name, blob=secret["blob"], updated_at=secret["updated_at"])


def _event(row, status, export, what):
    return dict(
        kind="cluster",
        target=row["name"],
        project=row["project"],
        cluster_uuid=row["uuid"],
        operation="restore",
        to_status=status,
        message="%s from the export of the %s written at %s"
        % (what, export.document["source"], export.document["exported_at"]),
    )
