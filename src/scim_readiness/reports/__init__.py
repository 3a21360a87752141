"""Renderers: each format is one module with ``render(report, ...) -> str``.

Renderers are pure functions of a :class:`~scim_readiness.model.Report`; they add no facts
and pass every string through the redactor. ``load`` reads a saved JSON report back.
"""

from __future__ import annotations

import enum
from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from scim_readiness.model import Status

if TYPE_CHECKING:
    from scim_readiness.model import Report
    from scim_readiness.redact import Redactor


#: The statuses of the findings every format shows in full by default (PASS findings only
#: with --verbose, or listed by title): what a reader must see to act on the report.
ATTENTION = (
    Status.FAIL,
    Status.ERROR,
    Status.WARN,
    Status.WAIVED,
    Status.SKIP,
    Status.ATTESTED,
)


class Format(enum.StrEnum):
    RICH = "rich"
    PLAIN = "plain"
    JSON = "json"
    MARKDOWN = "markdown"
    JUNIT = "junit"
    HTML = "html"
    GITHUB = "github"


_MODULES = {
    Format.RICH: "console",
    Format.PLAIN: "plain",
    Format.JSON: "json_report",
    Format.MARKDOWN: "markdown",
    Format.JUNIT: "junit",
    Format.HTML: "html",
    Format.GITHUB: "github",
}


class Renderer(Protocol):
    def __call__(
        self, report: Report, *, redactor: Redactor | None = None, verbose: bool = False
    ) -> str: ...


def renderer(fmt: Format) -> Renderer:
    """The ``render`` function of a format (imported on demand: Rich is not free)."""
    module = import_module(f"scim_readiness.reports.{_MODULES[fmt]}")
    render: Renderer = module.render
    return render
