"""Loading a readiness config: YAML, ``${ENV}`` interpolation, validation, precise errors.

Every problem becomes one :class:`~scim_readiness.errors.ConfigError` that names the file, the
line and the key, says what was expected and what was found, and how to fix it. The YAML is
*composed* (not just parsed) so each value keeps the line it came from.

Interpolation: ``${VAR}`` is the variable's value (an unset variable is an error),
``${VAR:-default}`` falls back when the variable is unset or empty, ``$${`` is a literal ``${``.
Secrets belong in the environment, never in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from scim_readiness.config import ENV_FALLBACKS, CheckSettings, ChecksSection, Config
from scim_readiness.errors import ConfigError, did_you_mean
from scim_readiness.plugin.options import CheckOptions, OptionError, describe_value

DEFAULT_CONFIG = "readiness.yaml"
CONFIG_ENV = "SCIM_READINESS_CONFIG"

# Config keys filled from the environment when the file leaves them empty, so CI can keep
# every credential in its secret store.
_RUN_WIDE_CHECK_KEYS = ("allow_mutation", "timeout_s")
MAX_NODES = 100_000
# A config nests five or six levels; thousands would exhaust the recursion of the YAML
# composer (and of every walker after it), so nesting is refused at this depth.
MAX_DEPTH = 32


class _DepthLimitedLoader(yaml.SafeLoader):
    """The safe loader, refusing collections nested deeper than MAX_DEPTH before the
    composer's own recursion can run out (it recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, f"values nested deeper than {MAX_DEPTH} levels", mark
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_INTERPOLATION = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

Loc = tuple[str | int, ...]


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Source:
    """The file being loaded plus the line of every key, for messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[Loc, int] = {}
        self.nodes = 0

    def line_of(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    def error(
        self, message: str, loc: Loc, *, hint: str = "", line: int | None = None
    ) -> ConfigError:
        return ConfigError(
            message,
            path=self.path,
            line=line if line is not None else self.line_of(loc),
            key=_dotted(loc),
            hint=hint,
        )


def _interpolate(text: str, source: _Source, loc: Loc, line: int) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        name, sep, default = body.partition(":-")
        if not _VAR_NAME.match(name):
            raise source.error(
                f"malformed variable reference ${{{body}}}",
                loc,
                line=line,
                hint="write ${NAME} or ${NAME:-default}; write $${ for a literal ${",
            )
        value = os.environ.get(name)
        if sep:
            return value if value else default
        if value is None:
            raise source.error(
                f"environment variable {name} is not set",
                loc,
                line=line,
                hint=f"export {name}=… before running, or write ${{{name}:-default}} in the config",
            )
        return value

    return _INTERPOLATION.sub(replace, text)


def _to_data(node: yaml.Node, source: _Source, loc: Loc, loader: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    source.lines.setdefault(loc, line)
    source.nodes += 1
    if source.nodes > MAX_NODES:
        # YAML aliases can make a few lines expand into billions of values.
        raise source.error(f"the config expands to more than {MAX_NODES} values", loc, line=line)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        raise source.error(f"unsupported YAML tag {node.tag}", loc, line=line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise source.error(
                    "a key must be a plain word", loc, line=key_node.start_mark.line + 1
                )
            key = str(key_node.value)
            if key == "<<":
                raise source.error("YAML merge keys (<<) are not supported", loc, line=line)
            child = (*loc, key)
            if key in out:
                raise source.error(
                    f"key {key!r} appears twice",
                    child,
                    line=key_node.start_mark.line + 1,
                    hint="YAML would silently keep the last one; delete one of them",
                )
            source.lines[child] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, source, child, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_data(item, source, (*loc, i), loader) for i, item in enumerate(node.value)]
    # Scalars are typed (ints, bools, null, dates) exactly as yaml.safe_load would.
    data = loader.construct_object(node, deep=True)
    if isinstance(data, str):
        return _interpolate(data, source, loc, line)
    return data


def _compose(text: str, source: _Source) -> Any:
    # The reader checks every character as the loader is built, so building it can already
    # fail on a control character.
    try:
        loader = _DepthLimitedLoader(text)
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, text, source) from None
    try:
        return _compose_with(loader, source)
    finally:
        loader.dispose()


def _compose_with(loader: yaml.SafeLoader, source: _Source) -> Any:
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise _unreadable(exc, loader.buffer, source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "malformed YAML"
        raise ConfigError(
            f"invalid YAML: {problem}",
            path=source.path,
            line=mark.line + 1 if mark is not None else None,
            hint="check the indentation and quoting around that line",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=source.path) from None
    if node is None:
        raise ConfigError(
            "the config file is empty",
            path=source.path,
            hint="`scim-readiness config init` writes a commented starter",
        )
    try:
        data = _to_data(node, source, (), loader)
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"invalid YAML value: {exc.problem}",
            path=source.path,
            line=mark.line + 1 if mark is not None else None,
        ) from None
    if not isinstance(data, dict):
        raise source.error(
            f"expected a mapping of sections (scalekit:, webhook:, …), got {describe_value(data)}",
            (),
        )
    return data


def _unreadable(exc: yaml.reader.ReaderError, text: str, source: _Source) -> ConfigError:
    """A character YAML does not allow (a control character, mostly) as a located error."""
    character = exc.character
    code = ord(character) if isinstance(character, str) else int(character)
    shown = f"U+{code:04X}"
    return ConfigError(
        f"invalid character {shown} in the file (YAML allows no control characters)",
        path=source.path,
        line=text.count("\n", 0, max(exc.position, 0)) + 1,
        hint="remove that character; a value that needs it can be quoted with an escape",
    )


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``."""
    if get_origin(annotation) in (Union, type(int | None)):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The config model that owns the keys at ``loc``, for "did you mean"."""
    current: Any = Config
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if current is ChecksSection and part not in _RUN_WIDE_CHECK_KEYS:
                current = CheckSettings
                continue
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _message(error: Mapping[str, Any], loc: Loc) -> tuple[str, str]:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1])
        choices = list(owner.model_fields) if owner is not None else []
        choices = [c for c in choices if c != "source_path"]
        hint = f"allowed here: {', '.join(choices)}" if choices else ""
        return f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), choices)}", hint
    if kind == "missing":
        parent = _dotted(loc[:-1]) or "the top level"
        return "required key is missing", f"add {loc[-1]}: … under {parent}"
    if kind in ("literal_error", "enum"):
        return f"expected one of {ctx.get('expected', '?')}, got {describe_value(value)}", ""
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}", ""
    # Range checks and the rest: pydantic's wording is already precise ("greater than 0").
    text = str(error.get("msg", "invalid value"))
    text = text[0].lower() + text[1:] if text else "invalid value"
    if value is not None and not isinstance(value, dict | list):
        text += f", got {describe_value(value)}"
    return text, ""


def _raise_validation(exc: ValidationError, source: _Source, prefix: Loc = ()) -> None:
    errors = exc.errors(include_url=False)
    messages = []
    for error in errors:
        loc = prefix + tuple(error["loc"])
        message, hint = _message(error, loc)
        messages.append((loc, message, hint))
    loc, message, hint = messages[0]
    err = source.error(message, loc, hint=hint)
    for extra_loc, extra_message, _ in messages[1:4]:
        where = source.error(extra_message, extra_loc)
        err.message += f"\n  also {where.message}"
    if len(messages) > 4:
        err.message += f"\n  … and {len(messages) - 4} more"
    err.args = (err.message,)
    raise err


def _apply_env_fallbacks(data: dict[str, Any]) -> list[str]:
    """Fill empty keys from their variables; the dotted keys filled."""
    filled: list[str] = []
    for (section, key), var in ENV_FALLBACKS.items():
        value = os.environ.get(var)
        if not value:
            continue
        block = data.get(section)
        if block is None:
            block = data[section] = {}
        if isinstance(block, dict) and not block.get(key):
            block[key] = value
            filled.append(f"{section}.{key}")
    return filled


#: Each check id's options model (None: the check declares none and its options go unchecked).
OptionModels = Mapping[str, type[CheckOptions] | None]


def _check_entries(
    data: dict[str, Any],
    source: _Source,
    check_ids: Collection[str] | None,
    check_options: OptionModels | None,
) -> None:
    checks = data.get("checks")
    if checks is None:
        return
    if not isinstance(checks, dict):
        raise source.error(
            f"expected a mapping (key: value lines), got {describe_value(checks)}", ("checks",)
        )
    for key, value in checks.items():
        if key in _RUN_WIDE_CHECK_KEYS:
            continue
        loc: Loc = ("checks", key)
        if check_ids is not None and key not in check_ids:
            raise source.error(
                f"unknown check {key!r}{did_you_mean(key, [*check_ids, *_RUN_WIDE_CHECK_KEYS])}",
                loc,
                hint="`scim-readiness checks` lists the check ids",
            )
        try:
            settings = CheckSettings.model_validate(value or {})
        except ValidationError as exc:
            _raise_validation(exc, source, loc)
            raise  # unreachable: _raise_validation always raises
        model = (check_options or {}).get(key)
        if model is not None:
            _check_options(model, settings.options, source, (*loc, "options"))


def _check_options(
    model: type[CheckOptions], options: Mapping[str, Any], source: _Source, loc: Loc
) -> None:
    """``checks.<id>.options`` against the check's declared model."""
    try:
        model.parse(options, key=_dotted(loc))
    except OptionError as exc:
        raise source.error(exc.option_message, (*loc, *exc.option_path), hint=exc.hint) from None


def _cross_checks(config: Config, source: _Source) -> None:
    for key in ("url", "health_url"):
        url = getattr(config.webhook, key)
        if url and not _is_http_url(url):
            raise source.error(
                f"webhook.{key} must be an http(s) URL, got {_shown_scheme(url)}",
                ("webhook", key),
                hint="Scalekit delivers webhooks over HTTPS: https://<public host>/<path>",
            )
    probe = config.probe
    if probe is not None and getattr(probe, probe.kind) is None:
        raise source.error(
            f"probe.kind is {probe.kind!r} but there is no probe.{probe.kind} section",
            ("probe", "kind"),
            hint=f"add a probe.{probe.kind}: block (see readiness.example.yaml)",
        )
    if probe is not None:
        sub = getattr(probe, probe.kind)
        if not (sub.user_by_email or sub.user_by_id or sub.list_users):
            raise source.error(
                f"probe.{probe.kind} defines none of user_by_email, user_by_id, list_users",
                ("probe", probe.kind),
                hint="a probe needs at least one way to read users",
            )


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _shown_scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isalnum() else "no absolute URL"


# A webhook signing secret as Scalekit shows it; only the prefix is ever printed.
_LITERAL_WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=_-]{8,}")


def literal_secret_warnings(text: str, path: str = "<string>") -> list[str]:
    """A warning for each line of config text that holds a webhook secret itself instead of
    a ``${ENV_VAR}`` reference (the file then leaks it to whoever can read it or its
    history). The secret is never repeated."""
    warnings = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0]
        if _LITERAL_WEBHOOK_SECRET.search(code):
            warnings.append(
                f"{path}:{number}: warning: a literal webhook secret (whsec_…) is written in "
                "the config; reference an environment variable instead, e.g. "
                "secret: ${SCALEKIT_WEBHOOK_SECRET}"
            )
    return warnings


def readiness_gaps(config: Config) -> list[str]:
    """What a config that validates still lacks before a run can evaluate anything, as a
    fresh ``config init`` file lacks it: one line per gap, naming the checks it costs and
    how (SKIP or ERROR). No network."""
    gaps = []
    section = config.scalekit
    missing = [
        f"scalekit.{name}"
        for name in ("environment_url", "client_id", "client_secret")
        if not getattr(section, name)
    ]
    if missing and section.model_fields_set:  # an absent section: the checks SKIP, said below
        gaps.append(
            f"{', '.join(missing)} empty: environment and admin-portal would ERROR (no "
            "Scalekit token), data-model and group-roles could not read the directory; set "
            "SCALEKIT_ENVIRONMENT_URL, SCALEKIT_CLIENT_ID and SCALEKIT_CLIENT_SECRET"
        )
    if not config.webhook.url:
        gaps.append(
            "webhook.url empty: webhook-endpoint, webhook-signature, user-lifecycle and "
            "bad-data would SKIP (nothing to deliver to); set it to the endpoint registered "
            "in Scalekit"
        )
    elif config.webhook.secret is None or not config.webhook.secret.get_secret_value():
        gaps.append(
            "webhook.secret empty: nothing signed can be sent, so webhook-signature, "
            "user-lifecycle and bad-data would SKIP and webhook-endpoint ERROR; set "
            "SCALEKIT_WEBHOOK_SECRET"
        )
    if (
        section.model_fields_set
        and section.organization_id is None
        and section.organization_external_id is None
    ):
        gaps.append(
            "scalekit.organization_id empty: events go to a placeholder organisation (WARN) "
            "and the organisation's directory cannot be found; set it (org_…)"
        )
    return gaps


#: Every finding code a waiver may name, with whose it is (a check id, or "(engine)").
CodeOwners = Mapping[str, str]


def _check_waivers(
    config: Config, source: _Source, codes: CodeOwners, check_ids: Collection[str] | None
) -> None:
    """Each waiver names a known code and, if it names a check, one that records that code."""
    from scim_readiness.engine.codes import ENGINE

    for i, waiver in enumerate(config.waivers):
        loc: Loc = ("waivers", i)
        owner = codes.get(waiver.code)
        if owner is None:
            hint = did_you_mean(waiver.code.strip().upper(), list(codes))
            raise source.error(
                f"unknown finding code {waiver.code!r}{hint}",
                (*loc, "code"),
                hint="`scim-readiness explain` lists the codes (docs/codes.md documents them)",
            )
        check = waiver.check
        if check is None:
            continue
        if check_ids is not None and check not in check_ids:
            raise source.error(
                f"unknown check {check!r}{did_you_mean(check, list(check_ids))}",
                (*loc, "check"),
                hint="`scim-readiness checks` lists the check ids",
            )
        if owner not in (ENGINE, check):
            raise source.error(
                f"{waiver.code} is a finding code of {owner}, not of {check}",
                (*loc, "check"),
                hint=f"write check: {owner}, or leave check out",
            )


def parse_config(
    text: str,
    *,
    path: str = "<string>",
    check_ids: Collection[str] | None = None,
    check_options: OptionModels | None = None,
    codes: CodeOwners | None = None,
) -> Config:
    """Validate config text. ``check_ids`` (when given) are the ids allowed under ``checks:``;
    ``check_options`` (when given) the options models their ``options`` must fit; ``codes``
    (when given) the finding codes a waiver may name."""
    source = _Source(path)
    data = _compose(text, source)
    if "source_path" in data:
        raise source.error("unknown key 'source_path'", ("source_path",))
    _check_entries(data, source, check_ids, check_options)
    from_environment = _apply_env_fallbacks(data)
    data["source_path"] = path
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        _raise_validation(exc, source)
        raise  # unreachable: _raise_validation always raises
    _cross_checks(config, source)
    if codes is not None:
        _check_waivers(config, source, codes, check_ids)
    return config.with_values_from_environment(from_environment)


def load_config(
    path: str | os.PathLike[str],
    *,
    check_ids: Collection[str] | None = None,
    check_options: OptionModels | None = None,
) -> Config:
    """Read and validate a config file. Unknown check ids under ``checks:`` are errors, and so
    are options that do not fit their check's model; without ``check_ids``, the allowed ids and
    the options models are the discovered checks'."""
    shown = str(path)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found",
            path=shown,
            hint="pass -c PATH, set SCIM_READINESS_CONFIG, or create one with "
            "`scim-readiness config init`",
        ) from None
    except IsADirectoryError:
        raise ConfigError("expected a config file, found a directory", path=shown) from None
    except UnicodeDecodeError:
        raise ConfigError("the config file is not UTF-8 text", path=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", path=shown) from None
    codes: CodeOwners | None = None
    if check_ids is None:
        from scim_readiness.engine.codes import catalogue
        from scim_readiness.engine.registry import discover

        infos = [spec.info for spec in discover()]
        check_ids = [info.id for info in infos]
        check_options = {info.id: info.options for info in infos}
        codes = {entry.code.code: entry.owner for entry in catalogue(infos)}
    config = parse_config(
        text, path=shown, check_ids=check_ids, check_options=check_options, codes=codes
    )
    import sys

    for warning in literal_secret_warnings(text, shown):
        print(warning, file=sys.stderr)  # diagnostics go to stderr, the report to stdout
    return config


def starter_text() -> str:
    """The commented starter config that ``config init`` writes."""
    from importlib.resources import files

    return files("scim_readiness").joinpath("starter.yaml").read_text(encoding="utf-8")
