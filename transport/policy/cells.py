"""The cell rules (``min_cell``, ``min_residual_df``): small counts and their
complements, weight quantiles, balance rows, shipped models' cells."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transport.exceptions import DisclosureError
from transport.policy.settings import Policy
from transport.summary import concentration

__all__ = [
    "AGGREGATE_STATE",
    "QUANTILES",
    "LevelColumns",
    "balance_dominated",
    "balance_withheld",
    "cells_to_hide",
    "check_model",
    "column_rule",
    "dominance_rule",
    "level_columns",
    "level_dummies",
    "quantile_key",
    "released_count",
    "top_share",
    "weight_quantiles",
]


#: Quantiles of the normalised weights that diagnostics report (when the rule allows).
QUANTILES: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


#: Keys of a stateful transform's state that hold aggregates only (``center``, ``scale``).
AGGREGATE_STATE: frozenset[str] = frozenset({"ddof", "center", "scale"})


def cells_to_hide(cells: list[float | None], min_cell: int) -> list[int]:
    """Indices of cells to withhold: those below ``min_cell`` (but above 0), then the
    next smallest until the withheld cells sum to at least ``min_cell`` (so that they
    cannot be recovered from the total) or every cell is withheld."""
    vals = [np.nan if c is None else round(c) for c in cells]
    hidden = {i for i, c in enumerate(vals) if c is not None and 0 < c < min_cell}
    hidden |= {i for i, c in enumerate(vals) if isinstance(c, float) and math.isnan(c)}
    if not hidden:
        return []
    total = sum(vals[i] for i in hidden if not math.isnan(vals[i]))
    rest = sorted((c, i) for i, c in enumerate(vals) if i not in hidden and c > 0)
    while (total < min_cell or len(hidden) == 1) and rest:
        c, i = rest.pop(0)
        hidden.add(i)
        total += c
    return sorted(hidden)


@dataclass(frozen=True)
class LevelColumns:
    """A categorical's main-effect columns that cover every level but one, the
    ``reference`` (whose share is recoverable from theirs), by ``coding``: ``"T"``
    treatment dummies (a column's mean is its level's share) or ``"S"`` sum contrasts
    (1 at the level, -1 at the reference: a column's mean is its level's share less the
    reference's, its SD gives their sum). ``columns`` maps the other levels, in level
    order, to their column indices."""

    coding: str
    reference: str
    columns: dict[str, int]

    def shares(self, means: Sequence[float]) -> list[float]:
        """The shares of the reference and then of each other level, from the columns'
        ``means`` (in the order of :attr:`columns`)."""
        m = [float(x) for x in means]
        if self.coding == "T":
            return [1.0 - sum(m), *m]
        ref = (1.0 - sum(m)) / (len(m) + 1)
        return [ref, *(x + ref for x in m)]

    def withheld(self, hidden: Sequence[int]) -> list[int]:
        """The columns to withhold when the cells ``hidden`` (indices into
        :meth:`shares`' order, 0 the reference) are: their own, and under sum coding
        every column when the reference is hidden (each column's mean and SD give the
        reference's share)."""
        cols = list(self.columns.values())
        if self.coding == "S" and 0 in hidden:
            return cols
        return [cols[i - 1] for i in hidden if i > 0]


def level_columns(design: Any) -> dict[str, LevelColumns]:
    """Per categorical covariate of a :class:`~transport.Design`, its main-effect columns
    of one coding (:meth:`~transport.Design.column_coding`: treatment dummies or sum
    contrasts) when they cover every level but one, whatever formulaic names them:
    ``grade[T.b]``, ``C(grade, Treatment('b'))[T.a]``, ``C(grade, Sum)[S.a]``."""
    out: dict[str, LevelColumns] = {}
    for v, levels in design.levels.items():
        by_code: dict[str, dict[str, int]] = {}
        for j, col in enumerate(design.columns):
            coding = design.column_coding(j)
            if ":" in col or not coding or len(coding) != 1 or design.covariates_of([j]) != [v]:
                continue
            _, lv, code = coding[0]
            by_code.setdefault(code, {}).setdefault(lv, j)
        for code, found in by_code.items():
            rest = [lv for lv in levels if lv not in found]
            if code in ("T", "S") and len(rest) == 1 and len(found) == len(levels) - 1:
                ordered = {lv: found[lv] for lv in levels if lv in found}
                out[v] = LevelColumns(code, rest[0], ordered)
    return out


def level_dummies(design: Any) -> dict[str, list[int]]:
    """Per categorical covariate of a :class:`~transport.Design`, the indices of its
    main-effect level columns (treatment dummies or sum contrasts) when they cover every
    level but one (the reference, which has no column but whose share follows from
    theirs): :func:`level_columns`."""
    return {v: list(lc.columns.values()) for v, lc in level_columns(design).items()}


def released_count(x: float | None, policy: Policy) -> int | None:
    """A count as it may be shown: rounded, or ``None`` when unknown or below
    ``min_cell``."""
    return None if x is None or x < policy.min_cell else policy.round_count(x)


def quantile_key(q: float) -> str:
    """The released name of quantile ``q`` (``0.05`` -> ``"q05"``)."""
    return f"q{round(100 * q):02d}"


def weight_quantiles(w: np.ndarray, policy: Policy) -> dict[str, float | None]:
    """Quantiles ``q01`` ... ``q99`` of weights ``w``, each only where at least
    ``min_cell`` rows lie beyond it (the extreme ones are one patient's values)."""
    n = w.size
    return {
        quantile_key(q): float(np.quantile(w, q)) if min(q, 1 - q) * n >= policy.min_cell else None
        for q in QUANTILES
    }


def top_share(w: np.ndarray, policy: Policy) -> float | None:
    """The share of the total weight on the heaviest 1% of rows, when those are at least
    ``min_cell`` rows."""
    k = math.ceil(0.01 * w.size)
    return float(np.sort(w)[-k:].sum() / w.sum()) if k >= policy.min_cell else None


def balance_withheld(weights: Any, policy: Policy) -> dict[str, str]:
    """Design columns of a :class:`~transport.Weights` whose balance row may not be
    shown, and why: fewer than ``min_cell`` patients have (or lack) a 0/1 column in the
    source or the target; an interaction of a continuous covariate (its target count is
    unknown); a categorical's other levels when its small reference level (which has no
    column) could be recovered from them by subtraction; every column when a cohort has
    fewer than ``min_cell`` patients."""
    design, X = weights.design, weights.design.source_matrix
    n, nt = weights.n, int(weights.target_n)
    counts = np.count_nonzero(X, axis=0)
    binary = np.all((X == 0) | (X == 1), axis=0)
    target_counts = [round(float(m) * nt) for m in weights.target_mean]
    out: dict[str, str] = {}
    for j, col in enumerate(design.columns):
        ks = int(counts[j])
        kt = target_counts[j] if binary[j] else None if ":" in col else nt
        bad_s = 0 < ks < policy.min_cell or 0 < n - ks < policy.min_cell
        bad_t = kt is None or 0 < kt < policy.min_cell or 0 < nt - kt < policy.min_cell
        if min(n, nt) < policy.min_cell:
            out[col] = f"a cohort has fewer than {policy.min_cell} patients"
        elif bad_s or bad_t:
            out[col] = (
                f"fewer than {policy.min_cell} patients have (or lack) it in "
                + ("the source" if bad_s else "the target")
                + ("" if kt is not None else " (an interaction: its target count is unknown)")
            )
    mean_s = X.mean(axis=0)
    for lc in level_columns(design).values():
        idx = list(lc.columns.values())
        for m, means in ((n, mean_s[idx]), (nt, np.asarray(weights.target_mean)[idx])):
            cells: list[float | None] = [round(s * m) for s in lc.shares(means.tolist())]
            for j in lc.withheld(cells_to_hide(cells, policy.min_cell)):
                out.setdefault(
                    design.columns[j],
                    f"its covariate has a level with fewer than {policy.min_cell} "
                    "patients, recoverable by subtraction from this one"
                    + (
                        "; a sum contrast gives the reference's share too"
                        if lc.coding == "S"
                        else ""
                    ),
                )
    return out


def dominance_rule(shares: np.ndarray, policy: Policy) -> tuple[str, str] | None:
    """The rule, and why, under which a design column's mean and SD are withheld, given
    its row of :func:`~transport.summary.concentration` (the cumulative shares of the
    largest contributions to its mean, then to its SD), or ``None``:

    ``dominance``
        the largest ``dominance_n`` contributions make more than ``dominance_k`` of the
        total (the mean of ``I(age ** 60)`` is the oldest patient's age);
    ``p_percent``
        the total less the two largest contributions is less than ``p_percent`` of the
        largest (the second largest contributor could tell the largest within p%).

    Both protect the patients who dominate a statistic, whatever transform the formula
    applies (the contributions are those of the released column itself).
    """
    for what, s in zip(("mean", "SD"), np.asarray(shares, dtype=np.float64), strict=True):
        if s.size == 0 or np.isnan(s[0]):
            continue  # a column that is 0 (or constant) everywhere: no one stands out
        top_n = min(float(s[min(policy.dominance_n, s.size) - 1]), 1.0)
        if top_n > policy.dominance_k:
            return "dominance", (
                f"the largest {policy.dominance_n} patients' contributions make more than "
                f"{policy.dominance_k:.0%} of its {what}'s total"
            )
        rest = max(0.0, 1.0 - float(s[1] if s.size > 1 else 1.0))
        if rest < policy.p_percent * float(s[0]):
            return "p_percent", (
                f"its {what}'s total less the two largest contributions is less than "
                f"{policy.p_percent:.0%} of the largest"
            )
    return None


def column_rule(
    count: float, n: float, value_cell: int | None, shares: np.ndarray, policy: Policy
) -> tuple[str, str] | None:
    """The rule, and why, under which a design column's mean and SD may not be shown,
    or ``None``: ``min_cell`` (fewer than ``min_cell`` of the ``n`` patients have, or
    lack, a nonzero value: ``count`` of them have one), ``few_values`` (its moments give
    away how many patients have each of its few values, and one has fewer than
    ``min_cell``: ``value_cell``, see :func:`~transport.summary.value_cells`), then
    :func:`dominance_rule` on its contributions ``shares``."""
    if 0 < count < policy.min_cell or 0 < n - count < policy.min_cell:
        return "min_cell", f"fewer than {policy.min_cell} patients have (or lack) a nonzero value"
    if value_cell is not None and value_cell < policy.min_cell:
        return "few_values", (
            f"it takes so few values that its mean and SD give each value's count, and fewer "
            f"than {policy.min_cell} patients have one of them"
        )
    return dominance_rule(shares, policy)


def balance_dominated(weights: Any, policy: Policy) -> dict[str, tuple[str, str]]:
    """Design columns of a :class:`~transport.Weights` whose source mean is dominated by
    a few source patients, with the rule and why (:func:`dominance_rule`, on the
    source's rows): their balance row may not be shown."""
    design = weights.design
    shares = concentration(design.source_matrix)
    out: dict[str, tuple[str, str]] = {}
    for j, col in enumerate(design.columns):
        found = dominance_rule(shares[j], policy)
        if found is not None:
            out[col] = found
    return out


def check_model(obj: Any, policy: Policy, where: str) -> None:
    """The cell, degrees-of-freedom, grid and dominance rules for a shipped outcome
    model (its per-level and per-column source counts and its columns' largest
    contributions, which the release then leaves out); raises
    :class:`~transport.DisclosureError` naming the rule. A level with fewer than
    ``min_cell`` source patients refuses the model rather than being pooled: the model
    was fitted on it, and the target must rebuild the same design."""
    if (
        obj.released
        or obj.level_counts is None
        or obj.column_counts is None
        or obj.column_binary is None
        or obj.column_concentration is None
    ):
        raise DisclosureError(
            f"the {where} was released before (or read from a file without its per-level "
            "counts and contributions): the cell and dominance rules cannot be checked "
            "(rule: min_cell); fit it again with "
            "ShippedModel.fit inside the source's environment"
        )
    if obj.n < policy.min_cell:
        raise DisclosureError(
            f"the {where} rests on fewer than {policy.min_cell} patients (rule: min_cell)"
        )
    step = policy.grid_step_in(obj.time_unit)
    if not math.isclose(step, obj.grid_step, rel_tol=1e-9):
        raise DisclosureError(
            f"the {where} keeps its baseline on a grid of step {obj.grid_step:g} "
            f"{obj.time_unit}, but policy {policy.name!r} reports on steps of {step:g} "
            "(rule: km_grid); fit it with this policy"
        )
    if obj.n_events - obj.n_params < policy.min_residual_df:
        raise DisclosureError(
            f"the {where} has {obj.n_params} parameters for its events, fewer than "
            f"{policy.min_residual_df} residual degrees of freedom (rule: min_residual_df); "
            "use fewer terms or merge levels"
        )
    for v, counts in obj.level_counts.items():
        small = [lv for lv, c in counts.items() if c < policy.min_cell]
        if small:  # counted, not named: a rare level's name is what must not leave
            raise DisclosureError(
                f"covariate {v!r} of the {where} has {len(small)} level(s) with fewer than "
                f"{policy.min_cell} source patients (rule: min_cell): merge them with other "
                "levels (or drop the rows, logged) before fitting"
            )
    for term, state in obj.design_spec.get("transform_state", {}).items():
        if set(state) - AGGREGATE_STATE:
            raise DisclosureError(
                f"transform {term!r} of the {where} carries state {sorted(state)}, which holds "
                "individual patients' values (spline boundary knots are the minimum and "
                "maximum, say) (rule: min_cell); use center() or scale(), or fixed knots "
                "outside the formula"
            )
    for j, col in enumerate(obj.design.columns):
        # a column's mean (in ``center``) sums its nonzero rows; a 0/1 column's mean is
        # also its count, and one minus it that of the complement; ``column_counts`` is
        # the smallest cell of those rows by the levels and flag values behind the column
        k = float(obj.column_counts[j])
        binary = bool(obj.column_binary[j])
        if 0 < k < policy.min_cell or (binary and 0 < obj.n - k < policy.min_cell):
            raise DisclosureError(
                f"design column {col!r} of the {where} rests on fewer than "
                f"{policy.min_cell} source patients (its nonzero rows, or those of them at "
                "one level or flag value of its covariates"
                + (", or its zero rows" if binary else "")
                + ") (rule: min_cell): merge levels or drop the term"
            )
        found = dominance_rule(obj.column_concentration[j], policy)
        if found is not None:
            raise DisclosureError(
                f"design column {col!r} of the {where} is dominated by a few source patients: "
                f"{found[1]} (rule: {found[0]}); its coefficient (and a Cox model's centre, "
                "its mean) rests on them: drop the term or use a milder transform"
            )
