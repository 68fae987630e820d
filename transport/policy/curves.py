"""The curve rules (``km_grid``, ``min_km_step``, ``time_grid``): survival curves on the
fixed grid, the timed rows of a summary, medians rounded to the grid."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from transport._validate import check_flag, is_finite_number
from transport.exceptions import DataError
from transport.policy.settings import Policy, Withhold
from transport.summary import interval_counts
from transport.survival._confint import CONF_TYPES, ConfType, bands

__all__ = [
    "MEDIAN_BASES",
    "SUMMARY_KEYS",
    "check_interval",
    "coarsen_km",
    "curve_grid_counts",
    "guard_summary",
    "guard_timed_rows",
    "life_table_of",
    "outward",
    "released_counts",
    "round_median_row",
    "rounded_at_least",
    "rounding_slack",
]


#: Columns of a transport summary that are labels, not released values (a verdict is a
#: value: it says on which side of the margin the withheld difference lies).
SUMMARY_KEYS: frozenset[str] = frozenset(
    {
        "source",
        "target",
        "method",
        "estimand",
        "time",
        "ci_method",
        "conf_level",
        "n_boot",
        "n_boot_failed",
        "margin",
    }
)


#: The curves whose medians a summary row may carry.
MEDIAN_BASES: tuple[str, ...] = ("transported", "observed", "naive")


def check_interval(conf_type: Any, conf_level: Any, label: str) -> ConfType:
    """A released curve's interval: ``conf_type`` one of :data:`CONF_TYPES` and
    ``conf_level`` a number in (0, 1); a curve edited by hand is a ``DataError`` naming
    ``label`` (which curve) and the field."""
    if not isinstance(conf_type, str) or conf_type not in CONF_TYPES:
        raise DataError(f"{label} has conf_type {conf_type!r:.40}, not one of {list(CONF_TYPES)}")
    if not is_finite_number(conf_level) or not 0 < conf_level < 1:
        raise DataError(f"{label} has conf_level {conf_level!r:.40}, not a number in (0, 1)")
    return conf_type  # type: ignore[return-value]  # one of CONF_TYPES


def coarsen_km(
    table: Mapping[str, Any],
    n: float,
    policy: Policy,
    withhold: Withhold | None = None,
    label: str = "",
    *,
    conf_type: ConfType = "log-log",
    conf_level: float = 0.95,
    exact_values: bool = False,
) -> pl.DataFrame:
    """A Kaplan–Meier curve made safe to release: the grouped estimate on a fixed grid,
    computed from the counts it releases.

    ``table`` holds the grid (``time``, increasing) and the unweighted ``n_event`` and
    ``n_censor`` in each interval ``(previous time, time]``; ``n`` is the number of
    patients at the start. A grid time is kept when the events plus censorings since the
    last kept time are none or at least ``min_km_step`` (otherwise its interval merges
    into the next), while the risk set at the start of its interval is at least
    ``min_cell``. Both are decided on the counts as released (:func:`released_counts`),
    never on the exact ones, so that a plan varying ``min_cell`` or ``min_km_step``
    learns nothing beyond the rounding: the released risk set of the step where the
    curve stops is the last released one less its released exits, and a merge depends
    only on rounded cumulative counts. With ``exact_values`` (the grid of values that
    are not a function of the released counts, such as a shipped model's baseline
    hazard) the exact counts must meet the rules too: a risk set released at least
    ``min_cell`` plus the most its rounding can add, exits none (exactly) or released at
    least ``min_km_step`` plus the same (:func:`rounding_slack`).

    The counts are rounded to ``round_to`` consistently (:func:`released_counts`): ``n``
    and the cumulative events and censorings up to each kept time are rounded, a step's
    events and censorings are the differences of the rounded cumulative counts and its
    risk set ``n`` less the rounded cumulative exits before it, so that the released
    table is additive and its rounding errors cannot be pinned down from one another.
    The curve is then the actuarial (life-table) estimate of the *released* counts,
    ``S(t_j) = prod_{i <= j} (1 - d_i / (Y_i - c_i / 2))`` (Cutler & Ederer 1958; a
    hazard above 1, which rounding can give, counts as 1), its SE Greenwood's and its
    interval of ``conf_type``: everything released is a function of the rounded counts,
    so the exact counts cannot be solved back from S(t) or its SE. With ``round_to = 1``
    it is the life table of the exact counts.
    """
    check_interval(conf_type, conf_level, label or "the curve")
    t = np.asarray(table["time"], dtype=np.float64)
    slack = rounding_slack(policy) if check_flag(exact_values, "exact_values") else (0, 0)
    keep, steps = _kept_steps(t, table, n, policy, withhold, label, slack)
    y, d, c = released_counts(steps, policy)
    surv, se = life_table_of(y, d, c)
    lo, hi = bands(surv, se, conf_type, conf_level)
    frame = pl.DataFrame(
        {
            "time": t[np.asarray(keep, dtype=np.int64)],
            "survival": surv,
            "se": se,
            "ci_lower": lo,
            "ci_upper": hi,
            "n_risk": y,
            "n_event": d,
            "n_censor": c,
        },
        schema={
            "time": pl.Float64,
            "survival": pl.Float64,
            "se": pl.Float64,
            "ci_lower": pl.Float64,
            "ci_upper": pl.Float64,
            "n_risk": pl.Int64,
            "n_event": pl.Int64,
            "n_censor": pl.Int64,
        },
    )
    return frame.fill_nan(None)


def rounding_slack(policy: Policy) -> tuple[int, int]:
    """The most a released risk set and a released step's events and censorings (of
    :func:`released_counts`' additive table) can exceed the exact integer counts:
    rounding to ``round_to`` (halves up) moves an integer by ``-((round_to - 1) // 2)``
    to ``round_to // 2``; a risk set is the rounded ``n`` less two rounded cumulative
    counts, a step's exits the differences of four. ``(0, 0)`` at ``round_to = 1``."""
    up, down = policy.round_to // 2, (policy.round_to - 1) // 2
    return up + 2 * down, 2 * (up + down)


def _kept_steps(
    t: np.ndarray,
    table: Mapping[str, Any],
    n: float,
    policy: Policy,
    withhold: Withhold | None,
    label: str,
    slack: tuple[int, int] = (0, 0),
) -> tuple[list[int], list[tuple[float, float, float]]]:
    """The grid indices :func:`coarsen_km` keeps and the exact (risk set, events,
    censorings) of each kept step. The curve stops at the first step whose released risk
    set (the rounded ``n`` less the rounded cumulative exits before it) less
    ``slack[0]`` is below ``min_cell``; a step is kept when its released events and
    censorings are none (and, with a slack, its exact ones) or at least
    ``min_km_step`` plus ``slack[1]``."""
    ev = np.cumsum(np.asarray(table["n_event"], dtype=np.float64))
    ce = np.cumsum(np.asarray(table["n_censor"], dtype=np.float64))
    keep: list[int] = []
    steps: list[tuple[float, float, float]] = []
    start = (0.0, 0.0)  # exact cumulative events and censorings at the last kept time
    rounded = (0, 0)  # the same, rounded
    released_n = policy.round_count(n)
    for j in range(t.size):
        if released_n - sum(rounded) - slack[0] < policy.min_cell:
            if withhold is not None:
                withhold(
                    f"{label} from time {t[j]:g}",
                    "min_cell",
                    f"risk set below {policy.min_cell} patients (as released): the curve "
                    "stops here",
                )
            break
        now = (policy.round_count(ev[j]), policy.round_count(ce[j]))
        exits = sum(now) - sum(rounded)
        none = exits == 0 and (slack == (0, 0) or ev[j] + ce[j] == sum(start))
        if none or exits - slack[1] >= policy.min_km_step:
            at_risk = float(n) - start[0] - start[1]
            steps.append((at_risk, ev[j] - start[0], ce[j] - start[1]))
            keep.append(j)
            start, rounded = (float(ev[j]), float(ce[j])), now
        elif withhold is not None:
            withhold(
                f"{label} at time {t[j]:g}",
                "min_km_step",
                f"fewer than {policy.min_km_step} events and exits (as released) since the "
                "last reported time: merged into the next step",
            )
    return keep, steps


def released_counts(
    steps: Sequence[tuple[float, float, float]], policy: Policy
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The released (risk set, events, censorings) of consecutive steps whose exact
    counts are ``steps`` (the first risk set is the cohort's ``n``), rounded to
    ``round_to`` as an additive table: ``n`` and the cumulative events and censorings
    at each step's end are rounded (halves up), the step counts are their differences
    (never negative) and each risk set is the rounded ``n`` less the rounded exits
    before it. Each released count is then within ``round_to / 2`` (a step's events or
    censorings: ``round_to``; a risk set: ``1.5 round_to``) of the exact one, and the
    rounding errors of ``n`` and of every cumulative count are independent, so that the
    table's own identities (risk set = previous risk set - events - censorings) pin
    none of them down, as they would for counts rounded one by one."""
    if not steps:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    n = steps[0][0]
    cum_d = np.cumsum([s[1] for s in steps])
    cum_c = np.cumsum([s[2] for s in steps])
    rd = np.asarray([policy.round_count(x) for x in cum_d], dtype=np.int64)
    rc = np.asarray([policy.round_count(x) for x in cum_c], dtype=np.int64)
    d = np.diff(rd, prepend=0)
    c = np.diff(rc, prepend=0)
    y = policy.round_count(n) - np.concatenate(([0], (rd + rc)[:-1]))
    return y.astype(np.int64), d.astype(np.int64), c.astype(np.int64)


def life_table_of(y: np.ndarray, d: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The actuarial estimate and Greenwood's SE of a life table with risk sets ``y``,
    events ``d`` and censorings ``c`` per step: ``S = prod (1 - h)``, ``h = d / (y - c /
    2)`` (1 where rounded counts make it larger, or the effective risk set empty), SE
    ``S sqrt(sum d / (y' (y' - d)))``; ``nan`` where S is 0."""
    yf, df, cf = (np.asarray(a, dtype=np.float64) for a in (y, d, c))
    y_eff = yf - cf / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(df > 0, np.where(y_eff > df, df / y_eff, 1.0), 0.0)
        surv = np.cumprod(1.0 - h)
        green = np.cumsum(np.where(df > 0, df / (y_eff * (y_eff - df)), 0.0))
        se = surv * np.sqrt(green)
    return surv, np.where(surv > 0, se, np.nan)


def curve_grid_counts(curve: Any, grid: np.ndarray) -> dict[str, Any]:
    """The unweighted events and censorings of a Kaplan–Meier curve in each grid
    interval: what :func:`coarsen_km` takes."""
    return {"time": grid, **interval_counts(curve.to_frame(), grid)}


def _released_exits(curve: Any, t: float, policy: Policy, *, before: bool = False) -> int:
    """The unweighted events and censorings of a Kaplan–Meier curve at times <= t (< t
    with ``before``) as a release states them: each cumulative count rounded."""
    upto = curve.time < t if before else curve.time <= t
    d = float(np.sum(curve.n_event_unweighted[upto]))
    c = float(np.sum(curve.n_censor_unweighted[upto]))
    return policy.round_count(d) + policy.round_count(c)


def _exits_to(curve: Any, t: float) -> float:
    """Unweighted events and censorings of a Kaplan–Meier curve at times <= t."""
    upto = curve.time <= t
    return float(np.sum(curve.n_event_unweighted[upto]) + np.sum(curve.n_censor_unweighted[upto]))


def _released_at_risk(curve: Any, t: float, policy: Policy) -> int:
    """The risk set of an unweighted Kaplan–Meier curve at t as a release states it
    (:func:`released_counts`): the patients who entered by t, rounded, less the rounded
    cumulative events and censorings before t (the risk set itself at ``round_to = 1``)."""
    y = float(curve.at([t])["n_risk_unweighted"][0])
    upto = curve.time < t
    gone = float(np.sum(curve.n_event_unweighted[upto]) + np.sum(curve.n_censor_unweighted[upto]))
    return policy.round_count(y + gone) - _released_exits(curve, t, policy, before=True)


def rounded_at_least(count: float, k: int, policy: Policy) -> bool:
    """Whether ``count`` is at least ``k`` whatever its rounding, decided on the rounded
    count only: ``round_to``'s rounding (halves up) adds at most ``round_to // 2`` to an
    integer count, so the rounded count less that is at least ``k`` only if the count
    is. A policy that varies ``k`` learns the rounded count, never the exact one; with
    ``round_to = 1``, ``count >= k``."""
    return policy.round_count(count) - policy.round_to // 2 >= k


def guard_timed_rows(
    cols: dict[str, list[Any]],
    value_cols: Sequence[str],
    curves: Sequence[Any],
    policy: Policy,
    withhold: Withhold,
) -> None:
    """Withhold (set to null in ``cols``, a summary table as lists) the S(t) and RMST rows
    the patients behind ``curves`` (unweighted Kaplan–Meier curves) do not support: S(t)
    needs ``min_cell`` patients at risk at t in each; between consecutive released times
    (and from 0 to the first) the events and exits are none or at least ``min_km_step``
    in each, since two estimates a few days apart would otherwise give away the few
    patients who left between them. The rows are exact estimates, so both hold for the
    exact counts; each is decided on the counts as a release states them (the rounded
    ``n`` less the rounded cumulative events and censorings before t; differences of
    rounded cumulative exits), less the most their rounding can add
    (:func:`rounding_slack`), and on the exits' being none (the same under every
    policy), so that a plan varying ``min_cell`` or ``min_km_step`` learns nothing
    beyond the rounding. Shared by every gate handler with such rows."""

    def withhold_row(i: int, rule: str, why: str) -> None:
        t = cols["time"][i]
        label = f"S({t:g})" if cols["estimand"][i] == "survival" else f"RMST({t:g})"
        for c in value_cols:
            cols[c][i] = None
        withhold(f"{label} row of the summary", rule, why)

    slack_risk, slack_exits = rounding_slack(policy)
    timed = [i for i, e in enumerate(cols["estimand"]) if e in ("survival", "rmst")]
    for i in timed:
        t = cols["time"][i]
        risks = [_released_at_risk(c, t, policy) - slack_risk for c in curves]
        if cols["estimand"][i] == "survival" and min(risks) < policy.min_cell:
            withhold_row(i, "min_cell", f"fewer than {policy.min_cell} patients at risk at {t:g}")
    last = 0.0
    for t in sorted({cols["time"][i] for i in timed if cols["transported"][i] is not None}):
        enough = [
            _exits_to(c, t) == _exits_to(c, last)  # none, whatever the policy
            or _released_exits(c, t, policy) - _released_exits(c, last, policy) - slack_exits
            >= policy.min_km_step
            for c in curves
        ]
        if not all(enough):
            why = (
                f"fewer than {policy.min_km_step} events and exits between {last:g} and {t:g} "
                "in a cohort"
            )
            for i in timed:
                if cols["time"][i] == t and cols["transported"][i] is not None:
                    withhold_row(i, "min_km_step", why)
        else:
            last = t


def outward(v: Any, unit: float, up: bool) -> Any:
    """``v`` rounded to a multiple of ``unit``, up or down (``None`` and non-finite kept)."""
    if v is None or not math.isfinite(v):
        return v
    x = v / unit
    return unit * (math.ceil(x - 1e-9) if up else math.floor(x + 1e-9))


def restate_difference(cols: dict[str, list[Any]], i: int, ratio_digits: int | None = None) -> None:
    """Row ``i``'s difference and ratio recomputed from its released transported and
    observed values (the exact ones would give back what rounding hid); the ratio to
    ``ratio_digits`` decimals when given."""
    tr, ob = cols["transported"][i], cols["observed"][i]
    known = tr is not None and ob is not None and math.isfinite(tr) and math.isfinite(ob)
    ratio = tr / ob if known and ob > 0 else None
    cols["difference"][i] = tr - ob if known else None
    cols["ratio"][i] = (
        ratio if ratio is None or ratio_digits is None else round(ratio, ratio_digits)
    )


def round_median_row(cols: dict[str, list[Any]], i: int, step: float) -> None:
    """A median is one patient's event time: report it, and anything that would give it
    back from a value the reader knows (its difference from, or ratio to, another
    median, or the equivalence p-value with the difference's SE), only to the grid: the
    medians of every curve in ``cols`` and their limits rounded outwards to ``step``,
    their difference recomputed from the rounded medians and its limits rounded
    outwards, the ratio to 2 decimals, the SEs and the equivalence p-value withheld."""
    for base in MEDIAN_BASES:
        if base not in cols:
            continue
        cols[base][i] = outward(cols[base][i], step, up=True)
        cols[f"{base}_ci_lower"][i] = outward(cols[f"{base}_ci_lower"][i], step, up=False)
        cols[f"{base}_ci_upper"][i] = outward(cols[f"{base}_ci_upper"][i], step, up=True)
        if f"{base}_se" in cols:
            cols[f"{base}_se"][i] = None
    restate_difference(cols, i, ratio_digits=2)
    cols["difference_se"][i] = None
    for c, unit in (("difference", step), ("ratio", 0.01)):
        cols[f"{c}_ci_lower"][i] = outward(cols[f"{c}_ci_lower"][i], unit, up=False)
        cols[f"{c}_ci_upper"][i] = outward(cols[f"{c}_ci_upper"][i], unit, up=True)
    if "equivalence_p" in cols:
        cols["equivalence_p"][i] = None


def guard_summary(
    cols: dict[str, list[Any]],
    curves: Sequence[Any],
    policy: Policy,
    withhold: Withhold,
    step: float,
) -> None:
    """A transport summary (as lists, changed in place) made safe to release: the S(t)
    and RMST rows the patients behind ``curves`` do not support withheld
    (:func:`guard_timed_rows`), the median rows rounded to the grid
    (:func:`round_median_row`). The one rule for every kind of transport result."""
    values = [c for c in cols if c not in SUMMARY_KEYS]
    guard_timed_rows(cols, values, curves, policy, withhold)
    for i, est in enumerate(cols["estimand"]):
        if est == "median":
            round_median_row(cols, i, step)
            withhold(
                "median rows of the summary",
                "time_grid",
                f"medians, their limits and their differences are rounded outwards to the "
                f"grid step {step:g}, and ratios of medians to 2 decimals; their SEs and "
                "equivalence p-value, which would give the exact difference back, are "
                "withheld",
            )
