"""Every benchmark in one command, then the ratios the performance targets are stated in.

    python bench/run_all.py            # the full set (100,000-user directories: several minutes)
    python bench/run_all.py --quick    # smaller sizes and fewer runs, for a quick look

Runs, each in its own process and with its own output shown as it goes:

* ``bench/startup.py``: ``--help`` and ``checks`` against ``python -c "import typer, rich"``;
  plus, here, which heavy modules those two commands import (there should be none);
* ``bench/demo_bench.py``: the demo's wall time, phases, per-check breakdown, irreducible waits;
* ``bench/reconcile_bench.py``: ``data-model`` over 1k/10k/100k users against raw SDK paging;
* ``bench/burst_bench.py``: the burst sender against a minimal receiver, and the reference app;
* ``bench/emulator_bench.py``: the emulator paging 100,000 users and delivering 10,000 webhooks;
* ``bench/latency_bench.py``: the clean suite behind a loopback delay proxy, round trips counted.

The project's bytecode is compiled first, as an installed package has it (``__pycache__``
is ignored by git). Timings are measurements, not tests: nothing here fails on a slow
machine. A target that is missed is printed as NOT met with the figure. The machine's load
is printed with the figures; other work on a small machine moves them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
#: Modules that must not be imported by ``--help`` or ``checks`` (first dotted component).
HEAVY = (
    *("scalekit", "grpc", "google", "starlette", "uvicorn", "cryptography", "httpx"),
    *("pydantic", "asyncio"),
)
HEAVY_OWN = (
    "scim_readiness.devstack.emulator",
    "scim_readiness.devstack.sampleapp",
    "scim_readiness.clients",
)


def run(argv: list[str], *, timeout: float) -> tuple[int, str]:
    """Run a bench script, echo its output as it comes, return (exit code, output)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    print(f"\n$ {' '.join(Path(a).name if a == sys.executable else a for a in argv)}", flush=True)
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None  # noqa: S101
    in_json = False
    for line in proc.stdout:
        # The --json figures are for this script only; the bench's own table is shown.
        in_json = in_json or line.rstrip() == "["
        if not in_json and not line.startswith("{"):
            print("  " + line, end="", flush=True)
        in_json = in_json and line.rstrip() != "]"
        lines.append(line)
        if time.monotonic() > deadline:
            proc.kill()
            lines.append(f"(stopped after {timeout:g} s)\n")
            break
    return proc.wait(), "".join(lines)


def last_json(output: str) -> Any:
    for line in reversed(output.splitlines()):
        if line.startswith("{") or line.startswith("["):
            return json.loads(line)
    return None


def heavy_imports(*args: str) -> list[str]:
    """Heavy modules imported by ``scim-readiness ARGS`` (from ``-X importtime``)."""
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-m", "scim_readiness", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    found = set()
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") < 2:
            continue
        module = line.rsplit("|", 1)[1].strip()
        if module.split(".")[0] in HEAVY or module.startswith(HEAVY_OWN):
            found.add(module.split(".")[0] if module.split(".")[0] in HEAVY else module)
    return sorted(found)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:  # noqa: PLR0915 - one report, section after section
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs")
    args = parser.parse_args()
    py = sys.executable
    quick = args.quick
    summary: list[str] = []
    began = time.perf_counter()
    print(
        f"scim-readiness benchmarks: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}{' (quick)' if quick else ''}"
    )

    # An installed package has its bytecode compiled; an editable checkout under
    # PYTHONDONTWRITEBYTECODE would recompile the project's modules in every measured run.
    import compileall

    for folder in ("src", "checks"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)

    # ---- start-up -----------------------------------------------------------------------
    code, out = run([py, "bench/startup.py", "-n", "5" if quick else "15", "--json"], timeout=600)
    startup = last_json(out)
    for command in ("--help", "checks"):
        if not startup:
            summary.append(f"start-up   `scim-readiness {command}`: no figure (exit {code})")
            continue
        best, median = startup["best_s"], startup["median_s"]
        ours, floor = f"scim-readiness {command}", startup["floor"]
        ratio_best, ratio_median = best[ours] / best[floor], median[ours] / median[floor]
        summary.append(
            f"start-up   `scim-readiness {command}` {best[ours] * 1000:.0f} ms best = "
            f"x{ratio_best:.2f} of `import typer, rich` (median x{ratio_median:.2f}; "
            f"target <= x1.5: {verdict(ratio_best <= 1.5)})"
        )
        same_shape = f"minimal Typer app {command}"
        summary.append(
            f"start-up   `scim-readiness {command}` = x{best[ours] / best[same_shape]:.2f} of a "
            f"minimal Typer app's `{command}` ({best[same_shape] * 1000:.0f} ms best; "
            "context, not a target)"
        )
    for args_ in (["--help"], ["checks"]):
        heavy = heavy_imports(*args_)
        summary.append(
            f"start-up   `scim-readiness {args_[0]}` imports "
            + (
                f"heavy modules: {', '.join(heavy)} (NOT met)"
                if heavy
                else "no SDK/grpc/emulator/web-server/pydantic/asyncio module (met)"
            )
        )

    # ---- the demo -------------------------------------------------------------------------
    code, out = run([py, "bench/demo_bench.py", "-n", "3" if quick else "5", "--json"], timeout=900)
    demo = last_json(out)
    if demo:
        median = demo["demo_wall_median_s"]
        irreducible = demo["instrumented"]["irreducible_s"]
        summary.append(
            f"demo       wall median {median:.2f} s (best {demo['demo_wall_best_s']:.2f} s) "
            f"(target < 5 s: {verdict(median < 5)})"
        )
        summary.append(
            f"demo       wall / irreducible waits = {median:.2f} / {irreducible:.3f} s = "
            f"x{median / irreducible:.1f} (target < x2: {verdict(median < 2 * irreducible)})"
        )
        floor = demo["libraries_floor_s"]
        summary.append(
            f"demo       of which {floor:.2f} s is the libraries' import-and-exit floor; above it "
            f"{median - floor:.2f} s = x{(median - floor) / irreducible:.1f} the waits (context)"
        )
    else:
        summary.append(f"demo       no figures (exit {code})")

    # ---- large directories ---------------------------------------------------------------
    sizes = "1000,10000" if quick else "1000,10000,100000"
    code, out = run([py, "bench/reconcile_bench.py", "--sizes", sizes, "--json"], timeout=3600)
    rows = None
    try:
        start = out.index("[")
        rows = json.loads(out[start : out.rindex("]") + 1])
    except ValueError:
        rows = None
    if rows:
        for row in rows:
            raw, rec = row["raw"]["wall_s"], row["reconcile"]["wall_s"]
            summary.append(
                f"data-model {row['users']:>7,} users: {rec:.2f} s vs raw SDK paging {raw:.2f} s = "
                f"x{rec / raw:.2f} (target <= x1.3: {verdict(rec <= 1.3 * raw)}), peak RSS "
                f"{row['reconcile']['peak_rss_mb']:.0f} MB (target < 300 MB: "
                f"{verdict(row['reconcile']['peak_rss_mb'] < 300)}), "
                f"{rec / row['users'] * 1e6:.0f} us/user"
            )
            if "both" in row:
                both = row["both"]["wall_s"]
                summary.append(
                    f"data-model {row['users']:>7,} users: x{rec / both:.2f} of both reads "
                    f"({both:.2f} s: SDK paging and the app's list at once; context)"
                )
        if len(rows) >= 2:
            # Per-user cost between the two largest sizes: fixed costs (connecting, the other
            # steps of the check) dominate small directories and say nothing about growth.
            small, large = rows[-2], rows[-1]
            per_small = small["reconcile"]["wall_s"] / small["users"]
            per_large = large["reconcile"]["wall_s"] / large["users"]
            summary.append(
                f"data-model growth {small['users']:,} -> {large['users']:,} users: time per "
                f"user x{per_large / per_small:.2f} (1.00 = linear), peak RSS "
                f"{small['reconcile']['peak_rss_mb']:.0f} -> "
                f"{large['reconcile']['peak_rss_mb']:.0f} MB"
            )
    else:
        summary.append(f"data-model no figures (exit {code})")

    # ---- burst ------------------------------------------------------------------------------
    burst_events = "2000" if quick else "10000"
    code, out = run(
        [py, "bench/burst_bench.py", "--events", burst_events, "--app-events", "500", "--json"],
        timeout=900,
    )
    burst = last_json(out)
    if burst:
        worst = burst["sender_worst_per_s"]
        summary.append(
            f"burst      sender, slowest case: {worst:,.0f} signed deliveries/s = "
            f"x{worst / 1000:.1f} of 1,000/s (target >= x1: {verdict(worst >= 1000)})"
        )
        app = burst["app"]
        summary.append(
            f"burst      reference app: {app['per_s']:,.0f} deliveries/s at concurrency 8, "
            f"p50 {app['p50_ms']} ms, p95 {app['p95_ms']} ms, p99 {app['p99_ms']} ms"
        )
    else:
        summary.append(f"burst      no figures (exit {code})")

    # ---- emulator ---------------------------------------------------------------------------
    emulator = BENCH / "emulator_bench.py"
    if emulator.exists():
        users, hooks = ("10000", "2000") if quick else ("100000", "10000")
        code, out = run(
            [py, "bench/emulator_bench.py", "--users", users, "--webhooks", hooks], timeout=1800
        )
        paging = re.search(r"page (\d+) users.*?: ([\d.]+) s, client peak RSS (\d+) MB", out)
        if paging:
            summary.append(
                f"emulator   pages {int(paging[1]):,} users through the SDK in {paging[2]} s "
                f"(client peak RSS {paging[3]} MB)"
            )
        deliveries = re.finditer(
            r"deliver (\d+) signed webhooks \(in flight per endpoint: (\d+)\): ([\d.]+) s "
            r"\((\d+)/s\)",
            out,
        )
        summary.extend(
            f"emulator   delivers {int(found[1]):,} signed webhooks in {found[3]} s "
            f"({int(found[4]):,}/s, {found[2]} in flight)"
            for found in deliveries
        )
        if not paging:
            summary.append(f"emulator   no figures parsed (exit {code}); see its output above")
    else:
        summary.append("emulator   bench/emulator_bench.py is not there")

    # ---- latency ----------------------------------------------------------------------------
    delays = "0,25" if quick else "0,25,50"
    code, out = run([py, "bench/latency_bench.py", "--delays-ms", delays, "-n", "1"], timeout=900)
    trips = re.findall(r"D = +(\d+) ms .*?-> ([\d.]+) sequential round trips", out)
    summary.extend(
        f"latency    D = {delay} ms each way: {count} round trips on the critical path"
        for delay, count in trips
    )
    if not trips:
        summary.append(f"latency    no figures parsed (exit {code}); see its output above")

    print(
        f"\n==== summary ({time.perf_counter() - began:.0f} s; load now {os.getloadavg()[0]:.1f})"
    )
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
