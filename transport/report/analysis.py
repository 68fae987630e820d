"""The analysis report's page: :func:`render_report` returns it, :func:`write_report`
writes it. Its sections are built in :mod:`transport.report.sections` and
:mod:`transport.report.weights`, the numbers they show in :mod:`transport.report.tables`,
the markup in :mod:`transport.report.html`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transport.inference import IntervalKind
from transport.policy import Policy
from transport.report.html import Html, escape, json_safe, page, section, setting, table
from transport.report.released import released_views
from transport.report.sections import (
    cohorts_section,
    curves_section,
    decomposition_section,
    overview_section,
    transportability_section,
)
from transport.report.tables import (
    ReportInput,
    analysis_settings,
    collect_results,
    group_results,
    resolve_policy,
    screen_settings,
    tidy_tables,
    versions,
)
from transport.report.weights import weights_section

__all__ = ["render_report", "write_report"]


def render_report(
    results: ReportInput,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
    policy: Policy | None = None,
    interval_kind: IntervalKind = "percentile",
    figures: bool = True,
) -> str:
    """The HTML report of ``results`` as a string; see :func:`write_report`."""
    flat = collect_results(results)
    pol = resolve_policy(policy)
    tables = tidy_tables(flat, policy=pol, interval_kind=interval_kind)
    groups = group_results(flat)
    sources = list(dict.fromkeys(r.source for r in flat))
    targets = list(dict.fromkeys(r.target for r in flat))
    if title is None:
        title = f"Transport report: {', '.join(sources)} → {', '.join(targets)}"
    parts: list[str] = [
        cohorts_section(tables, flat, pol),
        overview_section(tables["summary"], flat[0].time_unit, figures),
    ]
    toc = [("cohorts", "Cohorts"), ("overview", "Overview")]
    for i, group in enumerate(groups, start=1):
        sid = f"target-{i}"
        src, tgt = group[0].source, group[0].target
        views = released_views(group, interval_kind, pol)  # the figures show the gate's
        inner = [
            curves_section(group, views, sid, pol, figures),
            weights_section(group, tables, sid, pol, figures),
            transportability_section(group, tables, sid),
            decomposition_section(group, views, tables, sid, figures),
        ]
        methods = ", ".join(r.method for r in group)
        parts.append(
            Html(
                f'<section id="{sid}" class="target" data-source="{escape(src)}" '
                f'data-target="{escape(tgt)}">\n<h2>{escape(src)} → {escape(tgt)}</h2>\n'
                f"<p>Methods: {escape(methods)}.</p>\n" + "\n".join(inner) + "\n</section>"
            )
        )
        toc.append((sid, f"{src} → {tgt}"))
    given = screen_settings(settings or {}, flat, pol)
    merged = {**analysis_settings(flat, policy=pol), **given}
    merged["disclosure_policy"] = (
        f"{pol.name}: counts rounded to {pol.round_to}, cells of at least {pol.min_cell}"
    )
    srows = [[k, setting(json_safe(v))] for k, v in merged.items()]
    parts.append(section("settings", "Settings", [table(["setting", "value"], srows)]))
    vrows = [[k, v] for k, v in versions().items()]
    parts.append(section("versions", "Versions", [table(["package", "version"], vrows)]))
    toc += [("settings", "Settings"), ("versions", "Versions")]
    return page(title, toc, parts, generator=f"transport {versions()['transport']}")


def write_report(
    results: ReportInput,
    path: str | Path,
    *,
    title: str | None = None,
    settings: Mapping[str, Any] | None = None,
    policy: Policy | None = None,
    interval_kind: IntervalKind = "percentile",
    figures: bool = True,
) -> Path:
    """Write one self-contained HTML report of an analysis and return its path.

    Parameters
    ----------
    results
        A :class:`~transport.TransportResult`, a :class:`~transport.TransportResults`
        (one method, several targets), a mapping of either (e.g. method ->
        TransportResults, as a ``transport demo`` run holds them) or a list of either;
        see :func:`collect_results`.
    path
        The HTML file to write (parent directories are created; an existing file is
        replaced).
    title
        The page title (default: "Transport report: <sources> → <targets>").
    settings
        What the caller knows and the results do not (seed, formulas, outcome models,
        the plan file, a date): shown with the settings read from the results
        (:func:`analysis_settings`), overriding those of the same key. A setting that
        names a column with a forbidden role (a weighting covariate with that role
        anywhere in it, or any such name in a setting whose key names a formula) is
        shown as withheld.
    policy
        The disclosure :class:`~transport.disclosure.Policy` the cohort counts, numbers
        at risk and diagnostics are shown under (default: the environment's, named by
        ``TRANSPORT_POLICY``, else ``Policy()``: counts rounded to 5, cells of at least
        10); one looser than the environment's is refused (rule ``policy_floor``).
    interval_kind
        Bootstrap interval, ``"percentile"`` or ``"normal"``.
    figures
        ``False`` leaves the figures out (tables only; much faster).

    Examples
    --------
    >>> import transport as tp
    >>> from transport.report import write_report
    >>> us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    >>> res = tp.transport(us, jp, method="iow", times=[365], tau=1095)
    >>> path = write_report(res, "transport-report/report.html")  # doctest: +SKIP
    >>> from transport.report import render_report
    >>> page = render_report(res, figures=False)  # the same page as a string
    >>> page.count('<section id="target-1')  # the target and its four parts
    5
    """
    text = render_report(
        results,
        title=title,
        settings=settings,
        policy=policy,
        interval_kind=interval_kind,
        figures=figures,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
