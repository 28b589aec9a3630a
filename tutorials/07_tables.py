# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. Tables: one head per column
#
# Real tables mix kinds of columns: a penguin has a species (a label), a sex (two labels), bill
# and flipper measurements (reals) and a year of observation. An autoregressive model handles
# such a row without any special machinery: the chain rule
#
# $$
# p(x) = \prod_{j=1}^{n} p(x_{\sigma_j} \mid x_{\sigma_1}, \dots, x_{\sigma_{j-1}})
# $$
#
# only asks that each factor be *some* normalized distribution over its own column, so column
# $j$ may be a Categorical, the next a Bernoulli and the next a mixture of Gaussians, all fed
# by one conditioner network. This tutorial covers
#
# 1. what a **mixed row** is, how each column's kind is inferred and encoded, and how to override it;
# 2. **one head per column** through one `pyro_ar.Autoregressive` distribution;
# 3. what the **NLL of a mixed row** means (probabilities and densities added up), and its units;
# 4. fitting a **MADE**, an **FVSBN** and an **independent-columns** baseline: test NLL in
#    total and per column;
# 5. **synthetic penguins** beside real ones: rows, histograms, bar charts and a pairwise plot;
# 6. the **conditional model** $p(\text{other columns} \mid \text{species})$, and why
#    $p(\text{species} \mid \text{measurements})$ is a different matter;
# 7. the same in one command, `pyro-ar fit --data penguins`.
#
# The data are the Palmer penguins (Gorman, Williams and Fraser 2014; CC0), shipped with
# `pyro_ar`. With `PYRO_AR_TUTORIAL_QUICK=1` (the test suite) the training runs are shortened.

# %%
# %matplotlib inline
import json
import os
import tempfile
from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import pyro_ar
from pyro_ar.program import cli
from pyro_ar.program.tables import column_nll, read_table
from pyro_ar.program.training import evaluate_nll, train

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
print(f"pyro_ar {pyro_ar.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")
EPOCHS = 15 if QUICK else 200  # full mode: early stopping ends the runs well before 200
torch.set_num_threads(1)
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 72, "axes.grid": False})

# %% [markdown]
# ## 1. A mixed row
#
# The file is an ordinary CSV with a header row. `NA` marks a missing entry.

# %%
csv_file = resources.files("pyro_ar.program").joinpath("data", "penguins.csv")
lines = csv_file.read_text().splitlines()
print(f"{len(lines) - 1} rows; the first five lines of the file:")
print("\n".join(lines[:5]))

# %% [markdown]
# `read_table` reads a CSV path, or a named table such as `"penguins"`, splits the rows
# 80/10/10 into train/valid/test (seeded), drops the rows with a missing entry (the model is of
# complete rows; it says how many) and infers each column's **kind from the training rows**:
#
# | kind | rule | head | value in the model |
# |---|---|---|---|
# | binary | exactly two distinct values (numbers or labels) | `Bernoulli()` | code 0/1, labels in sorted order |
# | categorical | labels, or integers with at most 10 distinct values (a year, a grade) | `Categorical(K)` | code 0..K-1, sorted |
# | count | non-negative integers with more values, unless the name ends in a unit | `Poisson()` | the count |
# | real | every other numeric column | `MixtureOfGaussians(3)` | $z = (x - \text{mean}) / \text{std}$ |
#
# A name ending in a unit (`_mm`, `_g`, ` (kg)`) marks a measurement: `flipper_length_mm` holds
# whole millimetres but is real, not a count. Means and stds are the training split's; the
# number of decimals written in the file is kept, so decoded values look like the data.

# %%
table = read_table("penguins")
print(f"train/valid/test rows: {len(table.train)}/{len(table.valid)}/{len(table.test)}; "
      f"dropped (a missing entry): {table.dropped_rows}")


def encoding(col):
    if col.labels is not None:
        return "codes: " + ", ".join(f"{k}={label}" for k, label in enumerate(col.labels))
    if col.kind == "real":
        unit = f"in {col.unit}; " if col.unit else ""
        return f"z = (x - {col.mean:.1f}) / {col.std:.2f} ({unit}written with {col.decimals} decimals)"
    return "the count itself"


print(f"\n{'column':<18}{'kind':<13}{'head':<22}encoding")
for col, head in zip(table.columns, table.heads):
    print(f"{col.name:<18}{col.kind:<13}{type(head).__name__:<22}{encoding(col)}")

# %% [markdown]
# Species and island are labels (categorical), the sex has two labels (binary), the year holds
# three integers (categorical, not a count), and the four measurements are real, flipper length
# and body mass too although the file writes them as whole numbers, because their names end in
# units. The penguins have no count column; the override below shows one.
#
# So a row of the model is one float tensor of 8 entries: integer codes in the discrete columns,
# standardized reals in the others. `table.decode` inverts the encoding (labels, and reals in
# their own units with the file's decimals):

# %%
print("encoded (the model's values):\n", table.train[:3])
decoded = table.decode(table.train[:3])
print("decoded:")
for name, values in decoded.items():
    print(f"  {name:<18}", values)

# %% [markdown]
# An inferred kind can be overridden with `column_types` (`--column-types name=kind,...` in the
# program); `ignore` leaves a column out. Treating the year as a count, for example, gives it a
# Poisson head (a poor choice for 2007-2009, shown only to see the mechanism):

# %%
other = read_table("penguins", column_types={"year": "count", "island": "ignore"})
print("columns:", other.column_names)
print("heads:  ", [type(h).__name__ for h in other.heads])

# %% [markdown]
# ## 2. One head per column, one distribution
#
# `table.conditional()` is a `pyro_ar.conditionals.Mixed` head: a list of per-column heads,
# here `Mixed([Categorical(3), Categorical(3), MixtureOfGaussians(3) x 4, Bernoulli(), Categorical(3)])`.
# Each head needs its own number of parameters per variable (3 logits for a Categorical(3), one
# logit for a Bernoulli, 9 numbers for a mixture of 3 Gaussians: logits, means, scales) and
# feeds its value back to the conditioner in its own way (one-hot codes, 0/1 and reals as they
# are). The conditioner works with the largest sizes; each column uses the first of its
# parameters and its inputs are zero-padded. Any conditioner works unchanged: MADE, FVSBN, NADE,
# ... `log_prob` is still one pass, `sample` still the shared step-by-step loop.

# %%
head = table.conditional()
print(head)
print("per column, parameters:", [h.param_size for h in head.heads], "inputs:", [h.input_size for h in head.heads])
print("the conditioner's sizes: param_size", head.param_size, "input_size", head.input_size)

net = pyro_ar.MADE(table.event_size, [64, 64], conditional=head, order=table.order_first("species"), seed=0)
d = net()
print(type(d).__name__, "batch_shape", tuple(d.batch_shape), "event_shape", tuple(d.event_shape))
print("log p(row), untrained:", d.log_prob(table.train[:3]).detach())
print("its factors log p(x_j | x_<j):\n", d.variable_log_probs(table.train[:3]).detach())

# %% [markdown]
# The order `table.order_first("species")` puts the species first (it is already the first
# column, so the order is the identity here); section 6 uses that.
#
# ## 3. What the NLL of a mixed row means
#
# $-\log p(x) = \sum_j -\log p(x_j \mid x_{<j})$ adds up terms of two kinds:
#
# * for a **discrete** column (species, island, sex, year) the factor is a **probability**, so
#   its term is at least 0, and a uniform guess pays $\log K$ nats for a $K$-valued
#   column ($\log 3 \approx 1.10$, $\log 2 \approx 0.69$);
# * for a **real** column the factor is a **density** of the standardized value $z_j$, so its
#   term may be negative (a sharp density above 1).
#
# The density of a measurement in its own units follows from the change of variables
# $z = (x - m) / s$: $p_x(x) = p_z(z) / s$, so
#
# $$
# -\log p_x(x) = -\log p_z(z) + \sum_{j\ \text{real}} \log s_j ,
# $$
#
# the **data-units NLL** (`table.log_scale` is the sum; the program prints both). It depends on
# the units (millimetres or metres), which is why the NLL is usually reported on the standardized
# values; either way, two models are comparable only on the same table with the same encoding.

# %%
print(f"sum of log std over the real columns: {table.log_scale:.3f} nats")
for col in table.columns:
    if col.kind == "real":
        print(f"  {col.name:<18} log {col.std:.2f} = {np.log(col.std):.3f}")


# %% [markdown]
# ## 4. Fitting: MADE, FVSBN and independent columns
#
# Every model is trained by the package's one loop, `pyro_ar.program.training.train` (Adam,
# validation after every epoch, early stopping, the best parameters kept). Besides the MADE (two
# hidden layers of 64 units) we fit
#
# * an **FVSBN**: each column's parameters are a linear function of the earlier columns'
#   encodings (logistic and softmax regressions, and mixtures whose logits, means and raw
#   scales are linear in the past);
# * an **independent-columns** baseline, $\prod_j p(x_j)$: one single-variable model per column
#   with that column's head (a model of one variable has no past, so it learns the marginal).
#   The gap between it and the others is what the dependencies between columns are worth.

# %%
def fit(model, rows=table.train, valid=table.valid, lr=1e-3):
    history = train(model, rows, valid, epochs=EPOCHS, batch_size=32, lr=lr, patience=20, progress=False)
    return history


made_history = fit(net)
fvsbn = pyro_ar.FVSBN(table.event_size, conditional=table.conditional(), seed=0)
fvsbn_history = fit(fvsbn, lr=1e-2)
marginals = []
for j, col in enumerate(table.columns):
    single = pyro_ar.FVSBN(1, conditional=table.heads[j], seed=0)
    fit(single, table.train[:, j : j + 1], table.valid[:, j : j + 1], lr=3e-2)
    marginals.append(single)

shares = {
    "MADE": column_nll(net, table.test).numpy(),
    "FVSBN": column_nll(fvsbn, table.test).numpy(),
    "independent": np.array([evaluate_nll(m, table.test[:, j : j + 1]) for j, m in enumerate(marginals)]),
}
print(f"MADE stopped after {made_history.epochs_run} epochs (best {made_history.best_epoch}), "
      f"FVSBN after {fvsbn_history.epochs_run} (best {fvsbn_history.best_epoch})")
print(f"check: MADE's per-column shares sum to its test NLL: {shares['MADE'].sum():.4f} = "
      f"{evaluate_nll(net, table.test):.4f}")
print(f"\n{'test NLL, nats per row':<24}{'standardized':>13}{'data units':>12}")
for name, s in shares.items():
    print(f"{name:<24}{s.sum():>13.3f}{s.sum() + table.log_scale:>12.3f}")
print(f"\n{'column':<18}" + "".join(f"{name:>13}" for name in shares))
for j, col in enumerate(table.columns):
    print(f"{col.name:<18}" + "".join(f"{s[j]:>13.3f}" for s in shares.values()))

# The test split is small: the paired per-row difference, with its standard error, says how sure a gap is.
with torch.no_grad():
    per_row = {"MADE": -net().log_prob(table.test), "FVSBN": -fvsbn().log_prob(table.test),
               "independent": -sum(m().log_prob(table.test[:, j : j + 1]) for j, m in enumerate(marginals))}
print(f"\npaired differences of the test NLL over {len(table.test)} rows (mean +- standard error):")
for a, b in (("FVSBN", "MADE"), ("independent", "MADE")):
    diff = per_row[a] - per_row[b]
    print(f"  {a} - {b}: {diff.mean():.3f} +- {diff.std() / len(diff) ** 0.5:.3f} nats per row")

# %%
x = np.arange(table.event_size)
fig, ax = plt.subplots(figsize=(10, 3.2))
for k, (name, s) in enumerate(shares.items()):
    ax.bar(x + (k - 1) * 0.27, s, width=0.27, label=name)
ax.axhline(0, color="black", lw=0.5)
ax.set_xticks(x, table.column_names, rotation=20)
ax.set_ylabel("nats per row")
ax.set_title("test NLL per column: -log p(x_j | earlier columns), mean over the test rows")
ax.legend()
plt.show()

# %% [markdown]
# The shares of one model add up to its test NLL. The species is the first column, so every
# model pays about the same marginal price for it; the differences are in the later columns.
# Given the species, the island is partly known (in these data Gentoos live on Biscoe and
# Chinstraps on Dream); given the species and the island, the measurements are far better
# predicted than from their marginals; and the sex costs little once the body mass and the bill
# are known (males are larger within a species). Only a model that sees the earlier columns can
# use any of this, hence the large gap to the independent baseline. The year, the field season
# of the observation, stays near $\log 3$ for every model: it says little about the rest.
#
# The MADE and the FVSBN are much closer to each other: with a few hundred training rows, the
# linear conditionals of the FVSBN (whose mixtures still make each conditional non-Gaussian)
# capture most of the structure, and the paired difference above should be read against its
# standard error, which 33 test rows make large. A table of this size does not settle which of
# the two is better; on larger tables the MADE's hidden layers have more to work with.

# %% [markdown]
# ## 5. Synthetic penguins beside real ones
#
# A synthetic row is a sample of the distribution, decoded. `table.write_csv(path, values)`
# writes such rows with the original column names, labels and units.

# %%
torch.manual_seed(1)
num_synthetic = 1000 if QUICK else 3000
synthetic = net().sample((num_synthetic,))
real = table.split("all")
real_rows, synth_rows = table.decode(real), table.decode(synthetic)


def show(rows, count=5):
    """The first ``count`` decoded rows as a text table, each value written as in the CSV file."""
    widths = [max(len(c.name), 9) + 1 for c in table.columns]
    print("".join(f"{c.name:>{w}}" for c, w in zip(table.columns, widths)))
    for r in range(count):
        print("".join(f"{c.format(rows[c.name][r]):>{w}}" for c, w in zip(table.columns, widths)))


print("real penguins (the first test rows):")
show(table.decode(table.test))
print("\nsynthetic penguins:")
show(synth_rows)
with tempfile.TemporaryDirectory() as tmp:
    table.write_csv(Path(tmp) / "synthetic.csv", synthetic[:3])
    print("\nsynthetic.csv:\n" + (Path(tmp) / "synthetic.csv").read_text())

# %% [markdown]
# Column by column: histograms for the real columns, bar charts of the label frequencies for
# the discrete ones (all real rows against the synthetic rows).

# %%
fig, axes = plt.subplots(2, 4, figsize=(12, 5.2))
reals = [c for c in table.columns if c.kind == "real"]
discrete = [c for c in table.columns if c.kind != "real"]
for ax, col in zip(axes[0], reals):
    values = np.array(real_rows[col.name])
    bins = np.linspace(values.min(), values.max(), 25)
    ax.hist(values, bins=bins, density=True, alpha=0.5, label="real")
    ax.hist(np.array(synth_rows[col.name]), bins=bins, density=True, histtype="step", lw=1.5, label="synthetic")
    ax.set_title(col.name, fontsize=10)
for ax, col in zip(axes[1], discrete):
    k = np.arange(len(col.labels))
    for offset, rows, label in ((-0.2, real_rows, "real"), (0.2, synth_rows, "synthetic")):
        freq = [np.mean(np.array(rows[col.name]) == lab) for lab in col.labels]
        ax.bar(k + offset, freq, width=0.4, label=label)
    ax.set_xticks(k, col.labels, fontsize=8)
    ax.set_title(col.name, fontsize=10)
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# The marginals are the easy part; the dependencies are what an AR model is for. Bill length
# against bill depth separates the three species: Gentoo penguins have long, shallow bills,
# Adelies short, deep ones, Chinstraps long, deep ones; within each species the two grow
# together.

# %%
SP, IS = table.index("species"), table.index("island")  # their variables (columns 0 and 1)
species = table.columns[SP]
as_many = table.decode(synthetic[: len(real)])  # as many synthetic penguins as real ones, for a fair picture
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
for ax, (title, rows) in zip(axes, (("real", real_rows), ("synthetic", as_many))):
    kind = np.array(rows["species"])
    for label in species.labels:
        pick = kind == label
        ax.scatter(np.array(rows["bill_length_mm"])[pick], np.array(rows["bill_depth_mm"])[pick],
                   s=6, alpha=0.6, label=label)
    ax.set_title(f"{title} ({len(kind)} penguins)")
    ax.set_xlabel("bill_length_mm")
axes[0].set_ylabel("bill_depth_mm")
axes[0].legend(markerscale=2)
plt.show()

# %% [markdown]
# ## 6. The conditional model $p(\text{other columns} \mid \text{species})$
#
# If the observed columns come **first in the order**, the chain rule splits into
#
# $$
# p(x) = \underbrace{p(x_{\text{observed}})}_{\text{the first factors}} \;
#        \underbrace{p(x_{\text{rest}} \mid x_{\text{observed}})}_{\text{the remaining factors}},
# $$
#
# so conditioning is exact and costs nothing extra: `d.condition(values, mask)` clamps the
# observed columns in the sampling loop, and its `observed_log_prob` is the exact
# $\log p(x_\text{observed})$. The MADE was built with `order=table.order_first("species")`,
# so we can ask for Adelie, Chinstrap and Gentoo penguins, one batch row each.

# %%
code = torch.tensor([table.code("species", label) for label in species.labels], dtype=torch.float)
observed = torch.zeros(len(code), table.event_size)
observed[:, SP] = code
mask = torch.zeros(len(code), table.event_size, dtype=torch.bool)
mask[:, SP] = True
given_species = net().condition(observed, mask)  # batch_shape (3,): one per species
print("batch_shape", tuple(given_species.batch_shape))
frequency = [(table.train[:, SP] == c).float().mean().item() for c in code]
print("p(species) of the model:", given_species.observed_log_prob.exp().detach().numpy().round(3),
      " training frequencies:", np.round(frequency, 3))

torch.manual_seed(2)
per_species = given_species.sample((500 if QUICK else 2000,))  # (samples, 3, n): the species column clamped
print(f"\n{'species':<11}{'column':<16}{'real mean':>10}{'synthetic':>10}{'real std':>10}{'synthetic':>10}")
measures = ["body_mass_g", "bill_length_mm", "bill_depth_mm"]
for s, label in enumerate(species.labels):
    mine = real[real[:, SP] == code[s]]
    real_s, synth_s = table.decode(mine), table.decode(per_species[:, s])
    assert set(synth_s["species"]) == {label}
    for name in measures:
        a, b = np.array(real_s[name]), np.array(synth_s[name])
        print(f"{label:<11}{name:<16}{a.mean():>10.1f}{b.mean():>10.1f}{a.std():>10.1f}{b.std():>10.1f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for ax, name in zip(axes, measures):
    data, positions = [], []
    for s, label in enumerate(species.labels):
        data += [np.array(table.decode(real[real[:, SP] == code[s]])[name]),
                 np.array(table.decode(per_species[:, s])[name])]
        positions += [3 * s, 3 * s + 1]
    box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
    for k, patch in enumerate(box["boxes"]):
        patch.set_facecolor("C0" if k % 2 == 0 else "C1")
    ax.set_xticks([3 * s + 0.5 for s in range(len(code))], species.labels)
    ax.set_title(name, fontsize=10)
axes[0].legend(box["boxes"][:2], ["real", "synthetic | species"], fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Each species' synthetic penguins have that species' measurements: the Gentoos are heavy with
# shallow bills, the Chinstraps' bills are as long as the Gentoos' but deep. The model has
# learned the conditionals, not only the mix of species.

# %% [markdown]
# ### And $p(\text{species} \mid \text{measurements})$?
#
# The reverse question, which species a penguin with given measurements is, does **not** come
# out of this model directly: the species comes *before* the measurements in its order, so the
# model's factors are $p(\text{species})$, $p(\text{island} \mid \text{species})$ and
# $p(\text{measurements} \mid \text{species}, \text{island})$; there is no factor
# $p(\text{species} \mid \text{measurements})$. `condition` refuses such a pattern instead of
# approximating it:

# %%
measured = [table.index(name) for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")]
measured_mask = torch.zeros(table.event_size, dtype=torch.bool)
measured_mask[measured] = True
try:
    net().condition(table.test, measured_mask.expand_as(table.test))
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# Bayes' rule still gives it, as a sum over every value of the unobserved columns that come
# before the observed ones:
#
# $$
# p(s \mid m) = \frac{\sum_i p(s)\, p(i \mid s)\, p(m \mid s, i)}{\sum_{s'} \sum_i p(s')\, p(i \mid s')\, p(m \mid s', i)}
# $$
#
# (the columns after the measurements, sex and year, sum to 1 and drop out). Here that is a sum
# over 3 species x 3 islands, so it is exact and cheap; with a real column before the observed
# ones it would be an integral, and with many discrete ones exponentially many terms. The direct
# route is a model whose order puts the measurements first,
# `order=table.order_first(["bill_length_mm", ...])`: then $p(\text{species} \mid \text{measurements})$
# is one of its factors, exact in one pass. Both give a classifier of the test penguins:

# %%
measures_first = pyro_ar.MADE(table.event_size, [64, 64], conditional=table.conditional(),
                              order=table.order_first([table.column_names[j] for j in measured]), seed=0)
fit(measures_first)
print("order of the second model:", [table.column_names[j] for j in measures_first.conditioner.order.tolist()])
k = len(code)
with torch.no_grad():
    # Direct: the species factor, log p(species = s | measurements), for each s.
    rows = table.test.expand(k, -1, -1).clone()
    rows[..., SP] = code[:, None]
    direct = measures_first().variable_log_probs(rows)[..., SP].softmax(0)  # (3, N_test)
    # Bayes in the species-first model: sum over islands of p(s) p(i | s) p(m | s, i), then normalize.
    islands = len(table.columns[IS].labels)
    rows = table.test.expand(k, islands, -1, -1).clone()
    rows[..., SP] = code[:, None, None]
    rows[..., IS] = torch.arange(islands, dtype=torch.float)[None, :, None]
    joint = net().variable_log_probs(rows)[..., [SP, IS] + measured].sum(-1)  # (3, islands, N_test)
    bayes = joint.logsumexp(1).softmax(0)
truth = table.test[:, SP].long()
for name, post in (("measurements-first model, direct", direct), ("species-first model, Bayes' rule", bayes)):
    accuracy = (post.argmax(0) == truth).float().mean().item()
    print(f"{name:<36} accuracy {accuracy:.3f}, mean log p(true species | m) "
          f"{post[truth, torch.arange(len(truth))].log().mean().item():.3f}")
print(f"largest difference between the two posteriors: {(direct - bayes).abs().max().item():.3f}")

# %% [markdown]
# The two posteriors are close but not equal: they come from two models fitted separately, each
# exact for itself. Which order to pick is a modelling decision: the one that puts first the
# columns you will condition on.
#
# ## 7. The same in one command
#
# The `pyro-ar` program does all of this from the command line, for the penguins or any CSV file
# with a header row (`--column-types` overrides kinds, `--components` sets the mixture size):
#
# ```bash
# pyro-ar fit --data penguins --out runs/penguins         # or --data my_table.csv
# pyro-ar evaluate --checkpoint runs/penguins/model.pt    # total test NLL and each column's share
# pyro-ar sample --checkpoint runs/penguins/model.pt -n 500 --out synthetic.csv
# ```
#
# `fit` trains a MADE with the mixed head by the same `train` loop (its defaults are larger: 512
# hidden units, batches of 100), prints the test NLL (`metrics.json` has it in data units too),
# and writes the checkpoint, with the table's schema so that `sample` decodes labels and units,
# and `samples.csv` beside it. The cell below runs exactly these commands through the program's
# entry point, `pyro_ar.program.cli.main(argv)` (what `pyro-ar` and `python -m pyro_ar` call), in
# a temporary directory; the run takes seconds.

# %%
def pyro_ar_cli(*argv):
    """``pyro-ar ARGV``: print the command, run it, check its exit status."""
    print("$ pyro-ar", " ".join(argv))
    status = cli.main(list(argv))
    assert status == 0, f"pyro-ar exited with status {status}"


here = os.getcwd()
with tempfile.TemporaryDirectory() as workdir:
    os.chdir(workdir)  # the commands as typed above, with their relative paths
    try:
        pyro_ar_cli("fit", "--data", "penguins", "--out", "runs/penguins", "--no-progress",
                    *(["--epochs", "3"] if QUICK else []))
        metrics = json.loads(Path("runs/penguins/metrics.json").read_text())
        print(f"(metrics.json: test NLL {metrics['test_nll']:.4f} nats per row, "
              f"{metrics['test_nll_data_units']:.4f} in data units)\n")
        pyro_ar_cli("evaluate", "--checkpoint", "runs/penguins/model.pt")
        pyro_ar_cli("sample", "--checkpoint", "runs/penguins/model.pt", "-n", "500", "--out", "synthetic.csv")
        print("".join(Path("synthetic.csv").read_text().splitlines(keepends=True)[:4]))
    finally:
        os.chdir(here)

# %% [markdown]
# ## Summary
#
# * A mixed row is one float tensor: codes for binary and categorical columns, counts, and
#   standardized reals; `read_table` infers the kinds (override with `column_types`) and
#   `decode`/`write_csv` invert the encoding.
# * `Mixed(heads)` puts one head per column under one `Autoregressive` distribution, with any
#   conditioner; the NLL adds probabilities of discrete columns and densities of standardized
#   real columns, and `log_scale` converts it to data units.
# * `column_nll` splits the NLL into the chain-rule factors, which shows where the dependencies
#   between columns pay off.
# * Conditioning is exact on the columns that come first in the order
#   (`order=table.order_first(...)`, `d.condition(x, mask)`); for other questions, pick another
#   order or sum over the earlier columns by Bayes' rule.
