"""Per-check options (``checks.<id>.options``), declared as a typed model with defaults.

A check declares its options as a subclass of :class:`CheckOptions`, one field per option,
each made with :func:`option` (its default, a one-line description, and bounds where they
exist), and names the class in ``CheckInfo(options=...)``::

    class Options(CheckOptions):
        warn_days: float = option(default=14, description="warn this many days ahead", ge=0)
        mode: Literal["events", "scim"] = option(default="events", description="how …")

    CHECK = CheckInfo(id="ninth", …, options=Options)

    async def run(ctx: CheckContext) -> None:
        opts = Options.of(ctx)          # typed: opts.warn_days is a float

Subclasses behave as frozen, keyword-only dataclasses (and type checkers see them so); a
field not made with :func:`option` is an error when the class is defined. The config loader
validates
``checks.<id>.options`` against the model (an unknown option or a mistyped value is a config
error with a did-you-mean), and the README's options table is rendered from the models, so
the model is the only place an option and its default are written down.

Supported field types: ``bool``, ``int``, ``float``, ``str`` (non-empty), ``Literal[...]``,
unions of these, ``None``; any other type needs ``parse=`` (a function from the raw YAML value
to the field's value that raises ValueError with a message). This module stays light: every
check module imports it, and ``scim-readiness checks`` must not pay for pydantic.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import (
    Any,
    ClassVar,
    Literal,
    Protocol,
    Self,
    TypeVar,
    Union,
    dataclass_transform,
    get_args,
    get_origin,
)

from scim_readiness.errors import ConfigError, PluginError, did_you_mean

T = TypeVar("T")


class OptionSpec:
    """What is declared about one option, and its name once its class is made.

    A plain class, not a dataclass, and so is every model: ``scim-readiness checks`` imports
    every check module, and generating dataclass methods for each model costs more start-up
    time than the whole of the rest of this module.
    """

    __slots__ = (
        "default",
        "description",
        "ge",
        "gt",
        "le",
        "name",
        "parse",
        "shown_default",
        "shown_type",
    )

    def __init__(
        self,
        default: Any,
        description: str,
        ge: float | None = None,  # inclusive lower bound
        gt: float | None = None,  # exclusive lower bound
        le: float | None = None,  # inclusive upper bound
        parse: Callable[[Any], Any] | None = None,
        shown_default: str = "",  # for a default decided at run time (e.g. from the run id)
        shown_type: str = "",  # what the README says the value is, for an option with parse=
    ) -> None:
        self.name = ""
        self.default = default
        self.description = description
        self.ge, self.gt, self.le = ge, gt, le
        self.parse = parse
        self.shown_default = shown_default
        self.shown_type = shown_type

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"option({self.name}, default={self.default!r})"


def option(
    *,
    default: T,
    description: str,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    parse: Callable[[Any], Any] | None = None,
    shown_default: str = "",
    shown_type: str = "",
) -> T:
    """One option of a :class:`CheckOptions` model (use as the field's default). Keyword-only:
    type checkers see the default only when it is passed as ``default=``."""
    spec: Any = OptionSpec(default, description, ge, gt, le, parse, shown_default, shown_type)
    return spec  # type: ignore[no-any-return]


class OptionError(ConfigError):
    """An option that does not fit its model; ``option_path`` is where, inside ``options``."""

    def __init__(self, message: str, option_path: tuple[str, ...], *, key: str, hint: str = ""):
        super().__init__(message, key=key, hint=hint)
        self.option_message = message
        self.option_path = option_path


class _Named(Protocol):
    @property
    def id(self) -> str: ...


class _Configured(Protocol):
    @property
    def options(self) -> Mapping[str, Any]: ...


class RunningCheck(Protocol):
    """What :meth:`CheckOptions.of` reads from a check's context (a CheckContext)."""

    @property
    def info(self) -> _Named: ...

    @property
    def settings(self) -> _Configured: ...

    @property
    def options(self) -> CheckOptions: ...


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(option,))
class CheckOptions:
    """Base of a check's options model; a check without options keeps this class itself."""

    _specs: ClassVar[tuple[OptionSpec, ...]] = ()
    _types: ClassVar[dict[str, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, OptionSpec] = {}
        for base in reversed(cls.__mro__):
            if base is CheckOptions or not issubclass(base, CheckOptions):
                continue
            for name, annotation in base.__dict__.get("__annotations__", {}).items():
                if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                    continue
                spec = base.__dict__.get(name)
                if not isinstance(spec, OptionSpec):
                    raise PluginError(
                        f"{base.__qualname__}.{name} is not declared with option()",
                        hint="write name: type = option(default=…, description='what it sets')",
                    )
                found[name] = spec
        cls._specs = tuple(found.values())
        cls._types = None

    def __init__(self, **values: Any) -> None:
        for spec in self._specs:
            object.__setattr__(self, spec.name, values.pop(spec.name, spec.default))
        if values:
            raise TypeError(f"{type(self).__name__} has no option {', '.join(values)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, spec.name) for spec in self._specs)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{spec.name}={getattr(self, spec.name)!r}" for spec in self._specs)
        return f"{type(self).__name__}({shown})"

    @classmethod
    def specs(cls) -> tuple[OptionSpec, ...]:
        """Every option of the model, in declaration order (inherited groups first)."""
        return cls._specs

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(spec.name for spec in cls.specs())

    @classmethod
    def parse(cls, raw: Mapping[str, Any], *, key: str = "options") -> Self:
        """The model filled from ``raw`` (the YAML mapping); OptionError for anything that
        does not fit. ``key`` is the dotted path of ``raw``, for messages."""
        names = cls.names()
        for name in raw:
            if name not in names:
                allowed = ", ".join(names) if names else "none"
                raise OptionError(
                    f"unknown option {name!r}{did_you_mean(str(name), names)}",
                    (str(name),),
                    key=f"{key}.{name}",
                    hint=f"options here: {allowed}",
                )
        values = {
            spec.name: _value(spec, cls._type_of(spec.name), raw[spec.name], key)
            if spec.name in raw
            else _default(spec, cls._type_of(spec.name))
            for spec in cls.specs()
        }
        return cls(**values)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of ``checks.<id>.options`` for this model (``config schema``)."""
        properties: dict[str, Any] = {}
        for spec in cls.specs():
            described: dict[str, Any] = {"description": spec.description}
            if spec.parse is None:
                described |= _schema_of(_alternatives(cls._type_of(spec.name)), spec)
            if not spec.shown_default and spec.default is not None:
                described["default"] = spec.default
            properties[spec.name] = described
        return {"type": "object", "properties": properties, "additionalProperties": False}

    @classmethod
    def of(cls, ctx: RunningCheck) -> Self:
        """The running check's options as this model: the parsed ones when the check declared
        a model that includes this one, otherwise this model's own fields read from the raw
        options (so a shared group of options works for any check)."""
        parsed = ctx.options
        if isinstance(parsed, cls):
            return parsed
        return cls.configured(ctx.settings.options, check_id=ctx.info.id)

    @classmethod
    def configured(cls, raw: Mapping[str, Any], *, check_id: str) -> Self:
        """This model's own fields read from a check's raw options (``checks.<id>.options``),
        the others left alone: for code that acts for a check outside its run (the removal
        sweep)."""
        mine = {name: raw[name] for name in cls.names() if name in raw}
        return cls.parse(mine, key=f"checks.{check_id}.options")

    @classmethod
    def _type_of(cls, name: str) -> Any:
        if cls._types is None:
            cls._types = _resolve_types(cls)
        return cls._types.get(name)


def _resolve_types(cls: type[CheckOptions]) -> dict[str, Any]:
    """Each field's annotation, evaluated in the module of the class that declared it (a field
    with ``parse=`` is never evaluated: its type may be imported for type checking only)."""
    specs = {spec.name: spec for spec in cls.specs()}
    types_: dict[str, Any] = {}
    for base in reversed(cls.__mro__):
        annotations = base.__dict__.get("__annotations__", {})
        namespace = vars(sys.modules[base.__module__])
        for name, annotation in annotations.items():
            spec = specs.get(name)
            if spec is None or spec.parse is not None:
                continue
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, dict(namespace))  # noqa: S307 - own source
                except Exception as exc:
                    raise PluginError(
                        f"{cls.__qualname__}.{name}: cannot read its type {annotation!r}: {exc}",
                        hint="import the names an option's type uses at module top, "
                        "or give the option parse=",
                    ) from None
            types_[name] = annotation
    return types_


def _default(spec: OptionSpec, annotation: Any) -> Any:
    # ``default=14`` on a float option still reads back as a float.
    if annotation is float and isinstance(spec.default, int):
        return float(spec.default)
    return spec.default


def _value(spec: OptionSpec, annotation: Any, raw: Any, key: str) -> Any:
    where = (spec.name,)
    if spec.parse is not None:
        try:
            return spec.parse(raw)
        except ValueError as exc:
            raise OptionError(str(exc), where, key=f"{key}.{spec.name}") from None
    problem = _problem(spec, annotation, raw)
    if problem:
        raise OptionError(
            f"option {spec.name} must be {problem}, got {describe_value(raw)}",
            where,
            key=f"{key}.{spec.name}",
            hint=f"remove it to use the default ({shown_default(spec)})",
        )
    return float(raw) if annotation is float else raw


def _problem(spec: OptionSpec, annotation: Any, raw: Any) -> str:
    """What the value should have been, or "" when it fits."""
    accepted = _alternatives(annotation)
    fitting = [kind for kind in accepted if _fits(kind, raw)]
    if not fitting:
        # "or null" helps nobody: an optional option is left out, not set to null.
        named = [kind for kind in accepted if kind is not None] or [None]
        return " or ".join(_wanted(kind, spec) for kind in named)
    if fitting[0] in (int, float) and (
        (spec.ge is not None and raw < spec.ge)
        or (spec.gt is not None and raw <= spec.gt)
        or (spec.le is not None and raw > spec.le)
    ):
        return _wanted(fitting[0], spec)
    return ""


def _alternatives(annotation: Any) -> list[Any]:
    """``int | Literal['a', 'b'] | None`` → [int, 'a', 'b', None] (literals as values)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [kind for arg in get_args(annotation) for kind in _alternatives(arg)]
    if get_origin(annotation) is Literal:
        return [_Literal(value) for value in get_args(annotation)]
    if annotation is type(None):
        return [None]
    if annotation in (bool, int, float, str):
        return [annotation]
    raise PluginError(
        f"option type {annotation!r} is not supported",
        hint="use bool, int, float, str, Literal[...] or None, or give the option parse=",
    )


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _schema_of(kinds: list[Any], spec: OptionSpec) -> dict[str, Any]:
    """The JSON Schema of the values ``kinds`` (from :func:`_alternatives`) accept."""
    choices: list[dict[str, Any]] = []
    literals = [kind.value for kind in kinds if isinstance(kind, _Literal)]
    if literals:
        choices.append({"enum": literals})
    for kind in kinds:
        if kind is None:
            choices.append({"type": "null"})
        elif kind in _JSON_TYPES:
            one: dict[str, Any] = {"type": _JSON_TYPES[kind]}
            if kind is str:
                one["minLength"] = 1
            if kind in (int, float):
                if spec.ge is not None:
                    one["minimum"] = spec.ge
                if spec.gt is not None:
                    one["exclusiveMinimum"] = spec.gt
                if spec.le is not None:
                    one["maximum"] = spec.le
            choices.append(one)
    return choices[0] if len(choices) == 1 else {"anyOf": choices}


class _Literal:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _fits(kind: Any, raw: Any) -> bool:
    if isinstance(kind, _Literal):
        return type(raw) is type(kind.value) and raw == kind.value
    if kind is None:
        return raw is None
    if kind is float:
        return isinstance(raw, int | float) and not isinstance(raw, bool)
    if kind is int:
        return isinstance(raw, int) and not isinstance(raw, bool)
    if kind is str:
        return isinstance(raw, str) and bool(raw)
    return isinstance(raw, bool)


def _wanted(kind: Any, spec: OptionSpec) -> str:
    if isinstance(kind, _Literal):
        return _yaml(kind.value)
    if kind is None:
        return "null"
    if kind is bool:
        return "true or false"
    if kind is str:
        return "a non-empty string"
    noun = "a whole number" if kind is int else "a number"
    return noun + bounds(spec)


def bounds(spec: OptionSpec) -> str:
    """`` ≥ 1``, `` > 0 and ≤ 600``, … (empty when the option has none)."""
    parts = [
        f"{sign} {limit:g}"
        for sign, limit in (("≥", spec.ge), (">", spec.gt), ("≤", spec.le))
        if limit is not None
    ]
    return " " + " and ".join(parts) if parts else ""


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown_default(spec: OptionSpec) -> str:
    """The default as the README and messages show it."""
    if spec.shown_default:
        return spec.shown_default
    if spec.default is None:
        return "none"
    return _yaml(spec.default).strip("'")


def describe_value(value: Any) -> str:
    """A value as found in the config, for messages (long strings shortened)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{value!r} (a number)"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "…"
        return f"{shown!r} (a string)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def type_text(model: type[CheckOptions] | None, spec: OptionSpec) -> str:
    """What an option's value is, in words (``a number ≥ 0``, ``'events' or 'scim'``)."""
    if spec.parse is not None or model is None:
        return spec.shown_type or "see the description"
    kinds = [k for k in _alternatives(model._type_of(spec.name)) if k is not None]
    return " or ".join(_wanted(kind, spec) for kind in kinds)


def options_table(checks: Iterable[tuple[str, type[CheckOptions] | None]]) -> str:
    """A Markdown table of every option of the given checks (id, options model), one row
    per option: the README's options table is this text."""
    rows = ["| check | option | value | default | what it sets |", "|---|---|---|---|---|"]
    for check_id, model in checks:
        for spec in model.specs() if model is not None else ():
            cells = (
                f"`{check_id}`",
                f"`{spec.name}`",
                type_text(model, spec),
                f"`{shown_default(spec)}`",
                spec.description,
            )
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------- option groups shared by built-in helpers
# Helpers used by several checks read these (``EventOptions.of(ctx)``); a check that uses
# such a helper includes the group in its model by inheriting from it.


class EventOptions(CheckOptions):
    environment_id: str | None = option(
        default=None,
        description="the environment_id the checker's events carry (your env_… id if the app "
        "refuses events from other environments)",
        shown_default="env_<run id>",
    )


class PropagationOptions(CheckOptions):
    propagation_timeout_s: float = option(
        default=10.0,
        description="how long to wait for a delivery's effect to show in the app (s)",
        ge=0,
    )


class RoundTripOptions(EventOptions):
    mode: Literal["events", "scim"] = option(
        default="events",
        description="how changes are driven: signed events, or the directory's SCIM endpoint "
        "(from scim_idp)",
    )
    step_timeout_s: float = option(
        default=30.0,
        description="how long each step waits for the app to reflect a change (s)",
        gt=0,
        le=600,
    )
    idp_profile: Literal["generic", "okta", "entra", "google"] = option(
        default="generic",
        description="whose SCIM dialect mode scim speaks: the shapes and order of an IdP's "
        "requests",
    )
