"""GitHub Actions workflow commands: one ``::error`` per FAIL or ERROR finding, one
``::warning`` per WARN finding and per unused waiver, a ``::notice`` per waived finding and one
with the headline, then the plain report. Each title starts with the finding's code
(``SIG003 webhook-signature [FAIL] …``).

The runner turns each command line into an annotation on the run's summary page; any other
CI shell just prints them, and the plain report after them keeps the log readable there.
Values are escaped as the workflow-command syntax requires (``%``, CR and LF everywhere;
``:`` and ``,`` in properties too), after redaction, so no secret reaches an annotation.
"""

from __future__ import annotations

from scim_readiness.model import CheckResult, Finding, Report, Status
from scim_readiness.redact import NO_SECRETS, Redactor
from scim_readiness.reports import plain

COMMAND = {Status.FAIL: "error", Status.ERROR: "error", Status.WARN: "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _message(f: Finding) -> str:
    return "\n".join(f"{label}: {value}" for label, value in f.details()) or f.title


def annotation(check: CheckResult, f: Finding, r: Redactor) -> str:
    code = f"{f.code} " if f.code else ""
    title = escape_property(r.text(f"{code}{check.id} [{f.label}] {f.title}"))
    command = "notice" if f.waived else COMMAND[f.status]
    return f"::{command} title={title}::{escape_data(r.text(_message(f)))}"


def finding_annotations(report: Report, r: Redactor) -> list[str]:
    lines = [
        annotation(check, f, r)
        for check in report.checks
        for f in check.findings
        if f.status in COMMAND
    ]
    for line in report.unused_waiver_lines():
        title = escape_property(r.text("scim-readiness unused waiver"))
        lines.append(f"::warning title={title}::{escape_data(r.text(line))}")
    return lines


def render(report: Report, *, redactor: Redactor | None = None, verbose: bool = False) -> str:
    r = redactor or NO_SECRETS
    summary = report.summary
    headline = summary.headline or f"Verdict: {summary.verdict.value}"
    lines = finding_annotations(report, r)
    lines.append(f"::notice title=scim-readiness::{escape_data(r.text(headline))}")
    return "\n".join(lines) + "\n" + plain.render(report, redactor=r, verbose=verbose)
