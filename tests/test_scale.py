"""Bounded memory at scale: the model-based curves are averaged over rows in blocks, with
the numbers of the full rows x times matrix and temporaries under the block budget."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transport as tp
import transport.survival._blocks as blocks
from transport.survival._blocks import row_blocks, weighted_mean_rows


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    st.integers(1, 60),
    st.integers(1, 12),
    st.integers(8, 4000),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_a_blocked_mean_is_the_mean_of_the_whole_matrix(
    n: int, width: int, budget: int, weighted: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    M = rng.uniform(size=(n, width))
    w = rng.integers(0, 3, n).astype(float) if weighted else None
    if w is not None and w.sum() == 0:
        w[0] = 1.0
    seen: list[int] = []

    def rows(b: slice) -> np.ndarray:
        seen.extend(range(b.start, b.stop))
        assert (b.stop - b.start) * width * 8 <= max(budget, width * 8)
        return M[b]

    got = weighted_mean_rows(rows, n, width, w, budget=budget)
    want = M.mean(axis=0) if w is None else (w @ M) / w.sum()
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    if w is None:
        assert seen == list(range(n))  # every row once, in order
    slices = list(row_blocks(n, width, budget))
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(n))


@pytest.fixture(scope="module")
def big_target() -> tuple[tp.Cohort, tp.Cohort]:
    from transport.simulate import simulate_cohort

    def cohort(country: str, n: int, seed: int) -> tp.Cohort:
        frame = simulate_cohort(country, n, seed=seed)
        covs = ["age", "sex", "ecog", "stage", "regimen"]
        return tp.Cohort(frame, time="os_days", event="os_event", covariates=covs, name=country)

    return cohort("US", 3000, 1), cohort("JP", 30000, 2)


@pytest.mark.parametrize("method", ["gformula", "aipw"])
def test_the_curve_is_the_same_in_any_block_size_and_stays_in_budget(
    big_target: tuple[tp.Cohort, tp.Cohort], method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = big_target
    kw = {"method": method, "times": [182.625, 365.25, 730.5], "tau": 1095.75}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide = tp.transport(source, target, **kw).summary()["transported"].to_numpy()
        budget = 2**20  # 1 MiB: the target's 30,000 rows x ~900 times are 200 MiB at once
        monkeypatch.setattr(blocks, "BLOCK_BYTES", budget)
        monkeypatch.setattr(blocks.row_blocks, "__defaults__", (budget,))
        monkeypatch.setattr(blocks.weighted_mean_rows, "__defaults__", (None, budget))
        tracemalloc.start()
        try:
            narrow = tp.transport(source, target, **kw).summary()["transported"].to_numpy()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    np.testing.assert_allclose(narrow, wide, rtol=1e-12)
    grid = np.unique(source.time_values[source.event_values > 0]).size
    whole = 8 * target.n * grid  # the matrix the curve used to hold
    assert peak < whole / 4, (peak, whole)


# -- the design's fast path and the bootstrap's distinct rows ---------------------------------
def _cohort(seed: int, n: int) -> tp.Cohort:
    import polars as pl

    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "t": rng.exponential(100.0, n) + 1.0,
            "e": rng.integers(0, 2, n),
            "age": rng.normal(60.0, 10.0, n).round(int(rng.integers(0, 3))),
            "ecog": rng.choice(["0", "1", "2+"], n),
            "sex": rng.choice(["f", "m"], n),
            "stage": rng.choice(["I", "II", "III", "IV"], n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    covs = ["age", "ecog", "sex", "stage"]
    return tp.Cohort(frame, time="t", event="e", covariates=covs, name=f"c{seed}")


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.integers(0, 10**6),
    st.sampled_from(
        [
            None,
            "age + stage",
            "stage + age + sex",
            "age + ecog + age:ecog",
            "center(age) + sex",
            "C(stage, Treatment('III')) + age",
            "sex * ecog",
            "bs(age, df=3) + stage",
        ]
    ),
    st.booleans(),
)
def test_a_design_matrix_is_formulaics_whichever_path_builds_it(
    seed: int, formula: str | None, every_level: bool
) -> None:
    source, target = _cohort(seed, 300), _cohort(seed + 1, 120)
    try:
        design = tp.Design(source, formula, every_level=every_level, source=not every_level)
    except tp.DataError:
        return  # a spline past the range, a single level: refused as before
    try:
        fast = design.matrix(target)
    except tp.DataError:
        return
    np.testing.assert_array_equal(fast, design._formulaic(target))
    np.testing.assert_array_equal(design.matrix(target), fast)  # and again, once decided
    plain = formula in (None, "age + stage", "stage + age + sex")
    assert bool(design._plain_ok) is plain  # the fast path where it applies


def test_distinct_rows_group_as_the_sort_does() -> None:
    from transport.weighting._participation import distinct_rows

    rng = np.random.default_rng(5)
    X = rng.integers(0, 3, size=(5000, 4)).astype(float)
    X[:, 0] = 1.0
    Xu, group = distinct_rows(X)
    np.testing.assert_array_equal(Xu[group], X)  # each row its group's row
    assert Xu.shape[0] == np.unique(X, axis=0).shape[0]  # as many groups as distinct rows


def test_distinct_rows_survive_a_hash_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    # every row hashed alike: the grouping is checked and falls back to the sort
    import transport.weighting._participation as participation

    monkeypatch.setattr(participation, "_row_hashes", lambda X: np.zeros(X.shape[0], np.uint64))
    X = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    Xu, group = participation.distinct_rows(X)
    np.testing.assert_array_equal(Xu[group], X)
    assert Xu.shape[0] == 2


@pytest.mark.parametrize("method", ["iow", "entropy", "gformula", "aipw"])
def test_the_work_left_for_the_bootstrap_reaches_its_workers(method: str) -> None:
    # an estimator prepares its bootstrap state on the first replicate; sent to a worker
    # before that, it carried a Cohort, which cannot be rebuilt from a pickle
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    kw = {"method": method, "times": [365.25], "tau": 730.5, "n_boot": 4, "seed": 11}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = tp.transport(us, jp, n_jobs=1, **kw)
        two = tp.transport(us, jp, n_jobs=2, **kw)
    np.testing.assert_array_equal(one.bootstrap.values, two.bootstrap.values)
