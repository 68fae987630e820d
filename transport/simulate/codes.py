"""The covariates of the synthetic cohorts: their labels, the integer codes the
simulation draws (:func:`~transport.simulate.sample_covariates`) and the two ways between
codes and the labelled columns of the shipped cohorts."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = [
    "AGE_MAX",
    "AGE_MIN",
    "CODE_RANGES",
    "ECOG",
    "REGIMENS",
    "SMOKING",
    "STAGES",
    "covariate_codes",
    "covariate_frame",
]

SMOKING: tuple[str, ...] = ("never", "former", "current")
ECOG: tuple[str, ...] = ("0", "1", "2+")
STAGES: tuple[str, ...] = ("I-II", "III", "IV")
REGIMENS: tuple[str, ...] = ("chemo", "io", "chemo-io", "targeted")
AGE_MIN, AGE_MAX = 35, 90
#: The codes of each covariate of :func:`sample_covariates`, lowest and highest.
CODE_RANGES: dict[str, tuple[int, int]] = {
    "age": (AGE_MIN, AGE_MAX),
    **dict.fromkeys(("female", "squamous", "driver", "pdl1"), (0, 1)),
    "smoking": (0, len(SMOKING) - 1),
    "ecog": (0, len(ECOG) - 1),
    "stage": (0, len(STAGES) - 1),
    "regimen": (0, len(REGIMENS) - 1),
}


def covariate_frame(cov: dict[str, np.ndarray]) -> dict[str, list[str] | np.ndarray]:
    """Integer codes to the labelled columns of the shipped cohorts."""
    return {
        "age": cov["age"].astype(np.int64),
        "sex": np.where(cov["female"] == 1, "female", "male"),
        "ecog": np.asarray(ECOG)[cov["ecog"]],
        "stage": np.asarray(STAGES)[cov["stage"]],
        "histology": np.where(cov["squamous"] == 1, "squamous", "non-squamous"),
        "smoking": np.asarray(SMOKING)[cov["smoking"]],
        "egfr_alk": np.where(cov["driver"] == 1, "positive", "negative"),
        "pdl1": np.where(cov["pdl1"] == 1, ">=50%", "<50%"),
        "regimen": np.asarray(REGIMENS)[cov["regimen"]],
    }


def covariate_codes(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Labelled covariate columns (as in the shipped cohorts) back to integer codes."""

    def index(col: str, labels: tuple[str, ...]) -> np.ndarray:
        values = frame[col].to_numpy()
        out = np.full(values.size, -1, dtype=np.int64)
        for k, label in enumerate(labels):
            out[values == label] = k
        if np.any(out < 0):
            raise ValueError(f"column {col!r} has values outside {list(labels)}")
        return out

    return {
        "age": frame["age"].to_numpy().astype(np.int64),
        "female": index("sex", ("male", "female")),
        "smoking": index("smoking", SMOKING),
        "squamous": index("histology", ("non-squamous", "squamous")),
        "driver": index("egfr_alk", ("negative", "positive")),
        "pdl1": index("pdl1", ("<50%", ">=50%")),
        "ecog": index("ecog", ECOG),
        "stage": index("stage", STAGES),
        "regimen": index("regimen", REGIMENS),
    }
