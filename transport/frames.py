"""A pandas data frame as a polars one, without pyarrow: each needed column converted
by its dtype (categoricals keep their level order, nullable types their missing values),
and a name two columns answer to refused rather than one of them picked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from transport.exceptions import DataError

__all__ = ["pandas_column", "pandas_frame"]


def pandas_frame(
    data: Any, needed: list[str], require: Callable[[Sequence[str], list[str]], None]
) -> pl.DataFrame:
    """The ``needed`` columns of the pandas frame ``data`` (``require`` refuses a missing
    one, naming it)."""
    names = [str(c) for c in data.columns]
    twice = sorted({c for c in needed if names.count(c) > 1})
    if twice:  # two columns answer to one name (also 1 and "1"): which one is meant?
        raise DataError(
            f"pandas frame has {len(names)} columns, of which several are "
            f"named {twice} (rule: distinct column names; rename them)"
        )
    by_name = {str(c): c for c in data.columns}
    require(list(by_name), needed)
    return pl.DataFrame([pandas_column(c, data[by_name[c]]) for c in needed])


def pandas_column(name: str, col: Any) -> pl.Series:
    """One pandas column as a polars Series, without pyarrow.

    Categoricals keep their declared level order (as an Enum); nullable extension types
    turn their missing values into nulls (NaN for floats); object and string columns
    become strings.
    """
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = [str(c) for c in dtype.categories]
        if len(set(cats)) < len(cats):
            same = sorted({c for c in cats if cats.count(c) > 1})
            raise DataError(
                f"column {name!r} is a pandas categorical whose categories print alike "
                f"({same}, e.g. 1 and '1'; {col.size} rows) (rule: categories distinct "
                "as text; rename them)"
            )
        codes = col.cat.codes.to_numpy()
        labels = np.asarray([*cats, None], dtype=object)[np.where(codes < 0, len(cats), codes)]
        return pl.Series(name, labels.tolist(), dtype=pl.String).cast(pl.Enum(cats))
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return pl.Series(name, col.to_numpy())
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        values = col.to_numpy(dtype=object, na_value=None)
        return pl.Series(name, values.tolist())
    if pd.api.types.is_float_dtype(dtype):
        return pl.Series(name, col.to_numpy(dtype=np.float64, na_value=np.nan))
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        values = col.to_numpy(dtype=object, na_value=None).tolist()
        kinds = {type(v) for v in values if v is not None and not (isinstance(v, float) and v != v)}
        if kinds <= {str}:
            return pl.Series(
                name, [None if v is None or v != v else v for v in values], dtype=pl.String
            )
        if kinds <= {int, float, bool}:
            return pl.Series(name, [None if v is None else v for v in values], strict=False)
        raise DataError(
            f"column {name!r} mixes value types {sorted(k.__name__ for k in kinds)} "
            f"in {len(values)} rows (rule: one type per column)"
        )
    return pl.Series(name, col.to_numpy())
