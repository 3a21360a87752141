"""Rich console report: a summary table, then the findings that need a reader's attention
(with expected/observed/why/fix/docs), then each check's timeline, then the verdict."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from scim_readiness.model import CheckResult, Finding, Report, Status, Verdict
from scim_readiness.redact import NO_SECRETS, Redactor
from scim_readiness.reports import ATTENTION
from scim_readiness.reports.scan_cost import scan_cost_line

STYLE = {
    Status.PASS: "bold green",
    Status.ATTESTED: "cyan",
    Status.WARN: "bold yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
    Status.ERROR: "bold magenta",
    Status.WAIVED: "bold blue",
}
VERDICT_STYLE = {
    Verdict.READY: "bold green",
    Verdict.NOT_READY: "bold red",
    Verdict.INCOMPLETE: "bold magenta",
    Verdict.PARTIAL: "bold yellow",
}


def shown_findings(check: CheckResult, verbose: bool) -> list[Finding]:
    return [f for f in check.findings if verbose or f.status in ATTENTION]


def _status(status: Status) -> Text:
    return Text(status.value, style=STYLE[status])


def _summary(report: Report, r: Redactor) -> Table:
    table = Table(title="Checks", title_justify="left", expand=False)
    table.add_column("Check", no_wrap=True)
    table.add_column("#", justify="right")
    table.add_column("Status", no_wrap=True)
    table.add_column("Time", justify="right", no_wrap=True)
    table.add_column("Result")
    for check in report.checks:
        headline = check.headline + (" (interrupted)" if check.interrupted else "")
        table.add_row(
            Text(check.id),
            str(check.checklist_item or ""),
            _status(check.status),
            f"{check.duration_s:.1f}s",
            Text(r.text(headline)),
        )
    return table


def _finding(f: Finding, r: Redactor) -> Table:
    # A grid keeps wrapped lines under their own column instead of at the left margin.
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=1)
    grid.add_column(no_wrap=True, justify="right", width=13 if f.waived else 9)
    grid.add_column(ratio=1)
    status = f.effective_status
    strong = "bold" if status in (Status.FAIL, Status.ERROR) else ""
    grid.add_row(
        "",
        Text(f"[{f.label}]", style=STYLE[status]),
        Text(r.text(f.coded_title), style=strong),
    )
    for label, value in f.details():
        grid.add_row("", Text(label, style="dim"), Text(r.text(value)))
    return grid


def _timeline(check: CheckResult, r: Redactor) -> Table:
    table = Table(title=f"{check.id}: timeline", title_justify="left")
    table.add_column("Step")
    table.add_column("Expected")
    table.add_column("Observed")
    table.add_column("Status", no_wrap=True)
    table.add_column("Latency", justify="right", no_wrap=True)
    for step in check.timeline:
        table.add_row(
            Text(r.text(step.step)),
            Text(r.text(step.expected)),
            Text(r.text(step.observed)),
            _status(step.status),
            "" if step.latency_s is None else f"{step.latency_s:.2f}s",
        )
    return table


def _verdict(report: Report) -> Text:
    summary = report.summary
    text = Text("Verdict: ")
    label, _, rest = summary.headline.partition(":")
    text.append(label, style=VERDICT_STYLE[summary.verdict])
    text.append(":" + rest if rest else "")
    counts = ", ".join(f"{n} {s.value}" for s, n in summary.counts.items() if n)
    text.append(f"  ({counts or 'no checks ran'})")
    if report.interrupted:
        text.append("\nThe run was interrupted; the checks marked interrupted did not finish.")
    return text


def renderables(
    report: Report, *, redactor: Redactor | None = None, verbose: bool = False
) -> Group:
    r = redactor or NO_SECRETS
    parts: list[Table | Text] = []
    header = Text(f"scim-readiness {report.tool_version}", style="bold")
    header.append(
        r.text(
            f"  run {report.run_id} · target {report.target} · {report.started_at}"
            f" · {report.duration_s:.1f}s" + (" · read-only" if report.read_only else "")
        ),
        style="dim",
    )
    parts += [header, Text(), _summary(report, r)]
    if (scans := scan_cost_line(report)) is not None:
        parts.append(Text(r.text(scans), style="dim"))
    for check in report.checks:
        findings = shown_findings(check, verbose)
        if findings:
            parts.append(Text())
            title = Text()
            title.append(check.status.value, style=STYLE[check.status])
            title.append(f"  {check.id}", style="bold")
            title.append(r.text(f" · {check.title}"))
            parts.append(title)
            parts += [_finding(f, r) for f in findings]
        if check.timeline:
            parts += [Text(), _timeline(check, r)]
    unused = report.unused_waiver_lines()
    if unused:
        parts += [Text(), Text("Unused waivers", style="bold yellow")]
        parts += [Text(r.text(f"  [WARN] {line}")) for line in unused]
    parts += [Text(), _verdict(report)]
    return Group(*parts)


def render(
    report: Report,
    *,
    redactor: Redactor | None = None,
    verbose: bool = False,
    width: int = 100,
    color: bool = False,
) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    console.print(renderables(report, redactor=redactor, verbose=verbose))
    # Redact the final text too: a secret split across table cells is still a secret.
    return (redactor or NO_SECRETS).text(buffer.getvalue())
