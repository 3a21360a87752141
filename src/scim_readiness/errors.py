"""One exception hierarchy for the whole tool, and the exit codes it maps to.

Errors are raised anywhere and caught once, at the CLI edge, where they become a short
message on stderr and an exit code. Messages say what went wrong, where, and how to fix it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    READY = 0
    NOT_READY = 1  # a check FAILed (or WARNed with --fail-on warn)
    USAGE = 2  # bad flags or config
    INCOMPLETE = 3  # a check could not be evaluated (ERROR): network down, tool fault
    # Nothing failed or errored, but a checklist item was not evaluated (SKIP, read-only,
    # not selected) and the user did not accept that with --accept-skip.
    NOT_EVALUATED = 4
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; cleanup ran and a partial report was written


class ReadinessError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code: ExitCode = ExitCode.INCOMPLETE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(ReadinessError):
    """Bad flags or conflicting options."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """The config file is missing, unreadable, malformed or invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        line: int | None = None,
        key: str = "",
        hint: str = "",
    ) -> None:
        where = path
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        if key:
            where = f"{where} ({key})" if where else key
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path = path
        self.line = line
        self.key = key


class PluginError(UsageError):
    """A check plugin is broken or clashes with another (duplicate id)."""


class TargetError(ReadinessError):
    """A target (Scalekit, the app, the probe) could not be reached or answered nonsense.

    Checks normally turn these into ERROR findings; raised past a check, the runner does.
    """


class ScalekitError(TargetError):
    """Talking to the Scalekit environment failed."""


class ScalekitAuthError(ScalekitError):
    """The environment refused the client credentials."""


class ProbeError(TargetError):
    """The probe (the app's read-only view of its own state) failed."""


class DeliveryRefused(ReadinessError):
    """A safety rule forbids a delivery (a signed event over plain HTTP to production).

    Nothing was sent, so nothing was observed: the runner records the check as SKIP with
    this reason.
    """


class Interrupted(ReadinessError):
    exit_code = ExitCode.INTERRUPTED


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean \'x\'?)' for the closest of ``choices``, or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
