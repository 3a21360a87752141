"""No function in checks/ is over 60 lines: a long check is a procedure that wants to be a
table of steps, or phases with names.

A function's length runs from its ``def`` line to its last line (decorators not counted,
its docstring and nested functions counted); nested functions are measured on their own too.
The functions still over the limit wait in ``STILL_LONG`` for their refactoring; the list
only shrinks: a new long function fails, and so does an entry whose function got short (or
went away), so that it is struck off.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

LIMIT = 60
CHECKS = Path(__file__).resolve().parents[2] / "checks"

#: (path under checks/, qualified name) of the functions still over the limit.
STILL_LONG: frozenset[tuple[str, str]] = frozenset(
    {
        ("admin_portal/__init__.py", "_judge_authenticated"),
        ("admin_portal/__init__.py", "_judge_framing"),
        ("admin_portal/__init__.py", "_probe_app_endpoint"),
        ("bad_data.py", "_invalid_payloads"),
        ("bad_data.py", "_judge_conflict"),
        ("bad_data.py", "_judge_records"),
        ("bad_data.py", "_verdict_on_invalid"),
        ("bad_data.py", "run"),
        ("environment.py", "_check_directory"),
        ("environment.py", "_check_organization"),
        ("environment.py", "_check_url"),
        ("webhook_endpoint/__init__.py", "_acknowledgement"),
        ("webhook_endpoint/__init__.py", "_certificate"),
        ("webhook_endpoint/burst.py", "burst_step"),
        ("webhook_endpoint/burst.py", "record_burst"),
        ("webhook_endpoint/burst.py", "send_burst"),
        ("webhook_signature.py", "_cases"),
        ("webhook_signature.py", "_judge_traces"),
        ("webhook_signature.py", "_replay"),
        ("webhook_signature.py", "run"),
    }
)


def function_lengths(source: str) -> dict[str, int]:
    """Every function of ``source`` by qualified name (``Class.method``, ``outer.inner``)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    assert child.end_lineno is not None
                    lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def long_functions(root: Path) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for name, lines in function_lengths(path.read_text(encoding="utf-8")).items():
            if lines > LIMIT:
                found[(relative, name)] = lines
    return found


def test_no_new_function_in_checks_is_over_the_limit() -> None:
    found = long_functions(CHECKS)
    new = {key: lines for key, lines in found.items() if key not in STILL_LONG}
    assert not new, f"over {LIMIT} lines (split it into named phases or a table of steps): {new}"


def test_every_function_still_listed_is_still_long() -> None:
    found = long_functions(CHECKS)
    short = sorted(STILL_LONG - found.keys())
    assert not short, f"no longer over {LIMIT} lines (or gone): strike off STILL_LONG: {short}"


def test_the_measure_sees_nested_and_method_bodies() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    source = textwrap.dedent(
        """
        class Check:
            async def run(self):
        {body}

        def outer():
            def inner():
        {inner}
            return inner
        """
    ).format(body=textwrap.indent(body, "    "), inner=textwrap.indent(body, "    "))
    lengths = function_lengths(source)
    assert lengths["Check.run"] == LIMIT + 1
    assert lengths["outer.inner"] == LIMIT + 1
    assert lengths["outer"] == LIMIT + 3
