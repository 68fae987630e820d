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
    summary likewise between released times (:func:`guard_timed_rows`). Each decision
    is taken on the counts as released, so that varying the policy reveals nothing
    beyond the rounding (:func:`rounding_slack`, :func:`rounded_at_least` where the
    exact counts must meet the rule too). A released
    curve is computed from its released (rounded) counts, so it cannot give the exact
    counts back (:func:`released_counts`, :func:`life_table_of`).
``min_ess``
    Weighted results need an effective sample size (:func:`effective_size`: the smaller
    of Kish's count and total over largest weight, so that no patient carries more than
    ``1 / min_ess`` of the weight) of at least ``min_ess`` (default ``min_cell``): the
    whole weighted cohort (:func:`refuse_small_ess`) and the weighted risk set at each
    released step and summary time (:func:`risk_set_ess`).
``curve_precision``
    A transported curve, which is not a function of the released counts, is released
    rounded to a stated precision per step (:func:`curve_precision`,
    :func:`round_to_precision`).
``time_grid``
    Medians rounded outwards to the grid (:func:`round_median_row`).
``round_to``
    Released counts rounded (:meth:`Policy.round_count`).
``min_residual_df``
    Models with at least this many residual degrees of freedom (:func:`check_model`).
``policy_floor``
    The environment's policy (``TRANSPORT_POLICY``, :func:`environment_policy`) is a
    floor: a plan may tighten it, never loosen it (:meth:`Policy.tightened`, the
    directions in :data:`TIGHTER`), and the gate refuses a looser policy.
``release_path``, ``release_manifest``, ``release_hash``, ``release_signature``, ``release_counts``
    A release directory is verified as the gate wrote it: plain listed files only,
    unchanged, the manifest's fields, rules and policy as the gate writes them, the
    released counts consistent with that policy, and (with the environment's key) the
    keyed signature (:func:`verify_release`, :func:`audit_release`).
``release_schema``
    Every released file and the manifest have exactly the keys, columns, types and
    strings the gate writes for them (one table, :data:`FILE_SCHEMAS`, which the gate
    checks what it writes against too), and every released name passes the gate's
    ``forbidden_column``, ``free_text_levels`` and ``formula_closed`` rules
    (:func:`check_release`).

``model_bounds``
    A shipped model applied in the target spreads its linear predictor over the
    target's rows by at most ``max_log_hazard_ratio`` (:func:`check_log_hazard_spread`).
``centre_lattice``
    A released Cox model's centre is its columns' means rounded to a lattice (a power
    of ten at most each column's SD), its baseline moved to it (:func:`centre_on_lattice`).
``min_contributors``
    A transported S(t) or RMST of a shipped model needs ``min_cell`` effective target
    patients behind it (:func:`effective_contributors`), and is released rounded
    (:func:`guard_transported`, :func:`transported_curve`); :mod:`transport.policy.shipped`
    gives the reasons and the known limits.

``free_text_levels``
    A categorical whose levels read as free text (long, many digits or words, a
    person's title, many one-off values: :func:`free_text_reason`) is refused
    (:func:`refuse_free_text`); its levels would leave as names.
``min_cell`` on level names
    A level with fewer than ``min_cell`` patients is pooled into a generic level
    (``"other"``, :func:`pooled_name`) whose share obeys the cell rule; the pooled
    levels' names and design columns are never released (a target summary), a balance
    row naming one is dropped (:func:`unnamed_columns`, whatever the coding: treatment
    dummies, sum contrasts, indicators in an interaction), a shipped model with one is
    refused (:func:`check_model`: the model was fitted on the level, so the gate cannot
    pool it; merge levels before fitting).
``level_coding``
    A design with a column whose levels cannot be read back from its name (``C()`` of a
    continuous covariate names its values) is refused (:func:`refuse_unmapped`): the
    level rules could not be checked on it.
``dominance``, ``p_percent``
    A design column's mean and SD are withheld (a summary) or its model refused (a
    shipped model) when a few patients dominate them (:func:`dominance_rule`).
``steep_transform``
    A summary formula, chosen by the source for the target's rows, keeps to degree
    :data:`MAX_GROWTH` in the covariates, without ``exp``, poles, tails kept by a
    comparison, or thresholds a domain (``log(age - 97)``) or an overflow would set
    (:func:`refuse_steep_formula`): the dominance rules bound shares in the released
    column's own scale, which a steep transform chooses. A weighting's balance rows of
    such a term are withheld alike (:func:`steep_columns`): the plan chose its formula.
``few_values``
    A continuous column whose released moments may give away how many patients have
    each of its values (at most :data:`~transport.summary.FEW_VALUES` values, say a lab
    value measured on four levels) needs ``min_cell`` patients at each, else its mean
    and SD are withheld.

Every rule's name, with what it protects, is in :data:`RULES`.

Reference: Griffiths E. et al. (2019) *Handbook on Statistical Disclosure Control for
Outputs*, Safe Data Access Professionals Working Group.
"""

from transport.policy.audit import (
    COUNTS,
    RELEASE_FILES,
    WITHHELD_KEYS,
    audit_release,
    audit_schema,
    verify_release,
)
from transport.policy.cells import (
    AGGREGATE_STATE,
    QUANTILES,
    LevelColumns,
    balance_dominated,
    balance_withheld,
    cells_to_hide,
    check_model,
    column_rule,
    dominance_rule,
    level_columns,
    level_dummies,
    quantile_key,
    released_count,
    top_share,
    weight_quantiles,
)
from transport.policy.centre import centre_on_lattice, lattice_unit
from transport.policy.conform import SchemaMismatch, check_release
from transport.policy.curves import (
    MEDIAN_BASES,
    SUMMARY_KEYS,
    check_interval,
    coarsen_km,
    curve_grid_counts,
    guard_summary,
    guard_timed_rows,
    life_table_of,
    outward,
    released_counts,
    round_median_row,
    rounded_at_least,
    rounding_slack,
)
from transport.policy.growth import (
    MAX_CONSTANT,
    MAX_GROWTH,
    formula_growth,
    refuse_steep_formula,
    steep_columns,
)
from transport.policy.levels import (
    POOLED_LEVEL,
    design_level_counts,
    free_text_reason,
    pooled_name,
    refuse_free_text,
    refuse_unmapped,
    unnamed_columns,
)
from transport.policy.refusals import (
    refuse_forbidden,
    refuse_forbidden_levels,
    refuse_small_cohorts,
)
from transport.policy.schema import (
    CURVE_ESTIMATE,
    FILE_SCHEMAS,
    MANIFEST_SCHEMA,
    MAX_NOTE,
    PRECISION_NOTE,
)
from transport.policy.settings import (
    FORBIDDEN_TOKENS,
    MAX_LABEL,
    MAX_PATH,
    POLICY_ENV,
    RULES,
    TIGHTER,
    Policy,
    Withhold,
    environment_policy,
    floor_policy,
    forbidden_role,
)
from transport.policy.shipped import (
    check_log_hazard_spread,
    effective_contributors,
    guard_transported,
    transported_curve,
    transported_precision,
)
from transport.policy.weighted import (
    PRECISION_FLOOR,
    curve_precision,
    effective_size,
    guard_weighted_rows,
    refuse_small_ess,
    risk_set_ess,
    round_to_precision,
)

__all__ = [
    "AGGREGATE_STATE",
    "COUNTS",
    "CURVE_ESTIMATE",
    "FILE_SCHEMAS",
    "FORBIDDEN_TOKENS",
    "MANIFEST_SCHEMA",
    "MAX_CONSTANT",
    "MAX_GROWTH",
    "MAX_LABEL",
    "MAX_NOTE",
    "MAX_PATH",
    "MEDIAN_BASES",
    "POLICY_ENV",
    "POOLED_LEVEL",
    "PRECISION_FLOOR",
    "PRECISION_NOTE",
    "QUANTILES",
    "RELEASE_FILES",
    "RULES",
    "SUMMARY_KEYS",
    "TIGHTER",
    "WITHHELD_KEYS",
    "LevelColumns",
    "Policy",
    "SchemaMismatch",
    "Withhold",
    "audit_release",
    "audit_schema",
    "balance_dominated",
    "balance_withheld",
    "cells_to_hide",
    "centre_on_lattice",
    "check_interval",
    "check_log_hazard_spread",
    "check_model",
    "check_release",
    "coarsen_km",
    "column_rule",
    "curve_grid_counts",
    "curve_precision",
    "design_level_counts",
    "dominance_rule",
    "effective_contributors",
    "effective_size",
    "environment_policy",
    "floor_policy",
    "forbidden_role",
    "formula_growth",
    "free_text_reason",
    "guard_summary",
    "guard_timed_rows",
    "guard_transported",
    "guard_weighted_rows",
    "lattice_unit",
    "level_columns",
    "level_dummies",
    "life_table_of",
    "outward",
    "pooled_name",
    "quantile_key",
    "refuse_forbidden",
    "refuse_forbidden_levels",
    "refuse_free_text",
    "refuse_small_cohorts",
    "refuse_small_ess",
    "refuse_steep_formula",
    "refuse_unmapped",
    "released_count",
    "released_counts",
    "risk_set_ess",
    "round_median_row",
    "round_to_precision",
    "rounded_at_least",
    "rounding_slack",
    "steep_columns",
    "top_share",
    "transported_curve",
    "transported_precision",
    "unnamed_columns",
    "verify_release",
    "weight_quantiles",
]
