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
"""

from __future__ import annotations

import base64
import html
import io
import math
import platform
import re
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl

from transport.exceptions import TransportWarning
from transport.inference import IntervalKind
from transport.methods import METHODS
from transport.policy import (
    QUANTILES,
    Policy,
    balance_withheld,
    forbidden_role,
    released_count,
    top_share,
    weight_quantiles,
)
from transport.result import TransportResult, TransportResults
from transport.survival.model_curve import ModelCurve

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from transport.weighting.weights import Weights

__all__ = [
    "ReportInput",
    "analysis_settings",
    "collect_results",
    "render_report",
    "tidy_tables",
    "versions",
    "write_report",
]

#: What the report functions accept: one result, the results of one method for several
#: targets, a mapping (e.g. method -> TransportResults), or a list of either.
ReportInput = (
    TransportResult
    | TransportResults
    | Mapping[str, TransportResult | TransportResults]
    | Sequence[TransportResult | TransportResults]
)

#: Packages whose versions the report lists (with Python's).
PACKAGES: tuple[str, ...] = (
    "transport",
    "numpy",
    "scipy",
    "polars",
    "lifelines",
    "statsmodels",
    "formulaic",
    "matplotlib",
)

_DPI = 96
_DASH = "—"


# -- input ---------------------------------------------------------------------------------
def collect_results(results: ReportInput) -> list[TransportResult]:
    """Flatten ``results`` into a list of :class:`~transport.TransportResult`.

    Accepts a TransportResult; a TransportResults (one method, several targets); a
    mapping whose values are either (e.g. ``{"iow": res_iow, "aipw": res_aipw}``: the
    keys are labels only, each result's own ``source``, ``target`` and ``method`` are
    used); or a list of either. The order is: source and target pairs in order of first
    appearance, and within a pair the methods in the order ``naive``, ``iow``,
    ``entropy``, ``gformula``, ``aipw``. Two results for the same source, target and
    method are an error, and so is an empty input.
    """
    flat: list[TransportResult] = []

    def add(item: Any, where: str) -> None:
        if isinstance(item, TransportResult):
            flat.append(item)
        elif isinstance(item, TransportResults):
            flat.extend(item.values())
        else:
            raise TypeError(
                f"The 'results' parameter of the report must hold TransportResult or "
                f"TransportResults objects; {where} is {type(item).__name__}."
            )

    if isinstance(results, TransportResult | TransportResults):
        add(results, "it")
    elif isinstance(results, Mapping):
        for key, value in results.items():
            add(value, f"the value for {key!r}")
    elif isinstance(results, Sequence) and not isinstance(results, str | bytes):
        for i, value in enumerate(results):
            add(value, f"item {i}")
    else:
        raise TypeError(
            "The 'results' parameter of the report must be a TransportResult, a "
            f"TransportResults, a mapping or a list of them. Got {type(results).__name__}."
        )
    if not flat:
        raise ValueError("The 'results' parameter of the report holds no results.")
    pairs: dict[tuple[str, str], int] = {}
    for r in flat:
        pairs.setdefault((r.source, r.target), len(pairs))
    rank = {m: i for i, m in enumerate(METHODS)}
    ordered = sorted(
        enumerate(flat),
        key=lambda x: (pairs[(x[1].source, x[1].target)], rank.get(x[1].method, len(rank)), x[0]),
    )
    out = [r for _, r in ordered]
    seen: set[tuple[str, str, str]] = set()
    for r in out:
        triple = (r.source, r.target, r.method)
        if triple in seen:
            raise ValueError(
                f"two results for source {r.source!r}, target {r.target!r} and method "
                f"{r.method!r}; the report needs one of each"
            )
        seen.add(triple)
    return out


def _groups(flat: list[TransportResult]) -> list[list[TransportResult]]:
    """Results by (source, target), in the order of :func:`collect_results`."""
    groups: dict[tuple[str, str], list[TransportResult]] = {}
    for r in flat:
        groups.setdefault((r.source, r.target), []).append(r)
    return list(groups.values())


def _policy(policy: Policy | None) -> Policy:
    if policy is None:
        return Policy()
    if not isinstance(policy, Policy):
        raise TypeError(
            f"The 'policy' parameter must be a transport.disclosure.Policy. "
            f"Got {type(policy).__name__}."
        )
    return policy


# -- tidy tables ---------------------------------------------------------------------------
_KEYS = {"source": pl.String, "target": pl.String, "method": pl.String}
_QCOLS = [f"q{round(100 * q):02d}" for q in QUANTILES]
_BALANCE_VALUES = ["mean_source", "mean_source_weighted", "mean_target", "smd_before", "smd_after"]
_SCHEMAS: dict[str, dict[str, Any]] = {
    "cohorts": {"cohort": pl.String, "role": pl.String, "data": pl.String, "n": pl.Int64,
                "events": pl.Int64, "note": pl.String},
    "equivalence": {**_KEYS, "estimand": pl.String, "time": pl.Float64,
                    **dict.fromkeys(["difference", "lower", "upper", "margin", "equivalence_p"],
                                    pl.Float64), "verdict": pl.String},
    "curve_distance": {**_KEYS, **dict.fromkeys(["window_start", "window_end", "value", "se",
                                                 "ci_lower", "ci_upper"], pl.Float64),
                       "ci_method": pl.String},
    "weights": {**_KEYS, "weights": pl.String, "ess": pl.Float64, "ess_share": pl.Float64,
                **dict.fromkeys(_QCOLS, pl.Float64), "top1_share": pl.Float64},
    "balance": {**_KEYS, "covariate": pl.String, **dict.fromkeys(_BALANCE_VALUES, pl.Float64),
                "withheld": pl.String},
}  # fmt: skip


def _keyed(r: TransportResult, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the result's ``source``, ``target`` and ``method`` in front."""
    keys = {"source": r.source, "target": r.target, "method": r.method}
    return frame.select(
        *(pl.lit(v, pl.String).alias(k) for k, v in keys.items()), pl.exclude(*keys)
    )


def _stack(frames: list[pl.DataFrame], name: str) -> pl.DataFrame:
    return (
        pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(schema=_SCHEMAS[name])
    )


def _n_and_events(r: TransportResult, role: str) -> tuple[float | None, float | None]:
    """Exact patients and events of the result's source or target (``None``: unknown)."""
    curve = r.naive if role == "source" else r.observed
    if curve is not None:  # every row leaves once, by an event or a censoring
        events = float(curve.n_event_unweighted.sum())
        return events + float(curve.n_censor_unweighted.sum()), events
    if r.weights is not None:  # a summary-only target: the weights know its n
        return float(r.weights.target_n), None
    return None, None


def _cohorts(flat: list[TransportResult], policy: Policy) -> pl.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    for role in ("source", "target"):
        for r in flat:
            name = r.source if role == "source" else r.target
            n, events = _n_and_events(r, role)
            row = rows.setdefault(name, {"cohort": name, "roles": [], "n": None, "events": None})
            if role not in row["roles"]:
                row["roles"].append(role)
            if row["n"] is None and n is not None:
                data = "summary" if role == "target" and r.observed is None else "patient rows"
                row.update(n=n, events=events, data=data)
    out = []
    for row in rows.values():
        notes = []
        if row["n"] is None:
            notes.append("patients not known from the results")
        elif row["n"] < policy.min_cell:
            notes.append(f"fewer than {policy.min_cell} patients")
        if row["events"] is not None and row["events"] < policy.min_cell:
            notes.append(f"fewer than {policy.min_cell} events")
        out.append(
            {
                "cohort": row["cohort"],
                "role": ", ".join(row["roles"]),
                "data": row.get("data", "summary"),
                "n": released_count(row["n"], policy),
                "events": released_count(row["events"], policy),
                "note": "; ".join(notes) or None,
            }
        )
    return pl.DataFrame(out, schema=_SCHEMAS["cohorts"])


def _withheld_columns(w: Weights, policy: Policy) -> dict[str, str]:
    """Design columns whose balance the report withholds, and why, as the release gate
    judges weights diagnostics: ``"forbidden:<role>"`` (the row is dropped, name and
    all) for a column built from a covariate with a forbidden role; ``"min_cell"``
    (values withheld) when fewer than ``min_cell`` patients have or lack a 0/1 column in
    either cohort, for an interaction of a continuous covariate (its target count is
    unknown), or when a categorical's small reference level could be recovered from its
    other levels' shares."""
    design = w.design
    small = balance_withheld(w, policy)
    out: dict[str, str] = {}
    for j, col in enumerate(design.columns):
        # judged by the covariates a column is built from, not by its level's text
        roles = [forbidden_role(c, policy) for c in design.covariates_of([j]) or [col]]
        role = next((x for x in roles if x is not None), None)
        if role is not None:
            out[col] = f"forbidden:{role}"
        elif col in small:
            out[col] = "min_cell"
    return out


def _balance(r: TransportResult, policy: Policy) -> pl.DataFrame:
    assert r.weights is not None
    hidden = _withheld_columns(r.weights, policy)
    table = (
        r.weights.balance()
        .with_columns(
            withheld=pl.col("covariate").replace_strict(
                hidden, default=None, return_dtype=pl.String
            )
        )
        .filter(~pl.col("withheld").fill_null("").str.starts_with("forbidden"))
    )
    shown = pl.col("withheld").is_null()
    table = table.with_columns(pl.when(shown).then(pl.col(c)).alias(c) for c in _BALANCE_VALUES)
    return _keyed(r, table.fill_nan(None))


def _weights_row(r: TransportResult, policy: Policy) -> dict[str, Any]:
    assert r.weights is not None
    w = r.weights.values / r.weights.values.mean()
    n, ess = w.size, r.weights.ess
    row: dict[str, Any] = {
        "source": r.source,
        "target": r.target,
        "method": r.method,
        "weights": r.weights.method,
        "ess": round(ess, 1),
        "ess_share": round(ess / n, 2),
    }
    row.update(weight_quantiles(w, policy))
    row["top1_share"] = top_share(w, policy)
    return row


def _distance(r: TransportResult, kind: IntervalKind) -> dict[str, Any]:
    assert r.window is not None
    d = r.curve_distance(kind)
    nan_none = {
        k: None if math.isnan(v) else v
        for k, v in (("se", d.se), ("ci_lower", d.ci_lower), ("ci_upper", d.ci_upper))
    }
    return {
        "source": r.source,
        "target": r.target,
        "method": r.method,
        "window_start": r.window[0],
        "window_end": r.window[1],
        "value": d.value,
        **nan_none,
        "ci_method": d.ci_method,
    }


def tidy_tables(
    results: ReportInput,
    *,
    policy: Policy | None = None,
    interval_kind: IntervalKind = "percentile",
) -> dict[str, pl.DataFrame]:
    """The numbers of the report as tidy frames, keyed by table name.

    ``cohorts``
        ``cohort``, ``role``, ``data`` ("patient rows" or "summary"), ``n`` and
        ``events``: counts rounded by ``policy`` (null below ``min_cell`` or when
        unknown, with a ``note``).
    ``summary``
        Every result's :meth:`~transport.TransportResult.summary`, stacked (with the
        equivalence columns when a margin was given).
    ``equivalence``
        :meth:`~transport.TransportResult.equivalence` of the results given a margin,
        with ``source``, ``target`` and ``method`` (no rows when none was).
    ``decomposition``
        :meth:`~transport.TransportResult.decomposition`, stacked.
    ``curve_distance``
        Mean absolute distance between transported and observed curves over the window,
        per result with an observed curve.
    ``weights``
        Per weighting result: ``ess``, ``ess_share`` and quantiles ``q01`` ... ``q99``
        of the weights divided by their mean, and ``top1_share`` (null where fewer than
        ``min_cell`` rows lie beyond).
    ``balance``
        :meth:`~transport.Weights.balance` per weighting result; a design column with a
        forbidden role is left out, one with too few patients has null values and
        ``withheld = "min_cell"``.

    Every table starts with ``source``, ``target`` and ``method`` (but ``cohorts``).
    ``results`` is anything :func:`collect_results` accepts; ``policy`` defaults to
    :class:`~transport.disclosure.Policy()`.
    """
    flat = collect_results(results)
    pol = _policy(policy)
    summaries = [r.summary(interval_kind) for r in flat]
    margins = [r for r, s in zip(flat, summaries, strict=True) if "verdict" in s.columns]
    weighted = [r for r in flat if r.weights is not None]
    return {
        "cohorts": _cohorts(flat, pol),
        "summary": pl.concat(summaries, how="diagonal_relaxed"),
        "equivalence": _stack(
            [_keyed(r, r.equivalence(interval_kind=interval_kind)) for r in margins],
            "equivalence",
        ),
        "decomposition": pl.concat(
            [_keyed(r, r.decomposition(interval_kind)) for r in flat], how="diagonal_relaxed"
        ),
        "curve_distance": pl.DataFrame(
            [_distance(r, interval_kind) for r in flat if r.observed is not None and r.window],
            schema=_SCHEMAS["curve_distance"],
        ),
        "weights": pl.DataFrame(
            [_weights_row(r, pol) for r in weighted], schema=_SCHEMAS["weights"]
        ),
        "balance": _stack([_balance(r, pol) for r in weighted], "balance"),
    }


# -- settings and versions -----------------------------------------------------------------
def _one_or_all(values: list[Any]) -> Any:
    distinct: list[Any] = []
    for v in values:
        if v not in distinct:
            distinct.append(v)
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


def _json_safe(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_json_safe(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        return x.item()
    return x


def analysis_settings(results: ReportInput, *, policy: Policy | None = None) -> dict[str, Any]:
    """What the results say about how they were produced (JSON-safe).

    ``sources``, ``targets``, ``methods``, ``time_unit``, ``times``, ``tau``,
    ``window``, ``ci_level``, ``margin``, ``n_boot``, ``bootstrap_seed`` (the seed's
    entropy, enough to reproduce the bootstrap) and ``participation_formula`` (the
    weighting design; withheld when it names a column with a forbidden role under
    ``policy``). A setting that differs between results is the list of its values.
    """
    flat = collect_results(results)
    pol = _policy(policy)
    boot = [r.bootstrap for r in flat]
    formulas = [
        r.weights.design.formula
        if all(forbidden_role(c, pol) is None for c in r.weights.design.covariates)
        else "withheld (it names a column with a forbidden role)"
        for r in flat
        if r.weights is not None
    ]
    out = {
        "sources": list(dict.fromkeys(r.source for r in flat)),
        "targets": list(dict.fromkeys(r.target for r in flat)),
        "methods": list(dict.fromkeys(r.method for r in flat)),
        "time_unit": _one_or_all([r.time_unit for r in flat]),
        "times": _one_or_all([r.times.tolist() for r in flat]),
        "tau": _one_or_all([r.tau for r in flat]),
        "window": _one_or_all([list(r.window) if r.window else None for r in flat]),
        "ci_level": _one_or_all([r.ci_level for r in flat]),
        "margin": _one_or_all([_json_safe(r.margin) for r in flat]),
        "n_boot": _one_or_all([b.n_boot if b is not None else 0 for b in boot]),
        "bootstrap_seed": _one_or_all([str(b.entropy) for b in boot if b is not None]),
        "participation_formula": _one_or_all(formulas),
    }
    return cast("dict[str, Any]", _json_safe(out))


_WITHHELD_SETTING = "withheld (it names a column with a forbidden role)"
_NAME = re.compile(r"`([^`]+)`|([A-Za-z_.][A-Za-z0-9_.]*)")


def _screen_settings(
    settings: Mapping[str, Any], flat: list[TransportResult], policy: Policy
) -> dict[str, Any]:
    """The caller's settings, each withheld when it names a column with a forbidden role
    (as :func:`analysis_settings` withholds the participation formula): a weighting
    covariate with such a role, anywhere in a string; under a key that names a formula,
    any name in it whose role is forbidden (an outcome formula's columns are not in the
    results)."""
    known = {
        c
        for r in flat
        if r.weights is not None
        for c in r.weights.design.covariates
        if forbidden_role(c, policy) is not None
    }

    def names(text: str) -> list[str]:
        return [a or b for a, b in _NAME.findall(text)]

    def bad(key: str, v: Any) -> bool:
        if isinstance(v, str):
            found = names(v)
            if any(c in found or f"`{c}`" in v for c in known):
                return True
            return "formula" in key.lower() and any(
                forbidden_role(x, policy) is not None for x in found
            )
        if isinstance(v, Mapping):
            return any(bad(f"{key}.{k}", x) for k, x in v.items())
        if isinstance(v, list | tuple):
            return any(bad(key, x) for x in v)
        return False

    return {k: _WITHHELD_SETTING if bad(str(k), v) else v for k, v in settings.items()}


def versions() -> dict[str, str]:
    """Versions of Python and of :data:`PACKAGES` (``"not installed"`` when absent)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# -- formatting ------------------------------------------------------------------------------
class _Html(str):
    """Markup the report built itself: inserted as is, never escaped again."""

    __slots__ = ()


def _e(x: Any) -> _Html:
    """Escape a value for HTML text or an attribute."""
    if isinstance(x, _Html):
        return x
    return _Html(html.escape(str(x), quote=True))


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _num(v: Any, digits: int) -> str:
    if _is_missing(v):
        return _DASH
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{float(v):,.{digits}f}"
    if text.startswith("-"):  # a minus sign, and none on a value that rounds to zero
        text = "−" + text[1:] if text.strip("-0.,") else text[1:]
    return text


def _digits(estimand: str) -> int:
    """S(t) and its differences to 3 decimals; medians and RMSTs (times) to 1."""
    return 3 if estimand == "survival" else 1


def _with_ci(v: Any, lo: Any, hi: Any, digits: int) -> str:
    if _is_missing(v):
        return _DASH
    if _is_missing(lo) and _is_missing(hi):
        return _num(v, digits)
    return f"{_num(v, digits)} [{_num(lo, digits)}, {_num(hi, digits)}]"


def _time(t: float | None, unit: str) -> str:
    return _DASH if t is None else f"{t:,g} {unit}"


def _estimand(estimand: str, time: float | None, unit: str) -> str:
    if estimand == "survival":
        return f"S({_time(time, unit)})"
    if estimand == "median":
        return f"median ({unit})"
    if estimand == "rmst":
        return f"RMST to {_time(time, unit)} ({unit})"
    return estimand


def _p(v: Any) -> str:
    if _is_missing(v):
        return _DASH
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _setting(v: Any) -> str:
    if v is None:
        return _DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {_setting(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_setting(x) for x in v)
    return str(v)


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    cls: str = "",
    numeric: Collection[int] = (),
) -> _Html:
    """A table; cells are escaped unless they are :class:`_Html`. Columns from
    ``numeric`` (indices) are right-aligned."""
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(headers)
    )
    body = "\n".join(
        "<tr>"
        + "".join(
            f"<td{' class=num' if i in numeric else ''}>{_e(c)}</td>" for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    klass = f' class="{_e(cls)}"' if cls else ""
    return _Html(
        f"<table{klass}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )


def _verdict(v: Any) -> _Html:
    if _is_missing(v):
        return _Html(_DASH)
    slug = "".join(ch if ch.isalnum() else "-" for ch in str(v).lower())
    return _Html(f'<span class="verdict verdict-{_e(slug)}">{_e(v)}</span>')


# -- figures -------------------------------------------------------------------------------
def _figure(
    draw: Callable[[Figure], None], size: tuple[float, float], alt: str, caption: str = ""
) -> _Html:
    """Draw on a new figure (not registered with pyplot, so nothing is left open), embed
    it as a PNG data URI. A figure that fails is replaced by a note and a warning."""
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    try:
        # names from the data are drawn as they are: "$" starts no mathtext
        with matplotlib.rc_context({"text.parse_math": False}):
            draw(fig)
            buf = io.BytesIO()
            fig.savefig(
                buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None}
            )
    except Exception as exc:  # a figure must not cost the whole report
        warnings.warn(
            f"report figure {alt!r} could not be drawn: {exc}", TransportWarning, stacklevel=3
        )
        return _Html(f'<p class="missing">Figure not drawn ({_e(alt)}): {_e(exc)}</p>')
    finally:
        fig.clear()
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return _Html(f'<figure><img src="{uri}" alt="{_e(alt)}">{cap}</figure>')


class _Balance:
    """What :func:`~transport.plotting.plot_balance` reads from a Weights, with the
    report's withheld rows taken out."""

    def __init__(self, weights: Weights, table: pl.DataFrame) -> None:
        self.method, self.source, self.target = weights.method, weights.source, weights.target
        self._table = table

    def balance(self) -> pl.DataFrame:
        return self._table


def _grid(n: int, cols: int) -> tuple[int, int]:
    c = max(1, min(cols, n))
    return math.ceil(n / c), c


# -- sections --------------------------------------------------------------------------------
def _section(sid: str, title: str, body: Sequence[str], level: int = 2) -> _Html:
    inner = "\n".join(body)
    return _Html(f'<section id="{_e(sid)}">\n<h{level}>{_e(title)}</h{level}>\n{inner}\n</section>')


def _note(text: str) -> _Html:
    return _Html(f'<p class="note">{_e(text)}</p>')


def _pick(frame: pl.DataFrame, **where: Any) -> pl.DataFrame:
    return frame.filter(**where) if where else frame


def _count(value: int | None, note: str | None, what: str, policy: Policy) -> str:
    if value is not None:
        return f"{value:,}"
    small = f"fewer than {policy.min_cell} {what}"
    return f"<{policy.min_cell}" if note and small in note else _DASH


def _cohorts_section(
    tables: dict[str, pl.DataFrame], flat: list[TransportResult], policy: Policy
) -> _Html:
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
        _table(["cohort", "role", "data", "patients", "events"], rows, numeric=(3, 4)),
        _note(
            f"Counts are rounded to the nearest {policy.round_to} (disclosure policy "
            f"{policy.name!r}); a count below {policy.min_cell} is shown as <{policy.min_cell}."
        ),
    ]
    if shown:
        body.append(_Html(f"<p>Covariates of the weighting design: {_e(', '.join(shown))}.</p>"))
    if len(shown) < len(covariates):
        body.append(
            _note(
                f"{len(covariates) - len(shown)} covariate(s) with an identifier, "
                "practice, physician or free-text role are not shown."
            )
        )
    return _section("cohorts", "Cohorts", body)


def _panels(fig: Figure, n: int, ncol: int) -> list[Axes]:
    """``n`` axes on a grid of ``ncol`` columns; the unused cells are hidden."""
    nrow, ncol = _grid(n, ncol)
    axes = list(fig.subplots(nrow, ncol, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return axes[:n]


def _overview(summary: pl.DataFrame, unit: str, figures: bool) -> _Html:
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
        return _section("overview", "Overview: transported − observed", [_Html(f"<p>{why}</p>")])
    rows = summary.select("source", "target", "method").unique().height

    def draw(fig: Figure) -> None:
        for ax, (e, t) in zip(_panels(fig, len(keys), 2), keys, strict=True):
            plot_forest(summary, estimand=e, time=t, ax=ax)
            ax.set_title(_estimand(e, t, unit), fontsize=10)

    nrow, ncol = _grid(len(keys), 2)
    size = (7.0 * ncol, (1.0 + 0.32 * rows) * nrow)
    fig = _figure(
        draw,
        size,
        "forest plot of transported minus observed",
        "Transported − observed, with intervals, per target and method.",
    )
    return _section("overview", "Overview: transported − observed", [fig])


def _curves(group: list[TransportResult], sid: str, policy: Policy, figures: bool) -> _Html:
    from transport.plotting import plot_transport_methods

    def label(n: float) -> str:
        return f"<{policy.min_cell}" if 0 < n < policy.min_cell else f"{policy.round_count(n):,}"

    def draw(fig: Figure) -> None:
        plot_transport_methods(group, fig.add_subplot(), count_label=label)

    body = [
        _figure(
            draw,
            (8.0, 5.5),
            f"survival curves, {group[0].source} to {group[0].target}",
            "The source's naive curve and the target's observed curve (Kaplan–Meier, with "
            "pointwise bands), and each method's transported curve. Numbers at risk are "
            f"rounded to {policy.round_to}.",
        )
        if figures
        else _Html("<p>Figures were not drawn.</p>")
    ]
    notes = [
        f"{r.method}: {r.transported.note}"
        for r in group
        if isinstance(r.transported, ModelCurve) and r.transported.note
    ]
    if notes:
        body.append(
            _Html('<ul class="note">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
        )
    return _section(f"{sid}-curves", "Survival curves", body, level=3)


def _weights(
    group: list[TransportResult],
    tables: dict[str, pl.DataFrame],
    sid: str,
    policy: Policy,
    figures: bool,
) -> _Html:
    from transport.plotting import plot_balance, plot_overlap

    src, tgt = group[0].source, group[0].target
    methods = {r.method for r in group}
    # aipw reuses the participation model (and weights) of iow: show them once
    weighted = [
        r for r in group if r.weights is not None and not (r.method == "aipw" and "iow" in methods)
    ]
    if not weighted:
        none = [_Html("<p>No weighting method was run for this target.</p>")]
        return _section(f"{sid}-weights", "Balance and weights", none, level=3)
    where = {"source": src, "target": tgt}
    wrows = []
    for r in weighted:
        w = _pick(tables["weights"], **where, method=r.method).row(0, named=True)
        wrows.append(
            [
                r.method,
                _num(w["ess"], 0),
                f"{100 * w['ess_share']:.0f}%",
                *(_num(w[c], 2) for c in _QCOLS),
                _num(w["top1_share"], 3),
            ]
        )
    body: list[str] = [
        _Html("<h4>Effective sample size and weights</h4>"),
        _table(["method", "ESS", "ESS / n", *_QCOLS, "top 1% share"], wrows, numeric=range(1, 11)),
        _note(
            f"Quantiles of the weights divided by their mean; a quantile is shown only when at "
            f"least {policy.min_cell} source patients lie beyond it."
            + (
                " The aipw estimator uses the iow weights shown."
                if "aipw" in methods and "iow" in methods
                else ""
            )
        ),
    ]
    bal = _pick(tables["balance"], **where)
    by = {(b["method"], b["covariate"]): b for b in bal.iter_rows(named=True)}
    covs = list(dict.fromkeys(bal["covariate"]))
    brows: list[list[Any]] = []
    for c in covs:
        first = next(by[(r.method, c)] for r in weighted if (r.method, c) in by)
        if first["withheld"] is not None:
            brows.append(
                [
                    c,
                    _Html(
                        f'<span class="withheld">withheld (fewer than '
                        f"{policy.min_cell} patients)</span>"
                    ),
                ]
            )
            continue
        after = [
            _num(by[(r.method, c)]["smd_after"], 3) if (r.method, c) in by else _DASH
            for r in weighted
        ]
        brows.append(
            [c, *(_num(first[k], 3) for k in ("mean_source", "mean_target", "smd_before")), *after]
        )
    headers = [
        "design column",
        f"mean {src}",
        f"mean {tgt}",
        "SMD before",
        *(f"SMD after ({r.method})" for r in weighted),
    ]
    body += [
        _Html("<h4>Covariate balance</h4>"),
        _table(headers, brows, numeric=range(1, len(headers))),
        _note(
            "SMD: (source mean − target mean) / target SD; |SMD| < 0.1 is the usual mark of "
            "balance."
        ),
    ]
    forbidden = {
        c
        for r in weighted
        for c, why in _withheld_columns(cast("Weights", r.weights), policy).items()
        if why.startswith("forbidden")
    }
    if forbidden:
        body.append(
            _note(f"{len(forbidden)} design column(s) with a forbidden role are not shown.")
        )
    if figures:
        panels = [("balance", r) for r in weighted] + [
            ("overlap", r)
            for r in weighted
            if "scores_source" in cast("Weights", r.weights).details
        ]

        def draw(fig: Figure) -> None:
            for ax, (kind, r) in zip(_panels(fig, len(panels), 2), panels, strict=True):
                w = cast("Weights", r.weights)
                if kind == "balance":
                    rows = _pick(bal, method=r.method).filter(pl.col("withheld").is_null())
                    plot_balance(cast("Weights", _Balance(w, rows)), ax)
                    ax.set_title(f"balance: {r.method}", fontsize=10)
                else:
                    plot_overlap(w, ax)
                    ax.set_title(f"overlap: {r.method} participation model", fontsize=10)

        nrow, ncol = _grid(len(panels), 2)
        size = (6.5 * ncol, max(3.5, 0.3 * len(covs) + 1.4) * nrow)
        body.append(
            _figure(
                draw,
                size,
                f"balance and overlap, {src} to {tgt}",
                "Absolute SMD before and after weighting (withheld columns left "
                "out), and the overlap of the participation scores.",
            )
        )
    return _section(f"{sid}-weights", "Balance and weights", body, level=3)


def _transportability(
    group: list[TransportResult], tables: dict[str, pl.DataFrame], sid: str
) -> _Html:
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
            _num(row["naive"], d),
        ]
        for q in ("transported", "observed", "difference"):
            cells.append(_with_ci(row[q], row[f"{q}_ci_lower"], row[f"{q}_ci_upper"], d))
        if eq.height:
            e = tost.get((row["method"], row["estimand"], row["time"]))
            if e is None or e["margin"] is None:
                cells += [_DASH, _DASH, _DASH, _verdict(None)]
            else:
                cells += [
                    _num(e["margin"], d),
                    f"[{_num(e['lower'], d)}, {_num(e['upper'], d)}]",
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
    note = (
        "Difference = transported − observed. S(t) to 3 decimals; medians and RMSTs in "
        f"{unit}, to 1 decimal."
    )
    if eq.height:
        headers += ["margin", "TOST interval", "p (TOST)", "verdict"]
        note += (
            " Equivalence: two one-sided tests against the margin fixed in advance: "
            "equivalent when the TOST interval (1 − 2α, α = 0.05) lies inside ±margin, "
            "not equivalent when wholly outside it, inconclusive otherwise."
        )
    numeric = range(2, len(headers) - (1 if eq.height else 0))
    body: list[str] = [
        _table([*headers, "interval"], rows, cls="transportability", numeric=numeric),
        _note(note),
    ]
    dist = _pick(tables["curve_distance"], **where)
    if dist.height:
        drows = [
            [
                d["method"],
                f"{_num(d['window_start'], 0)} to {_num(d['window_end'], 0)} {unit}",
                _with_ci(d["value"], d["ci_lower"], d["ci_upper"], 3),
                d["ci_method"],
            ]
            for d in dist.iter_rows(named=True)
        ]
        body += [
            _Html("<h4>Distance between the curves</h4>"),
            _table(
                ["method", "window", "mean |S transported − S observed|", "interval"],
                drows,
                numeric=(2,),
            ),
        ]
    return _section(f"{sid}-transportability", "Transportability", body, level=3)


def _decomposition(
    group: list[TransportResult], tables: dict[str, pl.DataFrame], sid: str, figures: bool
) -> _Html:
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
                        else _DASH
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
        _table(headers, rows, numeric=(2, 3, 4)),
        _note(
            "The raw gap between the source and the target splits into the part the measured "
            "patient mix explains and the residual, which the measured covariates do not."
        ),
    ]
    if figures:
        keys = list(shown[0].estimands)

        def draw(fig: Figure) -> None:
            for ax, (e, t) in zip(_panels(fig, len(keys), 2), keys, strict=True):
                plot_decomposition_methods(shown, estimand=e, time=t, ax=ax)
                ax.set_title(_estimand(e, t, unit), fontsize=10)

        nrow, ncol = _grid(len(keys), 2)
        size = (6.5 * ncol, (1.3 + 0.75 * len(shown)) * nrow)
        body.append(
            _figure(
                draw,
                size,
                f"gap decomposition, {src} to {tgt}",
                "Raw gap, patient mix and residual per method, one panel per estimand.",
            )
        )
    return _section(f"{sid}-decomposition", "Gap decomposition", body, level=3)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:2em auto;max-width:80em;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num,th.num{text-align:right;white-space:nowrap}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption,.note{color:#555;font-size:.88em}
nav ul{columns:2}.verdict{font-weight:600;padding:0 .3em;border-radius:3px}
.verdict-equivalent{background:#dff0d8}.verdict-not-equivalent{background:#f2dede}
.verdict-inconclusive{background:#fcf8e3}.withheld,.missing{color:#8a6d3b}
"""


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
    pol = _policy(policy)
    tables = tidy_tables(flat, policy=pol, interval_kind=interval_kind)
    groups = _groups(flat)
    sources = list(dict.fromkeys(r.source for r in flat))
    targets = list(dict.fromkeys(r.target for r in flat))
    if title is None:
        title = f"Transport report: {', '.join(sources)} → {', '.join(targets)}"
    parts: list[str] = [
        _cohorts_section(tables, flat, pol),
        _overview(tables["summary"], flat[0].time_unit, figures),
    ]
    toc = [("cohorts", "Cohorts"), ("overview", "Overview")]
    for i, group in enumerate(groups, start=1):
        sid = f"target-{i}"
        src, tgt = group[0].source, group[0].target
        inner = [
            _curves(group, sid, pol, figures),
            _weights(group, tables, sid, pol, figures),
            _transportability(group, tables, sid),
            _decomposition(group, tables, sid, figures),
        ]
        methods = ", ".join(r.method for r in group)
        parts.append(
            _Html(
                f'<section id="{sid}" class="target" data-source="{_e(src)}" '
                f'data-target="{_e(tgt)}">\n<h2>{_e(src)} → {_e(tgt)}</h2>\n'
                f"<p>Methods: {_e(methods)}.</p>\n" + "\n".join(inner) + "\n</section>"
            )
        )
        toc.append((sid, f"{src} → {tgt}"))
    given = _screen_settings(settings or {}, flat, pol)
    merged = {**analysis_settings(flat, policy=pol), **given}
    merged["disclosure_policy"] = (
        f"{pol.name}: counts rounded to {pol.round_to}, cells of at least {pol.min_cell}"
    )
    srows = [[k, _setting(_json_safe(v))] for k, v in merged.items()]
    parts.append(_section("settings", "Settings", [_table(["setting", "value"], srows)]))
    vrows = [[k, v] for k, v in versions().items()]
    parts.append(_section("versions", "Versions", [_table(["package", "version"], vrows)]))
    toc += [("settings", "Settings"), ("versions", "Versions")]
    return _page(title, toc, parts)


def _page(title: str, toc: Sequence[tuple[str, str]], parts: Sequence[str]) -> str:
    """The HTML page around the sections: head with the inline CSS, title, contents."""
    nav = (
        "<nav><ul>"
        + "".join(f'<li><a href="#{_e(a)}">{_e(b)}</a></li>' for a, b in toc)
        + "</ul></nav>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="transport {_e(versions()["transport"])}">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1></header>\n{nav}\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


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
        at risk and diagnostics are shown under (default ``Policy()``: counts rounded
        to 5, cells of at least 10).
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
