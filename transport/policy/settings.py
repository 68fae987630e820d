"""The :class:`Policy` an environment sets, the forbidden roles of column names, and the
refusals that no coarsening can mend (``forbidden_column``, a cohort below
``min_cell``)."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transport.cohort import TIME_UNITS
from transport.exceptions import DisclosureError
from transport.summary import DOMINANCE_DEPTH

__all__ = [
    "FORBIDDEN_TOKENS",
    "Policy",
    "Withhold",
    "forbidden_role",
    "refuse_forbidden",
    "refuse_forbidden_levels",
    "refuse_small_cohorts",
]


#: Name tokens that mark a column's role as one that must never be released. A column
#: name is split into lower-case tokens at non-alphanumerics and camelCase boundaries.
FORBIDDEN_TOKENS: dict[str, frozenset[str]] = {
    "identifier": frozenset(
        [
            "id",
            "ids",
            "pid",
            "patid",
            "patientid",
            "personid",
            "uuid",
            "guid",
            "nhs",
            "nhsno",
            "nhsnumber",
            "mrn",
            "ssn",
            "chi",
            "name",
            "surname",
            "forename",
            "address",
            "postcode",
            "zipcode",
            "zip",
            "dob",
            "birthdate",
            "email",
            "phone",
        ]
    ),
    "practice": frozenset(
        ["practice", "pracid", "surgery", "gpcode", "clinic", "hospital", "trust", "ward"]
    ),
    "physician": frozenset(
        [
            "physician",
            "doctor",
            "clinician",
            "consultant",
            "prescriber",
            "provider",
            "gp",
            "staff",
            "surgeon",
            "oncologist",
        ]
    ),
    "free_text": frozenset(
        [
            "note",
            "notes",
            "comment",
            "comments",
            "text",
            "freetext",
            "narrative",
            "description",
            "remarks",
            "memo",
        ]
    ),
}


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [t for t in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if t]


def forbidden_role(name: str, policy: Policy | None = None) -> str | None:
    """The forbidden role a column name carries under ``policy`` (``None`` if none)."""
    policy = policy or Policy()
    parts = _tokens(name)
    tokens = set(parts)
    joined = "".join(parts)
    if name.lower() in policy.forbidden_names or joined in policy.forbidden_names:
        return "identifier"
    for role in policy.forbidden_roles:
        words = FORBIDDEN_TOKENS.get(role, frozenset())
        if tokens & words or joined in words:
            return role
    return None


@dataclass(frozen=True)
class Policy:
    """What may leave an environment (DESIGN §5). Load each environment's own with
    :meth:`from_toml`.

    Parameters
    ----------
    min_cell
        Fewest patients behind any released count, share, mean or risk set.
    min_km_step
        Fewest events plus exits behind each reported step of a survival curve (a step
        with none is reported: the curve is flat there).
    round_to
        Released counts are rounded to a multiple of this (1: no rounding).
    min_residual_df
        Fewest residual degrees of freedom of a released model.
    km_grid_step, time_unit
        Spacing of the fixed grid survival curves are reported on, in ``time_unit``
        (default one month: 30.4375 days).
    dominance_n, dominance_k
        The dominance (n, k) rule on every released mean and SD of a design column (a
        summary's, and those behind a shipped model's coefficients): withheld when the
        largest ``dominance_n`` patients' contributions make more than ``dominance_k``
        of the total (default 2 and 0.9, as ACRO). A larger ``n`` or a smaller ``k``
        tightens; ``n`` is at most :data:`~transport.summary.DOMINANCE_DEPTH`.
    p_percent
        The p% rule on the same: withheld when the total less the two largest
        contributions is less than ``p_percent`` of the largest (default 0.1: the
        second largest contributor could tell the largest to within 10%). Larger
        tightens; 0 turns it off.
    forbidden_roles
        Roles whose columns are refused: any of ``"identifier"``, ``"practice"``,
        ``"physician"``, ``"free_text"``.
    forbidden_names
        Further column names (lower case) this environment treats as identifiers.
    name
        A label for the manifest.
    """

    min_cell: int = 10
    min_km_step: int = 10
    round_to: int = 5
    min_residual_df: int = 10
    km_grid_step: float = 30.4375
    dominance_n: int = 2
    dominance_k: float = 0.9
    p_percent: float = 0.1
    time_unit: str = "days"
    forbidden_roles: tuple[str, ...] = ("identifier", "practice", "physician", "free_text")
    forbidden_names: tuple[str, ...] = ()
    name: str = "default"

    def __post_init__(self) -> None:
        for key in ("min_cell", "min_km_step", "round_to", "min_residual_df"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Policy {key!r} must be an integer >= 1; got {v!r}")
        step = self.km_grid_step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ValueError(f"Policy 'km_grid_step' must be a positive number; got {step!r}")
        if not math.isfinite(step):
            raise ValueError(f"Policy 'km_grid_step' must be finite; got {step!r}")
        self._check_dominance()
        if self.time_unit not in TIME_UNITS:
            raise ValueError(
                f"Policy 'time_unit' must be one of {sorted(TIME_UNITS)}; got {self.time_unit!r}"
            )
        unknown = set(self.forbidden_roles) - set(FORBIDDEN_TOKENS)
        if unknown:
            raise ValueError(
                f"Policy 'forbidden_roles' has unknown role(s) {sorted(unknown)}; known: "
                f"{sorted(FORBIDDEN_TOKENS)}"
            )
        for key in ("forbidden_roles", "forbidden_names"):
            if isinstance(getattr(self, key), str):
                raise ValueError(
                    f"Policy {key!r} must be a list of names, not one string; got "
                    f"{getattr(self, key)!r} (write [{getattr(self, key)!r}])"
                )
        object.__setattr__(self, "forbidden_roles", tuple(self.forbidden_roles))
        object.__setattr__(
            self, "forbidden_names", tuple(str(x).lower() for x in self.forbidden_names)
        )

    def _check_dominance(self) -> None:
        """``dominance_n`` in 1..DOMINANCE_DEPTH, ``0 < dominance_k <= 1``,
        ``0 <= p_percent < 1``."""
        n = self.dominance_n
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= DOMINANCE_DEPTH:
            raise ValueError(
                f"Policy 'dominance_n' must be an integer from 1 to {DOMINANCE_DEPTH} (the "
                f"largest contributions a summary keeps); got {n!r}"
            )
        k, p = self.dominance_k, self.p_percent
        if not _real(k) or not 0 < k <= 1:
            raise ValueError(f"Policy 'dominance_k' must be a number in (0, 1]; got {k!r}")
        if not _real(p) or not 0 <= p < 1:
            raise ValueError(f"Policy 'p_percent' must be a number in [0, 1); got {p!r}")

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy from a TOML file: the keys of :class:`Policy`, at the top level
        or in a ``[disclosure]`` table; missing keys keep their defaults."""
        path = Path(path)
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return cls.from_dict(data.get("disclosure", data), f"disclosure policy {str(path)!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "disclosure policy") -> Policy:
        """A policy from a table of its keys (a TOML file's, a plan's ``[disclosure]``);
        an unknown key is refused, naming ``where``."""
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; known: {sorted(allowed)}")
        fields = dict(data)
        for key in ("forbidden_roles", "forbidden_names"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = tuple(fields[key])
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The policy as written into every manifest."""
        out = asdict(self)
        out["forbidden_roles"] = list(self.forbidden_roles)
        out["forbidden_names"] = list(self.forbidden_names)
        return out

    def round_count(self, x: float) -> int:
        """``x`` rounded to the nearest multiple of ``round_to`` (halves up)."""
        return int(self.round_to * math.floor(float(x) / self.round_to + 0.5))

    def grid_step_in(self, time_unit: str) -> float:
        """The KM grid step in ``time_unit``."""
        return self.km_grid_step * TIME_UNITS[self.time_unit] / TIME_UNITS[time_unit]

    def grid(self, last: float, time_unit: str) -> np.ndarray:
        """The fixed grid covering ``last`` (in ``time_unit``): multiples of the step, the
        last one at or after ``last`` so that every exit falls in a step."""
        step = self.grid_step_in(time_unit)
        n = max(1, math.ceil(last / step - 1e-9))
        return step * np.arange(1, n + 1, dtype=np.float64)


def _real(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


#: ``withhold(item, rule, why)``: how a rule records what it suppressed.
Withhold = Callable[[str, str, str], None]


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
