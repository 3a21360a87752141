"""Running the CLI as a child while watching its memory.

The child's peak RSS is read from its own ``/proc/<pid>/status`` (``VmHWM``) while it runs.
``getrusage(RUSAGE_CHILDREN)`` and ``wait4`` are no good here: Linux carries the parent's
high-water mark into a child across fork and exec, so a child of a large test process
"peaks" at the parent's size whatever it does itself.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# A child past this is killed at once: a failing run must not swamp a shared machine.
KILL_ABOVE_MB = 1024


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    rss_mb: float


def _high_water_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None  # gone, or a zombie whose memory is already released


def run_measured(
    argv: list[str], directory: Path, *, timeout: float, env: dict[str, str]
) -> Measured:
    """Run ``argv`` to its end (killed after ``timeout``); its output and peak RSS."""
    out_path, err_path = directory / "stdout.txt", directory / "stderr.txt"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env)  # noqa: S603
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(process.pid) or 0)
            if peak_kb > KILL_ABOVE_MB * 1024 or time.monotonic() - started > timeout:
                process.kill()
                process.wait()
                break
            time.sleep(0.05)
    return Measured(
        process.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        time.monotonic() - started,
        peak_kb / 1024,
    )
