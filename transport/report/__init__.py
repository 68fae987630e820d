"""HTML report of a transport analysis: one self-contained file per analysis.

:func:`write_report` writes, and :func:`render_report` returns, one HTML page with every
figure embedded as a base64 PNG (no external CSS, scripts, fonts or images), in this
order, each section with a stable ``id``:

``cohorts``
    Each cohort's patients and events, as counts rounded by a disclosure
    :class:`~transport.disclosure.Policy` (``round_to``; a count below ``min_cell`` is
    shown as ``<min_cell``), and the covariates (never an identifier, practice,
    physician or free-text column: :func:`~transport.disclosure.forbidden_role`).
``overview``
    A forest plot of transported - observed across targets and methods.
``target-<i>`` (``i`` = 1, 2, ... per source and target, in input order)
    ``target-<i>-curves``: naive, observed and every method's transported curve, with
    rounded numbers at risk; ``target-<i>-weights``: covariate balance (SMD before and
    after), effective sample size and weight quantiles of the weighting methods, with
    Love and overlap plots; ``target-<i>-transportability``: transported, observed and
    their difference with intervals, the equivalence verdicts when a margin was given,
    and the distance between the curves; ``target-<i>-decomposition``: the raw gap split
    into patient mix and residual, as a table and a figure.
``settings``, ``versions``
    What was run (from the results, plus the caller's ``settings``) and with what.

:func:`tidy_tables` returns the numbers the report shows as tidy polars frames, so a
command-line run can write the same numbers as CSV or JSON.

What the report shows about the cohorts follows the release gate's rules under
``policy``: counts rounded (numbers at risk in the figures too), no column with a
forbidden role (nor a formula or setting, the caller's included, that names one), a
design column's balance withheld when fewer than ``min_cell`` patients have or lack it
(or when it would reveal a small reference level by subtraction, however the formula
names the level's columns), weight quantiles only where ``min_cell`` rows lie beyond
them. The estimates themselves (S(t), medians, RMSTs, differences) are shown exact, as
:meth:`~transport.TransportResult.summary` gives them: a report is an analysis document
that stays where the rows are; what leaves goes through
:func:`transport.disclosure.release`. ``Policy(min_cell=1, round_to=1)`` shows
everything.

Every string that comes from the data (cohort names, covariates, levels, settings) is
HTML-escaped. Apart from the figures' bytes, the output is a deterministic function of
the results, the settings and the installed versions (no timestamp; put one in
``settings`` if you want it).

The package: :mod:`transport.report.tables` (what the report accepts, its tidy tables,
settings and versions), :mod:`transport.report.sections` and
:mod:`transport.report.weights` (the sections of the page),
:mod:`transport.report.analysis` (the page) and :mod:`transport.report.html` (the
building blocks, shared with :mod:`transport.study_report`).
"""

from transport.report.analysis import render_report, write_report
from transport.report.tables import PACKAGES as PACKAGES  # what versions() lists
from transport.report.tables import (
    ReportInput,
    analysis_settings,
    collect_results,
    tidy_tables,
    versions,
)

__all__ = [
    "ReportInput",
    "analysis_settings",
    "collect_results",
    "render_report",
    "tidy_tables",
    "versions",
    "write_report",
]
