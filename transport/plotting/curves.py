"""Figures of survival curves: one Kaplan–Meier curve with its numbers at risk, a
transport's three curves, every method's curves for one target, the forest plot of
differences and the gap decompositions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from transport._validate import check_axes, check_flag, check_times
from transport.plotting.protocols import CurveLike

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes
    from matplotlib.typing import ColorType

    from transport.plotting.protocols import ResultLike, StepCurveLike

__all__ = [
    "plot_decomposition",
    "plot_decomposition_methods",
    "plot_forest",
    "plot_survival",
    "plot_transport",
    "plot_transport_methods",
]


def _nice_times(curve: StepCurveLike, k: int = 6) -> np.ndarray:
    from matplotlib.ticker import MaxNLocator

    top = float(curve.time[-1])
    ticks = np.asarray(
        MaxNLocator(nbins=k, steps=[1, 2, 2.5, 3, 5, 6, 10]).tick_values(0.0, top), dtype=float
    )
    return ticks[(ticks >= 0) & (ticks <= top)]


def plot_survival(
    curve: CurveLike,
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

    check_axes(ax)
    check_flag(ci, "ci", "plot")
    check_flag(risk_table, "risk_table", "plot")
    if risk_times is not None:
        risk_times = check_times(risk_times, "plot", name="risk_times").tolist()
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
        _risk_row(ax, curve, times, name, line.get_color())
        ax.set_xticks(times)
    return ax


def _risk_row(ax: Axes, curve: CurveLike, times: np.ndarray, name: str, color: ColorType) -> None:
    """``curve``'s numbers at risk at ``times`` as one row of text under the axis, below
    the rows of the curves drawn on ``ax`` before it (and a header above the first)."""
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
        -0.08, y, name, transform=ax.transAxes, ha="right", va="top", fontsize=8, color=color
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
            color=color,
            clip_on=False,
        )


def plot_transport(
    result: ResultLike, ax: Axes | None = None, *, risk_times: Sequence[float] | None = None
) -> Axes:
    """The source's naive curve, the transported curve and the target's observed curve,
    with bands where each has one and numbers at risk for the Kaplan–Meier curves."""
    import matplotlib.pyplot as plt

    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5))
    risk = list(risk_times if risk_times is not None else _nice_times(result.naive))
    plot_survival(result.naive, ax, risk_times=risk, label=f"{result.source} (naive)", color="0.45")
    tr = result.transported
    label = f"{result.source} transported to {result.target} ({result.method})"
    if isinstance(tr, CurveLike):  # Kaplan–Meier: a band and numbers at risk
        plot_survival(tr, ax, risk_times=risk, label=label, color="C0")
    else:  # model-based: a step of its own, no band, no risk set
        tr.plot(ax, label=label, color="C0")
    if result.observed is not None:
        plot_survival(
            result.observed, ax, risk_times=risk, label=f"{result.target} (observed)", color="C3"
        )
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{result.source} -> {result.target}")
    return ax


def plot_decomposition(result: ResultLike, ax: Axes | None = None) -> Axes:
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
    check_axes(ax)
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
    check_axes(ax)
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


def plot_transport_methods(
    results: Sequence[ResultLike],
    ax: Axes | None = None,
    *,
    risk_times: Sequence[float] | None = None,
    count_label: Callable[[float], str] | None = None,
) -> Axes:
    """One source and target, several methods: the source's naive curve and the target's
    observed curve (with bands), and each method's transported curve on the same axes.

    Numbers at risk are shown for the two Kaplan–Meier curves only, as counts of patients
    passed through ``count_label`` (default: the exact count; the HTML report passes a
    disclosure-rounded label). A summary-only target has no observed curve: its observed
    S(t) at the analysis times, where the summary has them, are drawn as points with
    their intervals. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_transport_methods needs at least one result")
    first = results[0]
    pairs = {(r.source, r.target) for r in results}
    if len(pairs) > 1:
        raise ValueError(f"results must share one source and target; got {sorted(pairs)}")
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5))
    label = count_label if count_label is not None else (lambda n: f"{n:.0f}")
    risk = list(risk_times if risk_times is not None else _nice_times(first.naive))
    observed = next((r.observed for r in results if r.observed is not None), None)
    kms = [(first.naive, f"{first.source} (naive)", "0.45")]
    if observed is not None:
        kms.append((observed, f"{first.target} (observed)", "C3"))
    for curve, name, color in kms:
        plot_survival(curve, ax, label=name, color=color, risk_table=False)
    if observed is None:
        _summary_observed(ax, first)
    _transported_steps(ax, results)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time ({first.time_unit})")
    ax.set_ylabel("Survival probability")
    ax.grid(alpha=0.3)
    _count_rows(ax, kms, risk, label)
    ax.set_xticks(risk)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{first.source} -> {first.target}: every method")
    return ax


def _summary_observed(ax: Axes, result: ResultLike) -> None:
    """A summary-only target's observed S(t) at the analysis times, where its summary
    has them, as points with their intervals."""
    table = result.summary()
    table = table.filter((table["estimand"] == "survival") & table["observed"].is_not_null())
    if table.height:
        t = table["time"].to_numpy()
        s = table["observed"].to_numpy()
        lo = table["observed_ci_lower"].fill_null(np.nan).to_numpy()
        hi = table["observed_ci_upper"].fill_null(np.nan).to_numpy()
        err = np.vstack((s - lo, hi - s))
        ax.errorbar(
            t,
            s,
            yerr=np.where(np.isfinite(err), err, 0.0),
            fmt="s",
            color="C3",
            capsize=3,
            label=f"{result.target} (observed, summary)",
        )


def _transported_steps(ax: Axes, results: Sequence[ResultLike]) -> None:
    """Each method's transported curve as a step, in the method's colour (the naive
    method's is the naive curve, drawn already)."""
    colors = {"iow": "C0", "entropy": "C1", "gformula": "C2", "aipw": "C4"}
    others = iter(["C5", "C6", "C8", "C9"] * len(results))
    for r in results:
        if r.method == "naive":  # its transported curve is the naive curve
            continue
        ax.step(
            np.concatenate(([0.0], r.transported.time)),
            np.concatenate(([1.0], r.transported.survival)),
            where="post",
            color=colors.get(r.method) or next(others),
            label=f"transported ({r.method})",
        )


def _count_rows(
    ax: Axes,
    kms: Sequence[tuple[CurveLike, str, str]],
    risk: Sequence[float],
    label: Callable[[float], str],
) -> None:
    """The unweighted numbers at risk of the Kaplan–Meier curves ``kms`` at ``risk``,
    passed through ``label``, one row per curve under a header below the axis."""
    ax.text(
        -0.08,
        -0.15,
        "Number at risk",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8,
        fontweight="bold",
    )
    trans = ax.get_xaxis_transform()
    for row, (curve, name, color) in enumerate(kms):
        y = -0.21 - 0.06 * row
        ax.text(
            -0.08, y, name, transform=ax.transAxes, ha="right", va="top", fontsize=8, color=color
        )
        counts = curve.risk_table(np.asarray(risk, dtype=float))["n_risk_unweighted"]
        for t, n in zip(risk, counts.to_list(), strict=True):
            ax.text(
                t,
                y,
                label(float(n)),
                transform=trans,
                ha="center",
                va="top",
                fontsize=8,
                color=color,
                clip_on=False,
            )


def plot_decomposition_methods(
    results: Sequence[ResultLike],
    *,
    estimand: str = "survival",
    time: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """One estimand's gap decomposition for several methods of one source and target:
    for each method, bars of the raw gap (naive - observed), the patient mix (naive -
    transported) and the residual (transported - observed), with intervals. ``time``
    picks S(t) (default: the first time). Unlike :func:`plot_decomposition`, every bar
    is on the one estimand's scale."""
    import matplotlib.pyplot as plt
    import polars as pl

    if not results:
        raise ValueError("plot_decomposition_methods needs at least one result")
    tables = [r.decomposition().filter(pl.col("estimand") == estimand) for r in results]
    if time is None and estimand == "survival" and tables[0].height:
        time = float(tables[0]["time"][0])
    if time is not None:
        tables = [t.filter(pl.col("time") == float(time)) for t in tables]
    if any(t.height == 0 for t in tables):
        raise ValueError(f"no rows for estimand {estimand!r} at time {time!r}")
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 1.0 + 0.8 * len(results)))
    comps = ["raw_gap", "patient_mix", "residual"]
    y0 = np.arange(len(results))[::-1].astype(float)
    for j, c in enumerate(comps):
        rows = [t.filter(pl.col("component") == c).fill_null(np.nan) for t in tables]
        val = np.array([r["value"][0] for r in rows], dtype=float)
        lo = np.array([r["ci_lower"][0] for r in rows], dtype=float)
        hi = np.array([r["ci_upper"][0] for r in rows], dtype=float)
        err = np.vstack((val - lo, hi - val))
        ax.barh(
            y0 + (1 - j) * 0.27,
            val,
            height=0.25,
            color=f"C{j}",
            label=c.replace("_", " "),
            xerr=np.where(np.isfinite(err), err, 0.0),
            capsize=2,
        )
    lo_x, hi_x = ax.get_xlim()
    pad = 0.05 * (hi_x - lo_x)
    ax.set_xlim(min(lo_x, -pad), max(hi_x, pad))  # bars end at 0: show both sides of it
    ax.axvline(0.0, color="k", linewidth=0.8)
    ax.set_yticks(y0, [r.method for r in results])
    when = f" at t = {time:g}" if estimand == "survival" else ""
    when = f" to tau = {time:g}" if estimand == "rmst" and time is not None else when
    ax.set_xlabel(f"{estimand}{when}: difference")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="x")
    return ax
