# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Across environments: a summary-only target and a shipped model
#
# The US cohort lives in one trusted research environment (TRE), the Japanese cohort in
# another. Patient rows may not leave either; only aggregates that passed the release
# gate may. Two workflows transport US survival to Japan under that rule:
#
# 1. **Summary-only target.** Inside Japan's TRE: describe the cohort
#    (`TargetSummary.from_cohort`) and release it. Inside the US TRE: entropy balancing
#    to the released summary. Nothing about a US patient leaves the US, and Japan sends
#    only means, SDs, shares and a coarsened survival table.
# 2. **Model shipping.** Inside the US TRE: fit the outcome model and release it
#    (`ShippedModel`). Inside Japan's TRE: apply it to Japan's rows (the g-formula) and
#    compare with Japan's own survival; release the comparison.
#
# Both directories below stand for what crosses a border: each has a `manifest.json` with
# the SHA-256 of every file, the policy, and what was withheld and why. Run as a plain
# script: `python 04_across_environments.py` (it writes `figures/` and `exchange/`).

# %%
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import transport as tp
from transport.disclosure import Policy, release, verify

FIGURES = Path("figures")
FIGURES.mkdir(exist_ok=True)
EXCHANGE = Path("exchange")  # what crosses between the environments
shutil.rmtree(EXCHANGE, ignore_errors=True)

us = tp.datasets.load_synthetic("US")  # in the US TRE
jp = tp.datasets.load_synthetic("JP")  # in Japan's TRE
policy = Policy(name="consortium default")  # min_cell 10, KM steps of 10, counts to 5
print(policy)

# %% [markdown]
# ## 1. Summary-only target
#
# ### In Japan's environment
#
# The Kaplan–Meier table is requested on the policy's grid (quarterly: every third
# month), the only times the gate keeps. The gate rounds the counts, merges grid steps
# with fewer than 10 exits into the next, stops where fewer than 10 patients remain at
# risk, and withholds small categories with their complements.

# %%
grid = policy.grid(float(jp.time_values.max()), jp.time_unit)[2::3]
summary = tp.TargetSummary.from_cohort(jp, km_times=grid)
manifest = release(summary, EXCHANGE / "jp_summary", policy)
print("files:", [f["file"] for f in manifest["files"]])
print(
    "withheld:",
    len(manifest["suppressed"]),
    "items, by rule:",
    sorted({s["rule"] for s in manifest["suppressed"]}),
)
sent = json.loads((EXCHANGE / "jp_summary" / "target_summary.json").read_text())
print("what Japan sends:", sorted(sent))
print("n as released (rounded to 5):", sent["n"])
print(
    "longest list in the file:",
    max(len(v) for v in sent["km"].values() if isinstance(v, list)),
    "entries; the cohort has",
    jp.n,
    "rows",
)

# %% [markdown]
# ### In the US environment
#
# The US analyst checks the directory against its manifest, reads the summary and
# balances the US cohort to it. Entropy balancing needs only the target's means, so the
# transported estimate equals the one computed with Japan's rows; the observed side is
# the released (coarsened) survival table.

# %%
verify(EXCHANGE / "jp_summary")
received = tp.TargetSummary.from_json(EXCHANGE / "jp_summary" / "target_summary.json")
times, tau = [365.25, 730.5], 1095.75
res_summary = tp.transport(us, received, method="entropy", times=times, tau=tau)
res_rows = tp.transport(us, jp, method="entropy", times=times, tau=tau)  # for comparison only
a = res_summary.summary()["transported"].to_numpy()
b = res_rows.summary()["transported"].to_numpy()
print(res_summary.summary().select("estimand", "time", "transported", "observed", "difference"))
print(f"largest difference from the transport with Japan's rows: {np.max(np.abs(a - b)):.1e}")

# %% [markdown]
# The observed S(t) comes from the released table, the actuarial estimate of its
# released (rounded) counts on the grid, so that the exact counts cannot be solved back
# from it; it differs slightly from Japan's exact Kaplan–Meier estimate; the median is not
# available from a table on a quarterly grid and stays null.

# %%
obs_exact = res_rows.summary()["observed"].to_numpy()[: len(times)]
obs_released = res_summary.summary()["observed"].to_numpy()[: len(times)]
print("observed S(t), exact vs released:", np.round(obs_exact, 4), np.round(obs_released, 4))

# %% [markdown]
# ## 2. Model shipping
#
# ### In the US environment
#
# A Cox model of US overall survival with 200 bootstrap refits (so that Japan can give
# intervals that carry the US model's uncertainty). The gate checks the residual degrees
# of freedom (events minus parameters at least `min_residual_df`), the level counts, and
# keeps the baseline cumulative hazard only on grid steps with enough exits. The refits
# leave as their summary (covariance, SEs, percentile limits), never as refits with their
# seed, from which every resample, and each US row's influence, could be rebuilt.

# %%
model = tp.ShippedModel.fit(us, model="cox", n_boot=200, seed=20261122, policy=policy)
m_manifest = release(model, EXCHANGE / "us_model", policy)
print(model)
print("files:", [f["file"] for f in m_manifest["files"]])
shipped = json.loads((EXCHANGE / "us_model" / m_manifest["files"][0]["file"]).read_text())
print("what the US sends:", sorted(shipped))

# %% [markdown]
# ### In Japan's environment
#
# Japan reads the model (the manifest is verified first, then the model's numbers),
# applies it to its own rows (refused if its linear predictor spreads over Japan's rows
# wider than `max_log_hazard_ratio`), draws its bootstrap replicates from the shipped
# covariance, and compares the transported curve with its own. Only the comparison goes
# back, through Japan's gate, which treats the transported curve as Japan's own aggregate.

# %%
received_model = tp.ShippedModel.from_release(EXCHANGE / "us_model")
shipped_result = received_model.apply(jp, times=times, tau=tau, margin={"survival": 0.05}, seed=7)
r_manifest = release(shipped_result, EXCHANGE / "jp_result", policy)
print(
    shipped_result.summary().select(
        "estimand",
        "time",
        "transported",
        "transported_ci_lower",
        "transported_ci_upper",
        "observed",
        "difference",
    )
)
print("files sent back:", [f["file"] for f in r_manifest["files"]])

# %% [markdown]
# The shipped g-formula is the g-formula: at the grid times it equals
# `transport(method="gformula")` run where both cohorts' rows are (which no TRE allows;
# here the data are synthetic).

# %%
g = tp.transport(us, jp, method="gformula", times=list(received_model.grid[:24]))
diff = np.abs(
    received_model.marginal_survival(jp, received_model.grid[:24])
    - g.transported.survival_at(received_model.grid[:24])
)
print(f"largest difference from transport(method='gformula') at 24 grid times: {diff.max():.1e}")

# %% [markdown]
# ### What each side saw
#
# The figure sets the two routes side by side: the US curve balanced to Japan's summary
# (left, with Japan's released survival table) and the shipped model averaged over
# Japan's patients (right, with Japan's own curve, which never left Japan).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
ax = axes[0]
tr = res_summary.transported
ax.step(tr.time, tr.survival, where="post", label="US, balanced to JP summary")
km = received.km
ax.plot(km["time"], km["survival"], "o-", ms=3, label="JP, released table")
ax.set_title("1. summary-only target (in the US)")
ax.set_xlabel("days")
ax.set_ylabel("overall survival")
ax.legend()
ax = axes[1]
mc = shipped_result.transported
ax.plot(mc.time, mc.survival, label="US model, averaged over JP")
ob = shipped_result.observed
ax.step(ob.time, ob.survival, where="post", label="JP observed")
ax.set_title("2. shipped model (in Japan)")
ax.set_xlabel("days")
ax.legend()
for a_ in axes:
    a_.set_xlim(0, 1826)
fig.tight_layout()
fig.savefig(FIGURES / "04_two_routes.png", dpi=120)
plt.close(fig)

# %% [markdown]
# Everything that crossed a border, with its hash, is listed in the manifests:

# %%
for d in sorted(EXCHANGE.iterdir()):
    m = verify(d)
    print(
        f"{d.name}: {m['object']}, files {[f['file'] for f in m['files']]}, "
        f"{len(m['suppressed'])} items withheld"
    )
text = "".join(p.read_text() for p in EXCHANGE.rglob("*") if p.is_file())
print("identifier columns in anything exchanged:", "patient_id" in text or "practice_id" in text)
