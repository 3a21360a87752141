"""Finding checks: built-ins by scanning ``scim_readiness.checks``, extras by entry point.

A third-party distribution adds checks by declaring, in its own ``pyproject.toml``::

    [project.entry-points."scim_readiness.checks"]
    my-check = "my_package.my_check_module"

Each entry point names a *module* that defines ``CHECK`` and ``run`` like a built-in.
``SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD=1`` turns third-party checks off (as pytest does),
for when a broken plugin stands between a release engineer and a verdict.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

from scim_readiness.errors import PluginError, UsageError, did_you_mean
from scim_readiness.plugin.contract import CODE_FORMAT, CheckInfo
from scim_readiness.plugin.entry import RunFn

ENTRY_POINT_GROUP = "scim_readiness.checks"
#: The prefix of the engine's own finding codes (``engine.codes``), which no check may take.
ENGINE_PREFIX = "RUN"
#: How the engine's catalogue is named where a check id would stand (explain, docs).
ENGINE = "(engine)"
BUILTIN_PACKAGE = "scim_readiness.checks"
DISABLE_AUTOLOAD_ENV = "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD"
_BROKEN_HINT = f"fix or uninstall it; set {DISABLE_AUTOLOAD_ENV}=1 to skip third-party checks"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A discovered check: its metadata plus its entry points."""

    info: CheckInfo
    run: RunFn
    cleanup: RunFn | None = None
    origin: str = ""  # module name, or "dist-name (entry point)" for plugins

    @classmethod
    def from_module(cls, module: ModuleType, origin: str = "") -> CheckSpec:
        from scim_readiness.errors import PluginError

        info = getattr(module, "CHECK", None)
        run = getattr(module, "run", None)
        if not isinstance(info, CheckInfo) or not callable(run):
            raise PluginError(
                f"{origin or module.__name__}: not a check module",
                hint="a check module defines CHECK = CheckInfo(...) and async def run(ctx)",
            )
        cleanup = getattr(module, "cleanup", None)
        return cls(
            info=info,
            run=run,
            cleanup=cleanup if callable(cleanup) else None,
            origin=origin or module.__name__,
        )


def _import(name: str, origin: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:  # a broken plugin must not take the CLI down with a traceback
        raise PluginError(
            f"check module {origin} could not be imported: {type(exc).__name__}: {exc}",
            hint=_BROKEN_HINT,
        ) from exc


def builtin_specs() -> list[CheckSpec]:
    package = _import(BUILTIN_PACKAGE, BUILTIN_PACKAGE)
    specs = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        name = f"{BUILTIN_PACKAGE}.{module_info.name}"
        specs.append(CheckSpec.from_module(_import(name, name), origin=name))
    return specs


def plugin_specs() -> list[CheckSpec]:
    from importlib.metadata import entry_points

    specs = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        origin = f"{dist} (entry point {ep.name})"
        try:
            loaded = ep.load()
        except Exception as exc:
            raise PluginError(
                f"check plugin {origin} could not be loaded: {type(exc).__name__}: {exc}",
                hint=_BROKEN_HINT,
            ) from exc
        if not isinstance(loaded, ModuleType):
            raise PluginError(
                f"check plugin {origin} points at {ep.value!r}, which is not a module",
                hint="an entry point in the scim_readiness.checks group names a check module",
            )
        specs.append(CheckSpec.from_module(loaded, origin=origin))
    return specs


def autoload_disabled() -> bool:
    return os.environ.get(DISABLE_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def discover(*, autoload_plugins: bool = True) -> list[CheckSpec]:
    """All checks, built-ins first in checklist order, then plugins; ids must be unique, and
    so must their finding codes (see ``engine.codes``)."""
    specs = builtin_specs()
    if autoload_plugins and not autoload_disabled():
        specs += plugin_specs()
    ensure_unique(specs)
    validate_catalogues(spec.info for spec in specs)
    return sorted(specs, key=_order)


def _order(spec: CheckSpec) -> tuple[bool, int, str]:
    item = spec.info.checklist_item
    return (item <= 0, item, spec.info.id)


def ensure_unique(specs: Iterable[CheckSpec]) -> None:
    seen: dict[str, CheckSpec] = {}
    for spec in specs:
        other = seen.get(spec.info.id)
        if other is not None:
            raise PluginError(
                f"two checks share the id {spec.info.id!r}: {other.origin} and {spec.origin}",
                hint="check ids must be unique; uninstall or rename one of them",
            )
        seen[spec.info.id] = spec


def validate_catalogues(infos: Iterable[CheckInfo]) -> None:
    """Every check's codes (see ``engine.codes``) are well-formed, share one prefix of their
    own, and no code or prefix belongs to two checks (or to the engine); PluginError
    otherwise. Here, not in ``engine.codes``: discovery runs on every start-up."""
    prefixes: dict[str, str] = {ENGINE_PREFIX: ENGINE}
    for info in infos:
        if not info.codes:
            continue
        seen: set[str] = set()
        mine = {entry.code[:3] for entry in info.codes}
        for entry in info.codes:
            if not CODE_FORMAT.match(entry.code):
                raise PluginError(
                    f"check {info.id}: finding code {entry.code!r} is not three capital "
                    "letters and three digits",
                    hint="codes look like SIG001: the check's prefix and a number",
                )
            if entry.code in seen:
                raise PluginError(f"check {info.id}: finding code {entry.code} is declared twice")
            seen.add(entry.code)
        if len(mine) != 1:
            raise PluginError(
                f"check {info.id}: its finding codes mix the prefixes {', '.join(sorted(mine))}",
                hint="every code of one check starts with the check's own three letters",
            )
        prefix = mine.pop()
        other = prefixes.get(prefix)
        if other is not None:
            raise PluginError(
                f"check {info.id}: the code prefix {prefix} already belongs to {other}",
                hint="choose three letters no other check uses (`scim-readiness explain` "
                "lists them)",
            )
        prefixes[prefix] = info.id


def select(
    specs: Sequence[CheckSpec], only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[CheckSpec]:
    """Validate ``--only``/``--skip`` ids and return the checks ``--only`` keeps."""
    known = [s.info.id for s in specs]
    for flag, ids in (("--only", only), ("--skip", skip)):
        for check_id in ids:
            if check_id not in known:
                raise UsageError(
                    f"{flag} {check_id}: no such check{did_you_mean(check_id, known)}",
                    hint="`scim-readiness checks` lists the check ids",
                )
    both = sorted(set(only) & set(skip))
    if both:
        raise UsageError(
            f"conflicting flags: {', '.join(both)} given to both --only and --skip",
            hint="name a check in one of them, not both",
        )
    if not only:
        return list(specs)
    return [s for s in specs if s.info.id in only]
