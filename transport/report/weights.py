"""The analysis report's ``<sid>-weights`` section: effective sample size and weight
quantiles, covariate balance, and Love and overlap plots of the weighting methods.

What it withholds comes from :mod:`transport.policy` through the tidy tables
(:func:`transport.report.tidy_tables`): quantiles with fewer than ``min_cell`` rows
beyond them, balance rows of small cells, design columns with a forbidden role.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from transport.policy import Policy
from transport.report.html import DASH, Html, figure, grid, note, num, panels, section, table
from transport.report.tables import QUANTILE_COLUMNS, withheld_columns
from transport.result import TransportResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from transport.weighting.weights import Weights

__all__ = ["weights_section"]


def weights_section(
    group: list[TransportResult],
    tables: dict[str, pl.DataFrame],
    sid: str,
    policy: Policy,
    figures: bool,
) -> Html:
    """``<sid>-weights``: effective sample size and weight quantiles, covariate balance
    and (with ``figures``) Love and overlap plots of the group's weighting methods."""
    src, tgt = group[0].source, group[0].target
    weighted = _weighted(group)
    if not weighted:
        none = [Html("<p>No weighting method was run for this target.</p>")]
        return section(f"{sid}-weights", "Balance and weights", none, level=3)
    where = {"source": src, "target": tgt}
    bal = tables["balance"].filter(**where)
    reuses = {"aipw", "iow"} <= {r.method for r in group}
    body: list[str] = [
        *_weights_table(weighted, tables["weights"], where, policy, reuses),
        *_balance_table(weighted, bal, src, tgt, policy),
        *_forbidden_note(weighted, policy),
    ]
    if figures:
        draw, size = _balance_drawing(weighted, bal, policy)
        body.append(
            figure(
                draw,
                size,
                f"balance and overlap, {src} to {tgt}",
                "Absolute SMD before and after weighting (withheld columns left "
                "out), and the overlap of the participation scores.",
            )
        )
    return section(f"{sid}-weights", "Balance and weights", body, level=3)


def _weighted(group: list[TransportResult]) -> list[TransportResult]:
    """The group's results with weights, but aipw when iow is there: aipw reuses the
    participation model (and weights) of iow, so they are shown once."""
    methods = {r.method for r in group}
    return [
        r for r in group if r.weights is not None and not (r.method == "aipw" and "iow" in methods)
    ]


def _weights_table(
    weighted: list[TransportResult],
    weights: pl.DataFrame,
    where: dict[str, str],
    policy: Policy,
    reuses: bool,
) -> list[Html]:
    """Effective sample size, weight quantiles and top 1% share per weighting method;
    ``reuses``: aipw ran with the iow weights shown."""
    rows = []
    for r in weighted:
        w = weights.filter(**where, method=r.method).row(0, named=True)
        rows.append(
            [
                r.method,
                num(w["ess"], 0),
                f"{100 * w['ess_share']:.0f}%",
                *(num(w[c], 2) for c in QUANTILE_COLUMNS),
                num(w["top1_share"], 3),
            ]
        )
    headers = ["method", "ESS", "ESS / n", *QUANTILE_COLUMNS, "top 1% share"]
    return [
        Html("<h4>Effective sample size and weights</h4>"),
        table(headers, rows, numeric=range(1, 11)),
        note(
            f"Quantiles of the weights divided by their mean; a quantile is shown only when at "
            f"least {policy.min_cell} source patients lie beyond it."
            + (" The aipw estimator uses the iow weights shown." if reuses else "")
        ),
    ]


def _balance_table(
    weighted: list[TransportResult], bal: pl.DataFrame, src: str, tgt: str, policy: Policy
) -> list[Html]:
    """Means and SMD before weighting, and each method's SMD after, per design column of
    the balance table ``bal``; a withheld column says so instead."""
    by = {(b["method"], b["covariate"]): b for b in bal.iter_rows(named=True)}
    rows: list[list[Any]] = []
    for c in dict.fromkeys(bal["covariate"]):
        first = next(by[(r.method, c)] for r in weighted if (r.method, c) in by)
        if first["withheld"] is not None:
            rows.append(
                [
                    c,
                    Html(
                        '<span class="withheld">withheld ('
                        + (
                            "dominated by a few patients"
                            if first["withheld"] in ("dominance", "p_percent")
                            else f"fewer than {policy.min_cell} patients"
                        )
                        + ")</span>"
                    ),
                ]
            )
            continue
        after = [
            num(by[(r.method, c)]["smd_after"], 3) if (r.method, c) in by else DASH
            for r in weighted
        ]
        rows.append(
            [c, *(num(first[k], 3) for k in ("mean_source", "mean_target", "smd_before")), *after]
        )
    headers = [
        "design column",
        f"mean {src}",
        f"mean {tgt}",
        "SMD before",
        *(f"SMD after ({r.method})" for r in weighted),
    ]
    return [
        Html("<h4>Covariate balance</h4>"),
        table(headers, rows, numeric=range(1, len(headers))),
        note(
            "SMD: (source mean − target mean) / target SD; |SMD| < 0.1 is the usual mark of "
            "balance."
        ),
    ]


def _forbidden_note(weighted: list[TransportResult], policy: Policy) -> list[Html]:
    """A note counting the design columns with a forbidden role left out (none: no note)."""
    forbidden = {
        c
        for r in weighted
        for c, why in withheld_columns(cast("Weights", r.weights), policy).items()
        if why.startswith("forbidden")
    }
    unnamed = {
        c
        for r in weighted
        for c, why in withheld_columns(cast("Weights", r.weights), policy).items()
        if why.startswith("unnamed")
    }
    notes = []
    if forbidden:
        notes.append(
            note(f"{len(forbidden)} design column(s) with a forbidden role are not shown.")
        )
    if unnamed:
        notes.append(
            note(
                f"Design columns naming a level with fewer than {policy.min_cell} patients "
                "are not shown."
            )
        )
    return notes


def _balance_drawing(
    weighted: list[TransportResult], bal: pl.DataFrame, policy: Policy | None = None
) -> tuple[Callable[[Figure], None], tuple[float, float]]:
    """How to draw a Love plot per weighting method (withheld columns left out) and an
    overlap plot per participation model (no bin of fewer than ``min_cell`` patients),
    and the figure's size."""
    min_count = (policy or Policy()).min_cell
    from transport.plotting import plot_balance, plot_overlap

    plots = [("balance", r) for r in weighted] + [
        ("overlap", r) for r in weighted if "scores_source" in cast("Weights", r.weights).details
    ]

    def draw(fig: Figure) -> None:
        for ax, (kind, r) in zip(panels(fig, len(plots), 2), plots, strict=True):
            w = cast("Weights", r.weights)
            if kind == "balance":
                rows = bal.filter(method=r.method).filter(pl.col("withheld").is_null())
                plot_balance(cast("Weights", _Balance(w, rows)), ax)
                ax.set_title(f"balance: {r.method}", fontsize=10)
            else:
                plot_overlap(w, ax, min_count=min_count)
                ax.set_title(f"overlap: {r.method} participation model", fontsize=10)

    n_covs = len(dict.fromkeys(bal["covariate"]))
    nrow, ncol = grid(len(plots), 2)
    return draw, (6.5 * ncol, max(3.5, 0.3 * n_covs + 1.4) * nrow)


class _Balance:
    """What :func:`~transport.plotting.plot_balance` reads from a Weights, with the
    report's withheld rows taken out."""

    def __init__(self, weights: Weights, frame: pl.DataFrame) -> None:
        self.method, self.source, self.target = weights.method, weights.source, weights.target
        self._table = frame

    def balance(self) -> pl.DataFrame:
        return self._table
