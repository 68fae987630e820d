"""``ShippedResult``: a shipped model's g-formula in the target's environment against the
target's own Kaplan–Meier curve (:class:`~transport.comparison.ComparisonResult`)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from transport.comparison import ComparisonResult, Part, Replicates, curve_estimands
from transport.design import Design
from transport.inference import IntervalKind
from transport.survival.curve import SurvivalCurve
from transport.survival.model_curve import ModelCurve

__all__ = ["ShippedFrom", "ShippedResult"]


class ShippedFrom(Protocol):
    """What a result keeps of the shipped model it came from."""

    @property
    def source(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def released(self) -> bool: ...
    @property
    def n(self) -> float: ...
    @property
    def n_boot(self) -> int: ...
    @property
    def boot_kind(self) -> str | None: ...
    @property
    def grid_step(self) -> float: ...
    @property
    def time_unit(self) -> str: ...
    @property
    def design(self) -> Design: ...


class ShippedResult(ComparisonResult):
    """The shipped model's g-formula in the target, the target's observed curve, and their
    comparison (returned by :meth:`ShippedModel.apply`; releasable through the gate).

    Attributes
    ----------
    source, target, model_kind, time_unit
        Names, the model and the time unit.
    transported
        :class:`~transport.survival.model_curve.ModelCurve` of the g-formula on the
        shipped grid.
    observed
        The target's Kaplan–Meier :class:`~transport.SurvivalCurve`.
    times, tau, estimands, ci_level
        Settings and the rows of :meth:`summary`.
    draws
        ``n_boot`` x ``2k`` bootstrap replicates (transported, then observed estimands),
        or ``None``.
    contributors, row_contributors, log_hazard_spread
        What the target's gate rules on, computed from the target's rows when the model
        was applied (aggregates, never a row's value): the effective number of target
        patients behind the transported S at each grid time and behind each summary row
        (the smallest over the estimate and its replicates;
        :func:`~transport.policy.effective_contributors`), and the spread of the model's
        linear predictor over the target's rows (rule ``model_bounds``; the widest over
        the estimate and its replicates).
    """

    method = "gformula"
    margin_hint = "apply()"

    def __init__(
        self,
        *,
        model: ShippedFrom,
        target: str,
        n_target: int,
        times: np.ndarray,
        tau: float | None,
        estimands: list[tuple[str, float | None]],
        transported: ModelCurve,
        transported_values: np.ndarray,
        observed: SurvivalCurve,
        draws: np.ndarray | None,
        failed_rows: np.ndarray | None,
        ci_level: float,
        margins: np.ndarray,
        contributors: np.ndarray,
        row_contributors: np.ndarray,
        log_hazard_spread: float,
    ) -> None:
        self.source = model.source
        self.name = model.source
        self.target = target
        self.model_kind = model.kind
        self.model_released = model.released
        self.n_source = model.n
        self.n_target = n_target
        self.n_boot = model.n_boot
        self.boot_kind = model.boot_kind
        self.grid_step = model.grid_step
        self.time_unit = model.time_unit
        self.covariates = model.design.covariates
        self.times = times
        self.tau = tau
        self.estimands = estimands
        self.transported = transported
        self._tr = np.asarray(transported_values, dtype=np.float64)
        self.observed = observed
        self.draws = draws
        self._failed_rows = failed_rows
        self.ci_level = ci_level
        self.margins = margins
        self.contributors = np.asarray(contributors, dtype=np.float64)
        self.row_contributors = np.asarray(row_contributors, dtype=np.float64)
        self.log_hazard_spread = float(log_hazard_spread)

    @property
    def method_label(self) -> str:
        return f"gformula (shipped {self.model_kind})"

    @property
    def failed(self) -> int:
        """Replicates without an estimate (a source refit that failed); a replicate whose
        median is not reached (``nan``) has not failed."""
        if self._failed_rows is None:
            return 0
        return int(np.sum(self._failed_rows))

    def _parts(self) -> dict[str, Part]:
        nan = np.full(self.k, np.nan)
        return {
            "transported": {"value": self._tr, "se": nan, "lower": nan, "upper": nan},
            "observed": curve_estimands(self.observed, self.times, self.tau, quiet=False),
        }

    def _replicates(self) -> Replicates | None:
        if self.draws is None or self._failed_rows is None:
            return None
        k = self.k
        curves = {"transported": self.draws[:, :k], "observed": self.draws[:, k:]}
        return Replicates(curves, ~self._failed_rows, self.n_boot, self.failed)

    def _ci_methods(self, kind: IntervalKind) -> list[str]:
        if self.draws is None:
            return ["none (ship the model with n_boot)"] * self.k
        failed = f"; {self.failed} replicates failed" if self.failed else ""
        source = (
            "shipped source refits"
            if self.boot_kind == "refits"
            else "parametric draws from the shipped bootstrap covariance"
        )
        label = f"bootstrap-{kind} ({self.n_boot} {source} x target resamples{failed})"
        return [label] * self.k

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: settings, the summary table and the curves (in the target's
        environment; export goes through ``tp.disclosure.release``)."""
        return {
            "source": self.source,
            "target": self.target,
            "model": self.model_kind,
            "time_unit": self.time_unit,
            "times": self.times.tolist(),
            "tau": self.tau,
            "ci_level": self.ci_level,
            "summary": self.summary().to_dicts(),
            "transported": self.transported.to_dict(),
            "observed": self.observed.to_dict(),
        }

    def __repr__(self) -> str:
        boot = f", {self.n_boot} bootstrap replicates" if self.n_boot else ""
        return (
            f"ShippedResult({self.source!r} -> {self.target!r}, shipped {self.model_kind}, "
            f"{self.k} estimands{boot})"
        )
