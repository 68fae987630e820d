"""``TargetSummary``: an aggregate description of a cohort, JSON in and out.

Built inside the target's environment from its rows (``from_cohort``), written to JSON
and read back in the source's environment, where it stands in for the target wherever
only aggregates are needed (entropy balancing, balance tables). It holds the number of
patients, the means and standard deviations of the design columns, each categorical
covariate's level shares, and optionally the Kaplan–Meier curve on a fixed grid. No
patient rows.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from transport._validate import check_times, is_integer
from transport.cohort import Cohort
from transport.design import Design, closed_text, quoted_levels
from transport.document import check_shape, read_json
from transport.exceptions import DataError
from transport.staging import write_file
from transport.survival._confint import CONF_TYPES

__all__ = [
    "DOMINANCE_DEPTH",
    "FEW_VALUES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "TargetSummary",
    "concentration",
    "value_cells",
]

SCHEMA = "transport.TargetSummary"
SCHEMA_VERSION = 1

#: A design column with at most this many distinct values, or a continuous covariate
#: with at most ``max(FEW_VALUES, 2m + 1)`` behind ``m`` columns, releases its mean and SD
#: only with ``min_cell`` patients at each value (rule ``few_values``): n, the mean and the
#: SD are three equations in the counts of its values, whose whole, non-negative
#: solutions can be one when the values are few and uneven (four lab values: steps of
#: hundreds of patients between solutions, so a rare value's count is exact).
FEW_VALUES = 10

#: How many of the largest contributions to each design column's mean and SD the
#: dominance rules can look at (the policy's ``dominance_n`` is at most this).
DOMINANCE_DEPTH = 10


def check_summary_design(design: Design) -> None:
    """A design a summary can describe: columns whose levels the release gate can read
    back (``level_coding``), no stateful transforms, treatment coding only.

    Both make a column's values depend on the data the design is fitted on (a mean, the
    set or order of levels), so the target's summary and the source's design would give
    the same name to different columns.
    """
    if design.unmapped_columns:
        raise DataError(
            f"formula {design.formula!r} codes covariate(s) "
            f"{design.covariates_of(design.unmapped_columns)} in columns whose levels cannot "
            "be read back from their names (C() of a continuous covariate names its values; "
            "rule: level_coding); code it with a categorical covariate"
        )
    if design.stateful:
        raise DataError(
            f"formula {design.formula!r} uses stateful transforms {design.stateful} whose "
            "values depend on the data they are fitted on (rule: a summary-only target "
            "needs a formula without them)"
        )
    if not design.treatment_coded:
        raise DataError(
            f"formula {design.formula!r} codes a categorical covariate with contrasts other "
            "than treatment dummies, whose values depend on the levels present (rule: a "
            "summary-only target needs treatment coding, the default)"
        )


def _validate(data: dict[str, Any]) -> None:
    """Refuse a summary whose numbers cannot describe a cohort, naming the field."""
    n = data.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise DataError(f"TargetSummary field 'n' must be a positive integer; got {n!r}")
    km = data.get("km") or {}
    if km.get("conf_type", "log-log") not in CONF_TYPES:
        raise DataError(
            f"TargetSummary 'km' conf_type {km['conf_type']!r} is not one of {list(CONF_TYPES)}"
        )
    suppressed = data.get("suppressed") or {}
    for j, col in enumerate(data["columns"]):
        m, s = data["mean"][j], data["sd"][j]
        if m is None and s is None and col in suppressed:
            continue  # withheld by the release gate; using it as a moment is an error
        if m is None or not math.isfinite(m):
            raise DataError(f"TargetSummary mean of column {col!r} is missing or not finite")
        if s is None or not math.isfinite(s) or s < 0:
            raise DataError(
                f"TargetSummary SD of column {col!r} must be finite and >= 0; got {s!r}"
            )
    for v, c in data["covariates"].items():
        if c.get("type") == "categorical":
            shares = c.get("shares", [])
            if len(shares) != len(c.get("levels", [])) or any(
                x is not None and (x < 0 or x > 1) for x in shares
            ):
                raise DataError(
                    f"TargetSummary shares of covariate {v!r} must be one per level, each in [0, 1]"
                )
            pooled = c.get("pooled")
            if pooled is not None and pooled not in c.get("levels", []):
                raise DataError(
                    f"TargetSummary covariate {v!r} pools its small levels into {pooled!r}, "
                    "which is not one of its levels"
                )
            if None not in shares and abs(sum(shares) - 1.0) > 1e-9:
                raise DataError(
                    f"TargetSummary shares of covariate {v!r} sum to {sum(shares)!r}, not 1"
                )
            _check_shares_against_means(data, v, c["levels"], shares)


def _check_shares_against_means(
    data: dict[str, Any], v: str, levels: list[Any], shares: list[Any]
) -> None:
    """A level's share and its treatment column's mean (``v[T.level]``, or
    ``C(v, ...)[T.level]``; a summary has no other coding) say the same thing. They may
    differ by the release's rounding of counts (:data:`SHARE_SLACK`); a summary where they
    say different things (an edited file) is refused, naming both, rather than weighted to
    the means while its report shows the shares."""
    share = {str(lv): x for lv, x in zip(levels, shares, strict=True)}
    slack = SHARE_SLACK[0] + SHARE_SLACK[1] / data["n"]
    term = re.compile(rf"(?:{re.escape(v)}|C\({re.escape(v)}(?:,[^:]*)?\))\[T\.(.+)\]")
    seen: dict[str, float] = {}  # a level's mean, once (x and C(x, ...) may both code it)
    for col, mean in zip(data["columns"], data["mean"], strict=True):
        found = term.fullmatch(col)
        if not found or mean is None or found.group(1) not in share:
            continue  # not one level's column (an interaction, another coding)
        level = found.group(1)
        said = share.get(level)
        if not -1e-12 <= mean <= 1 + 1e-12 or said is None:
            raise DataError(
                f"TargetSummary column {col!r} has mean {mean:g} (rule: the mean of a level's "
                "column is its share, in [0, 1], and withheld where the share is withheld)"
            )
        seen.setdefault(level, mean)
        if said is not None and abs(mean - said) > slack:
            raise DataError(
                f"TargetSummary column {col!r} has mean {mean:g} but covariate {v!r} gives "
                f"level {level!r} (of {len(levels)}) the share {said:g} (rule: a "
                f"level's share and its column's mean agree, within {slack:.3g})"
            )
    if sum(seen.values()) > 1 + slack:
        raise DataError(
            f"TargetSummary columns of covariate {v!r} have means summing to "
            f"{sum(seen.values()):g} (rule: the shares of its levels sum to at most 1)"
        )


#: Largest gap between a level's share and its column's mean, as ``(a, b)`` for
#: ``a + b / n``: rounding each to ``round_to = 5`` patients moves them by at most 2.5/n.
SHARE_SLACK = (0.005, 5.0)


def _share(x: Any) -> float:
    """A level's share as given in Python: a number, or ``None`` / ``nan`` where withheld
    (text such as ``"0.5"`` is no share)."""
    if x is None:
        return math.nan
    if not isinstance(x, numbers.Real) or isinstance(x, bool | np.bool_):
        raise TypeError(f"a share must be a number or None; got {x!r:.40}")
    return float(x)


def _count(x: Any) -> int:
    """A count as given in Python: an integer (numpy's too), never a float truncated."""
    if not is_integer(x):
        raise TypeError(f"a count must be an integer; got {x!r:.40}")
    return int(x)


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _nan_lists(x: Any) -> Any:
    """Nested JSON lists with ``null`` as ``nan`` (``None`` stays ``None``)."""
    if x is None:
        return None
    if isinstance(x, list):
        return [_nan_lists(v) if isinstance(v, list) else (np.nan if v is None else v) for v in x]
    return x


def interval_counts(table: pl.DataFrame, times: np.ndarray) -> dict[str, list[int]]:
    """Unweighted events and censorings of a KM table (``to_frame``) in each interval
    ``(times[j-1], times[j]]`` (the first from time 0): what a release needs to check
    that every reported step has enough patients behind it."""
    t = table["time"].to_numpy()
    out = {}
    for key in ("n_event", "n_censor"):
        cum = np.concatenate(([0.0], np.cumsum(table[f"{key}_unweighted"].to_numpy())))
        at = cum[np.searchsorted(t, times, side="right")]
        out[key] = [round(x) for x in np.diff(np.concatenate(([0.0], at)))]
    return out


def concentration(X: np.ndarray) -> np.ndarray:
    """What the dominance and p% rules need of each column of ``X`` (patients x columns):
    the cumulative shares of its largest contributions to the total, for the mean the
    contributions ``|x_i|``, for the SD ``(x_i - mean)^2``. Shape ``(columns, 2, D)``
    with ``D = min(DOMINANCE_DEPTH, patients)``; ``nan`` where a total is 0 (a column
    that is 0, or constant, everywhere: no patient stands out). Computed where the rows
    are, checked by the release gate, never released."""
    n, p = X.shape
    depth = min(DOMINANCE_DEPTH, n)
    out = np.full((p, 2, depth), np.nan)
    if n == 0:
        return out
    finite = np.all(np.isfinite(X), axis=0)
    out[~finite] = 1.0  # an overflowing column: as dominated as can be
    scale = np.where(finite, np.abs(np.where(finite, X, 0.0)).max(axis=0), 0.0)
    cols = np.flatnonzero(scale > 0)
    G = X[:, cols] / scale[cols]  # shares do not depend on scale; steep columns stay finite
    for i, c in enumerate((np.abs(G), (G - G.mean(axis=0)) ** 2)):
        total = c.sum(axis=0)
        ok = total > 0
        top = -np.sort(-np.partition(c[:, ok], n - depth, axis=0)[n - depth :], axis=0)
        # the cumulative sum of every contribution may pass the total by a rounding
        out[cols[ok], i, :] = np.minimum(np.cumsum(top, axis=0) / total[ok], 1.0).T
    return out


def value_cells(design: Design, cohort: Cohort, X: np.ndarray) -> list[int | None]:
    """Per design column, the fewest patients at one of its values when the released
    moments may determine how many patients have each value (rule ``few_values``), else
    ``None``: a column with at most :data:`FEW_VALUES` distinct values (``n``, its mean
    and its SD are three equations in their counts: exact for a 0/1/3-coded covariate
    typed continuous, and often one whole solution for four or more uneven values), and
    the ``m`` columns built from one continuous covariate alone when it has at most
    ``max(FEW_VALUES, 2m + 1)`` distinct values (``age + I(age ** 2)`` of a 0-3 score:
    their means and SDs are ``2m`` equations more). Computed where the rows are, never
    released.

    Known limits: a column of more than :data:`FEW_VALUES` values is not checked; its
    counts are a lattice of dimension at least 8, but values chosen to be far apart
    could still leave one solution."""
    out: list[int | None] = []
    for j in range(X.shape[1]):
        counts = np.unique(X[:, j], return_counts=True)[1]
        out.append(int(counts.min()) if 0 < counts.size <= FEW_VALUES else None)
    frame = cohort.covariate_frame
    for v in design.covariates:
        if v in design.levels:
            continue
        cols = [j for j in range(X.shape[1]) if design.covariates_of([j]) == [v]]
        counts = np.unique(frame[v].to_numpy(), return_counts=True)[1]
        if cols and counts.size <= max(FEW_VALUES, 2 * len(cols) + 1):
            for j in cols:
                own = out[j]
                out[j] = int(counts.min()) if own is None else min(int(counts.min()), own)
    return out


class TargetSummary:
    """Aggregates of a target cohort: n, design-column means and SDs, level shares.

    Build with :meth:`from_cohort`; save with :meth:`to_json`, load with
    :meth:`from_json`. Accepted wherever a target is needed only through aggregates.

    Attributes
    ----------
    name, n, time_unit
        The cohort's label, number of patients and time unit.
    formula
        Right-hand side of the design the means describe.
    columns, mean, sd
        Design-column names, means and standard deviations (n - 1 denominator).
    types, levels, shares
        Covariate types, categorical levels and their shares among the n patients.
    km
        ``None`` or the Kaplan–Meier table on a grid: ``time``, ``survival``, ``se``,
        ``ci_lower``, ``ci_upper``, ``n_risk``, and ``n_event`` and ``n_censor`` in the
        interval ending at each time, with ``conf_type``.
    counts
        Rows where each design column is nonzero (what the release gate's cell rule
        needs); ``None`` in a released summary, whose counts were checked and dropped.
    concentration, value_cells, column_levels
        Like ``counts``, what the gate's rules need and never releases (``None`` in a
        released summary): the shares of the largest contributions to each column's
        mean and SD (:func:`concentration`; rules ``dominance``, ``p_percent``), the
        fewest patients at one value of a column whose moments give away its value
        counts (:func:`value_cells`; rule ``few_values``), and the (covariate, level)
        pairs each column is a dummy of (so that a level pooled by the gate takes its
        columns with it).
    pooled
        ``{covariate: level}``: the generic level (``"other"``) the release gate pooled a
        covariate's levels with fewer than ``min_cell`` patients into; their names, and
        their design columns, are not released.
    suppressed
        What the release gate withheld and why: ``{item: rule}``, where an item is a
        design column or ``"covariate=level"`` (their values are ``None``).
    """

    def __init__(
        self,
        *,
        name: str,
        n: int,
        time_unit: str,
        formula: str,
        columns: Sequence[str],
        mean: Sequence[float] | np.ndarray,
        sd: Sequence[float] | np.ndarray,
        types: Mapping[str, str],
        levels: Mapping[str, Sequence[str]],
        shares: Mapping[str, Sequence[float]],
        km: dict[str, Any] | None = None,
        counts: Sequence[int] | None = None,
        suppressed: Mapping[str, str] | None = None,
        concentration: Any = None,
        value_cells: Sequence[int | None] | None = None,
        column_levels: Sequence[Sequence[Sequence[str]]] | None = None,
        pooled: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not is_integer(n):
            raise DataError(
                f"TargetSummary name must be text and n an integer; got {type(name).__name__} "
                f"and {type(n).__name__}"
            )
        try:  # built in Python: a field of the wrong kind is named, not a raw error
            self.name = str(name)
            self.n = int(n)
            self.time_unit = time_unit
            self.formula = formula
            self.columns = tuple(columns)
            self.mean = np.asarray(mean, dtype=np.float64)
            self.sd = np.asarray(sd, dtype=np.float64)
            self.types = dict(types)
            self.levels = {k: tuple(v) for k, v in levels.items()}
            self.shares = {k: tuple(_share(x) for x in v) for k, v in shares.items()}
            self.km = km
            self.counts = None if counts is None else tuple(_count(x) for x in counts)
            self.suppressed = dict(suppressed or {})
            self.concentration = (
                None if concentration is None else np.asarray(concentration, dtype=np.float64)
            )
            self.value_cells = (
                None
                if value_cells is None
                else tuple(None if x is None else _count(x) for x in value_cells)
            )
            self.column_levels = (
                None
                if column_levels is None
                else tuple(tuple((str(v), str(lv)) for v, lv in pairs) for pairs in column_levels)
            )
            self.pooled = dict(pooled or {})
            if self.mean.shape != (len(self.columns),) or self.sd.shape != self.mean.shape:
                raise DataError("summary means and SDs must have one value per design column")
            # built in Python or read from a document: the same rules (a nan mean, n = 0, an
            # unknown unit or shares that contradict the means are no summary of a cohort)
            document = self.to_dict()
            check_shape(document, limit=math.inf)
            _validate(document)
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise DataError(
                f"TargetSummary has a field of the wrong kind ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}) (rule: the fields of from_cohort)"
            ) from None

    @classmethod
    def from_cohort(
        cls,
        cohort: Cohort,
        formula: str | None = None,
        *,
        km_times: Sequence[float] | None = None,
    ) -> TargetSummary:
        """Summarise a cohort: design-column means and SDs, and level shares.

        Every level of every categorical gets its own treatment dummy (and so does every
        interaction of levels), so the summary describes the columns of any source
        design with the same formula, whichever reference level the source has.

        ``formula`` is read in the closed grammar of :mod:`transport.formula` (it is
        chosen by the source, and the summary leaves the environment), and must not use
        stateful transforms (``center``, ``scale``, splines):
        their values depend on the data they are fitted on, so the target's summary and
        the source's design would not describe the same columns. ``km_times`` adds the
        cohort's Kaplan–Meier curve at those times (in increasing order, each once), with
        the events and censorings in each interval between them, which the release gate
        (:func:`transport.disclosure.release`) checks; it keeps only times on its
        policy's grid, so take them from :meth:`transport.disclosure.Policy.grid`.
        """
        # the formula is chosen by the source and the summary leaves: the closed grammar
        design = Design(cohort, formula, source=False, every_level=True, closed=True)
        check_summary_design(design)
        X = design.source_matrix
        frame = cohort.covariate_frame
        shares = {
            v: [
                float(np.mean((frame[v].cast(pl.String) == lv).to_numpy()))
                for lv in cohort.levels[v]
            ]
            for v, t in cohort.covariate_types.items()
            if t == "categorical"
        }
        km: dict[str, Any] | None = None
        if km_times is not None:
            km_times = check_times(km_times, "TargetSummary.from_cohort", name="km_times").tolist()
            from transport.survival import kaplan_meier

            curve = kaplan_meier(cohort)
            table = curve.at(sorted(set(km_times))).drop("n_risk_unweighted")
            km = {
                "conf_type": "log-log",
                **{k: [_num(float(x)) for x in table[k].to_list()] for k in table.columns},
                **interval_counts(curve.to_frame(), table["time"].to_numpy()),
            }
            if cohort.entry is not None:
                km["delayed_entry"] = True
        return cls(
            name=cohort.name,
            n=cohort.n,
            time_unit=cohort.time_unit,
            formula=design.formula,
            columns=design.columns,
            mean=X.mean(axis=0),
            sd=X.std(axis=0, ddof=1) if cohort.n > 1 else np.zeros(X.shape[1]),
            types=cohort.covariate_types,
            levels=cohort.levels,
            shares=shares,
            km=km,
            counts=np.count_nonzero(X, axis=0).tolist(),
            concentration=concentration(X),
            value_cells=value_cells(design, cohort, X),
            column_levels=[design.column_levels(j) for j in range(X.shape[1])],
        )

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary with the schema name and version (floats exact)."""
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "name": self.name,
            "n": self.n,
            "time_unit": self.time_unit,
            "formula": self.formula,
            "columns": list(self.columns),
            "mean": [_num(x) for x in self.mean],
            "sd": [_num(x) for x in self.sd],
            "covariates": {v: self._covariate_dict(v, t) for v, t in self.types.items()},
            "km": copy.deepcopy(self.km),
            "counts": None if self.counts is None else list(self.counts),
            "concentration": None
            if self.concentration is None
            else [[[_num(x) for x in row] for row in col] for col in self.concentration],
            "value_cells": None if self.value_cells is None else list(self.value_cells),
            "column_levels": None
            if self.column_levels is None
            else [[list(pair) for pair in pairs] for pairs in self.column_levels],
            "suppressed": dict(self.suppressed),
        }

    def _covariate_dict(self, v: str, kind: str) -> dict[str, Any]:
        if kind != "categorical":
            return {"type": kind}
        shares = [_num(x) for x in self.shares[v]]
        out = {"type": kind, "levels": list(self.levels[v]), "shares": shares}
        if v in self.pooled:
            out["pooled"] = self.pooled[v]
        return out

    def to_json(self, path: str | Path) -> Path:
        """Write the summary as JSON (floats round-trip exactly); return the path."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return write_file(path, text.encode(), "summary file")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetSummary:
        """Rebuild a summary from :meth:`to_dict` output, checking the schema."""
        if not isinstance(data, Mapping):
            check_shape(data)
        if data.get("schema") != SCHEMA:
            raise DataError(f"not a TargetSummary: schema {data.get('schema')!r}")
        version = data.get("version")
        if type(version) is not int or version != SCHEMA_VERSION:  # true == 1 in Python
            raise DataError(
                f"TargetSummary schema version {version!r:.40} is not supported "
                f"(this package reads version {SCHEMA_VERSION})"
            )
        check_shape(data)
        cov = data["covariates"]
        formula = closed_text(data["formula"], list(cov), "TargetSummary formula")
        return cls(
            name=data["name"],
            n=data["n"],
            time_unit=data["time_unit"],
            formula=formula,
            columns=data["columns"],
            mean=[np.nan if x is None else x for x in data["mean"]],
            sd=[np.nan if x is None else x for x in data["sd"]],
            types={v: c["type"] for v, c in cov.items()},
            levels={v: c["levels"] for v, c in cov.items() if c["type"] == "categorical"},
            shares={v: c["shares"] for v, c in cov.items() if c["type"] == "categorical"},
            km=data.get("km"),
            counts=data.get("counts"),
            suppressed=data.get("suppressed"),
            concentration=_nan_lists(data.get("concentration")),
            value_cells=data.get("value_cells"),
            column_levels=data.get("column_levels"),
            pooled={v: c["pooled"] for v, c in cov.items() if c.get("pooled") is not None},
        )

    @classmethod
    def from_json(cls, path: str | Path) -> TargetSummary:
        """Read a summary written by :meth:`to_json` (at most :data:`MAX_BYTES`)."""
        data = read_json(Path(path), "summary")
        return cls.from_dict(data)

    # -- use as a target --------------------------------------------------------------------
    def moments_for(self, design: Design) -> tuple[np.ndarray, np.ndarray]:
        """Means and SDs of a source design's columns in this target.

        The summary codes every level, so a source column it lacks involves a level
        absent from the target: its mean and SD are 0. A target level the source
        never saw, or a covariate the target lacks, is a ``DataError`` naming it.
        """
        check_summary_design(design)
        missing = [v for v in design.covariates if v not in self.types]
        if missing:
            raise DataError(
                f"covariates {missing} of the design are not in target summary {self.name!r} "
                "(rule: every target carries the source's covariates)"
            )
        for v, lv in design.levels.items():
            if self.types.get(v) != "categorical":
                raise DataError(
                    f"covariate {v!r} is categorical in the source but {self.types.get(v)} in "
                    f"target summary {self.name!r} (rule: same type)"
                )
            if v in self.pooled:
                raise DataError(
                    f"covariate {v!r} of target summary {self.name!r} has levels with a "
                    "withheld number of patients, fewer than the release gate's min_cell "
                    f"each, pooled into level {self.pooled[v]!r} whose names are not released "
                    "(rule: min_cell); balance on a formula without it, or merge its small "
                    "levels in both cohorts before summarising"
                )
            shares = dict(zip(self.levels[v], self.shares[v], strict=True))
            # a level withheld by the release gate (nan share) has patients, too few to say
            unseen = {u: s for u, s in shares.items() if u not in lv and not s <= 0}
            if unseen:
                # a withheld share (nan) is rare: quoted_levels names none below its floor
                rows = {u: 0 if math.isnan(s) else round(s * self.n) for u, s in unseen.items()}
                known = design.level_counts
                theirs = str(list(lv)) if known is None else quoted_levels(known[v])
                raise DataError(
                    f"covariate {v!r} of target summary {self.name!r} has {len(rows)} "
                    f"level(s) that the source never saw: {quoted_levels(rows)} (rule: "
                    f"target levels are among the source's {len(lv)}: {theirs})"
                )
        index = {c: i for i, c in enumerate(self.columns)}
        mean = np.zeros(len(design.columns))
        sd = np.zeros(len(design.columns))
        for j, col in enumerate(design.columns):
            if col in self.suppressed:
                raise DataError(
                    f"design column {col!r} was withheld from target summary {self.name!r} "
                    f"by the release gate (rule: {self.suppressed[col]}); balance on a "
                    "formula without it, or merge small categories before summarising"
                )
            if col in index:
                mean[j], sd[j] = self.mean[index[col]], self.sd[index[col]]
            elif not design.absent_level_column(j, self.levels):
                raise DataError(
                    f"design column {col!r} is not described by target summary {self.name!r} "
                    f"(its formula is {self.formula!r}; rule: summarise the target with the "
                    "formula the source uses)"
                )
        return mean, sd

    def __repr__(self) -> str:
        km = f", KM at {len(self.km['time'])} times" if self.km else ""
        return f"TargetSummary({self.name!r}: n = {self.n}, {len(self.columns)} design columns{km})"
