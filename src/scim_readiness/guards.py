"""The production guard: nothing changes production data without someone saying so.

A run targets production when ``scalekit.expect`` says so *or* the environment URL is one
(the stricter of the two: a config saying ``development`` next to a ``*.scalekit.com`` URL is
a production run; see :func:`production_target`). Then checks that create test identities run
only with consent: ``--yes``, ``checks.allow_mutation: true`` in the config, or a "yes" typed
at the prompt :mod:`scim_readiness.cli.consent` shows when stdin and stderr are a terminal.
Without consent (always the case in CI without the flag or the setting) the runner records
those checks as SKIP with the reason; ``--read-only`` never asks and never mutates.

Against a production target nothing signed ever goes over plain ``http://``, consent or not:
a valid signature seen on the wire can be replayed for five minutes.
:func:`refuse_plain_http_signing` is that rule; the webhook senders call it before every
signed delivery.
"""

from __future__ import annotations

from scim_readiness.config import Config, Expect
from scim_readiness.errors import DeliveryRefused


def production_target(config: Config) -> str | None:
    """Why this run's target counts as production (None: it does not).

    The stricter of ``scalekit.expect`` and the tool's own reading of the environment URL
    wins, so a wrong ``expect`` can never lower the guard. A URL that cannot be classified
    counts as production: nothing shows that it is not.
    """
    from scim_readiness.environment_url import UrlClass, classify_environment_url

    if config.scalekit.expect is Expect.PRODUCTION:
        return "expect: production"
    url = config.scalekit.environment_url
    if not url:
        return None
    verdict = classify_environment_url(url)
    if verdict.url_class is UrlClass.PRODUCTION:
        return (
            f"the environment URL is a production environment ({verdict.reason}), "
            f"stricter than expect: {config.scalekit.expect.value}"
        )
    if verdict.url_class is UrlClass.INVALID:
        return (
            f"the environment URL cannot be classified ({verdict.reason}), so it is treated "
            f"as production, stricter than expect: {config.scalekit.expect.value}"
        )
    return None


def refuse_plain_http_signing(config: Config, url: str) -> None:
    """Raise :class:`DeliveryRefused` when a signed delivery to ``url`` would cross the wire
    in clear text towards a production target."""
    from urllib.parse import urlsplit

    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return  # not a URL: the HTTP client refuses it with its own message
    if scheme == "https":
        return
    why = production_target(config)
    if why is None:
        return
    raise DeliveryRefused(
        f"nothing signed was sent: the webhook URL uses {scheme or 'no'}:// (not https://) "
        f"and the target is production ({why})",
        hint="register and configure the https:// URL of the webhook endpoint; a signature "
        "seen in clear text can be replayed for five minutes",
    )
