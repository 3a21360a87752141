"""The access probe: can a test user still act in the app?

An ``active`` flag in the app's database says little about access: a session cookie or an
API token issued before a deactivation may keep working. This client asks the app (through
``probe.access``) to issue both for a test user, then asks whether each still works:

* **issue**: a URL (POST, with the configured headers) or an argv template (no shell) with
  ``{directory_user_id}`` and ``{email}``, answering JSON that holds the session and the token
  (``session_path``, ``token_path``);
* **check**: a URL (GET; the session as the ``session_cookie`` cookie, the token as
  ``Authorization: Bearer``) answering 200 (can act) or 401/403 (cannot), or an argv template
  with ``{kind}`` (``session`` or ``api_token``) and ``{credential}`` printing
  ``{"allowed": true|false}``.

Issued credentials are secrets of the app: they never appear in a message, a repr or a
report. Failures are :class:`~scim_readiness.errors.ProbeError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from scim_readiness.clients.answers import (
    HostileAnswer,
    decode_json,
    shown_endpoint,
)
from scim_readiness.clients.probe import capped_probe_request
from scim_readiness.errors import ProbeError
from scim_readiness.redact import Redactor

if TYPE_CHECKING:
    import httpx

    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.config import AccessProbe

Kind = Literal["session", "api_token"]
KINDS: tuple[Kind, ...] = ("session", "api_token")
_MAX_COMMAND_OUTPUT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Credentials:
    """A session and an API token the app issued for one user (never shown)."""

    session: str = field(repr=False)
    api_token: str = field(repr=False)

    def of(self, kind: Kind) -> str:
        return self.session if kind == "session" else self.api_token


def _lookup(document: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(document, Mapping) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return None
    return document


def _credentials(document: Any, config: AccessProbe, source: str) -> Credentials:
    session = _lookup(document, config.session_path)
    token = _lookup(document, config.token_path)
    if not isinstance(session, str) or not session or not isinstance(token, str) or not token:
        raise ProbeError(
            f"access probe issue at {source}: the answer has no {config.session_path!r} and "
            f"{config.token_path!r} strings (probe.access.session_path / token_path)"
        )
    return Credentials(session, token)


class AccessClient:
    """Issues credentials for a test user and tells whether each still works."""

    def __init__(self, config: AccessProbe, tls: TlsSettings) -> None:
        from scim_readiness.clients.http import make_async_client

        self._config = config
        self._headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        self._redact = Redactor(self._headers.values())
        self._client: httpx.AsyncClient = make_async_client(tls, timeout_s=config.timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def issue(self, directory_user_id: str, email: str) -> Credentials:
        """A fresh session and API token for the user; ProbeError when the app refuses."""
        values = {"directory_user_id": directory_user_id, "email": email}
        template = self._config.issue
        if isinstance(template, list):
            document = await self._run(template, values, "issue")
            return _credentials(document, self._config, f"command {template[0]!r}")
        url = _fill_url(template, values)
        shown = self._redact.text(shown_endpoint(url))
        response = await self._request("POST", url, self._headers, "issue", shown)
        if not response.is_success:
            raise ProbeError(
                f"access probe issue at {shown} answered HTTP {response.status_code} "
                "(the user may not exist or have access yet)"
            )
        try:
            document = decode_json(response.content)
        except (HostileAnswer, ValueError):
            raise ProbeError(f"access probe issue at {shown} did not answer with JSON") from None
        return _credentials(document, self._config, shown)

    async def can_act(self, credentials: Credentials, kind: Kind) -> bool:
        """Whether the session (or the API token) is still accepted by the app."""
        credential = credentials.of(kind)
        template = self._config.check
        if isinstance(template, list):
            document = await self._run(template, {"kind": kind, "credential": credential}, "check")
            allowed = _lookup(document, "allowed")
            if not isinstance(allowed, bool):
                raise ProbeError(
                    f"access probe command {template[0]!r} (check) did not print "
                    '{"allowed": true|false}'
                )
            return allowed
        if kind == "session":
            headers = {"cookie": f"{self._config.session_cookie}={credential}"}
        else:
            headers = {"authorization": f"Bearer {credential}"}
        shown = self._redact.text(shown_endpoint(template))
        response = await self._request("GET", template, headers, "check", shown)
        if response.status_code in (401, 403):
            return False
        if response.is_success:
            return True
        raise ProbeError(
            f"access probe check at {shown} answered HTTP {response.status_code} "
            "(expected 200, or 401/403 for a credential that no longer works)"
        )

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str], what: str, shown: str
    ) -> httpx.Response:
        return await capped_probe_request(
            self._client,
            method,
            url,
            headers=headers,
            timeout_s=self._config.timeout_s,
            redact=self._redact,
            label=f"access probe {what} at {shown}",
        )

    async def _run(self, template: Sequence[str], values: Mapping[str, str], what: str) -> Any:
        """Run an argv template (no shell) and decode its JSON output. Messages name the
        program only: the other arguments may hold a credential."""
        argv = [_fill(arg, values) for arg in template]
        program = argv[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            raise ProbeError(
                f"access probe command {program!r} could not start: {exc.strerror}"
            ) from None
        try:
            async with asyncio.timeout(self._config.timeout_s):
                stdout, _ = await process.communicate()
        except TimeoutError:
            raise ProbeError(
                f"access probe command {program!r} ({what}) did not finish within "
                f"{self._config.timeout_s:g} s and was killed"
            ) from None
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            raise ProbeError(
                f"access probe command {program!r} ({what}) exited with status {process.returncode}"
            )
        try:
            return decode_json(stdout[:_MAX_COMMAND_OUTPUT])
        except (HostileAnswer, ValueError):
            raise ProbeError(
                f"access probe command {program!r} ({what}) did not print JSON"
            ) from None


def _fill(template: str, values: Mapping[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _fill_url(template: str, values: Mapping[str, str]) -> str:
    return _fill(template, {name: quote(value, safe="") for name, value in values.items()})


def build_access_client(config: AccessProbe, tls: TlsSettings) -> AccessClient:
    return AccessClient(config, tls)
