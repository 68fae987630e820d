"""The sections of the analysis report (:func:`transport.report.render_report`).

``cohorts`` (:func:`cohorts_section`) and ``overview`` (:func:`overview_section`) open
the page; each source and target pair then has its curves, weights (in
:mod:`transport.report.weights`), transportability and decomposition sections, built
from the report's tidy tables (:func:`transport.report.tidy_tables`) under the
disclosure policy. Plotting is imported from :mod:`transport.plotting` inside the
functions that draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from transport.policy import Policy, forbidden_role
from transport.report.html import (
    DASH,
    Html,
    escape,
    figure,
    grid,
    is_missing,
    note,
    num,
    panels,
    section,
    table,
)
from transport.report.released import Released, nice_ticks
from transport.result import TransportResult
from transport.survival.model_curve import ModelCurve

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "cohorts_section",
    "curves_section",
    "decomposition_section",
    "overview_section",
    "transportability_section",
]


def _digits(estimand: str) -> int:
    """S(t) and its differences to 3 decimals; medians and RMSTs (times) to 1."""
    return 3 if estimand == "survival" else 1


def _with_ci(v: Any, lo: Any, hi: Any, digits: int) -> str:
    if is_missing(v):
        return DASH
    if is_missing(lo) and is_missing(hi):
        return num(v, digits)
    return f"{num(v, digits)} [{num(lo, digits)}, {num(hi, digits)}]"


def _time(t: float | None, unit: str) -> str:
    return DASH if t is None else f"{t:,g} {unit}"


def _estimand(estimand: str, time: float | None, unit: str) -> str:
    if estimand == "survival":
        return f"S({_time(time, unit)})"
    if estimand == "median":
        return f"median ({unit})"
    if estimand == "rmst":
        return f"RMST to {_time(time, unit)} ({unit})"
    return estimand


def _p(v: Any) -> str:
    if is_missing(v):
        return DASH
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _verdict(v: Any) -> Html:
    if is_missing(v):
        return Html(DASH)
    slug = "".join(ch if ch.isalnum() else "-" for ch in str(v).lower())
    return Html(f'<span class="verdict verdict-{escape(slug)}">{escape(v)}</span>')


def _pick(frame: pl.DataFrame, **where: Any) -> pl.DataFrame:
    return frame.filter(**where) if where else frame


def _count(value: int | None, remark: str | None, what: str, policy: Policy) -> str:
    if value is not None:
        return f"{value:,}"
    small = f"fewer than {policy.min_cell} {what}"
    return f"<{policy.min_cell}" if remark and small in remark else DASH


def cohorts_section(
    tables: dict[str, pl.DataFrame], flat: list[TransportResult], policy: Policy
) -> Html:
    """``cohorts``: each cohort's patients and events, rounded by ``policy``, and the
    covariates of the weighting design (none with a forbidden role)."""
    rows = [
        [
            c["cohort"],
            c["role"],
            c["data"],
            _count(c["n"], c["note"], "patients", policy),
            _count(c["events"], c["note"], "events", policy),
        ]
        for c in tables["cohorts"].iter_rows(named=True)
    ]
    covariates = list(
        dict.fromkeys(c for r in flat if r.weights for c in r.weights.design.covariates)
    )
    shown = [c for c in covariates if forbidden_role(c, policy) is None]
    body = [
        table(["cohort", "role", "data", "patients", "events"], rows, numeric=(3, 4)),
        note(
            f"Counts are rounded to the nearest {policy.round_to} (disclosure policy "
            f"{policy.name!r}); a count below {policy.min_cell} is shown as <{policy.min_cell}."
        ),
    ]
    if shown:
        body.append(Html(f"<p>Covariates of the weighting design: {escape(', '.join(shown))}.</p>"))
    if len(shown) < len(covariates):
        body.append(
            note(
                f"{len(covariates) - len(shown)} covariate(s) with an identifier, "
                "practice, physician or free-text role are not shown."
            )
        )
    return section("cohorts", "Cohorts", body)


def overview_section(summary: pl.DataFrame, unit: str, figures: bool) -> Html:
    """``overview``: a forest plot of transported − observed per estimand (a line saying
    why when figures are off or no target has an observed estimate)."""
    from transport.plotting import plot_forest

    keys = list(
        dict.fromkeys(
            (e, t)
            for e, t, d in summary.select("estimand", "time", "difference").iter_rows()
            if d is not None
        )
    )
    if not figures or not keys:
        why = "Figures were not drawn." if not figures else "No target has an observed estimate."
        return section("overview", "Overview: transported − observed", [Html(f"<p>{why}</p>")])
    rows = summary.select("source", "target", "method").unique().height

    def draw(fig: Figure) -> None:
        for ax, (e, t) in zip(panels(fig, len(keys), 2), keys, strict=True):
            plot_forest(summary, estimand=e, time=t, ax=ax)
            ax.set_title(_estimand(e, t, unit), fontsize=10)

    nrow, ncol = grid(len(keys), 2)
    size = (7.0 * ncol, (1.0 + 0.32 * rows) * nrow)
    fig = figure(
        draw,
        size,
        "forest plot of transported minus observed",
        "Transported − observed, with intervals, per target and method.",
    )
    return section("overview", "Overview: transported − observed", [fig])


def curves_section(
    group: list[TransportResult],
    views: Released,
    sid: str,
    policy: Policy,
    figures: bool,
) -> Html:
    """``<sid>-curves``: the group's naive, observed and transported curves as the gate
    releases them (on the grid, numbers at risk rounded by ``policy``), and the notes of
    model-based curves."""
    from transport.plotting import plot_transport_methods

    shown, refused = views

    def label(n: float) -> str:
        return f"<{policy.min_cell}" if 0 < n < policy.min_cell else f"{policy.round_count(n):,}"

    def draw(fig: Figure) -> None:
        last = float(shown[0].naive.time[-1])
        ticks = [t for t in nice_ticks(last) if t <= last]
        plot_transport_methods(shown, fig.add_subplot(), risk_times=ticks, count_label=label)

    body = [
        figure(
            draw,
            (8.0, 5.5),
            f"survival curves, {group[0].source} to {group[0].target}",
            "The source's naive curve and the target's observed curve (Kaplan–Meier, with "
            "pointwise bands), and each method's transported curve, as the release gate "
            f"releases them: on the grid of {policy.km_grid_step:g} {policy.time_unit}, "
            f"numbers at risk rounded to {policy.round_to}.",
        )
        if figures and shown
        else Html("<p>Figures were not drawn.</p>")
    ]
    if refused:
        body.append(note("Not drawn, refused by the release gate: " + "; ".join(refused)))
    notes = [
        f"{r.method}: {r.transported.note}"
        for r in group
        if isinstance(r.transported, ModelCurve) and r.transported.note
    ]
    if notes:
        body.append(
            Html('<ul class="note">' + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
        )
    return section(f"{sid}-curves", "Survival curves", body, level=3)


def transportability_section(
    group: list[TransportResult], tables: dict[str, pl.DataFrame], sid: str
) -> Html:
    """``<sid>-transportability``: transported, observed and their difference with
    intervals, the equivalence verdicts when a margin was given, and the distance
    between the curves."""
    src, tgt, unit = group[0].source, group[0].target, group[0].time_unit
    where = {"source": src, "target": tgt}
    eq = _pick(tables["equivalence"], **where)
    tost = {(e["method"], e["estimand"], e["time"]): e for e in eq.iter_rows(named=True)}
    rows = []
    for row in _pick(tables["summary"], **where).iter_rows(named=True):
        d = _digits(row["estimand"])
        cells: list[Any] = [
            row["method"],
            _estimand(row["estimand"], row["time"], unit),
            num(row["naive"], d),
        ]
        for q in ("transported", "observed", "difference"):
            cells.append(_with_ci(row[q], row[f"{q}_ci_lower"], row[f"{q}_ci_upper"], d))
        if eq.height:
            e = tost.get((row["method"], row["estimand"], row["time"]))
            if e is None or e["margin"] is None:
                cells += [DASH, DASH, DASH, _verdict(None)]
            else:
                cells += [
                    num(e["margin"], d),
                    f"[{num(e['lower'], d)}, {num(e['upper'], d)}]",
                    _p(e["equivalence_p"]),
                    _verdict(e["verdict"]),
                ]
        rows.append([*cells, row["ci_method"]])
    level = f"{100 * group[0].ci_level:g}% CI"
    headers = [
        "method",
        "estimand",
        f"{src} naive",
        f"transported [{level}]",
        f"{tgt} observed [{level}]",
        f"difference [{level}]",
    ]
    text = (
        "Difference = transported − observed. S(t) to 3 decimals; medians and RMSTs in "
        f"{unit}, to 1 decimal."
    )
    if eq.height:
        headers += ["margin", "TOST interval", "p (TOST)", "verdict"]
        text += (
            " Equivalence: two one-sided tests against the margin fixed in advance: "
            "equivalent when the TOST interval (1 − 2α, α = 0.05) lies inside ±margin, "
            "not equivalent when wholly outside it, inconclusive otherwise."
        )
    numeric = range(2, len(headers) - (1 if eq.height else 0))
    body: list[str] = [
        table([*headers, "interval"], rows, cls="transportability", numeric=numeric),
        note(text),
    ]
    dist = _pick(tables["curve_distance"], **where)
    if dist.height:
        drows = [
            [
                d["method"],
                f"{num(d['window_start'], 0)} to {num(d['window_end'], 0)} {unit}",
                _with_ci(d["value"], d["ci_lower"], d["ci_upper"], 3),
                d["ci_method"],
            ]
            for d in dist.iter_rows(named=True)
        ]
        body += [
            Html("<h4>Distance between the curves</h4>"),
            table(
                ["method", "window", "mean |S transported − S observed|", "interval"],
                drows,
                numeric=(2,),
            ),
        ]
    return section(f"{sid}-transportability", "Transportability", body, level=3)


def decomposition_section(
    group: list[TransportResult],
    views: Released,
    tables: dict[str, pl.DataFrame],
    sid: str,
    figures: bool,
) -> Html:
    """``<sid>-decomposition``: the raw gap split into patient mix and residual per
    method and estimand, as a table and (with ``figures``) a figure."""
    from transport.plotting import plot_decomposition_methods

    src, tgt, unit = group[0].source, group[0].target, group[0].time_unit
    # naive's patient mix is 0 by definition: leave it out when there is anything else
    shown = [r for r in group if r.method != "naive"] or group
    dec = _pick(tables["decomposition"], source=src, target=tgt)
    cell = {
        (d["method"], d["estimand"], d["time"], d["component"]): d
        for d in dec.iter_rows(named=True)
    }
    comps = ("raw_gap", "patient_mix", "residual")
    rows = []
    for r in shown:
        for e, t in r.estimands:
            parts = [cell.get((r.method, e, t, c)) for c in comps]
            rows.append(
                [
                    r.method,
                    _estimand(e, t, unit),
                    *(
                        _with_ci(p["value"], p["ci_lower"], p["ci_upper"], _digits(e))
                        if p
                        else DASH
                        for p in parts
                    ),
                ]
            )
    headers = [
        "method",
        "estimand",
        f"raw gap ({src} − {tgt})",
        "patient mix (naive − transported)",
        "residual (transported − observed)",
    ]
    body: list[str] = [
        table(headers, rows, numeric=(2, 3, 4)),
        note(
            "The raw gap between the source and the target splits into the part the measured "
            "patient mix explains and the residual, which the measured covariates do not."
        ),
    ]
    drawn = [v for v in views[0] if v.method != "naive"] or views[0]
    if figures and drawn:
        keys = list(drawn[0].estimands)

        def draw(fig: Figure) -> None:
            for ax, (e, t) in zip(panels(fig, len(keys), 2), keys, strict=True):
                plot_decomposition_methods(drawn, estimand=e, time=t, ax=ax)
                ax.set_title(_estimand(e, t, unit), fontsize=10)

        nrow, ncol = grid(len(keys), 2)
        size = (6.5 * ncol, (1.3 + 0.75 * len(shown)) * nrow)
        body.append(
            figure(
                draw,
                size,
                f"gap decomposition, {src} to {tgt}",
                "Raw gap, patient mix and residual per method, one panel per estimand.",
            )
        )
    return section(f"{sid}-decomposition", "Gap decomposition", body, level=3)
