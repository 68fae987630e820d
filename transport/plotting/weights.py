"""Figures of weights: the Love plot of covariate balance, the histogram of the weights
and the overlap of the participation scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from transport._validate import check_axes, is_positive_number

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from transport.plotting.protocols import BalanceLike, WeightsLike

__all__ = ["plot_balance", "plot_overlap", "plot_weights"]


def plot_balance(weights: BalanceLike, ax: Axes | None = None, *, threshold: float = 0.1) -> Axes:
    """Love plot: absolute standardised mean differences before and after weighting, one
    row per design column, with a reference line at ``threshold``."""
    import matplotlib.pyplot as plt

    check_axes(ax)
    if not is_positive_number(threshold):  # nan drew no line; 10**400 overflowed
        raise ValueError(
            f"The 'threshold' parameter of plot_balance must be a positive finite number. "
            f"Got {threshold!r:.40}."
        )
    bal = weights.balance()
    names = bal["covariate"].to_list()
    before = np.abs(bal["smd_before"].to_numpy())
    after = np.abs(bal["smd_after"].to_numpy())
    order = np.argsort(before)
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.32 * len(names) + 1.4))
    y = np.arange(len(names))
    ax.scatter(before[order], y, marker="o", facecolors="none", edgecolors="C3", label="unweighted")
    ax.scatter(after[order], y, marker="o", color="C0", label=f"weighted ({weights.method})")
    ax.axvline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([names[i] for i in order], fontsize=8)
    ax.set_xlabel(f"|SMD| ({weights.source} vs {weights.target})")
    ax.set_xlim(left=0)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_weights(weights: WeightsLike, ax: Axes | None = None, *, bins: int = 50) -> Axes:
    """Histogram of the weights scaled to mean 1 (log scale), with ESS in the title."""
    import matplotlib.pyplot as plt

    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    w = weights.values / weights.values.mean()
    positive = w[w > 0]
    edges = np.geomspace(positive.min(), positive.max(), bins + 1)
    ax.hist(positive, bins=edges.tolist(), color="C0", alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("weight / mean weight")
    ax.set_ylabel("source rows")
    ax.set_title(
        f"{weights.method}: {weights.source} -> {weights.target}, "
        f"ESS {weights.ess:,.0f} of {weights.n:,}",
        fontsize=10,
    )
    return ax


def plot_overlap(
    weights: WeightsLike, ax: Axes | None = None, *, bins: int = 40, min_count: int = 0
) -> Axes:
    """Densities of the balanced participation scores in each cohort (inverse odds), as
    histograms on fixed bins of [0, 1]; a bin of fewer than ``min_count`` rows is not
    drawn (the report passes its policy's ``min_cell``: a bar is a count of patients)."""
    import matplotlib.pyplot as plt

    scores = weights.scores()
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, name in enumerate((weights.source, weights.target)):
        s = scores.filter(scores["cohort"] == name)["score"].to_numpy()
        counts, _ = np.histogram(s, bins=edges)
        counts = np.where(counts < min_count, 0, counts)
        density = counts / (max(s.size, 1) * np.diff(edges))
        ax.hist(
            edges[:-1], bins=edges.tolist(), weights=density, alpha=0.5, color=f"C{i}", label=name
        )
    ax.set_xlabel(f"P({weights.target} | x), balanced")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return ax
