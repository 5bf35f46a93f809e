"""Typed configuration: the machinery (:mod:`interp.config.core`), the config
classes of every experiment, their presets, and the catalog of experiments
(:mod:`interp.config.catalog`). Nothing here imports torch."""

from interp.config.core import (
    ConfigError,
    InputError,
    Key,
    UserError,
    apply_overrides,
    check_choice,
    check_float,
    check_int,
    config,
    describe,
    from_dict,
    is_config,
    parse_override,
    setting,
    to_dict,
    to_json,
)

__all__ = [
    "ConfigError",
    "InputError",
    "Key",
    "UserError",
    "apply_overrides",
    "check_choice",
    "check_float",
    "check_int",
    "config",
    "describe",
    "from_dict",
    "is_config",
    "parse_override",
    "setting",
    "to_dict",
    "to_json",
]
