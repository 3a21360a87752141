"""The ``scim-readiness`` command line.

Reports go to stdout, diagnostics to stderr. Errors are raised anywhere as
:class:`~scim_readiness.errors.ReadinessError` and caught once, in :func:`main`, where they
become one redacted message and an exit code (a traceback only with ``--debug``).
Command bodies import what they need, so ``--help`` and ``checks`` stay fast and never load
the Scalekit SDK or grpc.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from scim_readiness import __version__
from scim_readiness.errors import ExitCode, ReadinessError, UsageError
from scim_readiness.model import FailOn
from scim_readiness.reports import Format

if TYPE_CHECKING:
    from rich.console import Console

    from scim_readiness.config import Config
    from scim_readiness.engine.registry import CheckSpec
    from scim_readiness.plugin.contract import CheckInfo

DEBUG_ENV = "SCIM_READINESS_DEBUG"
# Set by the shell completion scripts (`scim-readiness completion SHELL`) when they ask for
# candidates; click's protocol, as Typer implements it.
COMPLETE_ENV = "_SCIM_READINESS_COMPLETE"
PROG_NAME = "scim-readiness"
_state = {"debug": False}  # set by --debug; read at the edge in main()

app = typer.Typer(
    name="scim-readiness",
    help="Check, with evidence, whether an app's Scalekit SCIM provisioning is production-ready.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = typer.Typer(
    help="Validate a config file, or write a starter one.", no_args_is_help=True
)
report_app = typer.Typer(help="Re-render or compare saved JSON reports.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(report_app, name="report")


def _version(value: bool) -> None:
    if value:
        print(f"scim-readiness {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show a (redacted) traceback on errors.")
    ] = False,
) -> None:
    if debug:
        _state["debug"] = True


ConfigOpt = Annotated[
    Path,
    typer.Option(
        "-c",
        "--config",
        envvar="SCIM_READINESS_CONFIG",
        help="Config file (YAML).",
        show_default=True,
    ),
]


# Options shared by `run` and `demo`, declared once so both commands stay alike.
OnlyOpt = Annotated[
    list[str] | None, typer.Option("--only", metavar="ID", help="Run only this check.")
]
SkipOpt = Annotated[
    list[str] | None, typer.Option("--skip", metavar="ID", help="Do not run this check.")
]
JsonOpt = Annotated[
    str | None, typer.Option("--json", metavar="PATH", help="Write the JSON report here.")
]
JunitOpt = Annotated[
    str | None, typer.Option("--junit", metavar="PATH", help="Write a JUnit XML report here.")
]
MarkdownOpt = Annotated[
    str | None,
    typer.Option(
        "--markdown",
        metavar="PATH",
        help="Write a Markdown report here; '-' appends to $GITHUB_STEP_SUMMARY.",
    ),
]
HtmlOpt = Annotated[
    str | None,
    typer.Option("--html", metavar="PATH", help="Write a self-contained HTML report here."),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format", help="stdout format: rich, plain, json, or github (annotations + plain)."
    ),
]
# stdout formats; the other formats are files (--junit, --markdown, --html).
_STDOUT = (Format.RICH, Format.PLAIN, Format.JSON, Format.GITHUB)
_STDOUT_NAMES = "rich, plain, json or github"


def _stdout_format(fmt: str) -> Format:
    try:
        chosen = Format(fmt)
    except ValueError:
        raise UsageError(f"--format {fmt}: use {_STDOUT_NAMES}") from None
    if chosen not in _STDOUT:
        raise UsageError(
            f"--format {fmt}: use {_STDOUT_NAMES}",
            hint="--junit PATH, --markdown PATH and --html PATH write those formats to files",
        )
    return chosen


VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="Show passing findings and progress.")
]
AcceptSkipOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--accept-skip",
        metavar="ID|mutating",
        help="Accept this check's checklist item as not evaluated, so its SKIP does not fail "
        "the exit code (repeatable); 'mutating': every check that cannot run without "
        "changing data.",
    ),
]
ReadOnlyOpt = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Change nothing: checks that must change data are SKIP, webhook-signature runs "
        "its read-only mode.",
    ),
]
# Every command that makes TLS connections trusts the same way: the system store plus each
# --ca-bundle, all in one store (no need to concatenate files).
CaBundleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ca-bundle",
        metavar="PATH",
        help="Also trust the CAs in this PEM file for HTTPS and gRPC (repeatable).",
    ),
]


def _load(path: Path) -> Config:
    from scim_readiness.engine.config_file import load_config

    return load_config(path)


@app.command()
def run(
    config: ConfigOpt = Path("readiness.yaml"),
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    json_path: JsonOpt = None,
    junit_path: JunitOpt = None,
    markdown_path: MarkdownOpt = None,
    html_path: HtmlOpt = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on any FAIL, or on any WARN too.")
    ] = FailOn.FAIL,
    read_only: ReadOnlyOpt = False,
    accept_skip: AcceptSkipOpt = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Time budget for the run."),
    ] = None,
    ca_bundle: CaBundleOpt = None,
    fmt: FormatOpt = "rich",
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Allow checks that create test users when expect: production."
        ),
    ] = False,
    verbose: VerboseOpt = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> int:
    """Run the checks, print the report, write report files, exit with the verdict."""
    from scim_readiness.cli.run import OutputOptions, execute
    from scim_readiness.engine.runner import RunOptions

    if debug:
        _state["debug"] = True
    out_format = _stdout_format(fmt)
    options = RunOptions(
        only=tuple(only or ()),
        skip=tuple(skip or ()),
        read_only=read_only,
        timeout_s=timeout,
        ca_bundle=tuple(ca_bundle or ()),
        fail_on=fail_on,
        accept_skip=tuple(accept_skip or ()),
        yes=yes,
        progress=True,  # shown only when stderr is a terminal
        verbose=verbose,
        debug=_debug(()),
    )
    outputs = OutputOptions(
        format=out_format,
        json_path=json_path,
        junit_path=junit_path,
        markdown_path=markdown_path,
        html_path=html_path,
    )
    from scim_readiness.cli.run import check_ca_bundle, check_outputs

    # Flags first: a bad flag should not wait for a config to be fixed.
    check_ca_bundle(ca_bundle)
    check_outputs(outputs)
    loaded = _load(config)
    from scim_readiness.cli.cleanup import earlier_leftovers_note
    from scim_readiness.cli.consent import confirm_mutation

    if note := earlier_leftovers_note(loaded):
        print(note, file=sys.stderr)
    # expect: production: ask on a terminal before any check changes data.
    return execute(loaded, confirm_mutation(loaded, options), outputs)


@app.command("checks")
def list_checks(
    check_id: Annotated[
        str | None,
        typer.Argument(help="Show one check in full: what it needs, read-only mode, options."),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="rich, plain or json.")] = "rich",
) -> int:
    """List the checks: id, checklist item, what each needs from the config, whether it
    changes data, what it does in a read-only run and which options it takes."""
    from scim_readiness.engine.registry import discover

    if fmt not in ("rich", "plain", "json"):
        raise UsageError(f"--format {fmt}: use rich, plain or json")
    specs = discover()
    if check_id is not None:
        ids = [s.info.id for s in specs]
        if check_id not in ids:
            from scim_readiness.errors import did_you_mean

            raise UsageError(
                f"no check {check_id!r}{did_you_mean(check_id, ids)}",
                hint="`scim-readiness checks` lists them",
            )
        specs = [s for s in specs if s.info.id == check_id]
    if fmt == "json":
        import json

        print(json.dumps([_check_row(s) for s in specs], indent=2))
        return 0
    if fmt == "plain":
        for s in specs:
            needs = ",".join(s.info.needs) or "-"
            changes = "changes data" if s.info.mutates else "read-only"
            options = ",".join(_option_names(s.info)) or "-"
            print(
                f"{s.info.id}\t{s.info.checklist_item}\t{needs}\t{changes}\t"
                f"{_READ_ONLY_RUN[s.info.read_only or 'full']}\t{options}\t{s.info.title}"
            )
        return 0
    from rich.console import Console
    from rich.table import Table

    # Not a terminal (a pipe, CI logs): a fixed, readable width instead of Rich's 80.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if check_id is not None:
        _print_check(console, specs[0])
        return 0
    table = Table(title=f"{len(specs)} checks", title_justify="left")
    for column in ("Check", "#", "Needs", "Changes data", "Read-only run", "Options", "Title"):
        table.add_column(column)
    for s in specs:
        table.add_row(
            s.info.id,
            str(s.info.checklist_item or ""),
            ", ".join(s.info.needs) or "-",
            "yes" if s.info.mutates else "no",
            _READ_ONLY_RUN[s.info.read_only or "full"],
            str(len(names)) if (names := _option_names(s.info)) else "-",
            s.info.title + ("" if s.origin.startswith("scim_readiness.") else f" [{s.origin}]"),
        )
    console.print(table)
    console.print("`scim-readiness checks ID` shows one check's options.")
    return 0


# What a check does when the run must not change data (CheckInfo.read_only), in the words the
# listing shows: the runner decides, so this is what a user of --read-only can expect.
_READ_ONLY_RUN = {"full": "runs", "reduced": "reduced mode", "none": "skipped"}


def _option_names(info: CheckInfo) -> tuple[str, ...]:
    return info.options.names() if info.options is not None else ()


def _option_rows(info: CheckInfo) -> list[dict[str, str]]:
    from scim_readiness.plugin.options import shown_default, type_text

    model = info.options
    return [
        {
            "name": option.name,
            "value": type_text(model, option),
            "default": shown_default(option),
            "description": option.description,
        }
        for option in (model.specs() if model is not None else ())
    ]


def _check_row(spec: CheckSpec) -> dict[str, object]:
    info = spec.info
    return {
        "id": info.id,
        "title": info.title,
        "checklist_item": info.checklist_item,
        "needs": list(info.needs),
        "mutates": info.mutates,
        "read_only": str(info.read_only),
        "docs_url": info.docs_url,
        "origin": spec.origin,
        "options": _option_rows(info),
    }


def _print_check(console: Console, spec: CheckSpec) -> None:
    from rich.table import Table

    console.print(f"[bold]{spec.info.id}[/bold]: {spec.info.title}")
    if spec.info.description:
        console.print(spec.info.description)
    facts = (
        ("checklist item", str(spec.info.checklist_item or "extra")),
        ("needs", ", ".join(spec.info.needs) or "nothing"),
        ("changes data", "yes" if spec.info.mutates else "no"),
        ("read-only run", _READ_ONLY_RUN[spec.info.read_only or "full"]),
        ("docs", spec.info.docs_url or "-"),
        ("from", spec.origin),
    )
    for label, text in facts:
        console.print(f"  {label}: {text}")
    options = _option_rows(spec.info)
    if not options:
        console.print("  options: none")
        return
    table = Table(title=f"checks.{spec.info.id}.options", title_justify="left")
    for column in ("Option", "Value", "Default", "What it sets"):
        table.add_column(column)
    for option in options:
        table.add_row(option["name"], option["value"], option["default"], option["description"])
    console.print(table)


@config_app.command("validate")
def config_validate(config: ConfigOpt = Path("readiness.yaml")) -> int:
    """Validate a config file without touching the network."""
    from scim_readiness.engine.config_file import readiness_gaps
    from scim_readiness.engine.registry import discover
    from scim_readiness.engine.runner import RunOptions, plan

    loaded = _load(config)
    gaps = readiness_gaps(loaded)
    print(f"{config}: valid" + (", but not ready to run:" if gaps else ""))
    for gap in gaps:
        print(f"  - {gap}")
    from scim_readiness.engine.waivers import expired_notes, today

    for note in expired_notes(loaded, today()):
        print(f"warning: {note}")
    # Which checks would run, and why the others would not, exactly as `run` decides.
    for spec, reason in plan(loaded, RunOptions(), discover()):
        state = "would run" if reason is None else f"would SKIP: {reason}"
        print(f"  {spec.info.id:<18} {state}")
    if loaded.probe is not None:
        from scim_readiness.clients.probe import describe_answers

        print(f"probe ({loaded.probe.kind}):")
        for line in describe_answers(loaded.probe):
            print(f"  {line}")
    return 0


@config_app.command("init")
def config_init(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("readiness.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> int:
    """Write a commented starter config (secrets stay ${ENV_VAR} references), and its JSON
    Schema beside it for editors (a yaml-language-server modeline points at it)."""
    from scim_readiness.engine.config_file import starter_text

    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    schema_path = path.with_name(f"{path.stem}.schema.json")
    modeline = f"# yaml-language-server: $schema={schema_path.name}\n"
    try:
        path.write_text(modeline + starter_text(), encoding="utf-8")
        schema_path.write_text(_schema_text(), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {exc.filename or path}: {exc.strerror}") from None
    print(f"wrote {path} and its schema {schema_path} (for editors)")
    print(f"fill it in, then run `scim-readiness config validate -c {path}`")
    return 0


def _schema_text() -> str:
    import json

    from scim_readiness.engine.codes import catalogue
    from scim_readiness.engine.config_schema import config_schema, option_schemas_of
    from scim_readiness.engine.registry import discover

    specs = discover()
    codes = [entry.code.code for entry in catalogue([s.info for s in specs])]
    schema = config_schema([s.info.id for s in specs], option_schemas_of(specs), codes)
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


@config_app.command("schema")
def config_schema_command() -> int:
    """Print the JSON Schema of readiness.yaml (for editors: yaml-language-server, VS Code,
    JetBrains), generated from the config models and the installed checks."""
    sys.stdout.write(_schema_text())
    return 0


@report_app.command("show")
def report_show(
    file: Annotated[Path, typer.Argument(help="A JSON report written by `run --json`.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="rich, plain, json, markdown, junit, html or github."),
    ] = "rich",
    html_path: HtmlOpt = None,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show passing findings.")
    ] = False,
) -> int:
    """Re-render a saved JSON report (and write it as HTML with --html)."""
    from scim_readiness.cli.run import (
        OutputOptions,
        check_outputs,
        redactor_for,
        render_stdout,
        write_files,
    )
    from scim_readiness.reports import renderer
    from scim_readiness.reports.load import load_report

    try:
        out_format = Format(fmt)
    except ValueError:
        names = ", ".join(f.value for f in Format)
        raise UsageError(f"--format {fmt}: use one of {names}") from None
    files = OutputOptions(html_path=html_path)
    check_outputs(files)
    report = load_report(file)
    redactor = redactor_for(None)
    if not write_files(report, files, redactor, sys.stderr):
        return int(ExitCode.INCOMPLETE)
    if out_format in _STDOUT:
        sys.stdout.write(render_stdout(report, OutputOptions(format=out_format), redactor, verbose))
    else:
        sys.stdout.write(renderer(out_format)(report, redactor=redactor, verbose=verbose))
    return 0


@report_app.command("diff")
def report_diff(
    old: Annotated[Path, typer.Argument(help="The earlier JSON report.")],
    new: Annotated[Path, typer.Argument(help="The later JSON report.")],
    fmt: Annotated[
        str,
        typer.Option("--format", help="text, json, or markdown (for a pull-request comment)."),
    ] = "text",
) -> int:
    """Show what got worse or better between two runs; exit 1 if anything regressed."""
    from scim_readiness.reports.diff import RENDERERS, diff
    from scim_readiness.reports.load import load_report

    render = RENDERERS.get(fmt)
    if render is None:
        raise UsageError(f"--format {fmt}: use {', '.join(RENDERERS)}")
    from scim_readiness.cli.run import redactor_for

    changes = diff(load_report(old), load_report(new))
    # Saved reports were redacted when written; secrets in this environment are masked too.
    sys.stdout.write(redactor_for(None).text(render(changes)))
    return int(ExitCode.NOT_READY) if changes.regressed else 0


@app.command()
def explain(
    code: Annotated[
        str | None, typer.Argument(help="A finding code, e.g. SIG003 (any case).")
    ] = None,
) -> int:
    """What a finding code tests, why it matters, how to fix it (all codes without one)."""
    from scim_readiness.engine.codes import catalogue, describe, find_code, unknown_code_hint
    from scim_readiness.engine.registry import discover

    infos = [spec.info for spec in discover()]
    entries = catalogue(infos)
    if code is None:
        for entry in entries:
            print(f"{entry.code.code}  {entry.owner:<18}  {entry.code.title}")
        return 0
    found = find_code(entries, code)
    if found is None:
        raise UsageError(
            f"unknown finding code {code!r}{unknown_code_hint(entries, code)}",
            hint="`scim-readiness explain` lists every code; docs/codes.md documents them",
        )
    titles = {info.id: info.title for info in infos}
    print("\n".join(describe(found, titles.get(found.owner, ""))))
    return 0


@app.command()
def cleanup(
    config: ConfigOpt = Path("readiness.yaml"),
    ledger: Annotated[
        Path | None, typer.Option("--ledger", help="Ledger file (default: from the config).")
    ] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="Only list what may be left; remove nothing.")
    ] = False,
    run_id: Annotated[
        str | None, typer.Option("--run", metavar="RUN_ID", help="Only this run's test data.")
    ] = None,
    ca_bundle: CaBundleOpt = None,
) -> int:
    """Remove the test users/groups a run left behind (from the ledger), through the channel
    that created each; report what was removed and what could not be."""
    from scim_readiness.cli.cleanup import list_outstanding, run_cleanup_command
    from scim_readiness.cli.run import check_ca_bundle
    from scim_readiness.plugin.ledger import default_ledger_path

    check_ca_bundle(ca_bundle)
    if list_only and ledger is not None:
        return list_outstanding(ledger, sys.stdout)
    loaded = _load(config)
    ledger = ledger or default_ledger_path(loaded)
    if list_only:
        return list_outstanding(ledger, sys.stdout)
    return run_cleanup_command(
        loaded,
        ledger,
        ca_bundle=tuple(ca_bundle or ()),
        run_id=run_id,
        out=sys.stdout,
        err=sys.stderr,
    )


# Commands other modules provide. Each imports its module lazily when wired in.


def _not_available(name: str) -> NoReturn:
    raise UsageError(f"`scim-readiness {name}` is not available in this version yet")


@app.command()
def demo(
    flaw: Annotated[
        list[str] | None,
        typer.Option(
            "--flaw", metavar="NAME", help="Switch on a named flaw (repeatable); see --list."
        ),
    ] = None,
    list_flaws: Annotated[
        bool, typer.Option("--list", help="List the flaws and the check meant to catch each.")
    ] = False,
    only: OnlyOpt = None,
    skip: SkipOpt = None,
    read_only: ReadOnlyOpt = False,
    accept_skip: AcceptSkipOpt = None,
    json_path: JsonOpt = None,
    junit_path: JunitOpt = None,
    markdown_path: MarkdownOpt = None,
    html_path: HtmlOpt = None,
    fmt: FormatOpt = "rich",
    show_config: Annotated[
        bool, typer.Option("--show-config", help="Print the config used (secrets as ${VAR}).")
    ] = False,
    verbose: VerboseOpt = False,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Keep the stack up until Ctrl-C instead of running the suite; print the "
            "config path and env lines for your own tools.",
        ),
    ] = False,
) -> int:
    """Run the whole suite against a local Scalekit emulator and the reference app, offline."""
    from scim_readiness.cli.demo import list_flaws as print_flaws
    from scim_readiness.cli.demo import run_demo, serve_demo
    from scim_readiness.cli.run import OutputOptions, check_outputs
    from scim_readiness.engine.runner import RunOptions

    if serve:
        return serve_demo(tuple(flaw or ()))
    if list_flaws:
        return print_flaws(sys.stdout)
    outputs = OutputOptions(
        format=_stdout_format(fmt),
        json_path=json_path,
        junit_path=junit_path,
        markdown_path=markdown_path,
        html_path=html_path,
    )
    check_outputs(outputs)
    options = RunOptions(
        only=tuple(only or ()),
        skip=tuple(skip or ()),
        read_only=read_only,
        accept_skip=tuple(accept_skip or ()),
        progress=True,
        verbose=verbose,
        yes=True,
    )
    return run_demo(tuple(flaw or ()), options, outputs, show_config=show_config)


@app.command()
def emulate(
    seed: Annotated[
        Path | None,
        typer.Option("--seed", metavar="FILE", help="Seed (YAML); default: the embedded one."),
    ] = None,
    webhook_url: Annotated[
        str | None,
        typer.Option("--webhook-url", metavar="URL", help="Deliver signed events here."),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            metavar="ENV",
            help="NAME of the env var holding the whsec_ secret (default: a fresh one).",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", metavar="N", help="TCP port on 127.0.0.1 (0: any free one).")
    ] = 0,
    ca_bundle: Annotated[
        list[str] | None,
        typer.Option(
            "--ca-bundle",
            metavar="PATH",
            help="Also trust the CAs in this PEM file for the webhook endpoint (repeatable).",
        ),
    ] = None,
    webhook_concurrency: Annotated[
        int,
        typer.Option(
            "--webhook-concurrency",
            metavar="N",
            help="Deliveries in flight per endpoint (1-64; 1 keeps event order).",
        ),
    ] = 1,
    retry_scale: Annotated[
        float,
        typer.Option(
            "--retry-scale",
            metavar="F",
            help="Multiply Scalekit's retry schedule (0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, "
            "10 h); 0.01 for local work.",
        ),
    ] = 1.0,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            metavar="DIR",
            help="Keep the CA, token key and generated secrets here across restarts "
            "(default: a per-user data directory, e.g. ~/.local/share/scim-readiness/emulator).",
        ),
    ] = None,
    sync: Annotated[
        bool,
        typer.Option(
            "--sync",
            help="At start, deliver group_created and user_created for the seeded directory "
            "(Scalekit's initial sync).",
        ),
    ] = False,
) -> int:
    """Run a local Scalekit emulator in the foreground until Ctrl-C.

    Prints the settings your app needs: environment URL, client id and secret, webhook
    secret, SCIM base URL and token, and trust lines (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
    GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, NODE_EXTRA_CA_CERTS, and --ca-bundle for `run`).
    The CA and secrets are kept in --state-dir, so they survive restarts. These secrets are
    the emulator's own and are shown on purpose, so you can configure your local app; they
    open nothing real.
    """
    from scim_readiness.devstack.emulator.serve import serve_forever
    from scim_readiness.devstack.emulator.state_dir import default_state_dir

    secret = None
    if webhook_secret is not None:
        secret = os.environ.get(webhook_secret)
        if not secret:
            raise UsageError(f"--webhook-secret: the env var {webhook_secret} is not set")
    return serve_forever(
        seed,
        webhook_url,
        secret,
        port,
        webhook_ca=tuple(ca_bundle or ()),
        webhook_concurrency=webhook_concurrency,
        retry_scale=retry_scale,
        state_dir=state_dir or default_state_dir(),
        sync=sync,
    )


events_app = typer.Typer(help="Send realistic signed events to an endpoint.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("send")
def events_send(
    event_type: Annotated[
        str, typer.Argument(metavar="TYPE", help="user_created, user_deleted, group_updated, ...")
    ],
    to: Annotated[str, typer.Option("--to", metavar="URL", help="The webhook endpoint.")],
    secret: Annotated[
        str,
        typer.Option(
            "--secret", metavar="ENV", help="NAME of the env var holding the whsec_ secret."
        ),
    ],
    mutate: Annotated[
        str | None,
        typer.Option(
            "--mutate",
            metavar="HOW",
            help="Break the delivery: unsigned, wrong-secret, tampered, stale, future, "
            "malformed, svix-only, webhook-only, rotated, reformatted.",
        ),
    ] = None,
    organization_id: Annotated[
        str, typer.Option("--org", metavar="ORG_ID", help="organization_id in the event.")
    ] = "org_60219377000000001",
    environment_id: Annotated[
        str, typer.Option("--env", metavar="ENV_ID", help="environment_id in the event.")
    ] = "env_60219376000000001",
    ca_bundle: CaBundleOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Answer deadline.")
    ] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    legacy_names: Annotated[
        bool,
        typer.Option(
            "--legacy-names",
            help="Send the event under its legacy name (scalekit.dir.user.create, ...), to "
            "see whether the app acts only on those.",
        ),
    ] = False,
) -> int:
    """Send one signed event (or a deliberately broken one) and show the answer.

    Exit 0 when the endpoint answers as a correct receiver would, 1 when not.
    """
    from scim_readiness.cli.run import check_ca_bundle
    from scim_readiness.webhooks.send import run_send_command

    check_ca_bundle(ca_bundle)
    return run_send_command(
        event_type,
        to=to,
        secret_env=secret,
        mutate=mutate,
        ca_bundle=tuple(ca_bundle or ()),
        timeout_s=timeout,
        organization_id=organization_id,
        environment_id=environment_id,
        as_json=as_json,
        legacy_names=legacy_names,
    )


probe_app = typer.Typer(help="Try the configured probe against the app.", no_args_is_help=True)
app.add_typer(probe_app, name="probe")


@probe_app.command("test")
def probe_test(
    config: ConfigOpt = Path("readiness.yaml"),
    email: Annotated[
        str | None,
        typer.Option(
            "--email", metavar="EMAIL", help="Look this user up (default: the first listed user)."
        ),
    ] = None,
    directory_user_id: Annotated[
        str | None,
        typer.Option("--directory-user-id", metavar="ID", help="Look this directory user up."),
    ] = None,
    ca_bundle: CaBundleOpt = None,
) -> int:
    """Call each configured probe template once and show the users as checks will see them.

    Read-only. Exit 0 when every template answered, 1 when one failed, 2 on a bad config.
    """
    from scim_readiness.cli.probe_test import run_probe_test
    from scim_readiness.cli.run import check_ca_bundle

    check_ca_bundle(ca_bundle)
    return run_probe_test(
        _load(config),
        email=email,
        directory_user_id=directory_user_id,
        ca_bundle=tuple(ca_bundle or ()),
    )


class Shell(enum.StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


_COMPLETION_HINT = {
    Shell.BASH: 'eval "$(scim-readiness completion bash)"   # in ~/.bashrc',
    Shell.ZSH: 'eval "$(scim-readiness completion zsh)"    # in ~/.zshrc, after compinit',
    Shell.FISH: "scim-readiness completion fish > ~/.config/fish/completions/scim-readiness.fish",
}


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")],
) -> int:
    """Print the shell completion script for bash, zsh or fish (commands, options, choices)."""
    # Typer's scripts speak the protocol its completion classes answer (see main()); Typer is
    # pinned below 0.29, where these names live.
    from typer._completion_shared import get_completion_script

    print(get_completion_script(prog_name=PROG_NAME, complete_var=COMPLETE_ENV, shell=shell))
    if sys.stdout.isatty():
        print(f"# to enable it: {_COMPLETION_HINT[shell]}", file=sys.stderr)
    return 0


# The edge: every error ends here as one message and an exit code.


def _debug(argv: Sequence[str]) -> bool:
    return _state["debug"] or "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _print_error(message: str) -> None:
    from scim_readiness.cli.run import redactor_for

    print(redactor_for(None).text(message), file=sys.stderr)


def _print_traceback(exc: BaseException) -> None:
    import traceback

    from scim_readiness.cli.run import redactor_for

    text = "".join(traceback.format_exception(exc))
    print(redactor_for(None).text(text), file=sys.stderr, end="")


def _is_click_usage(exc: BaseException) -> bool:
    """Typer raises click's exceptions (vendored in recent Typer, so matched by shape)."""
    return callable(getattr(exc, "format_message", None)) and hasattr(exc, "exit_code")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    _state["debug"] = False
    if os.environ.get(COMPLETE_ENV):
        # A completion request: register Typer's shell classes only now, so that no other
        # start-up pays for them (add_completion=True would, on every command).
        from typer._completion_classes import completion_init

        completion_init()
    try:
        result = app(args=args, prog_name=PROG_NAME, standalone_mode=False)
    except ReadinessError as exc:
        if _debug(args):
            _print_traceback(exc)
        _print_error(f"error: {exc}")
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except (typer.Abort, KeyboardInterrupt):
        _print_error("interrupted; `scim-readiness cleanup` lists any test data a run left behind")
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:
        if _is_click_usage(exc):
            if type(exc).__name__ == "NoArgsIsHelpError":
                print(exc.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
                return int(ExitCode.USAGE)
            _print_error(f"error: {exc.format_message()}")  # type: ignore[attr-defined]
            command = getattr(getattr(exc, "ctx", None), "command_path", "scim-readiness")
            _print_error(f"  hint: see `{command} --help`")
            return int(ExitCode.USAGE)
        if _debug(args):
            _print_traceback(exc)
        _print_error(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "  hint: rerun with --debug for a traceback, and please report it"
        )
        return int(ExitCode.INCOMPLETE)
    if isinstance(result, int):
        return result
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
