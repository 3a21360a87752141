"""The finding codes of the webhook checks: each catalogue is numbered from 001 without gaps,
and the codes a check's source records are exactly the ones its catalogue declares."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from scim_readiness.checks import bad_data, webhook_endpoint, webhook_signature

from scim_readiness.devstack.sampleapp import RunningApp
from scim_readiness.model import Status

from .conftest import MakeContext, finding, run_check


@pytest.mark.parametrize(
    ("check", "prefix"),
    [(webhook_signature, "SIG"), (bad_data, "BAD"), (webhook_endpoint, "WHE")],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_the_catalogue_declares_every_code_the_check_records(
    check: ModuleType, prefix: str
) -> None:
    declared = [code.code for code in check.CHECK.codes]
    assert declared == [f"{prefix}{n:03d}" for n in range(1, len(declared) + 1)]
    source = inspect.getsource(check).split("CHECK = CheckInfo(")[1]
    if Path(inspect.getfile(check)).name == "__init__.py":  # a package: its helpers record too
        for helper in sorted(Path(inspect.getfile(check)).parent.glob("[!_]*.py")):
            source += helper.read_text(encoding="utf-8")
    assert set(re.findall(rf'"({prefix}\d{{3}})"', source)) == set(declared)
    assert all(code.title and code.why and code.fix for code in check.CHECK.codes)


@pytest.mark.parametrize(
    ("check", "code"),
    [(webhook_signature, "SIG002"), (bad_data, "BAD002")],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_the_shared_sender_s_placeholder_warning_carries_the_check_s_code(
    check: ModuleType,
    code: str,
    make_context: MakeContext,
    start_app: Callable[..., RunningApp],
) -> None:
    """The WARN the shared sender records for a missing organisation is the calling check's
    (run_check also asserts every finding carries a code of the check's catalogue)."""
    app = start_app()
    ctx = make_context(check, url=app.webhook_url, organization_id=None)
    run_check(check, ctx, app)
    warning = finding(ctx, "placeholder organisation")
    assert (warning.status, warning.code) == (Status.WARN, code)
