"""Keep secrets out of everything the tool prints or writes.

Every renderer and the CLI's error printer pass their text through a :class:`Redactor`.
It replaces each known secret, and the forms a secret takes on its way through HTTP, JSON
and HTML (URL-encoded, JSON-escaped, HTML-escaped, ``whsec_`` prefix stripped), by ``***``,
and masks token-like query parameters and magic-link paths in URLs, because portal links are
secrets of their own that the tool only learns at run time.

This is a safety net: checks must still never put a secret into a finding.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "***"

# Secrets shorter than this are not treated as secrets: masking every "abc" in a report
# would destroy it, and no real credential is that short.
MIN_SECRET_LENGTH = 4

# Query parameters whose values are credentials in every API we talk to.
_TOKEN_PARAMS = (
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "code",
    "secret",
    "client_secret",
    "signature",
    "sig",
    "key",
    "api_key",
    "apikey",
    "jwt",
    "session",
    "auth",
    "password",
    "link_token",
    "magic",
)
_QUERY_TOKEN = re.compile(
    r"(?P<lead>[?&;](?:"
    + "|".join(re.escape(p) for p in _TOKEN_PARAMS)
    + r")=)(?P<value>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)
# Portal magic links carry their credential in the path: /magicLink/<opaque>.
_MAGIC_PATH = re.compile(r"(?P<lead>/magic-?link/)(?P<value>[A-Za-z0-9._~%+=-]{8,})", re.IGNORECASE)
# Authorization headers that slipped into a message.
_BEARER = re.compile(
    # A credential has a digit or punctuation in it; "Basic authentication" stays readable.
    r"(?P<lead>\b(?:bearer|basic)\s+)(?P<value>(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])"
    r"[A-Za-z0-9._~+/=-]{8,})",
    re.IGNORECASE,
)


def _variants(secret: str) -> set[str]:
    forms = {secret, secret.strip()}
    if secret.startswith("whsec_"):
        forms.add(secret[len("whsec_") :])
    plain = set(forms)
    for form in plain:
        for encoded in (quote(form, safe=""), quote_plus(form)):
            forms.add(encoded)
            # Percent-escapes in lower case are just as valid (%2f for %2F).
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
        forms.add(json.dumps(form)[1:-1])
        forms.add(html.escape(form))
        forms.add(base64.b64encode(form.encode()).decode())
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def mask_url_tokens(text: str) -> str:
    """Mask credential-bearing parts of URLs: token-like query values and magic-link paths."""
    text = _QUERY_TOKEN.sub(lambda m: m.group("lead") + MASK, text)
    text = _MAGIC_PATH.sub(lambda m: m.group("lead") + MASK, text)
    return _BEARER.sub(lambda m: m.group("lead") + MASK, text)


class Redactor:
    """Replaces known secrets (and their obvious encodings) and URL tokens by ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        """Register more secrets, e.g. a portal link generated during the run."""
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                self._forms |= _variants(secret)
        # Longest first, so a secret is replaced whole rather than a shorter form inside it.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(f) for f in ordered)) if ordered else None

    def text(self, s: str) -> str:
        if self._pattern is not None:
            s = self._pattern.sub(MASK, s)
        return mask_url_tokens(s)

    def __call__(self, s: str) -> str:
        return self.text(s)


NO_SECRETS = Redactor()
