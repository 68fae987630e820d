"""Figures. matplotlib is imported inside each function so the statistics import fast."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    "plot_decomposition_methods",
    "plot_forest",
    "plot_overlap",
    "plot_study_bias",
    "plot_study_coverage",
    "plot_study_estimates",
    "plot_survival",
    "plot_transport",
    "plot_transport_methods",
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


def plot_transport_methods(
    results: Sequence[TransportResult],
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
        table = first.summary()
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
                label=f"{first.target} (observed, summary)",
            )
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
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time ({first.time_unit})")
    ax.set_ylabel("Survival probability")
    ax.grid(alpha=0.3)
    ax.text(-0.08, -0.15, "Number at risk", transform=ax.transAxes, ha="right", va="top",
            fontsize=8, fontweight="bold")  # fmt: skip
    trans = ax.get_xaxis_transform()
    for row, (curve, name, color) in enumerate(kms):
        y = -0.21 - 0.06 * row
        ax.text(-0.08, y, name, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                color=color)  # fmt: skip
        counts = curve.risk_table(np.asarray(risk, dtype=float))["n_risk_unweighted"]
        for t, n in zip(risk, counts.to_list(), strict=True):
            ax.text(t, y, label(float(n)), transform=trans, ha="center", va="top", fontsize=8,
                    color=color, clip_on=False)  # fmt: skip
    ax.set_xticks(risk)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{first.source} -> {first.target}: every method")
    return ax


def plot_decomposition_methods(
    results: Sequence[TransportResult],
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


# -- methods-validation studies (transport.simulate.Study) ------------------------------------
_METHOD_COLORS = {"naive": "0.45", "iow": "C0", "entropy": "C1", "gformula": "C2", "aipw": "C4"}


def _study_input(obj: object, table: str) -> tuple[pl.DataFrame, list[str], str | None]:
    """The replicates (``table="replicates"``) or metrics of a StudyResult or the frame
    itself, the scenarios in the study's order (else in order of appearance) and the time
    unit (None when only a frame was given)."""
    import polars as pl

    if isinstance(obj, pl.DataFrame):
        frame = obj
        order = list(dict.fromkeys(frame["scenario"].to_list())) if "scenario" in frame else []
        return frame, order, None
    config = getattr(obj, "config", None)
    if not isinstance(config, dict) or not hasattr(obj, "metrics"):
        raise TypeError(
            f"expected a StudyResult or a polars DataFrame of its {table}; got {type(obj).__name__}"
        )
    frame = obj.replicates if table == "replicates" else obj.metrics()  # type: ignore[attr-defined]
    order = [sc["name"] for sc in config["scenarios"]]
    return frame, order, str(config.get("time_unit", "")) or None


def _study_pick(
    frame: pl.DataFrame, estimand: str, time: float | None
) -> tuple[pl.DataFrame, float | None]:
    """The rows of one estimand (and time: default the earliest of that estimand)."""
    import polars as pl

    missing = [c for c in ("scenario", "method", "estimand", "time") if c not in frame.columns]
    if missing:
        raise ValueError(f"the study table lacks column(s) {missing}; got {frame.columns}")
    rows = frame.filter(pl.col("estimand") == estimand)
    if estimand == "median":
        return rows, None
    if time is None and rows.height:
        times = rows["time"].drop_nulls()
        time = float(times.min()) if len(times) else None  # type: ignore[arg-type]
    if time is not None:
        rows = rows.filter(pl.col("time") == float(time))
    if rows.height == 0:
        have = frame.select("estimand", "time").unique(maintain_order=True).rows()
        raise ValueError(
            f"no rows for estimand {estimand!r} at time {time!r}; the study has {have}"
        )
    return rows, time


def _study_order(values: Sequence[str], first: Sequence[str]) -> list[str]:
    """Distinct ``values``: those in ``first`` in its order, then the rest as they come."""
    present = list(dict.fromkeys(values))
    return [v for v in first if v in present] + [v for v in present if v not in first]


def _study_label(estimand: str, time: float | None, unit: str | None) -> str:
    u = f" {unit}" if unit else ""
    if estimand == "survival":
        return f"S({time:g}{u})" if time is not None else "S(t)"
    if estimand == "rmst":
        return f"RMST to {time:g}{u}" if time is not None else "RMST"
    if estimand == "median":
        return f"median{f' ({unit})' if unit else ''}"
    return estimand


def _study_groups(rows: pl.DataFrame, scenarios: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(scenario, methods) in the study's order, methods as METHODS orders them."""
    from transport.methods import METHODS

    out = []
    for sc in _study_order(rows["scenario"].to_list(), scenarios):
        methods = rows.filter(rows["scenario"] == sc)["method"].to_list()
        out.append((sc, _study_order(methods, METHODS)))
    return out


def _study_rank(est: np.ndarray, lo: np.ndarray, hi: np.ndarray, truth: float) -> np.ndarray:
    """Zip-plot rank key: how far the truth lies from the estimate in units of the
    interval's half on that side (|z| / z_crit for a Wald interval); an interval covers
    the truth (with the estimate inside it) exactly when the key is at most 1."""
    d = est - truth
    half = np.where(d >= 0, est - lo, hi - est)
    with np.errstate(divide="ignore", invalid="ignore"):
        key = np.where(half > 0, np.abs(d) / np.where(half > 0, half, 1.0), np.inf)
    return np.where(d == 0, 0.0, key)


def plot_study_estimates(
    result_or_replicates: object,
    ax: Axes | None = None,
    *,
    estimand: str = "survival",
    time: float | None = None,
    kind: str = "strip",
    scenarios: Sequence[str] | None = None,
    level: float | None = None,
) -> Axes:
    """Every replicate's estimate of one estimand, per scenario and method, against the truth.

    ``result_or_replicates`` is a :class:`~transport.simulate.StudyResult` or its
    ``replicates`` table. One column of points per scenario and method (scenarios left
    to right in the study's order, each with its methods in the order naive, iow,
    entropy, gformula, aipw), with a dashed line at each scenario's true value.

    ``kind="strip"``: the finite estimates spread across the column in replicate order
    (a deterministic jitter) and their mean as a black bar. ``kind="zip"``: the zip plot
    of Morris, White & Crowther (2019, Fig. 4) on its side: each replicate's interval as
    a vertical line, placed across the column by rank of how far the truth lies from the
    estimate in units of the interval's half-width on that side (|z|/z_crit for a Wald
    interval), so intervals that cover (blue) come first and those that miss (red) last;
    a thin grey line marks the nominal ``level``'s fraction of the column (default: the
    study's ``ci_level``; none for a bare replicates table). Replicates
    without a finite estimate (failed fits, medians not reached) or without an interval
    are left out; an unbounded limit is drawn to the edge of the axes.

    ``time`` picks S(t) or RMST(tau) (default: the earliest); ``scenarios`` picks and
    orders scenarios. Returns the Axes.
    """
    import matplotlib.pyplot as plt
    import polars as pl

    if kind not in ("strip", "zip"):
        raise ValueError(f"The 'kind' parameter must be 'strip' or 'zip'. Got {kind!r}.")
    frame, order, unit = _study_input(result_or_replicates, "replicates")
    rows, time = _study_pick(frame, estimand, time)
    if scenarios is not None:
        rows = rows.filter(pl.col("scenario").is_in(list(scenarios)))
        order = list(scenarios)
    groups = _study_groups(rows, order)
    n_cols = sum(len(m) for _, m in groups)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.6 * n_cols + 2.0), 4.5))
    if level is None and kind == "zip":
        config = getattr(result_or_replicates, "config", None)
        level = float(config["ci_level"]) if isinstance(config, dict) else None
    ticks: list[float] = []
    names: list[str] = []
    x = 0.0
    zips: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, list[str], float]] = []
    seen: list[np.ndarray] = []  # every finite value drawn, for the limits
    for s, (sc, methods) in enumerate(groups):
        start = x
        truth = None
        for method in methods:
            g = rows.filter((pl.col("scenario") == sc) & (pl.col("method") == method))
            g = g.sort("rep").fill_null(np.nan)
            est = g["estimate"].to_numpy().astype(float)
            if truth is None and g.height:
                truth = float(g["truth"][0])
            ok = np.isfinite(est)
            empty = "no finite estimate" if kind == "strip" else "no intervals"
            if kind == "strip":
                e = est[ok]
                seen.append(e)
                if e.size:
                    off = np.linspace(-0.3, 0.3, e.size) if e.size > 1 else np.zeros(1)
                    color = _METHOD_COLORS.get(method, "C5")
                    gid = f"{sc}:{method}"
                    ax.scatter(x + off, e, s=12, alpha=0.6, color=color, gid=f"estimates:{gid}")
                    mean = float(np.mean(e))
                    ax.plot([x - 0.36, x + 0.36], [mean, mean], color="k", linewidth=2,
                            gid=f"mean:{gid}")  # fmt: skip
            elif truth is not None:
                lo = g["ci_lower"].to_numpy().astype(float)
                hi = g["ci_upper"].to_numpy().astype(float)
                ok &= ~(np.isnan(lo) | np.isnan(hi))
                e, lo, hi = est[ok], lo[ok], hi[ok]
                if e.size:
                    idx = np.argsort(_study_rank(e, lo, hi, truth), kind="stable")
                    lo, hi = lo[idx], hi[idx]
                    covers = (lo <= truth) & (truth <= hi)
                    pos = x - 0.4 + 0.8 * (np.arange(e.size) + 0.5) / e.size
                    colors = ["C0" if c else "C3" for c in covers]
                    zips.append((f"{sc}:{method}", pos, lo, hi, colors, x))
                    seen.extend((lo[np.isfinite(lo)], hi[np.isfinite(hi)]))
            if not ok.any():
                ax.text(x, 0.5, empty, transform=ax.get_xaxis_transform(), rotation=90,
                        ha="center", va="center", fontsize=7, color="0.4")  # fmt: skip
            ticks.append(x)
            names.append(method)
            x += 1.0
        if truth is not None:
            ax.plot([start - 0.45, x - 0.55], [truth, truth], linestyle="--", color="k",
                    linewidth=1.0, gid=f"truth:{sc}")  # fmt: skip
            seen.append(np.array([truth]))
        ax.text((start + x - 1.0) / 2, 1.01, sc, transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8)  # fmt: skip
        if s < len(groups) - 1:
            ax.axvline(x - 0.5, color="0.8", linewidth=0.8)
        x += 0.5
    values = np.concatenate(seen) if seen else np.zeros(0)
    if values.size:
        bottom, top = float(values.min()), float(values.max())
        pad = 0.05 * (top - bottom) or 0.05 * max(abs(top), 1.0)
        bottom, top = bottom - pad, top + pad
    else:
        bottom, top = 0.0, 1.0
    ax.set_ylim(bottom, top)
    for gid, pos, lo, hi, colors, centre in zips:  # unbounded limits to the axes' edges
        ax.vlines(pos, np.clip(lo, bottom, top), np.clip(hi, bottom, top), colors=colors,
                  linewidth=1.0, gid=f"intervals:{gid}")  # fmt: skip
        if level is not None:
            ax.axvline(centre - 0.4 + 0.8 * level, color="0.6", linewidth=0.6, gid="nominal")
    ax.set_xticks(ticks, names, rotation=45 if len(ticks) > 8 else 0, fontsize=8)
    ax.set_xlim(-0.6, max(x - 0.9, 0.6))
    what = "intervals" if kind == "zip" else "estimates"
    ax.set_ylabel(f"{_study_label(estimand, time, unit)}: {what}")
    ax.grid(alpha=0.3, axis="y")
    return ax


def _plot_study_measure(
    metrics: object,
    ax: Axes | None,
    *,
    measure: str,
    estimand: str,
    time: float | None,
    scenarios: Sequence[str] | None,
) -> Axes:
    """One row per scenario and method: ``measure`` with ``measure`` ± 1.96 MCSE, one
    errorbar container per method (labelled with it), in the order of METHODS."""
    import matplotlib.pyplot as plt
    import polars as pl

    frame, order, unit = _study_input(metrics, "metrics")
    for c in (measure, f"{measure}_mcse"):
        if c not in frame.columns:
            raise ValueError(f"the metrics table lacks column {c!r}; got {frame.columns}")
    rows, time = _study_pick(frame, estimand, time)
    if scenarios is not None:
        rows = rows.filter(pl.col("scenario").is_in(list(scenarios)))
        order = list(scenarios)
    groups = _study_groups(rows, order)
    n_rows = sum(len(m) for _, m in groups)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 1.2 + 0.28 * n_rows + 0.3 * len(groups)))
    y = 0.0
    where: dict[tuple[str, str], float] = {}
    ticks: list[float] = []
    names: list[str] = []
    for s, (sc, methods) in enumerate(groups):
        top = y
        for method in methods:
            where[(sc, method)] = y
            ticks.append(y)
            names.append(method)
            y -= 1.0
        ax.text(1.01, (top + y + 1.0) / 2, sc, transform=ax.get_yaxis_transform(),
                ha="left", va="center", fontsize=8)  # fmt: skip
        if s < len(groups) - 1:
            ax.axhline(y + 0.25, color="0.8", linewidth=0.8)
        y -= 0.5
    if measure == "coverage":
        level = rows["level"].drop_nulls() if "level" in rows.columns else None
        ref = float(level[0]) if level is not None and len(level) else 0.95
    else:
        ref = 0.0
    ax.axvline(ref, color="k", linestyle="--", linewidth=0.8, gid="reference")
    from transport.methods import METHODS

    for method in _study_order(rows["method"].to_list(), METHODS):
        mine = rows.filter(pl.col("method") == method).fill_null(np.nan)
        keep = [i for i, v in enumerate(mine[measure].to_list()) if np.isfinite(v)]
        for sc in mine["scenario"].to_list():
            v = mine.filter(pl.col("scenario") == sc)[measure][0]
            if not np.isfinite(v):
                ax.text(0.01, where[(sc, method)], "not estimable", va="center", fontsize=7,
                        color="0.4", transform=ax.get_yaxis_transform())  # fmt: skip
        if not keep:
            continue
        mine = mine[keep]
        val = mine[measure].to_numpy().astype(float)
        half = 1.96 * mine[f"{measure}_mcse"].to_numpy().astype(float)
        ys = np.array([where[(sc, method)] for sc in mine["scenario"].to_list()])
        ax.errorbar(val, ys, xerr=np.where(np.isfinite(half), half, 0.0), fmt="o", capsize=3,
                    color=_METHOD_COLORS.get(method, "C5"), label=method)  # fmt: skip
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set_ylim(y + 0.2, 0.8)
    label = _study_label(estimand, time, unit)
    if measure == "coverage":
        ax.set_xlabel(f"{label}: coverage ± 1.96 MCSE (nominal {ref:g})")
    else:
        ax.set_xlabel(f"{label}: {measure} ± 1.96 MCSE")
    ax.grid(alpha=0.3, axis="x")
    return ax


def plot_study_coverage(
    metrics: object,
    ax: Axes | None = None,
    *,
    estimand: str = "survival",
    time: float | None = None,
    scenarios: Sequence[str] | None = None,
) -> Axes:
    """Coverage of each method's intervals per scenario, with its Monte Carlo interval.

    ``metrics`` is a :class:`~transport.simulate.StudyResult` or its ``metrics()``
    table. One row per scenario and method (top to bottom in the study's scenario order,
    methods in the order naive, iow, entropy, gformula, aipw), a point at the coverage
    and a bar of coverage ± 1.96 MCSE (Morris et al. 2019), and a dashed line at the
    nominal level (the table's ``level``). A row without intervals says "not
    estimable". ``time`` picks S(t) or RMST(tau) (default: the earliest). Returns the
    Axes.
    """
    return _plot_study_measure(
        metrics, ax, measure="coverage", estimand=estimand, time=time, scenarios=scenarios
    )


def plot_study_bias(
    metrics: object,
    ax: Axes | None = None,
    *,
    estimand: str = "survival",
    time: float | None = None,
    scenarios: Sequence[str] | None = None,
) -> Axes:
    """Bias of each method per scenario with bias ± 1.96 MCSE and a line at 0; laid out
    as :func:`plot_study_coverage`. Returns the Axes."""
    return _plot_study_measure(
        metrics, ax, measure="bias", estimand=estimand, time=time, scenarios=scenarios
    )
