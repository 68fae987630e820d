"""Generated malformed inputs at the public entry points: each call either answers or
refuses with one of the package's errors (or a ``ValueError`` / ``TypeError`` naming
the parameter), never anything else (issue 15; DESIGN §8).

Hypothesis draws the inputs, 500 per entry point, derandomized so that every run of
the suite tries the same ones: cohorts built from frames of mixed, missing, infinite and
mistyped columns; weights; transport options; summary documents edited at random;
analysis plans edited at random; and release directories whose manifest and files are
garbage, verified through the command.
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import transport as tp
from transport.exceptions import TransportError

EXAMPLES = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def refused_properly(exc: BaseException, names: tuple[str, ...]) -> bool:
    """The package's own error, or a ValueError / TypeError naming one of ``names``."""
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, ValueError | TypeError):
        text = str(exc)
        return any(n in text for n in names)
    return False


def where(exc: BaseException) -> str:
    """The package's innermost line the exception passed through."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/transport/" in f.filename]
    return f"{frames[-1].filename.split('/transport/')[-1]}:{frames[-1].lineno}" if frames else "?"


def call(fn: Any, names: tuple[str, ...], *args: Any, **kw: Any) -> Any:
    """``fn(*args, **kw)``; a refusal is returned as ``None``, anything else fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(*args, **kw)
    except Exception as exc:  # the property under test: which exceptions escape
        if not refused_properly(exc, names):
            raise AssertionError(f"{type(exc).__name__} escaped at {where(exc)}: {exc}") from exc
        event(f"{getattr(fn, '__name__', fn)}: refused ({type(exc).__name__})")
        return None
    event(f"{getattr(fn, '__name__', fn)}: answered")
    return out


# -- strategies ------------------------------------------------------------------------------
ODD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -0.0, 5e-324])
FLOATS = st.one_of(st.floats(0, 2000), ODD_FLOATS)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(10**30), 10**30),
    FLOATS,
    st.text(max_size=4),
)


@st.composite
def columns(draw: st.DrawFn, n: int, usual: str | None = None) -> list[Any]:
    """One column of ``n`` values: of a single kind (``usual`` most often), or of mixed
    kinds."""
    kinds = ["float", "int", "event", "str", "bool", "mixed"]
    kind = draw(st.sampled_from(kinds + [usual] * 6 if usual else kinds))
    if kind == "float":
        return draw(st.lists(st.one_of(st.none(), FLOATS), min_size=n, max_size=n))
    if kind == "int":
        return draw(st.lists(st.integers(-1, 400), min_size=n, max_size=n))
    if kind == "event":
        return draw(st.lists(st.sampled_from([0, 1, 1, 0, 2]), min_size=n, max_size=n))
    if kind == "str":
        return draw(st.lists(st.sampled_from(["a", "b", "", "1", "NA"]), min_size=n, max_size=n))
    if kind == "bool":
        return draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return draw(st.lists(SCALARS, min_size=n, max_size=n))


NAMES = ["t", "e", "x", "g", "id"]


@st.composite
def frames(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """A frame (polars, or pandas with object columns) and the Cohort arguments to read
    it with, some naming columns that are not there."""
    n = draw(st.integers(0, 12))
    usual = {"t": "int", "e": "event", "x": "float", "g": "str"}
    data = {c: draw(columns(n, usual.get(c))) for c in NAMES}
    if draw(st.booleans()):
        import pandas as pd

        frame: Any = pd.DataFrame(data)
        if draw(st.booleans()):
            frame["g"] = frame["g"].astype("category")
    else:
        try:
            frame = pl.DataFrame(data, strict=False)
        except Exception:
            frame = pl.DataFrame({c: [str(v) for v in vals] for c, vals in data.items()})
    kw = {
        "time": draw(st.sampled_from(["t"] * 6 + ["x", "missing"])),
        "event": draw(st.sampled_from(["e"] * 6 + ["g", "t"])),
        "covariates": draw(st.lists(st.sampled_from(["x", "g", "t", "nope"]), max_size=3)),
        "identifiers": draw(st.lists(st.sampled_from(["id", "x"]), max_size=1)),
        "na_action": draw(st.sampled_from(["error", "drop"] * 4 + ["keep", None])),
        "time_unit": draw(st.sampled_from(["days"] * 6 + ["months", "fortnights"])),
    }
    if draw(st.integers(0, 3)) == 0:
        kw["covariate_types"] = {"x": draw(st.sampled_from(["continuous", "categorical", "big"]))}
    return frame, kw


COHORT_NAMES = (
    "time",
    "event",
    "covariate",
    "na_action",
    "time_unit",
    "identifiers",
    "covariate_types",
    "data",
    "column",
)


@EXAMPLES
@given(frames())
def test_cohorts_from_malformed_frames(case: tuple[Any, dict[str, Any]]) -> None:
    frame, kw = case
    cohort = call(tp.Cohort, COHORT_NAMES, frame, name="c", **kw)
    if cohort is not None:  # an accepted cohort holds what the rules promise
        t = cohort.time_values
        assert cohort.n == t.size >= 1 and np.isfinite(t).all() and (t >= 0).all()
        assert set(np.unique(cohort.event_values)) <= {0.0, 1.0}


def _cohort(seed: int, n: int = 40) -> tp.Cohort:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "t": rng.exponential(300.0, n).round() + 1.0,
            "e": rng.integers(0, 2, n),
            "age": rng.normal(60.0, 8.0, n),
            "ecog": rng.choice(["0", "1", "2"], n),
        }
    )
    return tp.Cohort(frame, time="t", event="e", covariates=["age", "ecog"], name=f"c{seed}")


SOURCE, TARGET = _cohort(1), _cohort(2, 30)

WEIGHTS = st.one_of(
    st.lists(st.one_of(FLOATS, st.integers(-2, 5)), min_size=38, max_size=42),
    st.lists(SCALARS, min_size=40, max_size=40),
    st.builds(lambda x: np.full(40, x), FLOATS),
    st.sampled_from([None, "1", 3.0, [], {"a": 1}]),
)


@EXAMPLES
@given(WEIGHTS, st.sampled_from(["log-log", "log", "plain", "loglog", None]))
def test_kaplan_meier_with_malformed_weights(weights: Any, conf_type: Any) -> None:
    km = call(
        tp.kaplan_meier, ("weights", "conf_type"), SOURCE, weights=weights, conf_type=conf_type
    )
    if km is not None:
        s = km.to_frame()["survival"].to_numpy()
        assert ((s >= 0) & (s <= 1)).all() and (np.diff(s) <= 1e-12).all()


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: a call with several options then often reaches the
    estimation with one bad value, instead of stopping at the first of many."""
    return st.one_of(good, good, good, bad)


OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "method": mostly(
            st.sampled_from(["naive", "iow", "entropy", "gformula"]), st.sampled_from(["ipw", 3])
        ),
        "times": mostly(
            st.lists(st.one_of(st.floats(0, 900), st.integers(0, 900)), max_size=4),
            st.one_of(st.lists(FLOATS, min_size=1, max_size=3), SCALARS, st.just("365")),
        ),
        "tau": mostly(st.floats(1, 900), SCALARS),
        "n_boot": mostly(st.integers(0, 3), st.sampled_from([-1, 1.5, "2", True])),
        "seed": mostly(st.integers(0, 10), st.sampled_from([-1, 1.5, "x", True])),
        "ci_level": mostly(st.floats(0.5, 0.99), st.one_of(st.floats(-1, 2), ODD_FLOATS)),
        "ties": mostly(st.sampled_from(["efron", "breslow"]), st.sampled_from(["exact", None])),
        "moments": mostly(st.sampled_from([1, 2]), st.sampled_from([3, "1"])),
        "window": mostly(
            st.tuples(st.floats(0, 100), st.floats(100, 900)),
            st.one_of(st.lists(FLOATS, max_size=3), SCALARS),
        ),
        "margin": mostly(
            st.floats(0.01, 0.5),
            st.one_of(FLOATS, st.dictionaries(st.sampled_from(["survival", "rmst", "x"]), FLOATS)),
        ),
        "formula": mostly(
            st.sampled_from(["age + ecog", "age + I(age**2)", "age:ecog"]),
            st.sampled_from(["nope", "1 +", "", "__import__('os')", "age**2**99"]),
        ),
        "time_unit": mostly(st.sampled_from(["days", "weeks"]), st.just("fortnight")),
        "n_jobs": mostly(st.just(1), st.sampled_from([0, -1, 2.5])),
    },
)
TRANSPORT_NAMES = (
    "method",
    "times",
    "tau",
    "n_boot",
    "seed",
    "ci_level",
    "ties",
    "moments",
    "window",
    "margin",
    "formula",
    "time_unit",
    "n_jobs",
    "time",
)


@EXAMPLES
@given(OPTIONS)
def test_transport_with_malformed_options(options: dict[str, Any]) -> None:
    res = call(tp.transport, TRANSPORT_NAMES, SOURCE, TARGET, **options)
    if res is not None:
        table = res.summary()
        assert table.height >= 1 and "transported" in table.columns


# -- documents and plans from another environment ----------------------------------------------
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
BASE_SUMMARY = tp.TargetSummary.from_cohort(TARGET, km_times=[30.0, 90.0, 180.0]).to_dict()


@st.composite
def edited(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """``base`` with one to four random edits: a value replaced by random JSON, deleted,
    a list cut short or lengthened, a key added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        node: Any = doc
        path = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append((node, key))
            node = node[key]
        if not path:
            if draw(st.booleans()):
                return draw(JSON)
            continue
        parent, key = path[-1]
        action = draw(st.sampled_from(["replace", "delete", "cut", "grow", "add"]))
        if action == "replace":
            parent[key] = draw(JSON)
        elif action == "delete":
            del parent[key]
        elif action == "cut" and isinstance(parent[key], list):
            parent[key] = parent[key][: draw(st.integers(0, 2))]
        elif action == "grow" and isinstance(parent[key], list):
            parent[key] = parent[key] + draw(st.lists(SCALARS, min_size=1, max_size=3))
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=5))] = draw(JSON)
    return doc


SUMMARY_NAMES = ("TargetSummary", "summary")


@EXAMPLES
@given(edited(BASE_SUMMARY))
def test_summary_documents_edited_at_random(doc: Any) -> None:
    summary = call(tp.TargetSummary.from_dict, SUMMARY_NAMES, doc)
    if summary is not None:  # what is accepted can be used as a target
        call(tp.transport, TRANSPORT_NAMES, SOURCE, summary, method="entropy", times=[90.0])


BASE_PLAN = {
    "title": "t",
    "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
    "analysis": {
        "source": "US",
        "targets": ["JP"],
        "methods": ["iow"],
        "times": [365.25],
        "tau": 730.5,
        "n_boot": 0,
        "seed": 1,
    },
    "output": {"directory": "out"},
    "disclosure": {"min_cell": 10},
}


@EXAMPLES
@given(edited(BASE_PLAN))
def test_plans_edited_at_random(plan: Any) -> None:
    from transport.cli.plan import PlanError, check_plan, policy_from_plan

    try:
        checked = check_plan(plan)
        policy_from_plan(checked)
    except PlanError:
        return
    except Exception as exc:
        if not refused_properly(exc, ("plan", "[analysis]", "[cohorts", "[disclosure]", "Policy")):
            raise AssertionError(f"{type(exc).__name__} escaped at {where(exc)}: {exc}") from exc


# -- the command, on release directories of garbage ------------------------------------------------
@EXAMPLES
@given(
    manifest=st.one_of(
        edited({"schema": "transport.release", "version": 1, "files": [], "policy": {}}), JSON
    ),
    files=st.dictionaries(
        st.sampled_from(["target_summary.json", "curve.csv", "x"]),
        st.binary(max_size=40),
        max_size=2,
    ),
    raw=st.booleans(),
)
def test_release_verify_on_garbage_is_one_line_and_exit_2(
    manifest: Any, files: dict[str, bytes], raw: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import contextlib
    import io

    from transport.cli import main

    directory = tmp_path_factory.mktemp("release")
    text = json.dumps(manifest) if not raw else json.dumps(manifest)[:-1]
    (directory / "manifest.json").write_text(text)
    for name, payload in files.items():
        (directory / name).write_bytes(payload)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["release", "verify", str(directory)])
    assert status == 2
    assert err.getvalue().count("\n") == 1 and "internal error" not in err.getvalue()
    Path(directory / "manifest.json").unlink()


# -- formulas, weights and summary files -------------------------------------------------------
TOKENS = st.sampled_from(
    [
        "age",
        "ecog",
        "+",
        "*",
        ":",
        "**",
        "(",
        ")",
        "I(",
        "C(",
        "2",
        "99",
        "log(",
        "bs(",
        "df=",
        "-",
        "1",
        "0",
        ",",
        "x",
        "age)",
        "poly(",
        "center(",
        "__class__",
        ".",
        "'",
        "Sum",
        "~",
    ]
)
FORMULAS = st.lists(TOKENS, min_size=1, max_size=8).map(" ".join)
SUMMARY = tp.TargetSummary.from_cohort(TARGET)


@EXAMPLES
@given(
    formula=mostly(st.sampled_from(["age + ecog", "age * ecog", "I(age**2) + ecog"]), FORMULAS),
    how=st.sampled_from(["iow", "entropy rows", "entropy summary"]),
    moments=st.sampled_from([1, 2]),
)
def test_weights_with_formulas_from_tokens(formula: str, how: str, moments: int) -> None:
    names = ("formula", "moments")
    if how == "iow":
        w = call(tp.inverse_odds_weights, names, SOURCE, TARGET, formula=formula)
    else:
        target = TARGET if how == "entropy rows" else SUMMARY
        w = call(tp.entropy_balance, names, SOURCE, target, moments=moments, formula=formula)
    if w is not None:
        assert np.isfinite(w.values).all() and (w.values >= 0).all() and w.ess > 0


@EXAMPLES
@given(payload=st.one_of(st.binary(max_size=300), JSON.map(lambda j: json.dumps(j).encode())))
def test_summary_files_of_any_bytes(
    payload: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("summary") / "target.json"
    path.write_bytes(payload)
    assert call(tp.TargetSummary.from_json, ("target.json", "TargetSummary"), path) is None


@EXAMPLES
@given(
    case=frames(),
    extra=st.lists(
        st.sampled_from(
            ["--no-km", "--na-action=drop", "--time-unit=months", "--km-every=0", "--formula=x"]
        ),
        max_size=2,
    ),
)
def test_the_command_on_csv_files_of_any_shape(
    case: tuple[Any, dict[str, Any]], extra: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``transport summarize`` on a CSV a user exported: it releases or says why, in one
    line, exit 2; never a traceback."""
    import contextlib
    import io

    from transport.cli import main

    frame, _ = case
    directory = tmp_path_factory.mktemp("csv")
    path = directory / "cohort.csv"
    try:
        (pl.from_pandas(frame) if not isinstance(frame, pl.DataFrame) else frame).write_csv(path)
    except Exception:  # a pandas frame of mixed objects has no CSV in polars: as text
        frame.to_csv(path, index=False)
    argv = ["summarize", str(path), "--time", "t", "--event", "e", "--covariates", "x,g"]
    argv += ["--identifiers", "id", "--out", str(directory / "out"), *extra]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(argv)
    said = [line for line in err.getvalue().splitlines() if "warning:" not in line]
    assert status in (0, 2)
    if status == 2:
        assert (
            len(said) == 1 and said[0].startswith("transport: ") and "internal error" not in said[0]
        )


# -- the simulation's entry points -----------------------------------------------------------
SIMULATE = st.fixed_dictionaries(
    {
        "country": mostly(st.sampled_from(["US", "UK", "DE", "JP"]), SCALARS),
        "n": mostly(st.integers(1, 30), st.one_of(SCALARS.filter(lambda x: x is not None))),
    },
    optional={
        "seed": mostly(st.integers(0, 10), SCALARS),
        "setting_effect": mostly(st.booleans(), SCALARS),
        "unmeasured_strength": mostly(st.floats(-2, 2), SCALARS),
        "missing": mostly(st.sampled_from(["mcar", "mar", None]), SCALARS),
        "missing_rate": mostly(st.floats(0.01, 0.99), SCALARS),
        "return_truth_columns": mostly(st.booleans(), SCALARS),
    },
)
SIMULATE_NAMES = (
    "'country'",
    "'n'",
    "'seed'",
    "'setting_effect'",
    "'unmeasured_strength'",
    "'missing'",
    "'missing_rate'",
    "'return_truth_columns'",
)


@EXAMPLES
@given(SIMULATE)
def test_simulate_cohort_with_malformed_arguments(kw: dict[str, Any]) -> None:
    frame = call(tp.simulate.simulate_cohort, SIMULATE_NAMES, **kw)
    if frame is not None:  # an answer is the cohort asked for, of the size asked for
        n = kw["n"] if kw["n"] is not None else tp.simulate.PROFILES[kw["country"]].n
        assert frame.height == n and frame["os_days"].min() >= 0
        assert ("u" in frame.columns) == bool(kw.get("return_truth_columns", False))
