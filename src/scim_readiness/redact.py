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
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "***"
# The marker excerpts of answers use: a visible word reads better inside an HTTP body.
REDACTED = "<redacted>"

# Secrets shorter than this are not treated as secrets: masking every "abc" in a report
# would destroy it, and no real credential is that short.
MIN_SECRET_LENGTH = 4

# A query parameter is a credential when its name, lower-cased and with separators removed
# (``api-key``, ``X_Api_Key``, ``client.secret``, ``accessToken``), contains one of these.
# Erring on the side of masking costs a readable ``?zipcode=`` now and then; missing one
# prints a credential.
_CREDENTIAL_WORDS = (
    "token",
    "code",
    "secret",
    "signature",
    "sig",
    "key",
    "jwt",
    "session",
    "auth",
    "password",
    "passwd",
    "pass",
    "credential",
    "magic",
)
_QUERY_PARAM = re.compile(
    r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.~%-]{1,100})=)(?P<value>[^&#\s\"'<>]+)"
)
_NAME_SEPARATORS = re.compile(r"[-_.~]|%2[dDeE]|%5[fF]")
# ``scheme://user:password@host``: everything between ``//`` and ``@`` is user-info, and a
# password (or a token used as the user name) is a secret.
_USERINFO = re.compile(r"(?P<lead>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<value>[^/\s@?#<>\"']+)@")
# Signing secrets and signatures an app might echo back in an error page.
_SECRETISH = re.compile(r"whsec_[A-Za-z0-9+/=_-]+|v1,[A-Za-z0-9+/]{20,}={0,2}")
# A cut-off secret: a text shortened by "…" (or at its very end) may end in the first
# characters of a secret that was cut before anything could recognise it whole.
_CUT_MARK = "…"
_MIN_CUT_PIECE = 6


def is_credential_name(name: str) -> bool:
    """Whether a query parameter (or header) named ``name`` carries a credential."""
    plain = _NAME_SEPARATORS.sub("", name).lower()
    return any(word in plain for word in _CREDENTIAL_WORDS)


def _mask_query(match: re.Match[str], mask: str) -> str:
    if is_credential_name(match.group("name")):
        return match.group("lead") + mask
    return match.group(0)


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


def mask_url_tokens(text: str, mask: str = MASK) -> str:
    """Mask credential-bearing parts of URLs: user-info, credential-like query values,
    magic-link paths, and Authorization values."""
    text = _USERINFO.sub(lambda m: m.group("lead") + mask + "@", text)
    text = _QUERY_PARAM.sub(lambda m: _mask_query(m, mask), text)
    text = _MAGIC_PATH.sub(lambda m: m.group("lead") + mask, text)
    return _BEARER.sub(lambda m: m.group("lead") + mask, text)


def _mask_cut_pieces(text: str, forms: Iterable[str], mask: str) -> str:
    """Mask the start of a secret left dangling where the text was cut (before ``…`` or at
    its end): redacting happens before cutting everywhere in the product, and this keeps a
    cut made elsewhere (a library's message, an app's own truncation) from showing a piece."""
    ends = [i for i, ch in enumerate(text) if ch == _CUT_MARK[0]] + [len(text)]
    for end in sorted(set(ends), reverse=True):
        best = 0
        for form in forms:
            top = min(len(form) - 1, end)
            for k in range(top, _MIN_CUT_PIECE - 1, -1):
                if k > best and text.endswith(form[:k], 0, end):
                    best = k
                    break
        if best:
            text = text[: end - best] + mask + text[end:]
    return text


def redact_text(text: str, secrets: Iterable[str] = (), mask: str = MASK) -> str:
    """The one redaction of the product: known secrets (and their encodings) and pieces of
    them left by a cut, signing secrets and signatures, and URL credentials."""
    forms: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            forms |= _variants(secret)
    if forms:
        ordered = sorted(forms, key=len, reverse=True)
        text = re.sub("|".join(re.escape(f) for f in ordered), mask, text)
        text = _mask_cut_pieces(text, ordered, mask)
    text = _SECRETISH.sub(mask, text)
    return mask_url_tokens(text, mask)


def redact_signature_headers(headers: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """A copy of ``headers`` fit for output: the values of the signature headers ``names``
    replaced (signatures are bearer proofs), and credential-named headers masked."""
    wanted = {name.lower() for name in names}
    return {
        name: (
            ("v1," + REDACTED if name.lower() in wanted else MASK)
            if value and (name.lower() in wanted or _is_credential_header(name))
            else value
        )
        for name, value in headers.items()
    }


def _is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("authorization", "proxy-authorization", "cookie", "x-api-key")


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
            s = _mask_cut_pieces(s, self._forms, MASK)
        return mask_url_tokens(_SECRETISH.sub(MASK, s))

    def __call__(self, s: str) -> str:
        return self.text(s)


NO_SECRETS = Redactor()
