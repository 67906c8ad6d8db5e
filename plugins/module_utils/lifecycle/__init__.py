# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)
"""The cluster lifecycle, one concern a file:

* ``states``   the statuses and the state-machine table (docs/state-machine.md draws it);
* ``validate`` input validation and the template schema;
* ``planning`` the desired record, the operation it needs, the record to write;
* ``merge``    folding an observation into a record (stuck detection).

This package is their one public face: callers use ``lifecycle.<name>`` for the names below, or a
submodule for the rest. Plain
Python: no ansible, no openstack, and no import of the user-data renderer.
"""

from __future__ import annotations

from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.merge import (
    MAX_REASON,
    fail_in_progress,
    merge_observation,
)
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.planning import (
    _group_shape,
    apply_plan,
    diff_view,
    empty_plan,
    observes_before_planning,
    plan,
    public_plan,
    validate_desired,
)
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.states import (
    ABSENT,
    ACTIONS,
    ALLOW,
    DELETE_COMPLETE,
    DELETE_IN_PROGRESS,
    DENY,
    RESUME,
    RETRY_UPGRADE,
    STATUSES,
    TABLE,
    UNLESS_DELETE_LOCKED,
    check_transition,
)
from ansible_collections.coe.openstack.plugins.module_utils.lifecycle.validate import (
    TEMPLATE_FIELDS,
    check_template_version,
    coe_version_of,
    normalise_template_spec,
    validate_int,
    validate_name,
)

__all__ = [
    "ABSENT",
    "ACTIONS",
    "ALLOW",
    "DELETE_COMPLETE",
    "DELETE_IN_PROGRESS",
    "DENY",
    "MAX_REASON",
    "RESUME",
    "RETRY_UPGRADE",
    "STATUSES",
    "TABLE",
    "TEMPLATE_FIELDS",
    "UNLESS_DELETE_LOCKED",
    "_group_shape",
    "apply_plan",
    "check_template_version",
    "check_transition",
    "coe_version_of",
    "diff_view",
    "empty_plan",
    "fail_in_progress",
    "merge_observation",
    "normalise_template_spec",
    "observes_before_planning",
    "plan",
    "public_plan",
    "validate_desired",
    "validate_int",
    "validate_name",
]
