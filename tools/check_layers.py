"""Check the package's layers and look for import cycles, on the package as it installs.

The built-in checks live in ``checks/`` beside ``src/`` and install as ``scim_readiness.checks``;
an editable install maps them with an import hook that import-linter cannot follow. So the
installed shape is staged in a temporary folder (a copy of ``src/scim_readiness`` with
``checks/`` inside it) and both tools read that copy.

Usage: ``python tools/check_layers.py`` (exit 0: contracts kept and no cycles; 1: otherwise).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stage(into: Path) -> Path:
    """Copy the package into ``into`` as it installs; return the folder to put on sys.path."""
    package = into / "scim_readiness"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "scim_readiness", package, ignore=ignore)
    shutil.copytree(ROOT / "checks", package / "checks", ignore=ignore)
    return into


def cycles(path: Path) -> list[list[str]]:
    """Every import cycle among the package's modules (type-only and deferred imports count)."""
    code = f"""
import sys, json
sys.path.insert(0, {str(path)!r})
import grimp
graph = grimp.build_graph("scim_readiness", cache_dir=None)
modules = sorted(graph.modules)
deps = {{m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}}
# A package imports its own __init__-level names from submodules routinely; a cycle
# through a package's __init__ and its own submodule is how Python packages work, so
# edges from a package to its submodules are left out.
def is_child(a, b):
    return b.startswith(a + ".")
seen, stack, on, found = set(), [], set(), []
def visit(m):
    seen.add(m); stack.append(m); on.add(m)
    for d in deps.get(m, []):
        if is_child(m, d):
            continue
        if d in on:
            found.append(stack[stack.index(d):] + [d])
        elif d not in seen:
            visit(d)
    stack.pop(); on.discard(m)
sys.setrecursionlimit(10000)
for m in modules:
    if m not in seen:
        visit(m)
print(json.dumps(found))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    import json

    result: list[list[str]] = json.loads(out)
    return result


def check(path: Path) -> tuple[int, str]:
    """Run the contracts and the cycle search on a staged package; (exit code, what was said)."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    lint = subprocess.run(
        [
            str(Path(sys.executable).parent / "lint-imports"),
            str(ROOT / "pyproject.toml"),
            "--no-cache",
        ],
        env=env,
        cwd=path,
        capture_output=True,
        text=True,
    )
    said = [
        line for line in lint.stdout.splitlines() if not line.startswith(("╔", "╚", " ", "║", "└"))
    ]
    said += lint.stderr.splitlines()
    found = cycles(path)
    said += ["import cycle: " + " -> ".join(cycle) for cycle in found] or ["no import cycles"]
    return (1 if lint.returncode or found else 0), "\n".join(said)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="layers-") as tmp:
        code, said = check(stage(Path(tmp)))
        print(said)
        return code


if __name__ == "__main__":
    sys.exit(main())
