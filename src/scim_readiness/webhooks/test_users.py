"""The records of the test users the checker's deliveries create: the ledger entry written
before a delivery may create one, the ``user_created``/``user_updated`` data naming it, and
which of them some delivery of this process may have got applied (what the end-of-run sweep
needs to tell a user left behind from one never created).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.plugin.ledger import Ledger

# Directory user ids that some delivery of this process may have applied: it got a 2xx, or no
# definite answer (a time-out: the app may have acted before it stopped answering). A test
# user none of whose deliveries is here was provably never accepted, and the end-of-run
# sweep closes its ledger entry instead of counting it as left behind.
_MAYBE_APPLIED: set[str] = set()
_NOTE_LIMIT_BYTES = 64 * 1024
_ANY_ID = re.compile(r'"id"\s*:\s*"([^"\\]{1,200})"')


def note_delivery(body: bytes, *, refused: bool) -> None:
    """Remember the user a delivery of ``body`` is about, unless the app provably did not
    apply it (``refused``: never sent, or answered with a non-2xx status)."""
    if refused or len(body) > _NOTE_LIMIT_BYTES:
        return
    try:
        event = json.loads(body)
    except ValueError:
        return
    except RecursionError:
        # Nested past what the parser handles (bad-data's deep body), yet accepted: every
        # id it names may have been applied, so none of them is closed as never created.
        _MAYBE_APPLIED.update(_ANY_ID.findall(body.decode("utf-8", "replace")))
        return
    data = event.get("data") if isinstance(event, dict) else None
    if isinstance(data, dict) and isinstance(data.get("id"), str):
        _MAYBE_APPLIED.add(data["id"])


def maybe_applied(directory_user_id: str) -> bool:
    """Whether any delivery this process sent about ``directory_user_id`` may have been
    applied by the app (see ``_MAYBE_APPLIED``)."""
    return directory_user_id in _MAYBE_APPLIED


@dataclass(frozen=True, slots=True)
class TestUserRecords:
    """The ledger lines of the test users one check's deliveries may create: the run's
    ledger, the check they are recorded for, and the organisation the deliveries name."""

    __test__ = False

    ledger: Ledger
    check_id: str
    organization_id: str | None

    def record(self, identity: TestIdentity, *, expect_applied: bool) -> None:
        """Ledger entry for a user a delivery may create; call *before* sending it.

        ``expect_applied`` says whether the delivery is one the app should apply (cleanup then
        deactivates and deletes) or one it should refuse (cleanup only sends ``user_deleted``,
        which a correct app answers without creating anything).
        """
        self.ledger.created(
            "user",
            identity.directory_user_id,
            channel="events",
            check_id=self.check_id,
            email=identity.email,
            dp_id=identity.dp_id,
            given_name=identity.given_name,
            family_name=identity.family_name,
            organization_id=self.organization_id,
            expect_applied=expect_applied,
        )

    def absent(self, identity: TestIdentity) -> None:
        """The app was seen not to hold ``identity``: nothing is left for cleanup to remove."""
        self.ledger.removed(
            "user", identity.directory_user_id, channel="events", check_id=self.check_id
        )


def user_event_data(identity: TestIdentity, organization_id: str, **fields: Any) -> dict[str, Any]:
    """``user_created``/``user_updated`` data for a test identity."""
    from scim_readiness.events import user_data

    values: dict[str, Any] = {
        "id": identity.directory_user_id,
        "organization_id": organization_id,
        "email": identity.email,
        "given_name": identity.given_name,
        "family_name": identity.family_name,
        "dp_id": identity.dp_id,
    }
    values.update(fields)
    return user_data(**values)
