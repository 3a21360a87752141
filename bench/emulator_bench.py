"""Emulator benchmarks: start-up, SDK calls per second, SCIM requests per second on one
kept-alive HTTPS connection, paging 100,000 users, webhook delivery.

Run: python bench/emulator_bench.py [--users 100000] [--webhooks 10000] [--only webhooks]
Prints figures; asserts nothing (timings are not tests).

Webhooks go to a minimal receiver in its own process, at 1, 4 and 16 deliveries in flight per
endpoint (``start_emulator(max_in_flight=...)``), over HTTP and TLS. First a backlog: N events
are emitted while the receiver holds back, then drained, which times the dispatcher alone.
Then events are delivered while they are emitted, as in use. Each line gives throughput,
p50/p95 of the attempts' latency (request written to answer read), how much of a core the
emulator's event loop, the receiver and the emitting thread used, which side is the limit,
and the CPU each side spent per delivery (the figure least swayed by other load).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scim_readiness.devstack.emulator import process_ca, start_emulator, trust_env

ROOT = Path(__file__).resolve().parent.parent

# The paging client runs in its own process so its peak memory is the checker's, not the
# emulator's (which holds the 100,000 users).
PAGER = """
import asyncio, json, sys, time
from pydantic import SecretStr
from scim_readiness.config import ScalekitSection
from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.scalekit import connect

url, cid, secret, org, directory, ca = sys.argv[1:7]

def peak_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

async def main():
    gw = await connect(
        ScalekitSection(environment_url=url, client_id=cid, client_secret=SecretStr(secret),
                        timeout_s=60),
        TlsSettings(ca_bundle=ca),
    )
    baseline = peak_mb()
    started = time.perf_counter()
    users = pages = 0
    async for page in gw.iter_directory_users(org, directory):
        pages += 1
        users += len(page)
    elapsed = time.perf_counter() - started
    await gw.aclose()
    rss = peak_mb()
    print(json.dumps({"users": users, "pages": pages, "seconds": elapsed, "peak_rss_mb": rss,
                      "baseline_rss_mb": baseline}))

asyncio.run(main())
"""


def bench_startup(rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        with start_emulator():
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def bench_sdk_calls(seconds: float = 3.0) -> float:
    from scalekit import ScalekitClient

    with start_emulator() as emu:
        client = ScalekitClient(emu.env_url, emu.client_id, emu.client_secret)
        client.organization.get_organization(emu.organization_id)  # warm the channel
        calls = 0
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            client.organization.get_organization(emu.organization_id)
            calls += 1
        return calls / (time.perf_counter() - began)


def bench_scim_one_connection(seconds: float = 3.0) -> dict[str, float]:
    """SCIM requests per second on one kept-alive HTTPS connection, as an IdP sends them.

    A stall per request (Nagle's algorithm meeting delayed ACKs) shows here as ~22/s; a
    fresh connection per request hides it, which is why only one connection is used.
    """
    import httpx

    figures: dict[str, float] = {}
    with (
        start_emulator() as emu,
        httpx.Client(
            base_url=emu.scim_url(),
            headers={"authorization": f"Bearer {emu.scim_token()}"},
            verify=emu.ca.client_context(),
            trust_env=False,
        ) as client,
    ):
        client.get("/ServiceProviderConfig")  # the handshake is not what is measured
        user_id = next(iter(emu.state.directory(emu.directory_id).users))
        calls: tuple[tuple[str, Callable[[int], httpx.Response]], ...] = (
            ("GET /Users/{id}", lambda n: client.get(f"/Users/{user_id}")),
            (
                "POST /Users",
                lambda n: client.post(
                    "/Users",
                    json={
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": f"bench{n}@bench.example",
                    },
                ),
            ),
        )
        for label, call in calls:
            done = 0
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                call(done).raise_for_status()
                done += 1
            figures[label] = done / (time.perf_counter() - began)
    return figures


def bench_paging(n: int) -> dict[str, float]:
    with start_emulator() as emu:
        began = time.perf_counter()
        emu.generate_users(n=n - len(emu.state.directory(emu.directory_id).users))
        generated = time.perf_counter() - began
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                PAGER,
                emu.env_url,
                emu.client_id,
                emu.client_secret,
                emu.organization_id,
                emu.directory_id,
                str(emu.ca_path),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"pager failed:\n{result.stderr}")
        figures = dict(json.loads(result.stdout.strip().splitlines()[-1]))
        figures["generate_seconds"] = generated
        figures["emulator_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return figures


# The minimal receiver, in its own process: in the emulator's process it would share the
# interpreter lock with the very dispatcher being measured.
RECEIVER = Path(__file__).with_name("minimal_receiver.py")

SECRET = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldCE="
#: A thread or process using at least this share of one core during a run is its limit.
SATURATED = 0.85


def _cpu_seconds(stat: Path) -> float | None:
    """User + system CPU seconds from a /proc stat file (Linux), else None."""
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far (Linux /proc/stat), else None."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # idle and iowait are not busy


def _loop_thread_stat() -> Path:
    """The emulator's event-loop thread, where every delivery is made."""
    (thread,) = (t for t in threading.enumerate() if t.name == "scim-readiness-emulator")
    return Path(f"/proc/self/task/{thread.native_id}/stat")


class Receiver:
    """The receiver script in a child process; ``url`` once it listens."""

    def __init__(self, *, tls: bool, gated: bool) -> None:
        argv = [sys.executable, str(RECEIVER), "gated" if gated else "open"]
        if tls:
            cert = process_ca().issue("127.0.0.1")  # the emulator trusts this CA
            argv += [str(cert.cert_path), str(cert.key_path)]
        self.proc = subprocess.Popen(  # noqa: S603
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None  # noqa: S101
        port = int(self.proc.stdout.readline())
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/hook"
        self.stat = Path(f"/proc/{self.proc.pid}/stat")

    def open_gate(self) -> None:
        assert self.proc.stdin is not None  # noqa: S101
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass(frozen=True)
class WebhookRun:
    n: int
    in_flight: int
    tls: bool
    backlog: bool  # all events emitted before the receiver started answering
    emit_s: float  # the state changes that emit the events
    seconds: float  # backlog: draining it; otherwise from the first state change to the last ack
    p50_ms: float
    p95_ms: float
    loop_cpu: float | None  # share of one core: the emulator's event loop (the dispatcher)
    main_cpu: float | None  # share of one core: the thread making the state changes
    receiver_cpu: float | None
    machine_busy: float | None  # share of all the machine's cores busy, other processes too

    @property
    def per_s(self) -> float:
        return self.n / self.seconds

    def shares(self) -> str:
        if self.loop_cpu is None or self.receiver_cpu is None or self.main_cpu is None:
            return "CPU shares unknown (no /proc)"
        text = (
            f"emulator loop {self.loop_cpu:.0%} of a core, receiver {self.receiver_cpu:.0%}, "
            f"{'waiting' if self.backlog else 'state-changing'} thread {self.main_cpu:.0%}"
        )
        if self.loop_cpu >= SATURATED and self.loop_cpu >= self.receiver_cpu:
            return f"{text}: the emulator's dispatcher is the limit"
        if self.receiver_cpu >= SATURATED:
            return f"{text}: the receiver is the limit"
        if self.machine_busy is not None and self.machine_busy >= 0.9:
            return (
                f"{text}; all {os.cpu_count()} CPUs {self.machine_busy:.0%} busy: "
                "the machine is the limit (other processes included)"
            )
        if not self.backlog and self.emit_s >= 0.8 * self.seconds:
            return f"{text}: emitting the events is the limit"
        if self.loop_cpu + self.main_cpu >= SATURATED:
            return f"{text}: the emulator's process (one interpreter lock) is the limit"
        return f"{text}: neither side is CPU-bound, the round trip is the limit"


def bench_webhooks(
    n: int, in_flight: int, *, tls: bool = False, backlog: bool = True
) -> WebhookRun:
    """Emit ``n`` events (directory enable/disable) and time their delivery.

    ``backlog``: the receiver holds back until all ``n`` are emitted, then the time to drain
    the queue is the dispatcher's throughput. Otherwise events are delivered as they are
    emitted, and the time runs from the first state change to the last acknowledgement.
    Latencies are the attempts' (request written to answer read), leaving out the first
    attempts that waited on the closed gate.
    """
    from scim_readiness.model import percentile

    with (
        Receiver(tls=tls, gated=backlog) as receiver,
        # Attempts stuck behind the gate must outlast emitting the events.
        start_emulator(max_in_flight=in_flight, attempt_timeout_s=600) as emu,
    ):
        emu.register_webhook(receiver.url, SECRET)
        directory = emu.state.directory(emu.directory_id)
        loop_stat, main_stat = (
            _loop_thread_stat(),
            Path(f"/proc/self/task/{threading.get_native_id()}/stat"),
        )

        def cpu() -> tuple[float | None, ...]:
            return tuple(_cpu_seconds(stat) for stat in (loop_stat, main_stat, receiver.stat))

        before, machine_before = cpu(), _machine_ticks()
        began = time.perf_counter()
        for index in range(n):
            emu.state.set_directory_enabled(directory, index % 2 == 1)
        emit_s = time.perf_counter() - began
        gate_opened = time.time()
        if backlog:
            before, machine_before = cpu(), _machine_ticks()
            began = time.perf_counter()
            receiver.open_gate()
        if not emu.deliveries.wait_delivered(n, timeout=600):
            raise SystemExit("webhooks were not all delivered")
        seconds = time.perf_counter() - began
        after, machine_after = cpu(), _machine_ticks()
        deliveries = emu.deliveries.all()
    latencies = [
        d.attempts[-1].latency_s
        for d in deliveries
        if not backlog or d.attempts[-1].at >= gate_opened
    ] or [d.attempts[-1].latency_s for d in deliveries]
    shares = [
        None if start is None or end is None else (end - start) / seconds
        for start, end in zip(before, after, strict=True)
    ]
    machine_busy = None
    if machine_before is not None and machine_after is not None:
        total = machine_after[1] - machine_before[1]
        machine_busy = (machine_after[0] - machine_before[0]) / total if total else None
    return WebhookRun(
        n=n,
        in_flight=in_flight,
        tls=tls,
        backlog=backlog,
        emit_s=emit_s,
        seconds=seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        loop_cpu=shares[0],
        main_cpu=shares[1],
        receiver_cpu=shares[2],
        machine_busy=machine_busy,
    )


def print_webhooks(run: WebhookRun) -> None:
    over = " over TLS" if run.tls else ""
    if run.backlog:
        what = f"deliver {run.n} signed webhooks{over} (in flight per endpoint: {run.in_flight})"
    else:
        what = (
            f"{run.n} events emitted and delivered together{over} "
            f"(in flight {run.in_flight}; emitting took {run.emit_s:.2f} s)"
        )
    cost = ""
    if run.loop_cpu is not None and run.receiver_cpu is not None:
        # CPU per delivery depends far less on what else the machine runs than throughput.
        cost = (
            f"; CPU per delivery: emulator loop {run.loop_cpu * run.seconds / run.n * 1e6:.0f} us, "
            f"receiver {run.receiver_cpu * run.seconds / run.n * 1e6:.0f} us"
        )
    print(
        f"{what}: {run.seconds:.2f} s ({run.per_s:.0f}/s); "
        f"p50 {run.p50_ms:.2f} ms, p95 {run.p95_ms:.2f} ms; {run.shares()}{cost}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument(
        "--only",
        choices=["startup", "sdk", "scim", "paging", "webhooks"],
        help="run one part only",
    )
    args = parser.parse_args()
    trust_env(process_ca().ca_path)

    if args.only in (None, "startup"):
        print(f"emulator start-up (median of 5): {bench_startup() * 1000:.0f} ms")
    if args.only in (None, "sdk"):
        print(f"SDK get_organization calls/s:    {bench_sdk_calls():.0f}")
    if args.only in (None, "scim"):
        for label, per_s in bench_scim_one_connection().items():
            print(f"SCIM {label} on one kept-alive HTTPS connection: {per_s:.0f} requests/s")
    if args.only in (None, "paging"):
        paging = bench_paging(args.users)
        print(
            f"page {paging['users']:.0f} users ({paging['pages']:.0f} pages of 30) through the "
            f"SDK: {paging['seconds']:.1f} s, client peak RSS {paging['peak_rss_mb']:.0f} MB "
            f"({paging['baseline_rss_mb']:.0f} MB after connecting) "
            f"(emulator process peak RSS {paging['emulator_peak_rss_mb']:.0f} MB, "
            f"generating the users {paging['generate_seconds']:.2f} s)"
        )
    if args.only not in (None, "webhooks"):
        return
    print(
        f"webhooks to a minimal receiver in its own process ({os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f} before). A backlog of N events is emitted first, then "
        "drained: the dispatcher's own throughput."
    )
    for in_flight in (1, 4, 16):
        print_webhooks(bench_webhooks(args.webhooks, in_flight))
    for in_flight in (1, 16):
        print_webhooks(bench_webhooks(args.webhooks, in_flight, tls=True))
    print("the same, with events delivered while they are emitted (state changes on this thread):")
    for in_flight in (1, 16):
        print_webhooks(bench_webhooks(args.webhooks, in_flight, backlog=False))


if __name__ == "__main__":
    main()
