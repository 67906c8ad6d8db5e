"""Thin modules (issue 19): a module file is its documentation, its argument spec and a
``run()`` that hands itself to module_utils; no more than 80 lines of code besides its docs."""

import ast
import io
import pathlib
import tokenize

import pytest

MODULES = pathlib.Path(__file__).resolve().parents[4] / "plugins" / "modules"
DOC_STRINGS = ("DOCUMENTATION", "EXAMPLES", "RETURN")
MAX_CODE_LINES = 80
# still fat, with the reason; strict: the test fails once one of them is thin, so it leaves this list
NOT_YET_THIN = {}


def code_lines(source):
    """The line numbers holding code: not blank, not only a comment, not in a doc string."""
    docs = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) in DOC_STRINGS for t in node.targets):
            docs.update(range(node.lineno, node.end_lineno + 1))
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    lines = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines.update(range(token.start[0], token.end[0] + 1))
    return lines - docs


def test_the_count_skips_docs_comments_and_blank_lines():
    source = '#!/usr/bin/python\n# a comment\n\nDOCUMENTATION = r"""\nmodule: x\n"""\n\nx = dict(\n    a=1,  # why\n)\n'
    assert sorted(code_lines(source)) == [8, 9, 10]


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(reason=NOT_YET_THIN[p.name], strict=True))
        if p.name in NOT_YET_THIN
        else p
        for p in sorted(MODULES.glob("*.py"))
    ],
    ids=lambda p: p.name,
)
def test_a_module_keeps_at_most_80_lines_of_code(path):
    count = len(code_lines(path.read_text(encoding="utf-8")))
    assert count <= MAX_CODE_LINES, (
        "%s has %d lines of code besides its docs (at most %d): move its logic into module_utils "
        "(a ModuleLogic subclass, as heat/driver.py does)" % (path.name, count, MAX_CODE_LINES)
    )
