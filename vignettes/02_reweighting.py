# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Reweighting a source cohort to a target
#
# The US cohort and the Japanese cohort differ in patient mix: JP has more never-smokers,
# EGFR/ALK-positive tumours and targeted therapy, fewer ECOG 2+ patients. Before
# comparing outcomes, make the US cohort look like the JP one in its measured covariates,
# check how well that worked, and see what it costs in effective sample size. Then do
# the same when Japan can share only aggregates.
#
# Run as a plain script: `python 02_reweighting.py` (figures go to `figures/`).

# %%
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

import transport as tp

FIGURES = Path("figures")
FIGURES.mkdir(exist_ok=True)
us = tp.datasets.load_synthetic("US")
jp = tp.datasets.load_synthetic("JP")

# %% [markdown]
# ## Inverse odds of participation weights
#
# A logistic model of membership (US vs JP) on the stacked cohorts; each US patient gets
# the odds P(JP | x) / P(US | x). The default model has main effects of all nine
# covariates; `formula=` takes any formulaic right-hand side.

# %%
iow = tp.inverse_odds_weights(us, jp)
print(iow)
print({k: round(v, 3) for k, v in iow.summary().items()})

# %% [markdown]
# Read the summary: the effective sample size says how many unweighted patients the
# weighted 10,000 are worth; `max_over_mean` and `top1_share` flag a few patients
# carrying much of the weight.
#
# ## Balance
#
# Standardised mean differences (SMD): (weighted US mean − JP mean) / JP SD. Below 0.1 is
# the usual bar.

# %%
balance = iow.balance()
print(balance.select("covariate", "mean_source", "mean_source_weighted", "mean_target",
                     "smd_before", "smd_after"))  # fmt: skip

fig, axes = plt.subplots(1, 3, figsize=(16, 5))
iow.plot_balance(axes[0])
iow.plot_weights(axes[1])
iow.plot_overlap(axes[2])
fig.tight_layout()
fig.savefig(FIGURES / "02_iow_diagnostics.png", dpi=110)
print(f"wrote {FIGURES / '02_iow_diagnostics.png'}")

# %% [markdown]
# The overlap plot shows the participation scores on the balanced scale (as if both
# cohorts were the same size): every JP patient has US counterparts, so no weight is
# extreme. With poor overlap, `inverse_odds_weights` raises a `PositivityWarning`;
# `truncate=(0.01, 0.99)` and `trim=` are there, and each reports what it touched.

# %% [markdown]
# ## Entropy balancing (MAIC)
#
# Weights closest to uniform (maximum entropy) that match the JP means exactly. The same
# estimator is known as matching-adjusted indirect comparison (MAIC).

# %%
eb = tp.entropy_balance(us, jp)
print(eb, "largest |SMD| after:", float(eb.balance()["smd_after"].abs().max()))

# %% [markdown]
# ## When Japan can share only aggregates
#
# Inside the Japanese environment: summarise the cohort. The JSON holds n, design-column
# means and SDs, and level shares; no patient rows, no identifiers.

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = tp.TargetSummary.from_cohort(jp).to_json(Path(tmp) / "jp_summary.json")
    released = json.loads(path.read_text())
    print({k: released[k] for k in ("schema", "version", "name", "n", "formula")})
    print(dict(zip(released["columns"], [round(m, 3) for m in released["mean"]], strict=True)))

    # Inside the US environment: only the JSON arrives.
    summary = tp.TargetSummary.from_json(path)
eb_summary = tp.entropy_balance(us, summary)
diff = float(abs(eb_summary.values - eb.values).max())
print(f"largest difference from the weights computed with JP's rows: {diff:.1e}")

# %% [markdown]
# ## What the weights do to the outcome
#
# The synthetic data come with the truth: the JP patient mix under the US outcome
# mechanism ("transported"), and JP's own curve ("target").

# %%
truth = tp.datasets.load_truth().filter(
    (pl.col("source") == "US") & (pl.col("target") == "JP") & (pl.col("outcome") == "os")
    & (pl.col("estimand") == "median")
)  # fmt: skip
true_median = dict(zip(truth["quantity"], truth["value"], strict=True))
for label, weights in (("naive US", None), ("IOW", iow), ("entropy", eb_summary)):
    med = tp.kaplan_meier(us, weights=weights).median()
    print(f"{label:>9}: median OS {med.value:.0f} days ({med.ci_lower:.0f} to {med.ci_upper:.0f})")
print(
    f"truth, US transported to JP: {true_median['transported']:.0f} days; "
    f"JP's own: {true_median['target']:.0f} days"
)

fig, ax = plt.subplots(figsize=(7, 5))
tp.kaplan_meier(us).plot(ax=ax, label="US, unweighted", risk_table=False, ci=False)
tp.kaplan_meier(us, weights=eb_summary).plot(ax=ax, label="US weighted to JP", risk_table=False)
tp.kaplan_meier(jp).plot(ax=ax, label="JP observed", risk_table=False)
ax.legend()
fig.savefig(FIGURES / "02_transported_curves.png", dpi=110)
print(f"wrote {FIGURES / '02_transported_curves.png'}")

# %% [markdown]
# Weighting moves the US estimate from its own patient mix to Japan's. What remains
# between the weighted US curve and the observed Japanese one is what the measured
# covariates do not explain (here, by construction, a better setting and fewer patients
# with an unmeasured modifier). `tp.transport` will test that gap formally.
