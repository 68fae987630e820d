"""Release of aggregates: a target summary (means, SDs, level shares, its Kaplan–Meier
table on the grid) and a weighting's diagnostics (balance table, ESS, quantiles)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import (
    Policy,
    balance_withheld,
    cells_to_hide,
    coarsen_km,
    refuse_forbidden_levels,
    refuse_small_cohorts,
    refuse_small_ess,
    top_share,
    weight_quantiles,
)
from transport.summary import TargetSummary
from transport.weighting import Weights

__all__ = ["release_summary", "release_weights"]


# -- target summaries ----------------------------------------------------------------------
def release_summary(obj: TargetSummary, policy: Policy, record: Release) -> None:
    """``target_summary.json``: level shares and design-column means withheld where a
    cell is small (with their complement), ``n`` rounded (SDs restated at it), the
    Kaplan–Meier table on the grid."""
    _check_summary(obj, policy, record)
    data = obj.to_dict()
    suppressed: dict[str, str] = dict(obj.suppressed)
    _withhold_levels(obj, data, suppressed, policy, record)
    _withhold_columns(obj, data, suppressed, policy, record)
    n_released = max(policy.round_count(obj.n), policy.min_cell)
    if n_released != obj.n:
        # SDs use the n - 1 denominator: restate them at the released n so that the
        # second moments a reader rebuilds from (n, mean, SD) are the cohort's own
        factor = math.sqrt((obj.n - 1) / obj.n * n_released / (n_released - 1))
        data["sd"] = [None if x is None else x * factor for x in data["sd"]]
    data["n"] = n_released
    data["counts"] = None
    data["suppressed"] = suppressed
    if obj.km is not None:
        data["km"] = _release_summary_km(obj, policy, record)
    TargetSummary.from_dict(data)  # what is released must read back
    record.add_json("target_summary.json", data)


def _check_summary(obj: TargetSummary, policy: Policy, record: Release) -> None:
    record.check_names(list(obj.types), f"target summary {obj.name!r}")
    record.check_names(list(obj.columns), f"target summary {obj.name!r}")
    record.check_formula(obj.formula, list(obj.types), f"target summary {obj.name!r}")
    if obj.counts is None:
        raise DisclosureError(
            f"target summary {obj.name!r} carries no per-column counts (it was released "
            "before, or read from an older file): the cell rule cannot be checked (rule: "
            "min_cell); rebuild it with TargetSummary.from_cohort inside the environment"
        )
    if obj.n < policy.min_cell:
        raise DisclosureError(
            f"target summary {obj.name!r} describes fewer than {policy.min_cell} patients "
            "(rule: min_cell)"
        )
    for v, levels in obj.levels.items():
        refuse_forbidden_levels({v: levels}, policy, f"target summary {obj.name!r}")
        if len(levels) * policy.min_cell > obj.n:
            raise DisclosureError(
                f"covariate {v!r} of target summary {obj.name!r} has {len(levels)} levels, "
                f"more than its {policy.min_cell}-patient cells allow (rule: min_cell; an "
                "identifier or free text?): merge its levels before summarising"
            )
    if obj.km is not None and obj.km.get("delayed_entry"):
        raise DisclosureError(
            f"the Kaplan–Meier table of target summary {obj.name!r} has delayed entry, whose "
            "risk sets the release grid cannot yet rebuild (rule: km_grid); summarise "
            "without km_times"
        )


def _withhold_levels(
    obj: TargetSummary,
    data: dict[str, Any],
    suppressed: dict[str, str],
    policy: Policy,
    record: Release,
) -> None:
    """Categorical levels: primary and complementary suppression, and the design
    columns that involve a withheld level."""
    for v, c in data["covariates"].items():
        if c["type"] != "categorical":
            continue
        cells = [None if s is None else s * obj.n for s in c["shares"]]
        hidden = cells_to_hide(cells, policy.min_cell)
        for i in hidden:
            item = f"{v}={c['levels'][i]}"
            c["shares"][i] = None
            suppressed[item] = "min_cell"
            record.withhold(
                f"share of {item}",
                "min_cell",
                f"fewer than {policy.min_cell} patients in the level, or needed to keep "
                "such a level from being recovered by subtraction",
            )
        hidden_levels = {f"{v}[{c['levels'][i]}]" for i in hidden} | {
            f"{v}[T.{c['levels'][i]}]" for i in hidden
        }
        for j, col in enumerate(data["columns"]):
            if hidden_levels & set(col.split(":")) and data["mean"][j] is not None:
                data["mean"][j] = data["sd"][j] = None
                suppressed[col] = "min_cell"
                record.withhold(
                    f"mean and SD of design column {col!r}",
                    "min_cell",
                    "it involves a withheld level",
                )


def _withhold_columns(
    obj: TargetSummary,
    data: dict[str, Any],
    suppressed: dict[str, str],
    policy: Policy,
    record: Release,
) -> None:
    """Design columns (interactions) resting on few patients, or on all but a few."""
    assert obj.counts is not None
    for j, col in enumerate(data["columns"]):
        k = obj.counts[j]
        small = 0 < k < policy.min_cell or 0 < obj.n - k < policy.min_cell
        if data["mean"][j] is not None and small:
            data["mean"][j] = data["sd"][j] = None
            suppressed[col] = "min_cell"
            record.withhold(
                f"mean and SD of design column {col!r}",
                "min_cell",
                f"fewer than {policy.min_cell} patients have (or lack) a nonzero value",
            )


def _release_summary_km(obj: TargetSummary, policy: Policy, record: Release) -> dict[str, Any]:
    km = obj.km
    assert km is not None
    if "n_event" not in km or "n_censor" not in km:
        raise DisclosureError(
            f"the Kaplan–Meier table of target summary {obj.name!r} has no event and exit "
            "counts per interval, so its steps cannot be checked (rule: min_km_step); "
            "rebuild the summary with TargetSummary.from_cohort"
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
        conf_type=km.get("conf_type", "log-log"),
    )
    return {"conf_type": km.get("conf_type", "log-log"), **frame.to_dict(as_series=False)}


# -- weights diagnostics -------------------------------------------------------------------
_BALANCE_VALUES = ("mean_source", "mean_source_weighted", "mean_target", "smd_before", "smd_after")


def release_weights(obj: Weights, policy: Policy, record: Release) -> None:
    """``weights_balance.csv`` with the rows :func:`~transport.policy.balance_withheld`
    names withheld, and ``weights.json``: ESS and the weight quantiles the cell rule
    allows. Weights whose effective sample size is below :attr:`Policy.ess_floor` are
    refused (rule ``min_ess``): their weighted means are a few patients' values."""
    design = obj.design
    record.check_names(list(design.covariates), f"weights of {obj.source!r}")
    record.check_names(list(design.columns), f"weights of {obj.source!r}")
    n, nt = obj.n, int(obj.target_n)
    refuse_small_cohorts([(obj.source, n), (obj.target, nt)], policy)
    refuse_small_ess(obj.ess, policy, f"{obj.source!r} -> {obj.target!r}")
    table = obj.balance()
    cols = {c: table[c].to_list() for c in table.columns}
    hidden = balance_withheld(obj, policy)
    for j, col in enumerate(design.columns):
        if col in hidden:
            for c in _BALANCE_VALUES:
                cols[c][j] = None
            record.withhold(f"balance of design column {col!r}", "min_cell", hidden[col])
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
