"""Admin portal links are bearer secrets: whoever holds one can change the organisation's SSO
and SCIM settings. This module turns a link into something safe to show (host and the shape
of the path) and finds links in an app's JSON answers without echoing them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_WORD = re.compile(r"[A-Za-z][A-Za-z_-]{0,23}")


def link_shape(url: str) -> str:
    """``https://portal.example.com/magicLink/…``: scheme, host, port and the literal path
    words; every segment that could carry a token becomes ``…``; query and fragment are
    dropped."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "(not a URL)"
    segments = [
        segment if _WORD.fullmatch(segment) and not _looks_random(segment) else "…"
        for segment in parts.path.split("/")
        if segment
    ]
    path = "/" + "/".join(segments) if segments else ""
    tail = "?…" if parts.query else ""
    scheme = parts.scheme or "?"
    return f"{scheme}://{host}{port}{path}{tail}"


def _looks_random(segment: str) -> bool:
    # Long mixed-case runs without separators are tokens, not route words.
    upper = sum(c.isupper() for c in segment)
    return len(segment) > 12 and upper > 3


def find_path(document: Any, path: str) -> Any:
    """The value at a dotted path (``data.location``) in parsed JSON, or None."""
    node = document
    for key in path.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


_URL = re.compile(r"https?://[^\s\"'<>]+", re.IGNORECASE)


def body_carries_link(body: str, portal_hosts: set[str]) -> bool:
    """Whether a response body contains a URL on one of the portal's hosts (a leaked link)."""
    for match in _URL.finditer(body):
        try:
            host = (urlsplit(match.group(0)).hostname or "").lower()
        except ValueError:
            continue
        if host in portal_hosts:
            return True
    return False
