"""Event ids stay unique across the processes of one run.

``run`` and a later ``cleanup`` of the same run both number their events from 1; an app that
drops replayed webhook-ids would treat the cleanup's removals as replays of the run's own
events, answer 200 and change nothing.
"""

from __future__ import annotations

import subprocess
import sys

PRINT_IDS = (
    "from scim_readiness.plugin.identities import TestIdentities\n"
    "ids = TestIdentities(run_id='sr0123456789')\n"
    "print(ids.event_id(1), ids.event_id(2))\n"
)


def _ids_of_one_process() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PRINT_IDS], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.split()


def test_two_processes_of_one_run_never_share_an_event_id() -> None:
    first, second = _ids_of_one_process(), _ids_of_one_process()
    assert len(set(first)) == 2
    assert not set(first) & set(second)
    # Still recognisable as the run's test events.
    assert all(i.startswith("evt_sr0123456789") for i in first + second)
