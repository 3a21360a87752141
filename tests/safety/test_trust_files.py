"""Trust files: the combined CA bundle is private to the process, and `emulate` keeps its
CA (key included) only in its private state directory, never in the temp directory."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scim_readiness.clients.scalekit import trust_bundle
from scim_readiness.devstack.tls_ca import LocalCA


def test_the_combined_bundle_is_private_and_not_at_a_shared_name(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "ca")
    path = Path(str(trust_bundle(str(ca.ca_path))))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # not a predictable name directly in the shared temp directory
    assert path.parent != Path(os.environ.get("TMPDIR", "/tmp"))
    assert trust_bundle(str(ca.ca_path)) == str(path)  # one path per content, per process


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_emulate_keeps_its_ca_in_the_state_dir_and_leaves_no_temp_files(
    sig: signal.Signals, tmp_path: Path
) -> None:
    # A private temp directory: other processes on the machine make CA directories too.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    data_home = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "scim_readiness", "emulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, XDG_DATA_HOME=str(data_home), TMPDIR=str(scratch)),
    )
    ca_path = None
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            found = re.search(r"NODE_EXTRA_CA_CERTS=(\S+)", line)
            if found:
                ca_path = Path(found.group(1).strip("'\""))
            if "Ctrl-C to stop" in line or time.monotonic() > deadline:
                break
        assert ca_path is not None and ca_path.exists()
        proc.send_signal(sig)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    state = data_home / "scim-readiness" / "emulator"
    assert ca_path.parent == state and ca_path.exists()  # kept for the next start
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "ca.key").stat().st_mode) == 0o600
    assert not list(scratch.iterdir()), "temporary files (a CA and its key?) were left behind"
