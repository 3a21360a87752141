"""Start-up time of the CLI against the floor set by its own UI libraries.

Runs each command N times in fresh processes, round-robin (so load on the machine hits every
command alike), and prints the best and the median wall time of each, and the ratio of
``scim-readiness --help`` / ``checks`` to ``python -c "import typer, rich"`` (the target's
floor). A minimal Typer app of the same shape is measured alongside: importing Typer is not
all a Typer command pays (it also parses options and, for ``checks``, imports Rich's console
to draw a table), so that app shows what this tool adds on top of any CLI built the same way.

Start-up noise on a shared machine only ever adds time, so the best of N is the steadier
figure; both are printed. Third-party check discovery stays on, as users run it.

    python bench/startup.py [-n RUNS] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from wall_clock import wall_time

#: The smallest Typer app of the same shape (a callback with flags, a command with options
#: that prints a Rich table): what any CLI on this Typer pays to parse options and render.
MINIMAL_TYPER_APP = """
from typing import Annotated
import typer
app = typer.Typer()
@app.callback()
def root(debug: Annotated[bool, typer.Option("--debug")] = False) -> None:
    pass
@app.command()
def checks(fmt: Annotated[str, typer.Option("--format")] = "rich") -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table("check", "title")
    for n in range(8):
        table.add_row(f"check-{n}", "a title")
    Console().print(table)
@app.command()
def other() -> None:
    pass
app()
"""

FLOOR = "python -c 'import typer, rich' (floor)"


def commands(minimal_app: Path) -> dict[str, list[str]]:
    py = sys.executable
    return {
        FLOOR: [py, "-c", "import typer, rich"],
        "minimal Typer app --help": [py, str(minimal_app), "--help"],
        "minimal Typer app checks": [py, str(minimal_app), "checks"],
        "scim-readiness --help": [py, "-m", "scim_readiness", "--help"],
        "scim-readiness checks": [py, "-m", "scim_readiness", "checks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        minimal_app = Path(scratch) / "minimal_typer_app.py"
        minimal_app.write_text(MINIMAL_TYPER_APP)
        argvs = commands(minimal_app)
        for argv in argvs.values():  # warm the file cache and bytecode
            wall_time(argv)
        samples: dict[str, list[float]] = {name: [] for name in argvs}
        for _ in range(args.runs):
            for name, argv in argvs.items():
                samples[name].append(wall_time(argv))
    best = {name: min(times) for name, times in samples.items()}
    median = {name: statistics.median(times) for name, times in samples.items()}
    print(f"{args.runs} runs each, Python {sys.version.split()[0]}; ratios to the floor")
    print(f"  {'command':<42} {'best':>8} {'median':>9}   {'x best':>6} {'x median':>8}")
    for name in argvs:
        print(
            f"  {name:<42} {best[name] * 1000:6.1f} ms {median[name] * 1000:6.1f} ms   "
            f"x{best[name] / best[FLOOR]:5.2f} x{median[name] / median[FLOOR]:7.2f}"
        )
    for command in ("--help", "checks"):
        ours, same_shape = f"scim-readiness {command}", f"minimal Typer app {command}"
        print(
            f"  {ours} over the minimal Typer app's: x{best[ours] / best[same_shape]:.2f} best, "
            f"x{median[ours] / median[same_shape]:.2f} median"
        )
    if args.json:
        print(json.dumps({"best_s": best, "median_s": median, "floor": FLOOR}))


if __name__ == "__main__":
    main()
