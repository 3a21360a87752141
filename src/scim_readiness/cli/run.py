"""The whole ``run`` path as a function, so ``demo`` reuses exactly what users run.

``execute`` runs the suite, prints the report on stdout in the chosen format, writes the
``--json``/``--junit``/``--markdown`` files (also after Ctrl-C, with the interrupted checks
marked) and returns the exit code. It raises only :class:`ReadinessError` (usage problems
found before the run starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from scim_readiness.config import Config
from scim_readiness.engine.runner import Progress, RunOptions, ScalekitFactory, run_suite
from scim_readiness.errors import ExitCode, UsageError, did_you_mean
from scim_readiness.model import Status
from scim_readiness.plugin.contract import ReadOnly
from scim_readiness.redact import Redactor
from scim_readiness.reports import Format

if TYPE_CHECKING:
    from scim_readiness.clients.http import CaBundles
    from scim_readiness.clients.probe import Probe
    from scim_readiness.engine.registry import CheckSpec
    from scim_readiness.model import CheckResult, Report

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
# Secrets that may reach the tool through the environment even when no config names them.
SECRET_ENV_VARS = (
    "SCALEKIT_CLIENT_SECRET",
    "SCALEKIT_WEBHOOK_SECRET",
)


# What stdout can show; JUnit, Markdown and HTML go to files (--junit/--markdown/--html).
STDOUT_FORMATS = (Format.RICH, Format.PLAIN, Format.JSON, Format.GITHUB)
STDOUT_FORMAT_NAMES = "rich, plain, json or github"


@dataclass(frozen=True)
class OutputOptions:
    format: Format = Format.RICH  # stdout: one of STDOUT_FORMATS
    json_path: str | None = None
    junit_path: str | None = None
    markdown_path: str | None = None  # "-": append to $GITHUB_STEP_SUMMARY
    html_path: str | None = None  # a self-contained HTML file
    color: bool | None = None  # None: when stdout is a terminal and NO_COLOR is unset
    width: int | None = None  # None: the terminal's width (100 when not a terminal)


def env_secrets() -> list[str]:
    return [v for name in SECRET_ENV_VARS if (v := os.environ.get(name))]


def redactor_for(config: Config | None) -> Redactor:
    secrets = env_secrets()
    if config is not None:
        secrets += config.secret_values()
    return Redactor(secrets)


def check_ca_bundle(paths: CaBundles) -> None:
    """An unreadable or non-PEM ``--ca-bundle`` is a usage error before anything runs."""
    from scim_readiness.clients.http import check_ca_bundles

    check_ca_bundles(paths)


def _check_output_path(flag: str, path: str | None) -> None:
    if path is None or path == "-":
        return
    parent = Path(path).resolve().parent
    if Path(path).is_dir():
        raise UsageError(f"{flag} {path}: is a directory", hint="pass a file name")
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{flag} {path}: the directory {parent} is not writable")


def check_outputs(outputs: OutputOptions) -> None:
    if "-" in (outputs.json_path, outputs.junit_path, outputs.html_path):
        raise UsageError(
            "--json, --junit and --html take a file path ('-' is not supported)",
            hint="for JSON on stdout use --format json",
        )
    named = [
        (flag, path)
        for flag, path in (
            ("--json", outputs.json_path),
            ("--junit", outputs.junit_path),
            ("--markdown", outputs.markdown_path),
            ("--html", outputs.html_path),
        )
        if path is not None and path != "-"
    ]
    for i, (flag, path) in enumerate(named):
        for other_flag, other in named[i + 1 :]:
            if Path(path).resolve() == Path(other).resolve():
                raise UsageError(
                    f"conflicting flags: {flag} and {other_flag} both write {path}",
                    hint="give each report format its own file",
                )
    _check_output_path("--json", outputs.json_path)
    _check_output_path("--junit", outputs.junit_path)
    _check_output_path("--markdown", outputs.markdown_path)
    _check_output_path("--html", outputs.html_path)
    if outputs.format not in STDOUT_FORMATS:
        raise UsageError(f"--format {outputs.format}: use {STDOUT_FORMAT_NAMES} for stdout")


# `--accept-skip mutating`: every check that cannot run without changing data.
ACCEPT_MUTATING = "mutating"


def check_accept_skip(options: RunOptions, specs: Sequence[CheckSpec]) -> None:
    """An ``--accept-skip`` that names no check is a usage error before anything runs."""
    known = [s.info.id for s in specs]
    for token in options.accept_skip:
        if token != ACCEPT_MUTATING and token not in known:
            raise UsageError(
                f"--accept-skip {token}: no such check"
                f"{did_you_mean(token, [*known, ACCEPT_MUTATING])}",
                hint="name a check id (`scim-readiness checks` lists them) or 'mutating' "
                "(every check that cannot run without changing data)",
            )


def _named(options: RunOptions, spec: CheckSpec) -> str:
    """How the user named this check as acceptable to leave unevaluated ("" if not)."""
    info = spec.info
    if info.id in options.accept_skip:
        return f"--accept-skip {info.id}"
    if ACCEPT_MUTATING in options.accept_skip and info.read_only is ReadOnly.NONE:
        return f"--accept-skip {ACCEPT_MUTATING}"
    if info.id in options.skip:
        return f"--skip {info.id}"
    if options.only and info.id not in options.only:
        return "not selected with --only"
    return ""


def accepted_items(
    options: RunOptions, specs: Sequence[CheckSpec], report: Report
) -> dict[int, str]:
    """The checklist items the user accepted as not evaluated, each with how it was named.

    An item is accepted only when every one of its checks that did not evaluate it (SKIP,
    ERROR, or not selected) was named by ``--accept-skip ID|mutating``, ``--skip ID`` or left
    out of ``--only``: one unnamed SKIP on the item keeps it unaccepted.
    """
    results = {c.id: c for c in report.checks}
    observed = (Status.PASS, Status.WARN, Status.FAIL)
    accepted: dict[int, str] = {}
    for item in {s.info.checklist_item for s in specs} - {0}:
        named: list[str] = []
        for spec in (s for s in specs if s.info.checklist_item == item):
            result = results.get(spec.info.id)
            if result is not None and result.status in observed:
                continue
            how = _named(options, spec)
            if not how:
                break
            named.append(how)
        else:
            if named:
                accepted[item] = ", ".join(dict.fromkeys(named))
    return accepted


def _write_atomic(path: str, text: str) -> None:
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.resolve().parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_files(report: Report, outputs: OutputOptions, redactor: Redactor, err: TextIO) -> bool:
    """Write the requested report files; a failure is reported on ``err``, never raised."""
    from scim_readiness.reports import renderer

    ok = True
    for fmt, path in (
        (Format.JSON, outputs.json_path),
        (Format.JUNIT, outputs.junit_path),
        (Format.MARKDOWN, outputs.markdown_path),
        (Format.HTML, outputs.html_path),
    ):
        if path is None:
            continue
        text = renderer(fmt)(report, redactor=redactor)
        try:
            if path == "-":
                summary = os.environ.get(STEP_SUMMARY_ENV)
                if not summary:
                    print(
                        f"note: --markdown -: {STEP_SUMMARY_ENV} is not set, "
                        "so no Markdown summary was written",
                        file=err,
                    )
                    continue
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(text)
            else:
                _write_atomic(path, text)
        except OSError as exc:
            ok = False
            print(f"error: could not write {fmt.value} report to {path}: {exc.strerror}", file=err)
    return ok


def render_stdout(report: Report, outputs: OutputOptions, redactor: Redactor, verbose: bool) -> str:
    if outputs.format is Format.RICH:
        from scim_readiness.reports import console

        color = outputs.color
        if color is None:
            color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        width = outputs.width
        if width is None:
            width = _terminal_width() if sys.stdout.isatty() else 100
        return console.render(report, redactor=redactor, verbose=verbose, width=width, color=color)
    from scim_readiness.reports import renderer

    return renderer(outputs.format)(report, redactor=redactor, verbose=verbose)


def _terminal_width() -> int:
    import shutil

    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 160))


class _LiveProgress:
    """One status line on stderr while checks run (a TTY only)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console

        self.total = total
        self.done = 0
        self.console = Console(stderr=True, highlight=False)
        self.status = self.console.status(self._text())

    def _text(self) -> str:
        return f"running checks: {self.done}/{self.total} done"

    def __call__(self, check_id: str, result: CheckResult | None) -> None:
        self.done += 1
        if result is not None:
            from rich.text import Text

            from scim_readiness.reports.console import STYLE

            line = Text(f"{result.status.value:<5}", style=STYLE[result.status])
            line.append(f" {check_id} ({result.duration_s:.1f}s)")
            self.console.print(line)
        self.status.update(self._text())


def _verbose_progress(err: TextIO) -> Progress:
    def report(check_id: str, result: CheckResult | None) -> None:
        if result is not None:
            print(f"{result.status.value:<5} {check_id} ({result.duration_s:.1f}s)", file=err)

    return report


class _LateTermination:
    """Notes a SIGTERM that arrives after the suite has ended but before the report files
    are written (CI signals again when a job is slow to stop): the files are still written,
    then the run exits 130, instead of dying by the signal's default action with no report."""

    def __init__(self) -> None:
        self.received = False
        self._previous: Any = None
        self._installed = False

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    def install(self) -> None:
        with contextlib.suppress(ValueError, OSError):  # ValueError: not the main thread
            self._previous = signal.signal(signal.SIGTERM, self._note)
            self._installed = True

    def restore(self) -> None:
        if self._installed:
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


def _only_interrupts(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(e) for e in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)


def _quiet_about_interrupts(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if not _only_interrupts(context.get("exception")):
        loop.default_exception_handler(context)


async def _run_with_signals(
    config: Config,
    options: RunOptions,
    specs: Sequence[CheckSpec] | None,
    scalekit_factory: ScalekitFactory | None,
    probe: Probe | None,
    progress: Progress | None,
    late: _LateTermination,
) -> Report:
    loop = asyncio.get_running_loop()
    # A second Ctrl-C during cleanup stops asyncio.run mid-task, and its shutdown reports each
    # task the interrupt went through as "unhandled", with a traceback, before the message
    # that counts can be printed; those reports are the interrupt itself, not errors.
    loop.set_exception_handler(_quiet_about_interrupts)
    task = asyncio.current_task()
    # SIGTERM (CI cancelling a job) gets the same treatment as Ctrl-C: clean up, write the
    # partial report, exit 130. asyncio.run already handles SIGINT this way.
    installed = False
    if task is not None and sys.platform != "win32":
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            installed = True
    try:
        return await run_suite(
            config,
            options,
            specs=specs,
            scalekit_factory=scalekit_factory,
            probe=probe,
            progress=progress,
        )
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)
            late.install()


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def execute(
    config: Config,
    options: RunOptions,
    outputs: OutputOptions,
    *,
    specs: Sequence[CheckSpec] | None = None,
    scalekit_factory: ScalekitFactory | None = None,
    probe: Probe | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run, print, write files, return the exit code (see ``errors.ExitCode``)."""
    from scim_readiness.engine.registry import discover, select

    out = out or sys.stdout
    err = err or sys.stderr
    check_ca_bundle(options.ca_bundle)
    check_outputs(outputs)
    all_specs = list(specs) if specs is not None else discover()
    total = len(select(all_specs, options.only, options.skip))  # usage errors before the run
    check_accept_skip(options, all_specs)
    redactor = redactor_for(config)

    progress: Progress | None = None
    live: _LiveProgress | None = None
    if options.progress and err.isatty():
        live = _LiveProgress(total)
        progress = live
    elif options.verbose:
        progress = _verbose_progress(err)

    late = _LateTermination()
    try:
        coro = _run_with_signals(
            config, options, all_specs, scalekit_factory, probe, progress, late
        )
        try:
            if live is not None:
                with live.status:
                    report = asyncio.run(coro)
            else:
                report = asyncio.run(coro)
        except KeyboardInterrupt:
            # A second Ctrl-C during cleanup makes asyncio.run give up on its loop mid-task:
            # no report exists. The tasks left behind would be reported, as tracebacks, by
            # asyncio's logger when garbage-collected; this message is the one that counts.
            logging.getLogger("asyncio").disabled = True
            print(
                "interrupted again during cleanup: stopped without a report; "
                "`scim-readiness cleanup` lists and removes any test data left behind",
                file=err,
            )
            return int(ExitCode.INTERRUPTED)

        if accepted := accepted_items(options, all_specs, report):
            report = replace(report, accepted=accepted)
        from scim_readiness.engine.waivers import waive

        report = waive(report, config)
        files_ok = write_files(report, outputs, redactor, err)
        try:
            out.write(render_stdout(report, outputs, redactor, options.verbose))
            out.flush()
        except BrokenPipeError:
            # `run | head`: the reader left; the verdict still belongs in the exit code.
            _silence_stdout()
        if report.interrupted:
            print(
                "interrupted: cleanup ran and the partial report was written; "
                "`scim-readiness cleanup` lists any test data left behind",
                file=err,
            )
        if late.received:
            print(
                "terminated after the checks had finished; the report was still written",
                file=err,
            )
            return int(ExitCode.INTERRUPTED)
        code = report.exit_code(options.fail_on)
        if not files_ok and code == ExitCode.READY:
            return int(ExitCode.INCOMPLETE)  # CI asked for a file it will not find
        return int(code)
    finally:
        late.restore()
