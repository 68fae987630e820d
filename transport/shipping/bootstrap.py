"""A shipped model's bootstrap as it travels: summaries of the source's refits (their
covariance, SEs and percentile limits), never the refits or their seed; and the
target's parametric draws from those summaries.

Why: the refits of replicate ``b`` are a function of the source's rows and the resample
counts of child ``b`` of the seed. Released together, the seed regenerates every
resample's counts, and regressing the refits on them gives each source row's influence
on the model (with the rows' covariates and the model, their exit times: an attack on
the landed code found the exit month of 87% of the event rows). So a released model
carries ``n_boot``, the number that failed, and the bootstrap covariance of its
parameters ``theta`` (Cox: coefficients, then the baseline ``H0`` at the released grid
times; piecewise exponential: the coefficients, each refit's first brought to the
released model's representative times, :func:`on_shift`), their SEs and their
percentile limits (:func:`summarise`).

The target runs one replicate of its own rows per refit the model states (``n_boot``):
a number read from another environment, so it is bounded where the model is read
(:data:`MAX_SHIPPED_BOOT`), never trusted to size the target's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from transport.exceptions import DataError

__all__ = [
    "MAX_SHIPPED_BOOT",
    "BootstrapSummary",
    "ParametricDraws",
    "check_shipped_boot",
    "on_shift",
    "summarise",
]

#: The most bootstrap refits a shipped model may state (and so the most replicates of its
#: rows the target runs for it): 10,000 is more than percentile limits need, and a few
#: minutes of the target's time; a file stating 10**9 would take it for days.
MAX_SHIPPED_BOOT = 10_000


def check_shipped_boot(n_boot: object, where: str) -> int:
    """``n_boot`` read from a shipped model: a whole number from 2 to
    :data:`MAX_SHIPPED_BOOT`, else a :class:`~transport.DataError` naming the field and
    the bound (rule ``bootstrap_summary``)."""
    value = n_boot if isinstance(n_boot, int | float) and not isinstance(n_boot, bool) else None
    if value is None or not (2 <= value <= MAX_SHIPPED_BOOT) or value != int(value):
        raise DataError(
            f"{where} states n_boot {n_boot!r}, not a whole number from 2 to "
            f"{MAX_SHIPPED_BOOT} (rule: bootstrap_summary; the target runs one replicate of "
            "its rows per refit, so a shipped model states at most MAX_SHIPPED_BOOT)"
        )
    return int(value)


@dataclass(frozen=True)
class BootstrapSummary:
    """The source's bootstrap refits summarised: ``n_boot`` drawn, ``failed`` of them
    without a finite fit, the covariance of ``theta`` over the others (coefficients,
    then the Cox baseline on the grid or the pwexp shifts) and its ``level`` percentile
    limits (``lower``, ``upper``)."""

    n_boot: int
    failed: int
    cov: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    level: float = 0.95

    @property
    def se(self) -> np.ndarray:
        """Bootstrap SEs of ``theta``."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    @classmethod
    def from_replicates(
        cls, coef: np.ndarray, extra: np.ndarray, level: float = 0.95
    ) -> BootstrapSummary | None:
        """The summary of refits (``n_boot`` x parameters; a failed one is a row of
        ``nan``); ``None`` when fewer than two succeeded."""
        theta = np.column_stack((coef, extra))
        ok = np.all(np.isfinite(theta), axis=1)
        r = theta[ok]
        if r.shape[0] < 2:
            return None
        alpha = 1.0 - level
        q = np.quantile(r, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        cov = np.atleast_2d(np.cov(r, rowvar=False))
        return cls(
            n_boot=int(theta.shape[0]),
            failed=int(np.sum(~ok)),
            cov=(cov + cov.T) / 2.0,
            lower=q[0],
            upper=q[1],
            level=float(level),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_boot": self.n_boot,
            "failed": self.failed,
            "level": self.level,
            "cov": self.cov.tolist(),
            "se": self.se.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BootstrapSummary:
        if "n_boot" in data:  # bounded before anything is sized by it
            check_shipped_boot(data["n_boot"], "shipped model's bootstrap summary")
        try:
            cov = np.asarray(data["cov"], dtype=np.float64)
            return cls(
                n_boot=int(data["n_boot"]),
                failed=int(data["failed"]),
                cov=cov if cov.ndim == 2 else cov.reshape(0, 0),
                lower=np.asarray(data["lower"], dtype=np.float64),
                upper=np.asarray(data["upper"], dtype=np.float64),
                level=float(data["level"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"shipped model's bootstrap summary lacks or mistypes {exc} (rule: n_boot, "
                "failed, level, cov, se, lower, upper)"
            ) from None


def on_shift(
    coef: np.ndarray, shifts: np.ndarray, shift: np.ndarray, p: int, time_varying: bool
) -> np.ndarray:
    """Piecewise exponential refits (``n_boot`` x coefficients, with their own shifts
    ``s_b``) written on the full-data shifts ``s``: interval ``k``'s log hazard ratio
    ``beta_b + gamma_b s_bk`` of each refit, as ``beta' + gamma' s_k`` by least squares
    over the intervals (exact when ``s_b`` is ``s`` moved by a constant, as it nearly
    is), so that a draw of the coefficients alone carries what the refits' shifts did
    (without it, normal draws around ``s`` came out 10-30% wider than the refits on 150
    to 300 source patients)."""
    if not time_varying:
        return coef
    K = shift.size
    back = np.linalg.pinv(np.column_stack((np.ones(K), shift)))  # 2 x K
    out = coef.copy()
    beta, gamma = coef[:, K : K + p], coef[:, K + p :]
    per_interval = beta[:, :, None] + gamma[:, :, None] * shifts[:, None, :]  # B x p x K
    fitted = per_interval @ back.T  # B x p x 2
    out[:, K : K + p], out[:, K + p :] = fitted[:, :, 0], fitted[:, :, 1]
    return out


def summarise(
    model: Any, grid_index: np.ndarray, moved: np.ndarray | None = None
) -> BootstrapSummary | None:
    """The releasable summary of a model's refits (``None`` without refits, or with
    fewer than two that succeeded): Cox, of the coefficients and the baseline at the
    grid times ``grid_index`` (those released), each refit's baseline moved by ``moved``
    (the released centre less the model's: ``H0_b exp(beta_b' moved)``, its own
    predictions unchanged); piecewise exponential, of the coefficients on the model's
    own shifts (:func:`on_shift`)."""
    if model.boot_coef is None or model.boot_extra is None:
        return None
    if model.kind == "cox":
        extra = model.boot_extra[:, grid_index]
        if moved is not None:
            with np.errstate(invalid="ignore"):  # a failed refit stays a row of nan
                extra = extra * np.exp(model.boot_coef @ moved)[:, None]
        return BootstrapSummary.from_replicates(model.boot_coef, extra)
    p = len(model.design.columns)
    coef = on_shift(model.boot_coef, model.boot_extra, model.shift, p, model.time_varying)
    return BootstrapSummary.from_replicates(coef, np.zeros((coef.shape[0], 0)))


class ParametricDraws:
    """The target's replicate ``b`` of a model shipped with a :class:`BootstrapSummary`
    (picklable): ``theta`` drawn from the multivariate normal with the shipped
    bootstrap covariance around the estimate, with the target's generator. Cox: the
    coefficients and ``log H0`` (where ``H0 > 0``; its covariance mapped from that of
    ``H0`` by the delta method, ``cov / (H0_j H0_k)``), the drawn baseline made
    non-decreasing by a running maximum; piecewise exponential: the coefficients, on
    the model's shifts."""

    def __init__(
        self, summary: BootstrapSummary, coef: np.ndarray, extra: np.ndarray, kind: str
    ) -> None:
        self.coef, self.extra, self.kind = coef, extra, kind
        self.p = coef.size
        scale = np.ones(summary.cov.shape[0])
        if kind == "cox":
            positive = extra > 0
            scale[self.p :] = np.where(positive, 1.0 / np.where(positive, extra, 1.0), 0.0)
        cov = scale[:, None] * summary.cov * scale[None, :]
        w, v = np.linalg.eigh((cov + cov.T) / 2.0)
        self.factor = v * np.sqrt(np.clip(w, 0.0, None))[None, :]

    def __call__(self, b: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        delta = self.factor @ rng.standard_normal(self.factor.shape[1])
        coef = self.coef + delta[: self.p]
        if self.kind == "cox":
            h0 = self.extra * np.exp(delta[self.p :])
            return coef, np.maximum.accumulate(h0)
        return coef, self.extra
