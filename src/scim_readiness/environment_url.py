"""What kind of Scalekit environment a URL names, and whether credentials look real.

Scalekit development environments live on ``*.scalekit.dev`` (and ``*-dev.scalekit.cloud``);
production ones on ``*.scalekit.com``, ``*.scalekit.cloud`` or a custom domain (a CNAME that
only production environments may have). Loopback and private addresses are never production:
they are a local stand-in or a machine inside someone's network.

Everything here is pure: no network, so the `environment` check can explain a bad value
before it tries to use it.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit


class UrlClass(enum.StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    LOCAL = "local"  # loopback: an emulator or a tunnel on this machine
    PRIVATE = "private"  # RFC 1918, link-local, .internal/.local names
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class UrlVerdict:
    url_class: UrlClass
    host: str
    reason: str  # one sentence a reader can check by looking at the URL

    @property
    def is_custom_domain(self) -> bool:
        return self.url_class is UrlClass.PRODUCTION and not _is_scalekit_host(self.host)


@dataclass(frozen=True, slots=True)
class Problem:
    """A defect in a configured value. ``blocking`` problems make the value unusable."""

    message: str
    blocking: bool = True


_PRIVATE_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".corp", ".intranet")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def _is_scalekit_host(host: str) -> bool:
    return host.endswith((".scalekit.com", ".scalekit.dev", ".scalekit.cloud"))


def _inet_aton_number(part: str) -> int | None:
    """One dotted part as inet_aton reads it: ``0x`` hex, a leading ``0`` octal, else decimal."""
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:], 16) if part[2:] else 0
        if len(part) > 1 and part.startswith("0"):
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() else None
    except ValueError:
        return None


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address ``host`` names in any spelling the C resolver accepts (``127.1``,
    ``0x7f.1``, ``2130706433``, ``0177.0.0.1``): a URL written that way reaches that
    address, so it must be judged as that address. None when it is not such a spelling."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_inet_aton_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *leading, last = [n for n in numbers if n is not None]
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (4 - len(leading))):
        return None
    value = last
    for position, n in enumerate(leading):
        value |= n << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host names literally (IPv6, or IPv4 in any inet_aton spelling),
    IPv4-mapped IPv6 unwrapped; None for a DNS name."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return _inet_aton(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def classify_environment_url(url: str) -> UrlVerdict:
    """Which class of environment ``url`` points at (see the module docstring)."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return UrlVerdict(UrlClass.INVALID, "", "the value is not a URL")
    if not host:
        return UrlVerdict(UrlClass.INVALID, "", "the URL has no host")
    address = ip_literal(host)
    if address is not None:
        # "127.1 is 127.0.0.1, ...": the reader sees which address an unusual spelling names.
        named = host if str(address) == host else f"{host} is {address}, and"
        if address.is_loopback or address.is_unspecified:
            return UrlVerdict(UrlClass.LOCAL, host, f"{named} is a loopback address")
        if address.is_private or address.is_link_local or address.is_reserved:
            return UrlVerdict(UrlClass.PRIVATE, host, f"{named} is a private address")
        return UrlVerdict(
            UrlClass.PRODUCTION,
            host,
            f"{named} is a public IP address, not a Scalekit development host",
        )
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return UrlVerdict(UrlClass.LOCAL, host, f"{host} is this machine")
    if host.endswith(_PRIVATE_SUFFIXES) or "." not in host:
        return UrlVerdict(UrlClass.PRIVATE, host, f"{host} is not a public DNS name")
    if host.endswith(".scalekit.dev"):
        return UrlVerdict(UrlClass.DEVELOPMENT, host, f"{host} is a *.scalekit.dev host")
    if host.endswith(".scalekit.cloud"):
        name = host.removesuffix(".scalekit.cloud").split(".")[-1]
        if name.endswith("-dev"):
            return UrlVerdict(
                UrlClass.DEVELOPMENT, host, f"{host} is a *.scalekit.cloud host named '-dev'"
            )
        return UrlVerdict(UrlClass.PRODUCTION, host, f"{host} is a *.scalekit.cloud host")
    if host.endswith(".scalekit.com"):
        return UrlVerdict(UrlClass.PRODUCTION, host, f"{host} is a *.scalekit.com host")
    return UrlVerdict(
        UrlClass.PRODUCTION,
        host,
        f"{host} is a custom domain (Scalekit offers those in production environments only)",
    )


def environment_url_problems(url: str) -> list[Problem]:
    """Why ``url`` is not a well-formed environment URL (empty list when it is).

    The SDK appends ``/oauth/token`` to the value as given, so a path, a trailing slash or
    stray whitespace breaks the token exchange or sends it somewhere else.
    """
    problems: list[Problem] = []
    if url != url.strip():
        problems.append(Problem("has leading or trailing whitespace"))
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return [*problems, Problem(f"is not a valid URL ({exc})")]
    if parts.scheme.lower() != "https":
        shown = parts.scheme or "no scheme"
        problems.append(Problem(f"must use https:// (found {shown})"))
    if not parts.hostname:
        problems.append(Problem("has no host"))
    if parts.username is not None or parts.password is not None:
        problems.append(Problem("contains credentials before the host"))
    if parts.path == "/":
        problems.append(
            Problem("ends with '/', so the SDK requests '//oauth/token'", blocking=False)
        )
    elif parts.path:
        problems.append(Problem(f"has a path ({parts.path!r}); give the bare origin"))
    if parts.query or parts.fragment:
        problems.append(Problem("has a query string or fragment"))
    if port == 0:
        problems.append(Problem("has port 0"))
    return problems


_CLIENT_ID = re.compile(r"skc_[A-Za-z0-9]+")


def client_id_problems(client_id: str) -> list[Problem]:
    if client_id != client_id.strip():
        return [Problem("has leading or trailing whitespace")]
    if not client_id.startswith("skc_"):
        return [Problem("does not start with 'skc_' like every Scalekit client id")]
    if not _CLIENT_ID.fullmatch(client_id):
        return [Problem("has characters other than letters and digits after 'skc_'")]
    return []


_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "client-secret",
        "client_secret",
        "clientsecret",
        "password",
        "placeholder",
        "todo",
        "tbd",
        "fixme",
        "replaceme",
        "replace-me",
        "replace_me",
        "dummy",
        "example",
        "test",
        "none",
        "null",
        "undefined",
        "default",
    }
)
_PLACEHOLDER_PATTERNS = (
    re.compile(r"(.)\1*"),  # xxx, ****, 0000
    re.compile(r"<[^>]*>"),  # <your secret>
    re.compile(r"\$\{[^}]*\}|\$[A-Z_][A-Z0-9_]*"),  # an interpolation nobody resolved
    re.compile(r"\{\{[^}]*\}\}"),  # a template nobody rendered
    re.compile(r"(your|my)[-_ ].*", re.IGNORECASE),  # your-client-secret
    re.compile(r".*(changeme|change_me|replace_?me|placeholder).*", re.IGNORECASE),
)


def secret_problems(secret: str) -> list[Problem]:
    """Why a client secret is obviously not a real one. Never echoes the value."""
    if secret != secret.strip():
        return [Problem("has leading or trailing whitespace")]
    lowered = secret.lower()
    if lowered in _PLACEHOLDER_WORDS or any(p.fullmatch(secret) for p in _PLACEHOLDER_PATTERNS):
        return [Problem("is a placeholder, not a real secret")]
    if len(secret) < 16:
        return [Problem(f"is only {len(secret)} characters long; real secrets are longer")]
    return []


def webhook_secret_problems(secret: str) -> list[Problem]:
    """A Standard Webhooks signing secret is ``whsec_`` + base64 of the key."""
    import base64
    import binascii

    if secret != secret.strip():
        return [Problem("has leading or trailing whitespace")]
    if not secret.startswith("whsec_"):
        return [Problem("does not start with 'whsec_'")]
    body = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return [Problem("is not base64 after 'whsec_'")]
    if len(key) < 16:
        return [Problem(f"decodes to a {len(key)}-byte key; expected at least 16 bytes")]
    return []
