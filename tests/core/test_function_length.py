"""No function in checks/ is over 60 lines: a long check is a procedure that wants to be a
table of steps, or phases with names.

A function's length runs from its ``def`` line to its last line (decorators not counted,
its docstring and nested functions counted); nested functions are measured on their own too.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

LIMIT = 60
CHECKS = Path(__file__).resolve().parents[2] / "checks"


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


def test_no_function_in_checks_is_over_the_limit() -> None:
    found = long_functions(CHECKS)
    assert not found, (
        f"over {LIMIT} lines (split it into named phases or a table of steps): {found}"
    )


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
