"""Config dataclasses and ``--set key=value`` overrides, type-checked against the defaults."""

import dataclasses
import json

from zoo.core.errors import ZooUsageError


def _field_types(config_cls) -> dict[str, type]:
    # The default's own type is the field's type: nanoGPT's configurator does the same, and it
    # works whether or not the dataclass uses `from __future__ import annotations`.
    out = {}
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = type(default)
    return out


def coerce(key: str, value, typ: type, what: str):
    """Check or convert one override value to the field's type; strings come from the CLI."""
    if isinstance(value, str) and typ is not str:
        text = value.strip()
        try:
            if typ is bool:
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return text.lower() in ("true", "1", "yes")
            if typ in (int, float):
                return typ(text)
            if typ in (list, tuple):
                # "[64, 32]", or without the brackets "64,32" and "64" (a list of one).
                parsed = json.loads(text if text.startswith("[") else f"[{text}]")
                if not isinstance(parsed, list) or not all(isinstance(v, int | float | str) for v in parsed):
                    raise ValueError
                return typ(parsed)
        except (ValueError, json.JSONDecodeError):
            raise ZooUsageError(f"{what} setting {key}={value!r} is not a valid {typ.__name__}") from None
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is tuple and isinstance(value, list):
        return tuple(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ZooUsageError(f"{what} setting {key}={value!r} must be a {typ.__name__}, not {type(value).__name__}")
    return value


def make_config(config_cls, overrides: dict, what: str = "model"):
    """An instance of ``config_cls`` with ``overrides`` applied; unknown keys are one clear error."""
    types = _field_types(config_cls)
    unknown = sorted(set(overrides) - set(types))
    if unknown:
        raise ZooUsageError(f"unknown {what} setting {unknown[0]!r}; valid keys: {', '.join(types)}")
    return config_cls(**{k: coerce(k, v, types[k], what) for k, v in overrides.items()})


def split_overrides(overrides: dict, *config_classes) -> list[dict]:
    """Route each ``--set`` key to the first config class that has it (model config first, then
    the training config); a key no class has is one error listing every valid key."""
    routed: list[dict] = [{} for _ in config_classes]
    names = [list(_field_types(c)) for c in config_classes]
    for key, value in overrides.items():
        for i, fields in enumerate(names):
            if key in fields:
                routed[i][key] = value
                break
        else:
            valid = ", ".join(dict.fromkeys(k for fields in names for k in fields))
            raise ZooUsageError(f"unknown setting {key!r} for --set; valid keys: {valid}")
    return routed


def parse_sets(items) -> dict[str, str]:
    """``["latent=8", "lr=0.01"]`` -> ``{"latent": "8", "lr": "0.01"}``."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ZooUsageError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value
    return out


def to_dict(config) -> dict:
    return dataclasses.asdict(config)
