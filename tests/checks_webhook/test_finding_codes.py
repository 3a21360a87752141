"""The finding codes of the webhook checks: each catalogue is numbered from 001 without gaps,
and the codes a check's source records are exactly the ones its catalogue declares."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest
from scim_readiness.checks import bad_data, webhook_endpoint, webhook_signature


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
