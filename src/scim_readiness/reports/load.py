"""Reading a saved JSON report back into a :class:`Report` (``report show``/``report diff``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scim_readiness.errors import UsageError
from scim_readiness.model import (
    READABLE_SCHEMA_VERSIONS,
    CheckResult,
    Finding,
    Report,
    Severity,
    Status,
    TimelineStep,
    WaiverNote,
)


class _Bad(Exception):
    pass


def _get(node: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise _Bad(f"{where}: missing {key!r}")
    value = node[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise _Bad(f"{where}.{key}: unexpected value {value!r}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _status(value: Any, where: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise _Bad(f"{where}: unknown status {value!r}") from None


def _finding(node: Any, where: str) -> Finding:
    severity = node.get("severity", "medium") if isinstance(node, dict) else "medium"
    try:
        sev = Severity(severity)
    except ValueError:
        raise _Bad(f"{where}: unknown severity {severity!r}") from None
    return Finding(
        title=_get(node, "title", str, where),
        status=_status(_get(node, "status", str, where), where),
        expected=str(node.get("expected", "")),
        observed=str(node.get("observed", "")),
        why=str(node.get("why", "")),
        fix=str(node.get("fix", "")),
        docs_url=str(node.get("docs_url", "")),
        severity=sev,
        evidence=node.get("evidence") or {},
        # Version 1 reports have neither: no code, no waiver.
        code=str(node.get("code") or ""),
        waiver=_waiver(node.get("waiver"), f"{where}.waiver"),
    )


def _waiver(node: Any, where: str) -> WaiverNote | None:
    if node is None:
        return None
    return WaiverNote(
        code=_get(node, "code", str, where),
        reason=str(node.get("reason", "")),
        owner=str(node.get("owner", "")),
        expires=str(node.get("expires", "")),
        check=str(node.get("check", "") or ""),
        target=str(node.get("target", "") or ""),
        expired=bool(node.get("expired", False)),
    )


def _step(node: Any, where: str) -> TimelineStep:
    latency = node.get("latency_s") if isinstance(node, dict) else None
    return TimelineStep(
        step=_get(node, "step", str, where),
        expected=str(node.get("expected", "")),
        observed=str(node.get("observed", "")),
        status=_status(_get(node, "status", str, where), where),
        latency_s=float(latency) if isinstance(latency, int | float) else None,
    )


def _check(node: Any, where: str) -> CheckResult:
    findings = _get(node, "findings", list, where)
    timeline = node.get("timeline") or []
    return CheckResult(
        id=_get(node, "id", str, where),
        title=str(node.get("title", "")),
        checklist_item=int(node.get("checklist_item", 0) or 0),
        status=_status(_get(node, "status", str, where), where),
        findings=tuple(_finding(f, f"{where}.findings[{i}]") for i, f in enumerate(findings)),
        duration_s=float(_get(node, "duration_s", (int, float), where)),
        mutates=bool(node.get("mutates", False)),
        docs_url=str(node.get("docs_url", "")),
        timeline=tuple(_step(s, f"{where}.timeline[{i}]") for i, s in enumerate(timeline)),
        metrics=node.get("metrics") or {},
        interrupted=bool(node.get("interrupted", False)),
    )


def from_dict(data: Any) -> Report:
    version = _get(data, "schema_version", int, "report")
    if version not in READABLE_SCHEMA_VERSIONS:
        readable = ", ".join(map(str, READABLE_SCHEMA_VERSIONS))
        raise _Bad(
            f"report: schema_version {version} is not supported (this tool reads {readable})"
        )
    checks = _get(data, "checks", list, "report")
    return Report(
        run_id=str(data.get("run_id", "")),
        tool_version=str(data.get("tool_version", "")),
        target=str(data.get("target", "")),
        started_at=str(data.get("started_at", "")),
        duration_s=float(data.get("duration_s", 0.0) or 0.0),
        checks=tuple(_check(c, f"checks[{i}]") for i, c in enumerate(checks)),
        read_only=bool(data.get("read_only", False)),
        interrupted=bool(data.get("interrupted", False)),
        accepted=_accepted(data.get("summary")),
        unused_waivers=_unused_waivers(data.get("summary")),
    )


def _unused_waivers(summary: Any) -> tuple[WaiverNote, ...]:
    nodes = summary.get("unused_waivers") if isinstance(summary, dict) else None
    found = [_waiver(node, f"summary.unused_waivers[{i}]") for i, node in enumerate(nodes or [])]
    return tuple(w for w in found if w is not None)


def _accepted(summary: Any) -> dict[int, str]:
    """Items the run accepted as not evaluated (reports before coverage have none)."""
    coverage = summary.get("coverage") if isinstance(summary, dict) else None
    items = coverage.get("items") if isinstance(coverage, dict) else None
    accepted: dict[int, str] = {}
    for node in items if isinstance(items, list) else []:
        if isinstance(node, dict) and isinstance(node.get("item"), int) and node.get("accepted_by"):
            accepted[node["item"]] = str(node["accepted_by"])
    return accepted


def load_report(path: str | Path) -> Report:
    """A saved JSON report; any problem is a UsageError (exit 2) naming the file."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{shown}: report file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{shown}: cannot read the report: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{shown}: not a JSON report ({exc})",
            hint="pass a file written by `scim-readiness run --json PATH`",
        ) from None
    try:
        return from_dict(data)
    except (_Bad, TypeError, ValueError) as exc:
        raise UsageError(
            f"{shown}: not a scim-readiness JSON report: {exc}",
            hint="pass a file written by `scim-readiness run --json PATH`",
        ) from None
