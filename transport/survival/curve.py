"""``kaplan_meier`` and the ``SurvivalCurve`` result.

References
----------
Kaplan EL, Meier P (1958). Nonparametric estimation from incomplete observations.
    JASA 53:457-481.
Greenwood M (1926). The natural duration of cancer. Reports on Public Health and
    Medical Subjects 33:1-26.
Therneau TM (2024). The survival package, vignette "Further survival analysis": the
    robust (infinitesimal jackknife) variance of a weighted Kaplan–Meier curve.
Brookmeyer R, Crowley J (1982). A confidence interval for the median survival time.
    Biometrics 38:29-41.
Royston P, Parmar MKB (2013). Restricted mean survival time: an alternative to the
    hazard ratio. BMC Med Res Methodol 13:152.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from scipy.stats import norm

from transport._validate import check_tau, real, validate_weights
from transport.cohort import Cohort
from transport.estimate import Estimate
from transport.exceptions import DataError, ExtrapolationWarning
from transport.survival._confint import CONF_TYPES, ConfType, bands, find_quantile
from transport.survival._kernel import (
    SNAP_TOLERANCE,
    KMArrays,
    kaplan_meier_arrays,
    rmst_arrays,
    unweighted_counts,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["SurvivalCurve", "kaplan_meier"]

WeightType = Literal["sampling", "frequency"]

_VARIANCE_LABEL = {
    "greenwood": "greenwood",
    "frequency": "greenwood (frequency weights)",
    "ij": "infinitesimal jackknife",
}


def kaplan_meier(
    cohort: Cohort,
    weights: Any = None,
    conf_type: ConfType = "log-log",
    *,
    conf_level: float = 0.95,
    weight_type: WeightType = "sampling",
    timefix: bool = True,
) -> SurvivalCurve:
    """Kaplan–Meier estimate of the survival function S(t) = P(T > t), optionally weighted.

    Estimand: the survival function of the population the (weighted) cohort represents,
    ``S(t) = prod_{t_k <= t} (1 - d_k / Y_k)`` over distinct event times, with weighted
    events ``d_k`` and weighted risk sets ``Y_k`` (rows with ``entry < t_k <= time``).
    At a tied time, events come before censorings. Times closer than R's ``aeqSurv``
    tolerance are treated as equal.

    Parameters
    ----------
    cohort
        The :class:`~transport.Cohort`.
    weights
        ``None``, or one non-negative finite weight per row (array-like, or any object
        with a ``values`` attribute such as :class:`Weights`), in cohort row order. A row
        of weight 0 is treated exactly as if it were absent (a bootstrap resample, say):
        its time does not appear in the table. R's ``survfit`` keeps such times, which can
        move a median's midpoint or the risk set reported at a time.
    conf_type
        Pointwise interval: ``"log-log"`` (default), ``"log"`` (R's default) or
        ``"plain"``.
    conf_level
        Nominal coverage of intervals.
    weight_type
        ``"sampling"`` (default): the standard error is the infinitesimal-jackknife
        (robust) one of R's ``survfit(..., weights=, robust=TRUE)``, invariant to the
        scale of the weights. ``"frequency"``: weights are integer counts of identical
        rows; Greenwood's formula on the weighted counts reproduces the analysis of the
        replicated rows exactly. Without weights the standard error is Greenwood's.
    timefix
        Treat times closer than ``sqrt(machine eps)`` (absolutely, or relative to the mean
        time) as tied, as R's ``survfit(timefix=TRUE)`` does (default). ``False`` keeps
        every distinct float time.

    Returns
    -------
    SurvivalCurve

    Raises
    ------
    DataError
        Weights of the wrong length, negative, missing, infinite or all zero; no events.

    Examples
    --------
    >>> import polars as pl
    >>> import transport as tp
    >>> df = pl.DataFrame({"t": [2.0, 3.0, 3.0, 5.0, 8.0], "d": [1, 1, 0, 1, 0]})
    >>> km = tp.kaplan_meier(tp.Cohort(df, time="t", event="d"))
    >>> km.survival_at([2.5, 4.0, 9.0]).round(4).tolist()
    [0.8, 0.6, 0.3]
    """
    if not isinstance(cohort, Cohort):
        raise TypeError(
            "The 'cohort' parameter of kaplan_meier must be a transport.Cohort. "
            f"Got {type(cohort).__name__} instead."
        )
    if conf_type not in CONF_TYPES:
        raise ValueError(
            f"The 'conf_type' parameter of kaplan_meier must be one of {list(CONF_TYPES)}. "
            f"Got {conf_type!r} instead."
        )
    _check_conf_level(conf_level, "kaplan_meier")
    if weight_type not in ("sampling", "frequency"):
        raise ValueError(
            "The 'weight_type' parameter of kaplan_meier must be 'sampling' or 'frequency'. "
            f"Got {weight_type!r} instead."
        )
    if not isinstance(timefix, bool | np.bool_):
        raise ValueError(
            f"The 'timefix' parameter of kaplan_meier must be True or False. Got {timefix!r}."
        )
    w = None if weights is None else validate_weights(weights, cohort.n, weight_type)
    ev = cohort.event_values
    if w is None:
        if not ev.any():
            raise DataError(
                f"event column {cohort.event!r} has no events in {cohort.n} rows "
                "(rule: at least one event to estimate a survival curve)"
            )
        key = "greenwood"
    else:
        if not np.any(ev * (w > 0)):
            raise DataError(
                f"event column {cohort.event!r} has no events among the "
                f"{int(np.sum(w > 0))} rows with positive weight (rule: at least one event "
                "to estimate a survival curve)"
            )
        key = "ij" if weight_type == "sampling" else "frequency"
    try:
        fit = kaplan_meier_arrays(
            cohort.time_values,
            ev,
            w,
            cohort.entry_values,
            variance="ij" if key == "ij" else "greenwood",
            tol=SNAP_TOLERANCE if timefix else 0.0,
        )
    except DataError as exc:
        raise DataError(
            f"entry column {cohort.entry!r} and time column {cohort.time!r}: {exc}; pass "
            "timefix=False to keep every distinct time"
        ) from None
    return SurvivalCurve(
        fit,
        conf_type=conf_type,
        conf_level=conf_level,
        variance=_VARIANCE_LABEL[key],
        weighted=w is not None,
        name=cohort.name,
        time_unit=cohort.time_unit,
    )


def _check_conf_level(conf_level: float, where: str) -> None:
    if not (_is_real(conf_level) and 0 < real(conf_level) < 1):
        raise ValueError(
            f"The 'conf_level' parameter of {where} must be a number in (0, 1). "
            f"Got {conf_level!r} instead."
        )


def _is_real(x: object) -> bool:
    """A real number (Python or numpy scalar), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _as_times(times: Any, where: str) -> np.ndarray:
    raw = np.asarray(list(times) if isinstance(times, set | frozenset) else times)
    if raw.dtype.kind not in "iuf" or isinstance(times, set | frozenset | str):  # True: no time
        raise ValueError(
            f"The 'times' parameter of {where} must be numbers (a list or array, in order). "
            f"Got {times!r:.80}."
        )
    t = np.atleast_1d(raw.astype(np.float64))
    if t.ndim != 1:
        raise ValueError(f"The 'times' parameter of {where} must be one-dimensional.")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"The 'times' parameter of {where} must be finite. Got {t.tolist()}.")
    return t


class SurvivalCurve:
    """A (weighted) Kaplan–Meier curve with pointwise standard errors and intervals.

    Built by :func:`kaplan_meier`; immutable. Times are in :attr:`time_unit`. ``se`` is
    always the standard error of S(t) itself.

    Attributes
    ----------
    time, survival, se, ci_lower, ci_upper, n_risk, n_event, n_censor
        Arrays at the distinct times at which some row leaves (event or censoring).
        ``n_risk``, ``n_event`` and ``n_censor`` are weighted; ``*_unweighted`` arrays
        count rows with positive weight.
    conf_type, conf_level
        Interval type and nominal coverage.
    variance
        ``"greenwood"``, ``"greenwood (frequency weights)"`` or
        ``"infinitesimal jackknife"``.
    weighted
        Whether weights were given.
    name, time_unit
        Label and unit carried from the cohort.
    """

    def __init__(
        self,
        fit: KMArrays,
        *,
        conf_type: ConfType,
        conf_level: float,
        variance: str,
        weighted: bool,
        name: str,
        time_unit: str,
    ) -> None:
        self._fit = fit
        self.conf_type: ConfType = conf_type
        self.conf_level = float(conf_level)
        self.variance = variance
        self.weighted = weighted
        self.name = name
        self.time_unit = time_unit
        if fit.all_reported:
            self._rows: slice | np.ndarray = slice(None)
        else:
            self._rows = np.flatnonzero(unweighted_counts(fit)[2] > 0)
        self._frozen = True

    def __setattr__(self, key: str, value: Any) -> None:
        if self.__dict__.get("_frozen", False):
            raise AttributeError("SurvivalCurve is immutable")
        object.__setattr__(self, key, value)

    def _table(self, values: np.ndarray) -> np.ndarray:
        out = values[self._rows]  # a view when every time is reported
        out.setflags(write=False)
        return out

    @cached_property
    def time(self) -> np.ndarray:
        """Distinct times at which some row leaves (event or censoring)."""
        return self._table(self._fit.grid)

    @cached_property
    def survival(self) -> np.ndarray:
        """S(t) at :attr:`time`."""
        return self._table(self._fit.survival)

    @cached_property
    def se(self) -> np.ndarray:
        """Standard error of S(t) at :attr:`time`."""
        return self._table(self._fit.se)

    def _weighted(self, values: np.ndarray) -> np.ndarray:
        scale = self._fit.weight_scale
        return self._table(values if scale == 1.0 else values * scale)

    @cached_property
    def n_risk(self) -> np.ndarray:
        """Weighted number at risk at :attr:`time`."""
        return self._weighted(self._fit.n_risk)

    @cached_property
    def n_event(self) -> np.ndarray:
        """Weighted number of events at :attr:`time`."""
        return self._weighted(self._fit.n_event)

    @cached_property
    def n_censor(self) -> np.ndarray:
        """Weighted number censored at :attr:`time`."""
        return self._weighted(self._fit.n_exit - self._fit.n_event)

    @cached_property
    def n_risk_unweighted(self) -> np.ndarray:
        """Rows with positive weight at risk at :attr:`time`."""
        return self._table(unweighted_counts(self._fit)[0])

    @cached_property
    def n_event_unweighted(self) -> np.ndarray:
        """Rows with positive weight having the event at :attr:`time`."""
        return self._table(unweighted_counts(self._fit)[1])

    @cached_property
    def n_censor_unweighted(self) -> np.ndarray:
        """Rows with positive weight censored at :attr:`time`."""
        _, c_event, c_exit = unweighted_counts(self._fit)
        return self._table(c_exit - c_event)

    @cached_property
    def _bands(self) -> tuple[np.ndarray, np.ndarray]:
        lo, up = bands(self.survival, self.se, self.conf_type, self.conf_level)
        lo.setflags(write=False)
        up.setflags(write=False)
        return lo, up

    @property
    def ci_lower(self) -> np.ndarray:
        """Lower pointwise confidence limit of S(t) at :attr:`time`."""
        return self._bands[0]

    @property
    def ci_upper(self) -> np.ndarray:
        """Upper pointwise confidence limit of S(t) at :attr:`time`."""
        return self._bands[1]

    # -- pointwise ------------------------------------------------------------------------
    def _index(self, t: np.ndarray) -> np.ndarray:
        """Index of the last grid time <= t (-1 before the first)."""
        return np.searchsorted(self._fit.grid, t, side="right") - 1

    def _step(self, values: np.ndarray, t: np.ndarray, before: float) -> np.ndarray:
        k = self._index(t)
        out = np.where(k >= 0, values[np.maximum(k, 0)], before)
        return np.asarray(out, dtype=np.float64)

    def survival_at(self, times: Any) -> np.ndarray:
        """S(t) at each time in ``times`` (1 before the first time; the last value after)."""
        t = _as_times(times, "SurvivalCurve.survival_at")
        return self._step(self._fit.survival, t, 1.0)

    def se_at(self, times: Any) -> np.ndarray:
        """Standard error of S(t) at each time in ``times``."""
        t = _as_times(times, "SurvivalCurve.se_at")
        return self._step(self._fit.se, t, 0.0)

    def at(self, times: Any) -> pl.DataFrame:
        """S(t) with its standard error, interval and risk set at each requested time.

        Returns a polars frame with ``time``, ``survival``, ``se``, ``ci_lower``,
        ``ci_upper``, ``n_risk`` (weighted) and ``n_risk_unweighted``. The risk set is
        the one at the first observed time >= t, as R's ``summary(fit, times=)``
        reports it, and 0 after the last observed time.
        """
        t = _as_times(times, "SurvivalCurve.at")
        s = self._step(self._fit.survival, t, 1.0)
        se = self._step(self._fit.se, t, 0.0)
        lo, up = bands(s, se, self.conf_type, self.conf_level)
        nr, nru = self._risk_at(t)
        return pl.DataFrame(
            {
                "time": t,
                "survival": s,
                "se": se,
                "ci_lower": lo,
                "ci_upper": up,
                "n_risk": nr,
                "n_risk_unweighted": nru,
            }
        )

    def _risk_at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        j = np.searchsorted(self.time, t, side="left")
        inside = j < self.time.size
        jj = np.minimum(j, self.time.size - 1)
        nr = np.where(inside, self.n_risk[jj], 0.0)
        nru = np.where(inside, self.n_risk_unweighted[jj], 0.0)
        return nr, nru

    def risk_table(self, times: Any) -> pl.DataFrame:
        """Numbers at risk at ``times`` and events and censorings since the previous time.

        Columns ``time``, ``n_risk``, ``n_risk_unweighted`` (as in :meth:`at`),
        ``n_event`` and ``n_censor`` (weighted, in ``(previous time, time]``; the first
        interval starts at minus infinity), as R's ``summary(fit, times=)``.
        """
        t = _as_times(times, "SurvivalCurve.risk_table")
        if np.any(np.diff(t) < 0):
            raise ValueError("The 'times' parameter of SurvivalCurve.risk_table must be sorted.")
        nr, nru = self._risk_at(t)
        cum_e = np.concatenate(([0.0], np.cumsum(self.n_event)))
        cum_c = np.concatenate(([0.0], np.cumsum(self.n_censor)))
        k = np.searchsorted(self.time, t, side="right")
        ce, cc = cum_e[k], cum_c[k]
        return pl.DataFrame(
            {
                "time": t,
                "n_risk": nr,
                "n_risk_unweighted": nru,
                "n_event": np.diff(ce, prepend=0.0),
                "n_censor": np.diff(cc, prepend=0.0),
            }
        )

    # -- summary measures --------------------------------------------------------------------
    def quantile(self, p: float) -> Estimate:
        """Time by which a share ``p`` of the population has had the event: S(t) = 1 - p.

        The point estimate is the first time with S(t) <= 1 - p (tolerance sqrt(eps));
        if S equals 1 - p exactly from t_k on, the midpoint of t_k and the next time the
        curve drops (or the last observed time). The interval applies the same rule to the
        lower and upper bands of the curve's ``conf_type`` (Brookmeyer & Crowley 1982, as
        R's ``quantile.survfit``); a bound is ``nan`` when its band never reaches 1 - p.
        No standard error is given (``se`` is ``nan``).
        """
        if not (_is_real(p) and 0 < real(p) < 1):
            raise ValueError(
                f"The 'p' parameter of SurvivalCurve.quantile must be in (0, 1). Got {p!r}."
            )
        p = float(p)
        value = find_quantile(self.time, self.survival, p)
        lower = find_quantile(self.time, self.ci_lower, p)
        upper = find_quantile(self.time, self.ci_upper, p)
        notes = ["no standard error for a quantile; interval by inverting the pointwise band"]
        if math.isnan(value):
            smin = float(self.survival.min())
            notes.insert(
                0,
                f"not reached: S(t) stays above {1 - p:g} (lowest {smin:.4g} at "
                f"{float(self.time[-1]):g} {self.time_unit})",
            )
        elif math.isnan(upper):
            notes.insert(0, f"upper limit not reached: the upper band stays above {1 - p:g}")
        return Estimate(
            value,
            float("nan"),
            lower,
            upper,
            note="; ".join(notes),
            ci_method=f"band inversion ({self.conf_type})",
            conf_level=self.conf_level,
        )

    def median(self) -> Estimate:
        """Median survival time: :meth:`quantile` at 0.5."""
        return self.quantile(0.5)

    def rmst(self, tau: float) -> Estimate:
        """Restricted mean survival time ``RMST(tau) = int_0^tau S(t) dt`` with its SE.

        The standard error is that of the estimate. Without weights (and for frequency
        weights) it is ``sqrt(sum_{t_k <= tau} (int_{t_k}^tau S)^2 d_k / (Y_k (Y_k -
        d_k)))`` (survRM2; R's ``print(fit, rmean=tau)``). With sampling weights it is the
        infinitesimal jackknife ``sqrt(sum_i (int_0^tau U_i(t) dt)^2)`` from the influence
        ``U_i`` of each row on S(t). The interval is Wald: value -/+ z se.

        Warns :class:`ExtrapolationWarning` when ``tau`` is beyond the last observed time
        and the curve has not reached zero: the last value is carried forward.
        """
        if not (_is_real(tau) and math.isfinite(real(tau)) and tau > 0):
            raise ValueError(
                f"The 'tau' parameter of SurvivalCurve.rmst must be a positive finite number. "
                f"Got {tau!r} instead."
            )
        tau = float(check_tau(tau, "SurvivalCurve.rmst") or tau)
        last = float(self.time[-1])
        note = ""
        if tau > last and self.survival[-1] > 0:
            note = f"tau beyond the last observed time {last:g}; last value carried forward"
            warnings.warn(
                f"RMST at tau = {tau:g} {self.time_unit} reaches past the last observed time "
                f"{last:g} of curve {self.name!r}, where S = {float(self.survival[-1]):.4g}; "
                "the curve is carried forward at that value. Choose tau within follow-up.",
                ExtrapolationWarning,
                stacklevel=2,
            )
        value, se = rmst_arrays(self._fit, tau)
        z = float(norm.ppf(0.5 + self.conf_level / 2.0))
        return Estimate(
            value,
            se,
            value - z * se,
            value + z * se,
            note=note,
            ci_method="wald",
            conf_level=self.conf_level,
        )

    # -- frames, dicts, plots --------------------------------------------------------------
    def to_frame(self) -> pl.DataFrame:
        """The survival table: one row per observed time.

        Columns ``time``, ``n_risk``, ``n_event``, ``n_censor`` (weighted), ``survival``,
        ``se``, ``ci_lower``, ``ci_upper``, then the unweighted counts.
        """
        return pl.DataFrame(
            {
                "time": self.time,
                "n_risk": self.n_risk,
                "n_event": self.n_event,
                "n_censor": self.n_censor,
                "survival": self.survival,
                "se": self.se,
                "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper,
                "n_risk_unweighted": self.n_risk_unweighted,
                "n_event_unweighted": self.n_event_unweighted,
                "n_censor_unweighted": self.n_censor_unweighted,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: settings and the survival table (``nan`` as ``None``)."""
        table = {
            k: [None if isinstance(v, float) and math.isnan(v) else v for v in col]
            for k, col in self.to_frame().to_dict(as_series=False).items()
        }
        return {
            "name": self.name,
            "time_unit": self.time_unit,
            "conf_type": self.conf_type,
            "conf_level": self.conf_level,
            "variance": self.variance,
            "weighted": self.weighted,
            "table": table,
        }

    def plot(
        self,
        ax: Axes | None = None,
        *,
        risk_times: Sequence[float] | None = None,
        ci: bool = True,
        label: str | None = None,
        color: str | None = None,
        risk_table: bool = True,
    ) -> Axes:
        """Step curve with its confidence band and (unless ``risk_table=False``) numbers
        at risk under the axis."""
        from transport.plotting import plot_survival

        return plot_survival(
            self,
            ax=ax,
            risk_times=risk_times,
            ci=ci,
            label=label,
            color=color,
            risk_table=risk_table,
        )

    @property
    def delayed_entry(self) -> bool:
        """Whether the curve was estimated with delayed entry (left truncation)."""
        return self._fit.entry_index is not None

    def exits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each row's exit time (snapped as the curve's own grid), event indicator and
        weight, aligned with each other (in the order the curve keeps its rows, which may
        be sorted): what a life table of the same rows on another grid is built from (the
        release gate's weighted actuarial curve)."""
        fit = self._fit
        return fit.grid[fit.exit_index], fit.event, fit.weights

    @cached_property
    def n_events_total(self) -> float:
        """Total (weighted) number of events."""
        return float(self.n_event.sum())

    def __repr__(self) -> str:
        med = self.median()
        med_txt = "not reached" if math.isnan(med.value) else f"{med.value:.4g}"
        w = f", {self.variance} SE" if self.weighted else ""
        return (
            f"SurvivalCurve({self.name!r}: {self.time.size} times, "
            f"{self.n_events_total:.6g} events, median {med_txt} {self.time_unit}, "
            f"{self.conf_type} {100 * self.conf_level:g}% CI{w})"
        )
