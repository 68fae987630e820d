"""The rules for weighted (transported) results: ``min_ess``, the effective sample size
behind a weighted estimate, and ``curve_precision``, the rounding of a transported curve
that is not a function of the released counts.

``min_ess``
    A weighted estimate is one patient's outcome when one patient carries nearly all the
    weight (entropy balancing to moments at the edge of the source's support gives an
    effective sample size near 1, and the transported curve is then that patient's event
    time). The effective sample size of a set of weights is the smaller of Kish's
    ``(sum w)^2 / sum w^2`` and ``sum w / max w`` (the Renyi order-infinity count, never
    above Kish's: :func:`effective_size`): at least ``m`` of it means no patient carries
    more than ``1 / m`` of the weight, where Kish's count alone lets one patient carry
    up to ``1 / sqrt(m)`` of it (31% at ``m = 10``: a crafted target summary gives one
    source patient 15% of the weight at a Kish count of 44, and the curve falls by 0.2 in
    that patient's event month). The whole weighted cohort's effective sample size must
    be at least :attr:`Policy.ess_floor` (``min_ess``, by default ``min_cell``), or the
    release is refused; so must that of the weighted risk set at the start of each
    released step of a reweighted curve (or before a summary's time), or the curve
    stops there.
``curve_precision``
    A transported curve (reweighted or model-based) is not a function of the released
    unweighted counts, so it is released rounded: S(t) to a multiple of the step's
    precision, the smallest of 0.001, 0.002, 0.005, 0.01, ... (1, 2 or 5 times a power of
    ten) not below ``round_to / n_risk``, with ``n_risk`` the step's released risk set,
    nor (a reweighted curve) below the largest share of the weight one patient carries
    in the weighted risk sets up to the step's start (``1 /`` their effective sample
    size); its SE to a tenth of that; its limits computed from the two. One event more
    or less in a step of ``n_risk`` patients moves an unweighted S by at most
    ``1 / n_risk``, a ``round_to``-th of the precision, so some ``round_to`` integer
    event counts are consistent with each released value, as with the rounded counts
    themselves; one weighted patient's event moves S by at most its share of the risk
    set's weight, at most one unit of the precision, which the rounding of the two
    values around it (half a unit each) already blurs. With ``round_to = 1`` (counts
    released exact) the curve is released exact.

Known limits: a weighted risk set's effective sample size says how many patients carry
the weight, not how different their outcomes are. A floor of ``min_ess`` keeps any one
patient's share of a weighted risk set, and so of a step's fall in S, to at most
``1 / min_ess``; a patient near that share whose event falls in a month of few others'
still shows as a fall of about one unit of the precision there (and in a summary's
exact S(t) between two released times). The precision says, to within its 1-2-5 step,
the largest share of the weight in the risk sets up to each step (the exact largest
weight is never released).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError
from transport.policy.curves import SUMMARY_KEYS
from transport.policy.settings import Policy, Withhold

__all__ = [
    "PRECISION_FLOOR",
    "curve_precision",
    "effective_size",
    "guard_weighted_rows",
    "refuse_small_ess",
    "risk_set_ess",
    "round_to_precision",
]

#: The finest precision a transported S(t) is released to when counts are rounded.
PRECISION_FLOOR = 0.001


def effective_size(weights: np.ndarray) -> float:
    """The effective sample size the ``min_ess`` rule asks of a set of weights: the
    smaller of Kish's ``(sum w)^2 / sum w^2`` and ``sum w / max w`` (so that no one
    weight is more than ``1 / m`` of the total at an effective size of ``m``); 0 when
    they are empty or all zero."""
    w = np.asarray(weights, dtype=np.float64)
    tot = float(w.sum()) if w.size else 0.0
    if not tot > 0:
        return 0.0
    return min(tot * tot / float(np.sum(w * w)), tot / float(w.max()))


def risk_set_ess(time: np.ndarray, weights: np.ndarray, at: np.ndarray) -> np.ndarray:
    """At each of ``at``, the smallest effective sample size (:func:`effective_size`:
    the smaller of Kish's count and total over largest weight) of the weighted risk
    sets ``{i: time_i > s}`` over every ``s`` in ``[0, at]`` (those of the distinct exit
    times, and 0): the fewest effective patients behind any step of the curve up to
    there, and so ``1 /`` it the largest share of a risk set's weight one patient
    carries up to there. An empty risk set has 0."""
    t = np.asarray(time, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    ts, ws = t[order], w[order]
    s = np.concatenate(([0.0], np.unique(ts)))
    first_after = np.searchsorted(ts, s, side="right")  # rows with time > s start here
    sw = np.concatenate((np.cumsum(ws[::-1])[::-1], [0.0]))
    sw2 = np.concatenate((np.cumsum((ws * ws)[::-1])[::-1], [0.0]))
    top = np.concatenate((np.maximum.accumulate(ws[::-1])[::-1], [0.0]))
    tot, sq, mx = sw[first_after], sw2[first_after], top[first_after]
    with np.errstate(divide="ignore", invalid="ignore"):
        kish = np.where(sq > 0, tot * tot / np.where(sq > 0, sq, 1.0), 0.0)
        renyi = np.where(mx > 0, tot / np.where(mx > 0, mx, 1.0), 0.0)
    running = np.minimum.accumulate(np.minimum(kish, renyi))
    idx = np.searchsorted(s, np.asarray(at, dtype=np.float64), side="right") - 1
    return np.where(idx >= 0, running[np.maximum(idx, 0)], float(running[0]))


def refuse_small_ess(weights: np.ndarray, policy: Policy, where: str) -> None:
    """Refuse (``min_ess``) a weighted release whose whole weighted cohort has an
    effective sample size (:func:`effective_size`) below :attr:`Policy.ess_floor`. The
    refusal states Kish's count (which the gate releases) and the bound, never the
    largest weight's share."""
    floor = policy.ess_floor
    w = np.asarray(weights, dtype=np.float64)
    if effective_size(w) >= floor:
        return
    tot, sq = float(w.sum()), float(np.sum(w * w))
    kish = tot * tot / sq if sq > 0 else 0.0
    raise DisclosureError(
        f"the weights of {where} have an effective sample size of less than {floor} "
        f"(rule: min_ess): Kish's count is {kish:.1f}, or one patient carries more than "
        f"1/{floor} of the weight; a weighted estimate on so few effective patients is "
        "their own outcome; weight on fewer or less extreme moments"
    )


def guard_weighted_rows(
    cols: dict[str, list[Any]],
    time: np.ndarray,
    weights: np.ndarray,
    policy: Policy,
    withhold: Withhold,
) -> None:
    """Withhold (set to null in ``cols``, a transport summary as lists) the S(t), RMST
    and median rows of a reweighted curve (rows exiting at ``time`` with ``weights``)
    whose weighted risk sets up to their time (the transported median's, for a median)
    have an effective sample size below :attr:`Policy.ess_floor` (rule ``min_ess``).
    Call it before the medians are rounded (:func:`~transport.policy.guard_summary`)."""
    values = [c for c in cols if c not in SUMMARY_KEYS]
    floor = policy.ess_floor
    for i, est in enumerate(cols["estimand"]):
        v = cols["transported"][i]
        if est not in ("survival", "rmst", "median") or v is None or not math.isfinite(v):
            continue
        t = float(v if est == "median" else cols["time"][i])
        if risk_set_ess(time, weights, np.asarray([t]))[0] >= floor:
            continue
        label = "median" if est == "median" else f"{'S' if est == 'survival' else 'RMST'}"
        label += "" if est == "median" else f"({cols['time'][i]:g})"
        for c in values:
            cols[c][i] = None
        withhold(
            f"{label} row of the summary",
            "min_ess",
            f"the transported curve's weighted risk set has an effective sample size below "
            f"{floor} by {'its median' if est == 'median' else 'that time'}",
        )


def curve_precision(
    n_risk: np.ndarray, policy: Policy, ess: np.ndarray | None = None
) -> np.ndarray | None:
    """The precision each step of a transported curve is released to (``None`` when
    ``round_to`` is 1): the smallest of the 1-2-5 series from :data:`PRECISION_FLOOR`
    up that is at least ``round_to / n_risk``, with ``n_risk`` the step's released risk
    set (so that a reader can check it), and at least ``1 / ess``, with ``ess`` the
    effective sample size of the weighted risk sets up to the step's start
    (:func:`risk_set_ess`, a reweighted curve's: one patient's largest share of their
    weight), at most 1."""
    if policy.round_to == 1:
        return None
    m = np.asarray(n_risk, dtype=np.float64)
    e = np.full(m.size, np.inf) if ess is None else np.asarray(ess, dtype=np.float64)
    out = np.empty(m.size)
    for j, (mj, ej) in enumerate(zip(m, e, strict=True)):
        target = max(PRECISION_FLOOR, policy.round_to / mj, 1.0 / ej) if mj > 0 < ej else 1.0
        out[j] = _nice_at_least(min(target, 1.0))
    return out


def _nice_at_least(x: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten that is at least ``x`` (> 0)."""
    e = math.floor(math.log10(x))
    for k in (e, e + 1):
        for m in (1, 2, 5):
            v = float(f"{m}e{k}")
            if v >= x * (1 - 1e-12):
                return v
    return float(f"1e{e + 2}")  # pragma: no cover - unreachable


def round_to_precision(values: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``values`` rounded to multiples of ``precision`` (element-wise, ``nan`` kept), in
    the shortest decimal that is that multiple."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    for j, (x, q) in enumerate(zip(v, precision, strict=True)):
        if math.isfinite(x):
            digits = max(0, -math.floor(math.log10(q) + 1e-9))
            out[j] = round(round(x / q) * q, digits)
    return out
