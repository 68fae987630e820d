"""Release of aggregates: a target summary (means, SDs, level shares, its Kaplan–Meier
table on the grid) and a weighting's diagnostics (balance table, ESS, quantiles)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from transport._validate import is_finite_number
from transport.design import read_column
from transport.disclosure.record import Release
from transport.exceptions import DataError, DisclosureError
from transport.policy import (
    Policy,
    balance_dominated,
    balance_withheld,
    cells_to_hide,
    check_interval,
    coarsen_km,
    column_rule,
    design_level_counts,
    pooled_name,
    refuse_forbidden_levels,
    refuse_free_text,
    refuse_small_cohorts,
    refuse_small_ess,
    refuse_steep_formula,
    refuse_unmapped,
    steep_columns,
    top_share,
    unnamed_columns,
    weight_quantiles,
)
from transport.summary import TargetSummary
from transport.weighting import Weights

__all__ = ["release_summary", "release_weights"]


# -- target summaries ----------------------------------------------------------------------
def release_summary(obj: TargetSummary, policy: Policy, record: Release) -> None:
    """``target_summary.json``: levels with fewer than ``min_cell`` patients pooled into a
    generic one (their names and design columns dropped), level shares and design-column
    means withheld where a cell is small (with their complement), a column dominated by
    a few patients or whose few values' counts its moments give away withheld, ``n``
    rounded (SDs restated at it), the Kaplan–Meier table on the grid."""
    _check_summary(obj, policy, record)
    data = obj.to_dict()
    suppressed: dict[str, str] = dict(obj.suppressed)
    dropped = _pool_levels(obj, data, suppressed, policy, record)
    _withhold_columns(obj, data, suppressed, dropped, policy, record)
    keep = [j for j in range(len(obj.columns)) if j not in dropped]
    for key in ("columns", "mean", "sd"):
        data[key] = [data[key][j] for j in keep]
    n_released = max(policy.round_count(obj.n), policy.min_cell)
    if n_released != obj.n:
        # SDs use the n - 1 denominator: restate them at the released n so that the
        # second moments a reader rebuilds from (n, mean, SD) are the cohort's own
        factor = math.sqrt((obj.n - 1) / obj.n * n_released / (n_released - 1))
        data["sd"] = [None if x is None else x * factor for x in data["sd"]]
    data["n"] = n_released
    for key in ("counts", "concentration", "value_cells", "column_levels"):
        data[key] = None
    data["suppressed"] = suppressed
    if obj.km is not None:
        data["km"] = _release_summary_km(obj, policy, record)
    TargetSummary.from_dict(data)  # what is released must read back
    record.add_json("target_summary.json", data)


def _check_summary(obj: TargetSummary, policy: Policy, record: Release) -> None:
    where = f"target summary {obj.name!r}"
    record.check_names(list(obj.types), where)
    record.check_names(list(obj.columns), where)
    record.check_formula(obj.formula, list(obj.types), where)
    continuous = [v for v, t in obj.types.items() if t == "continuous"]
    refuse_steep_formula(obj.formula, continuous, where)
    unmapped = [c for c in obj.columns if read_column(c, list(obj.types), obj.levels) is None]
    if unmapped:
        raise DisclosureError(
            f"{len(unmapped)} design column(s) of {where} code levels the gate cannot read "
            "back to a covariate's levels (rule: level_coding); C() of a continuous "
            "covariate names its values: code it as a categorical covariate"
        )
    if obj.counts is None or obj.concentration is None or obj.value_cells is None:
        raise DisclosureError(
            f"{where} carries no per-column counts and contributions (it was released "
            "before, or read from an older file): the cell and dominance rules cannot be "
            "checked (rules: min_cell, dominance); rebuild it with TargetSummary.from_cohort "
            "inside the environment"
        )
    if obj.column_levels is None:
        raise DisclosureError(
            f"{where} does not say which levels its design columns are dummies of: the "
            "levels' cell rule cannot be checked (rule: min_cell); rebuild it with "
            "TargetSummary.from_cohort inside the environment"
        )
    if obj.n < policy.min_cell:
        raise DisclosureError(
            f"{where} describes fewer than {policy.min_cell} patients (rule: min_cell)"
        )
    counts = {v: [s * obj.n for s in obj.shares[v]] for v in obj.levels}
    for v, levels in obj.levels.items():
        refuse_forbidden_levels({v: levels}, policy, where)
        refuse_free_text({v: levels}, counts, policy, where)
        if len(levels) * policy.min_cell > obj.n:
            raise DisclosureError(
                f"covariate {v!r} of {where} has {len(levels)} levels, more than its "
                f"{policy.min_cell}-patient cells allow (rule: min_cell; an identifier or "
                "free text?): merge its levels before summarising"
            )
    if obj.km is not None and obj.km.get("delayed_entry"):
        raise DisclosureError(
            f"the Kaplan–Meier table of {where} has delayed entry, whose risk sets the "
            "release grid cannot yet rebuild (rule: km_grid); summarise without km_times"
        )


def _pool_levels(
    obj: TargetSummary,
    data: dict[str, Any],
    suppressed: dict[str, str],
    policy: Policy,
    record: Release,
) -> set[int]:
    """Per categorical: levels with fewer than ``min_cell`` patients pooled into a
    generic level (their names never released); then primary and complementary
    suppression of the shares, and the design columns that involve a withheld level
    withheld. Returns the design columns of pooled levels, to be dropped name and all."""
    assert obj.column_levels is not None
    dropped: set[int] = set()
    for v, c in data["covariates"].items():
        if c["type"] != "categorical":
            continue
        cells = [s * obj.n for s in c["shares"]]
        rare = {
            lv for lv, k in zip(c["levels"], cells, strict=True) if 0 < round(k) < policy.min_cell
        }
        if rare:
            kept = [i for i, lv in enumerate(c["levels"]) if lv not in rare]
            pool = pooled_name([c["levels"][i] for i in kept])
            c["levels"] = [c["levels"][i] for i in kept] + [pool]
            c["shares"] = [c["shares"][i] for i in kept] + [
                sum(s for lv, s in zip(obj.levels[v], obj.shares[v], strict=True) if lv in rare)
            ]
            c["pooled"] = pool
            record.withhold(
                f"names of the levels of {v!r} with fewer than {policy.min_cell} patients",
                "min_cell",
                f"pooled into the level {pool!r}; their names and design columns are not released",
            )
            dropped |= {
                j
                for j, pairs in enumerate(obj.column_levels)
                if any((v, lv) in pairs for lv in rare)
            }
        hidden = {
            c["levels"][i] for i in cells_to_hide([s * obj.n for s in c["shares"]], policy.min_cell)
        }
        for i, lv in enumerate(c["levels"]):
            if lv in hidden:
                c["shares"][i] = None
                suppressed[f"{v}={lv}"] = "min_cell"
                record.withhold(
                    f"share of {v}={lv}",
                    "min_cell",
                    f"fewer than {policy.min_cell} patients in the level, or needed to keep "
                    "such a level from being recovered by subtraction",
                )
        for j, pairs in enumerate(obj.column_levels):
            col = obj.columns[j]
            if (
                j in dropped
                or data["mean"][j] is None
                or not any((v, lv) in pairs for lv in hidden)
            ):
                continue
            data["mean"][j] = data["sd"][j] = None
            suppressed[col] = "min_cell"
            record.withhold(
                f"mean and SD of design column {col!r}", "min_cell", "it involves a withheld level"
            )
    return dropped


def _withhold_columns(
    obj: TargetSummary,
    data: dict[str, Any],
    suppressed: dict[str, str],
    dropped: set[int],
    policy: Policy,
    record: Release,
) -> None:
    """Design columns resting on few patients or on all but a few (``min_cell``), whose
    moments give away their few values' counts (``few_values``), or dominated by a few
    patients (``dominance``, ``p_percent``): :func:`~transport.policy.column_rule`."""
    assert obj.counts is not None and obj.value_cells is not None
    assert obj.concentration is not None
    for j, col in enumerate(obj.columns):
        if j in dropped or data["mean"][j] is None:
            continue
        found = column_rule(obj.counts[j], obj.n, obj.value_cells[j], obj.concentration[j], policy)
        if found is not None:
            rule, why = found
            data["mean"][j] = data["sd"][j] = None
            suppressed[col] = rule
            record.withhold(f"mean and SD of design column {col!r}", rule, why)


def _release_summary_km(obj: TargetSummary, policy: Policy, record: Release) -> dict[str, Any]:
    km = obj.km
    assert km is not None
    if "n_event" not in km or "n_censor" not in km:
        raise DisclosureError(
            f"the Kaplan–Meier table of target summary {obj.name!r} has no event and exit "
            "counts per interval, so its steps cannot be checked (rule: min_km_step); "
            "rebuild the summary with TargetSummary.from_cohort"
        )
    _check_km_counts(obj.name, km)
    conf_type = check_interval(
        km.get("conf_type", "log-log"), 0.95, f"Kaplan–Meier of {obj.name!r}"
    )
    times = np.asarray(km["time"], dtype=np.float64)
    step = policy.grid_step_in(obj.time_unit)
    rows = []
    for j, t in enumerate(times):  # only times on the policy's grid
        k = round(t / step)
        if k >= 1 and abs(t - k * step) <= 1e-9 * max(1.0, t):
            rows.append(j)
        else:
            record.withhold(
                f"Kaplan–Meier of {obj.name!r} at time {t:g}",
                "km_grid",
                f"not a multiple of the grid step {step:g}: its counts merge into the next "
                "grid time",
            )
    table: dict[str, Any] = {"time": times[rows]}
    for key in ("n_event", "n_censor"):  # merge the counts of dropped times forward
        cum = np.cumsum(np.asarray(km[key], dtype=np.float64))[rows]
        table[key] = np.diff(np.concatenate(([0.0], cum)))
    frame = coarsen_km(
        table,
        obj.n,
        policy,
        record.withhold,
        f"Kaplan–Meier of {obj.name!r}",
        conf_type=conf_type,
    )
    return {"conf_type": conf_type, **frame.to_dict(as_series=False)}


def _check_km_counts(name: str, km: dict[str, Any]) -> None:
    """The lists of a summary's Kaplan–Meier table that the gate reads: ``time``, and
    ``n_event`` and ``n_censor`` (which a summary document's shape does not cover), one
    finite number >= 0 per time. A table built or edited by hand is a ``DataError``
    naming the field, never its values."""
    where = f"the Kaplan–Meier table of target summary {name!r}"
    size: int | None = None
    for key in ("time", "n_event", "n_censor"):
        values = km.get(key)
        if isinstance(values, np.ndarray):
            values = values.tolist()
        if (
            not isinstance(values, list | tuple)
            or size not in (None, len(values))
            or not all(is_finite_number(x) and x >= 0 for x in values)
        ):
            per = "" if size is None else f" per time ({size})"
            raise DataError(
                f"{where}: field {key!r} must hold one finite number >= 0{per} (rule: a "
                "life table's times and counts)"
            )
        size = len(values)


# -- weights diagnostics -------------------------------------------------------------------
_BALANCE_VALUES = ("mean_source", "mean_source_weighted", "mean_target", "smd_before", "smd_after")


def release_weights(obj: Weights, policy: Policy, record: Release) -> None:
    """``weights_balance.csv`` with the rows :func:`~transport.policy.steep_columns`,
    :func:`~transport.policy.balance_withheld` and
    :func:`~transport.policy.balance_dominated` name withheld and those naming a small
    level dropped (:func:`~transport.policy.unnamed_columns`; a design whose columns'
    levels cannot be read back is refused, rule ``level_coding``), and
    ``weights.json``: ESS and the weight quantiles the cell rule allows. Weights whose
    effective sample size is below :attr:`Policy.ess_floor` are refused (rule
    ``min_ess``): their weighted means are a few patients' values."""
    design = obj.design
    where = f"weights of {obj.source!r}"
    record.check_names(list(design.covariates), where)
    record.check_names(list(design.columns), where)
    refuse_unmapped(design, where)
    refuse_free_text(design.levels, design_level_counts(design), policy, where)
    n, nt = obj.n, int(obj.target_n)
    refuse_small_cohorts([(obj.source, n), (obj.target, nt)], policy)
    refuse_small_ess(obj.values, policy, f"{obj.source!r} -> {obj.target!r}")
    table = obj.balance()
    cols = {c: table[c].to_list() for c in table.columns}
    # the plan chose the formula: a steep term's means, either cohort's, are its pick
    hidden = {
        design.columns[j]: ("steep_transform", f"its term has {why}, chosen by the plan")
        for j, why in steep_columns(design).items()
    }
    hidden |= {
        col: ("min_cell", why)
        for col, why in balance_withheld(obj, policy).items()
        if col not in hidden
    }
    hidden |= {col: f for col, f in balance_dominated(obj, policy).items() if col not in hidden}
    unnamed = unnamed_columns(design, policy)
    for j, col in enumerate(design.columns):
        if col in hidden:
            for c in _BALANCE_VALUES:
                cols[c][j] = None
            if j not in unnamed:  # the manifest never names a small level either
                record.withhold(f"balance of design column {col!r}", *hidden[col])
    if unnamed:
        keep = [j for j in range(len(design.columns)) if j not in unnamed]
        cols = {c: [v[j] for j in keep] for c, v in cols.items()}
        record.withhold(
            "balance rows of design columns that name a level with fewer than "
            f"{policy.min_cell} source patients",
            "min_cell",
            "dropped, names and all: a level's name leaves only with enough patients behind it",
        )
    record.add_csv("weights_balance.csv", pl.DataFrame(cols, schema=table.schema))
    w = obj.values / obj.values.mean()
    quantiles = {k: v for k, v in weight_quantiles(w, policy).items() if v is not None}
    info: dict[str, Any] = {
        "method": obj.method,
        "source": obj.source,
        "target": obj.target,
        "n_source": policy.round_count(n),
        "n_target": policy.round_count(nt),
        "ess": round(obj.ess, 1),
        "ess_share": round(obj.ess / n, 4),
        "normalised_weight_quantiles": quantiles,
    }
    top = top_share(w, policy)
    if top is not None:
        info["top1_share"] = top
    record.withhold("smallest and largest weight", "min_cell", "each is one patient's value")
    record.add_json("weights.json", info)
