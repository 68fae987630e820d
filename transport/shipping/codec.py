"""A shipped model's arrays to and from JSON: numbers as floats, non-finite as null."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from transport.exceptions import DataError
from transport.shipping.bootstrap import BootstrapSummary

__all__ = [
    "MODEL_FILE",
    "SCHEMA",
    "construct",
    "json_array",
    "json_floats",
    "model_fields",
    "model_to_dict",
]

SCHEMA = "transport.ShippedModel"
VERSION = 1
MODEL_FILE = "shipped_model.json"
#: The fields of a shipped model's document (:func:`model_to_dict`).
MODEL_KEYS = frozenset(
    (
        "schema",
        "version",
        "kind",
        "estimand",
        "source",
        "time_unit",
        "design",
        "names",
        "coef",
        "cov",
        "grid_step",
        "grid",
        "grid_counts",
        "n",
        "n_events",
        "cox",
        "pwexp",
        "level_counts",
        "column_counts",
        "column_binary",
        "column_concentration",
        "column_scale",
        "bootstrap",
        "released",
        "policy",
    )
)


def json_floats(x: Any) -> Any:
    """Numbers as floats (non-finite as ``None``), recursively."""
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        return json_floats(x.tolist())
    if isinstance(x, list | tuple):
        return [json_floats(v) for v in x]
    if isinstance(x, bool):
        return x
    if isinstance(x, int | float | np.number):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


def json_array(x: Any, ndim: int = 1) -> np.ndarray:
    """A JSON list (``None`` as ``nan``) as a float array of ``ndim`` dimensions."""
    a = np.array(x, dtype=object)
    a = np.where(a == None, np.nan, a).astype(np.float64)  # noqa: E711 (elementwise)
    if a.size == 0:
        a = a.reshape((0,) * ndim)
    if a.ndim != ndim:
        raise DataError(f"shipped model array has {a.ndim} dimensions, not {ndim}")
    return a


def model_to_dict(m: Any) -> dict[str, Any]:
    """A :class:`~transport.ShippedModel` as JSON-safe data: every field, numbers as
    floats, no patient-level values (the bootstrap as refits with their seed's entropy
    in the source's own copy, as its summary once released)."""
    boot = None
    if m.boot_coef is not None:  # the source's own copy; the gate releases a summary
        boot = {
            "coef": json_floats(m.boot_coef),
            "hazard" if m.kind == "cox" else "shift": json_floats(m.boot_extra),
            "seed_entropy": m.boot_entropy,
        }
    elif m.boot_summary is not None:
        boot = json_floats(m.boot_summary.to_dict())
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "kind": m.kind,
        "estimand": m.estimand,
        "source": m.source,
        "time_unit": m.time_unit,
        "design": m.design_spec,
        "names": list(m.names),
        "coef": json_floats(m.coef),
        "cov": json_floats(m.cov),
        "grid_step": m.grid_step,
        "grid": json_floats(m.grid),
        "grid_counts": {k: json_floats(v) for k, v in m.grid_counts.items()},
        "n": m.n,
        "n_events": m.n_events,
        "cox": None
        if m.kind != "cox"
        else {
            "ties": m.ties,
            "center": json_floats(m.center),
            "hazard": json_floats(m.hazard),
        },
        "pwexp": None
        if m.kind != "pwexp"
        else {
            "breaks": json_floats(m.breaks),
            "shift": json_floats(m.shift),
            "time_varying": m.time_varying,
            "interval_counts": None
            if m.interval_counts is None
            else {k: json_floats(v) for k, v in m.interval_counts.items()},
        },
        "level_counts": m.level_counts,
        "column_counts": json_floats(m.column_counts),
        "column_binary": None if m.column_binary is None else m.column_binary.tolist(),
        "column_concentration": json_floats(m.column_concentration),
        "column_scale": json_floats(m.column_scale),
        "bootstrap": boot,
        "released": m.released,
        "policy": m.policy,
    }


def construct(cls: Any, fields: dict[str, Any]) -> Any:
    """``cls(**fields)``, a field the constructor cannot use named as a
    :class:`~transport.DataError` (the document came from another environment)."""
    try:
        return cls(**fields)
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(_mistyped(exc)) from None


def _mistyped(exc: Exception, field: str | None = None) -> str:
    what = (
        f"lacks field {exc}"
        if isinstance(exc, KeyError) and field is None
        else f"has a field of the wrong kind ({exc})"
        if field is None
        else f"field {field!r} is of the wrong kind ({exc})"
    )
    return f"shipped model {what} (rule: the fields written by ShippedModel.to_dict)"


def model_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor keywords of a :class:`~transport.ShippedModel` from
    :func:`model_to_dict`'s data (a released model's included); a field missing or of
    the wrong type is a :class:`~transport.DataError` naming it."""
    if not isinstance(data, Mapping) or data.get("schema") != SCHEMA:
        raise DataError(
            f"not a shipped model (rule: a JSON object with schema {SCHEMA!r}, written by "
            "ShippedModel.to_json or released by tp.disclosure.release)"
        )
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise DataError(
            f"shipped model schema version {version!r:.40} is not supported (this package "
            f"reads version {VERSION})"
        )
    unknown = sorted(str(k) for k in data if k not in MODEL_KEYS)
    if unknown:  # a misspelt field would be ignored and its default used without a word
        raise DataError(
            f"shipped model has unknown field(s) {unknown[:10]} (rule: the fields written by "
            "ShippedModel.to_dict)"
        )
    kind = _field(data, "kind", _word)
    kw: dict[str, Any] = {}
    if kind == "cox":
        cox = _field(data, "cox", _mapping)
        kw.update(
            ties=_field(cox, "ties", _word, "cox."),
            center=_field(cox, "center", json_array, "cox."),
            hazard=_field(cox, "hazard", json_array, "cox."),
        )
    elif kind == "pwexp":
        pw = _field(data, "pwexp", _mapping)
        kw.update(
            breaks=_field(pw, "breaks", json_array, "pwexp."),
            shift=_field(pw, "shift", json_array, "pwexp."),
            time_varying=_field(pw, "time_varying", _flag, "pwexp."),
            interval_counts=_field(pw, "interval_counts", _arrays, "pwexp.", optional=True),
        )
    kw.update(_boot_fields(data, kind))
    return dict(
        kind=kind,
        source=_field(data, "source", _word),
        time_unit=_field(data, "time_unit", _word),
        design=_field(data, "design", _mapping),
        names=_field(data, "names", _words),
        coef=_field(data, "coef", json_array),
        cov=_field(data, "cov", _matrix),
        grid=_field(data, "grid", json_array),
        grid_step=_field(data, "grid_step", _number),
        grid_counts=_field(data, "grid_counts", _arrays),
        n=_field(data, "n", _number),
        n_events=_field(data, "n_events", _number),
        level_counts=_field(data, "level_counts", _mapping, optional=True),
        column_counts=_field(data, "column_counts", json_array, optional=True),
        column_binary=_field(data, "column_binary", _flags, optional=True),
        column_concentration=_field(
            data, "column_concentration", lambda v: json_array(v, 3), optional=True
        ),
        column_scale=_field(data, "column_scale", json_array, optional=True),
        released=_field(data, "released", _flag, optional=True) or False,
        policy=_field(data, "policy", _word, optional=True) or "default",
        **kw,
    )


def _boot_fields(data: Mapping[str, Any], kind: str) -> dict[str, Any]:
    boot = _field(data, "bootstrap", _mapping, optional=True)
    if boot is None:
        return {}
    if "cov" in boot:
        summary = dict(boot)
        summary["cov"] = _field(boot, "cov", _matrix, "bootstrap.")
        return {"boot_summary": BootstrapSummary.from_dict(summary)}
    extra = "hazard" if kind == "cox" else "shift"
    return {
        "boot_coef": _field(boot, "coef", _matrix, "bootstrap."),
        "boot_extra": _field(boot, extra, _matrix, "bootstrap."),
        "boot_entropy": _field(boot, "seed_entropy", _word, "bootstrap.", optional=True),
    }


def _field(
    data: Mapping[str, Any],
    key: str,
    read: Callable[[Any], Any],
    prefix: str = "",
    *,
    optional: bool = False,
) -> Any:
    """``read(data[key])``; a missing field, or one ``read`` cannot use, is a
    :class:`~transport.DataError` naming ``prefix + key``."""
    if key not in data or (optional and data[key] is None):
        if optional:
            return None
        raise DataError(_mistyped(KeyError(prefix + key)))
    try:
        return read(data[key])
    except DataError as exc:
        raise DataError(_mistyped(ValueError(str(exc)), prefix + key)) from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DataError(_mistyped(exc, prefix + key)) from None


def _word(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"text expected, got {type(v).__name__}")
    return v


def _words(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise TypeError("a list of text expected")
    return tuple(v)


def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"a number expected, got {type(v).__name__}")
    return float(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"true or false expected, got {type(v).__name__}")
    return v


def _flags(v: Any) -> list[bool]:
    if not isinstance(v, list) or not all(isinstance(x, bool) for x in v):
        raise TypeError("a list of true or false expected")
    return v


def _mapping(v: Any) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise TypeError(f"an object expected, got {type(v).__name__}")
    return v


def _matrix(v: Any) -> np.ndarray:
    return json_array(v, 2)


def _arrays(v: Any) -> dict[str, np.ndarray]:
    return {str(k): json_array(x) for k, x in _mapping(v).items()}
