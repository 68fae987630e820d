"""Averages of model survival curves over many rows in bounded memory.

The g-formula and AIPW need ``sum_i w_i S(t | x_i)`` over a cohort's rows at every
event time of the source: a rows x times matrix of 10^6 x 1,600 is 12 GiB. Here the
rows are taken in blocks whose rows x times temporaries stay under :data:`BLOCK_BYTES`,
so memory grows as O(rows x columns + times) whatever the cohort's size, and every
element is computed by the same arithmetic as the full matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["BLOCK_BYTES", "row_blocks", "weighted_mean_rows"]

#: Most bytes one rows x times temporary of a block may take (a few such temporaries
#: live at once, so the blocks' peak is a small multiple of it).
BLOCK_BYTES = 32 * 2**20


def row_blocks(n_rows: int, width: int, budget: int = BLOCK_BYTES) -> Iterator[slice]:
    """Consecutive slices covering ``range(n_rows)``, each so that a float64 matrix of
    its rows x ``width`` columns takes at most ``budget`` bytes (one row at least).

    >>> [(s.start, s.stop) for s in row_blocks(10, 3, budget=8 * 3 * 4)]
    [(0, 4), (4, 8), (8, 10)]
    """
    size = max(1, budget // (8 * max(1, width)))
    for lo in range(0, n_rows, size):
        yield slice(lo, min(lo + size, n_rows))


def weighted_mean_rows(
    rows: Callable[[slice], np.ndarray],
    n_rows: int,
    width: int,
    w: np.ndarray | None = None,
    budget: int = BLOCK_BYTES,
) -> np.ndarray:
    """``sum_i w_i M[i, :] / sum_i w_i`` of the ``n_rows x width`` matrix ``M`` whose
    rows ``rows(block)`` computes, one block at a time (``w`` ``None``: every row 1).
    Rows of weight 0 are skipped: a resample's absent rows cost nothing.

    >>> M = np.arange(12.0).reshape(4, 3)
    >>> weighted_mean_rows(lambda b: M[b], 4, 3, np.array([1.0, 0.0, 0.0, 1.0]), budget=8)
    array([4.5, 5.5, 6.5])
    """
    total = np.zeros(width)
    if w is None:
        for block in row_blocks(n_rows, width, budget):
            total += rows(block).sum(axis=0)
        return total / n_rows
    for block in row_blocks(n_rows, width, budget):
        wb = w[block]
        if np.any(wb != 0):
            total += wb @ rows(block)
    return total / float(w.sum())
