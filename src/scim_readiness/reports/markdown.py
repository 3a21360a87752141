"""Markdown report, sized for a CI job summary (``--markdown -`` → ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from scim_readiness.model import Report, Status, Verdict
from scim_readiness.redact import NO_SECRETS, Redactor
from scim_readiness.reports import ATTENTION
from scim_readiness.reports.scan_cost import scan_cost_line

ICON = {
    Status.PASS: "✅",
    Status.ATTESTED: "📝",
    Status.WARN: "⚠️",
    Status.FAIL: "❌",
    Status.SKIP: "⏭️",
    Status.ERROR: "💥",
    Status.WAIVED: "🔕",
}
MARK = {
    Verdict.READY: "✅",
    Verdict.NOT_READY: "❌",
    Verdict.INCOMPLETE: "💥",
    Verdict.PARTIAL: "⏭️",
}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render(report: Report, *, redactor: Redactor | None = None, verbose: bool = False) -> str:
    r = redactor or NO_SECRETS
    summary = report.summary
    counts = ", ".join(f"{n} {s.value}" for s, n in summary.counts.items() if n)
    mark = MARK[summary.verdict]
    lines = [
        f"## {mark} SCIM readiness: {_cell(summary.headline)}",
        "",
        f"Target `{_cell(report.target)}` · run `{report.run_id}` · {report.started_at}"
        f" · {report.duration_s:.1f}s · {counts or 'no checks ran'}"
        + (" · read-only" if report.read_only else "")
        + (" · **interrupted**" if report.interrupted else ""),
        "",
        "| Check | # | Status | Time | Result |",
        "|---|---:|---|---:|---|",
    ]
    for c in report.checks:
        note = " (interrupted)" if c.interrupted else ""
        lines.append(
            f"| `{c.id}` | {c.checklist_item or ''} | {ICON[c.status]} {c.status.value} "
            f"| {c.duration_s:.1f}s | {_cell(c.headline + note)} |"
        )
    if (scans := scan_cost_line(report)) is not None:
        lines += ["", _cell(scans)]
    for c in report.checks:
        findings = [f for f in c.findings if verbose or f.status in ATTENTION]
        if not findings:
            continue
        lines += ["", f"### {ICON[c.status]} `{c.id}`: {_cell(c.title)}", ""]
        for f in findings:
            code = f" `{f.code}`" if f.code else ""
            lines.append(f"- **{f.label}**{code} {_cell(f.title)}")
            for label, value in f.details():
                text = f"<{value}>" if label == "docs" else _cell(value)
                lines.append(f"  - {label.capitalize()}: {text}")
    unused = report.unused_waiver_lines()
    if unused:
        lines += ["", "### ⚠️ Unused waivers", ""] + [f"- {_cell(line)}" for line in unused]
    return r.text("\n".join(lines) + "\n")
