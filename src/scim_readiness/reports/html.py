"""Self-contained HTML report: one file, inline CSS and SVG, nothing fetched, no script.

It shows the headline, a table of the checks, the findings that need attention, the timelines
as charts (propagation latency per step, the burst's latency percentiles, data-model mismatch
counts), then every check with its passing findings, timeline and metrics.
It prints well: a print stylesheet drops the colours that waste ink and keeps each finding on
one page.

Every value is redacted first and HTML-escaped second (the redactor also knows the escaped
forms of each secret), then the whole document is redacted once more, as the console report
is, so a secret split across two elements is caught too.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_readiness.model import CheckResult, Finding, Report, Status
from scim_readiness.redact import NO_SECRETS, Redactor
from scim_readiness.reports import ATTENTION

# Colours chosen to stay distinguishable in greyscale print as well (different lightness).
COLOUR = {
    Status.PASS: "#1a7f37",
    Status.ATTESTED: "#0969da",
    Status.WARN: "#9a6700",
    Status.FAIL: "#cf222e",
    Status.SKIP: "#6e7781",
    Status.ERROR: "#8250df",
    Status.WAIVED: "#0550ae",
}
_VERDICT_CLASS = {"READY": "ready", "NOT READY": "not-ready", "INCOMPLETE": "incomplete"}

# The burst's latency percentiles and the single-delivery acknowledgements, as the
# webhook-endpoint check records them in its metrics.
_LATENCY_METRICS = (
    ("ack_p50_ms", "single delivery p50"),
    ("ack_p95_ms", "single delivery p95"),
    ("burst_p50_ms", "burst p50"),
    ("burst_p95_ms", "burst p95"),
    ("burst_p99_ms", "burst p99"),
)
_RECONCILE_METRICS = (
    ("directory_users", "directory users"),
    ("app_users", "app users"),
    ("matched", "matched"),
)

CSS = """
:root { color-scheme: light; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--fg); margin: 0 auto; max-width: 980px; padding: 24px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 32px 0 8px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 20px 0 6px; }
.meta, .muted { color: var(--muted); font-size: .9rem; }
.headline { font-size: 1.15rem; font-weight: 600; padding: 12px 16px; border-radius: 6px;
  border-left: 6px solid; margin: 16px 0; background: #f6f8fa; }
.headline.ready { border-color: #1a7f37; } .headline.not-ready { border-color: #cf222e; }
.headline.incomplete { border-color: #8250df; } .headline.other { border-color: #9a6700; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; white-space: nowrap; }
.status { font-weight: 700; white-space: nowrap; }
.finding { border: 1px solid var(--line); border-left: 5px solid; border-radius: 6px;
  padding: 8px 12px; margin: 8px 0; break-inside: avoid; }
.finding dl { display: grid; grid-template-columns: 6.5em 1fr; gap: 2px 12px; margin: 6px 0 0; }
.finding dt { color: var(--muted); } .finding dd { margin: 0; overflow-wrap: anywhere; }
.passed li { color: var(--muted); }
figure { margin: 12px 0 20px; break-inside: avoid; }
figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg { max-width: 100%; height: auto; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #1f2328; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
td code { white-space: nowrap; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  .headline { background: none; }
  th { background: none; }
  h2 { break-after: avoid; } h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }  /* every web link already shows its address */
}
"""


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    colour: str
    note: str = ""  # printed after the value (a status, a unit)


class _Escaper:
    """Redact, then escape: the one way any value enters the document."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, value: object) -> str:
        return html.escape(self.redactor.text(str(value)), quote=True)


def _status(status: Status, label: str = "") -> str:
    shown = label or status.value
    return f'<span class="status" style="color:{COLOUR[status]}">{shown}</span>'


def _code(f: Finding, e: _Escaper) -> str:
    return f'<code class="code">{e(f.code)}</code> ' if f.code else ""


def _link(url: str, e: _Escaper) -> str:
    text = e(url)
    # Only web links become anchors: a javascript: or data: URL from a plugin stays text.
    if url.startswith(("https://", "http://")):
        return f'<a href="{text}">{text}</a>'
    return text


def bar_chart(title: str, bars: Sequence[Bar], unit: str, e: _Escaper) -> str:
    """A horizontal bar chart as inline SVG, its values written beside the bars so the chart
    reads without colour and without hovering."""
    # The label column fits the longest label (about 7 px a character at 12 px), within reason.
    longest = max((len(b.label) for b in bars), default=0)
    label_w = min(340, max(120, 16 + 7 * longest))
    bar_w, row_h, top = 470, 24, 8
    width = label_w + bar_w + 140
    height = top * 2 + row_h * len(bars)
    biggest = max((b.value for b in bars), default=0.0) or 1.0
    rows = []
    for i, b in enumerate(bars):
        y = top + i * row_h
        length = max(1.0, bar_w * b.value / biggest) if b.value > 0 else 0.0
        note = f" {e(b.note)}" if b.note else ""
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{e(b.label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" '
            f'fill="{b.colour}" rx="2"/>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 16}">{_number(b.value)} {e(unit)}'
            f"{note}</text>"
        )
    return (
        f'<figure><figcaption>{e(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" '
        f'role="img" aria-label="{e(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{e(title)}</title>'
        f'<line x1="{label_w}" y1="0" x2="{label_w}" y2="{height}" stroke="#d1d9e0"/>'
        + "".join(rows)
        + "</svg></figure>"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:,.1f}"


def _numeric(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def propagation_bars(check: CheckResult) -> list[Bar]:
    return [
        Bar(step.step, step.latency_s * 1000, COLOUR[step.status], step.status.value)
        for step in check.timeline
        if step.latency_s is not None
    ]


def latency_bars(check: CheckResult) -> list[Bar]:
    found = []
    for key, label in _LATENCY_METRICS:
        value = _numeric(check.metrics, key)
        if value is not None:
            found.append(Bar(label, value, "#0969da"))
    return found


def mismatch_bars(check: CheckResult) -> list[Bar]:
    drift = check.metrics.get("drift")
    bars = [
        Bar(label, value, "#6e7781")
        for key, label in _RECONCILE_METRICS
        if (value := _numeric(check.metrics, key)) is not None
    ]
    if isinstance(drift, Mapping):
        bars += [
            Bar(str(kind).replace("_", " "), float(count), COLOUR[Status.FAIL])
            for kind, count in drift.items()
            if isinstance(count, int | float) and not isinstance(count, bool)
        ]
    elif bars:
        bars.append(Bar("mismatches", 0.0, COLOUR[Status.PASS]))
    return bars


# Which charts the report draws, in order: the bars of each check, its caption and its unit.
_CHARTS: tuple[tuple[Callable[[CheckResult], list[Bar]], str, str], ...] = (
    (propagation_bars, "propagation latency per step", "ms"),
    (latency_bars, "delivery latency (percentiles)", "ms"),
    (mismatch_bars, "directory vs app (mismatches)", ""),
)


def _charts(report: Report, e: _Escaper) -> str:
    figures = [
        bar_chart(f"{check.id}: {caption}", bars, unit, e)
        for bars_of, caption, unit in _CHARTS
        for check in report.checks
        if (bars := bars_of(check))
    ]
    if not figures:
        return ""
    return '<section id="charts"><h2>Timelines</h2>' + "".join(figures) + "</section>"


def _summary_table(report: Report, e: _Escaper) -> str:
    rows = []
    for c in report.checks:
        note = " (interrupted)" if c.interrupted else ""
        rows.append(
            f'<tr id="row-{e(c.id)}"><td><a href="#check-{e(c.id)}"><code>{e(c.id)}</code></a>'
            f'</td><td class="num">{c.checklist_item or ""}</td><td>{_status(c.status)}</td>'
            f'<td class="num">{c.duration_s:.1f}s</td><td>{e(c.headline + note)}</td></tr>'
        )
    return (
        '<table id="checks"><thead><tr><th>Check</th><th>#</th><th>Status</th><th>Time</th>'
        "<th>Result</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _finding(f: Finding, e: _Escaper) -> str:
    details = "".join(
        f"<dt>{e(label)}</dt><dd>{_link(value, e) if label == 'docs' else e(value)}</dd>"
        for label, value in f.details()
    )
    return (
        f'<div class="finding" style="border-left-color:{COLOUR[f.effective_status]}">'
        f"{_status(f.effective_status, f.label)} {_code(f, e)}<strong>{e(f.title)}</strong> "
        f'<span class="muted">severity {e(f.severity.value)}</span>'
        + (f"<dl>{details}</dl>" if details else "")
        + "</div>"
    )


def _metric_text(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _check_heading(check: CheckResult, e: _Escaper, *, link: bool = False) -> str:
    name = f"<code>{e(check.id)}</code>"
    if link:
        name = f'<a href="#check-{e(check.id)}">{name}</a>'
    return f"<h3>{_status(check.status)} {name} · {e(check.title)}</h3>"


def _attention(report: Report, e: _Escaper) -> str:
    """What a reader must act on, first: every finding that is not a plain PASS."""
    parts = []
    for check in report.checks:
        # In full under "Needs attention"; passing ones are listed by title under their check
        # (in full with --verbose), so the file stays a record of everything observed.
        findings = [f for f in check.findings if f.status in ATTENTION]
        if findings:
            parts.append(_check_heading(check, e, link=True))
            parts += [_finding(f, e) for f in findings]
    body = "".join(parts) or "<p>Nothing needs attention: every finding passed.</p>"
    return f'<section id="attention"><h2>Needs attention</h2>{body}</section>'


def _unused_waivers(report: Report, e: _Escaper) -> str:
    lines = report.unused_waiver_lines()
    if not lines:
        return ""
    items = "".join(f"<li>{_status(Status.WARN)} {e(line)}</li>" for line in lines)
    return f'<section id="unused-waivers"><h2>Unused waivers</h2><ul>{items}</ul></section>'


def _check_section(check: CheckResult, verbose: bool, e: _Escaper) -> str:
    passed = [f for f in check.findings if f.status not in ATTENTION]
    parts = [
        f'<section class="check" id="check-{e(check.id)}">{_check_heading(check, e)}',
        f'<p class="muted">checklist item {check.checklist_item or "-"} · '
        f"{check.duration_s:.1f}s"
        + (" · changes data" if check.mutates else "")
        + (" · interrupted before it finished" if check.interrupted else "")
        + (f" · {_link(check.docs_url, e)}" if check.docs_url else "")
        + "</p>",
    ]
    if verbose:
        parts += [_finding(f, e) for f in passed]
    elif passed:
        items = "".join(f"<li>{_status(f.status)} {_code(f, e)}{e(f.title)}</li>" for f in passed)
        parts.append(f'<ul class="passed">{items}</ul>')
    if check.timeline:
        parts.append(_timeline_table(check, e))
    if check.metrics:
        cells = "".join(
            f"<tr><th>{e(k)}</th><td>{e(_metric_text(v))}</td></tr>"
            for k, v in check.metrics.items()
        )
        parts.append(f'<table class="metrics"><tbody>{cells}</tbody></table>')
    return "".join(parts) + "</section>"


def _timeline_table(check: CheckResult, e: _Escaper) -> str:
    rows = "".join(
        f"<tr><td>{e(s.step)}</td><td>{e(s.expected)}</td><td>{e(s.observed)}</td>"
        f"<td>{_status(s.status)}</td><td class='num'>"
        + ("" if s.latency_s is None else f"{s.latency_s:.2f}s")
        + "</td></tr>"
        for s in check.timeline
    )
    return (
        '<table class="timeline"><thead><tr><th>Step</th><th>Expected</th><th>Observed</th>'
        "<th>Status</th><th>Latency</th></tr></thead><tbody>" + rows + "</tbody></table>"
    )


def headline_of(report: Report) -> str:
    """The report model's own headline (coverage included); never computed here."""
    summary = report.summary
    return summary.headline or f"Verdict: {summary.verdict.value}"


def _counts(report: Report) -> str:
    counts = report.summary.counts
    return ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "no checks ran"


def _join(parts: Iterable[str]) -> str:
    return "\n".join(p for p in parts if p)


def render(report: Report, *, redactor: Redactor | None = None, verbose: bool = False) -> str:
    r = redactor or NO_SECRETS
    e = _Escaper(r)
    verdict = report.summary.verdict.value
    verdict_class = _VERDICT_CLASS.get(verdict, "other")
    meta = (
        f"target <code>{e(report.target)}</code> · run <code>{e(report.run_id)}</code> · "
        f"{e(report.started_at)} · {report.duration_s:.1f}s · scim-readiness "
        f"{e(report.tool_version)}"
        + (" · read-only" if report.read_only else "")
        + (" · <strong>interrupted</strong>" if report.interrupted else "")
    )
    body = _join(
        [
            "<header><h1>SCIM readiness report</h1>",
            f'<p class="meta">{meta}</p>',
            f'<p class="headline {verdict_class}" id="headline" data-verdict="{e(verdict)}">'
            f"{e(headline_of(report))}</p>",
            f'<p class="muted" id="counts">{e(_counts(report))}</p></header>',
            "<main>",
            '<section id="summary"><h2>Checks</h2>' + _summary_table(report, e) + "</section>",
            _attention(report, e),
            _unused_waivers(report, e),
            _charts(report, e),
            '<section id="findings"><h2>Every check</h2>'
            + "".join(_check_section(c, verbose, e) for c in report.checks)
            + "</section>",
            "</main>",
        ]
    )
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing may load from anywhere: the file is opened from disk or an artifact store.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>SCIM readiness: {e(verdict)} · {e(report.target)}</title>"
        f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    return r.text(document)
