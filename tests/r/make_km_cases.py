"""Deterministic generator of the Kaplan–Meier reference cases read by km_reference.R.

Run from the project root (``make r-reference`` does both steps):

    .venv/bin/python tests/r/make_km_cases.py
    Rscript tests/r/km_reference.R tests/r

Writes ``tests/r/data/<case>.csv`` (columns time, event, weight, entry; weight 1 and
entry 0 where a case does not use them) and ``tests/r/km_cases.csv`` (the manifest:
which columns each case uses, the times and RMST horizons to report). Floats are written
with 17 significant digits so R reads exactly the same numbers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20261122


def _case_rows() -> dict[str, dict]:
    rng = np.random.default_rng(SEED)
    cases: dict[str, dict] = {}

    def add(name, time, event, *, weight=None, entry=None, weight_type="none", times, taus):
        n = len(time)
        cases[name] = {
            "time": np.asarray(time, float),
            "event": np.asarray(event, int),
            "weight": np.ones(n) if weight is None else np.asarray(weight, float),
            "entry": np.zeros(n) if entry is None else np.asarray(entry, float),
            "weight_type": weight_type,
            "has_entry": entry is not None,
            "times": times,
            "taus": taus,
        }

    # 1. continuous times, no ties
    n = 60
    t = rng.exponential(12.0, n)
    c = rng.uniform(2.0, 40.0, n)
    add(
        "no_ties",
        np.minimum(t, c),
        (t <= c).astype(int),
        times=[0.0, 1.0, 5.5, 10.0, 20.0, 60.0],
        taus=[6.0, 15.0, 30.0],
    )
    # 2. heavy ties: integer months 1..12, many events and censorings at the same time
    n = 200
    t = np.ceil(rng.exponential(6.0, n)).clip(1, 12)
    c = rng.integers(1, 13, n).astype(float)
    add(
        "heavy_ties",
        np.minimum(t, c),
        (t <= c).astype(int),
        times=[0.5, 1.0, 3.0, 6.0, 12.0, 13.0],
        taus=[3.0, 9.5, 12.0],
    )
    # 3. non-integer (sampling) weights with ties
    n = 150
    t = np.round(rng.weibull(1.3, n) * 20.0, 1)
    c = np.round(rng.uniform(1.0, 45.0, n), 1)
    w = rng.uniform(0.2, 3.0, n)
    add(
        "weights",
        np.minimum(t, c),
        (t <= c).astype(int),
        weight=w,
        weight_type="sampling",
        times=[0.0, 2.0, 10.0, 17.3, 30.0, 50.0],
        taus=[5.0, 20.0, 40.0],
    )
    # 4. integer frequency weights (also checked against the replicated rows)
    n = 80
    t = np.round(rng.exponential(10.0, n), 0) + 1
    c = np.round(rng.uniform(1.0, 30.0, n), 0) + 1
    w = rng.integers(1, 5, n).astype(float)
    add(
        "frequency_weights",
        np.minimum(t, c),
        (t <= c).astype(int),
        weight=w,
        weight_type="frequency",
        times=[1.0, 4.0, 8.0, 16.0, 40.0],
        taus=[8.0, 20.0],
    )
    # 5. delayed entry (left truncation), unweighted
    n = 120
    a = rng.uniform(0.0, 10.0, n) * (rng.uniform(size=n) < 0.6)
    t = a + rng.exponential(15.0, n) + 0.01
    c = a + rng.uniform(1.0, 40.0, n)
    add(
        "delayed_entry",
        np.round(np.minimum(t, c), 2),
        (t <= c).astype(int),
        entry=np.round(a, 2),
        times=[0.5, 3.0, 10.0, 20.0, 50.0],
        taus=[10.0, 25.0],
    )
    # 6. delayed entry with sampling weights
    w = rng.uniform(0.3, 2.5, n)
    add(
        "delayed_entry_weights",
        cases["delayed_entry"]["time"],
        cases["delayed_entry"]["event"],
        entry=cases["delayed_entry"]["entry"],
        weight=w,
        weight_type="sampling",
        times=[0.5, 3.0, 10.0, 20.0, 50.0],
        taus=[10.0, 25.0],
    )
    # 7. a curve that never reaches 0.5 (heavy early censoring), unweighted and weighted
    n = 100
    t = rng.exponential(100.0, n)
    c = rng.uniform(1.0, 30.0, n)
    tt, ee = np.round(np.minimum(t, c), 3), (t <= c).astype(int)
    add("never_half", tt, ee, times=[1.0, 10.0, 29.0], taus=[20.0])
    add(
        "never_half_weights",
        tt,
        ee,
        weight=rng.uniform(0.5, 2.0, n),
        weight_type="sampling",
        times=[1.0, 10.0, 29.0],
        taus=[20.0],
    )
    # 8. a single event among censorings
    add(
        "single_event",
        [3.0, 5.0, 7.0, 8.0, 10.0, 11.0],
        [0, 1, 0, 0, 0, 0],
        times=[1.0, 5.0, 20.0],
        taus=[9.0],
    )
    # 9. all events at one time, censorings before and after it
    add(
        "events_one_time",
        [2.0, 4.0, 6.0, 6.0, 6.0, 6.0, 8.0, 9.0, 12.0, 15.0],
        [0, 0, 1, 1, 1, 1, 0, 0, 0, 0],
        times=[1.0, 6.0, 10.0],
        taus=[10.0],
    )
    # 10. S reaches 0.5 exactly (midpoint rule for the median), ending with S = 0
    add(
        "exact_half",
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
        [1] * 10,
        times=[0.0, 5.0, 5.5, 10.0, 11.0],
        taus=[7.5, 12.0],
    )
    # 11. near-identical float times (snapped as aeqSurv does), with weights
    base = np.round(rng.uniform(1.0, 20.0, 40), 1)
    jitter = np.where(rng.uniform(size=40) < 0.5, 1e-10 * rng.uniform(size=40), 0.0)
    add(
        "near_ties",
        base + jitter,
        (rng.uniform(size=40) < 0.7).astype(int),
        weight=rng.uniform(0.5, 1.5, 40),
        weight_type="sampling",
        times=[2.0, 8.0, 15.0],
        taus=[10.0],
    )
    # 12. all remaining patients die at the last time (S = 0), weighted
    add(
        "ends_at_zero",
        [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 6.0, 6.0],
        [1, 0, 1, 1, 0, 1, 0, 1, 1],
        weight=[1.2, 0.7, 1.0, 2.2, 0.4, 1.1, 0.9, 1.5, 0.8],
        weight_type="sampling",
        times=[0.0, 3.0, 6.0, 7.0],
        taus=[5.0, 8.0],
    )
    # 13. a log band that is not monotone (unweighted): the upper band dips below 0.75
    #     at t = 8 and rises after it
    add(
        "nonmonotone_band",
        [2, 3, 3, 3, 3, 4, 6, 7, 7, 8, 8, 8, 9, 9],
        [1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1],
        times=[3.0, 8.0],
        taus=[9.0],
    )
    # 14. weighted, left-truncated: bands not monotone; R's quantile.survfit sorts them
    add(
        "nonmonotone_weighted_entry",
        [2.0, 3.0, 7.0, 9.0, 10.0],
        [1, 0, 1, 0, 1],
        entry=[0.0, 0.0, 5.0, 5.0, 6.0],
        weight=[1.0, 2.0, 1.0, 3.0, 0.5],
        weight_type="sampling",
        times=[1.0, 5.0, 9.5],
        taus=[8.0],
    )
    return cases


def main() -> None:
    cases = _case_rows()
    (HERE / "data").mkdir(exist_ok=True)
    with open(HERE / "km_cases.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["case", "weight_type", "has_entry", "times", "taus"])
        for name, c in cases.items():
            out.writerow(
                [
                    name,
                    c["weight_type"],
                    int(c["has_entry"]),
                    ";".join(repr(float(x)) for x in c["times"]),
                    ";".join(repr(float(x)) for x in c["taus"]),
                ]
            )
            with open(HERE / "data" / f"{name}.csv", "w", newline="") as dh:
                d = csv.writer(dh)
                d.writerow(["time", "event", "weight", "entry"])
                for row in zip(c["time"], c["event"], c["weight"], c["entry"], strict=True):
                    d.writerow(
                        [repr(float(row[0])), int(row[1]), repr(float(row[2])), repr(float(row[3]))]
                    )


if __name__ == "__main__":
    main()
