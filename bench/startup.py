"""Start-up time of the CLI against the floor set by its own UI libraries.

Runs each command N times in fresh processes and prints the medians and the ratio of
``scim-readiness --help`` / ``checks`` to ``python -c "import typer, rich"``. The floor is
what any Typer+Rich CLI pays; the ratio shows what this tool adds on top.

    python bench/startup.py [-n RUNS]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import typer, rich' (floor)": [sys.executable, "-c", "import typer, rich"],
    "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    "scim-readiness --help": [sys.executable, "-m", "scim_readiness", "--help"],
    "scim-readiness checks": [sys.executable, "-m", "scim_readiness", "checks"],
}


def timed(argv: list[str]) -> float:
    env = {**os.environ, "SCIM_READINESS_DISABLE_PLUGIN_AUTOLOAD": "1"}
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, timeout=60)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    runs = parser.parse_args().runs
    for argv in COMMANDS.values():  # warm the file cache and bytecode
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=60)
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(runs):  # round-robin, so load on the machine hits every command alike
        for name, argv in COMMANDS.items():
            samples[name].append(timed(argv))
    results = {name: statistics.median(times) for name, times in samples.items()}
    floor = results["python -c 'import typer, rich' (floor)"]
    print(f"median of {runs} runs, Python {sys.version.split()[0]}")
    for name, seconds in results.items():
        print(f"  {name:<40} {seconds * 1000:7.1f} ms   x{seconds / floor:.2f}")


if __name__ == "__main__":
    main()
