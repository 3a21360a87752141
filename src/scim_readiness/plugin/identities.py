"""Test identities that look like people and that nobody can mistake for them.

Every user, group and event a mutating check creates is named from the run id, a
configurable prefix and a reserved email domain (``.invalid`` never resolves), so a stray
record in production is recognisable at a glance and findable by ``cleanup``. Within those
marks a test user looks like a real person would to the app: a given and family name with
an apostrophe, hyphens or a long form, a mixed-case local part and plus-addressing; the
``international`` ones carry accents and CJK. Cleanup trusts none of that: it reads only
the run id, the prefix and the reserved domain, compared without regard to case.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_readiness.plugin.ledger import LedgerEntry

_LABEL = re.compile(r"[^a-z0-9-]+")
# The one shape of run id this tool makes (see new_run_id). Cleanup acts only on ledger lines
# whose run id has it: a line naming any other string (an organisation, a company) as its run
# cannot make a real person look like a test identity.
RUN_ID = re.compile(r"sr[0-9a-f]{10}")
# Chosen once per process: every process numbers its events from 1, and a second process of
# the same run (``cleanup``) must not repeat the run's ids, or an app that (rightly) drops
# replayed webhook-ids would answer 200 and ignore the removal.
_PROCESS_TAG = secrets.token_hex(3)


# The people test users are named after: names naive code gets wrong. Every check's users
# take plain-ASCII ones (an apostrophe, hyphens, a long name); ``international`` users
# (user-lifecycle's) take accents and CJK, so an app that cannot store them fails in the
# one check that follows a person from arrival to departure.
_PEOPLE = (
    ("Siobhan", "O'Connor"),
    ("Anne-Marie", "Smith-Okafor"),
    ("Maximiliana Theodora", "Wolfeschlegelsteinhausen-Bergerdorff"),
    ("D'Arcy", "MacAllister-Lee"),
)
_INTERNATIONAL_PEOPLE = (
    ("Zoë", "Ødegård-Núñez"),
    ("美咲", "佐藤"),
    ("Siobhán", "Ó Briain"),
    ("José María", "Łukasiewicz-Dvořák"),
)


def is_run_id(text: str) -> bool:
    """Whether ``text`` is a run id this tool could have made."""
    return RUN_ID.fullmatch(text) is not None


def new_run_id() -> str:
    """Short, sortable enough, unique: ``sr`` + 10 hex characters."""
    return "sr" + secrets.token_hex(5)


@dataclass(frozen=True, slots=True)
class TestIdentity:
    __test__ = False

    label: str
    directory_user_id: str  # diruser_…, as Scalekit would name it
    dp_id: str  # the IdP's own id
    email: str
    given_name: str
    family_name: str

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def username(self) -> str:
        return self.email


@dataclass(frozen=True, slots=True)
class TestIdentities:
    __test__ = False

    run_id: str
    email_domain: str = "scim-readiness.example.invalid"
    name_prefix: str = "zz-scim-readiness"

    def user(self, label: str, *, international: bool = False) -> TestIdentity:
        """The test user for ``label``: ``<prefix>+<run id>-<Label>@<reserved domain>`` (the
        label's words capitalised, as people type addresses), named after a person whose
        family name ends with the same marks."""
        slug = _LABEL.sub("-", label.lower()).strip("-") or "user"
        local = f"{self.name_prefix}+{self.run_id}-{slug.title()}"
        people = _INTERNATIONAL_PEOPLE if international else _PEOPLE
        given, family = people[zlib.crc32(slug.encode()) % len(people)]
        return TestIdentity(
            label=slug,
            directory_user_id=f"diruser_{self.run_id}{slug.replace('-', '')}"[:64],
            dp_id=f"{self.run_id}-{slug}",
            email=f"{local}@{self.email_domain}",
            given_name=given,
            family_name=f"{family} {self.name_prefix}-{self.run_id}-{slug}",
        )

    def group_id(self, label: str) -> str:
        slug = _LABEL.sub("", label.lower()) or "group"
        return f"dirgroup_{self.run_id}{slug}"[:64]

    def group_name(self, label: str) -> str:
        return f"{self.name_prefix}-{self.run_id}-{label}"

    def event_id(self, seq: int) -> str:
        """``evt_<run id><process tag><seq>``: recognisable as the run's, unique across the
        processes that send events for it."""
        return f"evt_{self.run_id}{_PROCESS_TAG}{seq:06d}"

    def is_test_email_of_run(self, email: str) -> bool:
        """Whether ``email`` is exactly how :meth:`user` names a test user of *this* run:
        ``<prefix>+<run id>-…@<reserved domain>`` (case-insensitive)."""
        local, at, domain = email.lower().rpartition("@")
        return (
            bool(at)
            and domain == self.email_domain.lower()
            and local.startswith(f"{self.name_prefix.lower()}+{self.run_id.lower()}-")
        )

    def is_test_group_name_of_run(self, display_name: str) -> bool:
        """Whether ``display_name`` is how :meth:`group_name` names a group of this run."""
        return display_name.startswith(f"{self.name_prefix}-{self.run_id}-")

    def proves(self, entry: LedgerEntry) -> bool:
        """Whether a ledger line's own names prove a test identity under this naming (see
        :func:`refusal_reason`). Every removal path filters what it reads from the ledger
        with this, so a forged line sharing a genuine line's run and check is never acted on."""
        return refusal_reason(entry, self.name_prefix, self.email_domain) is None

    def is_test_email(self, email: str) -> bool:
        return email.lower().endswith("@" + self.email_domain.lower()) and email.lower().startswith(
            self.name_prefix.lower() + "+"
        )


def refusal_reason(entry: LedgerEntry, name_prefix: str, email_domain: str) -> str | None:
    """Why the ledger line ``entry`` must not be acted on, or None when its own names prove
    it is a test identity of this tool.

    The ledger is a file in the workspace: anyone who can write it can write any line. So
    nothing on the line is believed unless it has the exact shapes this tool gives its test
    identities, all tied to one run id of the tool's own format: ``sr`` + 10 hex digits;
    the email ``<prefix>+<run id>-…@<reserved domain>``; a directory user id
    ``diruser_<run id>…`` or group id ``dirgroup_<run id>…`` for what the checker named
    itself (events); a group name ``<prefix>-<run id>-…``. An id that a directory assigned
    (SCIM) proves nothing by its name, so those are confirmed against the live object
    before removal (:func:`live_refusal`).
    """
    if not is_run_id(entry.run_id):
        return f"its run id {entry.run_id[:40]!r} is not one this tool makes (sr + 10 hex digits)"
    if entry.kind == "event":
        return None
    names = TestIdentities(entry.run_id, email_domain=email_domain, name_prefix=name_prefix)
    details = entry.details
    if entry.kind == "user":
        email = str(details.get("email") or "")
        if details.get("lookup") == "userName" and email != entry.object_id:
            return "its userName and email disagree"
        if not names.is_test_email_of_run(email):
            return (
                f"its email is not a test identity of run {entry.run_id} "
                f"({name_prefix}+{entry.run_id}-…@{email_domain})"
            )
        if entry.channel == "events" and not entry.object_id.startswith(f"diruser_{entry.run_id}"):
            return f"its directory user id is not named after run {entry.run_id}"
        return None
    display_name = str(details.get("display_name") or "")
    if details.get("lookup") == "displayName" and display_name != entry.object_id:
        return "its displayName lookup and display name disagree"
    if not names.is_test_group_name_of_run(display_name):
        return f"its group name is not a test group of run {entry.run_id}"
    if entry.channel == "events" and not entry.object_id.startswith(f"dirgroup_{entry.run_id}"):
        return f"its directory group id is not named after run {entry.run_id}"
    return None
