"""``TransportResult``: what :func:`~transport.transport` returns for one target.

Estimand: for a source cohort S and a target population T, the survival function the
source's outcome mechanism would give in the target's patient mix,
``S_T(t) = E_T[ S_source(t | X) ]`` over the target's distribution of the measured
covariates X, together with the median and RMST(tau) of that curve. It is compared with
the target's own observed Kaplan–Meier curve (:class:`~transport.comparison.ComparisonResult`):
if outcome mechanisms are shared given X (and X holds every effect modifier whose
distribution differs), the two agree. The raw source-target gap splits into the part
the measured patient mix explains and the residual (:meth:`TransportResult.decomposition`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from transport._validate import check_interval_kind, check_margins
from transport.assess import curve_distance, wald
from transport.cohort import TIME_UNITS, Cohort
from transport.comparison import (
    ComparisonResult,
    Part,
    Replicates,
    curve_estimands,
    estimand_rows,
)
from transport.estimate import Estimate
from transport.exceptions import DataError
from transport.inference import BootstrapDraws, IntervalKind, interval
from transport.methods import REGISTRY
from transport.summary import TargetSummary
from transport.survival.curve import SurvivalCurve
from transport.survival.model_curve import ModelCurve
from transport.weighting import Weights

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Target", "TransportResult", "TransportResults"]

Target = Cohort | TargetSummary


class TransportResult(ComparisonResult):
    """The transported estimates for one target, the target's observed ones, and their
    comparison.

    Attributes
    ----------
    method, source, target
        The method and the cohorts' names.
    transported
        The source's curve in the target's patient mix: a weighted Kaplan–Meier
        :class:`~transport.SurvivalCurve` (``naive``, ``iow``, ``entropy``) or a
        :class:`~transport.survival.model_curve.ModelCurve` (``gformula``, ``aipw``).
    observed
        The target's own Kaplan–Meier curve (``None`` for a summary-only target).
    naive
        The source's own Kaplan–Meier curve.
    weights
        The :class:`~transport.Weights` (``iow``, ``entropy``), else ``None``.
    bootstrap
        The :class:`~transport.inference.BootstrapDraws`, or ``None``.
    covariates
        The source's declared covariates, which every method may use (the release gate
        refuses a result with an identifier, practice or physician among them).
    times, tau, window, ci_level, time_unit
        Settings.
    """

    def __init__(
        self,
        *,
        method: str,
        source: Cohort,
        target: Target,
        times: np.ndarray,
        tau: float | None,
        naive: SurvivalCurve,
        transported: SurvivalCurve | ModelCurve,
        observed: SurvivalCurve | None,
        weights: Weights | None,
        bootstrap: BootstrapDraws | None,
        ci_level: float,
        window: tuple[float, float] | None,
        margin: float | Mapping[str, float] | None,
    ) -> None:
        self.method = method
        self.source = source.name
        self.target = target.name
        self.covariates = tuple(source.covariates)
        self.time_unit = source.time_unit
        self.times = times
        self.tau = tau
        self.naive = naive
        self.transported = transported
        self.observed = observed
        self.weights = weights
        self.bootstrap = bootstrap
        self.ci_level = ci_level
        self.window = window
        self.margin = margin
        self._summary_km = target.km if isinstance(target, TargetSummary) else None
        self._summary_unit_factor = (
            TIME_UNITS[target.time_unit] / TIME_UNITS[source.time_unit]
            if isinstance(target, TargetSummary)
            else 1.0
        )
        self.estimands = estimand_rows(times, tau)
        self.margins = check_margins(margin, [e for e, _ in self.estimands])

    @property
    def _boot_ok(self) -> np.ndarray | None:
        """Replicates that succeeded (the last column of the draws), or ``None``."""
        if self.bootstrap is None:
            return None
        return np.asarray(~np.isnan(self.bootstrap.values[:, -1]))

    # -- the comparison's inputs ------------------------------------------------------------
    def _read(self, curve: SurvivalCurve | ModelCurve) -> Part:
        # transport() has already warned once when tau reaches past follow-up
        return curve_estimands(curve, self.times, self.tau, quiet=True)

    def _observed_from_summary(self) -> dict[str, np.ndarray]:
        out = {key: np.full(self.k, np.nan) for key in ("value", "se", "lower", "upper")}
        km = self._summary_km
        if not km:
            return out
        grid = np.asarray(km["time"], dtype=np.float64) * self._summary_unit_factor
        for j, (e, t) in enumerate(self.estimands):
            if e != "survival" or t is None:
                continue
            hit = np.flatnonzero(np.abs(grid - t) <= 1e-9 * max(1.0, abs(t)))
            if hit.size:
                i = int(hit[0])
                for key, col in (
                    ("value", "survival"),
                    ("se", "se"),
                    ("lower", "ci_lower"),
                    ("upper", "ci_upper"),
                ):
                    v = km[col][i]
                    out[key][j] = np.nan if v is None else float(v)
        return out

    def _parts(self) -> dict[str, Part]:
        parts = {"naive": self._read(self.naive), "transported": self._read(self.transported)}
        parts["observed"] = (
            self._read(self.observed)
            if self.observed is not None
            else self._observed_from_summary()
        )
        return parts

    def _replicates(self) -> Replicates | None:
        if self.bootstrap is None:
            return None
        k, reps = self.k, self.bootstrap.values
        curves = {"naive": reps[:, :k], "transported": reps[:, k : 2 * k]}
        if self.observed is not None:
            curves["observed"] = reps[:, 2 * k : 3 * k]
        ok = self._boot_ok
        assert ok is not None
        return Replicates(curves, ok, self.bootstrap.n_boot, self.bootstrap.failed)

    def _ci_methods(self, kind: IntervalKind) -> list[str]:
        if self.bootstrap is None:
            return [self._if_label(e) for e, _ in self.estimands]
        failed = self.bootstrap.failed
        note = f" ({failed} replicates failed)" if failed else ""
        if self.observed is None:  # summary target: its rows are fixed
            return [f"bootstrap-{kind} (target summary fixed){note}"] * self.k
        return [f"bootstrap-{kind}{note}"] * self.k

    def _if_label(self, estimand: str) -> str:
        info = REGISTRY[self.method]
        if not info.analytic_interval:
            return "none (use n_boot)"
        fixed = " (weights fixed)" if info.weights_fixed else ""
        if estimand == "median":
            return f"band-inversion{fixed}"
        return f"influence-function{fixed}"

    # -- assessment -------------------------------------------------------------------------
    def decomposition(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """The raw gap ``naive - observed`` split into ``patient_mix = naive -
        transported`` and ``residual = transported - observed``, per estimand, with
        intervals (bootstrap; without one, Wald for the raw gap and the residual, whose
        two terms come from independent cohorts, and none for the patient mix)."""
        check_interval_kind(interval_kind)
        parts = self._parts()
        nv, tr, ob = (parts[q]["value"] for q in ("naive", "transported", "observed"))
        comps = {"raw_gap": nv - ob, "patient_mix": nv - tr, "residual": tr - ob}
        k = self.k
        rows: list[dict[str, Any]] = []
        if self.bootstrap is not None and self.observed is not None:
            reps, ok = self.bootstrap.values, self._boot_ok
            r_n, r_t, r_o = reps[:, :k], reps[:, k : 2 * k], reps[:, 2 * k : 3 * k]
            r = {"raw_gap": r_n - r_o, "patient_mix": r_n - r_t, "residual": r_t - r_o}
            ci = {
                c: interval(r[c], comps[c], interval_kind, self.ci_level, nan_as_inf=False, ok=ok)
                for c in comps
            }
            label = f"bootstrap-{interval_kind}"
        else:
            nan = np.full(k, np.nan)
            ci = {
                "raw_gap": wald(
                    comps["raw_gap"], parts["naive"]["se"], parts["observed"]["se"], self.ci_level
                ),
                "patient_mix": (nan, nan, nan),
                "residual": wald(
                    comps["residual"],
                    parts["transported"]["se"],
                    parts["observed"]["se"],
                    self.ci_level,
                ),
            }
            label = "wald (independent cohorts)"
        for c in comps:
            se, lo, hi = ci[c]
            for j, (e, t) in enumerate(self.estimands):
                rows.append(
                    {
                        "estimand": e,
                        "time": t,
                        "component": c,
                        "value": comps[c][j],
                        "se": se[j],
                        "ci_lower": lo[j],
                        "ci_upper": hi[j],
                        "ci_method": label,
                    }
                )
        return pl.DataFrame(rows, schema_overrides={"time": pl.Float64}).fill_nan(None)

    def curve_distance(self, interval_kind: IntervalKind = "percentile") -> Estimate:
        """Mean absolute distance between the transported and observed curves over
        :attr:`window`, ``(1 / (b - a)) int_a^b |S_tr - S_obs| dt``, with a bootstrap
        interval (none without a bootstrap: the distance is not a smooth function of
        the curves near zero)."""
        check_interval_kind(interval_kind)
        if self.observed is None or self.window is None:
            raise DataError(
                f"no observed curve for target {self.target!r} or no window (rule: the "
                "distance needs the target's rows and a window or tau)"
            )
        tr = self.transported
        value = curve_distance(
            tr.time, tr.survival, self.observed.time, self.observed.survival, *self.window
        )
        nan = float("nan")
        if self.bootstrap is None:
            return Estimate(value, nan, nan, nan, note=f"window {self.window}", ci_method="none")
        r = self.bootstrap.values[:, 3 * self.k : 3 * self.k + 1]
        se, lo, hi = interval(
            r, np.array([value]), interval_kind, self.ci_level, nan_as_inf=False, ok=self._boot_ok
        )
        return Estimate(
            value,
            float(se[0]),
            float(lo[0]),
            float(hi[0]),
            note=f"window {self.window}",
            ci_method=f"bootstrap-{interval_kind}",
            conf_level=self.ci_level,
        )

    # -- output --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: settings, the summary table, the curves, weight diagnostics."""
        summary = self.summary().to_dicts()
        out: dict[str, Any] = {
            "source": self.source,
            "target": self.target,
            "method": self.method,
            "time_unit": self.time_unit,
            "times": self.times.tolist(),
            "tau": self.tau,
            "window": list(self.window) if self.window else None,
            "ci_level": self.ci_level,
            "summary": summary,
            "transported": self.transported.to_dict(),
            "observed": None if self.observed is None else self.observed.to_dict(),
            "naive": self.naive.to_dict(),
        }
        if self.weights is not None:
            out["weights"] = {
                "method": self.weights.method,
                "ess": self.weights.ess,
                "summary": self.weights.summary(),
            }
        if self.bootstrap is not None:
            out["bootstrap"] = {
                "n_boot": self.bootstrap.n_boot,
                "failed": self.bootstrap.failed,
                "seed_entropy": str(self.bootstrap.entropy),
            }
        return out

    def plot(self, ax: Axes | None = None, *, risk_times: Sequence[float] | None = None) -> Axes:
        """Naive source, transported and observed target curves, with bands and (for the
        Kaplan–Meier curves) numbers at risk."""
        from transport.plotting import plot_transport

        return plot_transport(self, ax=ax, risk_times=risk_times)

    def plot_decomposition(self, ax: Axes | None = None) -> Axes:
        """The gap decomposition of each estimand as bars with intervals."""
        from transport.plotting import plot_decomposition

        return plot_decomposition(self, ax=ax)

    def __repr__(self) -> str:
        boot = f", {self.bootstrap.n_boot} bootstrap replicates" if self.bootstrap else ""
        return (
            f"TransportResult({self.source!r} -> {self.target!r}, {self.method}, "
            f"{self.k} estimands{boot})"
        )


class TransportResults(Mapping[str, TransportResult]):
    """Results for several targets, by target name, with a combined tidy table."""

    def __init__(self, results: Mapping[str, TransportResult]) -> None:
        self._results = dict(results)

    def __getitem__(self, key: str) -> TransportResult:
        try:
            return self._results[key]
        except (KeyError, TypeError):  # a KeyError still, as a mapping's, naming the targets
            raise KeyError(
                f"no result for target {key!r:.60}; the results are for {list(self._results)}"
            ) from None

    def __iter__(self) -> Any:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def summary(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """Every target's :meth:`TransportResult.summary`, stacked."""
        return pl.concat(
            [r.summary(interval_kind) for r in self._results.values()], how="diagonal_relaxed"
        )

    def equivalence(
        self, margin: float | Mapping[str, float] | None = None, **kw: Any
    ) -> pl.DataFrame:
        """Every target's :meth:`TransportResult.equivalence`, stacked with a ``target``
        column."""
        return pl.concat(
            [
                r.equivalence(margin, **kw).with_columns(pl.lit(n).alias("target"))
                for n, r in self._results.items()
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: one entry per target."""
        return {n: r.to_dict() for n, r in self._results.items()}

    def plot_forest(
        self, estimand: str = "survival", time: float | None = None, ax: Axes | None = None
    ) -> Axes:
        """Forest plot of the differences (transported - observed) across targets."""
        from transport.plotting import plot_forest

        return plot_forest(self.summary(), estimand=estimand, time=time, ax=ax)

    def __repr__(self) -> str:
        return f"TransportResults({list(self._results)})"
