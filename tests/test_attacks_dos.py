"""Attacks on the environment boundary, class 1: a formula that makes the receiving
environment compute for ever (found by an independent red team).

``I(age + 0) * ... * I(age + 23)`` is 290 characters of plain closed grammar; formulaic
would expand it into 16.7 million interaction terms and evaluate each, in the target when
it loads a shipped model, when it computes a summary the source asked for, and through a
plan or ``--formula``. Each crossing is tried in a child process with a time and memory
limit, so that a regression fails in seconds instead of taking the machine; each must
refuse the formula by rule, at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import transport as tp
from transport import disclosure as dc

ROOT = Path(tp.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def released_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A legitimate model of age and sex, released by the source's gate."""
    out = tmp_path_factory.mktemp("src") / "model"
    dc.release(
        tp.ShippedModel.fit(tp.datasets.load_synthetic("US"), "age + sex", n_boot=4, seed=11), out
    )
    return out


def child(code: str, timeout: float = 120.0, memory_gb: float = 3.0) -> tuple[str, str]:
    """Run ``code`` in a fresh interpreter with this worktree's package, at most
    ``memory_gb`` of address space and ``timeout`` seconds: ``("ok", stdout)`` when it
    finished and exited 0, else ``("timeout" | "failed", what it printed)``."""
    prelude = textwrap.dedent(f"""
        import resource
        limit = int({memory_gb} * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    try:
        done = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", f"still running after {timeout:g} s"
    status = "ok" if done.returncode == 0 else "failed"
    return status, done.stdout + done.stderr[-1500:]


#: 24 distinct factors joined by '*': formulaic expands them into 2**24 - 1 terms (each an
#: n-row column). 290 characters, within MAX_LENGTH and the nesting bound; every token is
#: in the closed grammar. Measured: 13 factors take 2.2 s, doubling with each factor.
BLOWUP = " * ".join(f"I(age + {i})" for i in range(24))

CROSSINGS = {
    # the target reads a partner's shipped model (the formula evaluated at load time)
    "shipped_model": """
        import json, shutil, hashlib
        from pathlib import Path
        import transport as tp
        rel, out = Path({release!r}), Path({work!r}) / "forged"
        shutil.copytree(rel, out)
        data = json.loads((out / "shipped_model.json").read_text())
        data["design"] = {{"formula": {formula!r}, "columns": ["I(age + 0)"],
                          "covariates": ["age"], "types": {{"age": "continuous"}},
                          "levels": {{}}, "source": "US", "transform_state": {{}}}}
        payload = (json.dumps(data) + "\\n").encode()
        (out / "shipped_model.json").write_bytes(payload)
        m = json.loads((out / "manifest.json").read_text())
        for e in m["files"]:
            p = (out / e["file"]).read_bytes()
            e["sha256"], e["bytes"] = hashlib.sha256(p).hexdigest(), len(p)
        (out / "manifest.json").write_text(json.dumps(m))
        try:
            tp.ShippedModel.from_release(out)
        except (tp.DataError, tp.DisclosureError) as exc:
            print("refused:", str(exc)[:100], "...", str(exc)[-160:])
    """,
    # the target computes the summary the source asked for, with the source's formula
    "summary": """
        import numpy as np, polars as pl
        import transport as tp
        rng = np.random.default_rng(3)
        n = 500
        frame = pl.DataFrame({{"days": rng.integers(1, 900, n).astype(float),
                               "dead": rng.integers(0, 2, n), "age": rng.normal(60, 9, n)}})
        target = tp.Cohort(frame, time="days", event="dead", covariates=["age"], name="T")
        try:
            tp.TargetSummary.from_cohort(target, {formula!r})
        except (tp.DataError, tp.DisclosureError) as exc:
            print("refused:", str(exc)[:100], "...", str(exc)[-160:])
    """,
    # an analysis plan written elsewhere
    "plan": """
        from pathlib import Path
        import transport as tp
        from transport.cli.run import run_plan
        cohorts = {{"US": {{"dataset": "synthetic:US"}}, "JP": {{"dataset": "synthetic:JP"}}}}
        plan = {{"cohorts": cohorts,
                "analysis": {{"source": "US", "targets": ["JP"], "methods": ["iow"],
                             "formula": {formula!r}}}}}
        try:
            run_plan(plan, Path({work!r}) / "run", progress=False, figures=False)
        except (tp.DataError, tp.DisclosureError) as exc:
            print("refused:", str(exc)[:100], "...", str(exc)[-160:])
    """,
    # a command line pasted from a partner's instructions
    "cli": """
        import subprocess, sys
        from pathlib import Path
        done = subprocess.run([sys.executable, "-m", "transport.cli", "summarize", "synthetic:JP",
                               "--formula", {formula!r}, "--out", str(Path({work!r}) / "rel")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-800:]
        print("refused:", done.stderr[:100], "...", done.stderr[-160:])
    """,
}


@pytest.mark.parametrize("where", sorted(CROSSINGS))
def test_a_many_factor_interaction_is_refused_before_it_is_expanded(
    where: str, released_model: Path, tmp_path: Path
) -> None:
    """Found: the closed grammar bounds a formula's length, depth, powers and degrees, but
    not the number of terms it expands to. ``I(age + 0) * ... * I(age + 23)`` is 290
    characters of plain grammar; formulaic expands it into 16.7 million interaction terms
    and evaluates each (2**k growth: hours of CPU and tens of GB), in the target when it
    loads a shipped model (Design.from_dict runs formulaic on placeholder rows before any
    check), when it computes a summary the source asked for, and through a plan or
    ``--formula``. Under this test's 3 GB limit each ran 30 s and ended in a MemoryError
    that the package reports as a DataError ("not a valid right-hand side (MemoryError)");
    without a limit it takes the machine. Each crossing must refuse it by rule, at once."""
    code = CROSSINGS[where].format(release=str(released_model), work=str(tmp_path), formula=BLOWUP)
    status, out = child(
        f"import time\nstarted = time.time()\n{textwrap.dedent(code)}\n"
        "print('seconds:', round(time.time() - started, 1))",
        timeout=90.0,
        memory_gb=3.0,
    )
    print(f"{where}: {status}: {out[:300]} ... {out[-40:]}")
    assert status == "ok" and "refused:" in out, f"{where}: {status}: {out[-600:]}"
    # refused by a rule, not because the child's memory limit ran out first
    assert "MemoryError" not in out and "Killed" not in out, out[-600:]
    assert float(out.rsplit("seconds:", 1)[1]) < 20.0, out[-200:]


@pytest.mark.parametrize(
    ("key", "value"),
    [("n_boot", 10**9), ("times", [float(t) for t in range(1, 5001)]), ("n_jobs", 10**6)],
)
def test_a_plan_cannot_ask_for_unbounded_work(key: str, value: object, tmp_path: Path) -> None:
    """A plan written elsewhere asks for a billion replicates, five thousand times or a
    million worker processes: refused by rule before any cohort is read."""
    from transport.cli.plan import PlanError
    from transport.cli.run import run_plan

    plan = {
        "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
        "analysis": {"source": "US", "targets": ["JP"], "methods": ["iow"], key: value},
    }
    # the plan's bound, or (a billion replicates) the API's own, which is checked first
    with pytest.raises(PlanError, match=f"'{key}' (asks for .* bounded work|.* at most)"):
        run_plan(plan, tmp_path / "run", progress=False, figures=False)
    assert not (tmp_path / "run").exists()
