"""The production guard: nothing changes production data without someone saying so.

A run targets production when ``scalekit.expect`` says so *or* the environment URL is one
(the stricter of the two: a config saying ``development`` next to a ``*.scalekit.com`` URL is
a production run; see :func:`production_target`). Then checks that create test identities run
only with consent: ``--yes``, ``checks.allow_mutation: true`` in the config, or a "yes" typed
at the prompt this module shows when stdin and stderr are a terminal. Without consent (always
the case in CI without the flag or the setting) the runner records those checks as SKIP with
the reason; ``--read-only`` never asks and never mutates.

Against a production target nothing signed ever goes over plain ``http://``, consent or not:
a valid signature seen on the wire can be replayed for five minutes.
:func:`refuse_plain_http_signing` is that rule; the webhook senders call it before every
signed delivery.
"""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from scim_readiness.config import Config, Expect
from scim_readiness.errors import DeliveryRefused

if TYPE_CHECKING:
    from scim_readiness.engine.runner import RunOptions
    from scim_readiness.plugin.contract import CheckSpec

# A prompt nobody answers is a "no", not a hang.
PROMPT_TIMEOUT_S = 300.0


def production_target(config: Config) -> str | None:
    """Why this run's target counts as production (None: it does not).

    The stricter of ``scalekit.expect`` and the tool's own reading of the environment URL
    wins, so a wrong ``expect`` can never lower the guard. A URL that cannot be classified
    counts as production: nothing shows that it is not.
    """
    from scim_readiness.environment_url import UrlClass, classify_environment_url

    if config.scalekit.expect is Expect.PRODUCTION:
        return "expect: production"
    url = config.scalekit.environment_url
    if not url:
        return None
    verdict = classify_environment_url(url)
    if verdict.url_class is UrlClass.PRODUCTION:
        return (
            f"the environment URL is a production environment ({verdict.reason}), "
            f"stricter than expect: {config.scalekit.expect.value}"
        )
    if verdict.url_class is UrlClass.INVALID:
        return (
            f"the environment URL cannot be classified ({verdict.reason}), so it is treated "
            f"as production, stricter than expect: {config.scalekit.expect.value}"
        )
    return None


def refuse_plain_http_signing(config: Config, url: str) -> None:
    """Raise :class:`DeliveryRefused` when a signed delivery to ``url`` would cross the wire
    in clear text towards a production target."""
    from urllib.parse import urlsplit

    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return  # not a URL: the HTTP client refuses it with its own message
    if scheme == "https":
        return
    why = production_target(config)
    if why is None:
        return
    raise DeliveryRefused(
        f"nothing signed was sent: the webhook URL uses {scheme or 'no'}:// (not https://) "
        f"and the target is production ({why})",
        hint="register and configure the https:// URL of the webhook endpoint; a signature "
        "seen in clear text can be replayed for five minutes",
    )


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
    from scim_readiness.engine.registry import select as select_specs
    from scim_readiness.engine.runner import plan

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
        from scim_readiness.engine.registry import discover

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
