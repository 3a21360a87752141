"""Wall time of one command in a fresh process, without the timer's own error.

``subprocess.run(..., timeout=T)`` waits by polling with sleeps that grow to 50 ms, so a
command's measured time lands up to 50 ms late, in steps (seen here as 64, 114 and 164 ms
for the same command). A blocking ``wait()`` returns when the child exits; a watchdog
timer still kills a command that hangs, so every wait stays bounded.
"""

from __future__ import annotations

import subprocess
import threading
import time


def wall_time(argv: list[str], *, timeout: float = 60.0, check: bool = True) -> float:
    """Seconds from start to exit of ``argv`` (stdout and stderr discarded)."""
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and scripts
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    try:
        code = proc.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - started
    if code < 0 and not watchdog.is_alive() and elapsed >= timeout:
        raise TimeoutError(f"{argv[-1]!r} did not finish within {timeout:g} s")
    if check and code != 0:
        raise subprocess.CalledProcessError(code, argv)
    return elapsed
