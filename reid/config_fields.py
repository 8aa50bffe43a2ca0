"""Field metadata (type, range, choices) for the run config and the one place values are checked.

Every config value is converted to its field's declared type or rejected with a one-line
ConfigError that names the dotted key and what was expected, before any data is read.
The YAML loader here refuses anchors/aliases (a tiny file with nested aliases expands to
billions of nodes) and reads `5e-4` as a float (YAML 1.1 reads it as a string).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import types
import typing
from dataclasses import field
from typing import Any

import yaml

from reid.errors import ConfigError


def spec(
    default: Any = dataclasses.MISSING,
    *,
    factory: Any = dataclasses.MISSING,
    min: float | None = None,  # noqa: A002 - reads well at the call sites
    max: float | None = None,  # noqa: A002
    above: float | None = None,
    below: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """A dataclass field with its checks as metadata; `above`/`below` are exclusive bounds."""
    meta = {"min": min, "max": max, "above": above, "below": below, "choices": choices}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases, with YAML 1.2 floats (5e-4, 1e3)."""

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise ConfigError(f"line {event.start_mark.line + 1}: YAML aliases (*name) are not allowed in configs")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise ConfigError(f"line {event.start_mark.line + 1}: YAML anchors (&name) are not allowed in configs")
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse config YAML safely (no aliases, floats like 5e-4); YAMLError on bad syntax."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


# ----------------------------------------------------------------------------- coercion

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _describe(value: Any) -> str:
    if isinstance(value, datetime.date):
        return f"a date ({value})"
    if isinstance(value, bytes):
        return "binary data"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _scalar(value: Any, kind: type, key: str) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+", value.strip()):
            return int(value)
    elif kind is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{key}: expected a finite number, got {_describe(value)}")
            return number
    elif kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"{key}: expected {_NAMES[kind]}, got {_describe(value)}")


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Convert `value` to the type `hint` (int, float, bool, str, list[...], unions, dicts) or raise."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        # exact type first, so `pretrained: true` stays a bool and `amp: bf16` stays a string
        ordered = sorted((o for o in options if o is not type(None)), key=lambda o: not isinstance(value, o))
        for option in ordered:
            try:
                return coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc).split(": expected ", 1)[-1].split(", got")[0])
        raise ConfigError(f"{key}: expected {' or '.join(errors)}, got {_describe(value)}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(
                f"{key}: expected a list (e.g. [{_example(typing.get_args(hint)[0])}]), got {_describe(value)}"
            )
        (item,) = typing.get_args(hint)
        return [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {_describe(value)}")
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if hint is Any:
        return _plain(value, key)
    return _scalar(value, hint, key)


def _example(kind: Any) -> str:
    return {int: "5, 10", float: "1.0, 0.5", str: "a, b"}.get(kind, "...")


def _plain(value: Any, key: str) -> Any:
    """Free-form values (loss options): plain YAML scalars, lists and mappings only; '1e-3' -> float."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {_describe(value)}")
    if isinstance(value, str) and re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{key}: expected a number, string, list or mapping, got {_describe(value)}")


def _check(value: Any, meta: typing.Mapping, key: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, meta, f"{key}[{i}]")
        return
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(map(str, choices))}, got {_describe(value)}")
    if not isinstance(value, (int, float)):
        return
    low, high, above, below = meta.get("min"), meta.get("max"), meta.get("above"), meta.get("below")
    if (low is not None and value < low) or (high is not None and value > high):
        span = (
            f"{low}..{high}"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        raise ConfigError(f"{key}: expected {span}, got {value}")
    if above is not None and not value > above:
        raise ConfigError(f"{key}: expected > {above}, got {value}")
    if below is not None and not value < below:
        raise ConfigError(f"{key}: expected < {below}, got {value}")


def check_value(value: Any, field_: dataclasses.Field, hint: Any, key: str) -> Any:
    """One value converted to `hint` and checked against its field's metadata, exactly as at load
    (reid.test_time uses it for values that come from the command line)."""
    converted = coerce(value, hint, key)
    _check(converted, field_.metadata, key)
    return converted


def build_section(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass `cls` from `values`: unknown keys, wrong types and out-of-range values raise."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_describe(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ConfigError(f"unknown config key {name} (known: {', '.join(fields)})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = build_section(hint, value, name)
            continue
        converted = coerce(value, hint, name)
        _check(converted, fields[key].metadata, name)
        kwargs[key] = converted
    return cls(**kwargs)
