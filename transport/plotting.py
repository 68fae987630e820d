"""Figures. matplotlib is imported inside each function so the statistics import fast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

    from transport.result import TransportResult
    from transport.survival.curve import SurvivalCurve
    from transport.weighting.weights import Weights

__all__ = [
    "plot_balance",
    "plot_decomposition",
    "plot_forest",
    "plot_overlap",
    "plot_survival",
    "plot_transport",
    "plot_weights",
]


def _nice_times(curve: SurvivalCurve, k: int = 6) -> np.ndarray:
    from matplotlib.ticker import MaxNLocator

    top = float(curve.time[-1])
    ticks = np.asarray(
        MaxNLocator(nbins=k, steps=[1, 2, 2.5, 3, 5, 6, 10]).tick_values(0.0, top), dtype=float
    )
    return ticks[(ticks >= 0) & (ticks <= top)]


def plot_survival(
    curve: SurvivalCurve,
    ax: Axes | None = None,
    *,
    risk_times: Sequence[float] | None = None,
    ci: bool = True,
    label: str | None = None,
    color: str | None = None,
    risk_table: bool = True,
) -> Axes:
    """Step plot of S(t) with its pointwise band and a numbers-at-risk row under the axis.

    For an unweighted curve the risk row shows counts of patients; for a weighted curve
    it shows the weighted risk set, rounded, with the unweighted count in parentheses.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    x = np.concatenate(([0.0], curve.time))
    s = np.concatenate(([1.0], curve.survival))
    name = label if label is not None else curve.name
    (line,) = ax.step(x, s, where="post", label=name, color=color)
    if ci:
        lo = np.concatenate(([1.0], curve.ci_lower))
        up = np.concatenate(([1.0], curve.ci_upper))
        ax.fill_between(x, lo, up, step="post", alpha=0.2, color=line.get_color(), linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time ({curve.time_unit})")
    ax.set_ylabel("Survival probability")
    ax.grid(alpha=0.3)
    if risk_table:
        times = np.asarray(risk_times if risk_times is not None else _nice_times(curve), float)
        table = curve.risk_table(times)
        n = table["n_risk"].to_numpy()
        nu = table["n_risk_unweighted"].to_numpy()
        if curve.weighted:
            texts = [f"{a:.0f}\n({b:.0f})" for a, b in zip(n, nu, strict=True)]
        else:
            texts = [f"{b:.0f}" for b in nu]
        # one row per curve drawn on this Axes, stacked downwards under a header
        row = sum(1 for t in ax.texts if getattr(t, "_transport_risk_row", False))
        if row == 0:
            ax.text(
                -0.08,
                -0.2,
                "Number at risk",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
                fontweight="bold",
            )
        y = -0.27 - (0.12 if curve.weighted else 0.07) * row
        head = ax.text(
            -0.08,
            y,
            name,
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
            color=line.get_color(),
        )
        head._transport_risk_row = True  # type: ignore[attr-defined]
        trans = ax.get_xaxis_transform()
        for t, txt in zip(times, texts, strict=True):
            ax.text(
                t,
                y,
                txt,
                transform=trans,
                ha="center",
                va="top",
                fontsize=8,
                color=line.get_color(),
                clip_on=False,
            )
        ax.set_xticks(times)
    return ax


def plot_balance(weights: Weights, ax: Axes | None = None, *, threshold: float = 0.1) -> Axes:
    """Love plot: absolute standardised mean differences before and after weighting, one
    row per design column, with a reference line at ``threshold``."""
    import matplotlib.pyplot as plt

    bal = weights.balance()
    names = bal["covariate"].to_list()
    before = np.abs(bal["smd_before"].to_numpy())
    after = np.abs(bal["smd_after"].to_numpy())
    order = np.argsort(before)
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


def plot_weights(weights: Weights, ax: Axes | None = None, *, bins: int = 50) -> Axes:
    """Histogram of the weights scaled to mean 1 (log scale), with ESS in the title."""
    import matplotlib.pyplot as plt

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


def plot_overlap(weights: Weights, ax: Axes | None = None, *, bins: int = 40) -> Axes:
    """Densities of the balanced participation scores in each cohort (inverse odds)."""
    import matplotlib.pyplot as plt

    scores = weights.scores()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.8))
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, name in enumerate((weights.source, weights.target)):
        s = scores.filter(scores["cohort"] == name)["score"].to_numpy()
        ax.hist(s, bins=edges.tolist(), density=True, alpha=0.5, color=f"C{i}", label=name)
    ax.set_xlabel(f"P({weights.target} | x), balanced")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return ax


def plot_transport(
    result: TransportResult, ax: Axes | None = None, *, risk_times: Sequence[float] | None = None
) -> Axes:
    """The source's naive curve, the transported curve and the target's observed curve,
    with bands where each has one and numbers at risk for the Kaplan–Meier curves."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5))
    risk = list(risk_times if risk_times is not None else _nice_times(result.naive))
    plot_survival(result.naive, ax, risk_times=risk, label=f"{result.source} (naive)", color="0.45")
    tr = result.transported
    label = f"{result.source} transported to {result.target} ({result.method})"
    if hasattr(tr, "ci_lower"):
        plot_survival(tr, ax, risk_times=risk, label=label, color="C0")  # type: ignore[arg-type]
    else:
        tr.plot(ax, label=label, color="C0")
    if result.observed is not None:
        plot_survival(
            result.observed, ax, risk_times=risk, label=f"{result.target} (observed)", color="C3"
        )
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{result.source} -> {result.target}")
    return ax


def plot_decomposition(result: TransportResult, ax: Axes | None = None) -> Axes:
    """Bars of the raw gap (naive - observed), patient mix (naive - transported) and
    residual (transported - observed) for each estimand, with intervals."""
    import matplotlib.pyplot as plt

    table = result.decomposition().fill_null(np.nan)
    labels = [
        e if t is None or np.isnan(t) else f"{e}({t:g})"
        for e, t in zip(table["estimand"].to_list(), table["time"].to_list(), strict=True)
    ]
    comps = ["raw_gap", "patient_mix", "residual"]
    names = list(dict.fromkeys(labels))
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 1.0 + 0.9 * len(names)))
    val, lo, hi = (table[c].to_numpy() for c in ("value", "ci_lower", "ci_upper"))
    comp = table["component"].to_list()
    y0 = np.arange(len(names))
    for j, c in enumerate(comps):
        rows = [i for i in range(len(comp)) if comp[i] == c]
        y = y0 + (j - 1) * 0.27
        err = np.vstack((val[rows] - lo[rows], hi[rows] - val[rows]))
        ax.barh(
            y,
            val[rows],
            height=0.25,
            label=c.replace("_", " "),
            xerr=np.where(np.isfinite(err), err, 0.0),
            capsize=2,
        )
    ax.axvline(0.0, color="k", linewidth=0.8)
    ax.set_yticks(y0, names)
    ax.set_xlabel("difference (estimand's own scale)")
    ax.legend(fontsize=8)
    ax.set_title(f"Gap decomposition: {result.source} vs {result.target} ({result.method})")
    return ax


def plot_forest(
    summary: pl.DataFrame,
    *,
    estimand: str = "survival",
    time: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Forest plot of transported - observed differences with intervals, one row per
    target and method, for one estimand (and time)."""
    import matplotlib.pyplot as plt
    import polars as pl

    rows = summary.filter(pl.col("estimand") == estimand)
    if time is not None:
        rows = rows.filter(pl.col("time") == float(time))
    elif estimand == "survival" and rows.height:
        rows = rows.filter(pl.col("time") == rows["time"][0])
    if rows.height == 0:
        raise ValueError(f"no rows for estimand {estimand!r} at time {time!r}")
    rows = rows.fill_null(np.nan)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.0 + 0.4 * rows.height))
    d = rows["difference"].to_numpy()
    lo, hi = rows["difference_ci_lower"].to_numpy(), rows["difference_ci_upper"].to_numpy()
    y = np.arange(rows.height)[::-1]
    err = np.vstack((d - lo, hi - d))
    ax.errorbar(d, y, xerr=np.where(np.isfinite(err), err, 0.0), fmt="o", capsize=3)
    ax.axvline(0.0, color="k", linewidth=0.8)
    names = [f"{t} ({m})" for t, m in zip(rows["target"], rows["method"], strict=True)]
    ax.set_yticks(y, names)
    when = "" if estimand != "survival" else f" at t = {rows['time'][0]:g}"
    ax.set_xlabel(f"transported - observed ({estimand}{when})")
    ax.grid(alpha=0.3, axis="x")
    return ax
