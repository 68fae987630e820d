"""Kaplan–Meier on a grid fixed once, and reading estimands off step curves: the kernels
every bootstrap replicate runs (DESIGN §7: a replicate reweights, it does not re-sort)."""

from __future__ import annotations

import numpy as np

from transport.exceptions import DataError
from transport.survival._confint import find_quantile
from transport.survival._kernel import SNAP_TOLERANCE, snap_unique

__all__ = ["FixedGridKM", "event_grid", "read_curve", "step_rmst"]


def step_rmst(time: np.ndarray, surv: np.ndarray, tau: float) -> float:
    """``int_0^tau S(t) dt`` for the right-continuous step curve ``surv`` at ``time``
    (S = 1 before the first time)."""
    right = np.append(time[1:], np.inf)
    delta = np.clip(np.minimum(right, tau) - time, 0.0, None)
    head = min(float(time[0]), tau) if time[0] > 0 else 0.0
    return head + float(np.dot(surv, delta))


class FixedGridKM:
    """Kaplan–Meier on a grid fixed once: each call with new case weights is O(n + m).

    Rows of weight 0 are absent; S is the product-limit estimate on the weighted counts,
    events before censorings at a tied time, times snapped as R's ``aeqSurv``.

    With ``entry`` (delayed entry, left truncation; ``entry < time``), the grid is that of
    :func:`~transport.kaplan_meier`: exit and entry times snapped together, and a row is at
    risk at grid time ``t_k`` when ``entry < t_k <= time`` on the snapped values. A row
    entering at a time tied with an event is not at risk for that event (R's
    ``Surv(entry, time, event)``).
    """

    def __init__(
        self, time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None
    ) -> None:
        self.entry_index: np.ndarray | None = None
        n = time.size
        # with entry, exit and entry times are snapped jointly, exactly as
        # kaplan_meier_arrays does, so the grid and the risk sets are tp.kaplan_meier's
        values = time if entry is None else np.concatenate((time, entry))
        grid, both = snap_unique(values, SNAP_TOLERANCE)
        idx = both[:n]
        if entry is not None:
            self.entry_index = both[n:]
            clash = self.entry_index >= idx
            if clash.any():
                raise DataError(
                    f"{int(clash.sum())} of {n} rows have entry equal to exit once times "
                    f"closer than {SNAP_TOLERANCE:.3g} (absolutely or relative to the mean "
                    "time) are treated as tied (rule: entry < time after snapping, as R's "
                    "aeqSurv)"
                )
        self.grid = grid
        self.index = idx
        self.event = np.asarray(event, dtype=np.float64)
        self.m = grid.size

    def _at_risk(self, w: np.ndarray, exits: np.ndarray) -> np.ndarray:
        """Weighted risk set at every grid time from the weighted exits per grid time."""
        at_risk = np.cumsum(exits[::-1])[::-1]
        if self.entry_index is not None:
            # rows whose (snapped) entry is at or after t_k are not yet at risk at t_k
            entries = np.bincount(self.entry_index, weights=w, minlength=self.m)
            at_risk -= np.cumsum(entries[::-1])[::-1]
            np.maximum(at_risk, 0.0, out=at_risk)  # float residue of the subtraction
        return at_risk

    def survival(self, w: np.ndarray) -> np.ndarray:
        """S at every grid time for case weights ``w`` (one per row, input order)."""
        d = np.bincount(self.index, weights=w * self.event, minlength=self.m)
        e = np.bincount(self.index, weights=w, minlength=self.m)
        at_risk = self._at_risk(w, e)
        h = np.divide(d, at_risk, out=np.zeros(self.m), where=at_risk > 0)
        return np.cumprod(np.clip(1.0 - h, 0.0, 1.0))

    def censoring_survival(self, w: np.ndarray) -> np.ndarray:
        """G(t) = P(C > t) by the reverse Kaplan–Meier (censorings as events; deaths at a
        tied time leave the risk set first, matching the Kaplan–Meier convention).

        Right-censored data only: its one user, ``aipw``, refuses delayed entry (its
        outcome models need right-censored data)."""
        if self.entry_index is not None:
            raise DataError(
                "the censoring survival G(t) is estimated for right-censored data only "
                "(rule: no entry column for aipw)"
            )
        c = np.bincount(self.index, weights=w * (1.0 - self.event), minlength=self.m)
        e = np.bincount(self.index, weights=w, minlength=self.m)
        d = e - c
        # deaths at t leave before the censorings at t (events first, as in the KM), so
        # the censoring hazard at t is c / (Y - d): then S_KM(t) G(t) = Y(t+) / n exactly
        at_risk = np.cumsum(e[::-1])[::-1] - d
        h = np.divide(c, at_risk, out=np.zeros(self.m), where=at_risk > 0)
        return np.cumprod(np.clip(1.0 - h, 0.0, 1.0))


def read_curve(
    time: np.ndarray, surv: np.ndarray, times: np.ndarray, tau: float | None
) -> np.ndarray:
    """S at ``times``, the median and (with ``tau``) RMST(tau) of a step curve, in that
    order; the median is ``nan`` when the curve stays above 0.5."""
    k = np.searchsorted(time, times, side="right") - 1
    s = np.where(k >= 0, surv[np.maximum(k, 0)], 1.0)
    extra = [find_quantile(time, surv, 0.5)]
    if tau is not None:
        extra.append(step_rmst(time, surv, tau))
    return np.concatenate((s, np.asarray(extra)))


def event_grid(time: np.ndarray, event: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Distinct event times of the rows with positive weight: where a model-based curve
    is read (the Cox model's marginal curve steps only there)."""
    return np.unique(time[(event > 0) & (w > 0)])
