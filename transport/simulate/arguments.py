"""The arguments of the simulation functions, checked before any draw: a count, seed,
flag, rate or model of the wrong kind is a ``ValueError`` or ``TypeError`` naming the
parameter and the rule, never numpy's error from deep inside a draw, and never a cohort
quietly simulated from a coerced value (``n=2.7``, ``setting_effect="no"``)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transport._validate import check_seed, is_finite_number, is_integer, real

__all__ = [
    "MAX_PATIENTS",
    "MAX_STRENGTH",
    "check_codes",
    "check_countries",
    "check_country",
    "check_flags",
    "check_grid",
    "check_instances",
    "check_missing",
    "check_patients",
    "check_strength",
    "generator",
]

#: Most patients one simulated cohort may have (a national database is a few million).
MAX_PATIENTS = 50_000_000
#: Largest log hazard ratio of the unmeasured modifier: exp(50) is no hazard ratio a
#: study would mean, and past it the event times underflow to 0.
MAX_STRENGTH = 50.0


def check_country(country: Any, known: Sequence[str], where: str, *, any_label: bool) -> str:
    """``country``: one of ``known``, or (``any_label``: a profile is given) any text."""
    if isinstance(country, str) and (any_label or country in known):
        return country
    raise ValueError(
        f"The 'country' parameter of {where} must be one of {list(known)} (or any name "
        f"with a profile). Got {country!r:.60} instead."
    )


def check_patients(n: Any, where: str) -> int:
    """A number of patients: an integer in ``[1, MAX_PATIENTS]`` (not a bool)."""
    if not is_integer(n) or not 1 <= n <= MAX_PATIENTS:
        raise ValueError(
            f"The 'n' parameter of {where} must be an integer from 1 to {MAX_PATIENTS:,}. "
            f"Got {n!r:.60}."
        )
    return int(n)


def generator(seed: Any) -> np.random.Generator:
    """``seed`` as a ``numpy.random.Generator`` (a generator passes as it is); another
    seed is checked as the bootstrap's is (:func:`~transport._validate.check_seed`)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def check_flags(where: str, **flags: Any) -> None:
    """Each flag is ``True`` or ``False``: ``"no"`` is truthy and would switch it on."""
    for name, value in flags.items():
        if not isinstance(value, bool | np.bool_):
            raise TypeError(
                f"The {name!r} parameter of {where} must be True or False. Got {value!r:.60}."
            )


def check_instances(where: str, optional: bool = True, **given: tuple[Any, type]) -> None:
    """Each ``name=(value, cls)``: ``value`` is a ``cls`` (or, ``optional``, ``None``)."""
    for name, (value, cls) in given.items():
        if not (isinstance(value, cls) or (optional and value is None)):
            rule = f"a {cls.__name__}" + (" or None" if optional else "")
            raise TypeError(
                f"The {name!r} parameter of {where} must be {rule}. Got "
                f"{type(value).__name__} instead."
            )


def check_strength(x: Any, where: str) -> float:
    """The unmeasured modifier's log hazard ratio: finite, at most :data:`MAX_STRENGTH`
    in size."""
    if not is_finite_number(x) or abs(real(x)) > MAX_STRENGTH:
        raise ValueError(
            f"The 'unmeasured_strength' parameter of {where} must be a finite number of at "
            f"most {MAX_STRENGTH:g} in size (a log hazard ratio). Got {x!r:.60}."
        )
    return float(x)


def check_missing(missing: Any, rate: Any, where: str) -> float:
    """The missingness mode (``None``, ``"mcar"``, ``"mar"``) and its rate: a share in
    ``[0, 1]`` for ``mcar``, in ``(0, 1)`` for ``mar`` (its logit must be a number)."""
    if missing is None:
        return 0.0  # no missingness: the rate is not read
    if missing not in ("mcar", "mar"):
        raise ValueError(
            f"The 'missing' parameter of {where} must be 'mcar', 'mar' or None. Got "
            f"{missing!r:.60}."
        )
    ok = is_finite_number(rate) and (
        0 < real(rate) < 1 if missing == "mar" else 0 <= real(rate) <= 1
    )
    if not ok:
        bounds = "in (0, 1)" if missing == "mar" else "in [0, 1]"
        raise ValueError(
            f"The 'missing_rate' parameter of {where} must be a share {bounds}. Got {rate!r:.60}."
        )
    return float(rate)


def check_grid(values: Any, name: str, where: str) -> tuple[int, ...]:
    """Whole days ``> 0`` (``365`` or ``365.0``) in increasing order, each once (a grid
    of the truth), given as a list, tuple or array."""
    items = (None if isinstance(values, str | bytes) else _items(values)) or []
    ok = bool(items) and all(
        is_finite_number(x) and 0 < real(x) <= 10**6 and real(x) == int(real(x)) for x in items
    )
    if not ok or any(b <= a for a, b in itertools.pairwise(items)):
        raise ValueError(
            f"The {name!r} parameter of {where} must be whole days > 0 (at most 1e6) in "
            f"increasing order, each once. Got {values!r:.60}."
        )
    return tuple(int(real(x)) for x in items)


def check_countries(countries: Any, known: Sequence[str], where: str) -> tuple[str, ...]:
    """Countries given as a list, tuple or array of names of ``known``, each once."""
    items = None if isinstance(countries, str | bytes) else _items(countries)
    if not items:
        raise ValueError(
            f"The 'countries' parameter of {where} must be a list of countries. Got "
            f"{countries!r:.60}."
        )
    names = tuple(check_country(c, known, where, any_label=False) for c in items)
    if len(set(names)) != len(names):
        raise ValueError(
            f"The 'countries' parameter of {where} names a country twice: {list(names)}."
        )
    return names


def _items(values: Any) -> list[Any] | None:
    """The elements of a list, tuple or 1-d array; ``None`` for anything else."""
    if isinstance(values, np.ndarray):
        return values.tolist() if values.ndim == 1 else None
    return list(values) if isinstance(values, list | tuple) else None


def check_codes(
    cov: Any, ranges: Mapping[str, tuple[int, int]], where: str
) -> dict[str, np.ndarray]:
    """Covariate codes: a mapping holding, for each name of ``ranges``, a 1-d integer
    array of codes within its ``(lowest, highest)``, all of one length; that length. (A
    code out of range would index another pattern's probability without a word.)"""
    if not isinstance(cov, Mapping):
        raise TypeError(
            f"The 'cov' parameter of {where} must be a dict of code arrays. Got "
            f"{type(cov).__name__} instead."
        )
    missing = [k for k in ranges if k not in cov]
    if missing:
        raise ValueError(f"The 'cov' parameter of {where} lacks the covariate(s) {missing}.")
    sizes = set()
    out: dict[str, np.ndarray] = {}
    for name, (lo, hi) in ranges.items():
        a = np.asarray(cov[name])
        out[name] = a
        if (
            a.ndim != 1
            or a.dtype.kind not in "iu"
            or (a.size and not lo <= a.min() <= a.max() <= hi)
        ):
            raise ValueError(
                f"The 'cov' parameter of {where}: {name!r} must be a 1-d array of integer "
                f"codes from {lo} to {hi}."
            )
        sizes.add(a.size)
    if len(sizes) > 1:
        raise ValueError(f"The 'cov' parameter of {where} has code arrays of different lengths.")
    return out
