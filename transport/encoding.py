"""The designs most analyses use, encoded without formulaic: every column a continuous
covariate as it is, or one level's treatment indicator (``sex[T.female]``) of a
categorical one. Formulaic's evaluation costs tens of milliseconds a matrix whatever the
rows, the larger part of a small cohort's analysis (a methods study calls thousands);
these columns are a copy and a comparison of codes.

A :class:`~transport.Design` uses this path only after checking, on the first matrix it
builds, that it gives formulaic's matrix exactly (:meth:`~transport.Design.matrix`);
any other design (interactions, transforms, splines, other codings) stays with
formulaic.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from formulaic import model_matrix
from formulaic.errors import FactorEvaluationError

from transport.exceptions import DataError

__all__ = [
    "PlainColumns",
    "evaluate",
    "level_counts",
    "level_index",
    "pandas_frame",
    "plain_columns",
    "plain_matrix",
]

#: Per design column, ``(covariate, None)`` for a continuous covariate as it is, or
#: ``(covariate, level)`` for that level's indicator.
PlainColumns = tuple[tuple[str, str | None], ...]

_INDICATOR = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\[T\.(.*)\]")


def plain_columns(
    columns: Sequence[str], types: Mapping[str, str], levels: Mapping[str, Sequence[str]]
) -> PlainColumns | None:
    """How to build each of ``columns`` (formulaic's names) without formulaic, or
    ``None`` when one of them is anything but a covariate or a treatment indicator.

    >>> plain_columns(["age", "sex[T.f]"], {"age": "continuous", "sex": "categorical"},
    ...               {"sex": ("m", "f")})
    (('age', None), ('sex', 'f'))
    >>> plain_columns(["age:sex[T.f]"], {"age": "continuous", "sex": "categorical"},
    ...               {"sex": ("m", "f")}) is None
    True
    """
    out: list[tuple[str, str | None]] = []
    for name in columns:
        if types.get(name) == "continuous":
            out.append((name, None))
            continue
        found = _INDICATOR.fullmatch(name)
        if not found or types.get(found.group(1)) != "categorical":
            return None
        v, level = found.group(1), found.group(2)
        if level not in levels.get(v, ()):
            return None
        out.append((v, level))
    return tuple(out)


def plain_matrix(
    frame: pl.DataFrame, plan: PlainColumns, levels: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """The design matrix of ``frame`` (covariate columns; every categorical value among
    its ``levels``, as the design has checked) by ``plan``: rows x columns, float64, in
    column-major order as formulaic's matrix comes (reductions over rows then round as
    they did)."""
    X = np.empty((frame.height, len(plan)), dtype=np.float64, order="F")
    codes: dict[str, np.ndarray] = {}
    for j, (v, level) in enumerate(plan):
        if level is None:
            X[:, j] = frame[v].to_numpy()
            continue
        if v not in codes:
            codes[v] = level_index(frame[v], levels[v])
        X[:, j] = codes[v] == [str(x) for x in levels[v]].index(level)
    return X


def level_index(values: pl.Series, levels: Sequence[str]) -> np.ndarray:
    """Each row's position in ``levels`` (-1 for a value not among them), read from an
    enum's codes without casting 10^6 rows to text (a cohort's categoricals are enums).

    >>> level_index(pl.Series(["b", "a", "c"], dtype=pl.Enum(["a", "b", "c"])), ["b", "a"])
    array([ 0,  1, -1])
    """
    names = [str(x) for x in levels]
    where = {name: k for k, name in reversed(list(enumerate(names)))}
    if isinstance(values.dtype, pl.Enum):
        cats = values.dtype.categories.to_list()
        lookup = np.array([where.get(str(c), -1) for c in cats] + [-1], dtype=np.int64)
        return lookup[values.to_physical().fill_null(len(cats)).to_numpy().astype(np.int64)]
    text = values.cast(pl.String).to_numpy()
    return np.array([where.get(str(x), -1) for x in text], dtype=np.int64)


def pandas_frame(
    frame: pl.DataFrame, names: Sequence[str], levels: Mapping[str, Sequence[str]]
) -> Any:
    """Covariates as a pandas frame for formulaic: floats, and categoricals with the
    given level order (the source's), built without pyarrow."""
    cols: dict[str, Any] = {}
    for name in names:
        s = frame[name]
        if name in levels:
            cols[name] = pd.Categorical(s.cast(pl.String).to_numpy(), categories=list(levels[name]))
        else:
            cols[name] = s.to_numpy().astype(np.float64)
    return pd.DataFrame(cols)


def level_counts(values: pl.Series, levels: Sequence[str]) -> dict[str, int]:
    """The rows of each of ``levels`` among ``values`` (0 for a level absent), in one
    pass over the rows.

    >>> level_counts(pl.Series(["a", "b", "a"]), ["a", "b", "c"])
    {'a': 2, 'b': 1, 'c': 0}
    """
    index = level_index(values, levels)
    counts = np.bincount(index[index >= 0], minlength=len(levels))
    return {str(u): int(k) for u, k in zip(levels, counts, strict=True)}


def evaluate(
    text: str,
    frame: pl.DataFrame,
    covariates: Sequence[str],
    levels: Mapping[str, Sequence[str]],
    name: str,
) -> Any:
    """Formulaic's model matrix of the formula ``text`` on the covariates ``frame`` of
    cohort ``name``; every error of formulaic's a ``DataError`` naming the formula."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return model_matrix(text, pandas_frame(frame, covariates, levels), na_action="raise")
    except (FactorEvaluationError, Warning) as exc:
        raise DataError(
            f"formula {text!r} cannot be evaluated on the covariates of cohort {name!r} "
            f"({exc}; rule: formulas are over the declared covariates {list(covariates)})"
        ) from None
    except Exception as exc:  # formula syntax and evaluation errors of every kind
        raise DataError(
            f"formula {text!r} is not a valid right-hand side ({type(exc).__name__}: "
            f"{exc}; rule: a formulaic right-hand side such as 'age + ecog + age:sex')"
        ) from None
