"""Release of a Kaplan–Meier curve: the actuarial estimate of its released counts on the
policy's grid (:func:`~transport.policy.coarsen_km`), and the transported curve of a
result on the source's released steps, rounded to a stated precision."""

from __future__ import annotations

import numpy as np
import polars as pl

from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import (
    CURVE_ESTIMATE,
    Policy,
    Withhold,
    check_interval,
    coarsen_km,
    curve_grid_counts,
    curve_precision,
    risk_set_ess,
    round_to_precision,
)
from transport.survival import SurvivalCurve
from transport.survival._actuarial import weighted_actuarial
from transport.survival._confint import bands
from transport.survival.model_curve import ModelCurve

__all__ = ["release_curve", "transported_on_grid"]


def release_curve(obj: SurvivalCurve, policy: Policy, record: Release) -> None:
    """A cohort's unweighted curve, right-censored, as its life table on the grid."""
    check_interval(obj.conf_type, obj.conf_level, f"survival curve {obj.name!r}")
    n = float(obj.n_risk_unweighted[0]) if obj.n_risk_unweighted.size else 0.0
    if n < policy.min_cell:
        raise DisclosureError(
            f"survival curve {obj.name!r} rests on fewer than {policy.min_cell} patients "
            "(rule: min_cell)"
        )
    exits = float(np.sum(obj.n_event_unweighted) + np.sum(obj.n_censor_unweighted))
    if abs(exits - n) > 0.5:
        raise DisclosureError(
            f"survival curve {obj.name!r} has delayed entry (its first risk set is not its "
            "number of patients), whose risk sets the release grid cannot yet rebuild "
            "(rule: km_grid)"
        )
    if obj.weighted:
        raise DisclosureError(
            f"survival curve {obj.name!r} is weighted: release the TransportResult it "
            "belongs to, whose curves are checked against the patients behind them (rule: "
            "km_grid)"
        )
    grid = policy.grid(float(obj.time[-1]), obj.time_unit)
    frame = coarsen_km(
        curve_grid_counts(obj, grid),
        n,
        policy,
        record.withhold,
        f"curve {obj.name!r}",
        conf_type=obj.conf_type,
        conf_level=obj.conf_level,
    )
    record.add_csv("survival_curve.csv", frame)
    record.add_json(
        "survival_curve.json",
        {
            "name": obj.name,
            "time_unit": obj.time_unit,
            "estimate": CURVE_ESTIMATE,
            "conf_type": obj.conf_type,
            "conf_level": obj.conf_level,
            "n": policy.round_count(n),
            "grid_step": policy.grid_step_in(obj.time_unit),
        },
    )


def transported_on_grid(
    curve: SurvivalCurve | ModelCurve,
    table: pl.DataFrame,
    policy: Policy,
    withhold: Withhold,
    label: str = "transported curve",
) -> pl.DataFrame:
    """The transported curve at the source's released steps ``table`` (the source's
    life table from :func:`~transport.policy.coarsen_km`, whose counts it keeps), with a
    ``precision`` column (null where the values are the life table's own).

    A reweighted Kaplan–Meier curve is the weighted actuarial estimate on those steps
    (so that, like the released unweighted curves, it depends on the rows only through
    their step and weight), up to the first step whose weighted risk set has an
    effective sample size (:func:`~transport.policy.effective_size`: no patient
    carrying more than ``1 / min_ess`` of its weight) below :attr:`Policy.ess_floor`
    (rule ``min_ess``: the curve stops there); a model-based curve (g-formula, AIPW: a
    smooth function of the fitted model and the target's covariates) is read at the
    step ends. Neither is a function of the released counts, so both are rounded to the
    step's precision (:func:`~transport.policy.curve_precision`: S(t) to it, the SE to a
    tenth of it, the limits recomputed from the two; a reweighted curve's at least the
    largest share of a risk set's weight one patient carries up to the step); an
    unweighted (naive) curve is the life table."""
    if isinstance(curve, SurvivalCurve) and not curve.weighted:
        return table.with_columns(pl.lit(None, dtype=pl.Float64).alias("precision"))
    kept = table["time"].to_numpy()
    ess = None
    if isinstance(curve, SurvivalCurve):
        t, e, w = curve.exits()
        ess = risk_set_ess(t, w, np.concatenate(([0.0], kept))[: kept.size])
        low = np.flatnonzero(ess < policy.ess_floor)
        if low.size:
            cut = int(low[0])
            withhold(
                f"{label} from time {kept[cut]:g}",
                "min_ess",
                f"the weighted risk set has an effective sample size below "
                f"{policy.ess_floor} (or one patient carries more than 1/{policy.ess_floor} "
                "of its weight): the curve stops here",
            )
            table, kept, ess = table[:cut], kept[:cut], ess[:cut]
        surv, se = weighted_actuarial(t, e, w, kept)
    else:  # a model-based curve: no interval of its own (the bootstrap gives one)
        surv = curve.at(kept)["survival"].to_numpy()
        se = np.full(kept.size, np.nan)
    precision = curve_precision(table["n_risk"].to_numpy(), policy, ess)
    if precision is not None:
        surv = round_to_precision(surv, precision)
        se = round_to_precision(se, precision / 10.0)
    if isinstance(curve, SurvivalCurve):
        conf_type = check_interval(curve.conf_type, curve.conf_level, label)
        lo, hi = bands(surv, se, conf_type, curve.conf_level)
    else:
        lo = hi = np.full(kept.size, np.nan)
    values = {
        "survival": surv,
        "se": se,
        "ci_lower": lo,
        "ci_upper": hi,
        "precision": np.full(kept.size, np.nan) if precision is None else precision,
    }
    cols = [pl.Series(c, v, dtype=pl.Float64).fill_nan(None) for c, v in values.items()]
    return table.with_columns(cols)
