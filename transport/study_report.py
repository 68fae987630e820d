"""HTML report of a methods-validation study (:class:`~transport.simulate.Study`).

:func:`write_study_report` writes, and :func:`render_study_report` returns, one
self-contained HTML page (figures embedded as base64 PNGs; no external CSS, scripts,
fonts or images) of a :class:`~transport.simulate.StudyResult`, in this order, each
section with a stable ``id``:

``scenarios``
    Each scenario's description, cohort sizes, formulas, replicates and seed stream.
``metrics``
    Per estimand, scenario and method: bias, empirical SE, model SE, relative error of
    the model SE, coverage, bias-eliminated coverage and RMSE, each with its Monte Carlo
    SE in parentheses (Morris, White & Crowther 2019;
    :func:`~transport.simulate.performance`), and the replicate counts.
``figures``
    Per estimand, the replicates' estimates (strip) and intervals (zip plot), and bias
    and coverage with their Monte Carlo intervals (:mod:`transport.plotting`).
``failures``
    The fits that failed, counted by scenario, method and error message, and the
    warnings raised, counted by class.
``settings``, ``versions``
    What was run (the study's configuration, plus the caller's ``settings``) and with
    what.

The page reuses the analysis report's building blocks (:mod:`transport.report.html`): every
string from the study (scenario names and descriptions, formulas, error messages,
settings) is HTML-escaped, and apart from the figures' bytes the output is a
deterministic function of the result, the settings and the installed versions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from transport.methods import METHODS
from transport.report.html import (
    DASH,
    Html,
    escape,
    figure,
    json_safe,
    note,
    num,
    page,
    section,
    setting,
    table,
)
from transport.report.tables import versions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["StudyResultLike", "render_study_report", "write_study_report"]


class StudyResultLike(Protocol):
    """What the study report reads of a study's outcome, as
    :class:`~transport.simulate.StudyResult` has it (the report names no type of
    :mod:`transport.simulate`, which builds on it)."""

    @property
    def config(self) -> Mapping[str, Any]:
        """The study's configuration: ``seed``, ``scenarios`` (each with ``name``,
        ``description``, ``source`` and ``target`` with ``n``, ``formula``,
        ``outcome_formula``, ``censoring``), ``methods``, ``time_unit``, ``ci_level``."""
        ...

    @property
    def n_reps(self) -> int:
        """Replicates per scenario."""
        ...

    @property
    def replicates(self) -> pl.DataFrame:
        """One row per scenario, method, estimand, time and replicate, with ``rep``,
        ``error`` and ``warning``."""
        ...

    def metrics(self) -> pl.DataFrame:
        """Performance measures with their Monte Carlo SEs, per scenario, method and
        estimand."""
        ...

    def failures(self) -> pl.DataFrame:
        """The replicates in which a method failed: scenario, method, rep, error."""
        ...


#: (measure, header, digits: None = the estimand's) of the metrics table, in order.
METRIC_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("bias", "bias (MCSE)", None),
    ("empirical_se", "empirical SE (MCSE)", None),
    ("model_se", "model SE (MCSE)", None),
    ("relative_error_model_se", "relative error of model SE (MCSE)", 3),
    ("coverage", "coverage (MCSE)", 3),
    ("be_coverage", "bias-eliminated coverage (MCSE)", 3),
    ("rmse", "RMSE (MCSE)", None),
)
_MAX_REPS_LISTED = 20
_WARNING_CLASS = re.compile(r"(?:^|; )([A-Za-z_][A-Za-z0-9_]*): ")


def _digits(estimand: str) -> int:
    """S(t) to 4 decimals (its biases are small); medians and RMSTs (times) to 3."""
    return 4 if estimand == "survival" else 3


def _with_mcse(value: Any, mcse: Any, digits: int) -> str:
    """``value (mcse)``; the value alone when it has no MCSE; a dash when undefined."""
    if value is None:
        return DASH
    if mcse is None:
        return num(value, digits)
    return f"{num(value, digits)} ({num(mcse, digits)})"


def _estimand_label(estimand: str, time: float | None, unit: str) -> str:
    if estimand == "survival":
        return f"S({time:g} {unit})"
    if estimand == "rmst":
        return f"RMST to {time:g} {unit}"
    if estimand == "median":
        return f"median ({unit})"
    return estimand


def _estimands(metrics: pl.DataFrame) -> list[tuple[str, float | None]]:
    """The study's estimands in report order: S(t) by time, the median, RMST by tau."""
    rank = {"survival": 0, "median": 1, "rmst": 2}
    pairs = set(metrics.select("estimand", "time").unique().rows())
    return sorted(pairs, key=lambda p: (rank.get(p[0], 3), p[0], p[1] or 0.0))


def _ordered(metrics: pl.DataFrame, scenarios: list[str]) -> pl.DataFrame:
    """Metrics rows by estimand (report order), scenario (study order), method (METHODS)."""
    est = {p: i for i, p in enumerate(_estimands(metrics))}
    sc = {s: i for i, s in enumerate(scenarios)}
    me = {m: i for i, m in enumerate(METHODS)}
    keyed = [
        (
            est[(r["estimand"], r["time"])],
            sc.get(r["scenario"], len(sc)),
            me.get(r["method"], len(me)),
            i,
        )
        for i, r in enumerate(metrics.iter_rows(named=True))
    ]
    order = [k[-1] for k in sorted(keyed)]
    return metrics[order]


# -- sections --------------------------------------------------------------------------------
def _scenarios_section(result: StudyResultLike) -> Html:
    config = result.config
    seed = config["seed"]
    rows = []
    for s, sc in enumerate(config["scenarios"]):
        rows.append(
            [
                sc["name"],
                sc["description"],
                f"{sc['source']['n']:,}",
                f"{sc['target']['n']:,}",
                sc["formula"],
                sc["outcome_formula"],
                sc["censoring"],
                f"{result.n_reps:,}",
                f"SeedSequence({seed}, spawn_key=({s}, r, ·))",
            ]
        )
    headers = [
        "scenario",
        "description",
        "source n",
        "target n",
        "participation / balancing formula",
        "outcome formula",
        "censoring model",
        "replicates",
        "seeds",
    ]
    k, m = len(config["scenarios"]), len(config["methods"])
    body = [
        Html(
            f"<p>{k} scenario(s) × {m} method(s) ({escape(', '.join(config['methods']))}) × "
            f"{result.n_reps:,} replicate(s), seed {escape(seed)}.</p>"
        ),
        table(headers, rows, numeric=(2, 3, 7)),
        note(
            "Replicate r of the s-th scenario (counting from 0) draws its cohorts from "
            "SeedSequence(seed, spawn_key=(s, r, 0)) and its bootstrap from spawn_key=(s, r, "
            "1), the same for every method, so its numbers do not depend on where or in "
            "which order it ran."
        ),
    ]
    return section("scenarios", "Scenarios", body)


def _metrics_section(result: StudyResultLike, metrics: pl.DataFrame, scenarios: list[str]) -> Html:
    unit = str(result.config["time_unit"])
    rows = []
    for r in _ordered(metrics, scenarios).iter_rows(named=True):
        digits = _digits(r["estimand"])
        cells: list[Any] = [
            r["scenario"],
            r["method"],
            _estimand_label(r["estimand"], r["time"], unit),
        ]
        for measure, _, fixed in METRIC_COLUMNS:
            cells.append(_with_mcse(r[measure], r[f"{measure}_mcse"], fixed or digits))
        cells += [f"{r['n_reps']:,}", f"{r['n_ci']:,}", f"{r['n_failed']:,}"]
        rows.append(cells)
    headers = [
        "scenario",
        "method",
        "estimand",
        *(h for _, h, _ in METRIC_COLUMNS),
        "replicates",
        "with interval",
        "failed",
    ]
    level = float(result.config["ci_level"])
    body = [
        table(headers, rows, cls="metrics", numeric=range(3, len(headers))),
        note(
            "Monte Carlo standard errors in parentheses (Morris, White & Crowther 2019, "
            "Table 6). Every measure uses the replicates with a finite estimate "
            "('replicates'); the model SE those with an SE; the coverages those with an "
            f"interval ('with interval'), of nominal level {level:g}. 'failed': replicates "
            "without a finite estimate (a failed fit, a median not reached), in no "
            "measure. The relative error of the model SE is model SE / empirical SE − 1. "
            f"S(t) to 4 decimals, medians and RMSTs ({unit}) to 3."
        ),
    ]
    return section("metrics", "Performance", body)


def _figures_section(result: StudyResultLike, metrics: pl.DataFrame, scenarios: list[str]) -> Html:
    from transport.plotting import plot_study_bias, plot_study_coverage, plot_study_estimates

    unit = str(result.config["time_unit"])
    n_cols = sum(metrics.filter(pl.col("scenario") == s)["method"].n_unique() for s in scenarios)
    n_rows = n_cols + len(scenarios)
    width = min(16.0, max(8.0, 0.55 * n_cols + 2.5))
    body: list[str] = []
    for estimand, time in _estimands(metrics):
        label = _estimand_label(estimand, time, unit)

        def estimates(fig: Figure, estimand: str = estimand, time: float | None = time) -> None:
            top, bottom = fig.subplots(2, 1)
            plot_study_estimates(result, top, estimand=estimand, time=time, kind="strip")
            plot_study_estimates(result, bottom, estimand=estimand, time=time, kind="zip")

        def performance(fig: Figure, estimand: str = estimand, time: float | None = time) -> None:
            left, right = fig.subplots(1, 2)
            plot_study_bias(result, left, estimand=estimand, time=time)
            plot_study_coverage(result, right, estimand=estimand, time=time)

        body.append(Html(f"<h3>{escape(label)}</h3>"))
        body.append(
            figure(
                estimates,
                (width, 7.5),
                f"{label}: estimates and intervals",
                f"{label}. Top: every replicate's estimate (points), their mean (black bar) "
                "and the truth (dashed). Bottom: zip plot of the intervals, ranked by how "
                "far the truth lies from the estimate relative to the interval; blue "
                "intervals cover the truth, red ones miss it; the grey line marks the "
                "nominal level.",
            )
        )
        body.append(
            figure(
                performance,
                (13.0, 1.4 + 0.26 * n_rows),
                f"{label}: bias and coverage",
                f"{label}. Bias and coverage with ± 1.96 Monte Carlo SE; dashed lines at "
                "0 and at the nominal level.",
            )
        )
    return section("figures", "Figures", body)


def _failures_section(result: StudyResultLike) -> Html:
    fails = result.failures()
    total = result.replicates.select("scenario", "method", "rep").unique().height
    body: list[str] = [
        Html(f"<p>{fails.height:,} of {total:,} fits (scenario × method × replicate) failed.</p>")
    ]
    if fails.height:
        grouped = fails.group_by("scenario", "method", "error", maintain_order=True).agg(
            pl.len().alias("n"), pl.col("rep").sort().alias("reps")
        )
        rows = []
        for r in grouped.iter_rows(named=True):
            reps = [str(x) for x in r["reps"][:_MAX_REPS_LISTED]]
            more = len(r["reps"]) - len(reps)
            rows.append(
                [
                    r["scenario"],
                    r["method"],
                    f"{r['n']:,}",
                    ", ".join(reps) + (f", … ({more} more)" if more > 0 else ""),
                    r["error"],
                ]
            )
        body.append(
            table(["scenario", "method", "failed", "replicates", "error"], rows, numeric=(2,))
        )
        body.append(
            note(
                "A failed fit has no estimate of any estimand in that replicate; it is "
                "counted in the metrics table's 'failed' and enters no measure."
            )
        )
    warned = (
        result.replicates.filter(pl.col("warning").is_not_null())
        .select("scenario", "method", "rep", "warning")
        .unique(maintain_order=True)
    )
    if warned.height:
        counts: dict[tuple[str, str, str], int] = {}
        for sc, method, _, text in warned.iter_rows():
            for name in dict.fromkeys(_WARNING_CLASS.findall(text)) or ["warning"]:
                counts[(sc, method, name)] = counts.get((sc, method, name), 0) + 1
        rows = [[sc, m, w, f"{n:,}"] for (sc, m, w), n in counts.items()]
        body.append(Html("<h3>Warnings</h3>"))
        body.append(table(["scenario", "method", "warning", "replicates"], rows, numeric=(3,)))
        body.append(
            note(
                "Fits that completed with a warning are in every measure; the replicates "
                "table's 'warning' column has the messages."
            )
        )
    return section("failures", "Failures and warnings", body)


def render_study_report(
    result: StudyResultLike,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
    figures: bool = True,
) -> str:
    """The HTML report of a study as a string; see :func:`write_study_report`."""
    config = result.config
    scenarios = [sc["name"] for sc in config["scenarios"]]
    metrics = result.metrics()
    if title is None:
        title = (
            f"Methods-validation study: {len(scenarios)} scenario(s), "
            f"{len(config['methods'])} method(s), {result.n_reps:,} replicate(s)"
        )
    parts: list[str] = [
        _scenarios_section(result),
        _metrics_section(result, metrics, scenarios),
    ]
    toc = [("scenarios", "Scenarios"), ("metrics", "Performance")]
    if figures:
        parts.append(_figures_section(result, metrics, scenarios))
        toc.append(("figures", "Figures"))
    parts.append(_failures_section(result))
    merged: dict[str, Any] = {k: v for k, v in config.items() if k not in ("scenarios", "format")}
    merged["n_reps"] = result.n_reps
    merged.update(settings or {})
    srows = [[k, setting(json_safe(v))] for k, v in merged.items()]
    parts.append(section("settings", "Settings", [table(["setting", "value"], srows)]))
    vrows = [[k, v] for k, v in versions().items()]
    parts.append(section("versions", "Versions", [table(["package", "version"], vrows)]))
    toc += [("failures", "Failures"), ("settings", "Settings"), ("versions", "Versions")]
    return page(title, toc, parts, generator=f"transport {versions()['transport']}")


def write_study_report(
    result: StudyResultLike,
    path: str | Path,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
    figures: bool = True,
) -> Path:
    """Write one self-contained HTML report of a simulation study and return its path.

    Parameters
    ----------
    result
        What :meth:`~transport.simulate.Study.run` returned.
    path
        The HTML file to write (parent directories are created; an existing file is
        replaced).
    title
        The page title (default: "Methods-validation study: <k> scenario(s), <m>
        method(s), <n> replicate(s)").
    settings
        What the caller knows and the result does not (the study file, a date, the
        backend): shown after the study's configuration, overriding a key of the same
        name.
    figures
        ``False`` leaves the figures section out (much faster).

    Examples
    --------
    >>> from transport.simulate import Study
    >>> from transport.study_report import render_study_report
    >>> out = Study("correct", methods=["naive", "iow"], n_reps=2, seed=1).run()
    >>> page = render_study_report(out, figures=False)
    >>> page.count('<section id="')
    5
    """
    text = render_study_report(result, title=title, settings=settings, figures=figures)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
