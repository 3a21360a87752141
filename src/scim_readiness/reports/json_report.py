"""JSON report, ``schema_version`` 2 (documented in the README; ``json_schema_v2.json``).

``to_dict`` is the schema; ``render`` is ``to_dict`` as indented JSON. Every string value
passes through the redactor before encoding, so no escaping can hide a secret from it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from scim_readiness.model import (
    CheckResult,
    Coverage,
    Finding,
    Report,
    TimelineStep,
    WaiverNote,
)
from scim_readiness.redact import NO_SECRETS, Redactor


def _waiver(w: WaiverNote) -> dict[str, Any]:
    return {
        "code": w.code,
        "check": w.check,
        "target": w.target,
        "reason": w.reason,
        "owner": w.owner,
        "expires": w.expires,
        "expired": w.expired,
    }


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "title": f.title,
        "status": f.status.value,
        "expected": f.expected,
        "observed": f.observed,
        "why": f.why,
        "fix": f.fix,
        "docs_url": f.docs_url,
        "severity": f.severity.value,
        "evidence": dict(f.evidence),
        "waived": f.waived,
        "waiver": _waiver(f.waiver) if f.waiver is not None else None,
    }


def _step(s: TimelineStep) -> dict[str, Any]:
    return {
        "step": s.step,
        "expected": s.expected,
        "observed": s.observed,
        "status": s.status.value,
        "latency_s": s.latency_s,
    }


def _check(c: CheckResult) -> dict[str, Any]:
    return {
        "id": c.id,
        "title": c.title,
        "checklist_item": c.checklist_item,
        "status": c.status.value,
        "findings": [_finding(f) for f in c.findings],
        "duration_s": c.duration_s,
        "mutates": c.mutates,
        "docs_url": c.docs_url,
        "timeline": [_step(s) for s in c.timeline],
        "metrics": dict(c.metrics),
        "interrupted": c.interrupted,
    }


def _coverage(coverage: Coverage) -> dict[str, Any]:
    return {
        "items_total": len(coverage.items),
        "items_evaluated": len(coverage.evaluated),
        "complete": coverage.complete,
        "items": [
            {
                "item": i.item,
                "checks": list(i.checks),
                "evaluated": i.evaluated,
                "status": i.status.value if i.status is not None else None,
                "reason": i.reason,
                "accepted_by": i.accepted_by,
            }
            for i in coverage.items
        ],
    }


def to_dict(report: Report) -> dict[str, Any]:
    summary = report.summary
    return {
        "schema_version": report.schema_version,
        "tool": "scim-readiness",
        "tool_version": report.tool_version,
        "run_id": report.run_id,
        "target": report.target,
        "started_at": report.started_at,
        "duration_s": report.duration_s,
        "read_only": report.read_only,
        "interrupted": report.interrupted,
        "summary": {
            "verdict": summary.verdict.value,
            "total": summary.total,
            "counts": {status.value: n for status, n in summary.counts.items()},
            "headline": summary.headline,
            "coverage": _coverage(summary.coverage),
            "waived": summary.waived,
            "unused_waivers": [_waiver(w) for w in report.unused_waivers],
        },
        "checks": [_check(c) for c in report.checks],
    }


def _scrub(node: Any, redactor: Redactor) -> Any:
    if isinstance(node, str):
        return redactor.text(node)
    if isinstance(node, Mapping):
        return {redactor.text(str(k)): _scrub(v, redactor) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_scrub(v, redactor) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        return str(node)  # NaN and Infinity are not JSON
    if node is None or isinstance(node, bool | int | float):
        return node
    return redactor.text(str(node))  # evidence a check left as an object: its text


def render(report: Report, *, redactor: Redactor | None = None, verbose: bool = False) -> str:
    data = _scrub(to_dict(report), redactor or NO_SECRETS)
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
