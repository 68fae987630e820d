"""Bad inputs get a named error, and no wrong answer is returned silently (DESIGN §8).

Each test is one input a careless or hurried user gives, and asserts the package either
answers correctly or refuses with an error that names the parameter and the rule.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import transport as tp
from transport.exceptions import DataError, TransportWarning
from transport.inference import run_bootstrap


# -- bootstrap replicates fail softly, in one place, for every method ----------------------
class _Flaky:
    """A replicate that raises ``error`` on the replicates whose first draw is small."""

    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        u = rng.uniform()
        if u < 0.3:
            raise self.error("singular information matrix in this resample")
        return np.array([u, 2 * u])


@pytest.mark.parametrize("error", [np.linalg.LinAlgError, ZeroDivisionError, DataError])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_replicate_without_a_fit_is_a_counted_row_of_nan(
    error: type[BaseException], n_jobs: int
) -> None:
    draws = run_bootstrap(_Flaky(error), 60, 5, n_jobs=n_jobs)
    bad = np.all(np.isnan(draws.values), axis=1)
    assert draws.values.shape == (60, 2) and draws.failed == int(bad.sum()) > 0
    ok = draws.values[~bad]
    assert np.all((ok[:, 0] >= 0.3) & (ok[:, 1] == 2 * ok[:, 0]))
    again = run_bootstrap(_Flaky(error), 60, 5, n_jobs=3 - n_jobs)  # any n_jobs: the same
    np.testing.assert_array_equal(again.values, draws.values)


def test_a_bug_in_a_replicate_is_not_hidden_as_a_failed_fit() -> None:
    with pytest.raises(TypeError):
        run_bootstrap(_Flaky(TypeError), 20, 1)


def test_a_bootstrap_whose_every_replicate_fails_is_refused_by_name() -> None:
    def never(rng: np.random.Generator) -> np.ndarray:
        raise np.linalg.LinAlgError("Singular matrix")

    with pytest.raises(DataError, match=r"every one of the 8 replicates of the bootstrap .*"):
        run_bootstrap(never, 8, 1)


def test_a_singular_resample_does_not_end_the_g_formula_bootstrap() -> None:
    """The issue's case: one replicate of DE's Cox model is singular."""
    de, jp = tp.datasets.load_synthetic("DE"), tp.datasets.load_synthetic("JP")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = tp.transport(de, jp, method="gformula", times=[365.25], n_boot=40, seed=123)
    row = res.summary().row(0, named=True)
    assert row["n_boot"] == 40 and row["n_boot_failed"] >= 1
    said = [str(w.message) for w in caught if issubclass(w.category, TransportWarning)]
    assert any(f"{row['n_boot_failed']} of 40 bootstrap replicates" in m for m in said)
    # the interval comes from the successful replicates: finite, around the estimate
    lo, hi = row["transported_ci_lower"], row["transported_ci_upper"]
    assert np.isfinite([lo, hi]).all() and lo < row["transported"] < hi
