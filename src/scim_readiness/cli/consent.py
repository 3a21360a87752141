"""Consent before changing production data: asked at a terminal, never off one.

Which runs are production is :func:`scim_readiness.guards.production_target`; this module
asks the person at the terminal and returns the options to run with.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from scim_readiness.config import Config
from scim_readiness.engine.registry import CheckSpec, discover
from scim_readiness.engine.registry import select as select_specs
from scim_readiness.engine.runner import RunOptions, plan
from scim_readiness.guards import production_target

# A prompt nobody answers is a "no", not a hang.
PROMPT_TIMEOUT_S = 300.0


def needs_consent(config: Config, options: RunOptions) -> bool:
    """True when mutating checks would be skipped for want of consent."""
    return (
        production_target(config) is not None
        and not options.read_only
        and not (options.yes or config.checks.allow_mutation)
    )


def mutating_checks(
    config: Config, options: RunOptions, specs: Sequence[CheckSpec]
) -> list[CheckSpec]:
    """The selected checks that change data and would run once consent is given."""
    chosen = select_specs(list(specs), options.only, options.skip)
    consenting = replace(options, yes=True)
    return [s for s, reason in plan(config, consenting, chosen) if s.info.mutates and not reason]


def _read_answer(stdin: TextIO, timeout_s: float) -> str:
    try:
        ready, _, _ = select.select([stdin], [], [], timeout_s)
    except (OSError, ValueError):
        ready = [stdin]  # not selectable (an unusual terminal): read without a bound
    if not ready:
        return ""
    return stdin.readline()


def confirm_mutation(
    config: Config,
    options: RunOptions,
    specs: Sequence[CheckSpec] | None = None,
    *,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
    timeout_s: float = PROMPT_TIMEOUT_S,
) -> RunOptions:
    """Ask on a terminal before changing production data; return the options to run with
    (``yes=True`` only after an explicit "yes"). Off a terminal nothing is asked."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if not needs_consent(config, options):
        return options
    if not (_isatty(stdin) and _isatty(stderr)):
        return options  # CI: the runner SKIPs the mutating checks and says why
    if specs is None:
        specs = discover()
    mutating = mutating_checks(config, options, specs)
    if not mutating:
        return options
    names = config.test_identities
    print(
        f"The target {config.target()} is a production environment "
        f"({production_target(config)}).\n"
        f"These checks create, change and then remove test identities there: "
        f"{', '.join(s.info.id for s in mutating)}.\n"
        f"Test users are named {names.name_prefix}+<run id>-…@{names.email_domain}; every one "
        "is recorded in the ledger before it is created and removed at the end.\n"
        "Allow this? Type 'yes' to allow; anything else runs the read-only checks only: ",
        file=stderr,
        end="",
        flush=True,
    )
    try:
        answer = _read_answer(stdin, timeout_s)
    except (OSError, EOFError):
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return replace(options, yes=True)
    print("\nnot allowed: the checks that change data will be SKIP", file=stderr)
    return options


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
