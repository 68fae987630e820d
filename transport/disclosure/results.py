"""Release of a transport result: its summary table under the timed-row and median
rules (:func:`~transport.policy.guard_summary`), and its curves on the released grid."""

from __future__ import annotations

import math

import polars as pl

from transport.disclosure.curves import transported_on_grid
from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import (
    Policy,
    coarsen_km,
    curve_grid_counts,
    guard_summary,
    refuse_small_cohorts,
)
from transport.result import TransportResult
from transport.survival import SurvivalCurve

__all__ = ["release_result"]


def release_result(obj: TransportResult, policy: Policy, record: Release) -> None:
    """``transport_summary.csv``, ``transport_curves.csv`` (naive and observed life
    tables, the transported curve on the source's kept steps) and
    ``transport_result.json``."""
    ns = float(obj.naive.n_risk_unweighted[0])
    nt = float(obj.observed.n_risk_unweighted[0]) if obj.observed is not None else math.inf
    refuse_small_cohorts([(obj.source, ns), (obj.target, nt)], policy)
    # every method, the naive and model-based ones too: a covariate may be a practice
    record.check_names(list(obj.covariates), f"result {obj.source!r}")
    if obj.weights is not None:
        record.check_names(list(obj.weights.design.columns), f"result {obj.source!r}")
    for curve in (obj.naive, obj.transported, obj.observed):
        if isinstance(curve, SurvivalCurve) and curve.delayed_entry:
            raise DisclosureError(
                f"a curve of the result for {obj.source!r} -> {obj.target!r} has delayed "
                "entry, whose risk sets the release grid cannot yet rebuild (rule: km_grid)"
            )
    summary = obj.summary()
    step = policy.grid_step_in(obj.time_unit)
    cols = summary.to_dict(as_series=False)
    curves = [obj.naive] + ([obj.observed] if obj.observed is not None else [])
    guard_summary(cols, curves, policy, record.withhold, step)
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
        },
    )


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
            tab = tab.with_columns(transported_on_grid(curve, tab["time"].to_numpy()))
        frames.append(tab.select(pl.lit(label).alias("curve"), pl.all()))
    return pl.concat(frames, how="vertical_relaxed")
