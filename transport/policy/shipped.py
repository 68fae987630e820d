"""The rules for a shipped model in the target's environment (``model_bounds``) and for
what its g-formula releases from there (``min_contributors``, ``round_to``).

A shipped model comes from another environment, and anyone can edit one and recompute
its manifest's hashes. Applied to the target's rows, its transported curve
``S(t) = (1 / n) sum_i p_i(t)``, with ``p_i(t) = S(t | x_i)`` each target patient's
predicted survival, is a target-side aggregate, and a crafted model makes it a count:
a coefficient of 50 on age centred at 89.75 and a baseline such that ``p_i`` is 0 above a
threshold and 1 below it turns S(t) into the share of target patients older than the
threshold, and a baseline rising over the grid sweeps the threshold down from the oldest
patient's age. So the target checks what it applies and its own gate rules on the curve:

``model_bounds``
    The linear predictor of the shipped model over the target's rows spreads at most
    :attr:`Policy.max_log_hazard_ratio` (``max(lp) - min(lp)``; for a piecewise
    exponential model with time-varying effects, in every interval), checked when the
    model is applied and again by the gate (:func:`check_log_hazard_spread`). The
    refusal names the bound, never the spread (which, for one covariate, is its range).
    The model's own numbers (finite coefficients, a symmetric positive semidefinite
    covariance, a finite, non-negative, non-decreasing baseline) are checked where it is
    read (:class:`~transport.ShippedModel`, a :class:`~transport.DataError` naming the
    field).
``min_contributors``
    A transported S(t) (or RMST, or median) is released only where the effective number
    of target patients behind it is at least ``min_cell``
    (:func:`effective_contributors`): the smallest of three Kish-type counts
    ``(sum w)^2 / sum w^2``, of ``w = p_i`` (the survivors), of ``w = 1 - p_i`` (the
    deaths) and of ``w = (p_i - mean p)^2`` (the spread around the mean). Each equals
    the number of patients when they contribute equally and about the number of
    dominant contributors when a few carry the sum; the third catches a model under the
    bound that gives every patient but a few one known value (the mean then gives the
    few away; ``I(age > 90.5)`` with coefficient 5 does this, the first two counts
    being large). A count of patients in a group of ``m``
    is ``m``, as the cell rule asks. Kish's count rather than a count of rows with
    ``p_i`` in ``(eps, 1 - eps)``: it needs no ``eps`` that a crafted baseline could sit
    just inside, and it is the effective sample size a weighted result is judged by.
    Where all ``p_i`` are equal the count is 0 (withheld): the value is the source's
    baseline, and were it released, a model isolating the patients above a threshold
    would tell a count of 0 (released) from one of 1 (withheld) query by query.
    The median is read where S crosses one half, between two knots (each patient's
    cumulative hazard is linear between them): its count is the smaller of the two
    knots' (a median not reached, the last knot's), and its limits need the same of
    every bootstrap replicate's median. Without it, a baseline sweeping the crossing
    across the grid one patient at a time made the median's grid step the number of
    target patients above an age.
``round_to`` (transported values)
    ``sum_i p_i`` is an expected count of survivors: it is released as counts are,
    rounded to ``round_to``, over the released (rounded) ``n``; S(t) and its bootstrap
    limits (outwards) are multiples of ``round_to / round(n)``
    (:func:`transported_precision`), RMST(tau) of ``tau`` times that, the SEs (of the
    bootstrap, whose own Monte Carlo error is several percent) have two significant
    figures; the difference from the observed value and the ratio are recomputed from
    the released numbers, and the equivalence p-value (a function of the exact
    difference and SE) is withheld, as for medians; the verdict is kept.
``km_grid``, ``min_km_step``, ``min_cell`` (the transported curve)
    The transported curve is released only at the target's own released steps: the grid
    times its Kaplan–Meier curve keeps under :func:`~transport.policy.coarsen_km`
    (``min_cell`` at risk, none or ``min_km_step`` exits since the last kept time).

Known limits: rounding is not noise. A model under the bound can still give a few
patients a distinct value while many others vary (so that every count above passes),
and each released value then measures a known linear combination of the groups' sizes to
``round_to``; with many grid times the integer sizes may be solved back, as for rounded
counts beside exact curves. Each applied model is one query of the target's rows: an
environment should apply a partner's model once per analysis and keep a log of those it
applied. A refusal under ``model_bounds`` is itself one bit (whether the spread over the
target exceeds the bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError
from transport.policy.curves import outward, restate_difference
from transport.policy.settings import Policy, Withhold

__all__ = [
    "check_log_hazard_spread",
    "effective_contributors",
    "guard_transported",
    "transported_curve",
    "transported_precision",
]


#: Deviations from the mean below this are rounding, not a difference between patients.
_SAME = 1e-12


def _kish(w: np.ndarray, empty: float) -> np.ndarray:
    """The effective count of ``w`` per column: the smaller of Kish's ``(sum w)^2 /
    sum w^2`` and ``sum w / max w`` (``empty`` where every ``w`` is 0). Kish's alone
    lets one row carry up to ``1 / sqrt(m)`` of a total at a count of ``m``; with the
    second, no row carries more than ``1 / m``, as for weighted results (``min_ess``)."""
    s = w.sum(axis=0)
    s2 = (w * w).sum(axis=0)
    top = w.max(axis=0) if w.shape[0] else np.zeros(w.shape[1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        kish = np.where(s2 > 0, s * s / s2, empty)
        share = np.where(top > 0, s / top, empty)
        return np.asarray(np.minimum(kish, share), dtype=np.float64)


def effective_contributors(p: np.ndarray) -> np.ndarray:
    """The effective number of rows behind the mean of each column of ``p`` (rows x
    columns, values in [0, 1]: each patient's predicted survival at a time): the
    smallest of the effective counts (:func:`_kish`: Kish's, and no row over ``1 / m``
    of the total) of ``p``, ``1 - p`` and ``(p - mean p)^2``
    (``min_contributors``; see the module docstring). A column whose values are all
    equal has none: it is the source's baseline, and releasing it only where some
    patients differ would tell that none does (a count of 0 beside one of 1)."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    if p.ndim == 1:
        p = p[:, None]
    d = p - p.mean(axis=0)
    d = np.where(np.abs(d) > _SAME, d, 0.0)
    counts = np.minimum(_kish(p, np.inf), _kish(1.0 - p, np.inf))
    return np.minimum(counts, _kish(d * d, 0.0))


def check_log_hazard_spread(spread: float, policy: Policy, where: str) -> None:
    """Refuse (``model_bounds``) a shipped model whose linear predictor spreads more
    than ``max_log_hazard_ratio`` over the rows of ``where``; the message names the
    bound, not the spread."""
    bound = policy.max_log_hazard_ratio
    if not (math.isfinite(spread) and spread <= bound):
        raise DisclosureError(
            f"the shipped model's linear predictor spreads wider than {bound:g} (a hazard "
            f"ratio of e^{bound:g}) between the rows of {where} (rule: "
            f"model_bounds; policy {policy.name!r}, max_log_hazard_ratio): a model this "
            "extreme makes the transported curve count the target's patients beyond a "
            "threshold; it is not applied"
        )


def transported_precision(n: float, policy: Policy) -> float:
    """The precision of a released transported S(t): ``round_to`` over the released
    number of target patients, so that ``n`` times S(t), the expected survivors, is a
    multiple of ``round_to`` as released counts are."""
    return policy.round_to / max(policy.round_count(n), policy.round_to)


def _nearest(v: Any, unit: float) -> Any:
    if v is None or not math.isfinite(v):
        return v
    return unit * round(v / unit)


def _figures(v: Any, digits: int = 2) -> Any:
    """``v`` to ``digits`` significant figures (an SE: a Monte Carlo estimate whose own
    error is several percent)."""
    if v is None or not math.isfinite(v) or v == 0:
        return v
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


#: The columns of a summary row computed from the transported curve.
_TRANSPORTED = (
    "transported",
    "transported_se",
    "transported_ci_lower",
    "transported_ci_upper",
    "difference",
    "difference_se",
    "difference_ci_lower",
    "difference_ci_upper",
    "ratio",
    "ratio_ci_lower",
    "ratio_ci_upper",
    "equivalence_p",
    "verdict",
)


def _round_row(cols: dict[str, list[Any]], i: int, unit: float, rel: float) -> None:
    """Row ``i``'s transported value on a multiple of ``unit``, its limits and those of
    the difference and ratio outwards, the SEs to two significant figures, the
    difference and ratio recomputed from what is released, the equivalence p-value
    withheld (the verdict, from the interval, is kept)."""
    cols["transported"][i] = _nearest(cols["transported"][i], unit)
    cols["transported_se"][i] = _figures(cols["transported_se"][i])
    for c, u in (("transported", unit), ("difference", unit), ("ratio", rel)):
        cols[f"{c}_ci_lower"][i] = outward(cols[f"{c}_ci_lower"][i], u, up=False)
        cols[f"{c}_ci_upper"][i] = outward(cols[f"{c}_ci_upper"][i], u, up=True)
    restate_difference(cols, i)
    cols["difference_se"][i] = _figures(cols["difference_se"][i])
    if "equivalence_p" in cols:  # a function of the exact difference and its SE
        cols["equivalence_p"][i] = None


def guard_transported(
    cols: dict[str, list[Any]],
    contributors: Sequence[float],
    precision: float,
    policy: Policy,
    withhold: Withhold,
) -> None:
    """The S(t), median and RMST rows of a shipped result's summary (as lists, changed
    in place; after :func:`~transport.policy.guard_summary`): the transported numbers
    (the value, its limits, the difference, the ratio, the verdict) withheld where
    ``contributors`` (one per row: :func:`effective_contributors` at the row's time; of
    each patient's RMST over tau for RMST; at the two knots the median is read between,
    for the median and each replicate's) is below ``min_cell`` (``min_contributors``);
    else S(t) and RMST rounded to ``precision`` (``tau`` times it for RMST;
    ``round_to``), the median being on the grid already (``time_grid``). A median not
    reached is a value too (S at the last knot is above one half), withheld likewise."""
    rounded = False
    for i, est in enumerate(cols["estimand"]):
        if est not in ("survival", "rmst", "median"):
            continue
        t = cols["time"][i]
        if est != "median" and cols["transported"][i] is None:
            continue
        label = (
            "median" if est == "median" else f"S({t:g})" if est == "survival" else f"RMST({t:g})"
        )
        if not contributors[i] >= policy.min_cell:
            for c in _TRANSPORTED:
                if c in cols:
                    cols[c][i] = None
            withhold(
                f"transported {label} row of the summary",
                "min_contributors",
                f"fewer than {policy.min_cell} effective target patients behind it (Kish "
                "counts of the predicted survivors, deaths and spread)",
            )
            continue
        if est != "median":  # a median is on the grid already (time_grid)
            _round_row(cols, i, precision * (t if est == "rmst" else 1.0), precision)
            rounded = True
    if rounded:
        withhold(
            "transported S(t) and RMST rows of the summary",
            "round_to",
            f"the expected target survivors rounded to {policy.round_to}: values and "
            f"limits (outwards) on multiples of {precision:.6g} (times tau for RMST), SEs "
            "to 2 significant figures; differences and ratios recomputed from them, "
            "equivalence p-values withheld",
        )


def transported_curve(
    time: np.ndarray,
    survival: np.ndarray,
    contributors: np.ndarray,
    kept: np.ndarray,
    precision: float,
    policy: Policy,
    withhold: Withhold,
    label: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The transported curve as it may leave the target: at the times of ``time`` that
    are released steps ``kept`` of the target's own curve (``km_grid``,
    ``min_km_step``, ``min_cell``), where at least ``min_cell`` effective patients are
    behind it (``min_contributors``), rounded to ``precision`` (``round_to``)."""
    time = np.asarray(time, dtype=np.float64)
    on_steps = np.isin(np.round(time, 6), np.round(np.asarray(kept, dtype=np.float64), 6))
    enough = np.asarray(contributors, dtype=np.float64) >= policy.min_cell
    if np.any(~on_steps):
        withhold(
            f"{label} at {int(np.sum(~on_steps))} grid time(s)",
            "min_km_step",
            "not a released step of the target's own curve (its risk set below min_cell, "
            "or fewer than min_km_step exits since the last released time)",
        )
    if np.any(on_steps & ~enough):
        withhold(
            f"{label} at {int(np.sum(on_steps & ~enough))} grid time(s)",
            "min_contributors",
            f"fewer than {policy.min_cell} effective target patients behind the value",
        )
    keep = on_steps & enough
    surv = precision * np.round(np.asarray(survival, dtype=np.float64)[keep] / precision)
    if keep.any():
        withhold(
            label,
            "round_to",
            f"the expected target survivors rounded to {policy.round_to}: S(t) on "
            f"multiples of {precision:.6g}",
        )
    return time[keep], surv
