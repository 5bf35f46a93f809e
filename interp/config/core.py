"""Typed, validated, self-describing configuration.

Every config is a frozen :mod:`pydantic` dataclass made with :func:`config`.
Each field is declared with :func:`setting`, which carries its help text and
its bounds next to it, so that validation, ``interp presets`` and
``interp train EXPERIMENT --help`` all read one declaration. Validation is
pydantic's, in strict mode (no ``"3"`` → 3, no ``true`` → 1), with infinities
and NaN refused; a field that takes one of a few values is a ``Literal``.
Cross-field rules live in ``__post_init__`` and raise :class:`ConfigError`
with a message that starts with the field name (relative to the class).

This module gives the operations the rest of the package relies on:

* :func:`to_dict` / :func:`from_dict` — exact JSON round trip; unknown keys are
  an error, never ignored;
* :func:`apply_overrides` — ``["train.lr=3e-3", "data.p=97"]`` style overrides
  (what ``--set`` accepts), re-validated after applying;
* :func:`describe` — every key of a config with its type, value and help text.

Every error is a :class:`ConfigError` naming the full key (``train.lr``), the
value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as _pydantic_dataclass

T = TypeVar("T")


class UserError(Exception):
    """An error caused by what the user asked for (a config value, a path, a
    run directory that holds something else): the CLI prints its message on
    one line and exits with status 2. Any other exception is a bug and keeps
    its traceback."""


class ConfigError(UserError, ValueError):
    """A configuration value is invalid or a key is unknown."""


class InputError(UserError, ValueError):
    """An argument or input a function was given is invalid: tokens of the
    wrong shape, an index out of range, a table with nothing to plot, an
    analyzer applied to a model it does not fit."""


_PYDANTIC = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def config(section: str = "") -> Any:
    """Class decorator: a frozen, strictly validated pydantic dataclass.

    ``section`` is the key under which the class sits in an experiment config
    (``"train"``, ``"model"``, ``"data"`` …); errors of a directly constructed
    instance name their fields under it (``train.lr``)."""

    def wrap(cls: type[T]) -> type[T]:
        made = _pydantic_dataclass(frozen=True, config=_PYDANTIC)(cls)
        made.__config_section__ = section  # type: ignore[attr-defined]
        init = made.__init__

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                init(self, *args, **kwargs)
            except ValidationError as exc:
                raise ConfigError(format_errors(exc, type(self), section)) from None

        made.__init__ = __init__  # type: ignore[method-assign]
        return made

    return wrap


_NO_LEGACY = object()


def setting(default: Any, help: str, legacy: Any = _NO_LEGACY, **constraints: Any) -> Any:
    """A config field: its default (a config class or other callable is used
    as a factory), its help text and pydantic constraints (``ge``, ``gt``,
    ``le``, ``lt``, ``discriminator`` …).

    ``legacy``: for a field added with a default that changes behaviour, the
    value that configs written before the field existed meant. Stored run
    configs that lack the field are read with it (:func:`with_legacy`), so an
    old run keeps its meaning and is not resumed under the new default."""
    extra = None if legacy is _NO_LEGACY else {"legacy": legacy}
    if callable(default):
        return Field(
            default_factory=default, description=help, json_schema_extra=extra, **constraints
        )
    return Field(default=default, description=help, json_schema_extra=extra, **constraints)


def with_legacy(cls: type, data: Any) -> Any:
    """``data`` (a stored config of ``cls``) with every missing field that
    has a ``legacy`` value filled with it, in nested sections too."""
    fields = getattr(cls, "__pydantic_fields__", None)
    if not isinstance(data, Mapping) or not fields:
        return data
    out = dict(data)
    for name, info in fields.items():
        extra = info.json_schema_extra
        if name not in out:
            if isinstance(extra, dict) and "legacy" in extra:
                out[name] = extra["legacy"]
        elif is_config(info.annotation) and isinstance(out[name], Mapping):
            out[name] = with_legacy(info.annotation, out[name])
    return out


def is_config(obj: Any) -> bool:
    """True for a config class or instance made with :func:`config`."""
    cls = obj if isinstance(obj, type) else type(obj)
    return dataclasses.is_dataclass(cls) and hasattr(cls, "__config_section__")


# ----------------------------------------------------------------- error text
def format_errors(exc: ValidationError, cls: type, section: str = "") -> str:
    """One line per pydantic error, each naming the full key, e.g.
    ``train.lr must be > 0, got -1``."""
    return "; ".join(_format_one(err, cls, section) for err in exc.errors())


def _format_one(err: Mapping[str, Any], cls: type, section: str) -> str:
    path, parent_cls = _path(err["loc"], cls, section)
    kind, msg, ctx = err["type"], err["msg"], err.get("ctx") or {}
    value = err.get("input")
    got = f", got {value!r}"
    if kind == "value_error":
        text = msg.removeprefix("Value error, ")
        return f"{path}.{text}" if path else text
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        where = path.rsplit(".", 1)[0] if "." in path else "config"
        known = sorted(f.name for f in dataclasses.fields(parent_cls)) if parent_cls else []
        return f"unknown config key {path!r} (known in {where}: {known})"
    bounds = {
        "greater_than": ">",
        "greater_than_equal": ">=",
        "less_than": "<",
        "less_than_equal": "<=",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"{path} must be {bounds[kind]} {limit}{got}"
    if kind == "literal_error":
        return f"{path} must be one of {ctx.get('expected')}{got}"
    names = {
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "true or false",
        "string_type": "a string",
        "int_from_float": "an integer",
        "tuple_type": "a list",
        "dict_type": "a mapping",
        "dataclass_type": "a mapping",
        "dataclass_exact_type": "a mapping",
        "model_type": "a mapping",
    }
    if kind in names:
        return f"{path} must be {names[kind]}{got}"
    if kind == "finite_number":
        return f"{path} must be finite{got}"
    if kind == "missing":
        return f"{path} is required"
    if kind in ("too_long", "too_short"):
        n = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        return f"{path} must have {n} entries{got}"
    if kind == "union_tag_invalid":
        return f"{path}.kind must be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"{path} needs a 'kind' field naming its type"
    return f"{path}: {msg[:1].lower()}{msg[1:]}{got}"


def _path(loc: Iterable[Any], cls: type, section: str) -> tuple[str, type | None]:
    """The dotted key of a pydantic error location; tags of discriminated
    unions (``model.transformer.d_model``) are dropped. Also returns the config
    class that holds the last key (for the list of known keys)."""
    parts = [section] if section else []
    current: Any = cls
    holder: type | None = cls if is_config(cls) else None
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1] if parts else ''}[{item}]"
            current = _element_type(current, item)
            continue
        members = _union_members(current)
        if members and item in members:
            current = members[item]
            holder = current
            continue
        parts.append(str(item))
        if is_config(current):
            holder = current
            current = _field_type(current, str(item))
        else:
            current = None
    return ".".join(p for p in parts if p), holder


def _strip(tp: Any) -> Any:
    """``Annotated[X, …]`` → X; ``X | None`` → X."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _strip(args[0])
    return tp


def _field_type(cls: type, name: str) -> Any:
    hints = typing.get_type_hints(cls, include_extras=True)
    return _strip(hints[name]) if name in hints else None


def _union_members(tp: Any) -> dict[str, type]:
    """{kind tag: class} of a union of config classes (empty otherwise)."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return {}
    out = {}
    for arg in typing.get_args(tp):
        if is_config(arg):
            kind = next((f.default for f in dataclasses.fields(arg) if f.name == "kind"), None)
            kind = getattr(kind, "default", kind)
            if isinstance(kind, str):
                out[kind] = arg
    return out


def _element_type(tp: Any, index: int) -> Any:
    args = typing.get_args(_strip(tp)) if tp is not None else ()
    if not args:
        return None
    if len(args) == 2 and args[1] is Ellipsis:
        return _strip(args[0])
    return _strip(args[index]) if index < len(args) else None


# ----------------------------------------------------------------- round trip
@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config; tuples become lists."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a config instance, got {type(cfg).__name__}")
    return {f.name: _to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Build config ``cls`` from JSON-like data; unknown keys and bad values
    raise :class:`ConfigError` naming the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or cls.__name__} must be a mapping, got {data!r}")
    try:
        text = json.dumps(data, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__} is not JSON data: {exc}") from None
    try:
        return _adapter(cls).validate_json(text)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, cls, path)) from None


def to_json(cfg: Any) -> str:
    """Canonical JSON text of a config (sorted keys), used to compare run configs."""
    return json.dumps(to_dict(cfg), sort_keys=True, indent=2)


# ------------------------------------------------------------------ overrides
def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``"train.lr=3e-3"`` into (["train", "lr"], 0.003).

    The value is read as JSON when it parses (numbers, true/false/null, lists),
    and as a plain string otherwise.
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.path=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(cfg: T, overrides: Iterable[str]) -> T:
    """Return a copy of ``cfg`` with dotted-key overrides applied and re-validated.

    An override may also set a whole sub-config to ``null`` or to a JSON object,
    or a key of an optional sub-config that is currently ``null`` (which
    switches it on with its defaults). Unknown keys raise ConfigError listing
    the known ones.
    """
    data = to_dict(cfg)
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for depth, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                if k not in node:
                    where = ".".join(keys[:depth]) or "config"
                    raise ConfigError(
                        f"unknown config key {'.'.join(keys[: depth + 1])!r} "
                        f"(known in {where}: {sorted(node)})"
                    )
                if node[k] is not None:
                    raise ConfigError(f"{'.'.join(keys[: depth + 1])} is not a section")
                node[k] = {}
            node = node[k]
        if keys[-1] not in node and not _optional_section_key(type(cfg), keys):
            where = ".".join(keys[:-1]) or "config"
            raise ConfigError(
                f"unknown config key {'.'.join(keys)!r} (known in {where}: {sorted(node)})"
            )
        node[keys[-1]] = value
    return from_dict(type(cfg), data)


def _optional_section_key(cls: type, keys: list[str]) -> bool:
    """True when ``keys`` names a field of an optional sub-config currently ``None``."""
    current: Any = cls
    for k in keys[:-1]:
        if not is_config(current):
            return False
        current = _field_type(current, k)
    return is_config(current) and keys[-1] in {f.name for f in dataclasses.fields(current)}


# ------------------------------------------------------------------ describe
@dataclasses.dataclass(frozen=True)
class Key:
    """One settable key of a config: what ``interp presets`` prints."""

    key: str
    value: Any
    type: str
    help: str


def describe(cfg: Any, prefix: str = "") -> list[Key]:
    """Every leaf key of ``cfg`` (an instance) with its value, its type (with
    bounds) and its help text, depth first. A sub-config that is ``None`` (an
    optional section, e.g. ``train.grokfast``) is listed as one key whose
    fields can be set to switch it on."""
    out: list[Key] = []
    hints = typing.get_type_hints(type(cfg), include_extras=True)
    for f in dataclasses.fields(cfg):
        key = f"{prefix}{f.name}"
        value = getattr(cfg, f.name)
        info = _field_info(f)
        if is_config(value):
            out.extend(describe(value, f"{key}."))
            continue
        text = info.description if info is not None and info.description else ""
        inner = _strip(hints[f.name])
        if value is None and is_config(inner):
            names = ", ".join(g.name for g in dataclasses.fields(inner))
            text = f"{text} (off; setting {key}.<field> switches it on: {names})"
            out.append(Key(key, None, "section | null", text.strip()))
            continue
        out.append(Key(key, value, type_text(hints[f.name], info), text))
    return out


def _field_info(f: dataclasses.Field) -> Any:
    default = f.default
    if type(default).__name__ == "FieldInfo":
        return default
    return None


def type_text(tp: Any, info: Any = None) -> str:
    """A short human form of a field's type and bounds, e.g. ``float in (0, 10]``."""
    base = _type_name(tp)
    lo = hi = None
    for m in getattr(info, "metadata", ()) if info is not None else ():
        for attr, side, bracket in (("gt", "lo", "("), ("ge", "lo", "["), ("lt", "hi", ")"),
                                    ("le", "hi", "]")):  # fmt: skip
            value = getattr(m, attr, None)
            if value is not None:
                if side == "lo":
                    lo = (bracket, value)
                else:
                    hi = (bracket, value)
    if lo and hi:
        return f"{base} in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f"{base} {'>' if lo[0] == '(' else '>='} {_num(lo[1])}"
    if hi:
        return f"{base} {'<' if hi[0] == ')' else '<='} {_num(hi[1])}"
    return base


def _num(v: float | int) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _type_name(tp: Any) -> str:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(repr(a) if a is not None else "null" for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "[" + ", ".join(_type_name(a) for a in args) + "]"
    if tp is type(None):
        return "null"
    if is_config(tp):
        return tp.__name__
    return getattr(tp, "__name__", str(tp))


# --------------------------------------------------------------------- checks
def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in ``[lo, hi]`` (for
    arguments of functions; config fields declare bounds with :func:`setting`)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    _check_range(name, value, lo, hi)


def check_float(
    name: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> None:
    """Raise ConfigError unless ``value`` is a finite real number in the given range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    _check_range(name, value, lo, hi, lo_open, hi_open)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_range(name, value, lo, hi, lo_open=False, hi_open=False) -> None:
    lo_bad = lo is not None and (value <= lo if lo_open else value < lo)
    hi_bad = hi is not None and (value >= hi if hi_open else value > hi)
    if lo_bad or hi_bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        raise ConfigError(f"{name} must be in {left}{lo_s}, {hi_s}{right}, got {value!r}")
