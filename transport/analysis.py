"""``transport()``: the package's main job.

It checks the options once, runs one analysis per target and returns a
:class:`~transport.TransportResult` (or :class:`~transport.TransportResults` for several
targets). Each analysis fits the method's estimator from the registry
(:data:`~transport.estimators.ESTIMATORS`, one fit protocol), the source's naive and the
target's observed Kaplan–Meier curves, and, with ``n_boot``, the bootstrap of
:mod:`transport.inference`: source and target resampled separately, every model refitted,
replicate ``b`` seeded by the ``b``-th child of the seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from transport._validate import (
    ESTIMANDS,
    OPTION_CHOICES,
    check_choice,
    check_ci_level,
    check_margins,
    check_n_boot,
    check_n_jobs,
    check_progress,
    check_seed,
    check_tau,
    check_times,
    check_window,
)
from transport.assess import curve_distance
from transport.cohort import TIME_UNITS, Cohort, TimeUnit
from transport.estimators import (
    ESTIMATORS,
    Estimator,
    FixedGridKM,
    NaiveEstimator,
    Options,
    OutcomeModel,
    read_curve,
)
from transport.exceptions import (
    DataError,
    ExtrapolationWarning,
    PositivityWarning,
    TransportWarning,
)
from transport.inference import BootstrapDraws, Progress, Seed, resample_counts, run_bootstrap
from transport.methods import (
    SUMMARY_METHODS,
    Method,
    MethodInfo,
    check_method,
    idle_options,
    options_read,
)
from transport.result import Target, TransportResult, TransportResults
from transport.summary import TargetSummary
from transport.survival.curve import kaplan_meier

__all__ = ["transport"]


class _Replicate:
    """One bootstrap replicate: resample counts, then every curve read at the estimands.

    Returns ``[naive (k), transported (k), observed (k), distance, 1]``, or a row of
    ``nan`` when a model could not be refitted: the last column tells a failed replicate
    from one whose estimands are all ``nan`` (medians that no curve reaches)."""

    def __init__(
        self,
        estimator: Estimator,
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


@dataclass(frozen=True)
class _Plan:
    """The options of one analysis, checked once."""

    method: MethodInfo
    times: np.ndarray
    tau: float | None
    window: tuple[float, float] | None
    n_boot: int
    seed: Seed
    n_jobs: int
    progress: Progress
    margin: float | Mapping[str, float] | None
    options: Options


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
    seed: Seed = None,
    n_jobs: int = 1,
    ci_level: float = 0.95,
    progress: Progress = None,
    outcome_model: OutcomeModel = "cox",
    ties: Literal["efron", "breslow"] = "efron",
    moments: Literal[1, 2] = 1,
    censoring: Literal["km", "cox"] = "km",
    window: tuple[float, float] | None = None,
    margin: float | Mapping[str, float] | None = None,
    time_unit: TimeUnit | None = None,
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
        An option the method does not read (``moments`` with ``iow``, ``ties`` with the
        ``pwexp`` model), set away from its default, is refused with a ``ValueError``
        rather than ignored; :func:`transport.methods.options_read` lists those each
        method reads.
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
    time_unit
        The unit of ``times``, ``tau`` and ``window`` (``"days"``, ``"weeks"``,
        ``"months"`` or ``"years"``); default the source's. The cohorts are converted to
        it exactly, so every curve and summary is read in this unit. A hurried
        ``times=[12]`` on a cohort in days asks for S(12 days): say
        ``time_unit="months"`` (a warning points at it when every time asked for lies
        before the source's first 10% of events).

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
    kw = dict(locals())
    del kw["source"], kw["target"], kw["time_unit"]
    if time_unit is not None:
        check_choice(time_unit, "time_unit", tuple(TIME_UNITS))
        if not isinstance(source, Cohort):
            raise TypeError(
                f"The 'source' parameter of transport must be a Cohort. "
                f"Got {type(source).__name__} instead."
            )
        source = source.in_unit(time_unit)
    if isinstance(target, Mapping) or (
        isinstance(target, Sequence) and not isinstance(target, str | bytes)
    ):
        items = (
            list(target.items())
            if isinstance(target, Mapping)
            else [(getattr(t, "name", str(i)), t) for i, t in enumerate(target)]
        )
        names = [str(k) for k, _ in items]
        nested = [(n, t) for n, t in items if not isinstance(t, Cohort | TargetSummary)]
        if nested:  # a list inside the list would give results of results, named by position
            raise TypeError(
                f"The 'target' parameter of transport must be a Cohort, a TargetSummary, or a "
                f"list or dict of them; target(s) {[str(n) for n, _ in nested[:5]]} are not "
                f"(a {type(nested[0][1]).__name__})"
            )
        if not items:
            raise ValueError("The 'target' parameter of transport is an empty list: name a target")
        if len(set(names)) != len(names):
            raise ValueError(f"targets must have distinct names; got {names}")
        results = {name: transport(source, t, **kw) for name, t in items}
        return TransportResults(results)  # type: ignore[arg-type]
    plan = _plan(source, target, **kw)
    return _analyse(source, _same_unit(target, source.time_unit), plan)


def _plan(source: Cohort, target: Target, **kw: Any) -> _Plan:
    """The options checked, in the order a user meets them; names what is wrong."""
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
    info = check_method(kw["method"])
    if isinstance(target, TargetSummary) and not info.summary_target:
        raise DataError(
            f"method {info.name!r} needs the target's rows, but target {target.name!r} is a "
            f"TargetSummary (rule: a summary-only target supports "
            f"{' and '.join(repr(m) for m in SUMMARY_METHODS)}; "
            "ship the outcome model to the target instead)"
        )
    n_boot = check_n_boot(kw["n_boot"])
    ci_level = check_ci_level(kw["ci_level"])
    n_jobs = check_n_jobs(kw["n_jobs"])
    t, tau = check_times(kw["times"], "transport"), check_tau(kw["tau"], "transport")
    check_margins(kw["margin"], ESTIMANDS)  # validate early
    check_seed(kw["seed"])
    check_progress(kw["progress"])
    for name, allowed in OPTION_CHOICES.items():
        check_choice(kw[name], name, allowed)
    _check_options(info, kw)
    if not info.delayed_entry:
        for c in (source, target):
            if isinstance(c, Cohort) and c.entry is not None:
                raise DataError(
                    f"cohort {c.name!r} has delayed entry (column {c.entry!r}; {c.n} rows) "
                    f"(rule: method {info.name!r} needs right-censored data, its outcome "
                    "models have no delayed entry; methods 'naive', 'iow' and 'entropy' "
                    "accept delayed entry)"
                )
    for c in (source, target):
        if isinstance(c, Cohort) and not np.any(c.time_values > 0):
            raise DataError(
                f"cohort {c.name!r} has no follow-up: all {c.n} values of time column "
                f"{c.time!r} are 0 (rule: follow-up after time 0; a curve estimated from no "
                "time at risk is no estimate). Check the column and its unit."
            )
    _warn_past_follow_up(source, _same_unit(target, source.time_unit), tau, t)
    _warn_before_events(source, tau, t)
    if info.model_based and isinstance(target, Cohort):
        _warn_outside_source(source, target, info.name)
    if kw["window"] is None:
        end = tau if tau is not None else (float(t.max()) if t.size else None)
        win = (0.0, end) if end else None
    else:
        win = check_window(kw["window"])
    keys = ("formula", "outcome_formula", "outcome_model", "ties", "moments", "censoring")
    options = Options(**{k: kw[k] for k in keys}, ci_level=ci_level)
    return _Plan(
        info, t, tau, win, n_boot, kw["seed"], n_jobs, kw["progress"], kw["margin"], options
    )


def _check_options(info: MethodInfo, kw: Mapping[str, Any]) -> None:
    """Refuse a formula that is no text, and an option ``info``'s method would ignore
    (``moments=2`` with ``iow``): the user's choice would not be the one used, and
    nothing would say so."""
    for key in ("formula", "outcome_formula"):
        if kw[key] is not None and not isinstance(kw[key], str):
            raise TypeError(
                f"The {key!r} parameter of transport must be a string or None. Got {kw[key]!r:.60}."
            )
    idle = idle_options(info.name, kw)
    if not idle:
        return
    read = options_read(info.name, kw["outcome_model"])
    them = "it" if len(idle) == 1 else "them"
    raise ValueError(
        f"The {', '.join(repr(k) for k in idle)} parameter(s) of transport are not read by "
        f"method {info.name!r}, which reads {list(read) or 'none of the options'} (rule: "
        f"an option the method does not read would be ignored); leave {them} out or choose "
        f"a method that reads {them}"
    )


#: Share of target rows outside the source's covariate ranges above which an outcome
#: model's transport is warned about: for those rows it is an extrapolation.
OUTSIDE_SHARE = 0.01


def _warn_outside_source(source: Cohort, target: Cohort, method: str) -> None:
    """Warn (``PositivityWarning``) when more than :data:`OUTSIDE_SHARE` of the target's
    rows have a continuous covariate outside the source's range: the outcome model
    predicts for them from no source patient like them."""
    src, tgt = source.covariate_frame, target.covariate_frame
    outside = np.zeros(target.n, dtype=bool)
    spans = []
    for v in source.covariates:
        if source.covariate_types.get(v) != "continuous" or v not in tgt.columns:
            continue
        x, y = src[v].to_numpy().astype(float), tgt[v].to_numpy().astype(float)
        out = (y < np.nanmin(x)) | (y > np.nanmax(x))
        if out.any():
            spans.append(f"{v}: source {np.nanmin(x):g} to {np.nanmax(x):g}, {int(out.sum())} rows")
        outside |= out
    share = float(outside.mean()) if target.n else 0.0
    if share > OUTSIDE_SHARE:
        warnings.warn(
            f"{share:.0%} of {target.name!r}'s {target.n} rows lie outside {source.name!r}'s "
            f"covariate ranges ({'; '.join(spans)}): method {method!r} extrapolates its "
            "outcome model for them (rule: positivity). Restrict the target, or compare "
            "with a weighting method, which refuses what it cannot reach.",
            PositivityWarning,
            stacklevel=4,
        )


def _warn_past_follow_up(
    source: Cohort, target: Target, tau: float | None, times: np.ndarray
) -> None:
    last = min(
        float(source.time_values.max()),
        float(target.time_values.max()) if isinstance(target, Cohort) else np.inf,
    )
    beyond = times[times > last]
    if beyond.size:
        warnings.warn(
            f"times {beyond.tolist()} {source.time_unit} lie past the last follow-up time "
            f"{last:g} of {source.name!r} or {target.name!r}: S(t) there is the last "
            "value carried forward, with no data behind it. Choose times within "
            f"follow-up (in {source.time_unit}, the source's unit).",
            ExtrapolationWarning,
            stacklevel=4,
        )
    if tau is None:
        return
    if tau > last:
        warnings.warn(
            f"tau = {tau:g} {source.time_unit} reaches past the last follow-up time "
            f"{last:g} of {source.name!r} or {target.name!r}; the RMSTs carry the last "
            "value forward. Choose tau within follow-up.",
            ExtrapolationWarning,
            stacklevel=4,
        )


#: Share of the source's events before which a request for S(t) and RMST alone is warned
#: about: every time asked for lies where S(t) is still about 1, the mark of a time
#: meant in another unit (``times=[12]`` months on a cohort in days).
EARLY_EVENTS = 0.10


def _warn_before_events(source: Cohort, tau: float | None, times: np.ndarray) -> None:
    asked = np.append(times, [] if tau is None else [tau])
    events = source.time_values[source.event_values == 1]
    if asked.size == 0 or events.size == 0:
        return
    early = float(np.quantile(events, EARLY_EVENTS))
    if float(asked.max()) < early:
        unit = source.time_unit
        warnings.warn(
            f"every time asked for ({', '.join(f'{x:g}' for x in asked)} {unit}) lies "
            f"before {EARLY_EVENTS:.0%} of {source.name!r}'s events (by {early:g} {unit}), "
            f"where S(t) is still about 1: times are in {unit}, the source's unit. "
            "If they were meant in another unit, say so with time_unit= "
            "(e.g. time_unit='months').",
            TransportWarning,
            stacklevel=4,
        )


def _analyse(source: Cohort, target: Target, plan: _Plan) -> TransportResult:
    """One target: the estimator fitted, the naive and observed curves, the bootstrap."""
    o = plan.options
    naive = NaiveEstimator.fit(source, target, o)
    estimator = ESTIMATORS[plan.method.name]
    fitted = naive if estimator is NaiveEstimator else estimator.fit(source, target, o)
    observed = kaplan_meier(target, conf_level=o.ci_level) if isinstance(target, Cohort) else None
    draws = (
        _bootstrap(source, target, plan, fitted.estimator, naive.estimator) if plan.n_boot else None
    )
    return TransportResult(
        method=plan.method.name,
        source=source,
        target=target,
        times=plan.times,
        tau=plan.tau,
        naive=naive.transported,  # type: ignore[arg-type]
        transported=fitted.transported,
        observed=observed,
        weights=fitted.weights,
        bootstrap=draws,
        ci_level=o.ci_level,
        window=plan.window,
        margin=plan.margin,
    )


def _bootstrap(
    source: Cohort, target: Target, plan: _Plan, estimator: Estimator, naive: Estimator
) -> BootstrapDraws:
    rows = isinstance(target, Cohort)
    rep = _Replicate(
        estimator,
        naive,  # type: ignore[arg-type]
        FixedGridKM(target.time_values, target.event_values, target.entry_values)
        if isinstance(target, Cohort)
        else None,
        source.n,
        target.n if rows else None,
        plan.times,
        plan.tau,
        plan.window if rows else None,
    )
    method = plan.method.name
    draws = run_bootstrap(
        rep,
        plan.n_boot,
        plan.seed,
        n_jobs=plan.n_jobs,
        progress=plan.progress,
        label=f"bootstrap {source.name} -> {target.name} ({method})",
    )
    if draws.failed:
        warnings.warn(
            f"{draws.failed} of {draws.n_boot} bootstrap replicates of {method} "
            f"({source.name} -> {target.name}) could not be refitted (a model without a "
            "finite estimate in the resample, e.g. separation or a level left out) and "
            "are left out of the intervals; see summary()['n_boot_failed']",
            TransportWarning,
            stacklevel=4,
        )
    return draws


def _same_unit(target: Target, unit: str) -> Target:
    if isinstance(target, Cohort):
        return target if target.time_unit == unit else target.in_unit(unit)  # type: ignore[arg-type]
    return target
