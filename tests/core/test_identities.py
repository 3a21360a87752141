"""Test users look like people (names naive code gets wrong, mixed-case plus-addressed
emails) while every one stays provably a test identity of its run."""

from __future__ import annotations

import pytest

from scim_readiness.plugin.identities import TestIdentities, new_run_id, refusal_reason
from scim_readiness.plugin.ledger import LedgerEntry

LABELS = ["lifecycle", "roles", "sig-replay", "bad-email-owner", "bad-case-claimant", "x"]


@pytest.fixture
def names() -> TestIdentities:
    return TestIdentities(run_id=new_run_id())


def test_names_look_like_people_and_carry_the_run_marks(names: TestIdentities) -> None:
    people = [names.user(label) for label in LABELS]
    for person in people:
        assert person.given_name != names.name_prefix
        assert person.family_name.endswith(f" {names.name_prefix}-{names.run_id}-{person.label}")
        assert person.name.isascii()  # only international users carry non-ASCII names
    families = {p.family_name.split(" ")[0] for p in people}
    assert len(families) > 1  # not one name for everybody
    assert any("'" in p.name for p in people) and any("-" in p.given_name for p in people)


def test_international_users_carry_accents_or_cjk(names: TestIdentities) -> None:
    people = [names.user(label, international=True) for label in LABELS]
    assert all(not person.name.isascii() for person in people)


def test_emails_are_mixed_case_plus_addressed_and_recognised_in_any_case(
    names: TestIdentities,
) -> None:
    person = names.user("bad-email-owner")
    local, _, domain = person.email.partition("@")
    assert domain == names.email_domain
    assert local == f"{names.name_prefix}+{names.run_id}-Bad-Email-Owner"
    assert names.is_test_email_of_run(person.email)
    assert names.is_test_email_of_run(person.email.swapcase())
    assert not TestIdentities(run_id=new_run_id()).is_test_email_of_run(person.email)


@pytest.mark.parametrize("international", [False, True])
def test_the_ledger_still_proves_each_identity(names: TestIdentities, international: bool) -> None:
    for label in LABELS:
        person = names.user(label, international=international)
        entry = LedgerEntry(
            run_id=names.run_id,
            state="created",
            at=0.0,
            kind="user",
            object_id=person.directory_user_id,
            channel="events",
            check_id="user-lifecycle",
            details={"email": person.email, "given_name": person.given_name},
        )
        assert refusal_reason(entry, names.name_prefix, names.email_domain) is None
        assert names.proves(entry)
