"""Send one realistic signed event (or a deliberately broken delivery) and report the answer.

Behind ``scim-readiness events send``; checks may use it too. The secret is only ever used to
sign: results carry the headers sent with every signature redacted.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from scim_readiness.errors import TargetError, UsageError
from scim_readiness.events.envelope import (
    EventType,
    build_event,
    directory_data,
    encode_body,
    group_data,
    group_deleted_data,
    user_data,
    user_deleted_data,
)
from scim_readiness.events.signing import redact_headers, sign, signed_headers

if TYPE_CHECKING:
    import httpx

    from scim_readiness.clients.http import TlsSettings

DEFAULT_ORGANIZATION_ID = "org_60219377000000001"
DEFAULT_ENVIRONMENT_ID = "env_60219376000000001"
DEFAULT_DIRECTORY_ID = "dir_60219378000000001"
EXCERPT_CHARS = 500
# Far enough outside the 5-minute tolerance that clock skew cannot rescue it.
SKEW_S = 10 * 60

#: The event names an older integration guide used. Receivers written from it act on these
#: and acknowledge the current names without doing anything; sending them shows whether an
#: app is one of those (``events send --legacy-names``, user-lifecycle's diagnosis).
LEGACY_EVENT_NAMES: Mapping[EventType, str] = MappingProxyType(
    {
        EventType.USER_CREATED: "scalekit.dir.user.create",
        EventType.USER_UPDATED: "scalekit.dir.user.update",
        EventType.USER_DELETED: "scalekit.dir.user.delete",
        EventType.GROUP_CREATED: "scalekit.dir.group.create",
        EventType.GROUP_UPDATED: "scalekit.dir.group.update",
        EventType.GROUP_DELETED: "scalekit.dir.group.delete",
        EventType.DIRECTORY_ENABLED: "scalekit.dir.enabled",
        EventType.DIRECTORY_DISABLED: "scalekit.dir.disabled",
    }
)
_BY_LEGACY_NAME = {legacy: kind for kind, legacy in LEGACY_EVENT_NAMES.items()}


def parse_event_type(text: str) -> tuple[EventType, bool]:
    """The event type ``text`` names (full, short or legacy name) and whether it was a legacy
    name; ValueError naming the choices otherwise."""
    legacy = _BY_LEGACY_NAME.get(text.strip())
    if legacy is not None:
        return legacy, True
    return EventType.parse(text), False


def _other_secret() -> str:
    """A well-formed secret nobody holds: what a wrong or retired key signs with."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


@dataclass(frozen=True)
class Mutation:
    description: str
    expect: str  # "reject" (4xx), "accept" (2xx) or "either"


MUTATIONS: Mapping[str, Mutation] = MappingProxyType(
    {
        "unsigned": Mutation("no signature headers at all", "reject"),
        "wrong-secret": Mutation("signed with a secret the app does not hold", "reject"),
        "tampered": Mutation("body changed after signing (email or id altered)", "reject"),
        "stale": Mutation("timestamp 10 minutes in the past (replay)", "reject"),
        "future": Mutation("timestamp 10 minutes in the future", "reject"),
        "malformed": Mutation("signature header that is not v1,<base64>", "reject"),
        "svix-only": Mutation(
            "valid signature in svix-* headers only (Scalekit sends both families)", "either"
        ),
        "webhook-only": Mutation("valid signature in webhook-* headers only", "accept"),
        "rotated": Mutation(
            "two signatures, a retired key's first and the valid one second (key rotation)",
            "accept",
        ),
        "reformatted": Mutation(
            "valid signature over a body with other whitespace and key order", "accept"
        ),
    }
)


@dataclass(frozen=True)
class SendResult:
    status: int
    latency_s: float
    body_excerpt: str
    headers_sent: dict[str, str]  # signature values redacted
    event_id: str
    event_type: str
    mutation: str | None
    url: str

    @property
    def expected(self) -> str:
        """What a correct receiver does with this delivery: reject, accept or either."""
        return MUTATIONS[self.mutation].expect if self.mutation else "accept"

    @property
    def as_expected(self) -> bool:
        if self.expected == "reject":
            return 400 <= self.status < 500
        if self.expected == "accept":
            return 200 <= self.status < 300
        return self.status < 500

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "mutation": self.mutation,
            "status": self.status,
            "latency_s": round(self.latency_s, 4),
            "expected": self.expected,
            "as_expected": self.as_expected,
            "headers_sent": self.headers_sent,
            "body_excerpt": self.body_excerpt,
        }


def sample_data(
    event_type: EventType,
    *,
    organization_id: str,
    directory_id: str = DEFAULT_DIRECTORY_ID,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Realistic ``data`` for ``event_type`` naming unmistakable test identities."""
    from scim_readiness.plugin.identities import TestIdentities, new_run_id

    ids = TestIdentities(run_id=run_id or new_run_id())
    person = ids.user("events-send")
    if event_type in (EventType.USER_CREATED, EventType.USER_UPDATED):
        return user_data(
            id=person.directory_user_id,
            organization_id=organization_id,
            email=person.email,
            given_name=person.given_name,
            family_name=person.family_name,
            dp_id=person.dp_id,
            groups=[(ids.group_id("engineering"), ids.group_name("engineering"))],
            roles=["member"],
        )
    if event_type is EventType.USER_DELETED:
        return user_deleted_data(
            id=person.directory_user_id,
            organization_id=organization_id,
            email=person.email,
            dp_id=person.dp_id,
        )
    if event_type is EventType.GROUP_DELETED:
        return group_deleted_data(
            id=ids.group_id("engineering"),
            directory_id=directory_id,
            display_name=ids.group_name("engineering"),
            organization_id=organization_id,
        )
    if event_type.object == "DirectoryGroup":
        return group_data(
            id=ids.group_id("engineering"),
            directory_id=directory_id,
            display_name=ids.group_name("engineering"),
            organization_id=organization_id,
        )
    return directory_data(
        id=directory_id,
        organization_id=organization_id,
        enabled=event_type is EventType.DIRECTORY_ENABLED,
    )


def _tamper(event: dict[str, Any]) -> bytes:
    changed = copy.deepcopy(event)
    data = changed["data"]
    if "email" in data:
        data["email"] = "attacker@scim-readiness.example.invalid"
    else:
        data["id"] = f"{data.get('id', '')}-tampered"
    return encode_body(changed)


def _reformatted(event: dict[str, Any]) -> bytes:
    # Pretty-printed with the keys in reverse order: the same event, different bytes.
    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(item) for item in value]
        return value

    return (json.dumps(reverse(event), indent=2, ensure_ascii=False) + "\n").encode()


def prepare(
    event: dict[str, Any], secret: str, mutate: str | None, *, now: int
) -> tuple[bytes, dict[str, str]]:
    """The body bytes and headers of one delivery of ``event``, broken as ``mutate`` says."""
    if mutate is not None and mutate not in MUTATIONS:
        raise UsageError(
            f"unknown mutation {mutate!r}", hint=f"choose one of: {', '.join(MUTATIONS)}"
        )
    msg_id = event["id"]
    body = encode_body(event)
    timestamp = now
    families: tuple[str, ...] = ("webhook", "svix")
    signature: str | None = None
    signing_secret = secret
    if mutate == "reformatted":
        body = _reformatted(event)
    elif mutate == "stale":
        timestamp = now - SKEW_S
    elif mutate == "future":
        timestamp = now + SKEW_S
    elif mutate == "wrong-secret":
        signing_secret = _other_secret()
    elif mutate == "svix-only":
        families = ("svix",)
    elif mutate == "webhook-only":
        families = ("webhook",)
    elif mutate == "malformed":
        signature = "v1,!!not-base64!!"
    elif mutate == "rotated":
        retired = sign(_other_secret(), msg_id, timestamp, body)
        signature = f"{retired} {sign(secret, msg_id, timestamp, body)}"
    headers = {"content-type": "application/json"}
    if mutate != "unsigned":
        headers.update(
            signed_headers(
                signing_secret, msg_id, timestamp, body, families=families, signature=signature
            )
        )
    if mutate == "tampered":
        body = _tamper(event)
    return body, headers


async def send_event(
    event_type: str,
    url: str,
    secret: str,
    *,
    mutate: str | None = None,
    tls: TlsSettings | None = None,
    timeout_s: float = 10.0,
    organization_id: str = DEFAULT_ORGANIZATION_ID,
    environment_id: str = DEFAULT_ENVIRONMENT_ID,
    directory_id: str = DEFAULT_DIRECTORY_ID,
    event: dict[str, Any] | None = None,
    client: httpx.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
    legacy_names: bool = False,
) -> SendResult:
    """POST one event to ``url`` and return what came back.

    ``event_type`` is a full, short (``user_created``) or legacy type name
    (``scalekit.dir.user.create``); with ``legacy_names`` (or a legacy name) the event goes
    out under its legacy name. ``event`` replaces the generated one. Raises UsageError for a
    bad type, mutation, URL or secret and TargetError when the endpoint cannot be reached or
    does not answer within ``timeout_s``.
    """
    import httpx

    try:
        kind, named_legacy = parse_event_type(event_type)
    except ValueError as exc:
        raise UsageError(
            str(exc), hint="legacy names work too: " + ", ".join(LEGACY_EVENT_NAMES.values())
        ) from None
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"--to must be an http(s) URL, got {url!r}")
    if event is None:
        event = build_event(
            kind,
            sample_data(kind, organization_id=organization_id, directory_id=directory_id),
            organization_id=organization_id,
            environment_id=environment_id,
        )
    if legacy_names or named_legacy:
        event = {**event, "type": LEGACY_EVENT_NAMES[kind]}
    try:
        body, headers = prepare(event, secret, mutate, now=int(clock()))
    except ValueError as exc:
        raise UsageError(f"the webhook secret cannot sign: {exc}") from None

    from scim_readiness.clients.answers import (
        MAX_ANSWER_BYTES,
        NOT_FINISHED,
        request_capped,
        shown_endpoint,
    )
    from scim_readiness.clients.http import TlsSettings, make_async_client

    owned = client is None
    http = client or make_async_client(tls or TlsSettings(), timeout_s=timeout_s)
    try:
        started = time.perf_counter()
        # --timeout bounds the whole exchange, to the last byte of the answer, whose body is
        # only quoted: it is cut at the cap rather than read for ever.
        response = await request_capped(
            http,
            "POST",
            url,
            cap=MAX_ANSWER_BYTES,
            truncate=True,
            content=body,
            headers=headers,
            deadline_s=timeout_s,
        )
        latency = time.perf_counter() - started
    except httpx.TimeoutException:
        raise TargetError(
            f"{shown_endpoint(url)} {NOT_FINISHED} {timeout_s:g} s",
            hint="Scalekit expects a complete 2xx answer quickly; queue slow work and answer first",
        ) from None
    except httpx.HTTPError as exc:
        from scim_readiness.clients.trust import certificate_problem

        if (refused := certificate_problem(exc)) is not None:
            from urllib.parse import urlsplit

            host = urlsplit(url).netloc
            raise TargetError(
                f"could not deliver to {shown_endpoint(url)}: {refused.sentence(host)}"
            ) from None
        raise TargetError(
            f"could not deliver to {url}: {type(exc).__name__}: {exc}",
            hint="check the URL, that the app is running, and --ca-bundle for a private CA",
        ) from None
    finally:
        if owned:
            await http.aclose()
    return SendResult(
        status=response.status_code,
        latency_s=latency,
        body_excerpt=response.text[:EXCERPT_CHARS],
        headers_sent=redact_headers(headers),
        event_id=event["id"],
        event_type=str(event.get("type", kind)),
        mutation=mutate,
        url=url,
    )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_from_env(name: str) -> str:
    """The webhook secret held by environment variable ``name`` (never echoed)."""
    import os

    if not _ENV_NAME.fullmatch(name):
        hint = "e.g. --secret SCALEKIT_WEBHOOK_SECRET"
        if name.startswith("whsec_"):
            # Never repeat the value: it just went through the shell history already.
            raise UsageError(
                "--secret takes the NAME of an environment variable, not the secret itself",
                hint=f"export the secret and pass its variable name ({hint}); "
                "consider rotating a secret that was typed on a command line",
            )
        raise UsageError(f"--secret {name!r} is not an environment variable name", hint=hint)
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(
            f"environment variable {name} is not set or empty",
            hint=f"export {name}=whsec_... (the endpoint's signing secret)",
        )
    return value


def _describe(result: SendResult) -> str:
    wanted = {"reject": "rejected (4xx)", "accept": "accepted (2xx)", "either": "not a 5xx"}
    verdict = "as expected" if result.as_expected else "NOT as expected"
    mutation = (
        f" [{result.mutation}: {MUTATIONS[result.mutation].description}]" if result.mutation else ""
    )
    lines = [
        f"POST {result.url}",
        f"event {result.event_type} {result.event_id}{mutation}",
        f"status {result.status} in {result.latency_s * 1000:.1f} ms; a correct receiver: "
        f"{wanted[result.expected]}; {verdict}",
        "headers sent:",
        *(f"  {name}: {value}" for name, value in result.headers_sent.items()),
        "response body:" if result.body_excerpt else "response body: (empty)",
    ]
    if result.body_excerpt:
        lines.extend(f"  {line}" for line in result.body_excerpt.splitlines()[:20])
    return "\n".join(lines)


def run_send_command(
    event_type: str,
    *,
    to: str,
    secret_env: str,
    mutate: str | None,
    ca_bundle: Sequence[str],
    timeout_s: float,
    organization_id: str,
    environment_id: str,
    as_json: bool,
    legacy_names: bool = False,
) -> int:
    """``scim-readiness events send``: print the exchange; 0 when the answer is what a correct
    receiver gives (2xx for valid deliveries, 4xx for broken ones), 1 otherwise."""
    import asyncio

    from scim_readiness.clients.http import TlsSettings

    secret = secret_from_env(secret_env)
    result = asyncio.run(
        send_event(
            event_type,
            to,
            secret,
            mutate=mutate,
            tls=TlsSettings(ca_bundle=ca_bundle),
            timeout_s=timeout_s,
            organization_id=organization_id,
            environment_id=environment_id,
            legacy_names=legacy_names,
        )
    )
    print(json.dumps(result.to_json(), indent=2) if as_json else _describe(result))
    return 0 if result.as_expected else 1
