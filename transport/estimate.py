"""``Estimate``: one number with its standard error and confidence interval."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Estimate"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and confidence interval.

    Attributes
    ----------
    value, se, ci_lower, ci_upper
        The estimate, its standard error and the interval bounds; ``nan`` where a
        quantity is not estimable (e.g. a median the curve never reaches), with the reason
        in ``note``.
    note
        Why a field is ``nan``, or how the interval was built when that is not obvious.
    ci_method
        How the interval was obtained (e.g. ``"wald"``, ``"band-inversion (log-log)"``).
    conf_level
        Nominal coverage of the interval.
    """

    value: float
    se: float
    ci_lower: float
    ci_upper: float
    note: str = ""
    ci_method: str = ""
    conf_level: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (``nan`` becomes ``None``)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }

    def __repr__(self) -> str:
        pct = f"{100 * self.conf_level:g}%"
        text = (
            f"Estimate({self.value:.6g}, se {self.se:.4g}, "
            f"{pct} CI {self.ci_lower:.6g} to {self.ci_upper:.6g}"
        )
        return text + (f"; {self.note})" if self.note else ")")
