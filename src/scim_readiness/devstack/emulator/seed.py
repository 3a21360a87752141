"""What the emulator starts with: one environment, its organisations, directories and roles.

A seed is plain data, loaded from YAML (``Seed.from_yaml``) or taken from ``default_seed()``;
``example_seed_path()`` is a commented file showing every option.
Unknown keys are errors, so a typo in a seed file is reported instead of silently ignored.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scim_readiness.errors import ConfigError

PROVIDERS = ("OKTA", "GOOGLE", "MICROSOFT_AD", "AUTH0", "ONELOGIN", "JUMPCLOUD", "PING_IDENTITY")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebhookSeed(_Part):
    url: str
    secret: str  # whsec_…


class RoleSeed(_Part):
    name: str
    display_name: str = ""
    description: str = ""


class SecretSeed(_Part):
    """Metadata of a directory's SCIM bearer token (what the Directory API shows)."""

    id: str = ""
    suffix: str = ""  # default: the last four characters of the directory's scim_token
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"
    create_time: dt.datetime | None = None
    expire_time: dt.datetime | None = None
    last_used_time: dt.datetime | None = None


class UserSeed(_Part):
    user_name: str
    email: str = ""  # default: user_name
    given_name: str = ""
    family_name: str = ""
    active: bool = True
    external_id: str = ""  # the IdP's id (dp_id); default: none, as some IdPs send none
    groups: list[str] = Field(default_factory=list)  # group display names or ids
    id: str = ""  # diruser_…; default: generated
    attributes: dict[str, Any] = Field(default_factory=dict)  # department, title, …


class GroupSeed(_Part):
    display_name: str
    external_id: str = ""
    id: str = ""  # dirgroup_…; default: generated


class DirectorySeed(_Part):
    id: str
    organization_id: str
    name: str = "SCIM directory"
    provider: str = "OKTA"
    enabled: bool = True
    scim_token: str = ""  # the bearer token an IdP uses; default: generated
    secrets: list[SecretSeed] = Field(default_factory=list)
    # group display name or dirgroup id -> role name
    role_assignments: dict[str, str] = Field(default_factory=dict)
    # SCIM attribute -> Scalekit field
    attribute_mappings: dict[str, str] = Field(default_factory=dict)
    users: list[UserSeed] = Field(default_factory=list)
    groups: list[GroupSeed] = Field(default_factory=list)


class OrganizationSeed(_Part):
    id: str
    display_name: str
    external_id: str = ""
    features: dict[str, bool] = Field(default_factory=lambda: {"dir_sync": True, "sso": False})
    metadata: dict[str, str] = Field(default_factory=dict)


class PortalSeed(_Part):
    # Host for portal links instead of the environment's own (a custom domain), e.g.
    # "127.0.0.1:8443"; links are still served by the emulator.
    domain: str | None = None
    frame_ancestors: list[str] = Field(default_factory=lambda: ["'self'"])
    link_lifetime_s: float = Field(default=60.0, gt=0)


class Seed(_Part):
    environment_id: str = "env_60219376000000001"
    client_id: str = "skc_60219375000000001"
    # Emulator-only credentials, printed by `emulate` on purpose; they open nothing real.
    client_secret: str = "test_emulator_client_secret_7f3a9c"  # noqa: S105
    token_lifetime_s: float = Field(default=3600.0, gt=0)
    webhooks: list[WebhookSeed] = Field(default_factory=list)
    roles: list[RoleSeed] = Field(default_factory=list)
    portal: PortalSeed = PortalSeed()
    organizations: list[OrganizationSeed] = Field(default_factory=list)
    directories: list[DirectorySeed] = Field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Seed:
        """Load a seed file; every problem is a ConfigError naming the file and the key."""
        import yaml

        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the seed file: {exc.strerror}", path=str(path)) from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None)
            raise ConfigError(
                f"the seed file is not valid YAML ({problem})"
                if problem
                else "the seed file is not valid YAML",
                path=str(path),
                line=mark.line + 1 if mark is not None else None,
            ) from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("the seed file must hold a mapping at the top", path=str(path))
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "") -> Seed:
        try:
            seed = cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise ConfigError(first["msg"], path=source, key=key) from exc
        seed.check_references(source)
        return seed

    def check_references(self, source: str = "") -> None:
        orgs = {org.id for org in self.organizations}
        for index, directory in enumerate(self.directories):
            if directory.organization_id not in orgs:
                raise ConfigError(
                    f"directory {directory.id} names organisation {directory.organization_id}, "
                    "which the seed does not define",
                    path=source,
                    key=f"directories.{index}.organization_id",
                )
            if directory.provider not in PROVIDERS:
                raise ConfigError(
                    f"unknown provider {directory.provider!r}; one of {', '.join(PROVIDERS)}",
                    path=source,
                    key=f"directories.{index}.provider",
                )


def example_seed_path() -> Path:
    """A commented seed file showing every option (a starting point for ``--seed``)."""
    return Path(__file__).with_name("example-seed.yaml")


def default_seed() -> Seed:
    """One organisation (external id ``tenant-acme``) with directory sync on, one enabled SCIM
    directory with a recently used active secret, a handful of users, two mapped groups."""
    now = dt.datetime.now(dt.UTC)
    org_id = "org_60219377000000001"
    # Not every user has an IdP id (dp_id) or a phone: receivers must cope, as in production.
    people = [
        ("ada.lovelace", "Ada", "Lovelace", ["Engineering"], "00u1ada8lovelace0x7"),
        ("grace.hopper", "Grace", "Hopper", ["Engineering", "Admins"], "00u2grace4hopper0x7"),
        ("alan.turing", "Alan", "Turing", ["Engineering"], "00u3alan5turing00x7"),
        ("katherine.johnson", "Katherine", "Johnson", ["Admins"], ""),
        ("edsger.dijkstra", "Edsger", "Dijkstra", [], ""),
    ]
    users = [
        UserSeed(
            user_name=f"{login}@acme-corp.example",
            given_name=given,
            family_name=family,
            groups=groups,
            external_id=external_id,
            attributes={"phone_number": "+1 555 0100"} if login == "grace.hopper" else {},
        )
        for login, given, family, groups, external_id in people
    ]
    return Seed(
        roles=[
            RoleSeed(name="admin", display_name="Admin", description="Manages the workspace"),
            RoleSeed(name="editor", display_name="Editor", description="Edits content"),
            RoleSeed(name="viewer", display_name="Viewer", description="Reads content"),
        ],
        organizations=[
            OrganizationSeed(id=org_id, display_name="Acme Corp", external_id="tenant-acme"),
        ],
        directories=[
            DirectorySeed(
                id="dir_60219378000000001",
                organization_id=org_id,
                name="Acme Okta",
                provider="OKTA",
                scim_token="scimtok_emulator_acme_4b1d9e2f",  # noqa: S106 - emulator-only
                secrets=[
                    SecretSeed(
                        id="dirsecret_60219382000000001",
                        create_time=now - dt.timedelta(days=30),
                        expire_time=now + dt.timedelta(days=335),
                        last_used_time=now - dt.timedelta(hours=2),
                    )
                ],
                role_assignments={"Engineering": "editor", "Admins": "admin"},
                attribute_mappings={
                    "userName": "preferred_username",
                    "emails[primary eq true].value": "email",
                    "name.givenName": "given_name",
                    "name.familyName": "family_name",
                },
                groups=[GroupSeed(display_name="Engineering"), GroupSeed(display_name="Admins")],
                users=users,
            )
        ],
    )
