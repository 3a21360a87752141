"""Finding codes: the engine's own catalogue (``RUN``), the check of every check's catalogue
at registration, and the one look-up ``explain``, the waivers and the docs use.

A check declares its codes in ``CheckInfo.codes`` (see ``plugin.contract.FindingCode``); the
findings the runner records itself (not configured, read-only, blocked, timed out,
unreachable, interrupted, internal error) carry ``RUN`` codes from :data:`ENGINE_CODES`,
whichever check they are about.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scim_readiness.engine.registry import ENGINE, ENGINE_PREFIX, validate_catalogues
from scim_readiness.errors import did_you_mean
from scim_readiness.plugin.contract import CheckInfo, FindingCode

__all__ = ["ENGINE", "ENGINE_CODES", "ENGINE_PREFIX", "catalogue", "validate_catalogues"]

SKIPPED_BY_FLAG = "RUN001"
DISABLED = "RUN002"
NOT_CONFIGURED = "RUN003"
READ_ONLY = "RUN004"
NO_CONSENT = "RUN005"
BLOCKED = "RUN006"
BUDGET_USED_UP = "RUN007"
TIMED_OUT = "RUN008"
DELIVERY_REFUSED = "RUN009"
UNREACHABLE = "RUN010"
CHECK_STOPPED = "RUN011"
INTERNAL_ERROR = "RUN012"
INTERRUPTED = "RUN013"
CLEANUP = "RUN014"
NOTHING_RECORDED = "RUN015"
LEFT_BEHIND = "RUN016"

_RERUN = "Fix the cause the finding names, then run again."

ENGINE_CODES: tuple[FindingCode, ...] = (
    FindingCode(
        SKIPPED_BY_FLAG,
        "The check was left out with --skip",
        "A check left out evaluates nothing: its checklist item stays unevaluated, and the "
        "verdict says so instead of passing it.",
        "Drop --skip ID to run it, or also pass --accept-skip ID to accept the gap.",
    ),
    FindingCode(
        DISABLED,
        "The check is disabled in the config",
        "A disabled check evaluates nothing, so its checklist item is not evaluated.",
        "Set checks.<id>.enabled: true (or remove the line).",
    ),
    FindingCode(
        NOT_CONFIGURED,
        "A config section the check needs is absent",
        "Without the section the check has nothing to look at; it is SKIP, never a silent pass.",
        "Add the section the finding names (see readiness.example.yaml).",
    ),
    FindingCode(
        READ_ONLY,
        "Read-only run: a check that must change data did not run",
        "The check creates and removes test users; a read-only run changes nothing, so the "
        "item is not evaluated.",
        "Run without --read-only (against a target where test users may be created), or "
        "accept the gap with --accept-skip mutating.",
    ),
    FindingCode(
        NO_CONSENT,
        "Production target: a check that must change data was not allowed to",
        "Against a production environment the tool creates test users only with consent.",
        "Pass --yes, or set checks.allow_mutation: true, to let it create and remove clearly "
        "named test identities.",
    ),
    FindingCode(
        BLOCKED,
        "Blocked by a failed prerequisite (preflight)",
        "When the webhook, the probe or the Scalekit token fails the preflight, every check "
        "that needs it would report the same root cause as its own defect; it is reported "
        "once, and these checks are not run.",
        "Fix the prerequisite the finding names (the preflight's own finding says how).",
    ),
    FindingCode(
        BUDGET_USED_UP,
        "Not started: the run's time budget was used up",
        "The check never ran, so its item is not evaluated.",
        "Raise --timeout (or checks.timeout_s), or select fewer checks with --only.",
    ),
    FindingCode(
        TIMED_OUT,
        "The check did not finish in time",
        "What the check was still waiting for is unknown, so its item is not evaluated.",
        "Raise checks.<id>.timeout_s if the target is just slow, or --timeout for the run.",
    ),
    FindingCode(
        DELIVERY_REFUSED,
        "A delivery the tool refuses to send",
        "The tool never sends a signed delivery where it would be unsafe (for example plain "
        "http:// to a production host), so what needed it was not evaluated.",
        "Use an https:// webhook URL, or the setting the finding names.",
    ),
    FindingCode(
        UNREACHABLE,
        "The target could not be reached",
        "No answer came back, so nothing about this item could be observed; the fault is the "
        "network's or the target's, not a finding about the app.",
        "Check that the target is up and reachable from here, then run again.",
    ),
    FindingCode(
        CHECK_STOPPED,
        "The check stopped on a problem it reported",
        "A configuration or target problem stopped the check before it could judge the item.",
        _RERUN,
    ),
    FindingCode(
        INTERNAL_ERROR,
        "Internal error in a check or the runner",
        "The tool itself failed, so this item could not be evaluated.",
        "Rerun with --debug for a traceback and report it to the check's author.",
    ),
    FindingCode(
        INTERRUPTED,
        "The run was interrupted",
        "Ctrl-C or a termination signal stopped the run; what was observed before is kept.",
        "Run again; `scim-readiness cleanup` lists test data an interrupted run left behind.",
    ),
    FindingCode(
        CLEANUP,
        "A check's cleanup did not finish",
        "Test data the check created may still be in the app or the directory.",
        "Run `scim-readiness cleanup` to list and remove what may be left behind.",
    ),
    FindingCode(
        NOTHING_RECORDED,
        "The check recorded no findings",
        "Nothing was verified, so the check is SKIP, never PASS.",
        "Report it to the check's author: a check records what it observed.",
    ),
    FindingCode(
        LEFT_BEHIND,
        "Test objects could not be removed after the run",
        "Test identities left in the app or the directory look like real accounts to anyone "
        "who does not know their naming scheme, and may keep access.",
        "Fix what the reasons name, then run `scim-readiness cleanup` with the same config.",
    ),
)


@dataclass(frozen=True, slots=True)
class CodeEntry:
    """One code of the whole catalogue and whose it is (a check id, or :data:`ENGINE`)."""

    owner: str
    code: FindingCode


def catalogue(infos: Iterable[CheckInfo]) -> list[CodeEntry]:
    """Every code: each check's in its order, then the engine's."""
    entries = [CodeEntry(info.id, code) for info in infos for code in info.codes]
    return entries + [CodeEntry(ENGINE, code) for code in ENGINE_CODES]


def find_code(entries: Sequence[CodeEntry], code: str) -> CodeEntry | None:
    wanted = code.strip().upper()
    return next((entry for entry in entries if entry.code.code == wanted), None)


def unknown_code_hint(entries: Sequence[CodeEntry], code: str) -> str:
    """`` (did you mean 'SIG003'?)`` for a mistyped code, else an empty string."""
    return did_you_mean(code.strip().upper(), [entry.code.code for entry in entries])


def describe(entry: CodeEntry, check_title: str = "") -> list[str]:
    """What ``scim-readiness explain CODE`` prints: the code, whose it is, what it tests, why
    it matters, how to fix a failure, and where to read more."""
    code = entry.code
    owner = "the engine (any check)" if entry.owner == ENGINE else entry.owner
    if check_title:
        owner += f" ({check_title})"
    lines = [
        code.code,
        f"  check:  {owner}",
        f"  tests:  {code.title}",
        f"  why:    {code.why}",
        f"  fix:    {code.fix}",
    ]
    if code.docs_url:
        lines.append(f"  docs:   {code.docs_url}")
    return lines


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def catalogue_markdown(infos: Sequence[CheckInfo]) -> str:
    """docs/codes.md: every check's codes, then the engine's, as tables."""
    lines = [
        "# Finding codes",
        "",
        "<!-- generated by tools/codes_doc.py from the checks' catalogues; edit those -->",
        "",
        "Every finding carries a stable code: the same code for the PASS and the FAIL of one "
        "assertion, never renumbered. `scim-readiness explain CODE` prints one entry; a waiver "
        "(`waivers:` in readiness.yaml) names one.",
        "",
    ]
    sections = [(f"`{info.id}`: {info.title}", info.codes) for info in infos]
    sections.append((f"{ENGINE}: the runner's own findings, for any check", ENGINE_CODES))
    for heading, entries in sections:
        lines += [f"## {heading}", ""]
        if not entries:
            lines += ["No codes declared yet.", ""]
            continue
        lines += ["| code | tests | why it matters | how to fix |", "|---|---|---|---|"]
        for entry in entries:
            tests = _cell(entry.title)
            if entry.docs_url:
                tests += f" ([docs]({entry.docs_url}))"
            lines.append(f"| {entry.code} | {tests} | {_cell(entry.why)} | {_cell(entry.fix)} |")
        lines.append("")
    return "\n".join(lines)
