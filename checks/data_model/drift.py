"""Kinds of drift, apart from the reconciler: the check's declaration names a finding code
for each."""

from __future__ import annotations

import enum


class Drift(enum.StrEnum):
    """Kinds of disagreement between the directory and the app."""

    MISSING_IN_APP = "missing in app"  # active directory user the app does not know
    # Active directory user the app holds under its email without the directory user id.
    NOT_LINKED_IN_APP = "in app by email, not linked by directory id"
    EXTRA_IN_APP = "extra in app"  # active app user whose directory user is gone
    STILL_ACTIVE_IN_APP = "deactivated in directory, active in app"
    INACTIVE_IN_APP = "active in directory, inactive in app"
    EMAIL_MISMATCH = "email mismatch"
    ROLE_MISMATCH = "role mismatch"
    TENANT_MISMATCH = "tenant mismatch"
    DUPLICATE_IN_APP = "linked twice in app"
