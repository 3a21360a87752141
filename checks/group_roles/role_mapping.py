"""Group → role mapping: what Scalekit's role assignments say, what the config expects, and
which roles an app should hold for a given set of groups.

Pure logic, no I/O: the group-roles check feeds it what it read from Scalekit and the config.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scim_readiness.config import RolesSection


@dataclass(frozen=True, slots=True)
class DirectoryRoles:
    """The directory's groups and role assignments, and the roles the environment defines."""

    groups: Mapping[str, str]  # group id -> display name
    assignments: tuple[tuple[str, str], ...]  # (group id, role name)
    roles: frozenset[str]  # role names defined in the environment

    def groups_named(self, display_name: str) -> list[str]:
        return [gid for gid, name in self.groups.items() if name == display_name]

    def role_by_group_id(self) -> dict[str, str]:
        return dict(self.assignments)

    def role_by_group_name(self) -> dict[str, str]:
        return {self.groups[gid]: role for gid, role in self.assignments if gid in self.groups}


class IssueKind(enum.StrEnum):
    GROUP_NOT_IN_DIRECTORY = "group-not-in-directory"
    NO_ASSIGNMENT = "no-assignment"
    WRONG_ROLE = "wrong-role"
    UNKNOWN_ROLE = "unknown-role"
    UNCONFIGURED_GROUP = "unconfigured-group"


@dataclass(frozen=True, slots=True)
class CoverageIssue:
    kind: IssueKind
    group: str  # display name (or the group id when the directory does not know it)
    role: str | None = None  # the role the directory assigns
    expected_role: str | None = None  # the role the config expects

    @property
    def is_failure(self) -> bool:
        return self.kind is not IssueKind.UNCONFIGURED_GROUP


@dataclass(frozen=True, slots=True)
class Coverage:
    covered: tuple[str, ...]  # configured groups whose assignment matches the config
    issues: tuple[CoverageIssue, ...]


def assess_coverage(config_map: Mapping[str, str], directory: DirectoryRoles) -> Coverage:
    """Compare the config's group → role map with the directory's role assignments.

    Every configured group must exist, carry an assignment, to the configured role, which must
    exist in the environment; an assignment for a group the config does not name is reported
    separately (it is not wrong, but the config does not describe it).
    """
    by_id = directory.role_by_group_id()
    covered: list[str] = []
    issues: list[CoverageIssue] = []
    configured_ids: set[str] = set()
    for group_name, expected_role in config_map.items():
        ids = directory.groups_named(group_name)
        configured_ids.update(ids)
        if not ids:
            issues.append(
                CoverageIssue(IssueKind.GROUP_NOT_IN_DIRECTORY, group_name, None, expected_role)
            )
            continue
        assigned = [by_id[gid] for gid in ids if gid in by_id]
        if not assigned:
            issues.append(CoverageIssue(IssueKind.NO_ASSIGNMENT, group_name, None, expected_role))
            continue
        role = assigned[0]
        if role not in directory.roles:
            issues.append(CoverageIssue(IssueKind.UNKNOWN_ROLE, group_name, role, expected_role))
        elif role != expected_role:
            issues.append(CoverageIssue(IssueKind.WRONG_ROLE, group_name, role, expected_role))
        else:
            covered.append(group_name)
    for group_id, role in directory.assignments:
        if group_id in configured_ids:
            continue
        name = directory.groups.get(group_id, group_id)
        issues.append(CoverageIssue(IssueKind.UNCONFIGURED_GROUP, name, role))
        if role not in directory.roles:
            issues.append(CoverageIssue(IssueKind.UNKNOWN_ROLE, name, role))
    return Coverage(tuple(covered), tuple(issues))


def expected_app_roles(event_roles: Sequence[str], config: RolesSection) -> frozenset[str]:
    """The roles an app following the config holds for a user whose events carry
    ``event_roles``: all of them (``combine: all``), or the one ranked highest by
    ``precedence`` (``combine: highest``; unranked roles rank last, in event order); the
    ``default_role`` (or none) when the user is in no mapped group."""
    if not event_roles:
        return frozenset({config.default_role}) if config.default_role else frozenset()
    if config.combine == "all":
        return frozenset(event_roles)
    rank = {role: index for index, role in enumerate(config.precedence)}
    best = min(enumerate(event_roles), key=lambda item: (rank.get(item[1], len(rank)), item[0]))
    return frozenset({best[1]})


def distinct_role_groups(
    candidates: Iterable[tuple[str, str, str]], limit: int = 2
) -> list[tuple[str, str, str]]:
    """Up to ``limit`` (group id, display name, role) candidates, preferring distinct roles so
    that combining two groups is observable."""
    chosen: list[tuple[str, str, str]] = []
    rest: list[tuple[str, str, str]] = []
    for candidate in candidates:
        if all(candidate[2] != other[2] for other in chosen):
            chosen.append(candidate)
        else:
            rest.append(candidate)
    return (chosen + rest)[:limit]
