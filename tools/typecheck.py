"""Type-check the tests and benches (mypy strict) against the package as it installs.

``mypy`` alone checks ``src/scim_readiness`` and ``checks/`` (pyproject.toml). The tests and
benches import the checks as ``scim_readiness.checks.…``, a name that exists only once the
package is installed (``checks/`` lives beside ``src/`` and setup.py maps it in), and mypy has
no notion of that mapping. So the installed shape is staged as symlinks in a temporary folder
and mypy reads the tests and benches with that folder on its path. The package itself is
followed silently here: its own errors are the plain ``mypy`` run's business.

The import roots are the ones pytest and the benches use: ``tests`` (each subfolder is a
package) and ``bench``.

Usage: ``python tools/typecheck.py`` (exit 0: clean; otherwise mypy's exit code).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("tests", "bench")
IMPORT_ROOTS = ("tests", "bench")
# Left out, with the reason for each (everything else under TARGETS is checked strictly):
EXCLUDED = {
    # The zoo's receivers are written as their authors would write a small app: the Flask and
    # Starlette apps stand for code we do not control, unannotated as such code often is.
    # The harness that drives them (tests/zoo/*.py) is checked.
    "tests/zoo/flask_app/": "an independently written receiver, typed as its author chose",
    "tests/zoo/queue_app/": "an independently written receiver, typed as its author chose",
    # npm's install of the Node receiver and SDK test holds no Python, but mypy would walk it.
    "tests/zoo/node/": "the Node receiver",
    "tests/emulator/node_sdk/": "the Node SDK test",
}


def stage(into: Path) -> Path:
    """Symlink the package into ``into`` as it installs (``checks/`` inside it)."""
    package = into / "scim_readiness"
    package.mkdir(parents=True)
    for entry in (ROOT / "src" / "scim_readiness").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "checks").symlink_to(ROOT / "checks")
    return into


def config(staged: Path) -> str:
    """An ini config for this run: pyproject.toml's [tool.mypy] with the files and path of
    this run, and the staged package followed silently (the plain mypy run reports it)."""
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    overrides = settings.pop("overrides", [])
    settings.pop("files", None)
    settings["mypy_path"] = ",".join([str(staged), *(str(ROOT / r) for r in IMPORT_ROOTS)])
    lines = ["[mypy]", *(f"{key} = {_ini(value)}" for key, value in settings.items())]
    for override in [*overrides, {"module": ["scim_readiness.*"], "follow_imports": "silent"}]:
        modules = override.pop("module")
        modules = [modules] if isinstance(modules, str) else modules
        lines += [f"[mypy-{','.join(modules)}]", *(f"{k} = {_ini(v)}" for k, v in override.items())]
    return "\n".join(lines) + "\n"


def _ini(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="typecheck-") as tmp:
        staged = stage(Path(tmp) / "staged")
        ini = Path(tmp) / "mypy.ini"
        ini.write_text(config(staged))
        exclude = "|".join("^" + path.replace(".", r"\.") for path in EXCLUDED)
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ini),
            "--exclude",
            exclude,
            *TARGETS,
        ]
        return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
