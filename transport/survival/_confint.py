"""Pointwise confidence bands for S(t) and quantiles read off a step curve.

Both follow R's ``survival`` package (``survfit_confint`` and ``quantile.survfit``) so the
numbers agree with it; the one deliberate difference is stated in :func:`bands`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import norm

__all__ = ["CONF_TYPES", "bands", "find_quantile"]

ConfType = Literal["log-log", "log", "plain"]
CONF_TYPES: tuple[str, ...] = ("log-log", "log", "plain")

QUANTILE_TOLERANCE = float(np.sqrt(np.finfo(np.float64).eps))


def bands(
    surv: np.ndarray, se: np.ndarray, conf_type: ConfType, conf_level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper pointwise confidence limits of S(t).

    ``se`` is the standard error of S itself. With ``z`` the normal quantile:

    * ``"plain"``: ``S -/+ z se``, clipped to [0, 1];
    * ``"log"``: ``S exp(-/+ z se / S)``, upper capped at 1 (R's default);
    * ``"log-log"``: ``S ** exp(+/- z se / (S log S))`` (Kalbfleisch & Prentice).

    Where S = 1 and se = 0 (before the first event) every type gives [1, 1]; R leaves
    the log-log limits missing there. Where S = 0 the log and log-log limits are ``nan``,
    and so are the plain ones when the standard error is undefined there (Greenwood),
    as in R.
    """
    z = float(norm.ppf(0.5 + conf_level / 2.0))
    lower = np.full(surv.shape, np.nan)
    upper = np.full(surv.shape, np.nan)
    if conf_type == "plain":
        lower = np.maximum(surv - z * se, 0.0)
        upper = np.minimum(surv + z * se, 1.0)
        return lower, upper
    pos = surv > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.where(pos & (se > 0), se / np.where(pos, surv, 1.0), 0.0)
        if conf_type == "log":
            lower[pos] = surv[pos] * np.exp(-z * se_log[pos])
            upper[pos] = np.minimum(surv[pos] * np.exp(z * se_log[pos]), 1.0)
        elif conf_type == "log-log":
            mid = pos & (surv < 1)
            log_s = np.log(surv[mid])
            shift = z * se_log[mid] / log_s
            loglog = np.log(-log_s)
            lower[mid] = np.exp(-np.exp(loglog - shift))
            upper[mid] = np.exp(-np.exp(loglog + shift))
        else:  # pragma: no cover - validated by the caller
            raise ValueError(conf_type)
    one = (surv >= 1.0) & (se == 0)
    lower[one] = 1.0
    upper[one] = 1.0
    return lower, upper


def find_quantile(
    time: np.ndarray, surv: np.ndarray, p: float, tol: float = QUANTILE_TOLERANCE
) -> float:
    """Time at which the step curve ``surv`` (at ``time``) first has CDF ``1 - S >= p``.

    The rule of R's ``quantile.survfit``: the first time at which ``1 - S >= p`` (within
    ``tol``); when ``1 - S`` equals ``p`` from ``t_k`` on, the midpoint of ``t_k`` and the
    first time it exceeds ``p``, or of ``t_k`` and the last time when it never does (and
    ends at ``p``). ``nan`` where the curve never reaches ``p``. Missing values (``nan``)
    of a band are skipped.

    Applied to a confidence band, which need not be monotone (log and log-log bands of a
    weighted or left-truncated curve often are not), this is the first crossing in time
    (Brookmeyer & Crowley 1982). R's ``findq`` agrees wherever the band is monotone; where
    it is not, R's ``approx()`` sorts the band values first and can return a later time.
    """
    x = np.concatenate(([0.0], time))
    y = np.concatenate(([0.0], 1.0 - surv))
    if p == 0:
        return float(x[0])
    with np.errstate(invalid="ignore"):
        reach = np.flatnonzero(y + tol >= p)  # nan compares False: skipped
        beyond = np.flatnonzero(y - tol >= p)
    if reach.size == 0:
        return float("nan")
    i1 = int(reach[0])
    if beyond.size:
        return float(x[i1] / 2.0 + x[int(beyond[0])] / 2.0)  # no overflow near the largest float
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol:
        return float((x[i1] + x[-1]) / 2.0)
    return float("nan")
