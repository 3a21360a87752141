"""``scim-readiness probe test``: each configured probe template called once, its answer
shown as the checks will read it, so a wrong URL or field path is found before a run."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scim_readiness.errors import UsageError

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser, TemplateTry
    from scim_readiness.config import Config


def _user_lines(user: AppUser) -> list[str]:
    lines = [
        f"id={user.id}  email={user.email}  active={str(user.active).lower()}",
        f"directory_user_id={user.directory_user_id or '(none)'}  name={user.name or '(none)'}",
    ]
    if user.roles or user.tenant:
        lines.append(f"roles={','.join(user.roles) or '(none)'}  tenant={user.tenant or '(none)'}")
    if user.attributes:
        lines.append("attributes=" + ", ".join(sorted(map(str, user.attributes))))
    return lines


def _show(tried: TemplateTry) -> list[str]:
    if tried.error:
        head = f"{tried.what} ({tried.asked}): FAILED: {tried.error}"
    else:
        head = f"{tried.what} ({tried.asked}): " + (tried.note or "answered")
    lines = [head]
    for user in tried.users:
        lines += [f"    {line}" for line in _user_lines(user)]
    return lines


def run_probe_test(
    config: Config, *, email: str | None, directory_user_id: str | None, ca_bundle: Sequence[str]
) -> int:
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.probe import build_probe, describe_answers, try_templates
    from scim_readiness.redact import Redactor

    section = config.probe
    if section is None:
        raise UsageError(
            "the config has no probe section, so there is nothing to try",
            hint="add probe: (see readiness.example.yaml, 'Observing the app')",
        )

    async def tries() -> list[TemplateTry]:
        probe = build_probe(section, TlsSettings(ca_bundle=ca_bundle))
        try:
            return await try_templates(probe, email=email, directory_user_id=directory_user_id)
        finally:
            await probe.aclose()

    results = asyncio.run(tries())
    redactor = Redactor(config.secret_values())
    print(f"probe ({section.kind}):")
    for line in describe_answers(section):
        print(f"  {line}")
    for tried in results:
        for line in _show(tried):
            print(redactor.text(line))
    return 1 if any(tried.error for tried in results) else 0
