"""Would a browser let a page on ``origin`` frame a response with these headers?

Implements the parts of CSP Level 3 ``frame-ancestors`` matching (source lists of
``'none'``, ``'self'``, ``*``, scheme sources and host sources with wildcards and ports)
and the ``X-Frame-Options`` fallback that decide whether an embedded admin portal loads.
Several policies (repeated headers, or comma-separated) must each allow the frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> Origin:
        """``https://app.example.com[:port]``; raises ValueError for anything else."""
        parts = urlsplit(value.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"{value!r} is not an origin like https://app.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{value!r} has a path; an origin is scheme://host[:port] only")
        port = parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]
        return cls(scheme, parts.hostname.lower().rstrip("."), port)

    def __str__(self) -> str:
        default = _DEFAULT_PORTS.get(self.scheme)
        suffix = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{suffix}"


@dataclass(frozen=True, slots=True)
class FramingDecision:
    allowed: bool
    reason: str
    # The directive(s) that decided, verbatim, for the report.
    policy: str


def frame_ancestors_directives(csp_headers: Iterable[str]) -> list[str]:
    """The ``frame-ancestors`` source lists of every policy, in order (empty when none)."""
    found: list[str] = []
    for header in csp_headers:
        for policy in header.split(","):
            for directive in policy.split(";"):
                tokens = directive.strip().split(None, 1)
                if tokens and tokens[0].lower() == "frame-ancestors":
                    found.append(tokens[1].strip() if len(tokens) > 1 else "")
                    break  # the first occurrence of a directive wins within a policy
    return found


def _scheme_matches(source_scheme: str, origin_scheme: str) -> bool:
    if source_scheme == origin_scheme:
        return True
    # CSP lets a source for the insecure scheme match its secure upgrade.
    return (source_scheme, origin_scheme) in {("http", "https"), ("ws", "wss")}


def _source_matches(source: str, origin: Origin, protected: Origin) -> bool:
    token = source.strip()
    lowered = token.lower()
    if lowered == "'self'":
        return (
            origin.host == protected.host
            and origin.port == protected.port
            and _scheme_matches(protected.scheme, origin.scheme)
        )
    if lowered.startswith("'"):
        return False  # 'none' and keywords that do not apply to frame-ancestors
    if lowered == "*":
        return origin.scheme in _DEFAULT_PORTS
    if lowered.endswith(":") and "/" not in lowered:
        return _scheme_matches(lowered[:-1], origin.scheme)
    scheme = ""
    rest = lowered
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
    host_port = rest.split("/", 1)[0]
    host, port_text = host_port, ""
    if host_port.startswith("["):  # IPv6 literal
        end = host_port.find("]")
        host, port_text = host_port[1:end], host_port[end + 2 :]
    elif ":" in host_port:
        host, port_text = host_port.rsplit(":", 1)
    if scheme:
        if not _scheme_matches(scheme, origin.scheme):
            return False
    elif not _scheme_matches(protected.scheme, origin.scheme):
        return False
    if host.startswith("*."):
        if not origin.host.endswith(host[1:]):
            return False
    elif host != origin.host:
        return False
    if port_text == "*":
        return True
    if port_text:
        try:
            return int(port_text) == origin.port
        except ValueError:
            return False
    # No port in the source: the origin must use its scheme's default port.
    return origin.port == _DEFAULT_PORTS.get(origin.scheme, -1)


def source_list_allows(source_list: str, origin: Origin, protected: Origin) -> bool:
    sources = source_list.split()
    if not sources or any(s.lower() == "'none'" for s in sources):
        return False
    return any(_source_matches(source, origin, protected) for source in sources)


def framing_allowed(
    *,
    csp_headers: Iterable[str],
    x_frame_options: str | None,
    origin: Origin,
    protected: Origin,
) -> FramingDecision:
    """May a page on ``origin`` frame a document served from ``protected`` with these headers?

    ``frame-ancestors`` takes precedence over ``X-Frame-Options`` in current browsers.
    """
    directives = frame_ancestors_directives(csp_headers)
    if directives:
        shown = "; ".join(f"frame-ancestors {d}".strip() for d in directives)
        for source_list in directives:
            if not source_list_allows(source_list, origin, protected):
                return FramingDecision(False, f"frame-ancestors does not list {origin}", shown)
        return FramingDecision(True, f"frame-ancestors lists {origin}", shown)
    if x_frame_options:
        value = x_frame_options.strip().upper()
        shown = f"X-Frame-Options: {x_frame_options.strip()}"
        if value == "DENY":
            return FramingDecision(False, "X-Frame-Options DENY forbids any framing", shown)
        if value == "SAMEORIGIN":
            same = origin == protected
            reason = (
                "X-Frame-Options SAMEORIGIN and the page shares the portal's origin"
                if same
                else f"X-Frame-Options SAMEORIGIN forbids framing from {origin}"
            )
            return FramingDecision(same, reason, shown)
    return FramingDecision(
        True, "no frame-ancestors or X-Frame-Options: any origin may frame it", ""
    )
