"""`scim-readiness demo`: the whole product on an embedded default, in seconds, offline.

Starts the emulator and the reference app on loopback, writes the config it uses to a
temporary file (secrets as ${VAR}), then runs the suite through exactly the code path of
`scim-readiness run`, prints the report and exits with the verdict.
"""

from __future__ import annotations

import shlex
import sys
import threading
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


def serve_demo(
    flaws: Sequence[str],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """`demo --serve`: keep the embedded stack up until Ctrl-C (or ``stop``), printing the
    config path and the env lines, so people can point their own tools at it.

    The secrets printed are the stack's own, made for this run and useless after it, shown
    on purpose (as `emulate` shows its own), because the config refers to them as ${VAR}.
    """
    from scim_readiness.devstack.demo_stack import start_stack, validate
    from scim_readiness.devstack.emulator.serve import _stop_on_sigterm
    from scim_readiness.devstack.emulator.state_dir import write_trust_bundle

    out, err = out or sys.stdout, err or sys.stderr
    chosen = validate(flaws)
    label = f" with flaw(s): {', '.join(chosen)}" if chosen else ""
    print(f"Starting a local Scalekit and the reference app on loopback{label}…", file=err)
    try:
        with start_stack(chosen) as stack:
            path = stack.write_config()
            ca = stack.ca_path
            print(f"Config: {path}", file=out)
            print("Secrets the config reads (this stack's own, made for this run):", file=out)
            # The same trust lines as `emulate`: the variables that replace a client's whole
            # store get the system's CAs plus the stack's; Node's adds to its own.
            bundle = str(write_trust_bundle(stack.emulator.ca, stack.emulator.ca.directory))
            env = {
                **stack.secrets_env(),
                "SSL_CERT_FILE": bundle,
                "REQUESTS_CA_BUNDLE": bundle,
                "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": bundle,
                "NODE_EXTRA_CA_CERTS": ca,
                "NO_PROXY": "localhost,127.0.0.1",
            }
            for name, value in env.items():
                print(f"export {name}={shlex.quote(value)}", file=out)
            print("", file=out)
            run = f"scim-readiness run -c {shlex.quote(str(path))} --ca-bundle {shlex.quote(ca)}"
            print(f"Then, in that shell: {run}", file=out)
            print("(or, with the lines above exported, without --ca-bundle)", file=out)
            _stop_on_sigterm()  # before the prompt, which says we are ready for it
            print("Press Ctrl-C to stop (the stack and its files go away).", file=out, flush=True)
            waiting = stop or threading.Event()
            while not waiting.wait(0.5):
                pass
    except KeyboardInterrupt:
        print("\nstopped.", file=out)
    return 0
