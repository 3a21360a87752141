"""Emulator benchmarks: start-up, SDK calls per second, paging 100,000 users, webhook delivery.

Run: python bench/emulator_bench.py [--users 100000] [--webhooks 10000]
Prints figures; asserts nothing (timings are not tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from scim_readiness.emulator import default_seed, process_ca, start_emulator, trust_env

ROOT = Path(__file__).resolve().parent.parent

# The paging client runs in its own process so its peak memory is the checker's, not the
# emulator's (which holds the 100,000 users).
PAGER = """
import asyncio, json, sys, time
from pydantic import SecretStr
from scim_readiness.config import ScalekitSection
from scim_readiness.context import TlsSettings
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


def _receiver() -> tuple[int, threading.Event]:
    """A minimal HTTP/1.1 receiver: reads each request, answers 204, keeps the connection."""
    ready = threading.Event()
    port_box: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(5)
    return port_box[0], ready


def bench_webhooks(n: int, in_flight: int) -> float:
    port, _ = _receiver()
    secret = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldCE="
    with start_emulator(default_seed(), max_in_flight=in_flight) as emu:
        emu.register_webhook(f"http://127.0.0.1:{port}/hook", secret)
        directory = emu.state.directory(emu.directory_id)
        began = time.perf_counter()
        for index in range(n):
            emu.state.set_directory_enabled(directory, index % 2 == 1)
        if not emu.deliveries.wait_delivered(n, timeout=600):
            raise SystemExit("webhooks were not all delivered")
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    args = parser.parse_args()
    trust_env(process_ca().ca_path)

    print(f"emulator start-up (median of 5): {bench_startup() * 1000:.0f} ms")
    print(f"SDK get_organization calls/s:    {bench_sdk_calls():.0f}")
    paging = bench_paging(args.users)
    print(
        f"page {paging['users']:.0f} users ({paging['pages']:.0f} pages of 30) through the SDK: "
        f"{paging['seconds']:.1f} s, client peak RSS {paging['peak_rss_mb']:.0f} MB "
        f"({paging['baseline_rss_mb']:.0f} MB after connecting) "
        f"(emulator process peak RSS {paging['emulator_peak_rss_mb']:.0f} MB, "
        f"generating the users {paging['generate_seconds']:.2f} s)"
    )
    for in_flight in (1, 16):
        seconds = bench_webhooks(args.webhooks, in_flight)
        print(
            f"deliver {args.webhooks} signed webhooks (in flight per endpoint: {in_flight}): "
            f"{seconds:.1f} s ({args.webhooks / seconds:.0f}/s)"
        )


if __name__ == "__main__":
    main()
