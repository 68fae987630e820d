"""Release of a transport result: its summary table under the timed-row and median
rules (:func:`~transport.policy.guard_summary`), and its curves on the released grid."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from transport.disclosure.curves import transported_on_grid
from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import (
    PRECISION_NOTE,
    Policy,
    Withhold,
    check_interval,
    coarsen_km,
    curve_grid_counts,
    guard_summary,
    guard_weighted_rows,
    refuse_small_cohorts,
    refuse_small_ess,
)
from transport.result import TransportResult
from transport.survival import SurvivalCurve

__all__ = ["PRECISION_NOTE", "guard_result_summary", "release_result"]


def release_result(obj: TransportResult, policy: Policy, record: Release) -> None:
    """``transport_summary.csv``, ``transport_curves.csv`` (naive and observed life
    tables of their released counts, the transported curve on the source's kept steps
    rounded to its stated precision) and ``transport_result.json``. A weighted result
    needs an effective sample size of at least :attr:`Policy.ess_floor`, in its whole
    weighted cohort (else refused) and in the weighted risk sets behind each released
    step and summary row (else withheld; rule ``min_ess``)."""
    ns = float(obj.naive.n_risk_unweighted[0])
    nt = float(obj.observed.n_risk_unweighted[0]) if obj.observed is not None else math.inf
    refuse_small_cohorts([(obj.source, ns), (obj.target, nt)], policy)
    # every method, the naive and model-based ones too: a covariate may be a practice
    record.check_names(list(obj.covariates), f"result {obj.source!r}")
    if obj.weights is not None:
        record.check_names(list(obj.weights.design.columns), f"result {obj.source!r}")
        refuse_small_ess(obj.weights.values, policy, f"result {obj.source!r} -> {obj.target!r}")
    for label, curve in (
        ("naive", obj.naive),
        ("transported", obj.transported),
        ("observed", obj.observed),
    ):
        if isinstance(curve, SurvivalCurve):
            check_interval(curve.conf_type, curve.conf_level, f"the result's {label} curve")
        if isinstance(curve, SurvivalCurve) and curve.delayed_entry:
            raise DisclosureError(
                f"a curve of the result for {obj.source!r} -> {obj.target!r} has delayed "
                "entry, whose risk sets the release grid cannot yet rebuild (rule: km_grid)"
            )
    summary = obj.summary()
    step = policy.grid_step_in(obj.time_unit)
    cols = summary.to_dict(as_series=False)
    guard_result_summary(obj, cols, policy, record.withhold)
    record.add_csv("transport_summary.csv", pl.DataFrame(cols, schema=summary.schema))
    record.add_csv("transport_curves.csv", _curves(obj, policy, record))
    record.add_json(
        "transport_result.json",
        {
            "source": obj.source,
            "target": obj.target,
            "method": obj.method,
            "time_unit": obj.time_unit,
            "times": obj.times,
            "tau": obj.tau,
            "ci_level": obj.ci_level,
            "n_boot": obj.bootstrap.n_boot if obj.bootstrap else 0,
            "n_source": policy.round_count(ns),
            "n_target": None if math.isinf(nt) else policy.round_count(nt),
            "ess": None if obj.weights is None else round(obj.weights.ess, 1),
            "grid_step": step,
            "transported_precision": PRECISION_NOTE,
        },
    )


def guard_result_summary(
    obj: TransportResult, cols: dict[str, list[Any]], policy: Policy, withhold: Withhold
) -> None:
    """The summary table of ``obj`` (as lists, changed in place) as the gate releases it:
    rows whose weighted risk set is below the ESS floor withheld (``min_ess``), then the
    rules every transport summary follows (:func:`~transport.policy.guard_summary`). The
    report shows its tables through this function too."""
    curves = [obj.naive] + ([obj.observed] if obj.observed is not None else [])
    if isinstance(obj.transported, SurvivalCurve) and obj.transported.weighted:
        t, _, w = obj.transported.exits()
        guard_weighted_rows(cols, t, w, policy, withhold)
    guard_summary(cols, curves, policy, withhold, policy.grid_step_in(obj.time_unit))


def _curves(obj: TransportResult, policy: Policy, record: Release) -> pl.DataFrame:
    frames = []
    for label, curve, base in (
        ("naive", obj.naive, obj.naive),
        ("transported", obj.transported, obj.naive),
        ("observed", obj.observed, obj.observed),
    ):
        if curve is None or base is None:
            continue
        grid = policy.grid(float(base.time[-1]), obj.time_unit)
        n = float(base.n_risk_unweighted[0])
        tab = coarsen_km(
            curve_grid_counts(base, grid),
            n,
            policy,
            record.withhold if label != "transported" else None,
            f"{label} curve",
            conf_type=base.conf_type,
            conf_level=base.conf_level,
        )
        if label == "transported":
            tab = transported_on_grid(curve, tab, policy, record.withhold)
        else:
            tab = tab.with_columns(pl.lit(None, dtype=pl.Float64).alias("precision"))
        frames.append(tab.select(pl.lit(label).alias("curve"), pl.all()))
    return pl.concat(frames, how="vertical_relaxed")
