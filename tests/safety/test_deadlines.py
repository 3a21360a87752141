"""Whole-request deadlines, body caps and hostile answers, one client at a time.

Each test points one of the product's clients (the shared bounded request, the lean
HTTP/1.1 client, ``events send``, the probe, the config loader) at a real misbehaving
server on loopback (or a hostile file) and asserts what a user would notice: the call ends
within its deadline, memory stays small, and the message names the endpoint and what was
wrong with its answer, never "internal error".
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scim_readiness.clients.http import TlsSettings
from scim_readiness.config import CommandProbe, HttpProbe
from scim_readiness.errors import ProbeError

from .conftest import cli_args, cli_env
from .faulty_servers import FaultyHttpServer
from .measure import Measured, run_measured

# A peak above this means the body was held, not streamed and cut.
MAX_RSS_MB = 300


def _bounded_get(url: str, *, timeout_s: float, cap: int = 1 << 20) -> BaseException | bytes:
    import httpx

    from scim_readiness.clients.answers import AnswerTooLarge, request_capped
    from scim_readiness.clients.http import make_async_client

    async def go() -> bytes:
        async with make_async_client(TlsSettings(), timeout_s=timeout_s) as client:
            return (await request_capped(client, "GET", url, cap=cap)).content

    async def guarded() -> BaseException | bytes:
        # A test's own bound, far above the deadline: without one the old code ran for ever.
        async with asyncio.timeout(timeout_s + 10):
            try:
                return await go()
            except (httpx.HTTPError, AnswerTooLarge) as exc:
                return exc

    return asyncio.run(guarded())


@pytest.mark.timeout(60)
def test_a_dripping_answer_ends_at_the_whole_request_deadline_naming_the_endpoint() -> None:
    with FaultyHttpServer("drip") as server:
        started = time.monotonic()
        outcome = _bounded_get(server.url("/probe/users?token=s3cr3t-query-value"), timeout_s=1.5)
        elapsed = time.monotonic() - started
    assert isinstance(outcome, BaseException), outcome
    message = str(outcome)
    assert f"127.0.0.1:{server.port}/probe/users" in message
    assert "did not finish answering within 1.5 s" in message
    assert "s3cr3t" not in message
    # One byte every half second keeps every read alive; only the whole deadline ends it.
    assert elapsed < 3.0


@pytest.mark.timeout(60)
def test_an_endless_chunked_answer_is_cut_at_the_cap() -> None:
    from scim_readiness.clients.answers import AnswerTooLarge

    with FaultyHttpServer("endless-chunked") as server:
        outcome = _bounded_get(server.url("/"), timeout_s=10, cap=256 * 1024)
    assert isinstance(outcome, AnswerTooLarge), outcome


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", ["endless-chunked", "drip"])
def test_the_lean_http1_client_stops_reading_an_endless_body(fault: str) -> None:
    """The emulator's deliveries and the burst read answers with http1: an endless body ends
    at the cap (not after the caller's whole deadline), a dripping one at the deadline."""
    from scim_readiness.clients.http1 import MAX_BODY_BYTES, Connection, Target

    async def go(url: str) -> tuple[int, bytes, float]:
        conn = await Connection.connect(Target.of(url), None)
        started = time.monotonic()
        try:
            async with asyncio.timeout(5):
                status, body = await conn.request(
                    b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
                )
        except TimeoutError:
            return -1, b"", time.monotonic() - started
        finally:
            conn.close()
        return status, body, time.monotonic() - started

    with FaultyHttpServer(fault) as server:
        status, body, elapsed = asyncio.run(go(server.url("/")))
    if fault == "endless-chunked":
        assert status == 200
        assert len(body) <= MAX_BODY_BYTES
        assert elapsed < 4, f"read for {elapsed:.1f} s past the cap"
    else:
        assert status == -1  # the caller's deadline ended it
        assert elapsed < 6


def _run_watched(args: list[str], directory: Path) -> Measured:
    env = cli_env(SCIM_READINESS_TEST_SECRET="whsec_" + "A" * 32)
    return run_measured(cli_args(*args), directory, timeout=40, env=env)


@pytest.mark.timeout(120)
def test_events_send_timeout_bounds_a_dripping_answer(tmp_path: Path) -> None:
    with FaultyHttpServer("drip") as server:
        done = _run_watched(
            ["events", "send", "user_created", "--to", server.url("/webhooks/scalekit")]
            + ["--secret", "SCIM_READINESS_TEST_SECRET", "--timeout", "3"],
            tmp_path,
        )
    code, stderr, elapsed = done.returncode, done.stderr, done.seconds
    assert "Traceback" not in stderr
    assert code == 3, stderr
    assert f"127.0.0.1:{server.port}/webhooks/scalekit did not finish answering within 3 s" in (
        stderr
    )
    # CLI start-up plus the 3 s deadline.
    assert elapsed < 8, f"took {elapsed:.1f} s"


@pytest.mark.timeout(120)
def test_events_send_reads_an_endless_answer_in_bounded_memory(tmp_path: Path) -> None:
    with FaultyHttpServer("endless-chunked") as server:
        done = _run_watched(
            ["events", "send", "user_created", "--to", server.url("/webhooks/scalekit")]
            + ["--secret", "SCIM_READINESS_TEST_SECRET", "--timeout", "10"],
            tmp_path,
        )
    code, stderr, elapsed, peak_mb = done.returncode, done.stderr, done.seconds, done.rss_mb
    assert peak_mb < MAX_RSS_MB, f"peak {peak_mb:.0f} MB"
    assert "Traceback" not in stderr
    # The 200 is the answer; the body is only quoted, cut at the cap.
    assert code in (0, 1), stderr
    assert elapsed < 12


def _http_probe(base: str) -> HttpProbe:
    return HttpProbe.model_validate(
        {
            "user_by_email": f"{base}/probe/users?email={{email}}",
            "user_by_id": f"{base}/probe/users/{{directory_user_id}}",
            "list_users": f"{base}/probe/users?cursor={{cursor}}",
            "timeout_s": 5,
        }
    )


def _probe_error(probe: object, read: str) -> str:
    async def go() -> str:
        try:
            if read == "list_users":
                async for _ in probe.list_users():  # type: ignore[attr-defined]
                    pass
            else:
                await probe.user_by_email("someone@example.com")  # type: ignore[attr-defined]
        except ProbeError as exc:
            return str(exc)
        finally:
            await probe.aclose()  # type: ignore[attr-defined]
        return "no error"

    return asyncio.run(go())


@pytest.mark.timeout(60)
def test_deep_json_from_the_probe_is_named_with_its_endpoint() -> None:
    from scim_readiness.clients.probe import HttpAppProbe

    with FaultyHttpServer("deep-json") as server:
        message = _probe_error(HttpAppProbe(_http_probe(server.url("")), TlsSettings()), "email")
    assert message.startswith(f"probe user_by_email answer from http://127.0.0.1:{server.port}")
    assert "JSON nested deeper than 64 levels" in message


@pytest.mark.timeout(60)
def test_a_huge_cursor_from_the_probe_is_named_not_requested() -> None:
    from scim_readiness.clients.probe import HttpAppProbe

    with FaultyHttpServer("huge-cursor") as server:
        probe = HttpAppProbe(_http_probe(server.url("")), TlsSettings())
        message = _probe_error(probe, "list_users")
        requests = server.connections
    assert f"probe list_users answer from http://127.0.0.1:{server.port}/probe/users" in message
    assert "next_cursor is 1,000,000 characters long" in message
    assert requests == 1  # the cursor was never sent back
    assert len(message) < 400


@pytest.mark.timeout(60)
def test_deep_json_printed_by_a_command_probe_is_named(tmp_path: Path) -> None:
    from scim_readiness.clients.probe import CommandAppProbe

    script = tmp_path / "probe.py"
    script.write_text("print('[' * 50000 + ']' * 50000)\n")
    config = CommandProbe.model_validate(
        {
            "user_by_email": [sys.executable, str(script), "{email}"],
            "user_by_id": [sys.executable, str(script), "{directory_user_id}"],
            "list_users": [sys.executable, str(script), "{cursor}"],
        }
    )
    message = _probe_error(CommandAppProbe(config), "email")
    assert "printed JSON nested deeper than 64 levels" in message


def test_safe_json_decoding_refuses_depth_and_size_without_recursion() -> None:
    from scim_readiness.clients.answers import MAX_JSON_DEPTH, HostileAnswer, decode_json

    assert decode_json(b'{"a": [1, {"b": "[[[[{{{{"}]}') == {"a": [1, {"b": "[[[[{{{{"}]}
    just_deep_enough = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert decode_json(just_deep_enough) is not None
    with pytest.raises(HostileAnswer, match="nested deeper than 64 levels"):
        decode_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(HostileAnswer, match="nested deeper"):
        decode_json(b'{"x": ' * 1_000_000 + b"1" + b"}" * 1_000_000)
    with pytest.raises(HostileAnswer, match="larger than 10 bytes"):
        decode_json(b'"0123456789"', max_bytes=10)
    # Many brackets inside strings (and escaped quotes) are no nesting at all.
    flat = '["' + '\\"[' * 10_000 + '"]'
    assert decode_json(flat) == ['"[' * 10_000]


@pytest.mark.parametrize(
    ("shape", "line"),
    [("flow", 2), ("block", 32)],
)
def test_a_config_nested_thousands_deep_is_a_config_error_with_file_and_line(
    tmp_path: Path, shape: str, line: int
) -> None:
    config = tmp_path / "deep.yaml"
    if shape == "flow":
        config.write_text("scalekit:\n  x: " + "[" * 5000 + "]" * 5000 + "\n")
    else:
        lines = ["webhook:", *("  " * depth + "k:" for depth in range(1, 5000))]
        config.write_text("\n".join(lines) + " 1\n")
    done = subprocess.run(
        cli_args("config", "validate", "-c", str(config)),
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert done.returncode == 2, done.stderr
    assert f"{config}:{line}:" in done.stderr
    assert "nested deeper than 32 levels" in done.stderr
    assert "internal error" not in done.stderr.lower()


def test_peak_rss_is_the_childs_own(tmp_path: Path) -> None:
    """The memory bounds rely on run_measured reporting the child's own peak, neither the
    test process's size nor a figure missed between two looks."""
    ballast = bytearray(200 * 1024 * 1024)  # the parent is large; the child must not be
    ballast[::4096] = b"1" * len(ballast[::4096])
    script = "import time; x = bytearray(80 << 20); x[::4096] = b'1' * len(x[::4096]); "
    script += "time.sleep(0.5)"
    done = run_measured([sys.executable, "-c", script], tmp_path, timeout=30, env=cli_env())
    assert done.returncode == 0
    assert 80 < done.rss_mb < 150, done.rss_mb
    del ballast
