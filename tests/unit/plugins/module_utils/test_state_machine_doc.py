"""docs/state-machine.md draws lifecycle.TABLE; this fails when they disagree."""

import os

from ansible_collections.coe.openstack.plugins.module_utils import lifecycle as lc

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "state-machine.md")
WORDS = {
    "yes": lc.ALLOW,
    "-": lc.DENY,
    "resume": lc.RESUME,
    "retry/rollback": lc.RETRY_UPGRADE,
    "unless delete-locked": lc.UNLESS_DELETE_LOCKED,
}


def test_doc_table_matches_the_code():
    with open(DOC) as f:
        lines = [line for line in f if line.startswith("| `")]
    drawn = {}
    header = None
    with open(DOC) as f:
        for line in f:
            if line.startswith("| status |"):
                header = [c.strip() for c in line.strip().strip("|").split("|")][1:]
    assert header == list(lc.ACTIONS)
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        status = cells[0].strip("`")
        if status in lc.TABLE:
            drawn[status] = {a: WORDS[c] for a, c in zip(header, cells[1:], strict=True)}
    assert drawn == lc.TABLE
