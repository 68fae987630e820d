"""Disclosure-control policy: every rule of the release gate, in one home.

Each rule is a function of (the object, the :class:`Policy`, and a ``withhold(item,
rule, why)`` callback that records what was suppressed). The release gate
(:mod:`transport.disclosure`), model shipping and the HTML report all call these
functions; none of them keeps a copy. The rules, by the names the gate reports:

``patient_rows``, ``forbidden_column``
    Rows are never released; a column whose name or declared role is an identifier,
    practice, physician or free text (:func:`forbidden_role`) is refused outright.
``min_cell``
    A count below ``min_cell`` patients is withheld, with enough of its complement that
    it cannot be recovered by subtraction (:func:`cells_to_hide`, :func:`level_dummies`,
    :func:`balance_withheld`); weight quantiles need ``min_cell`` rows beyond them
    (:func:`weight_quantiles`); counts shown below ``min_cell`` are not shown
    (:func:`released_count`).
``km_grid``, ``min_km_step``
    Survival curves only on the fixed grid, each step with none or at least
    ``min_km_step`` events and exits (:func:`coarsen_km`); S(t) and RMST rows of a
    summary likewise between released times (:func:`guard_timed_rows`).
``time_grid``
    Medians rounded outwards to the grid (:func:`round_median_row`).
``round_to``
    Released counts rounded (:meth:`Policy.round_count`).
``min_residual_df``
    Models with at least this many residual degrees of freedom (:func:`check_model`).
``model_bounds``
    A shipped model applied in the target spreads its linear predictor over the
    target's rows by at most ``max_log_hazard_ratio`` (:func:`check_log_hazard_spread`).
``min_contributors``
    A transported S(t) or RMST of a shipped model needs ``min_cell`` effective target
    patients behind it (:func:`effective_contributors`), and is released rounded
    (:func:`guard_transported`, :func:`transported_curve`); :mod:`transport.policy.shipped`
    gives the reasons and the known limits.

Reference: Griffiths E. et al. (2019) *Handbook on Statistical Disclosure Control for
Outputs*, Safe Data Access Professionals Working Group.
"""

from transport.policy.cells import (
    AGGREGATE_STATE,
    QUANTILES,
    balance_withheld,
    cells_to_hide,
    check_model,
    level_dummies,
    released_count,
    top_share,
    weight_quantiles,
)
from transport.policy.curves import (
    MEDIAN_BASES,
    SUMMARY_KEYS,
    coarsen_km,
    curve_grid_counts,
    guard_summary,
    guard_timed_rows,
    outward,
    round_median_row,
)
from transport.policy.settings import (
    FORBIDDEN_TOKENS,
    Policy,
    Withhold,
    forbidden_role,
    refuse_forbidden,
    refuse_forbidden_levels,
    refuse_small_cohorts,
)
from transport.policy.shipped import (
    check_log_hazard_spread,
    effective_contributors,
    guard_transported,
    transported_curve,
    transported_precision,
)

__all__ = [
    "AGGREGATE_STATE",
    "FORBIDDEN_TOKENS",
    "MEDIAN_BASES",
    "QUANTILES",
    "SUMMARY_KEYS",
    "Policy",
    "Withhold",
    "balance_withheld",
    "cells_to_hide",
    "check_log_hazard_spread",
    "check_model",
    "coarsen_km",
    "curve_grid_counts",
    "effective_contributors",
    "forbidden_role",
    "guard_summary",
    "guard_timed_rows",
    "guard_transported",
    "level_dummies",
    "outward",
    "refuse_forbidden",
    "refuse_forbidden_levels",
    "refuse_small_cohorts",
    "released_count",
    "round_median_row",
    "top_share",
    "transported_curve",
    "transported_precision",
    "weight_quantiles",
]
