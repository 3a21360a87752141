"""The provisioning and webhook helpers take the parts they use, never a whole CheckContext:
the removal sweep makes those parts from the ledger and the config alone, so a helper that
wanted a context would make it assemble one again. ``scim_readiness.parts`` is the one place
that unpacks a context for them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "scim_readiness"
#: Where no function may take a CheckContext.
PARTS_ONLY = (
    PACKAGE / "provisioning",
    PACKAGE / "webhooks",
    PACKAGE / "plugin" / "target.py",
    PACKAGE / "engine" / "sweep.py",
    PACKAGE / "cli" / "cleanup.py",
)


def takes_a_context(source: str) -> list[str]:
    """The functions of ``source`` with a parameter annotated with ``CheckContext``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            if any(
                p is not None
                and p.annotation is not None
                and "CheckContext" in ast.unparse(p.annotation)
                for p in params
            ):
                found.append(node.name)
    return found


def modules(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def test_helpers_take_parts_not_the_context() -> None:
    found = {
        path.relative_to(PACKAGE).as_posix(): names
        for root in PARTS_ONLY
        for path in modules(root)
        if (names := takes_a_context(path.read_text(encoding="utf-8")))
    }
    assert not found, f"take the parts they use (see scim_readiness.parts): {found}"


def test_the_sweep_assembles_no_context() -> None:
    for path in (PACKAGE / "engine" / "sweep.py", PACKAGE / "cli" / "cleanup.py"):
        source = path.read_text(encoding="utf-8")
        assert "build_context" not in source and "CheckInfo(" not in source, path.name


def test_the_rule_can_fail() -> None:
    source = "async def helper(ctx: CheckContext, n: int) -> None: ...\ndef fine(x: int): ..."
    assert takes_a_context(source) == ["helper"]
