# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Attributes of the modules of coe.openstack. Modules that change
    # something use the default; read-only modules use coe.openstack.attributes.info.
    # A module may still say more about one attribute in its own DOCUMENTATION: its keys
    # win over the fragment's (cluster_lock's idempotent support is partial).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and returns what it would change, without changing it.
    support: full
  diff_mode:
    description: Returns C(before) and C(after) of what changes when C(--diff) is given.
    support: full
  idempotent:
    description:
      - A second run with the same arguments, on a cloud and store that did not change meanwhile,
        changes nothing and makes no write call.
    support: full
"""

    INFO = r"""
attributes:
  check_mode:
    description: Can run in check mode; this module changes nothing.
    support: full
  diff_mode:
    description: Returns no diff; this module changes nothing.
    support: none
  idempotent:
    description: This module changes nothing.
    support: full
"""
