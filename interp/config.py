"""Frozen, validated, JSON-round-tripping configuration dataclasses.

Every experiment config is a tree of frozen dataclasses. This module gives them
the three operations the rest of the package relies on:

* :func:`to_dict` / :func:`from_dict` — exact JSON round trip; unknown keys are
  an error, never ignored;
* :func:`apply_overrides` — ``["train.lr=3e-3", "data.p=97"]`` style overrides
  (what ``interp train ... --set`` accepts), re-validated after applying;
* small ``check_*`` helpers that raise a :class:`ValueError` naming the field,
  the value and the allowed range.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is invalid or a key is unknown."""


# --------------------------------------------------------------------- checks
def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in ``[lo, hi]``."""
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


# ----------------------------------------------------------------- round trip
def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass; tuples become lists."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"expected a config dataclass, got {type(cfg).__name__}")
    return {f.name: _to_plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build config ``cls`` from a dict; unknown keys and bad values raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or cls.__name__} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f" in {path}" if path else ""
        raise ConfigError(f"unknown config key(s){where}: {unknown}; known: {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            key = f"{path}.{f.name}" if path else f.name
            kwargs[f.name] = _coerce(hints[f.name], data[f.name], key)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return _coerce(arg, value, path)
            except (ConfigError, TypeError) as exc:
                errors.append(str(exc))
        raise ConfigError(f"{path}: {value!r} fits none of {non_none}: {errors}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{path} must have {len(args)} entries, got {value!r}")
        return tuple(
            _coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path} must be one of {list(args)}, got {value!r}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (
        isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))
    ):
        raise ConfigError(f"{path} must be {tp.__name__}, got {value!r}")
    return value


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

    An override may also set a whole sub-config to ``null`` or to a JSON object.
    Unknown keys raise ConfigError listing the known ones.
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
                node[k] = {} if node[k] is None else node[k]
                if not isinstance(node[k], dict):
                    raise ConfigError(f"{'.'.join(keys[: depth + 1])} is not a section")
            node = node[k]
        if keys[-1] not in node and not _optional_section_key(cfg, keys):
            where = ".".join(keys[:-1]) or "config"
            raise ConfigError(
                f"unknown config key {'.'.join(keys)!r} (known in {where}: {sorted(node)})"
            )
        node[keys[-1]] = value
    return from_dict(type(cfg), data)


def _optional_section_key(cfg: Any, keys: list[str]) -> bool:
    """True when ``keys`` names a field of an optional sub-config currently ``None``."""
    cls = type(cfg)
    for k in keys[:-1]:
        hints = typing.get_type_hints(cls)
        if k not in hints:
            return False
        tp = hints[k]
        candidates = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        cls = candidates[0] if candidates else tp
        if not dataclasses.is_dataclass(cls):
            return False
    return keys[-1] in {f.name for f in dataclasses.fields(cls)}
