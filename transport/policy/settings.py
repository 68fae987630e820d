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

from transport._validate import is_finite_number, is_integer
from transport.cohort import TIME_UNITS
from transport.document import MAX_N
from transport.exceptions import DataError, DisclosureError
from transport.policy.rules import FORBIDDEN_TOKENS, RULES
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
        self._check_numbers()
        self._check_dominance()
        if not isinstance(self.time_unit, str) or self.time_unit not in TIME_UNITS:
            raise DataError(
                f"Policy 'time_unit' must be one of {sorted(TIME_UNITS)}; got {self.time_unit!r}"
            )
        for key in ("forbidden_roles", "forbidden_names"):
            names = getattr(self, key)
            if isinstance(names, str):
                raise DataError(
                    f"Policy {key!r} must be a list of names, not one string; got "
                    f"{names!r} (write [{names!r}])"
                )
            if not isinstance(names, list | tuple) or not all(isinstance(x, str) for x in names):
                raise DataError(f"Policy {key!r} must be a list of names; got {names!r:.80}")
        unknown = set(self.forbidden_roles) - set(FORBIDDEN_TOKENS)
        if unknown:
            raise DataError(
                f"Policy 'forbidden_roles' has unknown role(s) {sorted(unknown)}; known: "
                f"{sorted(FORBIDDEN_TOKENS)}"
            )
        key_file = self.signing_key_file
        if isinstance(key_file, os.PathLike):
            key_file = os.fspath(key_file)
        if key_file is not None and (
            not isinstance(key_file, str) or not key_file.strip() or len(key_file) > MAX_PATH
        ):
            raise DataError(
                f"Policy 'signing_key_file' must be a file path (at most {MAX_PATH} "
                "characters) or None"
            )
        self._check_labels()
        object.__setattr__(self, "signing_key_file", key_file)
        object.__setattr__(self, "forbidden_roles", tuple(self.forbidden_roles))
        object.__setattr__(
            self, "forbidden_names", tuple(str(x).lower() for x in self.forbidden_names)
        )

    def _check_numbers(self) -> None:
        """The counts integers from 1 to :data:`~transport.document.MAX_N` (Python or
        numpy, never a bool), the grid step and the log hazard ratio finite numbers > 0;
        each stored as a Python ``int`` or ``float``."""
        for key in ("min_cell", "min_km_step", "round_to", "min_residual_df", "min_ess"):
            v = getattr(self, key)
            if key == "min_ess" and v is None:  # None: min_ess follows min_cell
                continue
            if not is_integer(v) or not 1 <= v <= MAX_N:
                either = "None or " if key == "min_ess" else ""
                raise DataError(
                    f"Policy {key!r} must be {either}an integer >= 1 (at most {MAX_N:g}); got {v!r}"
                )
            object.__setattr__(self, key, int(v))
        for key in ("km_grid_step", "max_log_hazard_ratio"):
            v = getattr(self, key)
            if not is_finite_number(v) or not v > 0:
                raise DataError(f"Policy {key!r} must be a finite number > 0; got {v!r}")
            object.__setattr__(self, key, v.item() if isinstance(v, np.generic) else v)

    def _check_labels(self) -> None:
        """``name`` and each of ``forbidden_names`` a string of at most ``MAX_LABEL``
        characters (the value is not shown: it may be what does not fit)."""
        labels = [("name", self.name)]
        if not isinstance(self.forbidden_names, str):
            labels += [("forbidden_names", str(x)) for x in self.forbidden_names]
        for key, x in labels:
            if not isinstance(x, str) or len(x) > MAX_LABEL:
                raise DataError(
                    f"Policy {key!r} must hold strings of at most {MAX_LABEL} characters; got "
                    f"a {type(x).__name__}" + (f" of {len(x)}" if isinstance(x, str) else "")
                )

    def _check_dominance(self) -> None:
        """``dominance_n`` in 1..DOMINANCE_DEPTH, ``0 < dominance_k <= 1``,
        ``0 <= p_percent < 1``."""
        n = self.dominance_n
        if not is_integer(n) or not 1 <= n <= DOMINANCE_DEPTH:
            raise DataError(
                f"Policy 'dominance_n' must be an integer from 1 to {DOMINANCE_DEPTH} (the "
                f"largest contributions a summary keeps); got {n!r}"
            )
        object.__setattr__(self, "dominance_n", int(n))
        k, p = self.dominance_k, self.p_percent
        if not is_finite_number(k) or not 0 < k <= 1:
            raise DataError(f"Policy 'dominance_k' must be a number in (0, 1]; got {k!r}")
        if not is_finite_number(p) or not 0 <= p < 1:
            raise DataError(f"Policy 'p_percent' must be a number in [0, 1); got {p!r}")
        for key in ("dominance_k", "p_percent"):
            if isinstance(getattr(self, key), np.generic):
                object.__setattr__(self, key, getattr(self, key).item())

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy from a TOML file: the keys of :class:`Policy`, either all at the
        top level or all in a ``[disclosure]`` table (:meth:`read_table`); missing keys
        keep their defaults, and ``time_unit`` comes with ``km_grid_step``
        (:meth:`from_dict`)."""
        return cls.from_dict(cls.read_table(path), f"disclosure policy {str(path)!r}")

    @staticmethod
    def read_table(path: str | Path) -> dict[str, Any]:
        """The policy settings a TOML file states, as written: what :meth:`tightened`
        merges into a floor. They are either all at the top level or all in a
        ``[disclosure]`` table; a file with a ``[disclosure]`` table and other keys beside
        it is refused (``DataError`` naming them), never read as one of the two."""
        if not isinstance(path, str | os.PathLike) or not str(path).strip():
            raise DataError(
                "The 'path' parameter of Policy.from_toml must be the path of a TOML file. "
                f"Got {type(path).__name__} {str(path)!r:.80}."
            )
        where = f"disclosure policy file {str(path)!r}"
        if not Path(path).is_file():
            raise FileNotFoundError(f"{where} does not exist or is not a file")
        try:
            with Path(path).open("rb") as fh:
                data = tomllib.load(fh)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise DataError(f"{where} cannot be read as TOML ({exc})") from None
        if "disclosure" not in data:
            return data
        table, beside = data["disclosure"], sorted(k for k in data if k != "disclosure")
        if not isinstance(table, dict):
            raise DataError(f"disclosure policy {str(path)!r}: [disclosure] must be a table")
        if beside:
            raise DataError(
                f"{where} has {beside} beside its [disclosure] table (rule: a policy file "
                "states its settings all at the top level or all in [disclosure]): move "
                "them into [disclosure]"
            )
        return table

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "disclosure policy") -> Policy:
        """A policy from a table of its keys (a TOML file's, a plan's ``[disclosure]``);
        an unknown key is refused, naming ``where``, as is ``time_unit`` other than days
        without ``km_grid_step`` (the step is stated in its unit: the default 30.4375 is
        days), as :meth:`tightened` refuses it."""
        if not isinstance(data, Mapping):
            raise DataError(
                f"{where} must be a table of the Policy's keys; got {type(data).__name__}"
            )
        allowed = set(cls.__dataclass_fields__)
        odd = [k for k in data if not isinstance(k, str)]
        if odd:
            raise DataError(f"{where} has key(s) that are no names: {odd!r:.80}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise DataError(f"{where} has unknown key(s) {unknown}; known: {sorted(allowed)}")
        unit = data.get("time_unit", "days")
        if (
            isinstance(unit, str)
            and unit in set(TIME_UNITS) - {"days"}
            and "km_grid_step" not in data
        ):
            raise DataError(
                f"{where} sets time_unit {unit!r} without km_grid_step (whose default, "
                "30.4375, is in days): state both, the step in the new unit"
            )
        fields = dict(data)
        for key in ("forbidden_roles", "forbidden_names"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
        try:
            return cls(**fields)
        except ValueError as exc:  # name the file or table the setting came from
            raise DataError(f"{where}: {exc}") from None

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
        """``x`` (a finite number: a count) rounded to the nearest multiple of
        ``round_to`` (halves up)."""
        if not is_finite_number(x):
            raise DataError(
                "The 'x' parameter of Policy.round_count must be a finite number (a count). "
                f"Got {_kind(x)}."
            )
        return int(self.round_to * math.floor(float(x) / self.round_to + 0.5))

    def grid_step_in(self, time_unit: str) -> float:
        """The KM grid step in ``time_unit`` (one of :data:`~transport.cohort.TIME_UNITS`)."""
        _check_unit(time_unit, "grid_step_in")
        return self.km_grid_step * TIME_UNITS[self.time_unit] / TIME_UNITS[time_unit]

    def grid(self, last: float, time_unit: str) -> np.ndarray:
        """The fixed grid covering ``last`` (a finite time >= 0, in ``time_unit``):
        multiples of the step, the last one at or after ``last`` so that every exit falls
        in a step."""
        _check_unit(time_unit, "grid")
        if not is_finite_number(last) or not last >= 0:
            raise DataError(
                "The 'last' parameter of Policy.grid must be a finite time >= 0 (the last "
                f"follow-up time). Got {_kind(last)}."
            )
        step = self.grid_step_in(time_unit)
        if not (steps := float(last) / step) <= MAX_GRID:
            raise DataError(
                f"Policy 'km_grid_step' {self.km_grid_step:g} {self.time_unit} cuts the "
                f"follow-up ({last:g} {time_unit}) into more than {MAX_GRID:,} steps (rule: a "
                "released curve has at most that many; choose a coarser step)"
            )
        n = max(1, math.ceil(steps - 1e-9))
        return step * np.arange(1, n + 1, dtype=np.float64)

    # -- the floor -------------------------------------------------------------------------
    def loosened_by(self, other: Policy) -> list[str]:
        """The fields on which ``other`` (a :class:`Policy`) is looser than this policy
        (the floor), each as ``"field (floor F, got G)"``: what :data:`TIGHTER` does not
        accept. A field with no direction in the table may not differ from the floor."""
        _check_policy(other, "loosened_by")
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
        """Refuse (``policy_floor``) ``other`` (a :class:`Policy`) when it loosens this
        policy, the floor, naming each field, the floor's value and ``other``'s, and
        ``where`` (text: which plan or release)."""
        _check_policy(other, "refuse_looser")
        _check_where(where, "refuse_looser")
        loose = self.loosened_by(other)
        if loose:
            raise DisclosureError(
                f"{where} loosens the environment's policy {self.name!r} on "
                f"{'; '.join(loose)} (rule: policy_floor: a plan or release may tighten the "
                "environment's policy, never loosen it)"
            )

    def tightened(self, settings: Mapping[str, Any], where: str) -> Policy:
        """This policy (the environment's floor) with ``settings`` (a table of policy keys:
        a plan's ``[disclosure]``) applied, which may only tighten it: a field they loosen
        is refused (``policy_floor``), as is ``time_unit`` without ``km_grid_step`` (the
        grid step is stated in its unit). ``where`` (text) names the plan or file."""
        if not isinstance(settings, Mapping):
            raise DataError(
                "The 'settings' parameter of Policy.tightened must be a table of the "
                f"Policy's keys (a plan's [disclosure]). Got {type(settings).__name__}."
            )
        _check_where(where, "tightened")
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


def _kind(x: object) -> str:
    """What a number parameter received, without the value of a number (a count may be
    a patient's)."""
    if isinstance(x, float | np.floating) and not math.isfinite(x):
        return repr(float(x))
    return type(x).__name__


def _check_unit(time_unit: object, method: str) -> None:
    if not isinstance(time_unit, str) or time_unit not in TIME_UNITS:
        raise DataError(
            f"The 'time_unit' parameter of Policy.{method} must be one of "
            f"{sorted(TIME_UNITS)}. Got {time_unit!r:.40}."
        )


def _check_policy(other: object, method: str) -> None:
    if not isinstance(other, Policy):
        raise DataError(
            f"The 'other' parameter of Policy.{method} must be a Policy (Policy.from_dict "
            f"reads a table of its keys). Got {type(other).__name__}."
        )


def _check_where(where: object, method: str) -> None:
    if not isinstance(where, str):
        raise DataError(
            f"The 'where' parameter of Policy.{method} must be text naming the plan or "
            f"release. Got {type(where).__name__}."
        )


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


#: ``withhold(item, rule, why)``: how a rule records what it suppressed.
Withhold = Callable[[str, str, str], None]
