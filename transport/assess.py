"""Transportability assessment: differences, ratios, equivalence, curve distance and the
decomposition of the source-target gap.

For each estimand (S(t), median, RMST(tau)), with ``transported`` the source's estimate
in the target's patient mix and ``observed`` the target's own estimate:

* difference ``transported - observed`` and ratio ``transported / observed``;
* equivalence by two one-sided tests (Schuirmann 1987) against a margin ``delta`` fixed
  in advance: equivalent when the ``1 - 2 alpha`` interval of the difference lies inside
  ``(-delta, delta)``; not equivalent when it lies wholly outside ``[-delta, delta]``;
  inconclusive otherwise;
* the mean absolute distance ``(1 / (b - a)) int_a^b |S_tr(t) - S_obs(t)| dt`` over a
  window;
* the raw gap ``naive - observed`` (source's own estimate minus the target's) split into
  the part explained by the measured covariates, ``naive - transported`` (patient mix),
  and the rest, ``transported - observed`` (residual: unmeasured modifiers, setting,
  model error).

Reference: Schuirmann DJ (1987). A comparison of the two one-sided tests procedure and the
power approach for assessing the equivalence of average bioavailability. J Pharmacokinet
Biopharm 15:657-680.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from transport.inference import IntervalKind, interval

__all__ = ["boot_ratio", "curve_distance", "tost", "verdict", "wald", "wald_log_ratio"]

Interval = tuple[np.ndarray, np.ndarray, np.ndarray]


def curve_distance(
    t1: np.ndarray, s1: np.ndarray, t2: np.ndarray, s2: np.ndarray, a: float, b: float
) -> float:
    """``(1 / (b - a)) int_a^b |S1(t) - S2(t)| dt`` for two right-continuous step curves
    (S = 1 before their first time, the last value carried forward)."""
    if not b > a:
        raise ValueError(f"the window must have b > a. Got ({a!r}, {b!r}).")
    knots = np.union1d(np.concatenate((t1, t2)), [a, b])
    knots = knots[(knots >= a) & (knots <= b)]
    left = knots[:-1]

    def at(t: np.ndarray, s: np.ndarray) -> np.ndarray:
        k = np.searchsorted(t, left, side="right") - 1
        return np.where(k >= 0, s[np.maximum(k, 0)], 1.0)

    gap = np.abs(at(t1, s1) - at(t2, s2))
    return float(np.dot(gap, np.diff(knots)) / (b - a))


def tost(
    diff: np.ndarray, se: np.ndarray, lower: np.ndarray, upper: np.ndarray, margin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """p-values of the two one-sided tests (normal approximation with ``se``; ``nan``
    where no SE) and verdicts from the ``1 - 2 alpha`` interval ``[lower, upper]``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p_low = norm.sf((diff + margin) / se)  # H0: diff <= -margin
        p_high = norm.cdf((diff - margin) / se)  # H0: diff >= margin
    p = np.maximum(p_low, p_high)
    return p, verdict(lower, upper, margin)


def verdict(lower: np.ndarray, upper: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """``"equivalent"`` when ``-margin < lower`` and ``upper < margin``; ``"not
    equivalent"`` when the interval lies wholly beyond a margin; ``"inconclusive"``
    otherwise, including a missing limit or margin."""
    out = np.full(np.shape(lower), "inconclusive", dtype=object)
    with np.errstate(invalid="ignore"):
        inside = (lower > -margin) & (upper < margin)
        outside = (lower > margin) | (upper < -margin)
    out[inside] = "equivalent"
    out[outside] = "not equivalent"
    return out


def wald(diff: np.ndarray, se1: np.ndarray, se2: np.ndarray, level: float) -> Interval:
    """SE and ``level`` Wald limits of a difference of two independent estimates."""
    z = float(norm.ppf(0.5 + level / 2.0))
    se = np.sqrt(se1**2 + se2**2)
    return se, diff - z * se, diff + z * se


def wald_log_ratio(
    a: np.ndarray, b: np.ndarray, se_a: np.ndarray, se_b: np.ndarray, level: float
) -> Interval:
    """SE of ``log(a / b)`` (delta method, independent estimates) and the ``level``
    limits of ``a / b`` built on the log scale."""
    z = float(norm.ppf(0.5 + level / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.sqrt((se_a / a) ** 2 + (se_b / b) ** 2)
        r = a / b
        return se_log, r * np.exp(-z * se_log), r * np.exp(z * se_log)


def boot_ratio(
    r_t: np.ndarray,
    r_o: np.ndarray,
    ratio: np.ndarray,
    kind: IntervalKind,
    level: float,
    ok: np.ndarray | None = None,
) -> Interval:
    """Bootstrap interval of transported / observed. Percentile limits are the replicate
    ratios' quantiles; the normal interval is built on the log scale, where the ratio's
    sampling distribution is closer to symmetric, and exponentiated (its SE is that of
    the log ratio). A replicate ratio of 0 or below leaves the normal limits ``nan``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = r_t / r_o
        if kind == "percentile":
            return interval(reps, ratio, kind, level, nan_as_inf=False, ok=ok)
        se_log, lo, hi = interval(np.log(reps), np.log(ratio), kind, level, nan_as_inf=False, ok=ok)
    return se_log, np.exp(lo), np.exp(hi)
