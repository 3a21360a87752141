"""The group → role logic: coverage of the config by the directory, and expected app roles."""

from __future__ import annotations

import pytest
from scim_readiness.checks.group_roles.role_mapping import (
    DirectoryRoles,
    IssueKind,
    assess_coverage,
    distinct_role_groups,
    expected_app_roles,
)

from scim_readiness.config import RolesSection

DIRECTORY = DirectoryRoles(
    groups={"g1": "Engineering", "g2": "Admins", "g3": "Finance", "g4": "Support"},
    assignments=(("g1", "editor"), ("g2", "admin"), ("g3", "accountant"), ("g4", "ghost")),
    roles=frozenset({"admin", "editor", "viewer", "accountant"}),
)


def kinds(config_map: dict[str, str]) -> list[tuple[IssueKind, str]]:
    return [(i.kind, i.group) for i in assess_coverage(config_map, DIRECTORY).issues]


def test_configured_groups_that_match_are_covered() -> None:
    coverage = assess_coverage(
        {"Engineering": "editor", "Admins": "admin", "Finance": "accountant", "Support": "ghost"},
        DIRECTORY,
    )
    assert coverage.covered == ("Engineering", "Admins", "Finance")
    assert [(i.kind, i.group, i.role) for i in coverage.issues] == [
        (IssueKind.UNKNOWN_ROLE, "Support", "ghost")
    ]


def test_each_kind_of_gap_is_named() -> None:
    assert kinds({"Engineering": "admin", "Sales": "viewer", "Admins": "admin"}) == [
        (IssueKind.WRONG_ROLE, "Engineering"),
        (IssueKind.GROUP_NOT_IN_DIRECTORY, "Sales"),
        # Mapped in the directory, unknown to the config; Support's role does not exist either.
        (IssueKind.UNCONFIGURED_GROUP, "Finance"),
        (IssueKind.UNCONFIGURED_GROUP, "Support"),
        (IssueKind.UNKNOWN_ROLE, "Support"),
    ]
    unassigned = DirectoryRoles({"g1": "Engineering"}, (), frozenset({"editor"}))
    issues = assess_coverage({"Engineering": "editor"}, unassigned).issues
    assert [(i.kind, i.is_failure) for i in issues] == [(IssueKind.NO_ASSIGNMENT, True)]


@pytest.mark.parametrize(
    ("roles", "config", "expected"),
    [
        (["editor", "admin"], RolesSection(), {"editor", "admin"}),
        ([], RolesSection(), set()),
        ([], RolesSection(default_role="viewer"), {"viewer"}),
        (["editor"], RolesSection(default_role="viewer"), {"editor"}),
        (
            ["editor", "admin"],
            RolesSection(combine="highest", precedence=("admin", "editor")),
            {"admin"},
        ),
        # Roles the precedence does not rank come last, in event order.
        (["viewer", "owner"], RolesSection(combine="highest", precedence=("admin",)), {"viewer"}),
    ],
)
def test_expected_app_roles(roles: list[str], config: RolesSection, expected: set[str]) -> None:
    assert expected_app_roles(roles, config) == frozenset(expected)


def test_two_groups_with_different_roles_are_preferred() -> None:
    candidates = [("a", "A", "editor"), ("b", "B", "editor"), ("c", "C", "admin")]
    assert distinct_role_groups(candidates) == [("a", "A", "editor"), ("c", "C", "admin")]
    assert distinct_role_groups(candidates[:2]) == [("a", "A", "editor"), ("b", "B", "editor")]
