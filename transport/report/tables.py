"""The numbers of the analysis report: the results it accepts, its tidy tables, the
settings it shows and the versions it lists.

:func:`collect_results` flattens what the report functions accept into one ordered list
of results; :func:`tidy_tables` returns the numbers the report shows as tidy polars
frames, under the disclosure rules of :mod:`transport.policy`; :func:`analysis_settings`
and :func:`screen_settings` say what was run, :func:`versions` with what.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, cast

import polars as pl

from transport.inference import IntervalKind
from transport.methods import METHODS
from transport.policy import (
    QUANTILES,
    Policy,
    balance_dominated,
    balance_withheld,
    design_level_counts,
    floor_policy,
    forbidden_role,
    free_text_reason,
    released_count,
    steep_columns,
    top_share,
    unnamed_columns,
    weight_quantiles,
)
from transport.report.html import json_safe
from transport.report.released import gate, released_distance, released_parts
from transport.result import TransportResult, TransportResults

if TYPE_CHECKING:
    from transport.weighting.weights import Weights

__all__ = [
    "PACKAGES",
    "QUANTILE_COLUMNS",
    "ReportInput",
    "analysis_settings",
    "collect_results",
    "group_results",
    "resolve_policy",
    "screen_settings",
    "tidy_tables",
    "versions",
    "withheld_columns",
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


def group_results(flat: list[TransportResult]) -> list[list[TransportResult]]:
    """Results by (source, target), in the order of :func:`collect_results`."""
    groups: dict[tuple[str, str], list[TransportResult]] = {}
    for r in flat:
        groups.setdefault((r.source, r.target), []).append(r)
    return list(groups.values())


def resolve_policy(policy: Policy | None) -> Policy:
    """``policy``, or the environment's (``TRANSPORT_POLICY``, else ``Policy()``) when it
    is ``None``; a policy looser than the environment's floor is refused, as the release
    gate refuses it (rule ``policy_floor``: the report leaves as the gate's files do);
    another type is a TypeError."""
    floor = floor_policy()
    if policy is None:
        return floor or Policy()
    if not isinstance(policy, Policy):
        raise TypeError(
            f"The 'policy' parameter must be a transport.disclosure.Policy. "
            f"Got {type(policy).__name__}."
        )
    if floor is not None:
        floor.refuse_looser(policy, f"the policy {policy.name!r} of this report")
    return policy


# -- tidy tables ---------------------------------------------------------------------------
_KEYS = {"source": pl.String, "target": pl.String, "method": pl.String}
#: The weights table's quantile columns, ``q01`` ... ``q99``.
QUANTILE_COLUMNS = tuple(f"q{round(100 * q):02d}" for q in QUANTILES)
_BALANCE_VALUES = ["mean_source", "mean_source_weighted", "mean_target", "smd_before", "smd_after"]
_SCHEMAS: dict[str, dict[str, Any]] = {
    "cohorts": {
        "cohort": pl.String,
        "role": pl.String,
        "data": pl.String,
        "n": pl.Int64,
        "events": pl.Int64,
        "note": pl.String,
    },
    "equivalence": {
        **_KEYS,
        "estimand": pl.String,
        "time": pl.Float64,
        **dict.fromkeys(["difference", "lower", "upper", "margin", "equivalence_p"], pl.Float64),
        "verdict": pl.String,
    },
    "curve_distance": {
        **_KEYS,
        **dict.fromkeys(
            ["window_start", "window_end", "value", "se", "ci_lower", "ci_upper"], pl.Float64
        ),
        "ci_method": pl.String,
    },
    "weights": {
        **_KEYS,
        "weights": pl.String,
        "ess": pl.Float64,
        "ess_share": pl.Float64,
        **dict.fromkeys(QUANTILE_COLUMNS, pl.Float64),
        "top1_share": pl.Float64,
    },
    "balance": {
        **_KEYS,
        "covariate": pl.String,
        **dict.fromkeys(_BALANCE_VALUES, pl.Float64),
        "withheld": pl.String,
    },
}


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


def withheld_columns(w: Weights, policy: Policy) -> dict[str, str]:
    """Design columns whose balance the report withholds, and why, as the release gate
    judges weights diagnostics: ``"forbidden:<role>"`` (the row is dropped, name and
    all) for a column built from a covariate with a forbidden role or whose levels read
    as free text (``forbidden:free_text``); ``"unnamed:min_cell"`` (dropped too) for a
    column naming a level with fewer than ``min_cell`` source patients, and
    ``"unnamed:level_coding"`` for one whose levels cannot be read back from its name;
    ``"steep_transform"`` (values withheld) for a term of a steep transform
    (:func:`~transport.policy.steep_columns`: the plan chose the formula); ``"min_cell"``
    (values withheld) when fewer than ``min_cell`` patients have or lack a 0/1 column in
    either cohort, for an interaction of a continuous covariate (its target count is
    unknown), or when a categorical's small reference level could be recovered from its
    other levels' shares; ``"dominance"`` or ``"p_percent"`` (values withheld) when a
    few source patients dominate the column's mean."""
    design = w.design
    small = balance_withheld(w, policy)
    dominated = balance_dominated(w, policy)
    unnamed = unnamed_columns(design, policy)
    unmapped = set(design.unmapped_columns)
    steep = steep_columns(design)
    counts = design_level_counts(design)
    free_text = {
        v
        for v, lv in design.levels.items()
        if "free_text" in policy.forbidden_roles and free_text_reason(lv, counts.get(v))
    }
    out: dict[str, str] = {}
    for j, col in enumerate(design.columns):
        # judged by the covariates a column is built from, not by its level's text
        covs = design.covariates_of([j]) or [col]
        roles = [forbidden_role(c, policy) for c in covs]
        roles += ["free_text" for c in covs if c in free_text]
        role = next((x for x in roles if x is not None), None)
        if role is not None:
            out[col] = f"forbidden:{role}"
        elif j in unnamed:
            out[col] = "unnamed:" + ("level_coding" if j in unmapped else "min_cell")
        elif j in steep:
            out[col] = "steep_transform"
        elif col in small:
            out[col] = "min_cell"
        elif col in dominated:
            out[col] = dominated[col][0]
    return out


def _balance(r: TransportResult, policy: Policy) -> pl.DataFrame:
    assert r.weights is not None
    hidden = withheld_columns(r.weights, policy)
    table = (
        r.weights.balance()
        .with_columns(
            withheld=pl.col("covariate").replace_strict(
                hidden, default=None, return_dtype=pl.String
            )
        )
        .filter(~pl.col("withheld").fill_null("").str.contains("^(?:forbidden|unnamed):"))
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


def _distance(
    r: TransportResult, kind: IntervalKind, policy: Policy, refused: bool
) -> dict[str, Any]:
    assert r.window is not None
    return {
        "source": r.source,
        "target": r.target,
        "method": r.method,
        "window_start": r.window[0],
        "window_end": r.window[1],
        **released_distance(r, kind, policy, refused),
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
        equivalence columns when a margin was given), as the release gate releases it
        (:func:`~transport.policy.guard_summary`): S(t) and RMST rows the patients do
        not support withheld, medians rounded outwards to the grid, their SEs withheld;
        every value of a result the gate refuses withheld.
    ``equivalence``
        :meth:`~transport.TransportResult.equivalence` of the results given a margin,
        with ``source``, ``target`` and ``method`` (no rows when none was), under the
        same rules (a median's difference to the grid step, its p-value withheld).
    ``decomposition``
        :meth:`~transport.TransportResult.decomposition`, stacked, under the same rules.
    ``curve_distance``
        Mean absolute distance between transported and observed curves over the window,
        per result with an observed curve; withheld (null) when the window's ends, taken
        as released times beside the summary's, have between them (or any released
        time) fewer than ``min_km_step`` exits in a cohort, or when the gate refuses the
        result.
    ``weights``
        Per weighting result: ``ess``, ``ess_share`` and quantiles ``q01`` ... ``q99``
        of the weights divided by their mean, and ``top1_share`` (null where fewer than
        ``min_cell`` rows lie beyond).
    ``balance``
        :meth:`~transport.Weights.balance` per weighting result; a design column with a
        forbidden role is left out, one with too few patients has null values and
        ``withheld = "min_cell"``.

    Every table starts with ``source``, ``target`` and ``method`` (but ``cohorts``).
    ``results`` is anything :func:`collect_results` accepts; ``policy`` defaults to the
    environment's (:func:`resolve_policy`).
    """
    flat = collect_results(results)
    pol = resolve_policy(policy)
    refused = {id(r): gate(r, pol)[1] is not None for r in flat}  # the gate, once each
    parts = [released_parts(r, interval_kind, pol, refused[id(r)]) for r in flat]
    weighted = [r for r in flat if r.weights is not None]
    return {
        "cohorts": _cohorts(flat, pol),
        "summary": pl.concat([s for s, _, _ in parts], how="diagonal_relaxed"),
        "equivalence": _stack(
            [_keyed(r, e) for r, (_, e, _) in zip(flat, parts, strict=True) if e is not None],
            "equivalence",
        ),
        "decomposition": pl.concat(
            [_keyed(r, d) for r, (_, _, d) in zip(flat, parts, strict=True)],
            how="diagonal_relaxed",
        ),
        "curve_distance": pl.DataFrame(
            [
                _distance(r, interval_kind, pol, refused[id(r)])
                for r in flat
                if r.observed is not None and r.window
            ],
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


def analysis_settings(results: ReportInput, *, policy: Policy | None = None) -> dict[str, Any]:
    """What the results say about how they were produced (JSON-safe).

    ``sources``, ``targets``, ``methods``, ``time_unit``, ``times``, ``tau``,
    ``window``, ``ci_level``, ``margin``, ``n_boot``, ``bootstrap_seed`` (the seed's
    entropy, enough to reproduce the bootstrap) and ``participation_formula`` (the
    weighting design; withheld when it names a column with a forbidden role under
    ``policy``). A setting that differs between results is the list of its values.
    """
    flat = collect_results(results)
    pol = resolve_policy(policy)
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
        "margin": _one_or_all([json_safe(r.margin) for r in flat]),
        "n_boot": _one_or_all([b.n_boot if b is not None else 0 for b in boot]),
        "bootstrap_seed": _one_or_all([str(b.entropy) for b in boot if b is not None]),
        "participation_formula": _one_or_all(formulas),
    }
    return cast("dict[str, Any]", json_safe(out))


_WITHHELD_SETTING = "withheld (it names a column with a forbidden role)"
_NAME = re.compile(r"`([^`]+)`|([A-Za-z_.][A-Za-z0-9_.]*)")


def screen_settings(
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
