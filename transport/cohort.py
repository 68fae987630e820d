"""``Cohort``: validated patient-level data with named roles and an exclusion log.

All data-frame handling of patient rows happens here, once. Downstream code reads
float64 numpy arrays (``time_values``, ``event_values``, ``entry_values``) and a polars
frame of covariates; identifier columns are held apart and never enter any output.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import polars as pl

from transport._validate import MAX_TAU, check_choice, scaled_times
from transport.exceptions import DataError
from transport.frames import pandas_frame

__all__ = ["TIME_UNITS", "Cohort"]

TimeUnit = Literal["days", "weeks", "months", "years"]
CovariateType = Literal["categorical", "continuous"]
NaAction = Literal["error", "drop"]

#: Length of each time unit in days (Julian year: 365.25 days, month = year / 12).
TIME_UNITS: dict[str, float] = {
    "days": 1.0,
    "weeks": 7.0,
    "months": 365.25 / 12.0,
    "years": 365.25,
}

_CATEGORICAL_DTYPES = (pl.String, pl.Categorical, pl.Enum, pl.Boolean)


def _as_polars(data: Any, needed: list[str]) -> pl.DataFrame:
    """Convert the accepted frame types to a polars DataFrame holding only ``needed``."""
    if isinstance(data, pl.LazyFrame):
        try:
            names = data.collect_schema().names()
            _require_columns(names, needed)
            return data.select(needed).collect()
        except (pl.exceptions.PolarsError, OSError) as exc:  # the query, not the roles
            # a file's error names the file; polars' own may quote data values: not passed on
            text = str(exc).strip().splitlines()[0][:200] if isinstance(exc, OSError) else ""
            raise DataError(
                f"the LazyFrame given as data cannot be collected ({type(exc).__name__}"
                f"{': ' + text if text else ''}) (rule: a query polars can run; collect it to "
                "see why)"
            ) from None
    if isinstance(data, pl.DataFrame):
        _require_columns(data.columns, needed)
        return data.select(needed)
    module = type(data).__module__
    if module.startswith("pandas") and hasattr(data, "columns"):
        return pandas_frame(data, needed, _require_columns)
    raise TypeError(
        "The 'data' argument of Cohort must be a polars DataFrame or LazyFrame or a pandas "
        f"DataFrame. Got {type(data).__name__} instead."
    )


def _require_columns(names: Sequence[str], needed: Iterable[str]) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        raise DataError(
            f"column(s) {missing} named in the roles are not in the data "
            f"(rule: every role names an existing column; the data have {len(names)} columns)"
        )


def _missing_mask(col: pl.Series) -> np.ndarray:
    mask = col.is_null().to_numpy()
    if col.dtype.is_float():
        mask = mask | col.is_nan().fill_null(False).to_numpy()
    return np.asarray(mask, dtype=bool)


class Cohort:
    """A validated patient cohort with roles: time, event, covariates, entry, identifiers.

    Parameters
    ----------
    data
        A polars ``DataFrame`` or ``LazyFrame`` (only the role columns are collected), or a
        pandas ``DataFrame``. Columns that play no role are not carried at all.
    time
        Column with the follow-up time (time from the origin to the event or censoring),
        non-negative and finite, in ``time_unit``.
    event
        Column with the event indicator: 1 (or ``True``) for the event, 0 for censoring.
    covariates
        Columns describing patients. String, categorical, enum and boolean columns are
        categorical; numeric columns are continuous, unless ``covariate_types`` says
        otherwise (e.g. ``{"ecog": "categorical"}`` for an integer-coded score).
    name
        Label of the cohort (e.g. the country), used in tables and plots.
    time_unit
        ``"days"``, ``"weeks"``, ``"months"`` or ``"years"``. Conversions are exact with a
        Julian year of 365.25 days and a month of 365.25 / 12 days (see :meth:`in_unit`).
    entry
        Optional column with the delayed-entry (left-truncation) time: a patient is at risk
        at time ``t`` only if ``entry < t <= time``. Must satisfy ``0 <= entry < time``.
    identifiers
        Optional patient, practice or physician identifier columns, kept for linkage
        (:meth:`linkage_keys`) and never part of any table, summary, plot or release.
    covariate_types
        Overrides of the automatic covariate typing.
    na_action
        ``"error"`` (default): a missing value in any role column is an error naming the
        column and the row count. ``"drop"``: such rows are dropped and every drop is
        counted by reason in :attr:`exclusions`.

    Raises
    ------
    DataError
        When a rule is broken: the message names the column, the rule and the rows.

    Examples
    --------
    >>> import polars as pl
    >>> import transport as tp
    >>> df = pl.DataFrame({"os_days": [120.0, 400.0, 35.0], "death": [1, 0, 1],
    ...                    "age": [61.0, 70.0, 55.0], "ecog": ["0", "1", "2"]})
    >>> c = tp.Cohort(df, time="os_days", event="death", covariates=["age", "ecog"],
    ...               name="US", time_unit="days")
    >>> c.n
    3
    >>> c.covariate_types
    {'age': 'continuous', 'ecog': 'categorical'}
    """

    __slots__ = (
        "_covariate_types",
        "_covariates",
        "_entry",
        "_entry_values",
        "_event",
        "_event_values",
        "_exclusions",
        "_frame",
        "_identifiers",
        "_ids",
        "_levels",
        "_name",
        "_time",
        "_time_unit",
        "_time_values",
    )

    def __init__(
        self,
        data: Any,
        *,
        time: str,
        event: str,
        covariates: Sequence[str] = (),
        name: str = "cohort",
        time_unit: TimeUnit = "days",
        entry: str | None = None,
        identifiers: Sequence[str] = (),
        covariate_types: Mapping[str, CovariateType] | None = None,
        na_action: NaAction = "error",
    ) -> None:
        covariates = _column_list(covariates, "covariates")
        identifiers = _column_list(identifiers, "identifiers")
        check_choice(time_unit, "time_unit", tuple(TIME_UNITS), "Cohort")
        check_choice(na_action, "na_action", ("error", "drop"), "Cohort")
        if not isinstance(name, str) or not name.strip():  # str(None) would name it 'None'
            raise TypeError(
                f"The 'name' parameter of Cohort must be non-empty text. Got {name!r:.60}."
            )
        roles = _roles(time, event, entry, covariates, identifiers)
        overrides = _covariate_overrides(covariate_types, covariates)
        frame = _as_polars(data, [c for _, c in roles])
        if frame.height == 0:
            raise DataError("the cohort is empty (rule: at least one row; got 0 rows)")
        _check_outcome_types(frame, roles[: 3 if entry is not None else 2])
        frame, exclusions = _drop_missing(frame, roles, na_action)
        t, ev, ent = _outcome_arrays(frame, time, event, entry)
        columns, types, levels = _covariate_columns(frame, covariates, overrides)

        self._time = time
        self._event = event
        self._entry = entry
        self._covariates = tuple(covariates)
        self._identifiers = tuple(identifiers)
        self._covariate_types = types
        self._levels = levels
        self._name = str(name)
        self._time_unit = time_unit
        self._time_values = _readonly(t)
        self._event_values = _readonly(ev)
        self._entry_values = None if ent is None else _readonly(ent)
        self._frame = pl.DataFrame(columns) if columns else pl.DataFrame()
        self._ids = frame.select(identifiers) if identifiers else None
        self._exclusions = pl.DataFrame(
            {
                "reason": [r for r, _, _ in exclusions],
                "column": [c for _, c, _ in exclusions],
                "n_rows": [k for _, _, k in exclusions],
            },
            schema={"reason": pl.String, "column": pl.String, "n_rows": pl.Int64},
        )

    # -- immutability -------------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        if hasattr(self, "_exclusions"):
            raise AttributeError("Cohort is immutable; build a new one instead")
        object.__setattr__(self, key, value)

    def __delattr__(self, key: str) -> None:
        raise AttributeError("Cohort is immutable")

    # -- roles and sizes ----------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of rows kept."""
        return int(self._time_values.size)

    @property
    def name(self) -> str:
        """Label of the cohort."""
        return self._name

    @property
    def time_unit(self) -> str:
        """Unit of the time (and entry) column."""
        return self._time_unit

    @property
    def time(self) -> str:
        """Name of the time column."""
        return self._time

    @property
    def event(self) -> str:
        """Name of the event column."""
        return self._event

    @property
    def entry(self) -> str | None:
        """Name of the delayed-entry column, or ``None``."""
        return self._entry

    @property
    def covariates(self) -> tuple[str, ...]:
        """Covariate column names, in the order given."""
        return self._covariates

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Names of the identifier columns (their values never leave the cohort)."""
        return self._identifiers

    @property
    def covariate_types(self) -> dict[str, CovariateType]:
        """``"categorical"`` or ``"continuous"`` for each covariate."""
        return dict(self._covariate_types)

    @property
    def levels(self) -> dict[str, tuple[str, ...]]:
        """Levels of each categorical covariate, first level first.

        Enum columns keep their declared order; numeric columns typed categorical are
        ordered numerically, booleans ``false`` then ``true``, strings lexicographically.
        """
        return dict(self._levels)

    @property
    def exclusions(self) -> pl.DataFrame:
        """Rows dropped, by reason: polars frame with ``reason``, ``column``, ``n_rows``."""
        return self._exclusions.clone()

    @property
    def n_excluded(self) -> int:
        """Total number of rows dropped."""
        return int(self._exclusions["n_rows"].sum())

    # -- data access --------------------------------------------------------------------
    @property
    def time_values(self) -> np.ndarray:
        """Follow-up times as a read-only float64 array, in :attr:`time_unit`."""
        return self._time_values

    @property
    def event_values(self) -> np.ndarray:
        """Event indicators (1.0 event, 0.0 censored) as a read-only float64 array."""
        return self._event_values

    @property
    def entry_values(self) -> np.ndarray | None:
        """Delayed-entry times as a read-only float64 array, or ``None``."""
        return self._entry_values

    @property
    def covariate_frame(self) -> pl.DataFrame:
        """Covariates only (continuous as Float64, categorical as Enum), row order kept."""
        return self._frame.clone()

    def to_frame(self) -> pl.DataFrame:
        """Outcome and covariate columns under their original names; never identifiers."""
        cols = [
            pl.Series(self._time, self._time_values),
            pl.Series(self._event, self._event_values),
        ]
        if self._entry is not None and self._entry_values is not None:
            cols.append(pl.Series(self._entry, self._entry_values))
        return pl.DataFrame(cols).hstack(self._frame)

    def linkage_keys(self) -> pl.DataFrame:
        """Identifier columns, in row order, for linkage inside the environment only.

        These values must never be written to any output that can leave the environment.
        """
        if self._ids is None:
            raise DataError("this cohort was built without identifier columns")
        return self._ids.clone()

    def in_unit(self, time_unit: TimeUnit) -> Cohort:
        """The same cohort with time (and entry) converted exactly to ``time_unit``."""
        if not isinstance(time_unit, str) or time_unit not in TIME_UNITS:
            raise ValueError(
                f"The 'time_unit' parameter of Cohort.in_unit must be one of {sorted(TIME_UNITS)}. "
                f"Got {time_unit!r} instead."
            )
        factor = TIME_UNITS[self._time_unit] / TIME_UNITS[time_unit]
        where = f"column {self._time!r} of cohort {self._name!r}"
        converted = scaled_times(self._time_values, factor, where, self._time_unit, time_unit)
        new = object.__new__(Cohort)
        for slot in Cohort.__slots__:
            if slot != "_exclusions":
                object.__setattr__(new, slot, object.__getattribute__(self, slot))
        object.__setattr__(new, "_time_unit", time_unit)
        object.__setattr__(new, "_time_values", _readonly(converted))
        if self._entry_values is not None:
            object.__setattr__(new, "_entry_values", _readonly(self._entry_values * factor))
        object.__setattr__(new, "_exclusions", self._exclusions)
        return new

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        n_cat = sum(1 for v in self._covariate_types.values() if v == "categorical")
        n_events = int(self._event_values.sum())
        entry = f", entry {self._entry!r}" if self._entry else ""
        return (
            f"Cohort({self._name!r}: {self.n:,} rows kept, {self.n_excluded:,} excluded; "
            f"{n_events:,} events; time {self._time!r} [{self._time_unit}], event "
            f"{self._event!r}{entry}; {len(self._covariates)} covariates "
            f"({n_cat} categorical))"
        )


# -- the steps of Cohort.__init__, in the order it takes them -------------------------
def _column_list(value: Any, param: str) -> list[str]:
    """A role's column names: one name, or a list, tuple or other ordered sequence of them."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        raise TypeError(
            f"The {param!r} parameter of Cohort must be a column name or a list of them. "
            f"Got {type(value).__name__} instead."
        )
    return list(value)


def _roles(
    time: str, event: str, entry: str | None, covariates: list[str], identifiers: list[str]
) -> list[tuple[str, str]]:
    """``(role, column)`` pairs, outcomes first; every name a string playing one role."""
    roles: list[tuple[str, str]] = [("time", time), ("event", event)]
    if entry is not None:
        roles.append(("entry", entry))
    roles += [("covariate", c) for c in covariates]
    roles += [("identifier", c) for c in identifiers]
    seen: dict[str, str] = {}
    for role, col in roles:
        if not isinstance(col, str):
            raise TypeError(f"column names must be strings; the {role} role got {col!r}")
        if col in seen:
            raise ValueError(
                f"column {col!r} is given two roles ({seen[col]} and {role}); "
                "each column may play one role"
            )
        seen[col] = role
    return roles


def _covariate_overrides(
    covariate_types: Mapping[str, CovariateType] | None, covariates: list[str]
) -> dict[str, CovariateType]:
    if covariate_types is not None and not isinstance(covariate_types, Mapping):
        raise TypeError(
            "The 'covariate_types' parameter of Cohort must be a dict from covariate to "
            f"'categorical' or 'continuous'. Got {type(covariate_types).__name__} instead."
        )
    overrides = dict(covariate_types or {})
    for col, given_kind in overrides.items():
        if col not in covariates:
            raise ValueError(
                f"The 'covariate_types' parameter names {col!r}, which is not a covariate "
                f"(covariates: {covariates})."
            )
        if given_kind not in ("categorical", "continuous"):
            raise ValueError(
                f"The 'covariate_types' entry for {col!r} must be 'categorical' or "
                f"'continuous'. Got {given_kind!r} instead."
            )
    return overrides


def _check_outcome_types(frame: pl.DataFrame, outcomes: list[tuple[str, str]]) -> None:
    """Time, event and entry columns are numeric (a boolean event too)."""
    for role, col in outcomes:
        dtype = frame.schema[col]
        if role == "event" and dtype == pl.Boolean:
            continue
        if not dtype.is_numeric():
            raise DataError(
                f"{role} column {col!r} must be numeric (rule: numeric type); "
                f"got dtype {dtype} for all {frame.height} rows"
            )


def _drop_missing(
    frame: pl.DataFrame, roles: list[tuple[str, str]], na_action: str
) -> tuple[pl.DataFrame, list[tuple[str, str, int]]]:
    """Missing values: an error, or rows dropped and logged by reason."""
    n_input = frame.height
    exclusions: list[tuple[str, str, int]] = []
    for role, col in roles:
        if role == "identifier":
            continue
        mask = _missing_mask(frame[col])
        k = int(mask.sum())
        if k == 0:
            continue
        if na_action == "error":
            raise DataError(
                f"{role} column {col!r} has {k} of {frame.height} rows missing "
                "(rule: no missing values; pass na_action='drop' to drop such rows, "
                "counted in Cohort.exclusions)"
            )
        frame = frame.filter(pl.Series(~mask))
        exclusions.append((f"missing {role}", col, k))
    if frame.height == 0:
        raise DataError(
            f"the cohort is empty after dropping rows with missing values "
            f"(rule: at least one row; all {n_input} rows were dropped)"
        )
    return frame, exclusions


def _outcome_arrays(
    frame: pl.DataFrame, time: str, event: str, entry: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Time, event and entry as float64 arrays, each checked against its rule."""
    t = frame[time].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    _check_finite_nonneg(t, "time", time)
    ev = frame[event].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    bad = ~np.isin(ev, (0.0, 1.0))
    if bad.any():
        examples = sorted({repr(float(v)) for v in ev[bad][:1000]})[:5]
        raise DataError(
            f"event column {event!r} has {int(bad.sum())} of {ev.size} rows with values "
            f"other than 0/1 (rule: 1 = event, 0 = censored); e.g. {', '.join(examples)}"
        )
    if entry is None:
        return t, ev, None
    ent = frame[entry].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    _check_finite_nonneg(ent, "entry", entry)
    late = ent >= t
    if late.any():
        raise DataError(
            f"entry column {entry!r} is not before time column {time!r} in "
            f"{int(late.sum())} of {t.size} rows (rule: entry < time)"
        )
    return t, ev, ent


def _covariate_columns(
    frame: pl.DataFrame, covariates: list[str], overrides: dict[str, CovariateType]
) -> tuple[list[pl.Series], dict[str, CovariateType], dict[str, tuple[str, ...]]]:
    """Covariates typed and checked: Float64 or Enum columns, their kinds and levels."""
    types: dict[str, CovariateType] = {}
    levels: dict[str, tuple[str, ...]] = {}
    columns: list[pl.Series] = []
    for col in covariates:
        s = frame[col]
        kind = _covariate_kind(s, col, overrides.get(col))
        if kind == "continuous":
            columns.append(_continuous(s, col))
        else:
            lv = _levels(s)
            columns.append(_to_string(s).cast(pl.Enum(list(lv))))
            levels[col] = lv
        types[col] = kind
    return columns, types, levels


def _covariate_kind(s: pl.Series, col: str, given: CovariateType | None) -> CovariateType:
    """The declared kind, else categorical for string-like dtypes and continuous for numbers."""
    if given == "categorical" and not (
        isinstance(s.dtype, _CATEGORICAL_DTYPES) or s.dtype.is_numeric()
    ):
        raise DataError(
            f"covariate column {col!r} is declared categorical but has dtype {s.dtype} in "
            f"all {s.len()} rows (rule: a categorical covariate is numeric, string, "
            "categorical, enum or boolean)"
        )
    if given is not None:
        return given
    if isinstance(s.dtype, _CATEGORICAL_DTYPES):
        return "categorical"
    if not s.dtype.is_numeric():
        raise DataError(
            f"covariate column {col!r} has dtype {s.dtype}, which is neither numeric nor "
            "categorical (rule: numeric, string, categorical, enum or boolean)"
        )
    return "continuous"


def _continuous(s: pl.Series, col: str) -> pl.Series:
    """A continuous covariate as Float64: numeric and finite."""
    if not s.dtype.is_numeric():
        raise DataError(
            f"covariate column {col!r} is declared continuous but has dtype {s.dtype} in all "
            f"{s.len()} rows (rule: continuous covariates are numeric)"
        )
    x = s.cast(pl.Float64)
    inf = np.isinf(x.to_numpy())
    if inf.any():
        raise DataError(
            f"covariate column {col!r} has {int(inf.sum())} of {x.len()} rows "
            "infinite (rule: finite values)"
        )
    return x


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _check_finite_nonneg(x: np.ndarray, role: str, col: str) -> None:
    inf = ~np.isfinite(x)
    if inf.any():
        raise DataError(
            f"{role} column {col!r} has {int(inf.sum())} of {x.size} rows infinite "
            "(rule: finite values)"
        )
    neg = x < 0
    if neg.any():
        raise DataError(
            f"{role} column {col!r} has {int(neg.sum())} of {x.size} rows negative "
            f"(rule: {role} >= 0; smallest value {float(x.min())!r})"
        )
    huge = x > MAX_TAU
    if huge.any():  # sums of squared areas under such curves are no number
        raise DataError(
            f"{role} column {col!r} has {int(huge.sum())} of {x.size} rows above "
            f"{MAX_TAU:g} time units (rule: {role} <= {MAX_TAU:g}; check the column's unit)"
        )


def _to_string(s: pl.Series) -> pl.Series:
    """Labels of a categorical covariate: whole floats print as integers ("2", not "2.0")."""
    if s.dtype == pl.Boolean:
        return s.cast(pl.String).str.to_lowercase()
    if isinstance(s.dtype, pl.Enum | pl.Categorical) or s.dtype.is_integer():
        return s.cast(pl.String)
    if s.dtype.is_float():
        x = s.cast(pl.Float64).to_numpy()
        if np.all(np.isnan(x) | ((x == np.round(x)) & (np.abs(x) < 2.0**53))):
            return s.cast(pl.Int64, strict=False).cast(pl.String)
        return s.cast(pl.String)
    return s.cast(pl.String)


def _levels(s: pl.Series) -> tuple[str, ...]:
    """Levels in order: Enum order, false/true, numeric order, or lexicographic."""
    dtype = s.dtype
    if isinstance(dtype, pl.Enum):
        present = set(s.cast(pl.String).unique().to_list())
        return tuple(c for c in cast(list[str], dtype.categories.to_list()) if c in present)
    if dtype == pl.Boolean:
        present = set(s.unique().to_list())
        return tuple(name for v, name in ((False, "false"), (True, "true")) if v in present)
    if dtype.is_numeric():
        # the same conversion as the column itself, applied to its sorted distinct values
        return tuple(_to_string(s.unique().sort()).to_list())
    return tuple(sorted(_to_string(s).unique().to_list()))
