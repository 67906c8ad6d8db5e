# Copyright: coe.openstack contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # The option every module that reads or writes the cluster store takes.
    DOCUMENTATION = r"""
options:
  state_url:
    description:
      - Where the cluster store lives.
      - C(sqlite:///PATH) for the embedded store (one file, created with mode 0600), or
        C(postgresql://USER:PASSWORD@HOST:PORT/DB) for a store shared by a team or by AWX.
      - When not given, the environment variable C(COE_STATE_URL) is used, and then the SQLite
        file C(~/.local/state/coe.openstack/coe.db).
    type: str
"""
