"""Performance measures of a simulation study, each with its Monte Carlo standard error.

:func:`performance` turns a tidy table of replicate results (one row per scenario x
method x estimand x time x replicate) into one row per group with the measures of
Morris, White & Crowther (2019), "Using simulation studies to evaluate statistical
methods", Statistics in Medicine 38:2074-2102, Table 6, and their Monte Carlo SEs.
The function is pure: it reads nothing but its argument and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from transport.exceptions import DataError

__all__ = ["MEASURES", "performance"]

#: The value columns every replicate row carries besides the grouping columns.
VALUE_COLUMNS = ("rep", "estimate", "se", "ci_lower", "ci_upper", "truth")

#: Count columns of the output, after the grouping columns.
COUNTS = ("n_reps", "n_failed", "n_model_se", "n_ci")

#: Measure columns of the output, in order; every measure is followed by its MCSE.
MEASURES = (
    "bias",
    "relative_bias",
    "empirical_se",
    "model_se",
    "relative_error_model_se",
    "coverage",
    "be_coverage",
    "mse",
    "rmse",
)


def performance(
    replicates: pl.DataFrame,
    *,
    level: float = 0.95,
    by: Sequence[str] = ("scenario", "method", "estimand", "time"),
) -> pl.DataFrame:
    r"""Bias, precision, model-SE accuracy, coverage and RMSE per group, with Monte Carlo SEs.

    Parameters
    ----------
    replicates
        One row per replicate and group: the columns of ``by`` (by default ``scenario``,
        ``method``, ``estimand`` (``"survival"``, ``"median"``, ``"rmst"``) and ``time``
        (t for S(t), tau for RMST, null for the median)) and ``rep`` (integer, unique
        within a group), ``estimate``, ``se`` (model SE of the estimate, may be null),
        ``ci_lower``, ``ci_upper`` (may be null) and ``truth`` (the true value, finite and
        the same in every row of a group).
    level
        Nominal level of the intervals in ``ci_lower``/``ci_upper``, between 0 and 1. It
        is recorded in the output column ``level`` so coverage can be read against it;
        intervals are taken as given, never rebuilt from ``se``.
    by
        Grouping columns; one output row per distinct combination (nulls form their own
        group), sorted by them.

    Returns
    -------
    polars.DataFrame
        The ``by`` columns, then ``n_reps``, ``n_failed``, ``n_model_se``, ``n_ci``, then
        for each measure ``m`` of ``bias``, ``relative_bias``, ``empirical_se``,
        ``model_se``, ``relative_error_model_se``, ``coverage``, ``be_coverage``, ``mse``,
        ``rmse`` the pair ``m``, ``m_mcse``, and last ``level``.

    Which replicates count
    ----------------------
    * ``n_reps``: replicates with a finite ``estimate``. Every measure uses these only.
    * ``n_failed``: replicates whose ``estimate`` is null, NaN or infinite (a failed fit,
      a median that was not reached); they enter no measure. ``n_reps + n_failed`` is the
      group's number of rows.
    * ``n_model_se``: of the ``n_reps``, those with a finite ``se`` (a null, NaN or
      infinite SE means "no model SE"); the model-SE measures use these.
    * ``n_ci``: of the ``n_reps``, those with an interval: ``ci_lower`` and ``ci_upper``
      both non-null and not NaN. An infinite bound is an unbounded interval (pass an
      upper limit that was not reached as ``+inf`` for it to count); the coverage
      measures use these.

    Formulas
    --------
    With :math:`\hat\theta_i` the ``n = n_reps`` finite estimates, :math:`\theta` the truth,
    :math:`\bar\theta = n^{-1}\sum_i \hat\theta_i`, :math:`V_i = \mathrm{se}_i^2` for the
    ``m = n_model_se`` replicates with an SE and :math:`I_i = [l_i, u_i]` for the
    ``k = n_ci`` replicates with an interval (Morris et al. 2019, Table 6, unless said):

    * ``bias`` :math:`= \bar\theta - \theta`; MCSE :math:`\sqrt{\sum_i(\hat\theta_i -
      \bar\theta)^2 / (n(n-1))}` (= EmpSE / sqrt(n)).
    * ``relative_bias`` :math:`= (\bar\theta - \theta)/\theta`; MCSE = bias MCSE /
      :math:`|\theta|` (Morris et al. Section 5.2; rsimsum's ``rbias``). Null if
      :math:`\theta = 0`.
    * ``empirical_se`` :math:`= \sqrt{\sum_i(\hat\theta_i - \bar\theta)^2/(n-1)}`; MCSE
      :math:`= \mathrm{EmpSE}/\sqrt{2(n-1)}`.
    * ``model_se`` :math:`= \sqrt{m^{-1}\sum_i V_i}` (root mean of the variances, as the
      paper recommends over the mean SE); MCSE :math:`= \sqrt{\widehat{\mathrm{Var}}(V) /
      (4 m\, \mathrm{ModSE}^2)}` with :math:`\widehat{\mathrm{Var}}(V) = \sum_i(V_i -
      \bar V)^2/(m-1)`.
    * ``relative_error_model_se`` :math:`= \mathrm{ModSE}/\mathrm{EmpSE} - 1` (a fraction,
      the paper's percentage / 100); MCSE :math:`= (\mathrm{ModSE}/\mathrm{EmpSE})
      \sqrt{\widehat{\mathrm{Var}}(V)/(4 m\,\mathrm{ModSE}^4) + 1/(2(n-1))}`. The paper
      has one ``n``; with some SEs missing its two terms (the variance of ModSE and of
      EmpSE) use ``m`` and ``n`` respectively. Null if EmpSE is 0.
    * ``coverage`` :math:`= k^{-1}\sum_i 1\{l_i \le \theta \le u_i\}`; MCSE
      :math:`= \sqrt{C(1-C)/k}`.
    * ``be_coverage`` (bias-eliminated) :math:`= k^{-1}\sum_i 1\{l_i \le \bar\theta \le
      u_i\}`; MCSE :math:`= \sqrt{C(1-C)/k}`.
    * ``mse`` :math:`= n^{-1}\sum_i(\hat\theta_i - \theta)^2`; MCSE
      :math:`= \sqrt{\sum_i[(\hat\theta_i - \theta)^2 - \mathrm{MSE}]^2/(n(n-1))}`.
    * ``rmse`` :math:`= \sqrt{\mathrm{MSE}}`; MCSE by the delta method,
      MSE MCSE / (2 RMSE) (not in the paper's table).

    Undefined measures are null: every measure when ``n_reps`` is 0; the model-SE
    measures when ``n_model_se`` is 0; the coverages when ``n_ci`` is 0; EmpSE and the
    relative error when ``n_reps < 2``; every MCSE that rests on fewer than 2 replicates
    (``n_reps``, ``n_model_se`` or ``n_ci`` as above, both ``n_reps`` and ``n_model_se``
    for the relative error). A delta-method MCSE whose numerator variance is 0 (every
    replicate alike, so the measure has no Monte Carlo error) is 0, not 0/0: the model-SE
    MCSE when all ``V_i`` are equal (including all 0), the RMSE MCSE when MSE is 0.

    Within a group the replicates are taken in ``rep`` order, so the result does not
    depend on the order of the rows, bit for bit.

    Raises
    ------
    DataError
        A column is missing or has the wrong type (naming it), ``rep`` is null or repeated
        within a group, ``truth`` is missing, not finite or differs within a group, an
        ``se`` is negative, an interval has ``ci_lower > ci_upper``, or ``level`` is not
        strictly between 0 and 1.
    """
    if not isinstance(replicates, pl.DataFrame):
        raise TypeError(f"replicates must be a polars DataFrame; got {type(replicates).__name__}")
    keys = _check_by(by)
    _check_level(level)
    frame = _validated(replicates, keys)

    measures = [name for m in MEASURES for name in (m, f"{m}_mcse")]
    if frame.height == 0:
        schema: dict[str, pl.DataType] = {k: replicates.schema[k] for k in keys}
        schema.update({c: pl.Int64() for c in COUNTS})
        schema.update({c: pl.Float64() for c in [*measures, "level"]})
        return pl.DataFrame(schema=schema)

    frame = frame.sort([*keys, "rep"])
    groups = frame.partition_by(keys, maintain_order=True) if keys else [frame]
    key_rows: list[pl.DataFrame] = []
    rows: list[dict[str, float | int | None]] = []
    for group in groups:
        key_rows.append(group.select(keys).head(1))
        rows.append(
            _group_measures(
                *(group[c].to_numpy() for c in ("estimate", "se", "ci_lower", "ci_upper")),
                truth=float(group["truth"][0]),
            )
        )
    values = pl.DataFrame(
        {
            **{c: pl.Series(c, [r[c] for r in rows], dtype=pl.Int64) for c in COUNTS},
            **{c: pl.Series(c, [r[c] for r in rows], dtype=pl.Float64) for c in measures},
            "level": pl.Series("level", [float(level)] * len(rows), dtype=pl.Float64),
        }
    )
    if not keys:
        return values
    return pl.concat(key_rows, how="vertical").hstack(values)


def _check_by(by: Sequence[str]) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by)
    if not all(isinstance(k, str) for k in keys):
        raise DataError(f"by must name columns (strings); got {keys!r}")
    if len(set(keys)) != len(keys):
        raise DataError(f"by names a column more than once: {keys!r}")
    clash = [k for k in keys if k in VALUE_COLUMNS]
    if clash:
        raise DataError(
            f"by cannot group on the value column(s) {clash} (rule: group on the study's "
            f"design columns, not on {list(VALUE_COLUMNS)})"
        )
    return keys


def _check_level(level: float) -> None:
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise DataError(f"level must be a number strictly between 0 and 1; got {level!r}")


def _validated(replicates: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """The columns the measures need, checked, with the value columns as Float64."""
    n = replicates.height
    missing = [c for c in [*keys, *VALUE_COLUMNS] if c not in replicates.columns]
    if missing:
        raise DataError(
            f"replicates lacks column(s) {missing} (rule: one row per replicate with the "
            f"grouping columns {keys} and {list(VALUE_COLUMNS)}; got columns "
            f"{replicates.columns})"
        )
    rep_dtype = replicates.schema["rep"]
    if not rep_dtype.is_integer():
        raise DataError(
            f"column 'rep' must be integer (rule: replicate number); got dtype {rep_dtype} "
            f"for {n} rows"
        )
    for c in VALUE_COLUMNS[1:]:
        dtype = replicates.schema[c]
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise DataError(
                f"column {c!r} must be numeric (rule: numeric type, nulls allowed where "
                f"documented); got dtype {dtype} for {n} rows"
            )
    frame = replicates.select(
        *keys, "rep", *(pl.col(c).cast(pl.Float64) for c in VALUE_COLUMNS[1:])
    )
    if n == 0:
        return frame

    n_null_rep = frame["rep"].null_count()
    if n_null_rep:
        raise DataError(f"column 'rep' has {n_null_rep} of {n} rows missing (rule: no nulls)")
    dup = frame.select(pl.struct([*keys, "rep"]).is_duplicated().sum()).item()
    if dup:
        raise DataError(
            f"column 'rep' repeats within a group in {dup} of {n} rows (rule: one row per "
            f"replicate in each group of {keys})"
        )

    truth = frame["truth"].to_numpy()
    bad_truth = int(np.sum(~np.isfinite(truth)))
    if bad_truth:
        raise DataError(
            f"column 'truth' is missing or not finite in {bad_truth} of {n} rows "
            "(rule: the true value is finite in every row)"
        )
    if keys:
        spread = (
            frame.group_by(keys)
            .agg(pl.col("truth").n_unique().alias("k"), pl.len().alias("rows"))
            .filter(pl.col("k") > 1)
        )
        if spread.height:
            first = spread.row(0, named=True)
            where = ", ".join(f"{k}={first[k]!r}" for k in keys)
            raise DataError(
                f"column 'truth' takes {first['k']} different values in the group {where} "
                f"({first['rows']} rows; {spread.height} group(s) so) (rule: one true "
                "value per group)"
            )
    elif frame["truth"].n_unique() > 1:
        raise DataError(
            f"column 'truth' takes {frame['truth'].n_unique()} different values in {n} rows "
            "(rule: one true value per group)"
        )

    se = frame["se"].to_numpy()
    negative = int(np.sum(se < 0))  # NaN (null) compares False
    if negative:
        raise DataError(f"column 'se' is negative in {negative} of {n} rows (rule: se >= 0)")
    lo, hi = frame["ci_lower"].to_numpy(), frame["ci_upper"].to_numpy()
    reversed_ = int(np.sum(lo > hi))  # NaN (null) compares False
    if reversed_:
        raise DataError(
            f"columns 'ci_lower' > 'ci_upper' in {reversed_} of {n} rows "
            "(rule: ci_lower <= ci_upper)"
        )
    return frame


def _mean(x: np.ndarray) -> float:
    """Mean, shifted by the first value: exact for a constant array, stable otherwise."""
    return float(x[0] + np.mean(x - x[0]))


def _group_measures(
    estimate: np.ndarray,
    se: np.ndarray,
    ci_lower: np.ndarray,
    ci_upper: np.ndarray,
    *,
    truth: float,
) -> dict[str, float | int | None]:
    """Counts and measures of one group (arrays in rep order, nulls as NaN)."""
    finite = np.isfinite(estimate)
    x = estimate[finite]
    n = int(x.size)
    out: dict[str, float | int | None] = {
        "n_reps": n,
        "n_failed": int(estimate.size - n),
        "n_model_se": 0,
        "n_ci": 0,
    }
    out |= {name: None for m in MEASURES for name in (m, f"{m}_mcse")}
    if n == 0:
        return out

    mean = _mean(x)
    dev2 = (x - mean) ** 2
    err2 = (x - truth) ** 2
    bias = mean - truth
    mse = _mean(err2)
    out["bias"] = bias
    out["mse"] = mse
    out["rmse"] = math.sqrt(mse)
    if truth != 0:
        out["relative_bias"] = bias / truth
    empse: float | None = None
    if n >= 2:
        ss = float(np.sum(dev2))
        empse = math.sqrt(ss / (n - 1))
        out["empirical_se"] = empse
        out["empirical_se_mcse"] = empse / math.sqrt(2 * (n - 1))
        bias_mcse = math.sqrt(ss / (n * (n - 1)))
        out["bias_mcse"] = bias_mcse
        if truth != 0:
            out["relative_bias_mcse"] = bias_mcse / abs(truth)
        mse_mcse = math.sqrt(float(np.sum((err2 - mse) ** 2)) / (n * (n - 1)))
        out["mse_mcse"] = mse_mcse
        out["rmse_mcse"] = mse_mcse / (2 * math.sqrt(mse)) if mse_mcse > 0 else 0.0

    # Model SE: replicates with a finite estimate and a finite SE.
    s = se[finite]
    v = s[np.isfinite(s)] ** 2
    m = int(v.size)
    out["n_model_se"] = m
    if m >= 1:
        model_se = math.sqrt(_mean(v))
        out["model_se"] = model_se
        var_v: float | None = None
        if m >= 2:
            var_v = float(np.sum((v - _mean(v)) ** 2)) / (m - 1)
            out["model_se_mcse"] = math.sqrt(var_v / (4 * m * model_se**2)) if var_v > 0 else 0.0
        if empse is not None and empse > 0:
            ratio = model_se / empse
            out["relative_error_model_se"] = ratio - 1
            if var_v is not None:
                # (ModSE/EmpSE) sqrt(Var(V)/(4 m ModSE^4) + 1/(2(n-1))), with the first
                # term written so that ModSE = 0 (then Var(V) = 0) is no 0/0.
                first = var_v / (4 * m * empse**2 * model_se**2) if var_v > 0 else 0.0
                out["relative_error_model_se_mcse"] = math.sqrt(first + ratio**2 / (2 * (n - 1)))

    # Coverage: replicates with a finite estimate and both interval bounds.
    lo, hi = ci_lower[finite], ci_upper[finite]
    has_ci = ~(np.isnan(lo) | np.isnan(hi))
    lo, hi = lo[has_ci], hi[has_ci]
    k = int(lo.size)
    out["n_ci"] = k
    if k >= 1:
        for name, target in (("coverage", truth), ("be_coverage", mean)):
            c = int(np.sum((lo <= target) & (target <= hi))) / k
            out[name] = c
            if k >= 2:
                out[f"{name}_mcse"] = math.sqrt(c * (1 - c) / k)
    return out
