"""The shape of a :class:`~transport.TargetSummary` document, checked before any of it
is used: a summary comes from another environment, often edited by hand, and a missing
field, a list of another length, an unknown unit or a number out of range must be an
error naming the field, never a ``KeyError`` or an overflow after all the work."""

from __future__ import annotations

import itertools
import json
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from transport.cohort import TIME_UNITS
from transport.exceptions import DataError

__all__ = ["MAX_ABS", "MAX_BYTES", "MAX_N", "check_shape", "read_json"]


#: Largest size and magnitude a summary document may have: an n no cohort has, or a
#: number whose square overflows, is an edited file, refused before any work.
MAX_N = 10**10
MAX_ABS = 1e15
MAX_BYTES = 50_000_000
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "n": int,
    "time_unit": str,
    "formula": str,
    "columns": list,
    "mean": list,
    "sd": list,
    "covariates": dict,
}


#: Every field of a summary document: those required, and the optional ones.
_KEYS = frozenset(
    (
        *_FIELDS,
        "schema",
        "version",
        "km",
        "counts",
        "concentration",
        "value_cells",
        "column_levels",
        "suppressed",
    )
)
_COVARIATE_KEYS = frozenset(("type", "levels", "shares", "pooled"))


def read_json(path: Path, what: str) -> Any:
    """The JSON document in the file ``path`` (a ``what``: "summary", "shipped model"),
    refused by name when it is no file, larger than :data:`MAX_BYTES`, or not JSON
    (broken, or nested past any document)."""
    if not path.is_file():
        raise DataError(f"{what} file {str(path)!r} does not exist or is not a file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DataError(f"{what} file {str(path)!r} has {size} bytes, more than {MAX_BYTES}")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise DataError(
            f"{what} file {str(path)!r} is not a JSON {what} ({type(exc).__name__})"
        ) from None


def _number_list(data: Mapping[str, Any], key: str, length: int, limit: float) -> None:
    values = data[key]
    if len(values) != length:
        raise DataError(
            f"TargetSummary field {key!r} has {len(values)} values for {length} columns "
            "(rule: one per column of 'columns')"
        )
    for j, x in enumerate(values):
        ok = x is None or (isinstance(x, int | float) and not isinstance(x, bool))
        if not ok or (x is not None and not abs(x) <= limit):
            raise DataError(
                f"TargetSummary field {key!r} value {j} is {x!r:.40} (rule: a number of at "
                f"most {limit:g} in size, or null where withheld)"
            )


def check_shape(data: Any, limit: float = MAX_ABS) -> None:
    """Refuse a summary document whose shape is not a summary's (a missing or mistyped
    field, lists of other lengths, an unknown unit, numbers out of range), naming the
    field, before any of it is used. Means and SDs are at most ``limit`` in size: a
    document read from elsewhere holds none larger than :data:`MAX_ABS`; a summary of
    a cohort may (a steep column), and the release gate refuses to release it."""
    if not isinstance(data, Mapping):
        raise DataError(f"a TargetSummary document is a JSON object; got a {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _KEYS)
    if unknown:  # a misspelt field would be ignored without a word
        raise DataError(
            f"TargetSummary has unknown field(s) {unknown[:10]} (rule: the fields of to_dict)"
        )
    for key, kind in _FIELDS.items():
        if key not in data:
            raise DataError(f"TargetSummary lacks field {key!r} (rule: the fields of to_dict)")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise DataError(
                f"TargetSummary field {key!r} must be a {getattr(kind, '__name__', kind)}; "
                f"got {type(data[key]).__name__}"
            )
    if not 1 <= data["n"] <= MAX_N:
        raise DataError(f"TargetSummary field 'n' must be between 1 and {MAX_N:g}")
    if data["time_unit"] not in TIME_UNITS:
        raise DataError(
            f"TargetSummary time_unit {data['time_unit']!r} is not one of {sorted(TIME_UNITS)}"
        )
    columns = data["columns"]
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise DataError("TargetSummary 'columns' must be distinct names (rule: one per column)")
    _number_list(data, "mean", len(columns), limit)
    _number_list(data, "sd", len(columns), limit)
    for v, c in data["covariates"].items():
        if not isinstance(c, Mapping) or c.get("type") not in ("continuous", "categorical"):
            raise DataError(
                f"TargetSummary covariate {v!r} must be an object with type 'continuous' or "
                "'categorical'"
            )
        if set(c) - _COVARIATE_KEYS:
            raise DataError(
                f"TargetSummary covariate {v!r} has unknown field(s) "
                f"{sorted(str(k) for k in set(c) - _COVARIATE_KEYS)[:10]} (rule: "
                f"{sorted(_COVARIATE_KEYS)})"
            )
        if c["type"] == "categorical":
            _check_levels(v, c)
    km = data.get("km")
    if km is not None:
        _check_km(km)
    _check_gate_fields(data, len(columns))


def _is_number(x: Any) -> bool:
    """A real number (numpy's too, for a summary built in Python), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _check_levels(v: str, c: Mapping[str, Any]) -> None:
    levels, shares, pooled = c.get("levels"), c.get("shares"), c.get("pooled")
    if not isinstance(levels, list) or not isinstance(shares, list):
        raise DataError(f"TargetSummary covariate {v!r} lacks its levels or shares")
    if not all(isinstance(x, str | int) and not isinstance(x, bool) for x in levels):
        raise DataError(f"TargetSummary covariate {v!r} levels must be names")
    if len({str(x) for x in levels}) != len(levels):
        raise DataError(f"TargetSummary covariate {v!r} lists a level twice")
    if len(shares) != len(levels) or not all(x is None or _is_number(x) for x in shares):
        raise DataError(
            f"TargetSummary shares of covariate {v!r} must be one number (or null) per level"
        )
    if pooled is not None and not isinstance(pooled, str):
        raise DataError(f"TargetSummary covariate {v!r} 'pooled' must be a level's name")


def _check_gate_fields(data: Mapping[str, Any], k: int) -> None:
    """The fields the release gate reads (``counts``, ``value_cells``, ``concentration``,
    ``column_levels``, ``suppressed``): absent or null, or one entry per column of the
    kinds :meth:`~transport.TargetSummary.from_cohort` writes."""

    def wrong(key: str, rule: str) -> DataError:
        return DataError(f"TargetSummary field {key!r} must be null or {rule}")

    def per_column(key: str) -> list[Any] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) != k:
            raise wrong(key, f"a list of {k} entries, one per column")
        return value

    counts = per_column("counts")
    if counts is not None and not all(_is_number(x) and 0 <= x <= MAX_N for x in counts):
        raise wrong("counts", "a count of rows per column")
    cells = per_column("value_cells")
    if cells is not None and not all(
        x is None or (_is_number(x) and 0 <= x <= MAX_N) for x in cells
    ):
        raise wrong("value_cells", "a count (or null) per column")
    conc = per_column("concentration")
    if conc is not None:
        two_lists = all(
            isinstance(col, list) and len(col) == 2 and all(isinstance(r, list) for r in col)
            for col in conc
        )
        if not two_lists or len({len(r) for col in conc for r in col}) > 1:
            raise wrong("concentration", "two lists of cumulative shares per column")
        flat = [x for col in conc for r in col for x in r]
        if not all(x is None or (_is_number(x) and 0 <= x <= 1) for x in flat):
            raise wrong("concentration", "shares in [0, 1]")
    pairs = per_column("column_levels")
    if pairs is not None:
        ok = all(
            isinstance(ps, list)
            and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
                for p in ps
            )
            for ps in pairs
        )
        if not ok:
            raise wrong("column_levels", "a list of [covariate, level] pairs per column")
    for key in ("suppressed",):
        value = data.get(key)
        if value is not None and not (
            isinstance(value, Mapping)
            and all(isinstance(a, str) and isinstance(b, str) for a, b in value.items())
        ):
            raise wrong(key, "an object of names to rules")


#: The fields of a summary's life table (:meth:`~transport.TargetSummary.from_cohort`).
_KM_FIELDS = (
    "time",
    "survival",
    "se",
    "ci_lower",
    "ci_upper",
    "n_risk",
    "n_event",
    "n_censor",
    "conf_type",
    "delayed_entry",
)


def _check_km(km: Any) -> None:
    """The life table of a summary as the target wrote it: the lists of one length, times
    finite, distinct and increasing, S(t) a non-increasing probability with its SE >= 0
    and its interval around it (nulls where withheld)."""
    keys = ("time", "survival", "se", "ci_lower", "ci_upper")
    if not isinstance(km, Mapping) or not all(isinstance(km.get(k), list) for k in keys):
        raise DataError(f"TargetSummary 'km' must hold the lists {list(keys)}")
    unknown = sorted(str(k) for k in km if k not in _KM_FIELDS)
    if unknown:
        raise DataError(
            f"TargetSummary 'km' has unknown field(s) {unknown} (rule: the fields "
            f"{list(_KM_FIELDS)})"
        )
    if not isinstance(km.get("delayed_entry", False), bool):
        raise DataError(
            f"TargetSummary 'km' delayed_entry must be true or false; got {km['delayed_entry']!r}"
        )
    if "conf_type" in km and not isinstance(km["conf_type"], str):
        raise DataError("TargetSummary 'km' conf_type must be the name of an interval")
    for k in ("n_risk", "n_event", "n_censor"):
        if k in km and not (
            isinstance(km[k], list)
            and all(x is None or (_is_number(x) and 0 <= x <= MAX_N) for x in km[k])
        ):
            raise DataError(
                f"TargetSummary 'km' {k} must be a list of counts >= 0 (or null where "
                "withheld), one per time"
            )
    sizes = {k: len(v) for k, v in km.items() if isinstance(v, list)}
    if len(set(sizes.values())) > 1:
        raise DataError(f"TargetSummary 'km' lists differ in length: {sizes}")
    for k in keys:
        if not all(x is None or (_is_number(x) and abs(x) <= MAX_ABS) for x in km[k]):
            raise DataError(f"TargetSummary 'km' {k} must be numbers (or null where withheld)")
    t = km["time"]
    if None in t or any(x < 0 for x in t) or any(b <= a for a, b in itertools.pairwise(t)):
        raise DataError(
            "TargetSummary 'km' time must be distinct times >= 0 in increasing order "
            "(rule: a life table's grid)"
        )
    for k in ("survival", "ci_lower", "ci_upper"):
        bad = [x for x in km[k] if x is not None and not 0 <= x <= 1]
        if bad:
            raise DataError(
                f"TargetSummary 'km' {k} has {len(bad)} value(s) outside [0, 1] (rule: a "
                "survival probability)"
            )
    s = [x for x in km["survival"] if x is not None]
    if any(b > a + 1e-12 for a, b in itertools.pairwise(s)):
        raise DataError("TargetSummary 'km' survival rises over time (rule: S(t) never increases)")
    if any(x is not None and x < 0 for x in km["se"]):
        raise DataError("TargetSummary 'km' se has a negative value (rule: se >= 0)")
    rows = zip(km["ci_lower"], km["survival"], km["ci_upper"], strict=True)
    if any(None not in r and not r[0] - 1e-12 <= r[1] <= r[2] + 1e-12 for r in rows):
        raise DataError(
            "TargetSummary 'km' has an interval that does not hold its estimate (rule: "
            "ci_lower <= survival <= ci_upper)"
        )
