"""Shared parameter checks: one home for the rules every entry point applies.

The public API (:func:`~transport.transport`), the plan reader of the command line,
model shipping and the study runner all check their times, horizons, interval levels,
bootstrap sizes, worker counts and margins here, so that one rule gives one message
everywhere: "The 'x' parameter of F must be ... Got ... instead."
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from transport.exceptions import DataError

__all__ = [
    "ESTIMANDS",
    "check_alpha",
    "check_axes",
    "check_ci_level",
    "check_flag",
    "check_margins",
    "check_n_boot",
    "check_n_jobs",
    "check_progress",
    "check_share",
    "check_solver",
    "check_tau",
    "check_times",
    "check_unit_interval",
    "check_window",
    "is_finite_number",
    "is_integer",
    "is_positive_number",
    "real",
    "validate_weights",
]

#: The estimands of a transport analysis, in the order of its summary rows.
ESTIMANDS: tuple[str, ...] = ("survival", "median", "rmst")


def _of(where: str) -> str:
    return f" of {where}" if where else ""


def is_integer(v: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def real(v: Any) -> float:
    """``float(v)``, with an integer past the floats' range (``10**400``) as infinite, so
    that the finiteness and range checks refuse it by name instead of an
    ``OverflowError``."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def is_positive_number(v: Any) -> bool:
    """A finite number > 0 (not a bool)."""
    return (
        isinstance(v, int | float | np.number)
        and not isinstance(v, bool | np.bool_)
        and math.isfinite(real(v))
        and real(v) > 0
    )


def check_times(
    times: Any, where: str = "", *, positive: bool = False, name: str = "times"
) -> np.ndarray:
    """Times for S(t) as a float array: one-dimensional, finite and >= 0 (``positive``:
    > 0); ``None`` is no times."""
    if times is None:
        return np.zeros(0)
    t: np.ndarray | None = None
    try:
        raw = np.atleast_1d(np.asarray(times))
        if raw.dtype.kind not in "iuf":  # text ("100") or a bool (True) is no time
            raw = np.atleast_1d(np.asarray(times, dtype=object))
            if raw.size and _all_numbers(raw):
                t = np.asarray(raw, dtype=np.float64)
        else:
            t = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        t = None
    low_ok = t is not None and (np.all(t > 0) if positive else np.all(t >= 0))
    if t is None or t.ndim != 1 or not np.all(np.isfinite(t)) or not low_ok:
        rule = "positive finite numbers" if positive else "finite numbers >= 0"
        raise ValueError(f"The {name!r} parameter{_of(where)} must be {rule}. Got {times!r:.60}.")
    return t


#: Largest RMST horizon, in any unit: the RMST's variance squares areas up to tau, and
#: past about 1e154 those squares are no number (a horizon of 1e12 years is already none).
MAX_TAU = 1e12


def check_tau(tau: Any, where: str = "") -> float | None:
    """The RMST horizon: ``None`` or a positive finite number of at most :data:`MAX_TAU`."""
    if tau is None:
        return None
    if isinstance(tau, bool) or not isinstance(tau, int | float | np.number):
        raise ValueError(f"The 'tau' parameter{_of(where)} must be a number. Got {tau!r:.60}.")
    if not (math.isfinite(real(tau)) and real(tau) > 0):
        raise ValueError(
            f"The 'tau' parameter{_of(where)} must be positive and finite. Got {tau!r:.60}."
        )
    if real(tau) > MAX_TAU:
        raise ValueError(
            f"The 'tau' parameter{_of(where)} must be at most {MAX_TAU:g} time units. "
            f"Got {tau!r:.60}."
        )
    return float(tau)


def check_ci_level(ci_level: Any, name: str = "ci_level") -> float:
    """A nominal coverage in (0, 1)."""
    if isinstance(ci_level, bool) or not (
        isinstance(ci_level, float | int | np.floating) and 0 < real(ci_level) < 1
    ):
        raise ValueError(f"The '{name}' parameter must be in (0, 1). Got {ci_level!r:.60}.")
    return float(ci_level)


def check_alpha(alpha: Any) -> float:
    """A one-sided test level in (0, 0.5)."""
    if isinstance(alpha, bool) or not (isinstance(alpha, float | int) and 0 < alpha < 0.5):
        raise ValueError(f"The 'alpha' parameter must be in (0, 0.5). Got {alpha!r:.60}.")
    return float(alpha)


#: Most bootstrap replicates one call may ask for (a plan's bound is lower).
MAX_BOOT = 10_000_000


def check_n_boot(n_boot: Any) -> int:
    """Bootstrap replicates: 0 (none) or at least 2 (one replicate has no spread)."""
    if not is_integer(n_boot) or n_boot < 0:
        raise ValueError(f"The 'n_boot' parameter must be an integer >= 0. Got {n_boot!r:.60}.")
    if n_boot == 1:
        raise ValueError(
            "The 'n_boot' parameter must be 0 or at least 2 (one replicate has no spread). Got 1."
        )
    if n_boot > MAX_BOOT:
        raise ValueError(
            f"The 'n_boot' parameter must be at most {MAX_BOOT:,} (a bootstrap interval's "
            f"Monte Carlo error is negligible long before). Got {n_boot!r:.60}."
        )
    return int(n_boot)


def check_n_jobs(n_jobs: Any) -> int:
    """Worker processes: a positive integer, or -1 for every core."""
    if not is_integer(n_jobs) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(
            f"The 'n_jobs' parameter must be a positive integer or -1. Got {n_jobs!r:.60}."
        )
    return int(n_jobs)


def check_progress(progress: Any) -> Any:
    """Progress reporting: ``None``, ``True``/``False`` or a callable ``(done, total)``."""
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise ValueError(
            "The 'progress' parameter must be None, True, False or a callable "
            f"(done, total). Got {progress!r:.60}."
        )
    return progress


def _pair(value: Any) -> tuple[float, float]:
    """Two real numbers given in order (a list, tuple or array; a set has no order),
    else ``(nan, nan)``."""
    if not isinstance(value, list | tuple | np.ndarray) or len(value) != 2:
        return math.nan, math.nan
    if any(
        isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.number) for x in value
    ):
        return math.nan, math.nan
    return real(value[0]), real(value[1])


def check_unit_interval(pair: Any, name: str, where: str = "") -> tuple[float, float]:
    """A pair ``(low, high)`` with ``0 <= low < high <= 1`` (score or quantile limits)."""
    lo, hi = _pair(pair)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(
            f"The {name!r} parameter{_of(where)} must be a pair 0 <= low < high <= 1. "
            f"Got {pair!r:.60}."
        )
    return lo, hi


def check_share(value: Any, name: str, where: str = "") -> float:
    """A share in ``[0, 1]``."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        value_ok = False
    else:
        value_ok = 0.0 <= real(value) <= 1.0
    if not value_ok:
        raise ValueError(
            f"The {name!r} parameter{_of(where)} must be a share in [0, 1]. Got {value!r:.60}."
        )
    return float(value)


#: Loosest balance tolerance (standardised units: 1% of a column's SD); looser weights
#: would be reported as balanced while they are not.
MAX_TOL = 1e-2
MAX_ITER = 1_000_000


def check_solver(tol: Any, max_iter: Any, where: str = "") -> tuple[float, int]:
    """A solver's tolerance in ``(0, MAX_TOL]`` and iteration limit in ``[1, MAX_ITER]``."""
    if not is_positive_number(tol) or float(tol) > MAX_TOL:
        raise ValueError(
            f"The 'tol' parameter{_of(where)} must be a number in (0, {MAX_TOL:g}] (the "
            f"largest standardised imbalance accepted). Got {tol!r:.60}."
        )
    if not is_integer(max_iter) or not 1 <= max_iter <= MAX_ITER:
        raise ValueError(
            f"The 'max_iter' parameter{_of(where)} must be an integer in [1, {MAX_ITER:,}]. "
            f"Got {max_iter!r:.60}."
        )
    return float(tol), int(max_iter)


def check_window(window: Any) -> tuple[float, float]:
    """A time window ``(a, b)`` with ``0 <= a < b`` finite."""
    a, b = _pair(window)
    if not (math.isfinite(b) and b > a >= 0):
        raise ValueError(
            f"The 'window' parameter must be (a, b) with 0 <= a < b. Got {window!r:.60}."
        )
    return a, b


def check_seed(seed: Any) -> Any:
    """A bootstrap seed: ``None``, a non-negative integer, a sequence of them, or a
    ``numpy.random.SeedSequence``."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    items = seed if isinstance(seed, list | tuple) else [seed]
    if not items or not all(is_integer(x) and x >= 0 for x in items):
        raise ValueError(
            "The 'seed' parameter must be None, an integer >= 0, a list of them or a "
            f"numpy SeedSequence. Got {seed!r:.60}."
        )
    return seed


def check_axes(ax: Any) -> None:
    """``None`` (a new figure) or a matplotlib ``Axes`` to draw on."""
    if ax is None:
        return
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(
            "The 'ax' parameter must be None (a new figure) or a matplotlib Axes. "
            f"Got {type(ax).__name__} instead."
        )


def check_choice(value: Any, name: str, allowed: Sequence[Any], where: str = "") -> Any:
    """``value`` if it is one of ``allowed`` (a ``ValueError`` naming ``name`` of
    ``where`` otherwise: an unknown option is never read as the default)."""
    scalar = isinstance(value, str | int | float | np.generic) and np.ndim(value) == 0
    if isinstance(value, bool | np.bool_) or not scalar or value not in allowed:
        names = [repr(a) for a in allowed]
        shown = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 2 else names)
        raise ValueError(f"The {name!r} parameter{_of(where)} must be {shown}. Got {value!r:.60}.")
    return value


#: The allowed values of the options ``transport()`` and a plan's ``[analysis]`` share.
OPTION_CHOICES: dict[str, tuple[Any, ...]] = {
    "ties": ("efron", "breslow"),
    "outcome_model": ("cox", "pwexp"),
    "moments": (1, 2),
    "censoring": ("km", "cox"),
}


def check_interval_kind(kind: Any) -> str:
    """A bootstrap interval's kind: ``"percentile"`` or ``"normal"`` (never read as the
    default when misspelt)."""
    return str(check_choice(kind, "interval_kind", ("percentile", "normal")))


def check_margins(
    margin: float | Mapping[str, float] | None, estimands: Sequence[str]
) -> np.ndarray:
    """Equivalence margins, one per estimand row (``nan``: none): a number applies to
    S(t); a dict gives them by estimand (``"survival"``, ``"median"``, ``"rmst"``)."""
    if margin is None:
        return np.full(len(estimands), np.nan)
    if isinstance(margin, Mapping):
        unknown = set(margin) - set(ESTIMANDS)
        if unknown:
            raise ValueError(
                f"margin keys must be 'survival', 'median' or 'rmst'; got {sorted(unknown)}"
            )
        for key, v in margin.items():
            if not is_positive_number(v):
                raise ValueError(
                    f"The margin for {key!r} must be a positive finite number. Got {v!r:.60}."
                )
            if key == "survival" and float(v) >= 1:
                raise ValueError(
                    f"The margin for 'survival' must be below 1 (survival is a "
                    f"probability). Got {v!r:.60}."
                )
        return np.array([float(margin.get(e, np.nan)) for e in estimands])
    if not is_positive_number(margin):
        raise ValueError(
            f"The 'margin' must be a positive finite number or a dict. Got {margin!r:.60}."
        )
    if float(margin) >= 1:
        raise ValueError(
            f"The 'margin' for a difference of S(t) must be below 1 (survival is a "
            f"probability). Got {margin!r:.60}; give margins of the median or RMST by name, "
            "e.g. margin={'rmst': 30}."
        )
    return np.array([float(margin) if e == "survival" else np.nan for e in estimands])


def scaled_times(values: np.ndarray, factor: float, where: str, unit: str, to: str) -> np.ndarray:
    """``values`` (times in ``unit``) times ``factor`` (into ``to``), refused when one is
    too large to express there: 1e308 years is no number of days (``DataError``)."""
    with np.errstate(over="ignore"):
        out = values * factor
    if not np.all(np.isfinite(out)):
        raise DataError(
            f"{where} has {int(np.sum(~np.isfinite(out)))} time(s) too large to express in "
            f"{to} (rule: finite times; largest {float(values.max()):g} {unit})"
        )
    return out


def _all_numbers(arr: np.ndarray) -> bool:
    return all(isinstance(x, int | float | np.number) and not isinstance(x, bool) for x in arr.flat)


#: Widest ratio of the largest to the smallest positive weight: the influence variance
#: raises ratios of weights to the fourth power, which past ~1e77 is no float.
WEIGHT_SPAN = 1e60


def validate_weights(weights: Any, n: int, weight_type: str = "sampling") -> np.ndarray:
    """One finite non-negative float64 weight per row, not all zero; else ``DataError``."""
    raw = getattr(weights, "values", weights)
    arr = np.asarray(raw)
    if arr.dtype.kind in "USO" and not (arr.dtype.kind == "O" and _all_numbers(arr)):
        raise DataError(
            f"weights are {arr.dtype.name} values, not numbers, in {arr.size} rows (rule: "
            "numeric weights; convert them, e.g. pl.col(w).cast(pl.Float64), knowingly)"
        )
    if arr.dtype.kind in "mMc":
        raise DataError(
            f"weights are {arr.dtype.name} values in {arr.size} rows (rule: real numbers; "
            "dates, durations and complex numbers are no weights)"
        )
    if arr.dtype == np.bool_:
        raise DataError(
            f"weights are boolean in {arr.size} rows (rule: numeric weights; to select rows, "
            "pass mask.astype(float) knowingly or build a Cohort of the selected rows)"
        )
    if arr.ndim != 1:
        raise DataError(
            f"weights have shape {arr.shape} (rule: one-dimensional, one weight per row)"
        )
    try:
        w = np.asarray(arr, dtype=np.float64)  # no copy when already float64
    except OverflowError:
        raise DataError(
            f"weights hold an integer past the floats' range ({arr.size} rows) (rule: a "
            "finite total weight; rescale them)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise DataError(f"weights must be numeric; could not convert: {exc}") from None
    if w.size != n:
        raise DataError(
            f"weights have {w.size} values but the cohort has {n} rows "
            "(rule: one weight per row, in cohort row order)"
        )
    bad = np.isnan(w)
    if bad.any():
        raise DataError(f"weights have {int(bad.sum())} of {n} values missing (rule: no NaN)")
    bad = np.isinf(w)
    if bad.any():
        raise DataError(f"weights have {int(bad.sum())} of {n} values infinite (rule: finite)")
    bad = w < 0
    if bad.any():
        raise DataError(
            f"weights have {int(bad.sum())} of {n} values negative (rule: weights >= 0; "
            f"smallest {float(w.min())!r})"
        )
    if not np.any(w > 0):
        raise DataError(f"weights are all zero in {n} rows (rule: some weight > 0)")
    with np.errstate(over="ignore"):
        total = float(np.sum(w))
    if not math.isfinite(total):
        raise DataError(
            f"weights sum past the largest number a float holds ({n} rows, largest "
            f"{float(w.max())!r}) (rule: a finite total weight; rescale them, the curve of "
            "sampling weights does not depend on their scale)"
        )
    positive = w[w > 0]
    if float(positive.max()) > WEIGHT_SPAN * float(positive.min()):
        raise DataError(
            f"weights span more than {WEIGHT_SPAN:g} from the smallest positive "
            f"({float(positive.min())!r}) to the largest ({float(positive.max())!r}) "
            f"in {n} rows (rule: positive weights within a factor {WEIGHT_SPAN:g}, past which "
            "the variance's squared ratios are no number; give rows with no weight 0)"
        )
    if weight_type == "frequency":
        frac = w != np.round(w)
        if frac.any():
            raise DataError(
                f"frequency weights have {int(frac.sum())} of {n} values that are not "
                "whole numbers (rule: frequency weights count identical rows; use "
                "weight_type='sampling' for other weights)"
            )
    return w


def is_finite_number(v: Any) -> bool:
    """A real number (Python or numpy, not a bool) that is a finite float: not ``nan``,
    not infinite, not an integer past the floats' range (``10**400``)."""
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
        return False
    return math.isfinite(real(v))


def check_flag(value: Any, name: str, where: str = "") -> bool:
    """A switch: ``True`` or ``False`` (a numpy bool too), never a truthy stand-in such as
    ``"no"``, ``1`` or ``None``."""
    if not isinstance(value, bool | np.bool_):
        raise DataError(
            f"The {name!r} parameter{_of(where)} must be True or False. Got {value!r:.40}."
        )
    return bool(value)
