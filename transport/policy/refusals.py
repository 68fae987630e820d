"""The refusals that need only a policy's names and counts: a column whose name marks a
forbidden role, a categorical whose level values do, a cohort below ``min_cell``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transport.exceptions import DisclosureError
from transport.policy.settings import Policy, forbidden_role

__all__ = ["refuse_forbidden", "refuse_forbidden_levels", "refuse_small_cohorts"]


def refuse_forbidden(names: Sequence[str], policy: Policy, where: str) -> None:
    """Refuse (``forbidden_column``) any of ``names`` whose role is forbidden."""
    for col in names:
        role = forbidden_role(col, policy)
        if role is not None:
            raise DisclosureError(
                f"{where} has column {col!r}, whose name marks it as {role.replace('_', ' ')} "
                f"(rule: forbidden_column; policy {policy.name!r} refuses "
                f"{list(policy.forbidden_roles)}); drop it before releasing"
            )


def refuse_forbidden_levels(
    levels: Mapping[str, Sequence[Any]], policy: Policy, where: str
) -> None:
    """Refuse (``forbidden_column``) a categorical whose level values carry a forbidden
    role (a practice code as a level, say)."""
    for v, values in levels.items():
        for level in values:
            role = forbidden_role(str(level), policy)
            if role is not None:
                raise DisclosureError(
                    f"covariate {v!r} of {where} has a level whose value marks it as "
                    f"{role.replace('_', ' ')} (rule: forbidden_column)"
                )


def refuse_small_cohorts(sizes: Sequence[tuple[str, float]], policy: Policy) -> None:
    """Refuse (``min_cell``) when a cohort behind a release (name, patients) has fewer
    than ``min_cell`` patients."""
    for who, m in sizes:
        if m < policy.min_cell:
            raise DisclosureError(
                f"cohort {who!r} has fewer than {policy.min_cell} patients (rule: min_cell)"
            )
