"""A shipped model's arrays to and from JSON: numbers as floats, non-finite as null."""

from __future__ import annotations

import math
from collections.abc import Mapping
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
MODEL_FILE = "shipped_model.json"


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
        "version": 1,
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


def _mistyped(exc: Exception) -> str:
    what = (
        f"lacks field {exc}"
        if isinstance(exc, KeyError)
        else f"has a field of the wrong kind ({exc})"
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
    try:
        kind = data["kind"]
        kw: dict[str, Any] = {}
        if kind == "cox":
            cox = data["cox"]
            kw.update(
                ties=cox["ties"],
                center=json_array(cox["center"]),
                hazard=json_array(cox["hazard"]),
            )
        elif kind == "pwexp":
            pw = data["pwexp"]
            ic = pw.get("interval_counts")
            kw.update(
                breaks=json_array(pw["breaks"]),
                shift=json_array(pw["shift"]),
                time_varying=bool(pw["time_varying"]),
                interval_counts=None if ic is None else {k: json_array(v) for k, v in ic.items()},
            )
        boot = data.get("bootstrap")
        if boot is not None and "cov" in boot:
            summary = dict(boot)
            summary["cov"] = json_array(boot["cov"], 2)
            kw.update(boot_summary=BootstrapSummary.from_dict(summary))
        elif boot is not None:
            kw.update(
                boot_coef=json_array(boot["coef"], 2),
                boot_extra=json_array(boot["hazard" if kind == "cox" else "shift"], 2),
                boot_entropy=boot.get("seed_entropy"),
            )
        cc = data.get("column_counts")
        conc = data.get("column_concentration")
        scale = data.get("column_scale")
        return dict(
            kind=kind,
            source=str(data["source"]),
            time_unit=str(data["time_unit"]),
            design=data["design"],
            names=tuple(data["names"]),
            coef=json_array(data["coef"]),
            cov=json_array(data["cov"], 2),
            grid=json_array(data["grid"]),
            grid_step=float(data["grid_step"]),
            grid_counts={k: json_array(v) for k, v in data["grid_counts"].items()},
            n=float(data["n"]),
            n_events=float(data["n_events"]),
            level_counts=data.get("level_counts"),
            column_counts=None if cc is None else json_array(cc),
            column_binary=data.get("column_binary"),
            column_concentration=None if conc is None else json_array(conc, 3),
            column_scale=None if scale is None else json_array(scale),
            released=bool(data.get("released", False)),
            policy=str(data.get("policy", "default")),
            **kw,
        )
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(_mistyped(exc)) from None
