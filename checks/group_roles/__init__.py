"""`group-roles`: group-based role assignment (checklist item 5).

Two sides:

* **Scalekit**: the directory's role assignments must cover every group of the config's
  ``roles.map`` with the configured role, and each assigned role must exist in the
  environment. An assignment for a group the config does not name is a warning.
* **The app** (through the probe): a test user, driven through signed events (option ``mode:
  events``) or the directory's SCIM endpoint (``mode: scim``), is created in no
  mapped group, joins a mapped group, joins a second one, leaves the first, leaves every
  mapped group, and (events mode) joins a test group that is then deleted. The mapped groups
  are the directory's own (in scim mode the test user really joins and leaves them); the test
  group is the only group created, and it and the user are removed at the end. After each change
  its roles in the app must be those the config describes: every role of its groups
  (``roles.combine: all``) or the highest by ``roles.precedence`` (``highest``), and
  ``roles.default_role`` (or none) in no mapped group.

A step whose change leaves the expected roles as they were (a role the user already holds, a
lower-ranked one under ``highest``, a group's role equal to the default role) cannot show
whether the app processed it: when the app shows those roles the step is SKIP "not
observable", never PASS; roles seen to differ still FAIL.

In events mode the checker computes ``roles`` as Scalekit would from the directory's role
assignments; when those cannot be read it falls back to the config map and says so. The test
group stands in, in events mode, for a group mapped to the first group's role, joined from no
mapped group so that joining it gives a role and deleting it must take that role away. In scim
mode Scalekit decides, and a group new to the directory has no role: joining or deleting it
cannot move roles, so the test group is not made and its two steps are SKIP "not observable".

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * the directory's role assignments were read and compared with ``roles.map``;
  * the app side ran: a test user's roles were seen in the app after the membership changes,
    at least one of which moved the expected roles.

Statuses:
  PASS  assignments match the config and every observable app-side step showed the expected
        roles (the steps that are not observable are SKIP findings, named).
  WARN  the directory maps groups the config does not mention.
  FAIL  a configured group lacks an assignment, is assigned another or a non-existent role,
        or a step's roles in the app differed from the expected ones (the step is named).
  SKIP  read-only run, no roles section, or an essential assertion not observable (no
        Scalekit credentials or organisation, no probe, no mapped group, or the test user
        never appeared: see user-lifecycle), whatever else passed.
  ERROR Scalekit, the SCIM endpoint or the probe failed, so a side could not be evaluated; a
        probe failure at a step is that step's ERROR (with the probe's reason), the later
        steps are SKIP "not judged", and no roles are claimed to differ.
"""

from __future__ import annotations

from scim_readiness.api import (
    CheckInfo,
    FindingCode,
    Need,
    ReadOnly,
    deferred,
)
from scim_readiness.plugin.options import RoundTripOptions

_DOCS = "https://docs.scalekit.com/guides/integrations/scim-integrations/"
_WHY_APP = (
    "Roles decide what a user may do; an app that does not follow group changes grants too "
    "much (a leaver keeps admin) or too little (a new admin is locked out)."
)
_FIX_APP = (
    "On user_created and user_updated, replace the user's roles with data.roles (all of them, "
    "or the highest by your precedence); with no role, apply your default role."
)
_FIX_DASHBOARD = (
    "In the Scalekit dashboard (or the admin portal), map the directory group to the role "
    "under the directory's role assignments, or correct roles.map in the config."
)


def _app_code(code: str, title: str) -> FindingCode:
    return FindingCode(code, title, _WHY_APP, _FIX_APP, _DOCS)


ROLES_MAP = FindingCode(
    "GRP001",
    "A group → role map is configured",
    "Without roles.map there is nothing to compare assignments or app roles with.",
    "Add roles.map (directory group display name → role) to the config.",
)
OPTIONS = FindingCode(
    "GRP002",
    "The check's options are valid",
    "Invalid options would drive the wrong channel or wait the wrong time.",
    "Set checks.group-roles.options.mode to events or scim and step_timeout_s to a number of "
    "seconds.",
)
ASSIGNMENTS = FindingCode(
    "GRP003",
    "The directory's role assignments were read and cover every group of roles.map",
    "Scalekit puts the roles of a user's groups on its events; assignments that do not match "
    "the config give users other roles than the app's owners intended.",
    "Set the scalekit section (credentials, organisation, directory) so the assignments can "
    "be read, and fix the groups the other findings name.",
    _DOCS,
)
GROUP_MISSING = FindingCode(
    "GRP004",
    "Every group of roles.map exists in the directory",
    "Users cannot get this role from their groups if the group is not synced.",
    "Assign the group to the app in the IdP so it is pushed to the directory, or correct the "
    "group name in roles.map.",
    _DOCS,
)
NO_ASSIGNMENT = FindingCode(
    "GRP005",
    "Every group of roles.map has a role assignment",
    "Scalekit sends no role for its members, so they get the default role (or none) instead "
    "of the one the config promises.",
    _FIX_DASHBOARD,
    _DOCS,
)
WRONG_ROLE = FindingCode(
    "GRP006",
    "Every group of roles.map is assigned the configured role",
    "Members get a different role from the one the app's owners intended.",
    _FIX_DASHBOARD,
    _DOCS,
)
UNKNOWN_ROLE = FindingCode(
    "GRP007",
    "Every assigned role exists in the environment",
    "Events carry a role name the app cannot know about.",
    "Create the role in the environment or assign an existing one.",
    _DOCS,
)
UNREVIEWED = FindingCode(
    "GRP008",
    "The directory maps no group that roles.map does not mention",
    "Roles granted by groups nobody reviewed for this app are easy to miss.",
    "Add the group to roles.map if the mapping is intended, or remove it.",
    _DOCS,
)
MODE = FindingCode(
    "GRP009",
    "The config can drive the chosen mode",
    "mode events needs the webhook URL and secret, mode scim the directory's SCIM endpoint; "
    "without them the app side cannot run.",
    "Add the missing section to the config, or choose the other mode.",
)
ROLES_SOURCE = FindingCode(
    "GRP010",
    "The app side computes roles from the directory's role assignments",
    "Roles computed from the config map alone check the app against roles.map, not against "
    "what Scalekit sends.",
    "Configure the scalekit section so assignments are read from the directory.",
)
GROUPS_TO_JOIN = FindingCode(
    "GRP011",
    "A mapped group is available for the test user to join",
    "Without a group that grants a role, the app's handling of roles cannot be observed.",
    "Map at least one directory group to a role and list it in roles.map.",
)
NO_GROUP = _app_code("GRP012", "In no mapped group, the app gives the default role (or none)")
JOIN = _app_code("GRP013", "Joining a mapped group gives the app user that group's role")
COMBINE = _app_code(
    "GRP014", "In two mapped groups, the app combines their roles as roles.combine says"
)
LEAVE = _app_code("GRP015", "Leaving a mapped group takes its role away in the app")
JOIN_TEST = _app_code("GRP016", "Joining a new group recalculates the app user's roles")
DELETE_TEST = _app_code("GRP017", "Deleting a group recalculates its members' roles in the app")
LEAVE_ALL = _app_code(
    "GRP018", "Leaving every mapped group returns the app user to the default role (or none)"
)
APP_SIDE = FindingCode(
    "GRP019",
    "The app's roles followed every membership change",
    "Acceptance of a change proves nothing about the roles the app applied; only the app's "
    "state shows it.",
    "Configure a probe so the app's users can be read, fix user creation first if the test "
    "user never appears (see user-lifecycle), and fix the steps the other findings name.",
    _DOCS,
)
CLEANUP = FindingCode(
    "GRP020",
    "The check's test users and groups are removed again",
    "Test users and groups left behind clutter the app and the directory.",
    "Run `scim-readiness cleanup` once the cause is fixed.",
)

CHECK = CheckInfo(
    id="group-roles",
    title="Group-based role assignment",
    checklist_item=5,
    options=RoundTripOptions,
    needs=(Need.ROLES,),
    mutates=True,
    sharing="shared",  # judges only its own test user and test groups
    # Its directory-side comparison alone cannot show the app follows group changes.
    read_only=ReadOnly.NONE,
    docs_url=_DOCS,
    description="Compares the directory's role assignments with the config's group → role map, "
    "then moves a test user between mapped groups and watches its roles in the app.",
    default_timeout_s=300.0,
    codes=(
        ROLES_MAP,
        OPTIONS,
        ASSIGNMENTS,
        GROUP_MISSING,
        NO_ASSIGNMENT,
        WRONG_ROLE,
        UNKNOWN_ROLE,
        UNREVIEWED,
        MODE,
        ROLES_SOURCE,
        GROUPS_TO_JOIN,
        NO_GROUP,
        JOIN,
        COMBINE,
        LEAVE,
        JOIN_TEST,
        DELETE_TEST,
        LEAVE_ALL,
        APP_SIDE,
        CLEANUP,
    ),
)

run = deferred(f"{__name__}.check", "run")
cleanup = deferred(f"{__name__}.check", "cleanup")
