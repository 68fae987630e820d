"""Attacks on the environment boundary, class 1: code carried across it in a formula.

The attacker is a consortium partner who writes a shipped model, a target summary, an
analysis plan or a command line that another environment will read. formulaic evaluates
a formula's terms as Python, so a formula that reached it as it came would run the
attacker's code inside the trusted environment. Each payload below tries to write a
canary file; every way a formula crosses the boundary is tried with every payload, and
the test asserts that the package refuses the text with a ``DataError`` naming what it
refused, and that the canary was never written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import transport as tp
from transport import disclosure as dc
from transport.cli.run import run_plan
from transport.exceptions import DataError, DisclosureError
from transport.formula import closed_formula

#: Each writes (or touches) the file ``{c}`` when formulaic evaluates it.
PAYLOADS = [
    "I(__import__('pathlib').Path('{c}').write_text('stolen') or age)",
    "age + I(open('{c}', 'w').write('x') * 0)",
    "age + C(sex, __import__('pathlib').Path('{c}').touch())",
    "age + np.savetxt('{c}', age)",
    "poly(age, degree=__import__('pathlib').Path('{c}').touch() or 2)",
    "bs(age, knots=[float(open('{c}', 'w').write('1'))])",
    "age + I((lambda: __import__('pathlib').Path('{c}').touch())() or age)",
    "log(age) + I(getattr(__builtins__, 'open')('{c}', 'w') and age)",
    "age + I(\uff4f\uff50\uff45\uff4e('{c}', 'w') and age)",  # full-width 'open': NFKC
    "age\n+ I(exec(\"open('{c}', 'w')\") or age)",
    "age + I(age if open('{c}', 'w') else age)",
    "age + `sex` + {{open('{c}', 'w')}}",
]


def _payloads(tmp_path: Path) -> list[tuple[str, Path]]:
    out = []
    for i, text in enumerate(PAYLOADS):
        canary = tmp_path / f"canary{i}.txt"
        out.append((text.format(c=canary), canary))
    return out


def _names_a_refusal(exc: BaseException) -> bool:
    text = str(exc)
    return "closed grammar" in text or "not expected" in text or "rule" in text


def test_the_payloads_run_when_formulaic_is_given_them(tmp_path: Path) -> None:
    """The attack is real: full formulaic (a user's own in-process analysis) runs them."""
    jp = tp.datasets.load_synthetic("JP")
    text, canary = _payloads(tmp_path)[0]
    with contextlib.suppress(Exception):  # the design may fail after the code has run
        tp.Design(jp, text)
    assert canary.exists(), "the first payload no longer runs code: the attacks test nothing"


def test_the_closed_grammar_refuses_every_payload_by_name(tmp_path: Path) -> None:
    for text, canary in _payloads(tmp_path):
        with pytest.raises(DataError) as info:
            closed_formula(text, "formula from elsewhere")
        assert _names_a_refusal(info.value), str(info.value)
        assert not canary.exists()


def _rehash(directory: Path) -> None:
    """Recompute the manifest's hashes, as anyone holding the files can."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["files"]:
        payload = (directory / entry["file"]).read_bytes()
        entry["sha256"] = hashlib.sha256(payload).hexdigest()
        entry["bytes"] = len(payload)
    path.write_text(json.dumps(manifest, indent=2))


@pytest.fixture(scope="module")
def released_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tp.datasets.load_synthetic("UK")
    out = tmp_path_factory.mktemp("model") / "release"
    dc.release(tp.ShippedModel.fit(src, "age + sex + ecog"), out)
    return out


def test_an_edited_shipped_model_runs_no_code_at_the_target(
    released_model: Path, tmp_path: Path
) -> None:
    jp = tp.datasets.load_synthetic("JP")
    for text, canary in _payloads(tmp_path):
        work = tmp_path / f"m-{canary.stem}"
        work.mkdir()
        for f in released_model.iterdir():
            (work / f.name).write_bytes(f.read_bytes())
        data = json.loads((work / "shipped_model.json").read_text())
        data["design"]["formula"] = text
        (work / "shipped_model.json").write_text(json.dumps(data))
        _rehash(work)
        # refused as it is read: by the release audit's formula_closed, else by the reader
        with pytest.raises((DataError, DisclosureError)) as info:
            tp.ShippedModel.from_release(work).apply(jp)
        assert _names_a_refusal(info.value)
        with pytest.raises(DataError):
            tp.ShippedModel.from_dict(data)  # without the manifest, the same
        assert not canary.exists(), f"payload ran at the target: {text!r}"


@pytest.mark.parametrize("country", ["US", "DE"])
def test_an_edited_summary_and_a_chosen_summary_formula_run_no_code(
    country: str, tmp_path: Path
) -> None:
    cohort = tp.datasets.load_synthetic(country)
    data = tp.TargetSummary.from_cohort(cohort, "age + sex + ecog").to_dict()
    for text, canary in _payloads(tmp_path):
        # the source asks the target for a summary with its formula ...
        with pytest.raises(DataError):
            tp.TargetSummary.from_cohort(cohort, text)
        # ... or hands the source a summary file whose formula was edited
        path = tmp_path / f"{canary.stem}.json"
        path.write_text(json.dumps({**data, "formula": text}))
        with pytest.raises(DataError):
            tp.TargetSummary.from_json(path)
        assert not canary.exists(), f"payload ran: {text!r}"


def test_a_plan_formula_runs_no_code(tmp_path: Path) -> None:
    for key in ("formula", "outcome_formula"):
        for text, canary in _payloads(tmp_path)[:4]:
            plan = {
                "cohorts": {"US": {"dataset": "synthetic:US"}, "JP": {"dataset": "synthetic:JP"}},
                "analysis": {
                    "source": "US",
                    "targets": ["JP"],
                    "methods": ["gformula" if key == "outcome_formula" else "iow"],
                    key: text,
                },
            }
            out = tmp_path / f"run-{key}-{canary.stem}"
            with pytest.raises(DataError, match=f"plan \\[analysis\\] {key}"):
                run_plan(plan, out, progress=False, figures=False)
            assert not canary.exists() and not out.exists()


def test_a_command_line_formula_runs_no_code(tmp_path: Path) -> None:
    text, canary = _payloads(tmp_path)[0]
    cmd = [sys.executable, "-m", "transport.cli", "summarize", "synthetic:JP", "--formula", text]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "rel")], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "__import__" in done.stderr
    assert "Traceback" not in done.stderr
    assert not canary.exists() and not (tmp_path / "rel").exists()


def test_the_gate_refuses_a_summary_whose_formula_is_outside_the_grammar(tmp_path: Path) -> None:
    """A summary built in-process with full formulaic never leaves with its formula."""
    jp = tp.datasets.load_synthetic("JP")
    summary = tp.TargetSummary.from_cohort(jp, "age + sex")
    summary.formula = "age + sex + np.sin(age)"  # formulaic would run np.sin where it lands
    with pytest.raises(DisclosureError, match="formula_closed"):
        dc.release(summary, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_closed_formulas_still_give_formulaic_s_columns() -> None:
    """What the grammar accepts is what users write: the design is the same."""
    jp = tp.datasets.load_synthetic("JP")
    for text in (
        "age + C(ecog, Treatment('1')) + sex:stage",
        "center(age) + I(age ** 2 / 100) + np.log(age)",
        "bs(age, df=4) + `sex` * smoking",
        "poly(age, 2) + C(stage)",
        "I((age > 70) * 1.0) + scale(np.sqrt(age)) + sex",
    ):
        closed = tp.Design(jp, text, closed=True)
        full = tp.Design(jp, text)
        assert closed.columns == full.columns
        assert (closed.source_matrix == full.source_matrix).all()


@pytest.mark.parametrize(
    "text",
    [
        "age + I(9 ** 9 ** 9)",  # Python integers: never ends
        "age + I(age * (99 ** 99) ** 99)",
        "I(age ** 1000000)",
        "bs(age, df=10000000)",  # a design of ten million columns
        "poly(age, degree=100000)",
        "I(" * 40 + "age" + ")" * 40,  # deeper than the parser goes
        "age + " * 2000 + "age",  # longer than a right-hand side
    ],
)
def test_a_formula_cannot_make_the_target_compute_for_ever(text: str) -> None:
    """Denial of service is an attack on the environment too: each would run for hours
    or exhaust memory when formulaic evaluates it; the grammar refuses it first."""
    with pytest.raises(DataError, match=r"rule|closed grammar"):
        closed_formula(text, "formula from elsewhere")
