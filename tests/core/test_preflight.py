"""The preflight and the runner's honesty rules: one root cause blocks the checks that need
it (ERROR "blocked by …", exit 3) instead of each rediscovering it; transport failures are
"unreachable", never a defect of the check; PASS only with every essential assertion
observed; cleanup stays inside the run's budget.

Real servers on loopback (a closed port, a listener that never answers), a real command probe;
no wall-clock assertions.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scim_readiness.api import skipped_essential
from scim_readiness.config import Config
from scim_readiness.engine.config_file import parse_config
from scim_readiness.engine.registry import CheckSpec
from scim_readiness.engine.runner import RunOptions, cleanup_reserve, run_suite
from scim_readiness.errors import ExitCode, ScalekitAuthError, Unreachable
from scim_readiness.model import CheckResult, Report, Status
from scim_readiness.plugin.context import CheckContext

from .conftest import spec

STAGING = "scalekit:\n  expect: staging\n  environment_url: https://acme-staging.scalekit.dev\n"
SECRET = "whsec_" + "A" * 32


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """Accepts connections and never says a word (a hung app server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def webhook_config(url: str, extra: str = "") -> Config:
    text = (
        f"{STAGING}webhook:\n  url: {url}\n  secret: {SECRET}\n  timeout_s: 1\n"
        "checks:\n  allow_mutation: true\n" + extra
    )
    return parse_config(text, path="readiness.yaml")


def run(cfg: Config, specs: list[CheckSpec], **kw: object) -> Report:
    factory = kw.pop("scalekit_factory", None)
    return asyncio.run(
        run_suite(cfg, RunOptions(**kw), specs=specs, scalekit_factory=factory)  # type: ignore[arg-type]
    )


def by_id(report: Report) -> dict[str, CheckResult]:
    return {c.id: c for c in report.checks}


def never_runs(ran: list[str], name: str):  # type: ignore[no-untyped-def]
    async def run_it(ctx: CheckContext) -> None:
        ran.append(name)
        ctx.findings.failed("the app refused a correctly signed event")

    return run_it


def test_a_refused_webhook_blocks_every_check_that_needs_it_with_one_cause() -> None:
    ran: list[str] = []
    url = f"https://127.0.0.1:{closed_port()}/webhooks/scalekit?token=abc"
    specs = [
        spec("lifecycle", never_runs(ran, "lifecycle"), needs=("webhook",), mutates=True),
        spec("signature", never_runs(ran, "signature"), needs=("webhook",), mutates=True),
        spec("env"),
    ]
    report = run(webhook_config(url), specs)
    checks = by_id(report)
    assert ran == []
    titles = {checks[c].findings[0].title for c in ("lifecycle", "signature")}
    assert len(titles) == 1  # the same root cause, in the same words
    (title,) = titles
    assert title.startswith("blocked by the webhook preflight: the webhook https://127.0.0.1:")
    assert "token" not in title  # the query may carry a secret
    assert checks["lifecycle"].status is Status.ERROR
    assert checks["env"].status is Status.PASS
    assert report.exit_code() == ExitCode.INCOMPLETE


def test_a_hanging_webhook_is_tried_once_for_the_whole_run(silent_listener: int) -> None:
    ran: list[str] = []
    # Plain HTTP to a staging target: the request is sent, and no answer ever comes.
    url = f"http://127.0.0.1:{silent_listener}/hook"
    specs = [
        spec(f"c{n}", never_runs(ran, f"c{n}"), needs=("webhook",), mutates=True) for n in range(4)
    ]
    report = run(webhook_config(url), specs)
    assert ran == []
    for check in report.checks:
        assert check.status is Status.ERROR
        assert check.findings[0].title.endswith("is unreachable: no complete answer within 1 s")
    assert report.exit_code() == ExitCode.INCOMPLETE


def command_probe(tmp_path: Path, *, listed: object, by_email: object) -> str:
    """A probe command that prints ``listed`` for list_users and ``by_email`` for lookups."""
    script = tmp_path / "probe.py"

    def text(answer: object) -> str:
        return answer if isinstance(answer, str) else json.dumps(answer)

    answers = {"list": text(listed), "email": text(by_email)}
    script.write_text(f"import sys\nprint({answers!r}[sys.argv[1]])\n")
    python = json.dumps(sys.executable)
    return (
        "probe:\n  kind: command\n  command:\n"
        f"    list_users: [{python}, {json.dumps(str(script))}, list]\n"
        f"    user_by_email: [{python}, {json.dumps(str(script))}, email]\n"
    )


USER = {"id": "u1", "email": "ada@acme.example", "active": True, "directory_user_id": "d1"}


@pytest.mark.parametrize(
    ("listed", "by_email", "cause"),
    [
        (
            {"users": [USER], "next_cursor": None},
            None,
            'the probe answers "no such user" for a user its own list_users shows',
        ),
        ("", USER, "printed nothing"),
        ({"users": [{"email": "x@acme.example"}]}, USER, "lacks the app's user id"),
    ],
)
def test_a_probe_that_cannot_show_a_known_user_blocks_the_checks_that_read_the_app(
    tmp_path: Path, listed: object, by_email: object, cause: str
) -> None:
    ran: list[str] = []
    cfg = parse_config(STAGING + command_probe(tmp_path, listed=listed, by_email=by_email))
    report = run(cfg, [spec("reads", never_runs(ran, "reads"), needs=("probe",)), spec("other")])
    checks = by_id(report)
    assert ran == []
    assert checks["reads"].status is Status.ERROR
    title = checks["reads"].findings[0].title
    assert title.startswith("blocked by the probe preflight: ") and cause in title, title
    assert checks["other"].status is Status.PASS


def test_a_probe_that_finds_what_it_lists_lets_the_checks_run(tmp_path: Path) -> None:
    probe = command_probe(tmp_path, listed={"users": [USER]}, by_email=USER)
    report = run(parse_config(STAGING + probe), [spec("reads", needs=("probe",))])
    assert report.checks[0].status is Status.PASS


def test_a_refused_scalekit_token_blocks_the_checks_that_need_scalekit() -> None:
    ran: list[str] = []

    async def refused() -> object:
        raise ScalekitAuthError("the environment refused the client credentials")

    cfg = parse_config(STAGING + "  client_id: skc_1\n  client_secret: s3cr3t-value\n")
    specs = [spec("portal", never_runs(ran, "portal"), needs=("scalekit",)), spec("plain")]
    report = run(cfg, specs, scalekit_factory=refused)
    checks = by_id(report)
    assert ran == []
    assert checks["portal"].findings[0].title == (
        "blocked by the Scalekit token preflight: the environment refused the client credentials"
    )
    assert checks["plain"].status is Status.PASS


@pytest.mark.parametrize(
    "raised",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        Unreachable("the probe host did not answer"),
    ],
)
def test_transport_failures_are_unreachable_not_a_defect_of_the_check(raised: Exception) -> None:
    async def broken(ctx: CheckContext) -> None:
        ctx.findings.passed("seen before the fault")
        raise raised

    (check,) = run(parse_config(STAGING), [spec("c", broken)]).checks
    assert check.status is Status.ERROR
    last = check.findings[-1]
    assert last.title.startswith("unreachable: "), last.title
    assert "internal error" not in last.title and "author" not in last.fix


def test_a_pass_with_an_essential_assertion_unobserved_is_skip() -> None:
    async def half_seen(ctx: CheckContext) -> None:
        ctx.findings.passed("answered 4xx")
        ctx.findings.skipped("Combining groups not tested")  # not essential
        skipped_essential(ctx.findings, "records in the app", "Records in the app not checked")

    async def failed_too(ctx: CheckContext) -> None:
        ctx.findings.failed("answered 500")
        skipped_essential(ctx.findings, "records in the app", "Records in the app not checked")

    async def warned(ctx: CheckContext) -> None:
        ctx.findings.warned("slow")
        skipped_essential(ctx.findings, "records in the app", "Records in the app not checked")

    async def only_optional_skips(ctx: CheckContext) -> None:
        ctx.findings.passed("answered 4xx")
        ctx.findings.skipped("Combining groups not tested")

    specs = [
        spec("half", half_seen),
        spec("failed", failed_too),
        spec("warned", warned),
        spec("optional", only_optional_skips),
    ]
    checks = by_id(run(parse_config(STAGING), specs))
    assert checks["half"].status is Status.SKIP
    assert checks["half"].headline == "Records in the app not checked"
    assert checks["failed"].status is Status.FAIL
    assert checks["warned"].status is Status.SKIP
    assert checks["optional"].status is Status.PASS


def test_cleanup_is_bounded_by_what_is_left_of_the_budget() -> None:
    async def hang(ctx: CheckContext) -> None:
        await asyncio.sleep(3600)

    async def slow_cleanup(ctx: CheckContext) -> None:
        await asyncio.sleep(3600)

    budget = 3.0
    (check,) = run(
        parse_config(STAGING), [spec("c", hang, cleanup=slow_cleanup, timeout=60)], timeout_s=budget
    ).checks
    titles = [f.title for f in check.findings]
    assert titles[0] == f"timed out: the run's time budget of {budget:g} s ran out"
    match = re.fullmatch(r"cleanup did not finish within ([\d.]+) s", titles[1])
    assert match is not None, titles
    assert float(match.group(1)) <= cleanup_reserve(budget) < budget


def test_the_cleanup_reserve_is_a_share_of_the_budget_within_bounds() -> None:
    assert cleanup_reserve(120) == 24
    assert cleanup_reserve(600) == 30  # never more than a cleanup may take
    assert cleanup_reserve(5) == 2
    assert cleanup_reserve(1) == 0.5  # never more than half
