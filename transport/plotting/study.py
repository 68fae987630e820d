"""Figures of a methods-validation study (:class:`transport.simulate.Study`): every
replicate's estimate against the truth (strip and zip plots), and each method's bias and
coverage with their Monte Carlo intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from transport._validate import check_axes
from transport.methods import METHODS
from transport.plotting.protocols import StudyLike

if TYPE_CHECKING:
    import polars as pl
    from matplotlib.axes import Axes

__all__ = ["plot_study_bias", "plot_study_coverage", "plot_study_estimates"]

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
    if not isinstance(obj, StudyLike) or not isinstance(obj.config, dict):
        raise TypeError(
            f"expected a StudyResult or a polars DataFrame of its {table}; got {type(obj).__name__}"
        )
    frame = obj.replicates if table == "replicates" else obj.metrics()
    order = [sc["name"] for sc in obj.config["scenarios"]]
    return frame, order, str(obj.config.get("time_unit", "")) or None


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


class _Zip(NamedTuple):
    """One column of a zip plot: its intervals in rank order, drawn once the y-limits
    are known."""

    gid: str
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    colors: list[str]
    centre: float


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
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(6.0, 0.6 * n_cols + 2.0), 4.5))
    if level is None and kind == "zip" and isinstance(result_or_replicates, StudyLike):
        level = float(result_or_replicates.config["ci_level"])
    zips: list[_Zip] = []
    seen: list[np.ndarray] = []  # every finite value drawn, for the limits
    ticks, x = _study_columns(ax, rows, groups, kind, zips, seen)
    bottom, top = _study_limits(seen)
    ax.set_ylim(bottom, top)
    for z in zips:  # unbounded limits to the axes' edges
        ax.vlines(
            z.pos,
            np.clip(z.lo, bottom, top),
            np.clip(z.hi, bottom, top),
            colors=z.colors,
            linewidth=1.0,
            gid=f"intervals:{z.gid}",
        )
        if level is not None:
            ax.axvline(z.centre - 0.4 + 0.8 * level, color="0.6", linewidth=0.6, gid="nominal")
    names = [method for _, methods in groups for method in methods]
    ax.set_xticks(ticks, names, rotation=45 if len(ticks) > 8 else 0, fontsize=8)
    ax.set_xlim(-0.6, max(x - 0.9, 0.6))
    what = "intervals" if kind == "zip" else "estimates"
    ax.set_ylabel(f"{_study_label(estimand, time, unit)}: {what}")
    ax.grid(alpha=0.3, axis="y")
    return ax


def _study_columns(
    ax: Axes,
    rows: pl.DataFrame,
    groups: Sequence[tuple[str, Sequence[str]]],
    kind: str,
    zips: list[_Zip],
    seen: list[np.ndarray],
) -> tuple[list[float], float]:
    """Each scenario's columns left to right, one per method, with the scenario's truth
    as a dashed line and its name above; a zip plot's intervals are collected in
    ``zips`` and every finite value drawn in ``seen``. Returns the columns' positions
    and the position after the last."""
    import polars as pl

    ticks: list[float] = []
    x = 0.0
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
            if kind == "strip":
                seen.append(_strip_column(ax, x, est[ok], f"{sc}:{method}", method))
            elif truth is not None:
                ok, column = _zip_column(g, est, ok, x, truth, f"{sc}:{method}")
                if column is not None:
                    zips.append(column)
                    seen.extend(
                        (column.lo[np.isfinite(column.lo)], column.hi[np.isfinite(column.hi)])
                    )
            if not ok.any():
                empty = "no finite estimate" if kind == "strip" else "no intervals"
                ax.text(
                    x,
                    0.5,
                    empty,
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="0.4",
                )
            ticks.append(x)
            x += 1.0
        if truth is not None:
            ax.plot(
                [start - 0.45, x - 0.55],
                [truth, truth],
                linestyle="--",
                color="k",
                linewidth=1.0,
                gid=f"truth:{sc}",
            )
            seen.append(np.array([truth]))
        ax.text(
            (start + x - 1.0) / 2,
            1.01,
            sc,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
        )
        if s < len(groups) - 1:
            ax.axvline(x - 0.5, color="0.8", linewidth=0.8)
        x += 0.5
    return ticks, x


def _strip_column(ax: Axes, x: float, est: np.ndarray, gid: str, method: str) -> np.ndarray:
    """The finite estimates ``est`` spread across the column at ``x`` in replicate order
    and their mean as a black bar. Returns ``est``."""
    if est.size:
        off = np.linspace(-0.3, 0.3, est.size) if est.size > 1 else np.zeros(1)
        color = _METHOD_COLORS.get(method, "C5")
        ax.scatter(x + off, est, s=12, alpha=0.6, color=color, gid=f"estimates:{gid}")
        mean = float(np.mean(est))
        ax.plot([x - 0.36, x + 0.36], [mean, mean], color="k", linewidth=2, gid=f"mean:{gid}")
    return est


def _zip_column(
    g: pl.DataFrame, est: np.ndarray, ok: np.ndarray, x: float, truth: float, gid: str
) -> tuple[np.ndarray, _Zip | None]:
    """The replicates with a finite estimate (``ok``) and an interval, and their
    intervals ranked by :func:`_study_rank` across the column at ``x`` (blue where they
    cover ``truth``, red where they miss), or ``None`` when there are none."""
    lo = g["ci_lower"].to_numpy().astype(float)
    hi = g["ci_upper"].to_numpy().astype(float)
    ok = ok & ~(np.isnan(lo) | np.isnan(hi))
    e, lo, hi = est[ok], lo[ok], hi[ok]
    if not e.size:
        return ok, None
    idx = np.argsort(_study_rank(e, lo, hi, truth), kind="stable")
    lo, hi = lo[idx], hi[idx]
    covers = (lo <= truth) & (truth <= hi)
    pos = x - 0.4 + 0.8 * (np.arange(e.size) + 0.5) / e.size
    return ok, _Zip(gid, pos, lo, hi, ["C0" if c else "C3" for c in covers], x)


def _study_limits(seen: Sequence[np.ndarray]) -> tuple[float, float]:
    """y-limits holding every value in ``seen`` with a 5% margin (of the range, else of
    the value); (0, 1) when nothing was drawn."""
    values = np.concatenate(seen) if seen else np.zeros(0)
    if not values.size:
        return 0.0, 1.0
    bottom, top = float(values.min()), float(values.max())
    pad = 0.05 * (top - bottom) or 0.05 * max(abs(top), 1.0)
    return bottom - pad, top + pad


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
    check_axes(ax)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 1.2 + 0.28 * n_rows + 0.3 * len(groups)))
    where, bottom = _measure_rows(ax, groups)
    if measure == "coverage":
        level = rows["level"].drop_nulls() if "level" in rows.columns else None
        ref = float(level[0]) if level is not None and len(level) else 0.95
    else:
        ref = 0.0
    ax.axvline(ref, color="k", linestyle="--", linewidth=0.8, gid="reference")
    for method in _study_order(rows["method"].to_list(), METHODS):
        _measure_points(ax, rows.filter(pl.col("method") == method), measure, method, where)
    ax.set_yticks(list(where.values()), [method for _, method in where], fontsize=8)
    ax.set_ylim(bottom + 0.2, 0.8)
    label = _study_label(estimand, time, unit)
    if measure == "coverage":
        ax.set_xlabel(f"{label}: coverage ± 1.96 MCSE (nominal {ref:g})")
    else:
        ax.set_xlabel(f"{label}: {measure} ± 1.96 MCSE")
    ax.grid(alpha=0.3, axis="x")
    return ax


def _measure_rows(
    ax: Axes, groups: Sequence[tuple[str, Sequence[str]]]
) -> tuple[dict[tuple[str, str], float], float]:
    """Lay out one row per scenario and method, top to bottom, with each scenario's name
    at the right and a line between scenarios. Returns each (scenario, method)'s y, in
    drawing order, and the y below the last row."""
    y = 0.0
    where: dict[tuple[str, str], float] = {}
    for s, (sc, methods) in enumerate(groups):
        top = y
        for method in methods:
            where[(sc, method)] = y
            y -= 1.0
        ax.text(
            1.01,
            (top + y + 1.0) / 2,
            sc,
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=8,
        )
        if s < len(groups) - 1:
            ax.axhline(y + 0.25, color="0.8", linewidth=0.8)
        y -= 0.5
    return where, y


def _measure_points(
    ax: Axes,
    rows: pl.DataFrame,
    measure: str,
    method: str,
    where: dict[tuple[str, str], float],
) -> None:
    """One method's ``measure`` ± 1.96 MCSE in each scenario's row as one errorbar
    container labelled with the method; "not estimable" in rows without a value."""
    import polars as pl

    mine = rows.fill_null(np.nan)
    keep = [i for i, v in enumerate(mine[measure].to_list()) if np.isfinite(v)]
    for sc in mine["scenario"].to_list():
        v = mine.filter(pl.col("scenario") == sc)[measure][0]
        if not np.isfinite(v):
            ax.text(
                0.01,
                where[(sc, method)],
                "not estimable",
                va="center",
                fontsize=7,
                color="0.4",
                transform=ax.get_yaxis_transform(),
            )
    if not keep:
        return
    mine = mine[keep]
    val = mine[measure].to_numpy().astype(float)
    half = 1.96 * mine[f"{measure}_mcse"].to_numpy().astype(float)
    ys = np.array([where[(sc, method)] for sc in mine["scenario"].to_list()])
    ax.errorbar(
        val,
        ys,
        xerr=np.where(np.isfinite(half), half, 0.0),
        fmt="o",
        capsize=3,
        color=_METHOD_COLORS.get(method, "C5"),
        label=method,
    )


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
