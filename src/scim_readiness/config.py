"""Typed configuration: what a readiness run needs to know about the deployment under test.

Loading (YAML, ``${ENV}`` interpolation, error messages with file and line) lives in
``config_file``; this module only declares the shape. Every section but ``scalekit`` and
``webhook`` is optional: a check whose section is absent reports SKIP with the reason.
Secret fields are ``SecretStr`` so they never print, not even in a traceback's repr.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator


class Section(BaseModel):
    # Unknown keys are errors ("did you mean …"), never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(enum.StrEnum):
    PRODUCTION = "production"
    STAGING = "staging"
    DEVELOPMENT = "development"


class ScalekitSection(Section):
    environment_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    expect: Expect = Expect.PRODUCTION
    organization_id: str | None = None
    organization_external_id: str | None = None
    directory_id: str | None = None
    # Bounds every SDK call; the SDK's own defaults are 10-20 s per call.
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class WebhookSection(Section):
    url: str | None = None
    secret: SecretStr | None = None
    allowed_hosts: tuple[str, ...] = ()
    latency_budget_s: float = Field(default=3.0, gt=0, le=60)
    # Optional: an unauthenticated liveness URL the bad-data check polls after its barrage.
    health_url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class HttpProbeFields(Section):
    """Where, in the probe's JSON for one user, each fact lives (dotted paths)."""

    id: str = "id"
    directory_user_id: str = "directory_user_id"
    email: str = "email"
    name: str = "name"
    active: str = "active"
    roles: str = "roles"
    tenant: str = "tenant"
    attributes: str = "attributes"


class ProbeShape(Section):
    """How the probe's JSON answers are laid out and paged; shared by both probe kinds."""

    fields: HttpProbeFields = HttpProbeFields()
    # Where the user sits in a single-user answer ("" = the answer is the user, "user" for
    # {"user": {...}}); a null or absent value there means "no such user".
    user_path: str = ""
    # Where the list of users sits in a list answer ("" = the answer is the list itself).
    items_path: str = "users"
    # Paging: "cursor" follows next_cursor_path into {cursor}; "page" counts pages into
    # {page}, reading the next page number at next_page_path (null or absent: last page).
    # Left out, it follows the list_users template: {page} means page paging.
    paging: Literal["cursor", "page"] | None = None
    next_cursor_path: str = "next_cursor"
    next_page_path: str = "next_page"
    first_page: int = Field(default=1, ge=0, le=1_000_000)
    # A probe without user_by_email or user_by_id finds users by scanning list_users; each
    # such lookup reads at most this many users (a larger list makes the lookup an error,
    # never a silent "not there").
    scan_limit: int = Field(default=10_000, gt=0, le=1_000_000)

    def paging_mode(self, list_template: str) -> Literal["cursor", "page"]:
        if self.paging is not None:
            return self.paging
        return "page" if "{page}" in list_template else "cursor"


class HttpProbe(ProbeShape):
    user_by_email: str | None = None  # URL template with {email}
    user_by_id: str | None = None  # URL template with {directory_user_id}
    # URL template with {cursor} (empty for the first page) or {page}; or neither when the
    # app answers every user at once.
    list_users: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_s: float = Field(default=5.0, gt=0, le=120)


class CommandProbe(ProbeShape):
    user_by_email: list[str] | None = None  # argv template with {email}; no shell
    user_by_id: list[str] | None = None  # argv template with {directory_user_id}
    list_users: list[str] | None = None  # argv template with {cursor} or {page}
    timeout_s: float = Field(default=10.0, gt=0, le=300)


class AccessProbe(Section):
    """Whether a test user can still act. ``issue``: a URL (POST) or argv template with
    ``{directory_user_id}``/``{email}`` answering JSON with a session and an API token for
    the user. ``check``: a URL (GET; the session sent as a cookie, the token as a bearer)
    answering 200 or 401/403, or an argv template with ``{kind}`` and ``{credential}``
    printing ``{"allowed": true|false}``."""

    issue: str | list[str]
    check: str | list[str]
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # sent to the issue hook
    session_path: str = "session"
    token_path: str = "api_token"  # noqa: S105 - a JSON path, not a secret
    session_cookie: str = "session"
    timeout_s: float = Field(default=5.0, gt=0, le=120)


class ProbeSection(Section):
    kind: Literal["http", "command"]
    http: HttpProbe | None = None
    command: CommandProbe | None = None
    access: AccessProbe | None = None


class ScimIdpSection(Section):
    """The directory's SCIM endpoint, for driving changes as an IdP would."""

    url: str
    token: SecretStr
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class RolesSection(Section):
    map: dict[str, str] = Field(default_factory=dict)  # directory group display name -> role
    default_role: str | None = None
    combine: Literal["all", "highest"] = "all"
    precedence: tuple[str, ...] = ()  # highest first; used when combine is "highest"


class DataModelSection(Section):
    required_attributes: tuple[str, ...] = ()
    # The app's tenant id for the organisation; defaults to the organisation's external_id.
    expected_tenant: str | None = None
    keep_records_on_delete: bool = True


class Attestation(Section):
    item: str
    who: str
    when: str
    what: str


class PortalLinkEndpoint(Section):
    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # authenticated caller
    link_path: str = "location"  # where the link sits in the JSON answer


class AdminPortalSection(Section):
    expected_domain: str | None = None  # custom portal domain, when one is set up
    embedding_origin: str | None = None  # the app's origin that frames the portal
    app_link_endpoint: PortalLinkEndpoint | None = None
    max_link_lifetime_s: float = Field(default=300.0, gt=0)
    attestations: tuple[Attestation, ...] = ()
    required_attestations: tuple[str, ...] = ("branding",)


class TestOrganizationSection(Section):
    """An organisation (and its directory) that exists for testing only: checks that act on
    a whole organisation (directory_disabled, a second tenant) run only against it."""

    __test__ = False

    organization_id: str
    directory_id: str | None = None


class TestIdentitiesSection(Section):
    __test__ = False  # not a pytest class, whatever its name says

    email_domain: str = "scim-readiness.example.invalid"
    name_prefix: str = "zz-scim-readiness"


class CheckSettings(Section):
    enabled: bool = True
    timeout_s: float | None = Field(default=None, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)


class ChecksSection(BaseModel):
    """Run-wide switches plus one entry per check id (validated against the registry)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    allow_mutation: bool = False
    timeout_s: float = Field(default=120.0, gt=0)

    def for_check(self, check_id: str) -> CheckSettings:
        extra = self.model_extra or {}
        raw = extra.get(check_id)
        if isinstance(raw, CheckSettings):
            return raw
        return CheckSettings.model_validate(raw or {})

    def configured_ids(self) -> tuple[str, ...]:
        return tuple((self.model_extra or {}).keys())


class Waiver(Section):
    """A known finding the team accepts for now: its code (``scim-readiness explain CODE``),
    optionally only for one check or one target, with who decided, why, and until when.
    The loader checks the code and check against the installed catalogues."""

    code: str = Field(description="The finding code, e.g. ADM003 (see docs/codes.md).")
    check: str | None = Field(default=None, description="Only for this check id.")
    target: str | None = Field(
        default=None, description="Only when the webhook or environment URL is this one."
    )
    reason: str = Field(min_length=1, description="Why the finding is accepted for now.")
    owner: str = Field(min_length=1, description="Who answers for it (a person or a team).")
    expires: datetime.date = Field(
        description="ISO date (YYYY-MM-DD) from which the waiver no longer holds."
    )


class Config(Section):
    scalekit: ScalekitSection = ScalekitSection()
    webhook: WebhookSection = WebhookSection()
    probe: ProbeSection | None = None
    scim_idp: ScimIdpSection | None = None
    roles: RolesSection | None = None
    data_model: DataModelSection | None = None
    admin_portal: AdminPortalSection | None = None
    test_identities: TestIdentitiesSection = TestIdentitiesSection()
    test_organization: TestOrganizationSection | None = None
    checks: ChecksSection = ChecksSection()
    waivers: tuple[Waiver, ...] = ()  # findings accepted for now (see engine.waivers)
    ledger_path: str | None = None  # default: .scim-readiness/ledger.jsonl next to the config
    # Where the config came from, for messages and for resolving relative paths.
    source_path: str | None = Field(default=None, exclude=True)
    # Dotted keys the loader filled from their SCALEKIT_* variable because the file left them
    # empty; not part of the schema (the file cannot set it), never serialised.
    _from_environment: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @field_validator("checks", mode="before")
    @classmethod
    def _checks_entries(cls, value: Any) -> Any:
        if isinstance(value, dict):
            fixed = {}
            for key, item in value.items():
                if key in ("allow_mutation", "timeout_s"):
                    fixed[key] = item
                else:
                    fixed[key] = CheckSettings.model_validate(item or {})
            return fixed
        return value

    @property
    def from_environment(self) -> frozenset[str]:
        """Keys (``scalekit.client_secret``) whose value came from a ``SCALEKIT_*`` variable."""
        return self._from_environment

    def with_values_from_environment(self, keys: Iterable[str]) -> Config:
        """A copy that records ``keys`` as filled from the environment (the loader's call)."""
        copy = self.model_copy()
        copy._from_environment = frozenset(keys)
        return copy

    def target(self) -> str:
        """A human label for what is being checked."""
        return self.scalekit.environment_url or self.webhook.url or "(no target configured)"

    def secret_values(self) -> list[str]:
        """Every secret the config holds, for the redactor."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, SecretStr):
                value = node.get_secret_value()
                if value:
                    found.append(value)
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
                for value in (node.model_extra or {}).values():
                    walk(value)
            elif isinstance(node, dict):
                for value in node.values():
                    walk(value)
            elif isinstance(node, list | tuple):
                for value in node:
                    walk(value)

        walk(self)
        return found


#: Settings a config may leave out and take from the environment instead.
ENV_FALLBACKS: Mapping[tuple[str, str], str] = {
    ("scalekit", "environment_url"): "SCALEKIT_ENVIRONMENT_URL",
    ("scalekit", "client_id"): "SCALEKIT_CLIENT_ID",
    ("scalekit", "client_secret"): "SCALEKIT_CLIENT_SECRET",
    ("webhook", "secret"): "SCALEKIT_WEBHOOK_SECRET",
}
