"""Inverse odds of participation weights (Westreich et al. 2017).

Stack the source (S = 1) and the target (S = 0), fit ``logit P(S = 1 | x) = a + x' b``,
and weight each source row by ``P(S = 0 | x) / P(S = 1 | x) = exp(-(a + x' b))``. The
weighted source then has the target's distribution of the modelled covariates (if the
model is right), up to a constant: the odds carry the ratio of the cohort sizes, which
every estimate that uses the weights ignores.

Reference: Westreich D, Edwards JK, Lesko CR, Stuart E, Cole SR (2017). Transportability
of trial results using inverse odds of sampling weights. Am J Epidemiol 186:1010-1014.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from scipy.special import expit

from transport._validate import check_share, check_unit_interval
from transport.cohort import Cohort
from transport.design import Design
from transport.exceptions import DataError, PositivityWarning
from transport.weighting._logistic import LogisticFit, fit_logistic, separating_columns
from transport.weighting._participation import distinct_rows
from transport.weighting.weights import Weights

__all__ = ["inverse_odds_weights"]

Normalize = Literal["mean", "target_n"] | None


def inverse_odds_weights(
    source: Cohort,
    target: Any,
    formula: str | None = None,
    *,
    normalize: Normalize = None,
    truncate: tuple[float, float] | None = None,
    trim: tuple[float, float] | None = None,
    overlap: tuple[float, float] = (0.01, 0.99),
    max_extreme_share: float = 0.01,
) -> Weights:
    """Inverse odds of participation weights that transport ``source`` to ``target``.

    Estimand of the weighted source: the target population's distribution of the modelled
    covariates. Weight of source row ``i``: ``w_i = P(target | x_i) / P(source | x_i)``
    from a logistic model of membership on the stacked cohorts (Newton–IRLS).

    Parameters
    ----------
    source, target
        Cohorts; the target needs its rows (for a summary-only target use
        :func:`entropy_balance`).
    formula
        Right-hand side of the participation model over the covariates (see
        :class:`~transport.design.Design`); default main effects.
    normalize
        ``None`` (default): the odds as defined (their mean is about n_target / n_source);
        ``"mean"``: weights averaging 1; ``"target_n"``: weights summing to the target
        size. Estimates do not depend on this choice.
    truncate
        ``(q_low, q_high)``: winsorise the weights at these quantiles of the source's
        weights (e.g. ``(0.01, 0.99)``). Reduces variance at the price of some bias;
        ``details["truncation"]`` reports the bounds, the rows changed and the share of
        the total weight they carried.
    trim
        ``(low, high)``: source rows whose balanced participation score lies outside
        get weight 0. The target rows outside the same range have no counterpart left in
        the weighted source, so the estimand becomes the target restricted to the
        overlap; ``details["trimming"]`` reports the rows of both cohorts and the share of
        the source weight removed.
    overlap, max_extreme_share
        Balanced participation scores (P(target | x) as if both cohorts had the same size)
        outside ``overlap`` are extreme; when more than ``max_extreme_share`` of the
        patients have one, :class:`PositivityWarning` is raised.

    Raises
    ------
    DataError
        Separation in the participation model (named covariates), a model that does not
        converge, or any design error (unseen level, missing covariate, zero variance).
    """
    if not isinstance(source, Cohort):
        raise TypeError(
            "The 'source' parameter of inverse_odds_weights must be a Cohort. "
            f"Got {type(source).__name__} instead."
        )
    if not isinstance(target, Cohort):
        raise TypeError(
            "The 'target' parameter of inverse_odds_weights must be a Cohort: inverse odds "
            "weights need the target's rows. For a target known only through aggregates "
            f"(a TargetSummary) use entropy_balance. Got {type(target).__name__} instead."
        )
    if normalize not in (None, "mean", "target_n"):
        raise ValueError(
            "The 'normalize' parameter must be None, 'mean' or 'target_n'. "
            f"Got {normalize!r} instead."
        )
    overlap = check_unit_interval(overlap, "overlap", "inverse_odds_weights")
    if trim is not None:
        check_unit_interval(trim, "trim", "inverse_odds_weights")
    if truncate is not None:
        check_unit_interval(truncate, "truncate", "inverse_odds_weights")
    check_share(max_extreme_share, "max_extreme_share", "inverse_odds_weights")
    design = Design(source, formula)
    Xs, Xt = design.source_matrix, design.matrix(target)
    fit = _participation_model(design, Xs, Xt, source.name, target.name)
    ns, nt = Xs.shape[0], Xt.shape[0]
    eta_s, eta_t = fit.eta[:ns], fit.eta[ns:]
    w = np.exp(-eta_s)
    shift = np.log(ns / nt)
    scores_s, scores_t = expit(-eta_s + shift), expit(-eta_t + shift)
    details: dict[str, Any] = {}
    if trim is not None:
        w, details["trimming"] = _trimmed(w, scores_s, scores_t, trim)
    if truncate is not None:
        w, details["truncation"] = _truncated(w, truncate)
    if normalize == "mean":
        w = w / w.mean()
    elif normalize == "target_n":
        w = w * (nt / w.sum())
    extreme = _extreme_share(
        scores_s, scores_t, overlap, max_extreme_share, source.name, target.name
    )
    names = ("(intercept)", *design.columns)
    return Weights(
        values=_readonly(w),
        method="iow",
        source=source.name,
        target=target.name,
        design=design,
        target_mean=Xt.mean(axis=0),
        target_sd=Xt.std(axis=0, ddof=1) if nt > 1 else np.zeros(Xt.shape[1]),
        target_n=nt,
        details={
            "coef": dict(zip(names, fit.coef.tolist(), strict=True)),
            "coef_se": dict(zip(names, np.sqrt(np.diag(fit.cov)).tolist(), strict=True)),
            "n_iter": fit.n_iter,
            "normalize": normalize,
            "scores_source": scores_s,
            "scores_target": scores_t,
            "extreme_share": extreme,
            **details,
        },
    )


def _participation_model(
    design: Design, Xs: np.ndarray, Xt: np.ndarray, source: str, target: str
) -> LogisticFit:
    """Logistic model of membership (1 = source) on the stacked cohorts, with an intercept.

    A fit that does not converge, or whose linear predictor runs off (|eta| > 30), is
    diagnosed: covariates that separate the cohorts are named; a fit that merely did not
    converge is an error of its own.
    """
    ns, nt = Xs.shape[0], Xt.shape[0]
    X = np.column_stack((np.ones(ns + nt), np.vstack((Xs, Xt))))
    y = np.concatenate((np.ones(ns), np.zeros(nt)))
    fit = _grouped_fit(X, ns)
    if not fit.converged or np.max(np.abs(fit.eta)) > 30:
        cols = separating_columns(X, y)
        named = design.covariates_of([c - 1 for c in cols if c > 0])
        if cols.size:
            raise DataError(
                f"separation in the participation model of {source!r} vs "
                f"{target!r}: covariates {named} (design columns "
                f"{[design.columns[c - 1] for c in cols if c > 0]}) separate the cohorts, so "
                "some patients have no counterpart in the other cohort (rule: overlapping "
                "cohorts; coarsen or drop these covariates, or restrict the cohorts)"
            )
        if not fit.converged:
            raise DataError(
                f"the participation model of {source!r} vs {target!r} did not "
                f"converge in {fit.n_iter} Newton steps (rule: a finite maximum-likelihood "
                "estimate)"
            )
    return fit


def _grouped_fit(X: np.ndarray, ns: int) -> LogisticFit:
    """The logistic fit of membership (the first ``ns`` rows of ``X`` the source) on the
    distinct rows of ``X``, with their counts of source and of all rows as binomial data:
    the same likelihood, its Newton steps on far fewer rows when covariates are
    categorical or rounded (10^6 + 10^6 patients, a few thousand patterns). The linear
    predictor is given back per row."""
    Xu, group = distinct_rows(X)
    if 2 * Xu.shape[0] > X.shape[0]:  # mostly distinct: nothing to gain
        return fit_logistic(X, np.concatenate((np.ones(ns), np.zeros(X.shape[0] - ns))))
    total = np.bincount(group, minlength=Xu.shape[0]).astype(np.float64)
    ones = np.bincount(group[:ns], minlength=Xu.shape[0]).astype(np.float64)
    fit = fit_logistic(Xu, ones / total, total)
    return replace(fit, eta=fit.eta[group])


def _trimmed(
    w: np.ndarray, scores_s: np.ndarray, scores_t: np.ndarray, trim: tuple[float, float]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Weight 0 for source rows whose balanced score is outside ``trim``, and the report."""
    lo_t, hi_t = map(float, trim)  # checked on entry
    out_s = (scores_s < lo_t) | (scores_s > hi_t)
    out_t = (scores_t < lo_t) | (scores_t > hi_t)
    report = {
        "range": (lo_t, hi_t),
        "source_rows": int(out_s.sum()),
        "target_rows": int(out_t.sum()),
        "source_weight_share": float(w[out_s].sum() / w.sum()),
    }
    if out_s.all():
        raise DataError(
            f"trimming at {trim} removes all {w.size} source rows (rule: some source rows "
            "keep a positive weight)"
        )
    return np.where(out_s, 0.0, w), report


def _truncated(w: np.ndarray, truncate: tuple[float, float]) -> tuple[np.ndarray, dict[str, Any]]:
    """Positive weights winsorised at quantiles ``truncate`` of themselves, and the report."""
    q_lo, q_hi = map(float, truncate)  # checked on entry
    kept = w > 0
    a, b = np.quantile(w[kept], [q_lo, q_hi])
    changed = kept & ((w < a) | (w > b))
    report = {
        "quantiles": (q_lo, q_hi),
        "bounds": (float(a), float(b)),
        "rows": int(changed.sum()),
        "weight_share": float(w[changed].sum() / w.sum()),
    }
    return np.where(kept, np.clip(w, a, b), 0.0), report


def _extreme_share(
    scores_s: np.ndarray,
    scores_t: np.ndarray,
    overlap: tuple[float, float],
    max_extreme_share: float,
    source: str,
    target: str,
) -> float:
    """Share of patients with a balanced score outside ``overlap``; warns above the limit."""
    lo, hi = overlap
    ns, nt = scores_s.size, scores_t.size
    extreme_s = float(np.mean((scores_s < lo) | (scores_s > hi)))
    extreme_t = float(np.mean((scores_t < lo) | (scores_t > hi)))
    extreme = (extreme_s * ns + extreme_t * nt) / (ns + nt)
    if extreme > max_extreme_share:
        warnings.warn(
            f"poor overlap between {source!r} and {target!r}: "
            f"{100 * extreme:.1f}% of patients ({100 * extreme_s:.1f}% of the source, "
            f"{100 * extreme_t:.1f}% of the target) have balanced participation scores "
            f"outside [{lo:g}, {hi:g}]. Weights will be extreme; inspect Weights.scores() and "
            "summary(), and consider a coarser model, truncation or a restricted target.",
            PositivityWarning,
            stacklevel=3,  # the caller of inverse_odds_weights
        )
    return extreme


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a
