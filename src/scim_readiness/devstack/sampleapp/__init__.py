"""A small SaaS backend that does Scalekit SCIM provisioning right, with switchable flaws.

It verifies webhook signatures on the raw body with the SDK, upserts users keyed on the
directory user id, refuses email conflicts, deactivates on ``active:false`` and on delete,
applies every role, ignores unknown event types, and exposes an authenticated probe and an
authenticated admin-portal-link endpoint. Each name in ``FLAWS`` switches one of those
behaviours to a realistic mistake.

Importing this package is cheap; the web stack loads when ``serve_app`` runs.
"""

from __future__ import annotations

from scim_readiness.devstack.sampleapp.flaws import FLAWS, validate_flaws
from scim_readiness.devstack.sampleapp.server import RunningApp, serve_app
from scim_readiness.devstack.sampleapp.settings import AppSettings

__all__ = ["FLAWS", "AppSettings", "RunningApp", "serve_app", "validate_flaws"]
