"""Release of a Kaplan–Meier curve: the actuarial estimate on the policy's grid
(:func:`~transport.policy.coarsen_km`), and the transported curve of a result on the
source's released steps."""

from __future__ import annotations

import numpy as np
import polars as pl

from transport.disclosure.record import Release
from transport.exceptions import DisclosureError
from transport.policy import Policy, coarsen_km, curve_grid_counts
from transport.survival import SurvivalCurve
from transport.survival._actuarial import weighted_actuarial
from transport.survival._confint import bands
from transport.survival.model_curve import ModelCurve

__all__ = ["release_curve", "transported_on_grid"]


def release_curve(obj: SurvivalCurve, policy: Policy, record: Release) -> None:
    """A cohort's unweighted curve, right-censored, as its life table on the grid."""
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
            "estimate": "actuarial (life-table) estimate on the released grid",
            "conf_type": obj.conf_type,
            "conf_level": obj.conf_level,
            "n": policy.round_count(n),
            "grid_step": policy.grid_step_in(obj.time_unit),
        },
    )


def transported_on_grid(curve: SurvivalCurve | ModelCurve, kept: np.ndarray) -> list[pl.Series]:
    """The transported curve at the source's released steps: a reweighted Kaplan–Meier
    curve as the weighted actuarial estimate on those steps (so that, like the released
    unweighted curves, it depends on the rows only through their step and weight), a
    model-based curve (g-formula, AIPW: a smooth function of the fitted model and the
    target's covariates) at the step ends."""
    if isinstance(curve, SurvivalCurve) and not curve.weighted:
        return []  # the unweighted (naive) curve: the life table already in the frame
    if isinstance(curve, SurvivalCurve):
        surv, se = weighted_actuarial(*curve.exits(), kept)
        lo, hi = bands(surv, se, curve.conf_type, curve.conf_level)
        values = {"survival": surv, "se": se, "ci_lower": lo, "ci_upper": hi}
    else:
        exact = curve.at(kept)
        values = {c: exact[c].to_numpy() for c in ("survival", "se", "ci_lower", "ci_upper")}
    return [pl.Series(c, v, dtype=pl.Float64).fill_nan(None) for c, v in values.items()]
