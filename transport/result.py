"""``transport()``: the package's main job, and its ``TransportResult``.

Estimand: for a source cohort S and a target population T, the survival function the
source's outcome mechanism would give in the target's patient mix,
``S_T(t) = E_T[ S_source(t | X) ]`` over the target's distribution of the measured
covariates X, together with the median and RMST(tau) of that curve. It is compared with
the target's own observed Kaplan–Meier curve: if outcome mechanisms are shared given X
(and X holds every effect modifier whose distribution differs), the two agree.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from scipy.stats import norm

from transport._validate import (
    ESTIMANDS,
    check_alpha,
    check_ci_level,
    check_margins,
    check_n_boot,
    check_n_jobs,
    check_tau,
    check_times,
    check_window,
)
from transport.assess import curve_distance, tost
from transport.cohort import TIME_UNITS, Cohort
from transport.estimate import Estimate
from transport.estimators import (
    AIPWEstimator,
    EntropyEstimator,
    FixedGridKM,
    GFormulaEstimator,
    IOWEstimator,
    NaiveEstimator,
    OutcomeModel,
    read_curve,
)
from transport.exceptions import DataError, ExtrapolationWarning, TransportWarning
from transport.inference import (
    BootstrapDraws,
    IntervalKind,
    Progress,
    interval,
    resample_counts,
    run_bootstrap,
)
from transport.methods import REGISTRY, SUMMARY_METHODS, Method, check_method
from transport.summary import TargetSummary
from transport.survival.curve import SurvivalCurve, kaplan_meier
from transport.survival.model_curve import ModelCurve
from transport.weighting import Weights, entropy_balance, inverse_odds_weights

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["TransportResult", "TransportResults", "transport"]

Target = Cohort | TargetSummary


class _Replicate:
    """One bootstrap replicate: resample counts, then every curve read at the estimands.

    Returns ``[naive (k), transported (k), observed (k), distance, 1]``, or a row of
    ``nan`` when a model could not be refitted: the last column tells a failed replicate
    from one whose estimands are all ``nan`` (medians that no curve reaches)."""

    def __init__(
        self,
        estimator: Any,
        naive: NaiveEstimator,
        observed: FixedGridKM | None,
        ns: int,
        nt: int | None,
        times: np.ndarray,
        tau: float | None,
        window: tuple[float, float] | None,
    ) -> None:
        self.estimator = estimator
        self.naive = naive
        self.observed = observed
        self.ns, self.nt = ns, nt
        self.times, self.tau, self.window = times, tau, window
        self.k = times.size + 1 + (tau is not None)

    def evaluate(self, cs: np.ndarray, ct: np.ndarray | None) -> np.ndarray:
        nan = np.full(self.k, np.nan)
        grid_n, s_n = self.naive.km.grid, self.naive.km.survival(cs)
        naive = read_curve(grid_n, s_n, self.times, self.tau)
        curve = self.estimator.curve(cs, ct)
        if curve is None:
            return np.full(3 * self.k + 2, np.nan)
        transported = read_curve(curve[0], curve[1], self.times, self.tau)
        observed, dist = nan, math.nan
        if self.observed is not None and ct is not None:
            s_o = self.observed.survival(ct)
            observed = read_curve(self.observed.grid, s_o, self.times, self.tau)
            if self.window is not None:
                dist = curve_distance(curve[0], curve[1], self.observed.grid, s_o, *self.window)
        return np.concatenate((naive, transported, observed, [dist, 1.0]))

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        cs = resample_counts(rng, self.ns)
        ct = resample_counts(rng, self.nt) if self.nt is not None else None
        return self.evaluate(cs, ct)


def _same_unit(target: Target, unit: str) -> Target:
    if isinstance(target, Cohort):
        return target if target.time_unit == unit else target.in_unit(unit)  # type: ignore[arg-type]
    return target


def transport(
    source: Cohort,
    target: Target | Sequence[Target] | Mapping[str, Target],
    *,
    method: Method = "iow",
    times: Any = None,
    tau: float | None = None,
    formula: str | None = None,
    outcome_formula: str | None = None,
    n_boot: int = 0,
    seed: int | np.random.SeedSequence | None = None,
    n_jobs: int = 1,
    ci_level: float = 0.95,
    progress: Progress = None,
    outcome_model: OutcomeModel = "cox",
    ties: Literal["efron", "breslow"] = "efron",
    moments: Literal[1, 2] = 1,
    censoring: Literal["km", "cox"] = "km",
    window: tuple[float, float] | None = None,
    margin: float | Mapping[str, float] | None = None,
) -> TransportResult | TransportResults:
    """Transport a source cohort's survival to a target's patient mix, and compare.

    Estimand: ``S_T(t) = E_T[S_source(t | X)]``, the survival the source's outcome
    mechanism gives in the target's distribution of the measured covariates X, with its
    median and RMST(tau); compared with the target's observed Kaplan–Meier curve. See
    :mod:`transport.estimators` for the methods and their references.

    Parameters
    ----------
    source
        The source :class:`~transport.Cohort` (outcomes and covariates).
    target
        A :class:`~transport.Cohort`; a :class:`~transport.TargetSummary` (methods
        ``naive`` and ``entropy``: the observed curve then comes from the summary's
        Kaplan–Meier grid, at the requested times that lie on it); or a list or dict of
        targets, giving a :class:`TransportResults` with one result per target.
    method
        ``"naive"``, ``"iow"`` (default), ``"entropy"``, ``"gformula"`` or ``"aipw"``.
        ``naive``, ``iow`` and ``entropy`` accept cohorts with delayed entry (left
        truncation, a Cohort ``entry`` column): every curve, bootstrap replicates
        included, is the (weighted) Kaplan–Meier of :func:`~transport.kaplan_meier` with
        risk sets ``entry < t <= time``. ``gformula`` and ``aipw`` need right-censored
        data (their outcome models have no delayed entry) and refuse an entry column.
    times, tau
        Times for S(t) and the RMST horizon, in the source's time unit (a target in
        another unit is converted exactly).
    formula
        Participation / balancing design (default main effects of every covariate).
    outcome_formula
        Outcome model design for ``gformula`` and ``aipw`` (default main effects).
    n_boot, seed, n_jobs, progress
        Bootstrap replicates (0: none), the seed (replicate ``b`` uses the ``b``-th child
        of ``SeedSequence(seed)``, so results are identical for any ``n_jobs``), worker
        processes and progress reporting (``True`` or a callable ``(done, total)``).
        Source and target are resampled separately and every model is refitted.
    ci_level
        Nominal coverage of the intervals.
    outcome_model, ties
        ``"cox"`` (proportional hazards; ``ties`` "efron" or "breslow") or ``"pwexp"``
        (piecewise exponential with time-varying effects: no proportional hazards).
    moments
        Entropy balancing: 1 (means) or 2 (also second moments of continuous columns).
    censoring
        ``aipw``: censoring survival G(t) by reverse Kaplan–Meier (``"km"``, censoring
        independent of X) or by a Cox model on the outcome design (``"cox"``).
    window
        ``(a, b)`` for the mean absolute distance between the transported and observed
        curves; default ``(0, tau)``, else ``(0, max(times))``.
    margin
        Equivalence margin(s) for :meth:`TransportResult.equivalence`, fixed in advance:
        a number (for S(t)) or a dict by estimand (``"survival"``, ``"median"``,
        ``"rmst"``). With it, ``summary()`` carries the verdicts.

    Returns
    -------
    TransportResult, or TransportResults for several targets.

    Examples
    --------
    >>> import transport as tp
    >>> us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    >>> res = tp.transport(us, jp, method="iow", times=[365], tau=1095)
    >>> round(float(res.transported.survival_at(365)[0]), 3)
    0.464
    """
    if isinstance(target, Mapping) or (
        isinstance(target, Sequence) and not isinstance(target, str | bytes)
    ):
        items = (
            list(target.items())
            if isinstance(target, Mapping)
            else [(getattr(t, "name", str(i)), t) for i, t in enumerate(target)]
        )
        names = [str(k) for k, _ in items]
        if len(set(names)) != len(names):
            raise ValueError(f"targets must have distinct names; got {names}")
        results = {
            name: transport(
                source,
                t,
                method=method,
                times=times,
                tau=tau,
                formula=formula,
                outcome_formula=outcome_formula,
                n_boot=n_boot,
                seed=seed,
                n_jobs=n_jobs,
                ci_level=ci_level,
                progress=progress,
                outcome_model=outcome_model,
                ties=ties,
                moments=moments,
                censoring=censoring,
                window=window,
                margin=margin,
            )
            for name, t in items
        }
        return TransportResults(results)  # type: ignore[arg-type]
    if not isinstance(source, Cohort):
        raise TypeError(
            f"The 'source' parameter of transport must be a Cohort. "
            f"Got {type(source).__name__} instead."
        )
    if not isinstance(target, Cohort | TargetSummary):
        raise TypeError(
            "The 'target' parameter of transport must be a Cohort, a TargetSummary, or a "
            f"list or dict of them. Got {type(target).__name__} instead."
        )
    info = check_method(method)
    if isinstance(target, TargetSummary) and not info.summary_target:
        raise DataError(
            f"method {method!r} needs the target's rows, but target {target.name!r} is a "
            f"TargetSummary (rule: a summary-only target supports "
            f"{' and '.join(repr(m) for m in SUMMARY_METHODS)}; "
            "ship the outcome model to the target instead)"
        )
    check_n_boot(n_boot)
    check_ci_level(ci_level)
    check_n_jobs(n_jobs)
    t, tau_ = check_times(times, "transport"), check_tau(tau, "transport")
    check_margins(margin, ESTIMANDS)  # validate early
    if not info.delayed_entry:
        for c in (source, target):
            if isinstance(c, Cohort) and c.entry is not None:
                raise DataError(
                    f"cohort {c.name!r} has delayed entry (column {c.entry!r}; {c.n} rows) "
                    f"(rule: method {method!r} needs right-censored data, its outcome models "
                    "have no delayed entry; methods 'naive', 'iow' and 'entropy' accept "
                    "delayed entry)"
                )
    target = _same_unit(target, source.time_unit)
    if tau_ is not None:
        last = min(
            float(source.time_values.max()),
            float(target.time_values.max()) if isinstance(target, Cohort) else np.inf,
        )
        if tau_ > last:
            warnings.warn(
                f"tau = {tau_:g} {source.time_unit} reaches past the last follow-up time "
                f"{last:g} of {source.name!r} or {target.name!r}; the RMSTs carry the last "
                "value forward. Choose tau within follow-up.",
                ExtrapolationWarning,
                stacklevel=2,
            )
    if window is None:
        end = tau_ if tau_ is not None else (float(t.max()) if t.size else None)
        win = (0.0, end) if end else None
    else:
        win = check_window(window)

    naive_curve = kaplan_meier(source, conf_level=ci_level)
    naive_est = NaiveEstimator(source)
    weights: Weights | None = None
    model_note = ""
    estimator: Any
    if method == "naive":
        estimator = naive_est
        transported: SurvivalCurve | ModelCurve = naive_curve
    elif method == "iow":
        assert isinstance(target, Cohort)
        weights = inverse_odds_weights(source, target, formula)
        estimator = IOWEstimator(source, target, formula, weights)
        transported = kaplan_meier(source, weights, conf_level=ci_level)
    elif method == "entropy":
        weights = entropy_balance(source, target, moments, formula)
        estimator = EntropyEstimator(source, target, formula, moments, weights.details["lambda"])
        transported = kaplan_meier(source, weights, conf_level=ci_level)
    else:
        assert isinstance(target, Cohort)
        if method == "gformula":
            estimator = GFormulaEstimator(source, target, outcome_formula, outcome_model, ties)
            model_note = f"average of {outcome_model} model predictions over the target"
        else:
            # the participation model as inverse_odds_weights fits it: the same checks
            # (separation named by covariate, overlap) and its weights for diagnostics
            weights = inverse_odds_weights(source, target, formula)
            estimator = AIPWEstimator(
                source, target, formula, outcome_formula, outcome_model, ties, censoring, weights
            )
            model_note = (
                f"augmented IPW: {outcome_model} outcome model, logistic participation model, "
                f"{censoring} censoring model; clipped to [0, 1] and made monotone"
            )
        full = estimator.curve(
            np.ones(source.n), None if method == "gformula" else np.ones(target.n)
        )
        if full is None:
            raise DataError(f"method {method!r} could not be fitted on the full data")
        transported = ModelCurve(
            full[0],
            full[1],
            method=method,
            name=f"{source.name} -> {target.name}",
            time_unit=source.time_unit,
            note=model_note,
        )

    observed = kaplan_meier(target, conf_level=ci_level) if isinstance(target, Cohort) else None
    draws = None
    if n_boot:
        rep = _Replicate(
            estimator,
            naive_est,
            FixedGridKM(target.time_values, target.event_values, target.entry_values)
            if isinstance(target, Cohort)
            else None,
            source.n,
            target.n if isinstance(target, Cohort) else None,
            t,
            tau_,
            win if isinstance(target, Cohort) else None,
        )
        draws = run_bootstrap(
            rep,
            int(n_boot),
            seed,
            n_jobs=n_jobs,
            progress=progress,
            label=f"bootstrap {source.name} -> {target.name} ({method})",
        )
        if draws.failed:
            warnings.warn(
                f"{draws.failed} of {draws.n_boot} bootstrap replicates of {method} "
                f"({source.name} -> {target.name}) could not be refitted (a model without a "
                "finite estimate in the resample, e.g. separation or a level left out) and "
                "are left out of the intervals; see summary()['n_boot_failed']",
                TransportWarning,
                stacklevel=2,
            )
    return TransportResult(
        method=method,
        source=source,
        target=target,
        times=t,
        tau=tau_,
        naive=naive_curve,
        transported=transported,
        observed=observed,
        weights=weights,
        bootstrap=draws,
        ci_level=float(ci_level),
        window=win,
        margin=margin,
    )


class TransportResult:
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
        self.estimands = [("survival", float(x)) for x in times] + [("median", None)]
        if tau is not None:
            self.estimands.append(("rmst", tau))
        self._margins = check_margins(margin, [e for e, _ in self.estimands])

    @property
    def _boot_ok(self) -> np.ndarray | None:
        """Replicates that succeeded (the last column of the draws), or ``None``."""
        if self.bootstrap is None:
            return None
        return np.asarray(~np.isnan(self.bootstrap.values[:, -1]))

    # -- point estimates and influence-function intervals ---------------------------------
    @property
    def k(self) -> int:
        """Number of estimands (rows of :meth:`summary`)."""
        return len(self.estimands)

    def _read(self, curve: SurvivalCurve | ModelCurve) -> dict[str, np.ndarray]:
        """Value, SE and interval of each estimand from a curve's own (influence-function
        or Greenwood) variance; ``nan`` where it has none."""
        value, se, lo, hi = (np.full(self.k, np.nan) for _ in range(4))
        n_t = self.times.size
        if n_t:
            tab = curve.at(self.times).fill_null(np.nan)
            value[:n_t] = tab["survival"].to_numpy()
            se[:n_t] = tab["se"].to_numpy()
            lo[:n_t] = tab["ci_lower"].to_numpy()
            hi[:n_t] = tab["ci_upper"].to_numpy()
        ests: list[Estimate] = [curve.median()]
        if self.tau is not None:
            ests.append(_rmst(curve, self.tau))
        for j, e in enumerate(ests, start=n_t):
            value[j], se[j], lo[j], hi[j] = e.value, e.se, e.ci_lower, e.ci_upper
        return {"value": value, "se": se, "lower": lo, "upper": hi}

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

    def _parts(self) -> dict[str, dict[str, np.ndarray]]:
        parts = {"naive": self._read(self.naive), "transported": self._read(self.transported)}
        parts["observed"] = (
            self._read(self.observed)
            if self.observed is not None
            else self._observed_from_summary()
        )
        return parts

    # -- the table ------------------------------------------------------------------------------
    def summary(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """One row per estimand: transported, observed, naive, difference (transported -
        observed) and ratio, each with its interval, and ``ci_method``.

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
                "method": [self.method] * self.k,
                "estimand": [e for e, _ in self.estimands],
                "time": [t for _, t in self.estimands],
                **cols,
            },
            schema_overrides={"time": pl.Float64},
        )
        if not np.all(np.isnan(self._margins)):
            eq = self.equivalence(interval_kind=interval_kind)
            frame = frame.with_columns(eq["margin"], eq["equivalence_p"], eq["verdict"])
        return frame.fill_nan(None)

    def _columns(self, kind: IntervalKind, level: float) -> dict[str, Any]:
        parts = self._parts()
        tr, ob, nv = parts["transported"], parts["observed"], parts["naive"]
        diff = tr["value"] - ob["value"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = tr["value"] / ob["value"]
        out: dict[str, Any] = {}
        k = self.k
        if self.bootstrap is not None:
            reps, ok = self.bootstrap.values, self._boot_ok
            r_n, r_t, r_o = reps[:, :k], reps[:, k : 2 * k], reps[:, 2 * k : 3 * k]
            stats = {}
            for name, r, est in (("naive", r_n, nv["value"]), ("transported", r_t, tr["value"])):
                stats[name] = interval(r, est, kind, level, ok=ok)
            if self.observed is not None:
                stats["observed"] = interval(r_o, ob["value"], kind, level, ok=ok)
                stats["difference"] = interval(
                    r_t - r_o, diff, kind, level, nan_as_inf=False, ok=ok
                )
                stats["ratio"] = _boot_ratio(r_t, r_o, ratio, kind, level, ok)
                methods = [f"bootstrap-{kind}{self._failed_note()}"] * k
            else:  # summary target: its rows are fixed; combine the SEs (Wald)
                stats["observed"] = (ob["se"], ob["lower"], ob["upper"])
                se_t = stats["transported"][0]
                stats["difference"] = _wald(diff, se_t, ob["se"], level)
                stats["ratio"] = _wald_log_ratio(tr["value"], ob["value"], se_t, ob["se"], level)
                methods = [f"bootstrap-{kind} (target summary fixed){self._failed_note()}"] * k
        else:
            stats = {
                name: (parts[name]["se"], parts[name]["lower"], parts[name]["upper"])
                for name in ("naive", "transported", "observed")
            }
            stats["difference"] = _wald(diff, tr["se"], ob["se"], level)
            stats["ratio"] = _wald_log_ratio(tr["value"], ob["value"], tr["se"], ob["se"], level)
            methods = [self._if_label(e) for e, _ in self.estimands]
        values = {
            "transported": tr["value"],
            "observed": ob["value"],
            "difference": diff,
            "ratio": ratio,
            "naive": nv["value"],
        }
        for name in ("transported", "observed", "difference", "ratio", "naive"):
            se, lo, hi = stats[name]
            out[name] = values[name]
            if name != "ratio":
                out[f"{name}_se"] = se
            out[f"{name}_ci_lower"] = lo
            out[f"{name}_ci_upper"] = hi
        out["ci_method"] = methods
        out["conf_level"] = [level] * k
        out["n_boot"] = [self.bootstrap.n_boot if self.bootstrap else 0] * k
        out["n_boot_failed"] = [self.bootstrap.failed if self.bootstrap else 0] * k
        return out

    def _failed_note(self) -> str:
        failed = self.bootstrap.failed if self.bootstrap else 0
        return f" ({failed} replicates failed)" if failed else ""

    def _if_label(self, estimand: str) -> str:
        info = REGISTRY[self.method]
        if not info.analytic_interval:
            return "none (use n_boot)"
        fixed = " (weights fixed)" if info.weights_fixed else ""
        if estimand == "median":
            return f"band-inversion{fixed}"
        return f"influence-function{fixed}"

    # -- assessment -------------------------------------------------------------------------
    def equivalence(
        self,
        margin: float | Mapping[str, float] | None = None,
        *,
        alpha: float = 0.05,
        interval_kind: IntervalKind = "percentile",
    ) -> pl.DataFrame:
        """Two one-sided tests of ``|transported - observed| < margin`` at level ``alpha``.

        ``margin`` (default: the one given to :func:`transport`) is a number for S(t) or
        a dict by estimand, fixed before looking at the data. Columns: ``estimand``,
        ``time``, ``difference``, ``lower`` and ``upper`` (the ``1 - 2 alpha`` interval:
        bootstrap when there is one, else Wald), ``margin``, ``equivalence_p`` (the larger
        one-sided p-value, normal approximation) and ``verdict``.
        """
        m = (
            self._margins
            if margin is None
            else check_margins(margin, [e for e, _ in self.estimands])
        )
        if np.all(np.isnan(m)):
            raise ValueError("no equivalence margin: pass margin= here or to transport()")
        check_alpha(alpha)
        cols = self._columns(interval_kind, 1.0 - 2.0 * alpha)
        diff = cols["difference"]
        p, verdicts = tost(
            diff, cols["difference_se"], cols["difference_ci_lower"], cols["difference_ci_upper"], m
        )
        verdicts = np.where(np.isnan(m), np.asarray(None, dtype=object), verdicts)
        return pl.DataFrame(
            {
                "estimand": [e for e, _ in self.estimands],
                "time": [t for _, t in self.estimands],
                "difference": diff,
                "lower": cols["difference_ci_lower"],
                "upper": cols["difference_ci_upper"],
                "margin": m,
                "equivalence_p": p,
                "verdict": verdicts.tolist(),
            },
            schema_overrides={"time": pl.Float64, "verdict": pl.String},
        ).fill_nan(None)

    def decomposition(self, interval_kind: IntervalKind = "percentile") -> pl.DataFrame:
        """The raw gap ``naive - observed`` split into ``patient_mix = naive -
        transported`` and ``residual = transported - observed``, per estimand, with
        intervals (bootstrap; without one, Wald for the raw gap and the residual, whose
        two terms come from independent cohorts, and none for the patient mix)."""
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
                "raw_gap": _wald(
                    comps["raw_gap"], parts["naive"]["se"], parts["observed"]["se"], self.ci_level
                ),
                "patient_mix": (nan, nan, nan),
                "residual": _wald(
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
        return self._results[key]

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


def _rmst(curve: SurvivalCurve | ModelCurve, tau: float) -> Estimate:
    # transport() has already warned once when tau reaches past follow-up
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return curve.rmst(tau)


def _wald(
    diff: np.ndarray, se1: np.ndarray, se2: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = float(norm.ppf(0.5 + level / 2.0))
    se = np.sqrt(se1**2 + se2**2)
    return se, diff - z * se, diff + z * se


def _boot_ratio(
    r_t: np.ndarray,
    r_o: np.ndarray,
    ratio: np.ndarray,
    kind: IntervalKind,
    level: float,
    ok: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _wald_log_ratio(
    a: np.ndarray, b: np.ndarray, se_a: np.ndarray, se_b: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = float(norm.ppf(0.5 + level / 2.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        se_log = np.sqrt((se_a / a) ** 2 + (se_b / b) ** 2)
        r = a / b
        return se_log, r * np.exp(-z * se_log), r * np.exp(z * se_log)
