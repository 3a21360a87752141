"""Plain-text report: no colours, no box drawing, stable for logs and pipes."""

from __future__ import annotations

from scim_readiness.model import Report
from scim_readiness.redact import NO_SECRETS, Redactor
from scim_readiness.reports import ATTENTION
from scim_readiness.reports.scan_cost import scan_cost_line


def render(report: Report, *, redactor: Redactor | None = None, verbose: bool = False) -> str:
    r = redactor or NO_SECRETS
    lines = [
        f"scim-readiness {report.tool_version}  run {report.run_id}  target {report.target}",
        f"started {report.started_at}  took {report.duration_s:.1f}s"
        + ("  read-only" if report.read_only else ""),
        "",
    ]
    width = max((len(c.id) for c in report.checks), default=5)
    for check in report.checks:
        note = " (interrupted)" if check.interrupted else ""
        lines.append(
            f"{check.status.value:<5}  {check.id:<{width}}  {check.duration_s:6.1f}s  "
            f"{check.headline}{note}"
        )
    if (scans := scan_cost_line(report)) is not None:
        lines.append(scans)
    for check in report.checks:
        findings = [f for f in check.findings if verbose or f.status in ATTENTION]
        if findings:
            lines += ["", f"== {check.status.value} {check.id}: {check.title}"]
        for f in findings:
            lines.append(f"  [{f.label}] {f.coded_title}")
            for label, value in f.details():
                lines.append(f"      {label}: {value}")
        if check.timeline:
            lines += ["", f"-- {check.id} timeline"]
            for step in check.timeline:
                latency = "" if step.latency_s is None else f" in {step.latency_s:.2f}s"
                lines.append(
                    f"  [{step.status.value}] {step.step}: expected {step.expected};"
                    f" observed {step.observed}{latency}"
                )
    unused = report.unused_waiver_lines()
    if unused:
        lines += ["", "== unused waivers"] + [f"  [WARN] {line}" for line in unused]
    summary = report.summary
    counts = ", ".join(f"{n} {s.value}" for s, n in summary.counts.items() if n)
    lines += ["", f"Verdict: {summary.headline}  ({counts or 'no checks ran'})"]
    if report.interrupted:
        lines.append("The run was interrupted; the checks marked interrupted did not finish.")
    return r.text("\n".join(lines) + "\n")
