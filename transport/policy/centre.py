"""The centre of a released Cox model on a lattice (rule ``centre_lattice``).

A Cox model's baseline is given for covariates equal to a reference point, its
``center``; the fit uses the design columns' means, which are exact statistics of the
source's rows. Two releases whose sources differ by one patient (a cohort before and
after a patient joined, ``n`` released as the same rounded count) give that patient's
design row as ``c_a + (n + 1)(c_b - c_a)``: an independent red team read age and sex
back to the printed digit. Any reference point serves the baseline, so the gate
releases the means rounded to a lattice, and the baseline moved to it, with the same
predictions: ``H0'(t) = H0(t) exp(beta' (c' - c))`` (each bootstrap refit's baseline
with its own coefficients).

The lattice of column ``j`` is the largest power of ten at most the column's source SD
(a tenth of it or more; the SD itself is never released, its power of ten is). One
patient moves a mean by at most ``|x - c| / (n + 1)``, a fraction of that unit, so two
releases one patient apart give the same centre but for a crossing of a lattice point,
which happens about once in ``(n + 1) unit / |x - c|`` and tells then only on which side
the patient lies (a rare level's dummy, whose mean is small but whose SD is not, is as
coarse as a common one's). The centre is a few tenths of an SD from the mean at most, so
``exp((x - c') beta)`` stays as well scaled as with the mean.

Known limits: the other numbers of the two models (coefficients and their covariance,
the baseline at every released grid time) are exact and differ by the patient's
influence: see docs/disclosure.md, "Residual risks".
"""

from __future__ import annotations

import numpy as np

from transport.exceptions import DisclosureError

__all__ = ["centre_on_lattice", "lattice_unit"]


def lattice_unit(scale: np.ndarray) -> np.ndarray:
    """Per column, the largest power of ten at most its SD ``scale`` (1 where the SD is
    not a positive finite number: a constant column, which no fitted model has)."""
    scale = np.asarray(scale, dtype=np.float64)
    ok = np.isfinite(scale) & (scale > 0)
    power = np.floor(np.log10(np.where(ok, scale, 1.0)))
    return np.asarray(np.where(ok, 10.0**power, 1.0), dtype=np.float64)


def centre_on_lattice(center: np.ndarray, scale: np.ndarray | None, where: str) -> np.ndarray:
    """The released Cox centre (``centre_lattice``): each column's mean ``center``
    rounded to :func:`lattice_unit` of its SD ``scale``. A model without its columns'
    SDs (one not fitted by :meth:`~transport.ShippedModel.fit`) is refused."""
    if scale is None:
        raise DisclosureError(
            f"the {where} carries no SDs of its design columns, so its centre, the exact "
            "means of its columns, cannot be put on a lattice (rule: centre_lattice); fit "
            "it with ShippedModel.fit inside the source's environment"
        )
    unit = lattice_unit(scale)
    return np.asarray(unit * np.round(np.asarray(center, dtype=np.float64) / unit) + 0.0)
