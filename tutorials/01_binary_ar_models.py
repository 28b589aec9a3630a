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
# # 1. Binary autoregressive models: FVSBN, a per-pixel MLP, NADE and MADE
#
# This tutorial builds density models of black-and-white 8x8 digits, that is, of vectors
# $x \in \{0, 1\}^{64}$. It covers:
#
# 1. **The chain rule**: why every joint distribution is a product of one-dimensional
#    conditionals, in *any* order.
# 2. **Four ways to parameterize the conditionals**, each a step from the last: the fully
#    visible sigmoid belief network (FVSBN, logistic regression, $O(n^2)$ parameters), a
#    separate one-hidden-layer MLP per pixel (more flexible, but $O(n^2 d)$), the neural
#    autoregressive density estimator (NADE: the same MLPs with shared weights, $O(nd)$) and
#    the masked autoencoder (MADE, masks built from degrees).
# 3. **Maximum likelihood** and its link to the KL divergence; test negative log-likelihood
#    (NLL) in nats and in bits per dimension.
# 4. **Samples**, and why evaluating a density is *parallel* while sampling is *sequential*.
# 5. **Orders** and order-agnostic ensembles.
#
# Everything runs on a laptop CPU in a few minutes. The first cell reads
# `PYRO_AR_TUTORIAL_QUICK`: the test suite sets it to run a shrunken copy of this notebook
# (fewer epochs, less data), so the code here can never go stale. The outputs you see come
# from the full run.

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import torch

import pyro_ar
from pyro_ar.program.datasets import load_digits

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 72, "image.cmap": "gray_r", "axes.grid": False})
print(f"pyro_ar {pyro_ar.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")

# %% [markdown]
# ## 1. The chain rule
#
# We want a model $p(x)$ of binary vectors $x = (x_1, \dots, x_n)$. A lookup table of the
# joint needs $2^n - 1$ numbers: for $n = 64$ pixels that is about $1.8 \times 10^{19}$.
# The way out starts from an identity. Applying the definition of conditional probability,
# $p(a, b) = p(a)\, p(b \mid a)$, again and again gives the **chain rule**
#
# $$
# p(x) = p(x_1)\, p(x_2 \mid x_1)\, p(x_3 \mid x_1, x_2) \cdots p(x_n \mid x_1, \dots, x_{n-1})
#      = \prod_{i=1}^{n} p(x_i \mid x_{<i}),
# \qquad x_{<i} = (x_1, \dots, x_{i-1}).
# $$
#
# This is exact, with no assumption about $p$. Nothing in the argument depends on the names of
# the variables either: for any permutation $\sigma$ of $\{1, \dots, n\}$,
#
# $$
# p(x) = \prod_{k=1}^{n} p\big(x_{\sigma_k} \mid x_{\sigma_1}, \dots, x_{\sigma_{k-1}}\big).
# $$
#
# An **autoregressive (AR) model** picks an order and models each one-dimensional conditional
# $p(x_i \mid x_{<i})$ with a small parametric function of the past: a *regression of the
# variable on its own past*. Written as tables, the conditionals would still need
# $1 + 2 + 4 + \dots + 2^{n-1} = 2^n - 1$ numbers; the savings come entirely from the
# parametric form.
#
# Let us check the identity numerically on a random joint over three binary variables,
# rebuilding it from its conditionals in several orders:

# %%
gen = torch.Generator().manual_seed(1)
table = torch.rand(2, 2, 2, generator=gen, dtype=torch.float64)
table /= table.sum()  # a random joint p(x1, x2, x3)


def rebuild_from_conditionals(p, order):
    # Multiply the conditionals p(x_k | x_<k) of the variables taken in `order`.
    q = p.permute(order)  # axis k of q is variable order[k]
    n = q.dim()
    joint = torch.ones_like(q)
    for k in range(n):
        upto_k = q.sum(dim=tuple(range(k + 1, n)), keepdim=True) if k + 1 < n else q  # p(x_1..x_k)
        before_k = upto_k.sum(dim=k, keepdim=True)  # p(x_1..x_{k-1})
        joint = joint * (upto_k / before_k)  # times p(x_k | x_<k), broadcast over later axes
    return joint.permute(torch.argsort(torch.tensor(order)).tolist())  # back to (x1, x2, x3)


for order in [(0, 1, 2), (2, 0, 1), (1, 2, 0)]:
    err = (rebuild_from_conditionals(table, order) - table).abs().max().item()
    print(f"order {order}: max |product of conditionals - joint| = {err:.1e}")

# %% [markdown]
# Every order reproduces the joint exactly. Once the conditionals are *restricted* to a
# parametric family, though, different orders give different models: a conditional that is
# easy to express in one order can be hard in another. We come back to this at the end.
#
# ## 2. The data: binarized 8x8 digits
#
# `pyro_ar.program.datasets.load_digits` ships the 1,797 handwritten digits of the UCI optical
# recognition data set (no download), with a fixed split of 1,197 training, 300 validation and
# 300 test images. `kind` names the head the data are prepared for: `kind="bernoulli"`
# thresholds the 17 grey levels at half range. Each image is a row of 64 pixels in raster order
# (left to right, top to bottom).

# %%
x_train = load_digits("train", kind="bernoulli")
x_valid = load_digits("valid", kind="bernoulli")
x_test = load_digits("test", kind="bernoulli")
if QUICK:
    x_train, x_valid, x_test = x_train[:200], x_valid[:100], x_test[:100]
n = x_train.shape[1]
print(f"train {tuple(x_train.shape)}, valid {tuple(x_valid.shape)}, test {tuple(x_test.shape)}, dtype {x_train.dtype}")
print(f"fraction of pixels that are on: {x_train.mean():.3f}")


def show_grid(images, title=None, ax=None, levels=2):
    # Tile up to 64 images (N, 64) into an 8 x 8 grid of 8x8 digits.
    images = images[:64].reshape(-1, 8, 8).float()
    rows = math.ceil(len(images) / 8)
    canvas = torch.full((rows * 9 - 1, 8 * 9 - 1), float("nan"))
    for k, img in enumerate(images):
        r, c = divmod(k, 8)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img
    ax = ax or plt.gca()
    ax.imshow(canvas, vmin=0, vmax=levels - 1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


plt.figure(figsize=(4, 4))
show_grid(x_train, "training digits (binarized)")
plt.show()

# %% [markdown]
# ## 3. FVSBN: logistic regression on the past
#
# The simplest parametric conditional is a logistic regression on all earlier pixels. This is
# the **fully visible sigmoid belief network** (FVSBN):
#
# $$
# p(x_i = 1 \mid x_{<i}) = \sigma\Big(\alpha^{(i)}_0 + \sum_{j < i} \alpha^{(i)}_j x_j\Big),
# \qquad \sigma(a) = \frac{1}{1 + e^{-a}}.
# $$
#
# Conditional $i$ has $i$ parameters, so the model has $\sum_{i=1}^{n} i = n(n+1)/2 = O(n^2)$
# of them: 2,080 for $n = 64$, instead of $2^{64}$. The log-likelihood of an image is a sum of
# $n$ Bernoulli log-probabilities,
#
# $$
# \log p(x) = \sum_{i=1}^{n} \Big[ x_i \log \sigma(a_i) + (1 - x_i) \log\big(1 - \sigma(a_i)\big) \Big],
# \qquad a_i = \alpha^{(i)}_0 + \sum_{j<i} \alpha^{(i)}_j x_j ,
# $$
#
# and all the logits $a_i$ come out of **one** matrix product with a strictly lower-triangular
# weight matrix. In `pyro_ar`, `pyro_ar.FVSBN(event_size=64)` is a `torch.nn.Module`; calling it
# returns the distribution, an ordinary Pyro `TorchDistribution`:

# %%
fvsbn = pyro_ar.FVSBN(event_size=n)
d = fvsbn()
print(d)
print("batch_shape", tuple(d.batch_shape), "event_shape", tuple(d.event_shape))
print("log p(x) of three training images (untrained model):", d.log_prob(x_train[:3]))

# The same numbers by hand: logits = masked weight @ x + bias, then a sum of Bernoulli terms.
net = fvsbn.conditioner
logits = x_train[:3] @ net.masked_weight().T + net.output_bias[:, 0]
by_hand = torch.distributions.Bernoulli(logits=logits).log_prob(x_train[:3]).sum(-1)
print("the sum of logistic-regression log-likelihoods:    ", by_hand.detach())

plt.figure(figsize=(3, 3))
plt.imshow(net.mask, cmap="Blues")
plt.title("FVSBN mask: pixel $i$ (row) sees $j$ (column)")
plt.xlabel("input $j$")
plt.ylabel("conditional $i$")
plt.show()

# %% [markdown]
# The conditioner stores a dense $n \times n$ weight and multiplies it by the fixed mask above,
# so it *stores* $n^2 + n$ numbers but only the $n(n-1)/2 + n$ unmasked ones can affect the
# density. We will count both.
#
# ## 4. A separate MLP per pixel
#
# A logistic regression can only add up the evidence of the earlier pixels; it cannot express
# "pixel $i$ is on if pixel 3 *or* pixel 10 is on, but not both". A more flexible conditional
# puts a one-hidden-layer network in its place, a separate one for every pixel:
#
# $$
# h_i = \sigma\big(A_i\, x_{<i} + c_i\big), \qquad
# p(x_i = 1 \mid x_{<i}) = \sigma\big(V_i^\top h_i + b_i\big),
# $$
#
# with its own parameters $\theta_i = \{A_i \in \mathbb{R}^{d \times (i-1)},\ c_i \in \mathbb{R}^d,\
# V_i \in \mathbb{R}^d,\ b_i \in \mathbb{R}\}$ ($d$ hidden units; the lecture notes write
# $\alpha^{(i)}$ for $V_i$). Conditional $i$ has $d(i-1) + d + d + 1$ parameters, so the model
# has
#
# $$
# \sum_{i=1}^{n} \big(d(i-1) + 2d + 1\big) = d\,\frac{n(n-1)}{2} + n(2d + 1) = O(n^2 d).
# $$
#
# The $n^2$ comes from the input matrices: $A_i$ has one column per earlier pixel, and nothing
# is shared, so the effect of $x_1$ is learned $n - 1$ separate times (once in each of
# $A_2, \dots, A_n$), the effect of $x_2$ $n - 2$ times, and so on. Evaluating all $n$
# conditionals costs $O(n^2 d)$ time per image for the same reason.
#
# `pyro_ar.PerVariableMLP(event_size=n, hidden_size=d)` is this model. It stores every $A_i$
# as a full row of an $(n, d, n)$ tensor whose columns $j \ge i$ a fixed mask sets to zero, so
# all $n \cdot d$ hidden pre-activations come out of **one** masked matrix product, and the
# $n$ output layers out of one batched product. Below we evaluate the $n$ small networks one
# at a time, exactly as the formula says, and compare with that single pass:

# %%
hidden = 16 if QUICK else 64  # d, for this model and NADE
mlp = pyro_ar.PerVariableMLP(event_size=n, hidden_size=hidden)
for name, p in mlp.named_parameters():
    print(f"{name:32s} {tuple(p.shape)}")

net = mlp.conditioner
x = x_train[:5]
with torch.no_grad():
    logits = []
    for i in range(n):  # pixel i (0-based) sees x[:, :i]
        A_i, c_i, V_i, b_i = net.in_weight[i, :, :i], net.hidden_bias[i], net.out_weight[i, 0], net.output_bias[i, 0]
        h_i = torch.sigmoid(x[:, :i] @ A_i.T + c_i)  # its own hidden layer, (batch, d)
        logits.append(h_i @ V_i + b_i)
    separate = torch.stack(logits, -1)
    one_pass = net(x.unsqueeze(-1))[..., 0]  # (batch, n, 1) -> all logits at once
print("max difference, n separate MLPs vs one masked pass:", (separate - one_pass).abs().max().item())

# %% [markdown]
# ## 5. NADE: share the weights
#
# The per-pixel MLPs all do the same kind of work, reading the same earlier pixels, yet each
# learns its own copy of the weights. The **neural autoregressive density estimator** (NADE,
# Larochelle and Murray, 2011) *ties* them: every conditional uses the first $i - 1$ columns of
# one shared matrix $W \in \mathbb{R}^{d \times n}$ and one shared bias $c \in \mathbb{R}^d$,
# that is $A_i = W_{:,<i}$ and $c_i = c$,
#
# $$
# h_i = \sigma\big(W_{:,<i}\, x_{<i} + c\big), \qquad
# p(x_i = 1 \mid x_{<i}) = \sigma\big(V_i^\top h_i + b_i\big).
# $$
#
# The parameters are $W$ ($d \times n$), $c$ ($d$), $V$ ($n \times d$) and $b$ ($n$):
# $2nd + n + d = O(nd)$. The $n$ input matrices $A_i$, $d\,n(n-1)/2$ numbers together, collapse
# into the $dn$ numbers of $W$: column $W_{:,j}$ is *the* effect of $x_j$ on the hidden layer,
# learned once and reused by every later conditional. Sharing also saves time: the pre-activations
# $a_i = c + W_{:,<i} x_{<i}$ satisfy the recursion
#
# $$
# a_1 = c, \qquad a_{i+1} = a_i + W_{:,i}\, x_i ,
# $$
#
# so all $n$ hidden layers cost $O(nd)$, the price of a single dense layer. In a batch the
# recursion is a cumulative sum. Below we redo the recursion by hand with the parameters of a
# `pyro_ar.NADE` and compare with the library's single pass (its `in_weight[i]` is the column
# $W_{:,i}$ and `out_weight[i]` the row $V_i$):

# %%
nade = pyro_ar.NADE(event_size=n, hidden_size=hidden)
for name, p in nade.named_parameters():
    print(f"{name:32s} {tuple(p.shape)}")

net = nade.conditioner
x = x_train[:5]
with torch.no_grad():
    a = net.hidden_bias.expand(len(x), hidden)  # a_1 = c
    logits = []
    for i in range(n):
        h = torch.sigmoid(a)  # h_i depends on x_<i only
        logits.append(h @ net.out_weight[i, 0] + net.output_bias[i, 0])
        a = a + x[:, i : i + 1] * net.in_weight[i, 0]  # a_{i+1} = a_i + W[:, i] x_i
    recursion = torch.stack(logits, -1)
    one_pass = net(x.unsqueeze(-1))[..., 0]  # (batch, n, 1) -> all logits at once
print("max difference, recursion vs one pass:", (recursion - one_pass).abs().max().item())

# %% [markdown]
# So NADE *is* a per-pixel MLP, one whose $A_i$ and $c_i$ are tied. We can check that literally:
# copy NADE's $W$ into every $A_i$ (the mask keeps only the columns $j < i$), its $c$ into every
# $c_i$ and its $V$, $b$ into the output layers, and the two models give the same density.

# %%
tied = pyro_ar.PerVariableMLP(event_size=n, hidden_size=hidden)
with torch.no_grad():
    W = nade.conditioner.in_weight[:, 0, :].T  # (d, n): column j is W[:, j]
    tied.conditioner.in_weight.copy_(W.expand(n, hidden, n))  # A_i = W for every i, masked to W[:, <i]
    tied.conditioner.hidden_bias.copy_(nade.conditioner.hidden_bias.expand(n, hidden))  # c_i = c
    tied.conditioner.out_weight.copy_(nade.conditioner.out_weight)  # V_i
    tied.conditioner.output_bias.copy_(nade.conditioner.output_bias)  # b_i
    gap = (tied().log_prob(x_train[:100]) - nade().log_prob(x_train[:100])).abs().max().item()
print(f"max |log p(x)| difference, NADE vs the per-pixel MLP with tied weights: {gap:.1e}")

# %% [markdown]
# ## 6. MADE: masks from degrees
#
# An autoencoder maps $x$ to a reconstruction $\hat x$ through hidden layers, but $\hat x_i$
# may depend on $x_i$ itself, so $\prod_i \hat x_i^{x_i} (1 - \hat x_i)^{1 - x_i}$ is not a
# normalized density. The **masked autoencoder for distribution estimation** (MADE, Germain et
# al., 2015) removes exactly the connections that would let output $i$ see inputs $j \ge i$:
#
# * input $j$ gets the **degree** $m(j)$ = its position in the order ($1, \dots, n$);
# * every hidden unit $k$ gets a degree $m(k) \in \{1, \dots, n-1\}$, the largest input degree
#   it may see;
# * a weight from unit $j$ of one layer to unit $k$ of the next is kept iff $m(k) \ge m(j)$;
# * output $i$ keeps its weight from hidden unit $k$ iff $m(i) > m(k)$ (strictly).
#
# Along any path from input $j$ to output $i$ the degrees never decrease and then strictly
# increase, so $m(j) < m(i)$: the autoregressive property holds for any depth. (A hidden unit of
# degree $n$ could feed no output, so degrees stop at $n - 1$.) Here are the masks of a small
# MADE with $n = 5$ and two hidden layers of 8 units, and the product of the masks, which shows
# which inputs can reach which outputs:

# %%
small = pyro_ar.MADE(event_size=5, hidden_sizes=[8, 8], order=[2, 0, 4, 1, 3]).conditioner
order = small.orders[0]
masks = [getattr(small, f"masks_{l}")[0] for l in range(3)]  # (out, in) per layer
print("order:", order.tolist(), "-> input degrees m(j) =", (torch.argsort(order) + 1).tolist())
print("hidden degrees, layer 1:", small.hidden_degrees_0[0].tolist())
print("hidden degrees, layer 2:", small.hidden_degrees_1[0].tolist())

reach = masks[2] @ masks[1] @ masks[0]  # number of paths from input j to output i
x0 = torch.randn(1, 5, 1)
jac = torch.autograd.functional.jacobian(lambda v: small(v)[0, :, 0], x0)[:, 0, :, 0]

fig, axes = plt.subplots(1, 5, figsize=(13, 2.8), gridspec_kw={"width_ratios": [5, 8, 8, 5, 5]})
titles = ["input -> layer 1\n$m(k) \\geq m(j)$", "layer 1 -> layer 2\n$m(k) \\geq m(j)$", "layer 2 -> output\n$m(i) > m(k)$"]
for ax, m, t in zip(axes[:3], masks, titles):
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_title(t, fontsize=10)
    ax.set_xlabel("from")
    ax.set_ylabel("to")
axes[3].imshow(reach > 0, cmap="Blues")
axes[3].set_title("paths input j -> output i", fontsize=10)
axes[4].imshow(jac.abs() > 0, cmap="Blues")
axes[4].set_title("nonzero d output_i / d x_j", fontsize=10)
for ax in axes[3:]:
    ax.set_xlabel("input j")
    ax.set_ylabel("output i")
plt.tight_layout()
plt.show()


# %% [markdown]
# With the order $(2, 0, 4, 1, 3)$, variable 2 is drawn first (it sees nothing: row 2 is empty),
# variable 0 sees only variable 2, and so on; the Jacobian of the real network has exactly the
# allowed pattern. Unlike NADE's hidden layer, MADE's layers are ordinary dense layers, so
# several layers and several masks (orders) are equally easy.
#
# ## 7. Parameter counts
#
# Now the models we will train on the 64-pixel digits. The helper counts the *effective*
# parameters (weights that a mask zeroes cannot influence the density) next to the stored ones,
# and checks them against the formulas: FVSBN $n(n+1)/2$, the per-pixel MLP
# $d\,n(n-1)/2 + n(2d+1)$ and NADE $2nd + n + d$, with the same $d$ for the last two. (MADE's
# count depends on how the hidden degrees fall, so it has no closed form here.)

# %%
def count_parameters(model):
    # (stored, effective): effective leaves out the weights that a mask sets to zero.
    stored = sum(p.numel() for p in model.parameters())
    c = model.conditioner
    masked = 0
    if isinstance(c, pyro_ar.nn.FVSBN):
        masked = int((c.mask == 0).sum())
    elif isinstance(c, pyro_ar.nn.PerVariableMLP):  # one mask row per variable, shared by its d units
        masked = int((c.mask == 0).expand_as(c.in_weight).sum())
    elif isinstance(c, pyro_ar.nn.MADE):
        masked = sum(int((getattr(c, f"masks_{l}")[0] == 0).sum()) for l in range(len(c.hidden_sizes) + 1))
    return stored, stored - masked


made_hidden = [64] if QUICK else [256]
models = {
    "FVSBN": pyro_ar.FVSBN(event_size=n),
    "PerVariableMLP": pyro_ar.PerVariableMLP(event_size=n, hidden_size=hidden),
    "NADE": pyro_ar.NADE(event_size=n, hidden_size=hidden),
    "MADE": pyro_ar.MADE(event_size=n, hidden_sizes=made_hidden),
}
d = hidden
formulas = {"FVSBN": n * (n + 1) // 2, "PerVariableMLP": d * n * (n - 1) // 2 + n * (2 * d + 1), "NADE": 2 * n * d + n + d}
print(f"n = {n}, d = {d}")
print(f"{'model':15s} {'stored':>8s} {'effective':>10s} {'formula':>8s}")
for name, model in models.items():
    stored, effective = count_parameters(model)
    formula = formulas.get(name)
    assert formula is None or effective == formula, (name, effective, formula)
    print(f"{name:15s} {stored:8d} {effective:10d} {formula or '-':>8}" + ("   = formula" if formula else ""))
effective = {name: count_parameters(model)[1] for name, model in models.items()}
print(f"sharing the input weights divides the count by {effective['PerVariableMLP'] / effective['NADE']:.1f} "
      f"(the input matrices alone: d n(n-1)/2 = {d * n * (n - 1) // 2} numbers vs d n = {d * n}, a factor (n-1)/2 = {(n - 1) / 2})")


# %% [markdown]
# ## 8. Learning: maximum likelihood is forward KL
#
# We fit the parameters $\theta$ by making $p_\theta$ close to the data distribution in
# Kullback-Leibler divergence:
#
# $$
# D_{\mathrm{KL}}(p_{\text{data}} \,\|\, p_\theta)
# = \mathbb{E}_{x \sim p_{\text{data}}}\big[\log p_{\text{data}}(x)\big]
# - \mathbb{E}_{x \sim p_{\text{data}}}\big[\log p_\theta(x)\big].
# $$
#
# The first term does not depend on $\theta$ (it is minus the entropy of the data), so
# minimizing the KL is the same as maximizing the expected log-likelihood. We do not know
# $p_{\text{data}}$, but the training set is a sample from it, so we maximize the Monte-Carlo
# estimate $\frac{1}{|D|}\sum_{x \in D} \log p_\theta(x)$ (**maximum likelihood**), with
# stochastic gradients on mini-batches. This *forward* KL heavily penalizes a model that gives
# almost no probability to images the data produces (it is "mode covering").
#
# During training the model sees the **true** pixels $x_{<i}$ when it predicts $x_i$ (this is
# called *teacher forcing*): all $n$ conditionals, and so $\log p_\theta(x)$, come out of one
# parallel pass. The whole training loop is a few lines; we also keep the parameters that did
# best on the validation set (early stopping).

# %%
@torch.no_grad()
def nll(model, data):
    # Mean negative log-likelihood in nats per image.
    return -model().log_prob(data).mean().item()


def fit(model, epochs, lr=1e-2, batch_size=100, **call):
    # Adam on the NLL; returns the validation curve and keeps the best parameters.
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, curve = float("inf"), None, []
    for epoch in range(epochs):
        for batch in x_train[torch.randperm(len(x_train))].split(batch_size):
            loss = -model(**call).log_prob(batch).mean()  # teacher forcing: one pass
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve.append(nll(model, x_valid))
        if curve[-1] < best:
            best, best_state = curve[-1], {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return curve


epochs = 2 if QUICK else 60
curves, seconds = {}, {}
for name, model in models.items():
    torch.manual_seed(0)
    start = time.perf_counter()
    curves[name] = fit(model, epochs, lr=3e-3 if name == "MADE" else 1e-2)
    seconds[name] = time.perf_counter() - start
    print(f"{name}: {epochs} epochs in {seconds[name]:.1f} s, best validation NLL {min(curves[name]):.2f} nats")

# %% [markdown]
# As a reference point we also score the best model that ignores all dependencies: independent
# Bernoulli pixels with the training frequencies (the maximum-likelihood fit, in closed form,
# lightly smoothed so that no pixel has probability exactly 0 or 1).
#
# Test NLL is reported in **nats per image** and in **bits per dimension**,
# $\text{bits/dim} = \text{NLL} / (n \ln 2)$: the average number of bits per pixel that an
# ideal compressor using the model would need.

# %%
freq = (x_train.sum(0) + 1) / (len(x_train) + 2)
independent = torch.distributions.Independent(torch.distributions.Bernoulli(probs=freq), 1)
baseline = -independent.log_prob(x_test).mean().item()

plt.figure(figsize=(5, 3.2))
for name, curve in curves.items():
    plt.plot(range(1, len(curve) + 1), curve, label=name)
plt.axhline(-independent.log_prob(x_valid).mean().item(), color="gray", ls="--", label="independent pixels")
plt.xlabel("epoch")
plt.ylabel("validation NLL (nats / image)")
plt.legend()
plt.show()

print(f"{'model':20s} {'params':>7s} {'train NLL':>10s} {'test NLL (nats)':>16s} {'bits/dim':>9s} {'gain vs independent':>20s}")
train_baseline = -independent.log_prob(x_train).mean().item()
print(f"{'independent pixels':20s} {n:7d} {train_baseline:10.2f} {baseline:16.2f} {baseline / (n * math.log(2)):9.3f} {0:20.2f}")
results = {}
for name, model in models.items():
    results[name] = nll(model, x_test)
    print(f"{name:20s} {effective[name]:7d} {nll(model, x_train):10.2f} {results[name]:16.2f} "
          f"{results[name] / (n * math.log(2)):9.3f} {baseline - results[name]:20.2f}")
print(f"\nPerVariableMLP vs NADE (same d = {d}): test NLL {results['PerVariableMLP'] - results['NADE']:+.2f} nats "
      f"with {effective['PerVariableMLP'] / effective['NADE']:.1f}x the parameters")
print(f"NADE vs FVSBN: test NLL {results['NADE'] - results['FVSBN']:+.2f} nats "
      f"with {effective['NADE'] / effective['FVSBN']:.1f}x the parameters")

# %% [markdown]
# Every AR model is far better than independent pixels (the last column): the dependencies
# between pixels are most of the structure of a digit. Along this tutorial's progression:
#
# * **FVSBN -> per-pixel MLP**: the hidden layer is what buys most. Both hidden-layer models of
#   the same form, the per-pixel MLP and NADE, beat the linear FVSBN clearly.
# * **per-pixel MLP -> NADE**: untying the weights gives the per-pixel MLP many times NADE's
#   parameters (the first line under the table) and the lowest *training* NLL, but on
#   the test set it keeps only a small part of that lead: most of its extra parameters fit the
#   1,197 training images rather than digits in general (its gap between training and test NLL
#   is the largest in the table). NADE's one shared $W$ gets nearly the same test likelihood
#   from a small fraction of the parameters, and a pass that costs $O(nd)$ instead of
#   $O(n^2 d)$ (timed below).
# * **MADE**, with a wider but masked hidden layer and about twice NADE's effective parameters,
#   lands between FVSBN and NADE on this small training set.
#
# More parameters do not buy more likelihood by themselves; how they are shared matters.
#
# ## 9. Samples
#
# Sampling follows the chain rule forward: draw $x_1 \sim p(x_1)$, then
# $x_2 \sim p(x_2 \mid x_1)$, and so on, each conditional fed with the values just drawn.
# `d.sample((64,))` does exactly that.

# %%
torch.manual_seed(1)
fig, axes = plt.subplots(1, len(models) + 1, figsize=(3.4 * (len(models) + 1), 3.8))
show_grid(x_test, "test data", axes[0])
for ax, (name, model) in zip(axes[1:], models.items()):
    show_grid(model().sample((64,)), f"{name} samples", ax)
plt.tight_layout()
plt.show()


# %% [markdown]
# The samples are recognizable strokes, but many are not clean digits: a maximum-likelihood
# model trained on 1,197 images spreads its probability over everything plausible (the
# mode-covering behaviour of forward KL), and a single wrong early pixel cannot be corrected by
# the later ones.
#
# ## 10. Density evaluation is parallel, sampling is sequential
#
# To evaluate $\log p(x)$ the whole vector $x$ is known, so every conditional
# $p(x_i \mid x_{<i})$ can be computed at once (teacher forcing). To *sample*, $x_{<i}$ does not
# exist until it has been drawn: the $n$ draws form a chain of $n$ dependent steps. A naive
# sampler would run the full network once per pixel, $n$ passes for one image. `pyro_ar`'s
# sampler keeps an incremental state instead (NADE's running $a_i$; FVSBN's running logits; the
# per-pixel MLP's running pre-activations $A_i x_{<i} + c_i$ of every pixel's hidden layer, one
# column added per drawn pixel; MADE's hidden units computed once, as soon as their inputs are
# known), so the arithmetic of a full sample is about that of one pass, but the $n$ steps remain
# sequential.
#
# FVSBN goes one step further. If the randomness is drawn first, a logistic number $L_i$ per
# pixel with $x_i = 1$ exactly when $\text{logit}_i > L_i$ (which happens with probability
# $\sigma(\text{logit}_i)$), then each pixel is a deterministic function of the earlier ones. A
# block of pixels can then be *guessed* all at once and corrected in rounds: each round recomputes
# the block's logits from the previous round's pixels with one matrix product. After round $t$ the
# first $t$ pixels of the block are certainly right, and a round that changes nothing has found
# exactly the sample that drawing one pixel at a time would give. Weakly coupled pixels settle in
# a few rounds, far fewer than the block's length. The per-pixel MLP's sampler does the same
# with the block's hidden pre-activations (one matrix product per round), and so does MADE's:
# within a block, only the hidden units whose degree falls inside the block depend on the
# guesses.
#
# Below we time, for 1,000 images: `log_prob` (one pass), the library's `sample`, and a naive
# sampler that calls the conditioner on the whole partial image for each new pixel.

# %%
@torch.no_grad()
def naive_sample(model, num):
    # One full forward pass per variable: n passes for a batch of images.
    c = model.conditioner
    x = torch.zeros(num, n)
    for i in c.orders[0].tolist():
        logit = c(x.unsqueeze(-1))[:, i, 0]  # parameters of x_i given the pixels drawn so far
        x[:, i] = torch.bernoulli(torch.sigmoid(logit))
    return x


def best_time(fn, repeats=1 if QUICK else 3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


num = 50 if QUICK else 1000
batch = x_train[:num] if len(x_train) >= num else x_train.repeat(num // len(x_train) + 1, 1)[:num]
timings = {}
for name, model in models.items():
    d = model()
    with torch.no_grad():
        timings[name] = (
            best_time(lambda: d.log_prob(batch)),
            best_time(lambda: d.sample((num,))),
            best_time(lambda: naive_sample(model, num), repeats=1),
        )
    lp, smp, naive = timings[name]
    print(f"{name}: log_prob {1e3 * lp:6.1f} ms | sample {1e3 * smp:6.1f} ms ({smp / lp:4.0f}x) | naive sample {1e3 * naive:7.1f} ms ({naive / lp:4.0f}x)")

fig, ax = plt.subplots(figsize=(7, 3))
width = 0.27
for k, label in enumerate(["log_prob (one pass)", "sample (incremental)", "naive sample (n passes)"]):
    ax.bar([i + (k - 1) * width for i in range(len(timings))], [1e3 * t[k] for t in timings.values()], width, label=label)
ax.set_xticks(range(len(timings)), list(timings), fontsize=9)
ax.set_yscale("log")
ax.set_ylabel(f"ms for {num} images")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# Sampling costs more than a density evaluation even with incremental state, because its
# $n = 64$ steps are small, dependent operations (Python loop overhead and tiny matrix products)
# instead of one large, parallel one. The naive sampler is slower still: it redoes the whole
# network for each pixel, $n$ times the arithmetic of one pass. For FVSBN and NADE the
# incremental sampler does the same arithmetic as `log_prob` in total, the per-pixel MLP's
# about half of it before the rounds described above (each drawn pixel feeds only the later
# pixels' hidden layers), and MADE's
# incremental sampler also evaluates each hidden unit once. The rounds over blocks of pixels
# cut the number of sequential steps for FVSBN, the per-pixel MLP and MADE, which keeps their
# samplers far below the naive ones. The per-pixel MLP has the slowest `log_prob` of the four:
# its single pass still does the $O(n^2 d)$ arithmetic of $n$ separate hidden layers, where
# NADE's shared $W$ needs $O(nd)$.
#
# Teacher forcing is only correct because of the autoregressive property: the parameters of
# $x_i$ computed in the parallel pass must not depend on $x_i, \dots, x_n$. We can check it
# directly: changing the "future" pixels of an image leaves the parameters of the past untouched.

# %%
x = x_test[:1].clone()
i = 31  # 1-based: flip pixels i..n, watch the logits of pixels 1..i
future_changed = x.clone()
future_changed[:, i - 1 :] = 1 - future_changed[:, i - 1 :]
for name, model in models.items():
    c = model.conditioner
    with torch.no_grad():
        before = c(x.unsqueeze(-1))[0, :i, 0]
        after = c(future_changed.unsqueeze(-1))[0, :i, 0]
    print(f"{name}: flipping x_{i}..x_{n} changes the logits of x_1..x_{i} by at most {(before - after).abs().max():.1e}")

# %% [markdown]
# ## 11. Orders and order-agnostic ensembles
#
# The chain rule holds in any order, but with restricted conditionals the order changes the
# model. `order=` takes a permutation, `"reverse"` or `"random"` (with a `seed`). Below, NADE is
# trained in the raster order (top-left first), in the reverse order, and in a random order, in
# which each conditional predicts a pixel from a scattered set of earlier ones.
#
# MADE can go one step further: with `num_masks=M` it holds $M$ masks, each with its own order
# and hidden degrees, trained together by drawing one mask per step
# (`model(mask_index="random")`; `model(mask_index=m)` is mask $m$'s chain). `model()` is then
# a `pyro_ar.distributions.Ensemble`, whose `.members` are the $M$ chains, and its density is
# the exact **mixture**
#
# $$
# p(x) = \frac{1}{M} \sum_{m=1}^{M} p_m(x), \qquad
# \log p(x) = \operatorname{logsumexp}_m \log p_m(x) - \log M,
# $$
#
# an ensemble of AR models that share their weights (an average of the logits would not be a
# normalized density).

# %%
order_epochs = 1 if QUICK else 40
variants = {
    "NADE, raster order": pyro_ar.NADE(event_size=n, hidden_size=hidden),
    "NADE, reverse order": pyro_ar.NADE(event_size=n, hidden_size=hidden, order="reverse"),
    "NADE, random order": pyro_ar.NADE(event_size=n, hidden_size=hidden, order="random", seed=0),
}
for name, model in variants.items():
    torch.manual_seed(0)
    fit(model, order_epochs)
    print(f"{name:22s} test NLL {nll(model, x_test):6.2f} nats")

num_masks = 2 if QUICK else 8
ensemble = pyro_ar.MADE(event_size=n, hidden_sizes=made_hidden, num_masks=num_masks, seed=0)
torch.manual_seed(0)
fit(ensemble, 2 * order_epochs, lr=3e-3, mask_index="random")
with torch.no_grad():
    mixture = ensemble()  # a pyro_ar.distributions.Ensemble of num_masks chains
    per_mask = [-member.log_prob(x_test).mean().item() for member in mixture.members]
print(type(mixture).__name__, "of", len(mixture.members), "members; the first:", mixture.members[0])
print(f"MADE, {num_masks} masks: single masks {min(per_mask):.2f} .. {max(per_mask):.2f} nats, "
      f"exact mixture of all masks {nll(ensemble, x_test):.2f} nats")

# %% [markdown]
# On these digits the three orders end within a fraction of a nat of each other: NADE's hidden
# layer can use any earlier pixel, wherever it lies, so the order matters less than one might
# expect (it matters more for models with short memories, such as an RNN or a small convolution).
#
# The mixture of masks always scores at least as well as the average single mask, by Jensen's
# inequality ($\log \frac1M \sum_m p_m \ge \frac1M \sum_m \log p_m$), and here it also beats
# the best single mask. Sharing one network between many orders costs some accuracy per order
# (each mask is worse than the single-order MADE above); the ensemble wins part of it back, and
# in exchange the network can condition on many more patterns of observed pixels (see the
# inpainting section of the next tutorial).
#
# ## Summary
#
# * The chain rule writes any joint as a product of one-dimensional conditionals, in any order;
#   an AR model parameterizes those conditionals.
# * FVSBN: logistic regression on the past, $O(n^2)$ parameters. Per-pixel MLP: a separate
#   hidden layer $h_i = \sigma(A_i x_{<i} + c_i)$ for each pixel, $O(n^2 d)$ parameters and time.
#   NADE: the same hidden layers with tied weights $A_i = W_{:,<i}$, $c_i = c$, so $O(nd)$
#   parameters and time, thanks to $a_{i+1} = a_i + W_{:,i} x_i$. MADE: a masked MLP of any
#   depth; masks come from degrees.
# * Maximum likelihood minimizes the forward KL from the data to the model; report test NLL in
#   nats or bits/dim.
# * `log_prob` is one parallel pass (teacher forcing); `sample` is $n$ sequential steps.
#
# Next: [categorical conditionals](02_categorical_conditionals.ipynb) for more than two grey
# levels, and inpainting.
