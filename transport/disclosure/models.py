"""Release of a shipped outcome model and of the result of applying it in the target's
environment (:mod:`transport.shipping`), under the rules of :mod:`transport.policy`.

A model: the cell, degrees-of-freedom and grid rules (:func:`~transport.policy.check_model`),
its baseline only at the grid times :func:`~transport.policy.coarsen_km` keeps, a Cox
model's centre on a lattice and its baseline moved to it (``centre_lattice``), counts
rounded (but a piecewise exponential model's interval events, which its information
holds exactly, released exact), per-level counts left out, its bootstrap as a summary
(``bootstrap_summary``: never the refits or their seed). A result, a target-side
aggregate: the model's bounds over the target (``model_bounds``), the summary under
:func:`~transport.policy.guard_summary` (the rule a :class:`~transport.TransportResult`
is released under) and :func:`~transport.policy.guard_transported`
(``min_contributors``, rounded), the transported curve at the target's own released
steps under the same rules (:func:`~transport.policy.transported_curve`) and the
target's observed curve as its life table.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import (
    Policy,
    centre_on_lattice,
    check_log_hazard_spread,
    check_model,
    coarsen_km,
    curve_grid_counts,
    guard_summary,
    guard_transported,
    refuse_forbidden_levels,
    refuse_free_text,
    refuse_small_cohorts,
    refuse_unmapped,
    rounded_at_least,
    transported_curve,
    transported_precision,
)
from transport.shipping import MODEL_FILE, ShippedModel, ShippedResult, json_floats
from transport.shipping.bootstrap import BootstrapSummary, summarise

__all__ = ["release_model", "release_shipped_result"]


def release_model(obj: ShippedModel, policy: Policy, record: Release) -> None:
    """``shipped_model.json`` (what :meth:`ShippedModel.from_release` reads) and
    ``shipped_model_coef.csv``."""
    where = f"shipped model of {obj.source!r}"
    record.check_names(list(obj.design.covariates), where)
    record.check_names(list(obj.design.columns), where)
    record.check_formula(obj.design.formula, obj.design.covariates, where)
    refuse_forbidden_levels(obj.design.levels, policy, f"the {where}")
    refuse_unmapped(obj.design, f"the {where}")
    counts = obj.level_counts or {}
    refuse_free_text(
        obj.design.levels,
        {v: list(counts[v].values()) for v in obj.design.levels if v in counts},
        policy,
        f"the {where}",
    )
    check_model(obj, policy, where)
    data = obj.to_dict()
    idx = _released_grid(obj, data, policy, record, where)
    moved = None
    if obj.kind == "cox":
        assert obj.hazard is not None and obj.center is not None
        centre = centre_on_lattice(obj.center, obj.column_scale, where)
        moved = centre - obj.center
        data["cox"]["center"] = json_floats(centre)
        data["cox"]["hazard"] = json_floats(obj.hazard[idx] * np.exp(obj.coef @ moved))
        record.withhold(
            "the exact means of the design columns (the Cox model's centre)",
            "centre_lattice",
            "released rounded to a power of ten at most each column's SD, the baseline "
            "(and each bootstrap refit's) moved to it: the same predictions, and two "
            "releases one patient apart no longer give that patient's row",
        )
    else:
        data["pwexp"]["interval_counts"] = _released_intervals(obj, policy, where)
    boot = _bootstrap_summary(obj, idx, record, moved)
    data["bootstrap"] = None if boot is None else json_floats(boot.to_dict())
    data["n"] = float(policy.round_count(obj.n))
    # a piecewise exponential model's information holds its interval event counts (and
    # so their total) exactly: rounded beside it, they would be undone
    data["n_events"] = float(
        obj.n_events if obj.kind == "pwexp" else policy.round_count(obj.n_events)
    )
    data["level_counts"] = None
    data["column_counts"] = None
    data["column_binary"] = None
    data["column_concentration"] = None
    data["column_scale"] = None
    data["released"] = True
    data["policy"] = policy.name
    record.withhold(
        "per-level and per-column source counts and contributions",
        "min_cell",
        "checked against the cell and dominance rules, then left out; counts are rounded",
    )
    ShippedModel.from_dict(json.loads(json.dumps(data)))  # what is released must read back
    record.add_json(MODEL_FILE, data)
    coef = pl.DataFrame(
        {"term": list(obj.names), "estimate": obj.coef, "se": np.sqrt(np.diag(obj.cov))}
    )
    if boot is not None:
        P = obj.coef.size
        coef = coef.with_columns(
            pl.Series("bootstrap_se", boot.se[:P]),
            pl.Series("bootstrap_lower", boot.lower[:P]),
            pl.Series("bootstrap_upper", boot.upper[:P]),
        )
    record.add_csv("shipped_model_coef.csv", coef)


def _bootstrap_summary(
    obj: ShippedModel, idx: np.ndarray, record: Release, moved: np.ndarray | None
) -> BootstrapSummary | None:
    """The bootstrap as it may be released (rule ``bootstrap_summary``): the covariance,
    SEs and percentile limits of the refits' coefficients and Cox baselines at the
    released grid times (:func:`~transport.shipping.bootstrap.summarise`), never the
    refits or their seed, from which the resamples, and by regression each source
    row's influence, could be regenerated."""
    if obj.boot_coef is None:
        return None
    boot = summarise(obj, idx, moved)
    record.withhold(
        f"the {obj.n_boot} bootstrap refits and their seed's entropy",
        "bootstrap_summary",
        "released as summaries only (n_boot, failures, the covariance, SEs and 95% "
        "percentile limits of the coefficients and the baseline at the released grid "
        "times): with the seed, the refits give each source row's influence back"
        + ("" if boot is not None else "; fewer than 2 refits succeeded: none released"),
    )
    return boot


def _released_grid(
    obj: ShippedModel, data: dict[str, Any], policy: Policy, record: Release, where: str
) -> np.ndarray:
    """The baseline's grid as :func:`coarsen_km` releases it (counts rounded; the
    baseline hazard is exact, so the exact counts meet the rules too: ``exact_values``):
    sets ``data``'s grid and counts, returns the indices of the kept grid times."""
    table = {"time": obj.grid, **obj.grid_counts}
    frame = coarsen_km(
        table, obj.n, policy, record.withhold, f"baseline of the {where}", exact_values=True
    )
    kept_times = frame["time"].to_numpy()
    if kept_times.size == 0:
        raise DisclosureError(
            f"no grid time of the {where} has {policy.min_km_step} events and exits behind "
            f"its step and {policy.min_cell} patients at risk (rule: min_km_step)"
        )
    idx = np.searchsorted(obj.grid, kept_times)
    data["grid"] = json_floats(obj.grid[idx])
    data["grid_counts"] = {
        "n_risk": json_floats(frame["n_risk"].to_numpy()),
        "n_event": json_floats(frame["n_event"].to_numpy()),
        "n_censor": json_floats(frame["n_censor"].to_numpy()),
    }
    return idx


def _released_intervals(obj: ShippedModel, policy: Policy, where: str) -> dict[str, Any]:
    """A piecewise exponential model's interval counts, each interval with
    ``min_km_step`` events and ``min_cell`` patients at its start (decided on the
    rounded risk set, :func:`~transport.policy.rounded_at_least`, so that varying
    ``min_cell`` gives no exact risk set back): the risk sets rounded, the events
    exact. At the maximum likelihood the information of interval ``k``'s log rate is
    its event count (its score is ``d_k - sum_i M_ik``), so the released covariance
    gives every interval's events back exactly; rounded, they would be a rounding that
    the model undoes (each has at least ``min_km_step``)."""
    assert obj.interval_counts is not None and obj.breaks is not None
    ic = obj.interval_counts
    for j, (y, d) in enumerate(zip(ic["n_risk"], ic["n_event"], strict=True)):
        lo = 0.0 if j == 0 else float(obj.breaks[j - 1])
        if d < policy.min_km_step or not rounded_at_least(y, policy.min_cell, policy):
            raise DisclosureError(
                f"interval {j + 1} (from {lo:g} {obj.time_unit}) of the {where} has fewer "
                f"than {policy.min_km_step} events or starts with fewer than "
                f"{policy.min_cell} patients at risk (rule: min_km_step); fit it with this "
                "policy, which merges such intervals"
            )
    return {
        "n_risk": [float(policy.round_count(x)) for x in ic["n_risk"]],
        "n_event": [float(x) for x in ic["n_event"]],
    }


def release_shipped_result(obj: ShippedResult, policy: Policy, record: Release) -> None:
    """``shipped_summary.csv``, ``shipped_curves.csv`` and ``shipped_result.json``: the
    transported curve is a target-side aggregate, released under the target's rules
    (:mod:`transport.policy.shipped`: ``model_bounds``, ``min_contributors``, rounded, at
    the target's own released steps)."""
    where = f"shipped result {obj.source!r} -> {obj.target!r}"
    record.check_names(list(obj.covariates), where)
    refuse_small_cohorts([(obj.target, obj.n_target)], policy)
    if not obj.model_released:
        raise DisclosureError(
            f"the {where} comes from a model that was not released, so its curve is not on "
            "a released grid (rule: km_grid); apply the model read by "
            "ShippedModel.from_release"
        )
    check_log_hazard_spread(obj.log_hazard_spread, policy, f"target {obj.target!r}")
    step = policy.grid_step_in(obj.time_unit)
    precision = transported_precision(obj.n_target, policy)
    summary = obj.summary()
    cols = summary.to_dict(as_series=False)
    # the target's rows behind the observed estimate and the difference
    guard_summary(cols, [obj.observed], policy, record.withhold, step)
    guard_transported(cols, list(obj.row_contributors), precision, policy, record.withhold)
    record.add_csv("shipped_summary.csv", pl.DataFrame(cols, schema=summary.schema))
    grid = policy.grid(float(obj.observed.time[-1]), obj.time_unit)
    observed = coarsen_km(
        curve_grid_counts(obj.observed, grid),
        float(obj.observed.n_risk_unweighted[0]),
        policy,
        record.withhold,
        f"observed curve of {obj.target!r}",
        conf_type=obj.observed.conf_type,
        conf_level=obj.observed.conf_level,
    )
    tr = obj.transported
    time, surv = transported_curve(
        tr.time,
        tr.survival,
        obj.contributors,
        observed["time"].to_numpy(),
        precision,
        policy,
        record.withhold,
        f"transported curve of {obj.target!r}",
    )
    transported = pl.DataFrame({"time": time, "survival": surv})
    curves = pl.concat(
        [
            transported.select(pl.lit("transported").alias("curve"), pl.all()),
            observed.select(pl.lit("observed").alias("curve"), pl.all()),
        ],
        how="diagonal_relaxed",
    )
    record.add_csv("shipped_curves.csv", curves)
    record.add_json(
        "shipped_result.json",
        {
            "source": obj.source,
            "target": obj.target,
            "method": f"gformula (shipped {obj.model_kind})",
            "time_unit": obj.time_unit,
            "times": obj.times,
            "tau": obj.tau,
            "ci_level": obj.ci_level,
            "n_boot": obj.n_boot,
            "n_source": policy.round_count(obj.n_source),
            "n_target": policy.round_count(obj.n_target),
            "grid_step": step,
        },
    )
