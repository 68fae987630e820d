"""``Weights``: the result of reweighting a source cohort to a target, with diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from transport.design import Design

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Weights", "effective_sample_size"]


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (invariant to scale)."""
    s = float(np.sum(w))
    return s * s / float(np.sum(w * w))


@dataclass(frozen=True, eq=False)
class Weights:
    """Weights that make a source cohort resemble a target in its measured covariates.

    Attributes
    ----------
    values
        One weight per source row, in source row order, unnormalised as the estimator
        defines them unless a normalisation was asked for (every estimate that uses them
        is invariant to their scale).
    method
        ``"iow"`` (inverse odds of participation) or ``"entropy"`` (entropy balancing).
    source, target
        Names of the cohorts.
    design
        The covariate :class:`~transport.design.Design` fitted on the source.
    target_mean, target_sd
        Design-column means and standard deviations (n - 1) of the target.
    details
        Method-specific results (participation model coefficients, scores, solver
        information, what normalisation, truncation or trimming did).
    """

    values: np.ndarray
    method: str
    source: str
    target: str
    design: Design
    target_mean: np.ndarray
    target_sd: np.ndarray
    target_n: int
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ess(self) -> float:
        """Effective sample size of the weighted source: ``(sum w)^2 / sum w^2``."""
        return effective_sample_size(self.values)

    @property
    def n(self) -> int:
        """Number of source rows."""
        return int(self.values.size)

    def summary(self) -> dict[str, float]:
        """Distribution of the weights, on their own scale.

        ``n``, ``ess``, ``ess_share`` (ESS / n), ``min``, quantiles ``q01``, ``q25``,
        ``median``, ``q75``, ``q99``, ``max``, ``max_over_mean`` (scale-free) and
        ``top1_share`` (share of the total weight carried by the heaviest 1% of rows).
        """
        w = self.values
        k = max(1, int(np.ceil(0.01 * w.size)))
        top = np.sort(w)[-k:]
        q = np.quantile(w, [0.01, 0.25, 0.5, 0.75, 0.99])
        return {
            "n": float(w.size),
            "ess": self.ess,
            "ess_share": self.ess / w.size,
            "min": float(w.min()),
            "q01": float(q[0]),
            "q25": float(q[1]),
            "median": float(q[2]),
            "q75": float(q[3]),
            "q99": float(q[4]),
            "max": float(w.max()),
            "max_over_mean": float(w.max() / w.mean()),
            "top1_share": float(top.sum() / w.sum()),
        }

    def balance(self, sd: Literal["target", "pooled"] = "target") -> pl.DataFrame:
        """Covariate balance before and after weighting, one row per design column.

        Columns ``covariate``, ``mean_source``, ``mean_source_weighted``, ``mean_target``,
        ``smd_before``, ``smd_after``. SMD = (source mean - target mean) / SD: by default
        the target's SD (n - 1 denominator); ``sd="pooled"`` uses
        ``sqrt((var_source + var_target) / 2)``, both unweighted. A column with zero SD
        gets SMD 0 when the means agree and infinity otherwise.
        """
        if sd not in ("target", "pooled"):
            raise ValueError(
                f"The 'sd' parameter of Weights.balance must be 'target' or "
                f"'pooled'. Got {sd!r} instead."
            )
        X = self.design.source_matrix
        w = self.values
        mean_s = X.mean(axis=0)
        mean_w = (w @ X) / w.sum()
        mean_t = self.target_mean
        if sd == "target":
            denom = self.target_sd
        else:
            var_s = X.var(axis=0, ddof=1)
            denom = np.sqrt((var_s + self.target_sd**2) / 2.0)

        def smd(diff: np.ndarray) -> np.ndarray:
            # a column constant in the target (a level it lacks, say): 0 when the means agree
            # to rounding, +/- infinity otherwise
            with np.errstate(divide="ignore", invalid="ignore"):
                out = diff / denom
                same = np.abs(diff) <= 1e-9 * (1.0 + np.abs(mean_t))
                return np.where(denom > 0, out, np.where(same, 0.0, np.inf * np.sign(diff)))

        return pl.DataFrame(
            {
                "covariate": list(self.design.columns),
                "mean_source": mean_s,
                "mean_source_weighted": mean_w,
                "mean_target": mean_t,
                "smd_before": smd(mean_s - mean_t),
                "smd_after": smd(mean_w - mean_t),
            }
        )

    def scores(self) -> pl.DataFrame:
        """Participation scores by cohort, for overlap: ``cohort``, ``score``.

        The score is P(target | x) from the participation model on the *balanced* scale
        (as if the two cohorts were the same size), so that 0.5 means "as typical of one
        cohort as of the other". Available for inverse odds weights.
        """
        if "scores_source" not in self.details:
            raise ValueError(f"participation scores are not available for method {self.method!r}")
        s, t = self.details["scores_source"], self.details["scores_target"]
        return pl.DataFrame(
            {
                "cohort": [self.source] * s.size + [self.target] * t.size,
                "score": np.concatenate((s, t)),
            }
        )

    def plot_balance(self, ax: Axes | None = None, *, threshold: float = 0.1) -> Axes:
        """Love plot of |SMD| before and after weighting."""
        from transport.plotting import plot_balance

        return plot_balance(self, ax, threshold=threshold)

    def plot_weights(self, ax: Axes | None = None) -> Axes:
        """Histogram of the weights (scaled to mean 1)."""
        from transport.plotting import plot_weights

        return plot_weights(self, ax)

    def plot_overlap(self, ax: Axes | None = None) -> Axes:
        """Densities of the participation scores by cohort (inverse odds weights)."""
        from transport.plotting import plot_overlap

        return plot_overlap(self, ax)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: method, cohorts, design, summary and balance."""
        return {
            "method": self.method,
            "source": self.source,
            "target": self.target,
            "design": self.design.to_dict(),
            "summary": self.summary(),
            "balance": {
                k: [v if not isinstance(v, float) or np.isfinite(v) else None for v in col]
                for k, col in self.balance().to_dict(as_series=False).items()
            },
        }

    def __repr__(self) -> str:
        return (
            f"Weights({self.method}: {self.source!r} -> {self.target!r}, n = {self.n}, "
            f"ESS = {self.ess:.1f})"
        )
