"""``ComparisonResult``: a transported estimate against the target's observed one.

The transportability test's table, shared by every result that compares the two:
:class:`~transport.TransportResult` (both cohorts in one environment, or a summary-only
target) and :class:`~transport.ShippedResult` (a shipped outcome model applied in the
target's environment). For each estimand (S(t) at each time, the median, RMST(tau)) it
reports the transported and observed values, their difference (transported -
observed) and ratio, each with an interval, and, against a margin fixed in advance, the
two one-sided tests of equivalence (Schuirmann 1987; :mod:`transport.assess`).

Intervals: with bootstrap replicates, the ``interval_kind`` ("percentile" or "normal")
bootstrap interval of each quantity, computed from the replicates that succeeded
(a replicate whose median is not reached has succeeded); without, each curve's own
interval (Greenwood, the infinitesimal jackknife, band inversion for medians) and Wald
intervals for the difference and, on the log scale, the ratio of the two independent
cohorts' estimates. A subclass says where its numbers come from (:meth:`_parts`,
:meth:`_replicates`) and how each interval was obtained (:meth:`_ci_methods`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import polars as pl

from transport._validate import check_alpha, check_interval_kind, check_margins
from transport.assess import boot_ratio, tost, wald, wald_log_ratio
from transport.estimate import Estimate
from transport.exceptions import ExtrapolationWarning
from transport.inference import IntervalKind, interval
from transport.survival.curve import SurvivalCurve
from transport.survival.model_curve import ModelCurve

__all__ = ["ComparisonResult", "Part", "Replicates", "curve_estimands", "estimand_rows"]

#: Value, SE and interval limits of each estimand (keys ``value``, ``se``, ``lower``,
#: ``upper``), one entry per summary row.
Part = dict[str, np.ndarray]
#: The summary's quantities, in its column order (``naive`` where a result has one).
QUANTITIES: tuple[str, ...] = ("transported", "observed", "difference", "ratio", "naive")


def estimand_rows(times: np.ndarray, tau: float | None) -> list[tuple[str, float | None]]:
    """The summary's rows: S(t) at each of ``times``, the median, RMST(tau) with ``tau``."""
    rows: list[tuple[str, float | None]] = [("survival", float(x)) for x in times]
    rows.append(("median", None))
    if tau is not None:
        rows.append(("rmst", tau))
    return rows


def curve_estimands(
    curve: SurvivalCurve | ModelCurve, times: np.ndarray, tau: float | None, *, quiet: bool
) -> Part:
    """Value, SE and interval of each estimand from a curve's own (influence-function or
    Greenwood) variance; ``nan`` where it has none. ``quiet``: the caller has already
    warned that tau reaches past follow-up."""
    k = times.size + 1 + (tau is not None)
    value, se, lo, hi = (np.full(k, np.nan) for _ in range(4))
    n_t = times.size
    if n_t:
        tab = curve.at(times).fill_null(np.nan)
        value[:n_t] = tab["survival"].to_numpy()
        se[:n_t] = tab["se"].to_numpy()
        lo[:n_t] = tab["ci_lower"].to_numpy()
        hi[:n_t] = tab["ci_upper"].to_numpy()
    ests: list[Estimate] = [curve.median()]
    if tau is not None:
        with warnings.catch_warnings():
            if quiet:
                warnings.simplefilter("ignore", ExtrapolationWarning)
            ests.append(curve.rmst(tau))
    for j, e in enumerate(ests, start=n_t):
        value[j], se[j], lo[j], hi[j] = e.value, e.se, e.ci_lower, e.ci_upper
    return {"value": value, "se": se, "lower": lo, "upper": hi}


@dataclass(frozen=True)
class Replicates:
    """Bootstrap replicates of the estimands: one ``n_boot`` x ``k`` array per curve
    that was resampled (``naive``, ``transported``, ``observed``), which replicates
    succeeded (``ok``; a failed one is a model that could not be refitted), and how
    many were drawn and failed."""

    curves: dict[str, np.ndarray]
    ok: np.ndarray
    n_boot: int
    failed: int


class ComparisonResult:
    """Transported against observed, estimand by estimand: :meth:`summary` and
    :meth:`equivalence`.

    A subclass sets ``source``, ``target``, ``method``, ``time_unit``, ``times``,
    ``tau``, ``estimands`` (:func:`estimand_rows`), ``ci_level`` and ``margins`` (one
    per row, ``nan`` for none) and says where the numbers come from: :meth:`_parts`,
    :meth:`_replicates`, :meth:`_ci_methods`.
    """

    #: Where a margin can be given, for the message when none was.
    margin_hint: ClassVar[str] = "transport()"

    source: str
    target: str
    method: str
    time_unit: str
    times: np.ndarray
    tau: float | None
    estimands: list[tuple[str, float | None]]
    ci_level: float
    margins: np.ndarray

    @property
    def k(self) -> int:
        """Number of estimands (rows of :meth:`summary`)."""
        return len(self.estimands)

    @property
    def method_label(self) -> str:
        """The ``method`` column of :meth:`summary`."""
        return self.method

    # -- what a subclass provides -----------------------------------------------------------
    def _parts(self) -> dict[str, Part]:
        """Each curve's estimands with their own intervals: ``transported``,
        ``observed`` and optionally ``naive``."""
        raise NotImplementedError

    def _replicates(self) -> Replicates | None:
        """The bootstrap replicates, or ``None`` without a bootstrap."""
        raise NotImplementedError

    def _ci_methods(self, kind: IntervalKind) -> list[str]:
        """How each row's intervals were obtained (the ``ci_method`` column)."""
        raise NotImplementedError

    # -- the table ------------------------------------------------------------------------
    def _columns(self, kind: IntervalKind, level: float) -> dict[str, Any]:
        check_interval_kind(kind)
        parts = self._parts()
        tr, ob = parts["transported"], parts["observed"]
        diff = tr["value"] - ob["value"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = tr["value"] / ob["value"]
        values = {"transported": tr["value"], "observed": ob["value"], "difference": diff}
        values["ratio"] = ratio
        if "naive" in parts:
            values["naive"] = parts["naive"]["value"]
        stats = {name: (p["se"], p["lower"], p["upper"]) for name, p in parts.items()}
        reps = self._replicates()
        se_t = tr["se"]
        if reps is not None:
            for name, r in reps.curves.items():
                stats[name] = interval(r, parts[name]["value"], kind, level, ok=reps.ok)
            se_t = stats["transported"][0]
        if reps is not None and "observed" in reps.curves:
            r_t, r_o = reps.curves["transported"], reps.curves["observed"]
            stats["difference"] = interval(
                r_t - r_o, diff, kind, level, nan_as_inf=False, ok=reps.ok
            )
            stats["ratio"] = boot_ratio(r_t, r_o, ratio, kind, level, reps.ok)
        else:  # the target's own intervals (a summary's rows are fixed): combine, Wald
            stats["difference"] = wald(diff, se_t, ob["se"], level)
            stats["ratio"] = wald_log_ratio(tr["value"], ob["value"], se_t, ob["se"], level)
        out: dict[str, Any] = {}
        for name in QUANTITIES:
            if name not in values:
                continue
            se, lo, hi = stats[name]
            out[name] = values[name]
            if name != "ratio":
                out[f"{name}_se"] = se
            out[f"{name}_ci_lower"] = lo
            out[f"{name}_ci_upper"] = hi
        out["ci_method"] = self._ci_methods(kind)
        out["conf_level"] = [level] * self.k
        out["n_boot"] = [reps.n_boot if reps else 0] * self.k
        out["n_boot_failed"] = [reps.failed if reps else 0] * self.k
        return out

    def summary(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """One row per estimand: transported, observed, difference (transported -
        observed) and ratio (and the naive source estimate where there is one), each
        with its interval, and ``ci_method``.

        With a bootstrap, intervals are ``interval_kind`` ("percentile" or "normal")
        bootstrap intervals and ``*_se`` the replicates' SD. Without, they come from each
        curve's own variance ("influence-function": Greenwood for the unweighted
        curves, the infinitesimal jackknife for the weighted ones, which treats the
        weights as fixed; the median's from inverting the pointwise band), and are
        null for the model-based curves. Differences and ratios then combine the two
        independent cohorts' SEs (Wald; the ratio on the log scale). The normal bootstrap
        interval of the ratio is also built on the log scale.

        With a ``margin``, the equivalence columns of :meth:`equivalence` are added.
        """
        cols = self._columns(interval_kind, self.ci_level)
        frame = pl.DataFrame(
            {
                "source": [self.source] * self.k,
                "target": [self.target] * self.k,
                "method": [self.method_label] * self.k,
                "estimand": [e for e, _ in self.estimands],
                "time": [t for _, t in self.estimands],
                **cols,
            },
            schema_overrides={"time": pl.Float64},
        )
        if not np.all(np.isnan(self.margins)):
            eq = self.equivalence(interval_kind=interval_kind)
            frame = frame.with_columns(eq["margin"], eq["equivalence_p"], eq["verdict"])
        return frame.fill_nan(None)

    def equivalence(
        self,
        margin: float | Mapping[str, float] | None = None,
        *,
        alpha: float = 0.05,
        interval_kind: IntervalKind = "percentile",
    ) -> pl.DataFrame:
        """Two one-sided tests of ``|transported - observed| < margin`` at level ``alpha``.

        ``margin`` (default: the one given when the result was made) is a number for
        S(t) or a dict by estimand, fixed before looking at the data. Columns:
        ``estimand``, ``time``, ``difference``, ``lower`` and ``upper`` (the ``1 - 2
        alpha`` interval: bootstrap when there is one, else Wald), ``margin``,
        ``equivalence_p`` (the larger one-sided p-value, normal approximation) and
        ``verdict``.
        """
        rows = [e for e, _ in self.estimands]
        m = self.margins if margin is None else check_margins(margin, rows)
        if np.all(np.isnan(m)):
            raise ValueError(f"no equivalence margin: pass margin= here or to {self.margin_hint}")
        check_alpha(alpha)
        cols = self._columns(interval_kind, 1.0 - 2.0 * alpha)
        diff, lower, upper = (
            cols["difference"],
            cols["difference_ci_lower"],
            cols["difference_ci_upper"],
        )
        p, verdicts = tost(diff, cols["difference_se"], lower, upper, m)
        verdicts = np.where(np.isnan(m), np.asarray(None, dtype=object), verdicts)
        return pl.DataFrame(
            {
                "estimand": rows,
                "time": [t for _, t in self.estimands],
                "difference": diff,
                "lower": lower,
                "upper": upper,
                "margin": m,
                "equivalence_p": p,
                "verdict": verdicts.tolist(),
            },
            schema_overrides={"time": pl.Float64, "verdict": pl.String},
        ).fill_nan(None)
