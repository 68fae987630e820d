"""``ShippedModel``: a source outcome model made to travel, and its g-formula in the
target's environment (the package docstring of :mod:`transport.shipping` gives the
estimand, the inference and the release rules)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from transport._validate import check_ci_level, check_margins, check_n_boot, check_tau, check_times
from transport.cohort import Cohort
from transport.comparison import estimand_rows
from transport.design import Design
from transport.document import read_json
from transport.exceptions import DataError
from transport.inference import Progress, Seed
from transport.policy import (
    Policy,
    check_log_hazard_spread,
    effective_contributors,
    verify_release,
)
from transport.shipping.bootstrap import MAX_SHIPPED_BOOT, BootstrapSummary, check_shipped_boot
from transport.shipping.checks import (
    field_problems,
    log_hazard_spread,
    number_problems,
    shape_problems,
)
from transport.shipping.codec import MODEL_FILE, construct, model_fields, model_to_dict
from transport.shipping.result import ShippedResult
from transport.shipping.source import fit_fields, source_bootstrap
from transport.shipping.target import TARGET_STREAM, row_contributors, target_replicates
from transport.staging import write_file
from transport.survival._average import AveragedCurve, cox_hazards, pwexp_hazards
from transport.survival.curve import kaplan_meier
from transport.survival.model_curve import ModelCurve

__all__ = ["TARGET_STREAM", "ModelKind", "ShippedModel", "in_unit"]

ModelKind = Literal["cox", "pwexp"]


class ShippedModel:
    """A source outcome model made to travel: everything the g-formula needs in the target's
    environment, and nothing at the level of a patient.

    Build it in the source's environment with :meth:`fit`; release it with
    ``tp.disclosure.release(model, directory, policy)``; in the target's environment read it
    with :meth:`from_release` (or :meth:`from_json`) and call :meth:`apply`. The module
    docstring gives the estimand, the inference and the release rules.

    Attributes
    ----------
    kind
        ``"cox"`` or ``"pwexp"``.
    source, time_unit
        The source cohort's name and time unit (times given to :meth:`apply` are in it).
    design
        The :class:`~transport.Design` rebuilt from the shipped spec (no source rows).
    names, coef, cov
        Coefficient names, estimates and covariance (inverse information).
    grid, grid_step
        The times the curve is given at (the policy's fixed grid; after release, its
        released part) and the grid spacing.
    hazard, center, ties
        Cox: baseline cumulative hazard at ``grid`` for covariates equal to ``center``
        (Breslow, or its Efron analogue, as R's ``survfit.coxph``), and the ties method.
        ``center`` is the design columns' source means; once released, those means on a
        lattice, the baseline rescaled to it (rule ``centre_lattice``).
    breaks, shift, time_varying
        Piecewise exponential: interior cut points (on the grid), ``log m_k - center`` of
        each interval, and whether the log hazard ratios change with log time.
    n, n_events, n_params
        Patients, events and coefficients of the fit (counts rounded once released).
    level_counts, column_counts, column_binary, column_concentration, column_scale
        What the gate's cell and dominance rules check at release and then leave out:
        source patients per level, per design column, the largest contributions to
        each column's mean and SD (:func:`~transport.summary.concentration`), and each
        column's SD (the lattice the released Cox ``center`` is rounded to, rule
        ``centre_lattice``); ``None`` once released.
    n_boot, boot_failed
        Bootstrap refits drawn at the source and how many of them failed.
    boot_coef, boot_extra, boot_entropy
        In the source's own process only: the refits (coefficients; baselines or
        shifts) and their seed's entropy. Never released.
    boot_summary
        A released model's bootstrap (:class:`~transport.shipping.bootstrap.BootstrapSummary`:
        the covariance of the refits' parameters, their SEs and percentile limits), from
        which the target draws its replicates.
    released
        Whether this model passed the gate (its counts are then rounded and the
        per-level counts the gate needs are gone, so it cannot be released again).

    Examples
    --------
    >>> import transport as tp
    >>> us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    >>> model = tp.ShippedModel.fit(us)  # in the source's environment
    >>> model.grid[:3]  # the baseline is kept on the policy's monthly grid
    array([30.4375, 60.875 , 91.3125])
    >>> res = model.apply(jp, times=[365.25], tau=730.5)  # in the target's environment
    >>> res.summary()["transported"].round(3).to_list()
    [0.457, 322.57, 372.19]
    """

    def __init__(
        self,
        *,
        kind: ModelKind,
        source: str,
        time_unit: str,
        design: Mapping[str, Any],
        names: tuple[str, ...],
        coef: np.ndarray,
        cov: np.ndarray,
        grid: np.ndarray,
        grid_step: float,
        grid_counts: Mapping[str, np.ndarray],
        n: float,
        n_events: float,
        hazard: np.ndarray | None = None,
        center: np.ndarray | None = None,
        ties: str = "efron",
        breaks: np.ndarray | None = None,
        shift: np.ndarray | None = None,
        time_varying: bool = False,
        interval_counts: Mapping[str, np.ndarray] | None = None,
        level_counts: Mapping[str, Mapping[str, float]] | None = None,
        column_counts: np.ndarray | None = None,
        column_binary: np.ndarray | None = None,
        column_concentration: np.ndarray | None = None,
        column_scale: np.ndarray | None = None,
        boot_coef: np.ndarray | None = None,
        boot_extra: np.ndarray | None = None,
        boot_entropy: str | None = None,
        boot_summary: BootstrapSummary | None = None,
        released: bool = False,
        policy: str = "default",
    ) -> None:
        if kind not in ("cox", "pwexp"):
            raise ValueError(
                f"The 'kind' of a shipped model must be 'cox' or 'pwexp'. Got {kind!r}."
            )
        self.kind: ModelKind = kind
        self.source = source
        self.name = source
        self.time_unit = time_unit
        self.design_spec = dict(design)
        self.design = Design.from_dict(design)
        self.names = tuple(names)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.cov = np.asarray(cov, dtype=np.float64)
        self.grid = np.asarray(grid, dtype=np.float64)
        self.grid_step = float(grid_step)
        self.grid_counts = {k: np.asarray(v, dtype=np.float64) for k, v in grid_counts.items()}
        self.n = float(n)
        self.n_events = float(n_events)
        self.hazard, self.center = _floats(hazard), _floats(center)
        self.ties = ties
        self.breaks, self.shift = _floats(breaks), _floats(shift)
        self.time_varying = bool(time_varying)
        self.interval_counts = (
            None
            if interval_counts is None
            else {k: np.asarray(v, dtype=np.float64) for k, v in interval_counts.items()}
        )
        self.level_counts = (
            None
            if level_counts is None
            else {
                str(v): {str(k): float(c) for k, c in lv.items()} for v, lv in level_counts.items()
            }
        )
        self.column_counts, self.column_scale = _floats(column_counts), _floats(column_scale)
        self.column_binary = None if column_binary is None else np.asarray(column_binary, bool)
        self.column_concentration = _floats(column_concentration)
        self.boot_coef, self.boot_extra = _floats(boot_coef), _floats(boot_extra)
        self.boot_entropy = boot_entropy
        self.boot_summary = boot_summary
        self.released = bool(released)
        self.policy = policy
        self._check()

    def _check(self) -> None:
        """Shapes agree and the numbers are those of a fitted model (a file edited by
        hand, say, is refused with the field named: rule ``model_bounds``)."""
        problems = shape_problems(self) or field_problems(self)
        if problems:
            raise DataError(
                f"shipped model of {self.source!r} is inconsistent: " + "; ".join(problems)
            )
        if self.n_boot:  # the target runs this many replicates of its rows
            check_shipped_boot(self.n_boot, f"shipped model of {self.source!r}")
        if self.released and self.boot_coef is not None:
            raise DataError(
                f"shipped model of {self.source!r} claims to be released but carries "
                f"{self.n_boot} per-replicate refits (rule: bootstrap_summary; the gate "
                "releases a bootstrap as its summary, never the refits): it was edited"
            )
        problems = number_problems(self)
        if problems:
            raise DataError(
                f"shipped model of {self.source!r} has numbers no fitted model has: "
                + "; ".join(problems)
                + " (rule: model_bounds; a model is checked where it is applied)"
            )

    # -- building it in the source ---------------------------------------------------------
    @classmethod
    def fit(
        cls,
        source: Cohort,
        formula: str | None = None,
        *,
        model: ModelKind = "cox",
        ties: Literal["efron", "breslow"] = "efron",
        breaks: Any = None,
        time_varying: bool = True,
        n_boot: int = 0,
        seed: int | np.random.SeedSequence | None = None,
        n_jobs: int = 1,
        policy: Policy | None = None,
    ) -> ShippedModel:
        """Fit the outcome model in the source's environment and keep what travels.

        Parameters
        ----------
        source
            The source :class:`~transport.Cohort` (right-censored; no delayed entry).
        formula
            Right-hand side of the outcome design (default main effects).
        model, ties
            ``"cox"`` (with ``ties`` "efron", as R's ``coxph``, or "breslow") or
            ``"pwexp"`` (piecewise exponential, :class:`PiecewiseExponentialModel`).
        breaks, time_varying
            ``pwexp`` only: ``None`` (10 intervals at event-time quantiles), a number of
            intervals, or cut points; **snapped to the policy's grid** and merged until
            every interval has ``min_km_step`` events and starts with ``min_cell``
            patients at risk, so that no cut point is an event time; the model is fitted
            on the snapped cut points. ``time_varying`` as in the model.
        n_boot, seed, n_jobs
            Bootstrap refits on resamples of the source, shipped so that the target can
            give intervals carrying the source model's uncertainty (0: none; otherwise 2
            to ``MAX_SHIPPED_BOOT``, 10,000: the target runs one replicate per refit).
            Replicate ``b`` uses child ``b`` of ``SeedSequence(seed)``; the same for any
            ``n_jobs``.
        policy
            The :class:`~transport.disclosure.Policy` whose grid the baseline is kept on
            (release with the same policy).

        Raises
        ------
        DataError
            The model cannot be fitted (see :class:`CoxModel`), or its design cannot be
            rebuilt from its spec.
        """
        policy = Policy() if policy is None else policy
        if not isinstance(source, Cohort):
            raise TypeError(
                "The 'source' parameter of ShippedModel.fit must be a Cohort. "
                f"Got {type(source).__name__} instead."
            )
        if not isinstance(policy, Policy):
            raise TypeError(
                "The 'policy' parameter must be a transport.disclosure.Policy. "
                f"Got {type(policy).__name__} instead."
            )
        if model not in ("cox", "pwexp"):
            raise ValueError(f"The 'model' parameter must be 'cox' or 'pwexp'. Got {model!r}.")
        if check_n_boot(n_boot) > MAX_SHIPPED_BOOT:
            raise ValueError(
                f"The 'n_boot' parameter of ShippedModel.fit must be at most {MAX_SHIPPED_BOOT} "
                f"(MAX_SHIPPED_BOOT: the most replicates a target runs for a shipped model). "
                f"Got {n_boot!r}."
            )
        if source.entry is not None:
            raise DataError(
                f"cohort {source.name!r} has delayed entry (column {source.entry!r}; "
                f"{source.n} rows) (rule: a shipped outcome model is fitted to "
                "right-censored data only)"
            )
        fields, X = fit_fields(source, formula, model, ties, breaks, time_varying, policy)
        out = cls(**fields)
        if n_boot:
            out.boot_coef, out.boot_extra, out.boot_entropy = source_bootstrap(
                out, source, X, int(n_boot), seed, n_jobs
            )
        return out

    # -- properties ----------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        """Number of coefficients (the residual degrees of freedom are events minus it)."""
        return int(self.coef.size)

    @property
    def n_boot(self) -> int:
        """Bootstrap refits drawn at the source (failed ones included)."""
        if self.boot_coef is not None:
            return int(self.boot_coef.shape[0])
        return 0 if self.boot_summary is None else self.boot_summary.n_boot

    @property
    def boot_failed(self) -> int:
        """Bootstrap refits that did not converge (rows of ``nan``)."""
        if self.boot_coef is not None:
            return int(np.sum(~np.all(np.isfinite(self.boot_coef), axis=1)))
        return 0 if self.boot_summary is None else self.boot_summary.failed

    @property
    def boot_kind(self) -> str | None:
        """Where the target's replicates come from: ``"refits"`` (the source's, in its
        own process), ``"parametric"`` (draws from a released model's bootstrap
        summary) or ``None``."""
        if self.boot_coef is not None:
            return "refits"
        return None if self.boot_summary is None else "parametric"

    @property
    def estimand(self) -> str:
        return (
            "S_T(t) = mean over target patients of S_source(t | x_i), the g-formula "
            "(Dahabreh et al. 2020)"
        )

    # -- predicting ------------------------------------------------------------------------
    def knots(self) -> np.ndarray:
        """The times the patients' cumulative hazards are kept at (the grid, and a
        piecewise exponential model's cut points within it)."""
        if self.kind == "cox" or self.breaks is None:
            return self.grid
        inner = self.breaks[self.breaks < self.grid[-1]]
        return np.union1d(self.grid, inner)

    def hazards(
        self, X: np.ndarray, coef: np.ndarray | None = None, extra: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Cumulative hazards of the rows of ``X`` at :meth:`knots` with the full-data
        fit, or with replicate coefficients ``coef`` and baseline or shifts ``extra``
        (``None`` if they are not finite)."""
        coef = self.coef if coef is None else coef
        if not np.all(np.isfinite(coef)) or (extra is not None and not np.all(np.isfinite(extra))):
            return None
        if self.kind == "cox":
            assert self.center is not None and self.hazard is not None
            return cox_hazards(X, coef, self.center, self.hazard if extra is None else extra)
        assert self.breaks is not None and self.shift is not None
        shift = self.shift if extra is None else extra
        return pwexp_hazards(X, coef, shift, self.breaks, self.time_varying, self.knots())

    def log_hazard_spread(
        self, X: np.ndarray, coef: np.ndarray | None = None, extra: np.ndarray | None = None
    ) -> float:
        """``max(lp) - min(lp)`` over the rows of ``X``: the log hazard ratio between
        the highest- and lowest-risk rows (a piecewise exponential model with
        time-varying effects: the widest over its intervals). Rule ``model_bounds``."""
        return log_hazard_spread(self, X, self.coef if coef is None else coef, extra)

    def check_bounds(self, X: np.ndarray, policy: Policy | None, where: str) -> None:
        """Refuse (``model_bounds``: :func:`~transport.policy.check_log_hazard_spread`)
        to apply the model to rows ``X`` over which its linear predictor spreads wider
        than the policy's ``max_log_hazard_ratio``."""
        policy = Policy() if policy is None else policy
        if not isinstance(policy, Policy):
            raise TypeError(
                "The 'policy' parameter must be a transport.disclosure.Policy. "
                f"Got {type(policy).__name__} instead."
            )
        check_log_hazard_spread(self.log_hazard_spread(X), policy, where)

    def _matrix(self, cohort: Cohort) -> np.ndarray:
        if not isinstance(cohort, Cohort):
            raise TypeError(
                f"The 'target' parameter must be a Cohort. Got {type(cohort).__name__} instead."
            )
        return self.design.matrix(cohort)

    def _check_times(self, times: np.ndarray, what: str) -> None:
        last = float(self.grid[-1])
        bad = times[(times > last * (1 + 1e-12)) | (times < 0) | ~np.isfinite(times)]
        if bad.size:
            raise DataError(
                f"{what} {bad.tolist()} lie outside the shipped curve of {self.source!r}, which "
                f"ends at {last:g} {self.time_unit} (rule: times within (0, {last:g}]: the "
                "baseline stops where the source's risk set or its steps allowed)"
            )

    def _curve(self, cohort: Cohort, times: Any, policy: Policy | None) -> tuple[Any, Any]:
        t = np.atleast_1d(np.asarray(times, dtype=np.float64))
        cohort = in_unit(cohort, self.time_unit)
        self._check_times(t, "times")
        X = self._matrix(cohort)
        self.check_bounds(X, policy, f"cohort {cohort.name!r}")
        H = self.hazards(X)
        assert H is not None
        return AveragedCurve(self.knots(), H), t

    def predict_survival(
        self, cohort: Cohort, times: Any, *, policy: Policy | None = None
    ) -> np.ndarray:
        """Each patient's ``S(t | x_i)`` from the shipped model: patients x times (the
        Cox baseline read with a constant hazard between grid times). Refused
        (``model_bounds``) when the model's linear predictor spreads over ``cohort``'s
        rows wider than ``policy``'s ``max_log_hazard_ratio``."""
        curve, t = self._curve(cohort, times, policy)
        return np.exp(-curve.hazard_at(t))

    def marginal_survival(
        self, cohort: Cohort, times: Any, *, policy: Policy | None = None
    ) -> np.ndarray:
        """The g-formula: the average of :meth:`predict_survival` over ``cohort``
        (refused likewise)."""
        curve, t = self._curve(cohort, times, policy)
        return np.asarray(curve.survival(t), dtype=np.float64)

    # -- applying it in the target ---------------------------------------------------------
    def apply(
        self,
        target: Cohort,
        *,
        times: Any = None,
        tau: float | None = None,
        margin: float | Mapping[str, float] | None = None,
        seed: Seed = None,
        ci_level: float = 0.95,
        n_jobs: int = 1,
        progress: Progress = None,
        policy: Policy | None = None,
    ) -> ShippedResult:
        """Run the g-formula on the target's rows, inside the target's environment.

        Estimand: ``S_T(t) = (1 / n_T) sum_i S_source(t | x_i)`` over the target's
        patients (Dahabreh et al. 2020), with its median and RMST(tau), against the
        target's own Kaplan–Meier curve.

        Parameters
        ----------
        target
            The target :class:`~transport.Cohort` (converted to the model's time unit if
            needed; right-censored).
        times, tau
            Times for S(t) and the RMST horizon, in the model's time unit, at most the
            last time of the shipped curve (:attr:`grid`).
        margin
            Equivalence margin(s), as in :func:`~transport.transport`.
        seed
            Seeds the target's replicates, one per source refit: replicate ``b`` uses
            ``SeedSequence(seed, spawn_key=(TARGET_STREAM, b))``, never a child the
            source's refits used, so that the two resamples are independent even with
            the seed given to :meth:`fit`. From it, the target's resample, then (for a
            released model) the parametric draw of the model's parameters.
        ci_level
            Nominal coverage of the intervals.
        n_jobs, progress
            Worker processes for the bootstrap and its progress reporting, as in
            :func:`~transport.transport` (the same numbers for any ``n_jobs``).
        policy
            The target's :class:`~transport.disclosure.Policy` (default the defaults):
            its ``max_log_hazard_ratio`` bounds the model's linear predictor over the
            target's rows (rule ``model_bounds``), for the estimate and every replicate.

        Raises
        ------
        DataError
            A covariate of the design is missing, of another type or has a level the
            source never saw (named with its rows); the target has delayed entry; a time
            lies past the shipped curve.
        DisclosureError
            The model, or a replicate drawn from its bootstrap summary, spreads its
            linear predictor wider than ``max_log_hazard_ratio`` over the target's rows
            (rule ``model_bounds``).
        """
        if not isinstance(target, Cohort):
            raise TypeError(
                "The 'target' parameter of apply must be a Cohort. "
                f"Got {type(target).__name__} instead."
            )
        if target.entry is not None:
            raise DataError(
                f"cohort {target.name!r} has delayed entry (column {target.entry!r}; "
                f"{target.n} rows) (rule: the shipped g-formula needs right-censored data)"
            )
        check_ci_level(ci_level)
        t = check_times(times, "ShippedModel.apply")
        self._check_times(t, "times")
        tau_ = check_tau(tau, "ShippedModel.apply")
        if tau_ is not None:
            self._check_times(np.array([tau_]), "tau")
        estimands = estimand_rows(t, tau_)
        margins = check_margins(margin, [e for e, _ in estimands])
        target = in_unit(target, self.time_unit)
        X = self._matrix(target)
        policy = Policy() if policy is None else policy
        self.check_bounds(X, policy, f"target {target.name!r}")
        H = self.hazards(X)
        assert H is not None
        knots = self.knots()
        curve = AveragedCurve(knots, H)
        on_grid = np.isin(knots, self.grid)
        transported = ModelCurve(
            self.grid,
            curve.at_knots()[on_grid],
            method="gformula",
            name=f"{self.source} -> {target.name}",
            time_unit=self.time_unit,
            note=f"average over the target of the shipped {self.kind} model's predictions",
        )
        rows = row_contributors(curve, t, tau_)
        spread = self.log_hazard_spread(X)
        draws = failed = None
        if self.n_boot:
            boot = target_replicates(self, target, X, t, tau_, seed, n_jobs, progress)
            k = len(estimands)
            draws, failed = boot[:, : 2 * k], np.isnan(boot[:, -1])
            if np.any(~failed):
                rows = np.minimum(rows, np.min(boot[~failed, 2 * k : 3 * k], axis=0))
                spread = max(spread, float(np.max(boot[~failed, -2])))
            if self.boot_kind == "parametric":  # draws from what another environment sent
                check_log_hazard_spread(spread, policy, f"target {target.name!r}")
        return ShippedResult(
            model=self,
            target=target.name,
            n_target=target.n,
            times=t,
            tau=tau_,
            estimands=estimands,
            transported=transported,
            transported_values=curve.read(t, tau_),
            observed=kaplan_meier(target, conf_level=float(ci_level)),
            draws=draws,
            failed_rows=failed,
            ci_level=float(ci_level),
            margins=margins,
            contributors=effective_contributors(np.exp(-curve.H[:, 1:][:, on_grid])),
            row_contributors=rows,
            log_hazard_spread=spread,
        )

    # -- JSON --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: every field, numbers as floats, no patient-level values."""
        return model_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShippedModel:
        """The model from :meth:`to_dict` (a released one included)."""
        return construct(cls, model_fields(data))

    def to_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON (in the source's environment; export goes through
        ``tp.disclosure.release``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        write_file(path, text.encode(), "shipped model file")

    @classmethod
    def from_json(cls, path: str | Path) -> ShippedModel:
        """Read a model written by :meth:`to_json` or released by the gate."""
        return cls.from_dict(read_json(Path(path), "shipped model"))

    @classmethod
    def from_release(
        cls, directory: str | Path, key_file: str | Path | None = None
    ) -> ShippedModel:
        """Read a released model: the directory is checked against its manifest and its
        content audited first (:func:`~transport.policy.verify_release`, as a release
        from another environment: its signature is checked with ``key_file``, a key the
        two environments share, when one is given)."""
        directory = Path(directory)
        manifest = verify_release(directory, key_file, environment=False)
        if manifest.get("object") != "ShippedModel":
            raise DataError(
                f"release {str(directory)!r} holds a {manifest.get('object')!r}, not a ShippedModel"
            )
        return cls.from_json(directory / MODEL_FILE)

    def __repr__(self) -> str:
        boot = f", {self.n_boot} bootstrap refits" if self.n_boot else ""
        state = "released" if self.released else "not released"
        return (
            f"ShippedModel({self.source!r}: {self.kind}, {len(self.design.columns)} columns, "
            f"grid of {self.grid.size} times to {self.grid[-1]:g} {self.time_unit}{boot}; "
            f"{state})"
        )


def _floats(x: Any) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64)


def in_unit(cohort: Cohort, unit: str) -> Cohort:
    """``cohort`` in time ``unit`` (converted exactly when it is in another)."""
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected a Cohort; got {type(cohort).__name__}")
    return cohort if cohort.time_unit == unit else cohort.in_unit(unit)  # type: ignore[arg-type]
