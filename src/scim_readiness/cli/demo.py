"""`scim-readiness demo`: the whole product on an embedded default, in seconds, offline.

Starts the emulator and the reference app on loopback, writes the config it uses to a
temporary file (secrets as ${VAR}), then runs the suite through exactly the code path of
`scim-readiness run`, prints the report and exits with the verdict.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from scim_readiness.cli.run import OutputOptions
from scim_readiness.engine.runner import RunOptions


def list_flaws(out: TextIO) -> int:
    from scim_readiness.devstack.demo_stack import all_flaws

    flaws = all_flaws()
    width = max(len(name) for name in flaws)
    print("Flaws for `scim-readiness demo --flaw NAME` (each should fail one check):", file=out)
    for name, flaw in sorted(flaws.items(), key=lambda item: (item[1].check, item[0])):
        print(f"  {name:<{width}}  {flaw.check:<17} {flaw.description}", file=out)
    return 0


def run_demo(
    flaws: Sequence[str],
    options: RunOptions,
    outputs: OutputOptions,
    *,
    show_config: bool = False,
    err: TextIO | None = None,
) -> int:
    from dataclasses import replace

    from scim_readiness.cli.run import execute
    from scim_readiness.devstack.demo_stack import start_stack, validate
    from scim_readiness.engine.config_file import load_config

    err = err or sys.stderr
    chosen = validate(flaws)  # a bad flaw name is a usage error before anything starts
    if chosen:
        label = f" with flaw(s): {', '.join(chosen)}"
    elif options.read_only:
        label = " (read-only: expect 5 of 8 items evaluated, none failed)"
    else:
        label = " (no flaws: expect READY)"
    print(f"Starting a local Scalekit and the reference app on loopback{label}…", file=err)
    with start_stack(chosen) as stack:
        path = stack.write_config()
        if show_config:
            # Secrets are ${VAR} references in this file, so it can be shown as it is.
            print(f"--- config ({path.name}) ---", file=err)
            print(path.read_text(), file=err)
        config = load_config(path)
        # The stack's CA signs both local servers; trusting it is what --ca-bundle is for.
        options = replace(options, ca_bundle=stack.ca_path, yes=True)
        return execute(config, options, outputs)
