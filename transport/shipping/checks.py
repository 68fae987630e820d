"""What the target checks of a shipped model's numbers before applying it (rule
``model_bounds``; :mod:`transport.policy.shipped` gives the rule's reasons): a model
comes from another environment and can be edited by anyone who recomputes its
manifest's hashes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from transport._validate import OPTION_CHOICES

__all__ = [
    "covariance_problem",
    "field_problems",
    "log_hazard_spread",
    "number_problems",
    "shape_problems",
]


def covariance_problem(cov: np.ndarray, what: str) -> str | None:
    """Why ``cov`` is not a covariance matrix (finite, symmetric, positive
    semidefinite up to rounding), or ``None``."""
    if cov.size == 0:
        return None
    if not np.all(np.isfinite(cov)):
        return f"{what} has non-finite entries"
    scale = float(np.max(np.abs(cov))) or 1.0
    if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-12 * scale):
        return f"{what} is not symmetric"
    if float(np.min(np.linalg.eigvalsh((cov + cov.T) / 2.0))) < -1e-8 * scale:
        return f"{what} is not positive semidefinite"
    return None


def number_problems(m: Any) -> list[str]:
    """The fields of shipped model ``m`` (shapes already checked) whose numbers no
    fitted model has: non-finite coefficients, centres, grid or shifts; a covariance
    that is not one; a Cox baseline cumulative hazard that is negative, non-finite or
    decreasing; cut points that are not increasing positive times."""
    out: list[str] = []
    for name, value in (("coef", m.coef), ("grid", m.grid), ("center", m.center)):
        if value is not None and not np.all(np.isfinite(value)):
            out.append(f"{name} has non-finite values")
    cov = covariance_problem(m.cov, "cov")
    if cov:
        out.append(cov)
    if m.kind == "cox" and m.hazard is not None:
        h = m.hazard
        if not np.all(np.isfinite(h)) or np.any(h < 0) or np.any(np.diff(h) < 0):
            out.append("the baseline hazard is not finite, non-negative and non-decreasing")
    if m.kind == "pwexp" and m.breaks is not None and m.shift is not None:
        if not np.all(np.isfinite(m.shift)):
            out.append("shift has non-finite values")
        b = m.breaks
        if not np.all(np.isfinite(b)) or np.any(b <= 0) or np.any(np.diff(b) <= 0):
            out.append("breaks are not increasing positive times")
    if m.boot_summary is not None:
        s = m.boot_summary
        width = m.coef.size + (m.grid.size if m.kind == "cox" else 0)
        if s.cov.shape != (width, width) or s.lower.shape != (width,) or s.upper.shape != (width,):
            out.append(f"the bootstrap summary does not have {width} parameters")
        else:
            problem = covariance_problem(s.cov, "the bootstrap covariance")
            if problem:
                out.append(problem)
        if not 0 <= s.failed <= s.n_boot or s.n_boot - s.failed < 2:
            out.append("the bootstrap summary's counts are not those of 2 or more refits")
    return out


def field_problems(m: Any) -> list[str]:
    """The descriptive fields of shipped model ``m`` no fit writes: ties other than
    Efron's or Breslow's, a grid step that is not a positive number or does not divide
    the grid, counts that are not those of patients and events, coefficient names that
    are not the design's columns (a coefficient table would be mislabelled)."""
    out: list[str] = []
    ties = OPTION_CHOICES["ties"]
    if m.kind == "cox" and m.ties not in ties:
        out.append(f"ties is {m.ties!r}, not one of {list(ties)}")
    step = m.grid_step
    if not (math.isfinite(step) and step > 0):
        out.append(f"grid_step is {step!r}, not a positive number")
    elif m.grid.size and np.all(np.isfinite(m.grid)):
        k = m.grid / step
        if np.any(np.abs(k - np.round(k)) > 1e-6 * np.maximum(k, 1.0)):
            out.append(f"grid is not on multiples of grid_step {step:g}")
    if not (math.isfinite(m.n) and m.n >= 1):
        out.append(f"n is {m.n!r}, not a count of patients")
    elif not (math.isfinite(m.n_events) and 0 <= m.n_events <= m.n):
        out.append(f"n_events is {m.n_events!r}, not between 0 and n = {m.n:g}")
    for key, v in m.grid_counts.items():
        if not np.all(np.isfinite(v) & (v >= 0)):
            out.append(f"grid_counts[{key!r}] are not non-negative counts")
    columns = tuple(m.design.columns)
    if m.kind == "cox":
        expected: tuple[str, ...] = columns
    else:
        expected = columns + (tuple(f"log(t):{c}" for c in columns) if m.time_varying else ())
    got = tuple(m.names[len(m.names) - len(expected) :]) if expected else ()
    if len(m.names) >= len(expected) and got != expected:
        out.append("names are not the design's columns " + ", ".join(expected[:5]))
    return out


def shape_problems(m: Any) -> list[str]:
    """The fields of shipped model ``m`` whose shapes disagree."""
    p, P, K = len(m.design.columns), m.coef.size, m.grid.size
    problems = []
    if len(m.names) != P or m.cov.shape != (P, P):
        problems.append(f"{P} coefficients, {len(m.names)} names, covariance {m.cov.shape}")
    if K == 0 or np.any(np.diff(m.grid) <= 0) or m.grid[0] <= 0:
        problems.append("grid is not increasing positive times")
    if m.column_scale is not None and m.column_scale.shape != (p,):
        problems.append(f"column_scale has {m.column_scale.size} values for {p} columns")
    for key, v in m.grid_counts.items():
        if v.shape != (K,):
            problems.append(f"grid_counts[{key!r}] has {v.size} values for {K} grid times")
    if m.kind == "cox":
        if m.hazard is None or m.hazard.shape != (K,):
            problems.append("a Cox model needs one baseline hazard per grid time")
        if m.center is None or m.center.shape != (p,) or p != P:
            problems.append(f"a Cox model needs {p} coefficients and centres")
    elif m.breaks is None or m.shift is None:
        problems.append("a piecewise exponential model needs breaks and shifts")
    else:
        n_int = m.breaks.size + 1
        if m.shift.shape != (n_int,) or n_int + p * (2 if m.time_varying else 1) != P:
            problems.append(f"{n_int} intervals, {p} columns, {P} coefficients disagree")
    if m.boot_coef is not None:
        B = m.boot_coef.shape[0]
        width = K if m.kind == "cox" else (m.shift.size if m.shift is not None else 0)
        if m.boot_coef.shape != (B, P) or m.boot_extra is None or m.boot_extra.shape != (B, width):
            problems.append("bootstrap replicates do not match the model's shape")
    return problems


def log_hazard_spread(
    m: Any, X: np.ndarray, coef: np.ndarray, extra: np.ndarray | None = None
) -> float:
    """``max(lp) - min(lp)`` of shipped model ``m`` (coefficients ``coef``; shifts
    ``extra`` for a piecewise exponential replicate) over the rows of ``X``: Cox
    ``lp = x' beta``; piecewise exponential ``x' (beta + gamma s_k)`` in each interval
    ``k``, the widest spread of them."""
    if X.shape[0] == 0:
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is an infinite spread
        if m.kind == "cox":
            lp = X @ coef
            spread = np.max(lp) - np.min(lp)
        else:
            K, p = m.shift.size, X.shape[1]
            shift = m.shift if extra is None else extra
            gamma = coef[K + p :] if m.time_varying else np.zeros(p)
            lp = (X @ coef[K : K + p])[:, None] + np.outer(X @ gamma, shift)
            spread = np.max(np.max(lp, axis=0) - np.min(lp, axis=0))
    return float(spread) if np.isfinite(spread) else math.inf
