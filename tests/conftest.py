from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import transport as tp

TESTS = Path(__file__).resolve().parent
R_DIR = TESTS / "r"
HAS_R = shutil.which("Rscript") is not None
_R_PACKAGE = re.compile(
    r"(?:library|require|requireNamespace)\(\s*['\"]?([A-Za-z][A-Za-z0-9.]*)|([A-Za-z][A-Za-z0-9.]*)::"
)


def r_packages(script: str) -> frozenset[str]:
    """The R packages ``tests/r/<script>`` loads (library, require, pkg::)."""
    text = (R_DIR / script).read_text()
    return frozenset(a or b for a, b in _R_PACKAGE.findall(text)) - {"base", "stats", "utils"}


@functools.cache
def _r_has(packages: frozenset[str]) -> bool:
    if not HAS_R:
        return False
    names = ", ".join(f'"{p}"' for p in sorted(packages))
    check = f"quit(status = !all(sapply(c({names}), requireNamespace, quietly = TRUE)))"
    done = subprocess.run(["Rscript", "-e", check or "quit()"], capture_output=True, timeout=120)
    return done.returncode == 0


def needs_r(*scripts: str) -> pytest.MarkDecorator:
    """Skip unless Rscript and every R package the ``scripts`` load are installed (a
    machine with R but without, say, ``sandwich`` skips the pwexp test, not fails it)."""
    packages = frozenset().union(*(r_packages(s) for s in scripts))
    return pytest.mark.skipif(
        not _r_has(packages),
        reason="Rscript not installed"
        if not HAS_R
        else f"R package(s) among {sorted(packages)} not installed",
    )


def load_case(case: str) -> tuple[pl.DataFrame, dict]:
    """A reference case: its data and its manifest row (see tests/r/make_km_cases.py)."""
    manifest = pl.read_csv(R_DIR / "km_cases.csv", infer_schema=False)
    row = manifest.filter(pl.col("case") == case).row(0, named=True)
    row["times"] = [float(x) for x in row["times"].split(";")]
    row["taus"] = [float(x) for x in row["taus"].split(";")]
    row["has_entry"] = row["has_entry"] == "1"
    data = pl.read_csv(R_DIR / "data" / f"{case}.csv")
    return data, row


def case_curve(case: str, conf_type: str = "log-log") -> tp.SurvivalCurve:
    data, row = load_case(case)
    cohort = tp.Cohort(
        data, time="time", event="event", entry="entry" if row["has_entry"] else None, name=case
    )
    if row["weight_type"] == "none":
        return tp.kaplan_meier(cohort, conf_type=conf_type)
    return tp.kaplan_meier(
        cohort,
        weights=data["weight"].to_numpy(),
        conf_type=conf_type,
        weight_type=row["weight_type"],
    )


def r_name(column: str) -> str:
    """formulaic's design column 'sex[T.female]' is R's 'sexfemale'."""
    return re.sub(r"\[T\.([^\]]*)\]", r"\1", column)


def read_levelled(name: str) -> pl.DataFrame:
    """A CSV of tests/r/data with the synthetic cohorts' levels (tp.datasets.LEVELS)."""
    frame = pl.read_csv(R_DIR / "data" / name, schema_overrides={"ecog": pl.String})
    return frame.with_columns(
        [pl.col(c).cast(pl.Enum(list(lv))) for c, lv in tp.datasets.LEVELS.items()]
    )


@pytest.fixture
def small_frame() -> pl.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    age = rng.normal(65, 9, n)
    ecog = rng.choice(["0", "1", "2"], n, p=[0.4, 0.45, 0.15])
    t = rng.weibull(1.2, n) * 400 * np.exp(-0.02 * (age - 65))
    c = rng.uniform(50, 900, n)
    return pl.DataFrame(
        {
            "pid": np.arange(n),
            "os_days": np.round(np.minimum(t, c), 0) + 1,
            "death": (t <= c).astype(int),
            "age": age,
            "ecog": ecog,
            "female": rng.integers(0, 2, n).astype(bool),
        }
    )
