"""What the report shows is what the release gate releases: the report can leave the
environment of the rows, so its tables and figures are built from the gate's output.

:func:`released_parts` gives a result's summary, equivalence and decomposition tables
under the gate's summary rules (:func:`~transport.policy.guard_summary`);
:func:`released_views` gives, for the figures, each result as the gate releases it
(:class:`ReleasedResult`: its curves on the released grid, from the gate's own
``transport_curves.csv``, never the exact event times).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from transport.disclosure.record import Release
from transport.disclosure.results import guard_result_summary, release_result
from transport.exceptions import DisclosureError
from transport.inference import IntervalKind
from transport.policy import SUMMARY_KEYS, Policy, guard_timed_rows, outward
from transport.result import TransportResult

__all__ = [
    "Released",
    "ReleasedCurve",
    "ReleasedResult",
    "gate",
    "nice_ticks",
    "released_distance",
    "released_parts",
    "released_summary",
    "released_views",
]


def released_summary(
    r: TransportResult, kind: IntervalKind, policy: Policy
) -> tuple[pl.DataFrame, set[tuple[str, Any]]]:
    """The result's summary as the release gate releases it (the gate's own
    :func:`~transport.disclosure.results.guard_result_summary`: S(t) and RMST rows the
    curves' risk sets do not support withheld, medians on the grid,
    their SEs withheld), and the (estimand, time) rows it withheld. The report and its
    tidy tables can leave the environment: they show what the gate would release."""
    table = r.summary(kind)
    cols = table.to_dict(as_series=False)
    before = list(cols["transported"])
    guard_result_summary(r, cols, policy, lambda *_: None)
    gone = {
        (e, t)
        for e, t, b, a in zip(
            cols["estimand"], cols["time"], before, cols["transported"], strict=True
        )
        if b is not None and a is None
    }
    return pl.DataFrame(cols, schema=table.schema), gone


def _guard_rows(
    frame: pl.DataFrame,
    gone: set[tuple[str, Any]],
    step: float,
    values: Sequence[str],
    limits: Sequence[tuple[str, bool]],
    hidden: Sequence[str],
) -> pl.DataFrame:
    """``frame`` (rows keyed by ``estimand`` and ``time``) under the summary's rules: the
    rows the summary withheld withheld, median rows' ``values`` rounded to the grid step,
    their ``limits`` outwards (``True``: up), and their ``hidden`` columns (SEs, p-values
    that would give the exact difference back) withheld."""
    rows = frame.to_dicts()
    for row in rows:
        if (row["estimand"], row["time"]) in gone:
            for c in (*values, *(c for c, _ in limits), *hidden):
                row[c] = None
        elif row["estimand"] == "median":
            for c in values:
                v = row[c]
                row[c] = v if v is None or not math.isfinite(v) else step * round(v / step)
            for c, up in limits:
                row[c] = outward(row[c], step, up)
            for c in hidden:
                row[c] = None
    return pl.DataFrame(rows, schema=frame.schema)


def gate(r: TransportResult, policy: Policy) -> tuple[pl.DataFrame | None, str | None]:
    """The gate's released curves of ``r`` (its ``transport_curves.csv``), or ``None``
    and the rule by which it refuses ``r`` (the rule only: the gate's message may name
    the column it refused)."""
    record = Release(policy, "TransportResult", r.source)
    try:
        release_result(r, policy, record)
    except DisclosureError as exc:
        rule = re.search(r"rule:? (\w+)", str(exc))
        return None, rule.group(1) if rule else "of the gate"
    return pl.read_csv(io.BytesIO(record.files["transport_curves.csv"])), None


def released_parts(
    r: TransportResult, kind: IntervalKind, policy: Policy, refused: bool
) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.DataFrame]:
    """The result's summary, equivalence (``None`` without a margin) and decomposition
    tables as the gate would release them: every value withheld when the gate refuses
    the result (``refused``, from :func:`gate`: a refused result shows nothing but its
    labels), else its summary rules, a withheld row's verdict withheld with it."""
    summary, gone = released_summary(r, kind, policy)
    if refused:
        keep = SUMMARY_KEYS | {"margin"}
        summary = summary.with_columns(
            pl.lit(None, summary.schema[c]).alias(c) for c in summary.columns if c not in keep
        )
        gone = {(e, t) for e, t in zip(summary["estimand"], summary["time"], strict=True)}
    step = policy.grid_step_in(r.time_unit)
    equivalence = None
    if "verdict" in summary.columns:
        equivalence = _guard_rows(
            r.equivalence(interval_kind=kind),
            gone,
            step,
            ["difference"],
            [("lower", False), ("upper", True)],
            ["equivalence_p", "verdict"],
        )
    decomposition = _guard_rows(
        r.decomposition(kind),
        gone,
        step,
        ["value"],
        [("ci_lower", False), ("ci_upper", True)],
        ["se"],
    )
    return summary, equivalence, decomposition


def released_distance(
    r: TransportResult, kind: IntervalKind, policy: Policy, refused: bool
) -> dict[str, Any]:
    """The result's curve distance over its window (``value``, ``se``, ``ci_lower``,
    ``ci_upper``, ``ci_method``), as the gate's rules allow it: the window's ends are
    treated as released times (:func:`~transport.policy.guard_timed_rows` with the
    summary's own: none or at least ``min_km_step`` exits between consecutive ones in
    each cohort), and a result the gate refuses (``refused``) shows none."""
    assert r.window is not None
    d = r.curve_distance(kind)
    out: dict[str, Any] = {
        "value": d.value,
        "se": d.se,
        "ci_lower": d.ci_lower,
        "ci_upper": d.ci_upper,
    }
    timed = r.summary(kind).filter(pl.col("estimand").is_in(["survival", "rmst"]))
    times = [float(t) for t in timed["time"]] + [float(t) for t in r.window if t > 0]
    n = len(times)
    cols: dict[str, list[Any]] = {
        "estimand": ["rmst"] * n,
        "time": times,
        "transported": [1.0] * n,
        "value": [1.0] * n,
    }
    curves = [r.naive] + ([r.observed] if r.observed is not None else [])
    guard_timed_rows(cols, ["transported", "value"], curves, policy, lambda *_: None)
    window_kept = all(v is not None for v in cols["value"][timed.height :])
    if refused or not window_kept:
        out = dict.fromkeys(out)
    out = {k: None if v is not None and math.isnan(v) else v for k, v in out.items()}
    return {**out, "ci_method": d.ci_method}


class ReleasedCurve:
    """One curve of a released ``transport_curves.csv`` (a step curve on the kept grid
    times, its band, and the released rounded numbers at risk), drawn like a
    Kaplan–Meier curve."""

    def __init__(self, rows: pl.DataFrame, name: str, time_unit: str) -> None:
        self.time = rows["time"].to_numpy().astype(float)
        self.survival = rows["survival"].to_numpy().astype(float)
        self.ci_lower = rows["ci_lower"].fill_null(np.nan).to_numpy().astype(float)
        self.ci_upper = rows["ci_upper"].fill_null(np.nan).to_numpy().astype(float)
        self.n_risk = rows["n_risk"].fill_null(0).to_numpy().astype(float)
        self.name = name
        self.time_unit = time_unit
        self.weighted = False

    def risk_table(self, times: np.ndarray) -> pl.DataFrame:
        """The released number at risk just after each of ``times`` (at 0 the first
        step's), for times within the released grid."""
        idx = np.minimum(
            np.searchsorted(self.time, np.asarray(times, float), side="right"), self.time.size - 1
        )
        n = self.n_risk[idx]
        return pl.DataFrame({"n_risk": n, "n_risk_unweighted": n})


class ReleasedResult:
    """A :class:`~transport.TransportResult` as the gate releases it, for the figures:
    the same names, its curves from the gate's ``transport_curves.csv``, its summary and
    decomposition from :func:`released_parts`."""

    def __init__(
        self, r: TransportResult, curves: pl.DataFrame, kind: IntervalKind, policy: Policy
    ) -> None:
        self.method, self.source, self.target = r.method, r.source, r.target
        self.time_unit = r.time_unit
        self.estimands = r.estimands
        self._summary, _, self._decomposition = released_parts(r, kind, policy, False)

        def curve(label: str, name: str) -> ReleasedCurve | None:
            rows = curves.filter(pl.col("curve") == label)
            return ReleasedCurve(rows, name, r.time_unit) if rows.height else None

        naive = curve("naive", f"{r.source} (naive)")
        transported = curve("transported", f"{r.source} transported ({r.method})")
        assert naive is not None and transported is not None  # the gate always writes them
        self.naive, self.transported = naive, transported
        self.observed = curve("observed", f"{r.target} (observed)")

    def summary(self) -> pl.DataFrame:
        return self._summary

    def decomposition(self) -> pl.DataFrame:
        return self._decomposition


def released_views(
    results: Sequence[TransportResult], kind: IntervalKind, policy: Policy
) -> Released:
    """Each of ``results`` as the gate releases it, and the gate's reasons for those it
    refuses (a result the gate refuses is not drawn)."""
    views, refused = [], []
    for r in results:
        curves, rule = gate(r, policy)
        if curves is None:
            refused.append(f"{r.method} (rule {rule})")
        else:
            views.append(ReleasedResult(r, curves, kind, policy))
    return views, refused


#: What :func:`released_views` returns: the views the gate releases, and its refusals.
Released = tuple[list[ReleasedResult], list[str]]


def nice_ticks(top: float, k: int = 6) -> list[float]:
    """Round tick times from 0 to ``top`` (where the numbers at risk are shown)."""
    from matplotlib.ticker import MaxNLocator

    ticks = MaxNLocator(nbins=k, steps=[1, 2, 2.5, 3, 5, 6, 10]).tick_values(0.0, top)
    return [float(t) for t in ticks if 0 <= t <= top]
