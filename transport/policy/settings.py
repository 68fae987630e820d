"""The :class:`Policy` an environment sets, the forbidden roles of column names, the
refusals that no coarsening can mend (``forbidden_column``, a cohort below
``min_cell``), the names of every rule (:data:`RULES`), and the environment's policy as a
floor that an analysis may tighten, never loosen (``policy_floor``, :data:`TIGHTER`)."""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from transport.cohort import TIME_UNITS
from transport.exceptions import DisclosureError
from transport.summary import DOMINANCE_DEPTH

__all__ = [
    "FORBIDDEN_TOKENS",
    "MAX_LABEL",
    "MAX_PATH",
    "POLICY_ENV",
    "RULES",
    "TIGHTER",
    "Policy",
    "Withhold",
    "environment_policy",
    "floor_policy",
    "forbidden_role",
]


#: Name tokens that mark a column's role as one that must never be released. A column
#: name is split into lower-case tokens at non-alphanumerics and camelCase boundaries; a
#: token, two adjacent tokens run together (``seen_by``, ``referredBy``) or the whole
#: name may match.
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
            "attending",
            "referrer",
            "referring",
            "seenby",
            "treatedby",
            "referredby",
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


#: Every rule of the release gate and of release verification, by the name refusals and
#: the manifest's suppression list use, with what it protects. A new rule adds its line
#: here: verification refuses a withheld item whose rule is not one of these.
RULES: dict[str, str] = {
    "patient_rows": "no patient-level rows ever leave",
    "forbidden_column": "identifiers, practices, physicians and free text are never released",
    "formula_closed": "a released formula is data in the closed grammar, never code",
    "min_cell": "no count, share, mean or risk set rests on fewer than min_cell patients",
    "km_grid": "survival curves only on the fixed grid: no exact event time",
    "min_km_step": "each released curve step has none or at least min_km_step exits (as released)",
    "time_grid": "medians (one patient's time) only rounded outwards to the grid",
    "round_to": "released counts are multiples of round_to",
    "min_residual_df": "a released model has at least min_residual_df residual df",
    "min_ess": "a weighted result rests on an effective sample size of at least min_ess: "
    "no patient carries more than 1/min_ess of its weight",
    "model_bounds": "a shipped model's linear predictor spreads over the target by at most "
    "max_log_hazard_ratio, and its numbers are those of a fit",
    "min_contributors": "a shipped model's transported value rests on at least min_cell "
    "effective target patients",
    "centre_lattice": "a released Cox model's centre is its columns' means on a lattice of "
    "their SDs' powers of ten, not the exact means",
    "bootstrap_summary": "a released model's bootstrap is a summary: no refits, no seed, "
    "at most MAX_SHIPPED_BOOT replicates asked of the target",
    "transform_state": "a shipped design's transform state has the keys, kinds and sizes "
    "its formula gives, finite numbers",
    "free_text_levels": "levels that read as free text (names, numbers, notes) never leave",
    "dominance": "no released mean or SD is dominated by its dominance_n largest patients",
    "p_percent": "no patient's contribution to a released mean or SD can be estimated to "
    "within p_percent by another",
    "steep_transform": "a formula chosen by another environment keeps to low-degree "
    "transforms where its means are released, so that the dominance rules bound what it asks",
    "level_coding": "every released design column that codes levels is read back to its "
    "covariate's levels, so that the level rules apply to it",
    "few_values": "a column of few distinct values releases its moments only with "
    "min_cell patients at each value",
    "policy_floor": "no analysis or release loosens the environment's policy",
    "release_path": "verification reads only plain files inside the release directory",
    "release_manifest": "the manifest is as the gate writes it (fields, rules, policy, files)",
    "release_hash": "every released file is listed and unchanged (SHA-256)",
    "release_signature": "with the environment's key: the release is as its gate signed it",
    "release_counts": "released counts agree with the stated policy",
    "release_schema": "each released file has exactly the keys, columns, types and names "
    "the gate writes for it",
}

#: The longest label a manifest carries: a policy's ``name``, each of its
#: ``forbidden_names``, the package's version (rule ``release_schema``: a manifest's
#: strings are short).
MAX_LABEL = 80
#: The longest ``signing_key_file`` path a policy (and so a manifest) carries.
MAX_PATH = 4096


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [t for t in re.split(r"[^0-9A-Za-z]+", spaced.lower()) if t]


def forbidden_role(name: str, policy: Policy | None = None) -> str | None:
    """The forbidden role a column name carries under ``policy`` (``None`` if none)."""
    policy = policy or Policy()
    parts = _tokens(name)
    # a token, two adjacent ones run together ("seen_by" as "seenby") or the whole name
    tokens = set(parts) | {a + b for a, b in pairwise(parts)}
    joined = "".join(parts)
    if name.lower() in policy.forbidden_names or joined in policy.forbidden_names:
        return "identifier"
    for role in policy.forbidden_roles:
        words = FORBIDDEN_TOKENS.get(role, frozenset())
        if tokens & words or joined in words:
            return role
    return None


#: Most steps a released curve's fixed grid may have (1e-300-day steps fit no memory).
MAX_GRID = 100_000


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
    min_ess
        Smallest effective sample size behind a released weighted estimate, the smaller
        of Kish's ``(sum w)^2 / sum w^2`` and ``sum w / max w`` (so that no patient
        carries more than ``1 / min_ess`` of the weight): the whole weighted cohort of a
        weighting or a reweighted result, and the weighted risk set at each released
        step of a reweighted curve (rule ``min_ess``). ``None`` (the default) means
        ``min_cell``. Larger tightens.
    km_grid_step, time_unit
        Spacing of the fixed grid survival curves are reported on, in ``time_unit``
        (default one month: 30.4375 days).
    max_log_hazard_ratio
        Widest spread, ``max(lp) - min(lp)`` over the target's rows, of the linear
        predictor (the log hazard ratio between the highest- and lowest-risk patients)
        of a shipped model the target applies (rule ``model_bounds``; default 10, a
        hazard ratio of about 22,000). It protects the target's rows from a crafted
        model: an extreme coefficient with a chosen baseline turns the transported
        curve into a count of the target's patients above a threshold of a covariate.
        Smaller tightens.
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
        Further column names (lower case) this environment treats as identifiers, each
        at most :data:`MAX_LABEL` characters.
    name
        A label for the manifest, at most :data:`MAX_LABEL` characters (a manifest
        carries only short strings: rule ``release_schema``).
    signing_key_file
        A file holding this environment's release key (at least 16 bytes): the gate signs
        every manifest with it (HMAC-SHA256) and :func:`transport.disclosure.verify`
        checks the signature, so that a release edited after the gate is told apart.
        ``None`` (default): the key in ``TRANSPORT_RELEASE_KEY``, if set, else unsigned.
        The key is never written; the file's path is, in the manifest's policy.

    An environment's policy (``TRANSPORT_POLICY``, :func:`environment_policy`) is a
    floor: an analysis plan may tighten it, never loosen it (:meth:`tightened`, the
    directions in :data:`TIGHTER`), and the gate refuses a policy looser than it.
    """

    min_cell: int = 10
    min_km_step: int = 10
    round_to: int = 5
    min_residual_df: int = 10
    min_ess: int | None = None
    km_grid_step: float = 30.4375
    max_log_hazard_ratio: float = 10.0
    dominance_n: int = 2
    dominance_k: float = 0.9
    p_percent: float = 0.1
    time_unit: str = "days"
    forbidden_roles: tuple[str, ...] = ("identifier", "practice", "physician", "free_text")
    forbidden_names: tuple[str, ...] = ()
    name: str = "default"
    signing_key_file: str | None = None

    def __post_init__(self) -> None:
        for key in ("min_cell", "min_km_step", "round_to", "min_residual_df"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Policy {key!r} must be an integer >= 1; got {v!r}")
        # min_ess: None (= min_cell) or an integer >= 1
        ess = self.min_ess
        if ess is not None and (not isinstance(ess, int) or isinstance(ess, bool) or ess < 1):
            raise ValueError(f"Policy 'min_ess' must be None or an integer >= 1; got {ess!r}")
        step = self.km_grid_step
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ValueError(f"Policy 'km_grid_step' must be a positive number; got {step!r}")
        if not math.isfinite(step):
            raise ValueError(f"Policy 'km_grid_step' must be finite; got {step!r}")
        bound = self.max_log_hazard_ratio
        if (
            isinstance(bound, bool)
            or not isinstance(bound, (int, float))
            or not (math.isfinite(bound) and bound > 0)
        ):
            raise ValueError(
                f"Policy 'max_log_hazard_ratio' must be a finite number > 0; got {bound!r}"
            )
        self._check_dominance()
        if not isinstance(self.time_unit, str) or self.time_unit not in TIME_UNITS:
            raise ValueError(
                f"Policy 'time_unit' must be one of {sorted(TIME_UNITS)}; got {self.time_unit!r}"
            )
        for key in ("forbidden_roles", "forbidden_names"):
            names = getattr(self, key)
            if isinstance(names, str):
                raise ValueError(
                    f"Policy {key!r} must be a list of names, not one string; got "
                    f"{names!r} (write [{names!r}])"
                )
            if not isinstance(names, list | tuple) or not all(isinstance(x, str) for x in names):
                raise ValueError(f"Policy {key!r} must be a list of names; got {names!r:.80}")
        unknown = set(self.forbidden_roles) - set(FORBIDDEN_TOKENS)
        if unknown:
            raise ValueError(
                f"Policy 'forbidden_roles' has unknown role(s) {sorted(unknown)}; known: "
                f"{sorted(FORBIDDEN_TOKENS)}"
            )
        key_file = self.signing_key_file
        if key_file is not None and (
            not isinstance(key_file, str) or not key_file.strip() or len(key_file) > MAX_PATH
        ):
            raise ValueError(
                f"Policy 'signing_key_file' must be a file path (at most {MAX_PATH} "
                "characters) or None"
            )
        self._check_labels()
        object.__setattr__(self, "forbidden_roles", tuple(self.forbidden_roles))
        object.__setattr__(
            self, "forbidden_names", tuple(str(x).lower() for x in self.forbidden_names)
        )

    def _check_labels(self) -> None:
        """``name`` and each of ``forbidden_names`` a string of at most ``MAX_LABEL``
        characters (the value is not shown: it may be what does not fit)."""
        labels = [("name", self.name)]
        if not isinstance(self.forbidden_names, str):
            labels += [("forbidden_names", str(x)) for x in self.forbidden_names]
        for key, x in labels:
            if not isinstance(x, str) or len(x) > MAX_LABEL:
                raise ValueError(
                    f"Policy {key!r} must hold strings of at most {MAX_LABEL} characters; got "
                    f"a {type(x).__name__}" + (f" of {len(x)}" if isinstance(x, str) else "")
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
        return cls.from_dict(cls.read_table(path), f"disclosure policy {str(path)!r}")

    @staticmethod
    def read_table(path: str | Path) -> dict[str, Any]:
        """The policy settings a TOML file states (its ``[disclosure]`` table, or its top
        level), as written: what :meth:`tightened` merges into a floor."""
        where = f"disclosure policy file {str(path)!r}"
        if not Path(path).is_file():
            raise FileNotFoundError(f"{where} does not exist or is not a file")
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise ValueError(f"{where} cannot be read as TOML ({exc})") from None
        table = data.get("disclosure", data)
        if not isinstance(table, dict):
            raise ValueError(f"disclosure policy {str(path)!r}: [disclosure] must be a table")
        return table

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "disclosure policy") -> Policy:
        """A policy from a table of its keys (a TOML file's, a plan's ``[disclosure]``);
        an unknown key is refused, naming ``where``."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{where} must be a table of the Policy's keys; got {type(data).__name__}"
            )
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; known: {sorted(allowed)}")
        fields = dict(data)
        for key in ("forbidden_roles", "forbidden_names"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
        try:
            return cls(**fields)
        except ValueError as exc:  # name the file or table the setting came from
            raise ValueError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The policy as written into every manifest."""
        out = asdict(self)
        out["forbidden_roles"] = list(self.forbidden_roles)
        out["forbidden_names"] = list(self.forbidden_names)
        return out

    @property
    def ess_floor(self) -> int:
        """The effective sample size the ``min_ess`` rule asks for (``min_cell`` when
        ``min_ess`` is ``None``)."""
        return self.min_cell if self.min_ess is None else self.min_ess

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
        if not (steps := last / step) <= MAX_GRID:
            raise ValueError(
                f"Policy 'km_grid_step' {self.km_grid_step:g} {self.time_unit} cuts the "
                f"follow-up ({last:g} {time_unit}) into more than {MAX_GRID:,} steps (rule: a "
                "released curve has at most that many; choose a coarser step)"
            )
        n = max(1, math.ceil(steps - 1e-9))
        return step * np.arange(1, n + 1, dtype=np.float64)

    # -- the floor -------------------------------------------------------------------------
    def loosened_by(self, other: Policy) -> list[str]:
        """The fields on which ``other`` is looser than this policy (the floor), each as
        ``"field (floor F, got G)"``: what :data:`TIGHTER` does not accept. A field with no
        direction in the table may not differ from the floor."""
        out = []
        for key in self.__dataclass_fields__:
            mine, theirs = getattr(self, key), getattr(other, key)
            tighter = TIGHTER.get(key)
            if not (tighter(self, other) if tighter is not None else mine == theirs):
                if key in ("km_grid_step", "time_unit"):
                    mine = f"{self.km_grid_step:g} {self.time_unit}"
                    theirs = f"{other.km_grid_step:g} {other.time_unit}"
                out.append(f"{key} (floor {mine!r}, got {theirs!r})")
        return sorted(set(out))

    def refuse_looser(self, other: Policy, where: str) -> None:
        """Refuse (``policy_floor``) ``other`` when it loosens this policy, the floor,
        naming each field, the floor's value and ``other``'s."""
        loose = self.loosened_by(other)
        if loose:
            raise DisclosureError(
                f"{where} loosens the environment's policy {self.name!r} on "
                f"{'; '.join(loose)} (rule: policy_floor: a plan or release may tighten the "
                "environment's policy, never loosen it)"
            )

    def tightened(self, settings: Mapping[str, Any], where: str) -> Policy:
        """This policy (the environment's floor) with ``settings`` (a plan's
        ``[disclosure]`` table) applied, which may only tighten it: a field they loosen
        is refused (``policy_floor``), as is ``time_unit`` without ``km_grid_step`` (the
        grid step is stated in its unit)."""
        unit = settings.get("time_unit", self.time_unit)
        if unit != self.time_unit and "km_grid_step" not in settings:
            raise DisclosureError(
                f"{where} sets time_unit {unit!r} without km_grid_step (floor "
                f"{self.km_grid_step:g} {self.time_unit}) (rule: policy_floor): state both, "
                "the step in the new unit"
            )
        merged = Policy.from_dict({**self.to_dict(), **settings}, where)
        self.refuse_looser(merged, where)
        return merged


#: The environment variable naming an environment's policy file: the floor of every
#: analysis run and every release there (:func:`environment_policy`).
POLICY_ENV = "TRANSPORT_POLICY"


def environment_policy(path: str | Path | None = None) -> Policy:
    """The environment's policy, the floor: the TOML file ``path``, else the file named by
    ``TRANSPORT_POLICY``, else the defaults."""
    path = path if path is not None else os.environ.get(POLICY_ENV) or None
    return Policy() if path is None else Policy.from_toml(path)


def floor_policy() -> Policy | None:
    """The policy named by ``TRANSPORT_POLICY``, or ``None`` when it is not set."""
    return environment_policy() if os.environ.get(POLICY_ENV) else None


Tighter = Callable[[Policy, Policy], bool]


def _larger(key: str) -> Tighter:
    """Larger is tighter (``None``, no bound, is the loosest)."""

    def tighter(floor: Policy, other: Policy) -> bool:
        f, o = getattr(floor, key), getattr(other, key)
        return f is None or (o is not None and o >= f)

    return tighter


def _smaller(key: str) -> Tighter:
    """Smaller is tighter (``None``, no bound, is the loosest)."""

    def tighter(floor: Policy, other: Policy) -> bool:
        f, o = getattr(floor, key), getattr(other, key)
        return f is None or (o is not None and o <= f)

    return tighter


def _multiple(x: float, of: float) -> bool:
    ratio = x / of
    return ratio >= 1 - 1e-9 and abs(ratio - round(ratio)) <= 1e-9 * ratio


def _coarser_grid(floor: Policy, other: Policy) -> bool:
    """The grid step, compared in days, a whole multiple of the floor's: every released
    step is then a union of the floor's steps (a coarser grid that is not a multiple,
    released beside one on the floor's grid, would split its steps)."""
    return _multiple(other.grid_step_in("days"), floor.grid_step_in("days"))


def _min_ess(floor: Policy, other: Policy) -> bool:
    """``min_ess``, ``None`` meaning ``min_cell``: larger is tighter."""
    f, o = (getattr(p, "min_ess", None) for p in (floor, other))
    if f is None and o is None:  # both follow min_cell, whose own entry compares them
        return True
    return bool((other.min_cell if o is None else o) >= (floor.min_cell if f is None else f))


def _grown(key: str) -> Tighter:
    return lambda floor, other: set(getattr(floor, key)) <= set(getattr(other, key))


#: Which way each :class:`Policy` field tightens: ``TIGHTER[field](floor, other)`` is true
#: when ``other`` is at least as tight as ``floor`` on it. A field without an entry may not
#: differ from the floor. One line per field; entries for fields :class:`Policy` does not
#: have are skipped (:meth:`Policy.loosened_by` walks the Policy's fields).
TIGHTER: dict[str, Tighter] = {
    "min_cell": _larger("min_cell"),
    "min_km_step": _larger("min_km_step"),
    "min_residual_df": _larger("min_residual_df"),
    # a multiple of the floor's: each released count is then also on the floor's lattice
    "round_to": lambda floor, other: other.round_to % floor.round_to == 0,
    "km_grid_step": _coarser_grid,
    "time_unit": _coarser_grid,  # the unit of km_grid_step: the pair is compared in days
    "forbidden_roles": _grown("forbidden_roles"),
    "forbidden_names": _grown("forbidden_names"),
    # the environment's key file stays; a plan may name one where the floor has none
    "signing_key_file": lambda floor, other: (
        floor.signing_key_file in (None, other.signing_key_file)
    ),
    "name": lambda floor, other: True,  # a label
    "min_ess": _min_ess,
    "dominance_n": _larger("dominance_n"),
    "dominance_k": _smaller("dominance_k"),
    "p_percent": _larger("p_percent"),
    "max_log_hazard_ratio": _smaller("max_log_hazard_ratio"),
}


def _real(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


#: ``withhold(item, rule, why)``: how a rule records what it suppressed.
Withhold = Callable[[str, str, str], None]
