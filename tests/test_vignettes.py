"""The vignettes run as plain scripts and write their figures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

VIGNETTES = Path(__file__).resolve().parent.parent / "vignettes"


@pytest.mark.parametrize("name", ["01_getting_started.py"])
def test_vignette_runs(name: str, tmp_path: Path) -> None:
    shutil.copy(VIGNETTES / name, tmp_path / name)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = subprocess.run(
        [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures == ["01_km.png", "01_km_by_ecog.png"]
    assert "median OS" in out.stdout and "patient_id" not in out.stdout
