"""Attacks on release verification and on the policy floor (issue 14, classes 8 and 9),
written as a consortium partner would try them: edit a release after the gate and
recompute its hashes, point the manifest outside the directory, weaken the manifest's
policy or its suppression list, or loosen the environment's policy from a plan. Each
asserts that the edited release or the loosened policy is refused.

The keys and cohorts are fixed (the synthetic cohorts are seeded data; the planted
cohorts are drawn with a fixed seed)."""

from __future__ import annotations

import ast
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import transport as tp
from transport import disclosure as dc
from transport import manifest as manifests
from transport.cli.plan import policy_from_plan
from transport.disclosure.curves import release_curve
from transport.disclosure.gate import HANDLERS
from transport.disclosure.record import Release
from transport.policy import FILE_SCHEMAS, RELEASE_FILES, RULES, TIGHTER
from transport.policy.audit import exits_floor, risk_set_floor

KEY = "release-key-of-the-target-environment-0123"  # 42 bytes
COUNTRIES = ("US", "UK", "DE", "JP")
POLICIES = {
    "default": dc.Policy(),
    "strict": dc.Policy(min_cell=20, min_km_step=20, round_to=10, name="strict"),
    "odd": dc.Policy(min_cell=7, min_km_step=7, round_to=5, name="odd"),
}


# -- what the attacker does ----------------------------------------------------------------
def released_curve(root: Path, country: str, policy: dc.Policy) -> Path:
    d = root / f"curve-{country}-{policy.name}"
    dc.release(tp.kaplan_meier(tp.datasets.load_synthetic(country)), d, policy)
    return d


def read_manifest(d: Path) -> dict[str, Any]:
    return json.loads((d / "manifest.json").read_text())


def write_manifest(d: Path, manifest: dict[str, Any]) -> None:
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2))


def rehash(d: Path) -> None:
    """Recompute every listed file's SHA-256 and size in the manifest, as anyone can."""
    manifest = read_manifest(d)
    for e in manifest["files"]:
        payload = (d / e["file"]).read_bytes()
        e["sha256"], e["bytes"] = manifests.digest(payload), len(payload)
    write_manifest(d, manifest)


def append_row(d: Path, **changes: float) -> None:
    """Append to the released curve a row like its last, one grid step later, with
    ``changes``, and recompute the hashes."""
    path = d / "survival_curve.csv"
    frame = pl.read_csv(path)
    step = read_manifest(d)["policy"]["km_grid_step"]
    last = frame.tail(1).to_dicts()[0]
    row = {**last, "time": last["time"] + step, "n_event": 0, "n_censor": 0, **changes}
    pl.concat([frame, pl.DataFrame([row], schema=frame.schema)]).write_csv(path)
    rehash(d)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MPLBACKEND": "Agg", **env}
    return subprocess.run(
        [sys.executable, "-m", "transport.cli", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=600,
    )


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv(manifests.KEY_ENV, KEY)
    monkeypatch.delenv("TRANSPORT_POLICY", raising=False)
    return monkeypatch


@pytest.fixture
def unkeyed(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(manifests.KEY_ENV, raising=False)
    monkeypatch.delenv("TRANSPORT_POLICY", raising=False)
    return monkeypatch


# -- class 8: an edited release whose hashes were recomputed --------------------------------
@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize("pname", ["default", "strict"])
def test_a_plausible_added_row_is_refused_by_the_signature(
    tmp_path: Path, keyed: pytest.MonkeyPatch, country: str, pname: str
) -> None:
    d = released_curve(tmp_path, country, POLICIES[pname])
    assert dc.verify(d).signature == "valid"
    append_row(d)  # no exits in a further step: every count still fits the policy
    with pytest.raises(tp.DisclosureError, match="release_signature") as err:
        dc.verify(d)
    print(f"{country}/{pname}: {err.value}")
    keyed.delenv(manifests.KEY_ENV)  # a reader without the key is told it did not check
    assert dc.verify(d).signature == "not checked"


#: Policies with one more lenient: a step of a few exits under it can be told apart
POLICIES["fine"] = dc.Policy(min_cell=20, min_km_step=20, round_to=3, name="fine")
BREAKS = [
    (pname, rule)
    for pname in POLICIES
    for rule in ("round_to", "min_cell", "min_km_step")
    # released counts are within round_to of their own (differences of rounded cumulative
    # counts): a step of one round_to of exits, or a risk set a little below min_cell,
    # is what the gate itself writes under a coarse rounding, so there is nothing to see
    if not (rule == "min_km_step" and POLICIES[pname].round_to >= exits_floor(POLICIES[pname]))
    and not (rule == "min_cell" and risk_set_floor(POLICIES[pname]) == 0)
]


@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize(("pname", "breaks"), BREAKS)
def test_an_added_row_that_breaks_the_policy_is_refused_without_a_key(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, country: str, pname: str, breaks: str
) -> None:
    policy = POLICIES[pname]
    d = released_curve(tmp_path, country, policy)
    r = policy.round_to
    least = risk_set_floor(policy)  # the smallest risk set the gate shows
    row = {
        "round_to": {"n_event": r + 1},
        "min_cell": {"n_risk": r * ((least - 1) // r)},  # a multiple of r below it
        "min_km_step": {"n_event": r},  # one rounded step of exits, below min_km_step
    }[breaks]
    append_row(d, **row)
    with pytest.raises(tp.DisclosureError, match="release_counts") as err:
        dc.verify(d)
    print(f"{country}/{pname}/{breaks}: {err.value}")


@pytest.mark.parametrize("country", ["UK", "JP"])
@pytest.mark.parametrize(
    "edit",
    ["n_not_rounded", "tiny_share", "counts_back", "km_off_grid", "km_risk_grows"],
)
def test_an_edited_summary_is_refused_by_its_content(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, country: str, edit: str
) -> None:
    cohort = tp.datasets.load_synthetic(country)
    d = tmp_path / "summary"
    grid = dc.Policy().grid(1500.0, "days")[2::3]
    dc.release(tp.TargetSummary.from_cohort(cohort, km_times=grid), d)
    path = d / "target_summary.json"
    data = json.loads(path.read_text())
    n = data["n"]
    if edit == "n_not_rounded":
        data["n"] = n + 1
    elif edit == "tiny_share":  # a level of one patient, and its level shares re-summed
        shares = data["covariates"]["sex"]["shares"]
        data["covariates"]["sex"]["shares"] = [1 - 1 / n, 1 / n] if len(shares) == 2 else shares
    elif edit == "counts_back":
        data["counts"] = [round(m * n) for m in data["mean"]]
    elif edit == "km_off_grid":
        data["km"]["time"][0] += 1.0
    else:  # a risk set that grows along the curve: one the gate never writes
        data["km"]["n_risk"][2] = data["km"]["n_risk"][1] + 5
    path.write_text(json.dumps(data, indent=2))
    rehash(d)
    with pytest.raises(tp.DisclosureError, match="release_counts") as err:
        dc.verify(d)
    print(f"{country}/{edit}: {err.value}")


def test_a_shipped_model_edited_to_carry_its_counts_is_refused(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    us = tp.datasets.load_synthetic("US")
    d = tmp_path / "model"
    dc.release(tp.ShippedModel.fit(us, "age + ecog"), d)
    path = d / "shipped_model.json"
    data = json.loads(path.read_text())
    data["level_counts"] = {"ecog": {"0": 5040.0, "1": 3641.0, "2+": 1319.0}}
    path.write_text(json.dumps(data, indent=2))
    rehash(d)
    with pytest.raises(tp.DisclosureError, match=r"'level_counts'.*release_counts") as err:
        tp.ShippedModel.from_release(d)
    print(err.value)


def release_of(kind: str, root: Path) -> tuple[Path, str]:
    """A release of ``kind`` (US source, JP target) and the file an attacker edits."""
    us, jp = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic("JP")
    d = root / kind
    if kind in ("TransportResult", "Weights"):
        res = tp.transport(us, jp, method="iow", times=[365.25])
        dc.release(res if kind == "TransportResult" else res.weights, d)
        return d, "transport_curves.csv" if kind == "TransportResult" else "weights.json"
    model = tp.ShippedModel.fit(us, "age + ecog")
    dc.release(model, root / "model")
    if kind == "ShippedModel":
        return root / "model", "shipped_model.json"
    shipped = tp.ShippedModel.from_release(root / "model")
    dc.release(shipped.apply(jp, times=[365.25]), d)
    return d, "shipped_curves.csv"


def bump_a_count(path: Path) -> None:
    """Add one patient to the first released count of the file."""
    if path.suffix == ".csv":
        frame = pl.read_csv(path)
        col = next(c for c in ("n_risk", "n_event") if c in frame.columns)
        first = frame[col].drop_nulls()[0]
        index = frame[col].to_list().index(first)
        frame = frame.with_columns(frame[col].scatter(index, first + 1))
        frame.write_csv(path)
        return
    data = json.loads(path.read_text())
    key = "n_source" if "n_source" in data else "n"
    data[key] = data[key] + 1
    path.write_text(json.dumps(data, indent=2))


def move_an_estimate(path: Path) -> None:
    if path.suffix == ".csv":
        frame = pl.read_csv(path)
        pl.DataFrame(frame.with_columns(pl.col("survival") * 0.999)).write_csv(path)
        return
    data = json.loads(path.read_text())
    if "coef" in data:
        data["coef"][0] += 1e-3
    else:
        data["ess"] += 0.1
    path.write_text(json.dumps(data, indent=2))


@pytest.mark.parametrize("kind", ["TransportResult", "Weights", "ShippedModel", "ShippedResult"])
def test_every_kind_of_release_edited_after_the_gate_is_refused(
    tmp_path: Path, keyed: pytest.MonkeyPatch, kind: str
) -> None:
    d, name = release_of(kind, tmp_path)
    assert dc.verify(d).signature == "valid"
    original = (d / name).read_bytes()
    bump_a_count(d / name)  # a count off the policy's lattice: refused by content
    rehash(d)
    keyed.delenv(manifests.KEY_ENV)
    with pytest.raises(tp.DisclosureError, match="release_counts") as err:
        dc.verify(d)
    print(f"{kind}: {err.value}")
    (d / name).write_bytes(original)
    move_an_estimate(d / name)  # an estimate moved, every count kept
    rehash(d)
    assert dc.verify(d).signature == "not checked"  # only the key tells this one
    keyed.setenv(manifests.KEY_ENV, KEY)
    with pytest.raises(tp.DisclosureError, match="release_signature"):
        dc.verify(d)


# -- class 8: fields the gate never writes, smuggled past an unkeyed verify ------------------
def cohort_of(frame: pl.DataFrame, name: str, covariates: list[str]) -> tp.Cohort:
    return tp.Cohort(frame, time="days", event="dead", covariates=covariates, name=name)


def _rows(frame: pl.DataFrame) -> str:
    return frame.head(40).write_csv()


def _edit_manifest(d: Path, change: Callable[[dict[str, Any]], None]) -> None:
    m = json.loads((d / "manifest.json").read_text())
    change(m)
    (d / "manifest.json").write_text(json.dumps(m, indent=2))


def _edit_json(d: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((d / name).read_text())
    change(data)
    (d / name).write_text(json.dumps(data, indent=2))


def _rename_covariate(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(s: dict[str, Any]) -> None:
        s["covariates"] = {(new if k == old else k): v for k, v in s["covariates"].items()}
        s["columns"] = [c.replace(old, new) for c in s["columns"]]
        s["formula"] = s["formula"].replace(old, new)
        if s.get("column_levels"):
            s["column_levels"] = [[[new if v == old else v, lv] for v, lv in pairs]
                                  for pairs in s["column_levels"]]  # fmt: skip

    return change


SMUGGLE = {
    # patient rows in a field of the manifest the gate writes as {name, version}
    "manifest_package_rows": (
        "curve",
        lambda d, f: _edit_manifest(d, lambda m: m["package"].update(rows=_rows(f))),
    ),
    # a column the gate never writes, one value per released row
    "curve_csv_patient_id": (
        "curve",
        lambda d, f: (
            pl.read_csv(d / "survival_curve.csv")
            .pipe(
                lambda c: c.with_columns(
                    pl.Series(
                        "patient_id",
                        [f"P{i:04d} age {a:.2f}" for i, a in enumerate(f["age"][: c.height])],
                    )
                )
            )
            .write_csv(d / "survival_curve.csv")
        ),
    ),
    # a key the gate never writes, holding the rows
    "curve_json_patients": (
        "curve",
        lambda d, f: _edit_json(
            d, "survival_curve.json", lambda j: j.update(patients=f.head(60).to_dicts())
        ),
    ),
    "summary_covariate_values": (
        "summary",
        lambda d, f: _edit_json(
            d,
            "target_summary.json",
            lambda j: j["covariates"]["age"].update(values=f["age"].to_list()),
        ),
    ),
    # a level the free_text_levels rule refuses at the gate
    "summary_free_text_level": (
        "summary",
        lambda d, f: _edit_json(
            d,
            "target_summary.json",
            lambda j: j["covariates"]["grp"].update(
                levels=["a", "b", "John Smith 943 476 5919 refused chemo"]
            ),
        ),
    ),
    # a covariate the forbidden_column rule refuses at the gate
    "summary_identifier_column": (
        "summary",
        lambda d, f: _edit_json(d, "target_summary.json", _rename_covariate("grp", "nhs_number")),
    ),
}


@pytest.mark.parametrize("edit", sorted(SMUGGLE))
def test_an_unkeyed_verify_refuses_what_the_gate_never_writes(
    edit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the red team: without the key, verify checked the manifest's own fields
    and the numbers under known count names, but not the released files' fields nor the
    rules that do not bear on counts. Forty patient rows in the manifest's ``package``, a
    ``patient_id`` column in the curve CSV, a ``patients`` key in its JSON, every age
    under a summary covariate, a free-text level, a covariate renamed ``nhs_number``:
    each passed ``transport release verify`` as "signature: not checked". Each is now
    refused by ``release_schema`` (with the gate's own name rule where one applies)."""
    monkeypatch.delenv(manifests.KEY_ENV, raising=False)
    monkeypatch.delenv("TRANSPORT_POLICY", raising=False)
    rng = np.random.default_rng(23)
    n = 300
    frame = pl.DataFrame({
        "days": rng.exponential(500, n).round() + 1, "dead": rng.integers(0, 2, n),
        "age": rng.normal(61, 9, n), "grp": rng.choice(["a", "b", "c"], n),
    })  # fmt: skip
    c = cohort_of(frame, "X", ["age", "grp"])
    kind, change = SMUGGLE[edit]
    obj = tp.kaplan_meier(c) if kind == "curve" else tp.TargetSummary.from_cohort(c)
    d = tmp_path / "release"
    dc.release(obj, d)
    change(d, frame)
    rehash(d)
    with pytest.raises(tp.DisclosureError, match="release_") as err:
        dc.verify(d)
    print(f"{edit}: {err.value}")


# The same channels in every other kind of release, from other cohorts: what each edit
# smuggles, and the text that must never appear in the refusal.
ROWS = "P0001,61.23,1,244\nP0002,73.90,0,1203\nP0003,58.41,1,87\n" * 14
NOTE = "John Smith 943 476 5919 refused chemo"


def _csv_column(name: str, column: str) -> Callable[[Path], None]:
    def change(d: Path) -> None:
        frame = pl.read_csv(d / name)
        values = [f"{ROWS[:30]} {i}" for i in range(frame.height)]
        frame.with_columns(pl.Series(column, values)).write_csv(d / name)

    return change


def _csv_cell(name: str, column: str, value: str) -> Callable[[Path], None]:
    def change(d: Path) -> None:
        frame = pl.read_csv(d / name)
        cells = frame[column].cast(pl.String).to_list()
        cells[0] = value
        frame.with_columns(pl.Series(column, cells)).write_csv(d / name)

    return change


def _json(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda d: _edit_json(d, name, change)


def _duplicate_key(name: str, key: str) -> Callable[[Path], None]:
    """The rows under a key written twice: a JSON reader keeps the second, the gate's."""

    def change(d: Path) -> None:
        text = (d / name).read_text()
        (d / name).write_text(text.replace(f'\n  "{key}":', f'\n  "{key}": {json.dumps(ROWS)},'
                                           f'\n  "{key}":', 1))  # fmt: skip

    return change


def _levels(data: dict[str, Any]) -> None:
    var = next(iter(data["design"]["levels"]))
    data["design"]["levels"][var] = [*data["design"]["levels"][var][:-1], NOTE]


OTHER_SMUGGLE: dict[str, tuple[str, Callable[[Path], None], str]] = {
    # (kind released, the edit, the rule the refusal must name)
    "result_summary_column": (
        "TransportResult", _csv_column("transport_summary.csv", "notes"), "release_schema"),
    "result_json_rows": (
        "TransportResult", _json("transport_result.json", lambda j: j.update(rows=ROWS)),
        "release_schema"),
    "result_ci_method_rows": (
        "TransportResult", _csv_cell("transport_summary.csv", "ci_method", ROWS),
        "release_schema"),
    "result_curve_label": (
        "TransportResult", _csv_cell("transport_curves.csv", "curve", NOTE), "release_schema"),
    "weights_identifier_row": (
        "Weights", _csv_cell("weights_balance.csv", "covariate", "patient_id"),
        "forbidden_column"),
    "weights_extreme_quantile": (  # the smallest weight, which the gate withholds
        "Weights",
        _json("weights.json", lambda j: j["normalised_weight_quantiles"].update(q00=0.0123)),
        "release_schema"),
    "model_design_rows": (
        "ShippedModel", _json("shipped_model.json", lambda j: j["design"].update(rows=ROWS)),
        "release_schema"),
    "model_free_text_level": (
        "ShippedModel", _json("shipped_model.json", _levels), "free_text_levels"),
    "model_duplicate_key": (
        "ShippedModel", _duplicate_key("shipped_model.json", "source"), "release_schema"),
    "model_number_as_text": (
        "ShippedModel", _json("shipped_model.json", lambda j: j["coef"].__setitem__(0, ROWS)),
        "release_schema"),
    "model_coef_csv_column": (
        "ShippedModel", _csv_column("shipped_model_coef.csv", "patient"), "release_schema"),
    "shipped_curves_column": (
        "ShippedResult", _csv_column("shipped_curves.csv", "mrn"), "release_schema"),
    "shipped_json_rows": (
        "ShippedResult", _json("shipped_result.json", lambda j: j.update(patients=ROWS)),
        "release_schema"),
    "manifest_why_rows": (
        "ShippedResult",
        lambda d: _edit_manifest(d, lambda m: m["suppressed"][0].update(why=ROWS)),
        "release_schema"),
    "manifest_policy_name_rows": (
        "Weights", lambda d: _edit_manifest(d, lambda m: m["policy"].update(name=ROWS)),
        "release_manifest"),
}  # fmt: skip


@pytest.fixture(scope="module", params=["JP", "DE"])
def releases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One release of every kind (US source, a ``params`` target), the gate's defaults."""
    root = tmp_path_factory.mktemp(f"releases-{request.param}")
    us, target = tp.datasets.load_synthetic("US"), tp.datasets.load_synthetic(request.param)
    res = tp.transport(us, target, method="aipw", times=[365.25, 730.5], tau=730.5,
                       margin=0.05)  # fmt: skip
    dc.release(res, root / "TransportResult")
    dc.release(res.weights, root / "Weights")
    model = tp.ShippedModel.fit(us, "age + sex + ecog", n_boot=4, seed=3)
    dc.release(model, root / "ShippedModel")
    shipped = tp.ShippedModel.from_release(root / "ShippedModel")
    dc.release(shipped.apply(target, times=[365.25], seed=4), root / "ShippedResult")
    return root


@pytest.mark.parametrize("edit", sorted(OTHER_SMUGGLE))
def test_no_kind_of_release_carries_what_the_gate_never_writes(
    edit: str, releases: Path, tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    """The red team's channels in the other kinds of release: a column, a key or a
    duplicate key holding rows, rows in a note the gate writes (``ci_method``, a withheld
    item's ``why``, the policy's name), an identifier as a balance row, a free-text level
    in a shipped design, a quantile the gate withholds. Each is refused naming the file,
    the key or column and the rule, never the smuggled text."""
    kind, change, rule = OTHER_SMUGGLE[edit]
    d = tmp_path / kind
    shutil.copytree(releases / kind, d)
    assert dc.verify(d).signature == "not checked"  # the gate's own release passes
    change(d)
    rehash(d)
    with pytest.raises(tp.DisclosureError, match=rule) as err:
        dc.verify(d)
    text = str(err.value)
    print(f"{edit}: {text}")
    assert "release_" in text
    for secret in ("P0001", "61.23", "John Smith", "5919"):
        assert secret not in text


def test_the_gate_checks_what_it_writes_against_the_same_table(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    """The table of layouts is the gate's as well as verification's: every kind the gate
    releases has its entry, and a handler that wrote a key, a column or a file the table
    does not list would fail at write time (nothing written), not at the reader's."""
    assert {kind for kind, _ in HANDLERS.values()} == set(FILE_SCHEMAS) == set(RELEASE_FILES)
    cohort = tp.datasets.load_synthetic("UK")
    for extra in ("key", "column"):
        record = Release(dc.Policy(), "SurvivalCurve", "UK")
        release_curve(tp.kaplan_meier(cohort), dc.Policy(), record)
        if extra == "key":
            info = json.loads(record.files["survival_curve.json"])
            record.add_json("survival_curve.json", {**info, "median": 1.0})
        else:
            frame = pl.read_csv(io.BytesIO(record.files["survival_curve.csv"]))
            record.add_csv("survival_curve.csv", frame.with_columns(pl.lit(1.0).alias("x")))
        with pytest.raises(RuntimeError, match="FILE_SCHEMAS"):
            record.write(tmp_path / extra, overwrite=False)
        assert not (tmp_path / extra).exists()


def test_a_plan_reads_a_summary_release_only_once_verified(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    from transport.cli.plan import load_cohort

    d = tmp_path / "jp-release"
    dc.release(tp.TargetSummary.from_cohort(tp.datasets.load_synthetic("JP")), d)
    assert load_cohort("JP", {"summary": str(d)}).n == 800
    path = d / "target_summary.json"
    data = json.loads(path.read_text())
    data["covariates"]["ecog"]["shares"][2] = 3 / 800  # three patients' level
    path.write_text(json.dumps(data, indent=2))
    rehash(d)
    for spec in (str(d), str(path)):
        with pytest.raises(tp.DisclosureError, match="release_counts"):
            load_cohort("JP", {"summary": spec})


# -- class 8: paths outside the directory, symbolic links, unlisted files ------------------
@pytest.mark.parametrize("country", ["US", "DE"])
@pytest.mark.parametrize("where", ["parent", "absolute", "dotted", "symlink", "symlink_manifest"])
def test_entries_outside_the_directory_and_symlinks_are_refused(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, country: str, where: str
) -> None:
    d = released_curve(tmp_path, country, dc.Policy())
    outside = tmp_path / "outside.csv"
    outside.write_text("patient_id,os_days\nP1,412\n")  # rows the attacker smuggles out
    manifest = read_manifest(d)
    if where == "symlink":  # a listed file replaced by a link to the rows
        (d / "survival_curve.csv").unlink()
        (d / "survival_curve.csv").symlink_to(outside)
        rehash(d)
    elif where == "symlink_manifest":  # the manifest read from elsewhere
        copy = tmp_path / "copy.json"
        copy.write_text((d / "manifest.json").read_text())
        (d / "manifest.json").unlink()
        (d / "manifest.json").symlink_to(copy)
    else:
        name = {
            "parent": "../outside.csv",
            "absolute": str(outside),
            "dotted": "./../outside.csv",
        }[where]
        manifest["files"].append(manifests.entry(name, outside.read_bytes()))
        write_manifest(d, manifest)
    with pytest.raises(tp.DisclosureError, match="release_path") as err:
        dc.verify(d)
    print(f"{country}/{where}: {err.value}")


def test_a_file_added_with_its_manifest_row_is_refused(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    d = released_curve(tmp_path, "JP", dc.Policy())
    (d / "patients.csv").write_text("patient_id,os_days\nP1,412\n")
    manifest = read_manifest(d)
    manifest["files"].append(manifests.entry("patients.csv", (d / "patients.csv").read_bytes()))
    write_manifest(d, manifest)
    with pytest.raises(tp.DisclosureError, match="release_manifest") as err:
        dc.verify(d)
    print(err.value)


@pytest.mark.parametrize(
    "damage",
    ["no_files", "no_sha256", "no_policy", "extra_field", "not_json", "duplicate", "no_rule"],
)
def test_a_malformed_manifest_is_refused_naming_what_is_missing(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, damage: str
) -> None:
    d = released_curve(tmp_path, "UK", dc.Policy())
    manifest = read_manifest(d)
    named = {
        "no_files": "files",
        "no_sha256": "sha256",
        "no_policy": "policy",
        "extra_field": "approved_by",
        "not_json": "not JSON",
        "duplicate": "twice",
        "no_rule": "rule",
    }[damage]
    if damage == "no_files":
        del manifest["files"]
    elif damage == "no_sha256":
        del manifest["files"][0]["sha256"]
    elif damage == "no_policy":
        del manifest["policy"]
    elif damage == "extra_field":
        manifest["approved_by"] = "output checker"
    elif damage == "duplicate":
        manifest["files"].append(manifest["files"][0])
    elif damage == "no_rule":
        del manifest["suppressed"][0]["rule"]
    write_manifest(d, manifest)
    if damage == "not_json":
        (d / "manifest.json").write_text("{not json")
    with pytest.raises(tp.DisclosureError, match=named):
        dc.verify(d)


# -- class 8: the manifest's policy and suppression list ------------------------------------
@pytest.mark.parametrize("country", COUNTRIES)
def test_a_manifest_policy_loosened_to_min_cell_1_is_refused_when_signed(
    tmp_path: Path, keyed: pytest.MonkeyPatch, country: str
) -> None:
    d = released_curve(tmp_path, country, dc.Policy())
    manifest = read_manifest(d)
    manifest["policy"]["min_cell"] = 1
    write_manifest(d, manifest)
    with pytest.raises(tp.DisclosureError, match="release_signature"):
        dc.verify(d)
    # without the key, the environment's policy floor still refuses it
    keyed.delenv(manifests.KEY_ENV)
    floor = tmp_path / "floor.toml"
    floor.write_text("[disclosure]\nmin_cell = 10\n")
    keyed.setenv("TRANSPORT_POLICY", str(floor))
    with pytest.raises(tp.DisclosureError, match=r"min_cell \(floor 10, got 1\).*policy_floor"):
        dc.verify(d)


@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize("edit", ["drop", "reword", "rename_rule"])
def test_an_edited_suppression_list_is_refused_when_signed(
    tmp_path: Path, keyed: pytest.MonkeyPatch, country: str, edit: str
) -> None:
    d = released_curve(tmp_path, country, dc.Policy())
    manifest = read_manifest(d)
    assert manifest["suppressed"], "the curve withholds its late steps"
    first = manifest["suppressed"][0]
    if edit == "drop":
        manifest["suppressed"] = manifest["suppressed"][1:]
    elif edit == "reword":
        first["why"] = "nothing was withheld here"
    else:
        first["rule"] = "round_to"  # a known rule, so only the signature tells
    write_manifest(d, manifest)
    with pytest.raises(tp.DisclosureError, match="release_signature"):
        dc.verify(d)


def test_a_suppression_list_naming_an_unknown_rule_is_refused_without_a_key(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    d = released_curve(tmp_path, "DE", dc.Policy())
    manifest = read_manifest(d)
    manifest["suppressed"][0]["rule"] = "approved"
    write_manifest(d, manifest)
    with pytest.raises(tp.DisclosureError, match="unknown rule 'approved'"):
        dc.verify(d)


# -- class 8: the key ------------------------------------------------------------------------
def test_the_key_is_checked_never_shown_and_a_wrong_one_refused(
    tmp_path: Path, keyed: pytest.MonkeyPatch
) -> None:
    d = released_curve(tmp_path, "JP", dc.Policy())
    manifest = read_manifest(d)
    assert manifest["signature"]["algorithm"] == "hmac-sha256"
    key_file = tmp_path / "tre.key"
    key_file.write_text(KEY + "\n")
    ok = cli("release", "verify", str(d), "--key-file", str(key_file))
    assert ok.returncode == 0 and "signature: valid" in ok.stdout, ok.stderr
    other = tmp_path / "other.key"
    other.write_text("a-different-environment-key-456\n")
    bad = cli("release", "verify", str(d), "--key-file", str(other))
    assert bad.returncode == 2 and "release_signature" in bad.stderr
    plain = cli("release", "verify", str(d), **{manifests.KEY_ENV: ""})
    assert plain.returncode == 2 and "fewer than 16" in plain.stderr  # an empty key
    env = {k: v for k, v in os.environ.items() if k != manifests.KEY_ENV}
    unsigned = subprocess.run(
        [sys.executable, "-m", "transport.cli", "release", "verify", str(d)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert unsigned.returncode == 0 and "signature: not checked" in unsigned.stdout
    shown = "".join(p.read_text() for p in d.iterdir())
    for out in (ok, bad, plain, unsigned):
        shown += out.stdout + out.stderr
    assert KEY not in shown and "a-different-environment-key" not in shown
    short = tmp_path / "short.key"
    short.write_text("tiny")
    with pytest.raises(tp.DisclosureError, match="4 bytes, fewer than 16"):
        dc.release(tp.kaplan_meier(tp.datasets.load_synthetic("JP")), tmp_path / "s",
                   dc.Policy(signing_key_file=str(short)))  # fmt: skip
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_the_policy_key_file_signs_and_the_floor_names_it_for_verify(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "tre.key"
    key_file.write_bytes(KEY.encode())
    floor = tmp_path / "floor.toml"
    floor.write_text(f'[disclosure]\nsigning_key_file = "{key_file}"\nname = "TRE"\n')
    unkeyed.setenv("TRANSPORT_POLICY", str(floor))
    d = tmp_path / "r"
    dc.release(tp.kaplan_meier(tp.datasets.load_synthetic("UK")), d)  # the floor's policy
    assert read_manifest(d)["policy"]["name"] == "TRE"
    assert dc.verify(d).signature == "valid"
    append_row(d)
    with pytest.raises(tp.DisclosureError, match="release_signature"):
        dc.verify(d)


# -- class 9: the environment's policy is a floor ---------------------------------------------
LOOSER = {
    "min_cell": {"min_cell": 1, "round_to": 1},
    "round_to": {"round_to": 7},
    "min_km_step": {"min_km_step": 2},
    "min_residual_df": {"min_residual_df": 1},
    "km_grid_step": {"km_grid_step": 7.0},
    "time_unit": {"time_unit": "weeks"},
    "forbidden_roles": {"forbidden_roles": ["identifier"]},
    "forbidden_names": {"forbidden_names": []},
}


FLOOR = dc.Policy(forbidden_names=("hospno",), name="TRE")


FLOOR_CASES = [
    (floor_from, field)
    for floor_from in ("environment", "argument", "defaults")
    for field in sorted(LOOSER)
    if (floor_from, field) != ("defaults", "forbidden_names")  # the defaults name none
]


@pytest.mark.parametrize(("floor_from", "field"), FLOOR_CASES)
def test_a_plan_cannot_loosen_the_floor(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, field: str, floor_from: str
) -> None:
    path = tmp_path / "floor.toml"
    path.write_text('[disclosure]\nforbidden_names = ["hospno"]\nname = "TRE"\n')
    if floor_from == "environment":
        unkeyed.setenv("TRANSPORT_POLICY", str(path))
    given = FLOOR if floor_from == "argument" else None
    with pytest.raises(tp.DisclosureError, match="policy_floor") as err:
        policy_from_plan({"disclosure": dict(LOOSER[field])}, given)
    assert f"{field} (floor" in str(err.value) or f"{field} " in str(err.value)
    print(f"{floor_from}/{field}: {err.value}")
    plan_file = tmp_path / "plan-policy.toml"  # the plan's policy = FILE form likewise
    plan_file.write_text(
        "[disclosure]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in LOOSER[field].items())
    )
    with pytest.raises(tp.DisclosureError, match="policy_floor"):
        policy_from_plan({"disclosure": {"policy": str(plan_file)}}, given)


def test_a_plan_with_min_cell_1_is_refused_by_the_command(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[cohorts.US]\ndataset = "synthetic:US"\n[cohorts.JP]\ndataset = "synthetic:JP"\n'
        '[analysis]\nsource = "US"\ntargets = ["JP"]\nmethods = ["iow"]\ntimes = [365.25]\n'
        "[disclosure]\nmin_cell = 1\nround_to = 1\n"
    )
    out = tmp_path / "out"
    res = cli("run", str(plan), "--out", str(out), "--quiet", "--no-figures")
    assert res.returncode == 2, res.stdout
    assert "min_cell (floor 10, got 1)" in res.stderr and "round_to (floor 5, got 1)" in res.stderr
    assert not out.exists()  # refused before anything ran or was released
    floor = tmp_path / "floor.toml"
    floor.write_text("[disclosure]\nmin_cell = 30\n")
    plan.write_text(plan.read_text().replace("min_cell = 1\nround_to = 1", "min_cell = 20"))
    res = cli("run", str(plan), "--out", str(out), "--policy", str(floor), "--quiet")
    assert res.returncode == 2 and "min_cell (floor 30, got 20)" in res.stderr


def test_a_plan_that_tightens_the_floor_is_used(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch
) -> None:
    """Not an attack (it passes on the landed code too): the floor does not stop a plan
    from being stricter, and the stricter policy is the one released under."""
    floor = tmp_path / "floor.toml"
    floor.write_text('[disclosure]\nmin_cell = 15\nname = "TRE"\n')
    unkeyed.setenv("TRANSPORT_POLICY", str(floor))
    plan = {"disclosure": {"min_cell": 20, "round_to": 10, "km_grid_step": 3.0,
                           "time_unit": "months", "name": "plan"}}  # fmt: skip
    policy = policy_from_plan(plan)
    assert (policy.min_cell, policy.round_to, policy.name) == (20, 10, "plan")
    d = tmp_path / "r"
    dc.release(tp.kaplan_meier(tp.datasets.load_synthetic("DE")), d, policy)
    curve = pl.read_csv(d / "survival_curve.csv")
    assert (curve["n_risk"] % 10 == 0).all() and (curve["n_risk"] >= 20).all()
    assert dc.verify(d)["policy"]["min_cell"] == 20


@pytest.mark.parametrize("country", COUNTRIES)
@pytest.mark.parametrize(
    "loose",
    [dc.Policy(min_cell=1), dc.Policy(round_to=1), dc.Policy(forbidden_roles=("identifier",))],
    ids=["min_cell", "round_to", "forbidden_roles"],
)
def test_release_refuses_a_policy_looser_than_the_environment(
    tmp_path: Path, unkeyed: pytest.MonkeyPatch, country: str, loose: dc.Policy
) -> None:
    floor = tmp_path / "floor.toml"
    floor.write_text('[disclosure]\nname = "TRE"\n')
    unkeyed.setenv("TRANSPORT_POLICY", str(floor))
    curve = tp.kaplan_meier(tp.datasets.load_synthetic(country))
    with pytest.raises(tp.DisclosureError, match="policy_floor") as err:
        dc.release(curve, tmp_path / "r", loose)
    print(f"{country}: {err.value}")
    assert not (tmp_path / "r").exists()
    dc.release(curve, tmp_path / "ok")  # no policy: the environment's
    assert read_manifest(tmp_path / "ok")["policy"]["name"] == "TRE"


# -- guards: every rule has a name, every policy field a direction ---------------------------
def _withheld_rules() -> set[str]:
    """The rule names the package passes to withhold(item, rule, why) as literals."""
    found = set()
    for path in (Path(tp.__file__).parent).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and len(node.args) >= 2:
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                arg = node.args[1]
                if name == "withhold" and isinstance(arg, ast.Constant):
                    found.add(str(arg.value))
    return found


def test_every_withheld_rule_and_policy_field_is_known() -> None:
    assert _withheld_rules() and _withheld_rules() <= set(RULES)
    assert set(dc.Policy.__dataclass_fields__) <= set(TIGHTER)
