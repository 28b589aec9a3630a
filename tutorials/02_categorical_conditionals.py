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
# # 2. Categorical conditionals: grey levels, softmax, and inpainting
#
# The [first tutorial](01_binary_ar_models.ipynb) modelled black-and-white pixels with Bernoulli
# conditionals. Here each pixel takes one of $K$ grey levels, and each conditional becomes a
# **softmax** over $K$ values. We cover:
#
# 1. the digits quantized to $K = 4$ grey levels;
# 2. softmax conditionals, and why earlier values are fed back **one-hot**;
# 3. training FVSBN, NADE and MADE with `Categorical(K)` heads, and how their likelihoods
#    relate to those of the binarized model;
# 4. samples, and the sampling temperature;
# 5. **inpainting**: drawing the lower half of a digit given its upper half, exactly.

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import torch

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical
from pyro_ar.program.datasets import binarize, digits_split, load_digits, quantize

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
torch.manual_seed(0)
plt.rcParams.update({"figure.dpi": 72, "image.cmap": "gray_r", "axes.grid": False})
print(f"pyro_ar {pyro_ar.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")

# %% [markdown]
# ## 1. Digits with four grey levels
#
# The raw digits have 17 grey levels, $g \in \{0, \dots, 16\}$. `load_digits(kind="categorical",
# levels=K)` maps them to $K$ equal-width bins, $x = \lfloor gK/17 \rfloor$, a `torch.long` in
# $\{0, \dots, K-1\}$.

# %%
K = 4
x_train = load_digits("train", kind="categorical", levels=K)
x_valid = load_digits("valid", kind="categorical", levels=K)
x_test = load_digits("test", kind="categorical", levels=K)
if QUICK:
    x_train, x_valid, x_test = x_train[:200], x_valid[:100], x_test[:100]
n = x_train.shape[1]
print(f"train {tuple(x_train.shape)} {x_train.dtype}; level frequencies:",
      [round(f, 3) for f in torch.bincount(x_train.flatten(), minlength=K).div(x_train.numel()).tolist()])


def show_grid(images, title=None, ax=None, levels=K):
    # Tile up to 64 images (N, 64), 8 per row; NaN pixels (unobserved) are drawn light blue.
    images = images[:64].reshape(-1, 8, 8).float()
    rows = math.ceil(len(images) / 8)
    canvas = torch.full((rows * 9 - 1, min(len(images), 8) * 9 - 1), -1.0)  # -1: white gaps
    for k, img in enumerate(images):
        r, c = divmod(k, 8)
        canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img
    cmap = plt.get_cmap("gray_r").copy()
    cmap.set_under("white")
    cmap.set_bad("#c6dbef")
    ax = ax or plt.gca()
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=levels - 1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


plt.figure(figsize=(4, 4))
show_grid(x_train, f"training digits, {K} grey levels")
plt.show()

# %% [markdown]
# ## 2. Softmax conditionals and one-hot feedback
#
# With $K$ values per variable, each conditional is a categorical distribution whose $K$ logits
# $\theta_i(x_{<i}) \in \mathbb{R}^K$ come from the conditioner network:
#
# $$
# p(x_i = k \mid x_{<i}) = \operatorname{softmax}\big(\theta_i(x_{<i})\big)_k
# = \frac{\exp \theta_{ik}}{\sum_{l=1}^{K} \exp \theta_{il}} .
# $$
#
# A Bernoulli conditional is the case $K = 2$: $\operatorname{softmax}(\theta_{i0}, \theta_{i1})_1
# = \sigma(\theta_{i1} - \theta_{i0})$, with one redundant logit.
#
# How should an earlier value $x_j$ enter the network that predicts $x_i$? Feeding the integer
# $x_j$ itself would make its effect on every hidden unit *linear in the level*: level 2 would
# have to act exactly twice as much as level 1. Grey levels happen to be ordered, but the head
# should work for any categories, so `pyro_ar` feeds each earlier value **one-hot**,
# $e(x_j) \in \{0, 1\}^K$, and each level gets its own weight vector. In NADE the update of the
# hidden pre-activation becomes a lookup,
#
# $$
# a_{i+1} = a_i + W_{:, i, :}\, e(x_i) = a_i + W_{:, i, x_i},
# $$
#
# and the output layer produces $K$ logits per pixel. The parameter counts grow accordingly:
# NADE has $W$ ($d \times nK$), $c$ ($d$), $V$ ($nK \times d$), $b$ ($nK$), that is
# $2ndK + nK + d$; FVSBN has $K^2 n(n-1)/2 + nK$ unmasked weights.

# %%
head = Categorical(K)
print("one-hot feedback of the values [0, 2, 3]:")
print(head.encode(torch.tensor([0, 2, 3]), torch.float32))

hidden = 16 if QUICK else 64
made_hidden = [64] if QUICK else [256]
models = {
    "FVSBN": pyro_ar.FVSBN(event_size=n, conditional=Categorical(K)),
    "NADE": pyro_ar.NADE(event_size=n, hidden_size=hidden, conditional=Categorical(K)),
    "MADE": pyro_ar.MADE(event_size=n, hidden_sizes=made_hidden, conditional=Categorical(K)),
}
d = models["NADE"]()
print(d, "support:", d.support)
print("a sample:", d.sample().tolist()[:16], "...")
formulas = {"FVSBN": K * K * n * (n - 1) // 2 + n * K, "NADE": 2 * n * hidden * K + n * K + hidden}
for name, model in models.items():
    print(f"{name}: {sum(p.numel() for p in model.parameters()):7d} stored parameters", end="")
    print(f" (formula for the unmasked ones: {formulas[name]})" if name in formulas else "")


# %% [markdown]
# ## 3. Training
#
# The training loop is the one of the first tutorial: Adam on the negative log-likelihood,
# `loss = -model().log_prob(x).mean()`, keeping the parameters with the best validation score.
# Nothing in it depends on the kind of conditional.

# %%
@torch.no_grad()
def nll(model, data):
    # Mean negative log-likelihood, nats per image.
    return -model().log_prob(data).mean().item()


def fit(model, train, valid, epochs, lr=1e-2, batch_size=100):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    best, best_state, curve = float("inf"), None, []
    for epoch in range(epochs):
        for batch in train[torch.randperm(len(train))].split(batch_size):
            loss = -model().log_prob(batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        curve.append(nll(model, valid))
        if curve[-1] < best:
            best, best_state = curve[-1], {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return curve


def bits_per_dim(nats):
    return nats / (n * math.log(2))


epochs = 2 if QUICK else 50
curves = {}
for name, model in models.items():
    torch.manual_seed(0)
    start = time.perf_counter()
    curves[name] = fit(model, x_train, x_valid, epochs, lr=3e-3 if name == "MADE" else 1e-2)
    print(f"{name}: {time.perf_counter() - start:.1f} s")

plt.figure(figsize=(5, 3.2))
for name, curve in curves.items():
    plt.plot(range(1, len(curve) + 1), curve, label=name)
plt.xlabel("epoch")
plt.ylabel("validation NLL (nats / image)")
plt.legend()
plt.show()

print(f"{'model':6s} {'test NLL (nats)':>16s} {'bits/dim':>9s}   (a uniform model: {math.log2(K):.0f} bits/dim)")
for name, model in models.items():
    print(f"{name:6s} {nll(model, x_test):16.2f} {bits_per_dim(nll(model, x_test)):9.3f}")

# %% [markdown]
# NADE is again the best of the three, as with binary pixels.
#
# ## 4. Comparison with the binarized model
#
# The numbers above cannot be compared directly with the binary models of tutorial 1: the two
# models describe *different random variables*. But the two data sets are related exactly:
# the binarized image (grey level above 8) is a function of the 4-level image, $b = f(x)$ with
# $b_i = \mathbb{1}[x_i \ge 2]$ (checked below). For any model of $x$, the probability of $b$ is
# the total probability of all the $x$ that map to it, so
#
# $$
# p(b) = \sum_{x' : f(x') = b} p(x') \;\ge\; p(x)
# \quad\Longrightarrow\quad
# -\log p(x) = -\log p(b) - \log p(x \mid b) \;\ge\; -\log p(b).
# $$
#
# A finer quantization carries more information, and its NLL is larger by the cost of
# $p(x \mid b)$, the grey levels given the shape. To see how much, we train the same NADE on the
# same images at several resolutions: a `Bernoulli` head on the binarized images, a
# `Categorical(2)` head on the same binarized images (the same model family, so it should score
# the same), and `Categorical(K)` heads for $K = 4$ and $8$ levels.

# %%
raw_train, _ = digits_split("train")
print("binarized == (4-level >= 2):", torch.equal(binarize(raw_train).long(), (quantize(raw_train, 4) >= 2).long()))

cmp_epochs = 2 if QUICK else 40
settings = [
    ("binary, Bernoulli", Bernoulli(), dict(kind="bernoulli")),
    ("binary, Categorical(2)", Categorical(2), dict(kind="categorical", levels=2)),
    ("4 levels, Categorical(4)", Categorical(4), dict(kind="categorical", levels=4)),
    ("8 levels, Categorical(8)", Categorical(8), dict(kind="categorical", levels=8)),
]
resolution = {}
for label, head, data_kw in settings:
    tr, va, te = (load_digits(s, **data_kw) for s in ("train", "valid", "test"))
    if QUICK:
        tr, va, te = tr[:200], va[:100], te[:100]
    torch.manual_seed(0)
    model = pyro_ar.NADE(event_size=n, hidden_size=hidden, conditional=head)
    fit(model, tr, va, cmp_epochs)
    resolution[label] = nll(model, te)
    print(f"{label:26s} test NLL {resolution[label]:7.2f} nats = {bits_per_dim(resolution[label]):.3f} bits/dim")

plt.figure(figsize=(5.5, 2.6))
plt.barh(list(resolution)[::-1], [bits_per_dim(v) for v in resolution.values()][::-1])
plt.xlabel("test bits / dim (NADE)")
plt.show()

# %% [markdown]
# The Bernoulli and `Categorical(2)` heads reach nearly the same likelihood: a two-way softmax
# *is* a logistic regression. (The one-hot input even makes the `Categorical(2)` NADE slightly
# richer: every earlier pixel adds a weight vector to the hidden units whether it is on or off,
# which acts as a position-dependent hidden bias; this may explain its small edge.) Each step to finer grey levels costs more bits per
# pixel, because the model must now also say *how dark* each stroke pixel is. The difference
# between the 4-level and the binary NLL is the model's estimate of
# $\mathbb{E}[-\log p(x \mid b)]$, the information in the grey levels beyond the black-and-white
# shape.
#
# ## 5. Samples and temperature
#
# Sampling draws $x_1, x_2, \dots$ in turn, each one-hot encoded and fed back before the next
# conditional is computed. A **temperature** $T$ divides every conditional's logits,
# $p_T(x_i = k \mid x_{<i}) \propto \exp(\theta_{ik} / T)$: $T < 1$ sharpens each conditional
# (cleaner but less varied images), $T > 1$ flattens it, $T = 1$ is the model. `d.tempered(T)`
# is that tempered distribution, so `d.tempered(0.6).sample((64,))` draws from it. Note that this
# sharpens the conditionals one at a time; it is *not* the same as raising the joint $p(x)$ to the
# power $1/T$.

# %%
torch.manual_seed(1)
nade = models["NADE"]
panels = [
    ("test data", x_test),
    ("NADE, T = 1", nade().sample((64,))),
    ("MADE, T = 1", models["MADE"]().sample((64,))),
    ("NADE, T = 0.6", nade().tempered(0.6).sample((64,))),
]
fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
for ax, (title, images) in zip(axes, panels):
    show_grid(images, title, ax)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 6. Inpainting: the lower half given the upper half
#
# Suppose we observe the upper half of a digit, $x_o = (x_1, \dots, x_{32})$ in raster order,
# and want plausible lower halves $x_u = (x_{33}, \dots, x_{64})$. Because the observed pixels
# come **first in the model's order**, the chain rule splits exactly into the two pieces we need:
#
# $$
# p(x) = \underbrace{\prod_{i \le 32} p(x_i \mid x_{<i})}_{p(x_o)}
# \;\underbrace{\prod_{i > 32} p(x_i \mid x_{<i})}_{p(x_u \mid x_o)} .
# $$
#
# * The **marginal** $\log p(x_o)$ is the sum of the first 32 log-conditionals: one pass.
# * The **conditional** $p(x_u \mid x_o)$ is sampled by running the usual sampling loop with the
#   first 32 pixels clamped to their observed values.
#
# `d.condition(observed, observed_mask)` (`observed_mask` is `True` where a value is observed)
# returns this conditional as a distribution over the completions: `.sample(shape)` draws whole
# images with the observed pixels in place, `.log_prob(x)` is $\log p(x_u \mid x_o)$, and
# `.observed_log_prob` is the exact marginal $\log p(x_o)$. (`d.conditional_sample` and
# `d.marginal_log_prob` are shortcuts for the first and the last.) If the observed pixels were
# *not* a prefix of the order, $p(x_o)$ would need a sum
# over all values of the unobserved pixels that come earlier (up to $K^{32}$ terms here), and
# simply clamping values during sampling would draw from the wrong distribution; the library
# refuses rather than approximate.

# %%
top = torch.zeros(n, dtype=torch.bool)
top[:32] = True  # observe the first four rows of pixels
digits = x_test[:8]

torch.manual_seed(2)
lower_given_upper = nade().condition(digits, top)  # p(x_u | x_o), batch_shape (8,): one per digit
completions = lower_given_upper.sample((5,))  # (5, 8, 64)
print("completions:", tuple(completions.shape), "| observed pixels kept:", torch.equal(completions[..., :32], digits[:, :32].expand(5, 8, 32)))
print("log p(x_o) of each upper half:", lower_given_upper.observed_log_prob.detach().numpy().round(1))

shown_top = digits.float().clone()
shown_top[:, 32:] = float("nan")
fig, axes = plt.subplots(7, 1, figsize=(6.5, 6.8))
show_grid(digits, None, axes[0])
axes[0].set_ylabel("original", rotation=0, ha="right", va="center")
show_grid(shown_top, None, axes[1])
axes[1].set_ylabel("observed", rotation=0, ha="right", va="center")
for k in range(5):
    show_grid(completions[k], None, axes[k + 2])
    axes[k + 2].set_ylabel(f"sample {k + 1}", rotation=0, ha="right", va="center")
plt.suptitle("NADE: lower half drawn from p(lower | upper)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The completions agree with the observed top (it often fixes the digit) and differ where the
# top leaves room, for example in how a stroke ends.
#
# How much does the upper half help? With the raster model, $-\log p(x_u \mid x_o) =
# -\log p(x) + \log p(x_o)$ is exact (the `log_prob` of the conditioned distribution). For the *marginal* of the lower half we need a model in
# which the lower half comes first: `order="reverse"` draws pixel 64 first and pixel 1 last, so
# there $\log p(x_u)$ is an exact prefix marginal. The same reverse model can also complete the
# **top from the bottom**, which the raster model cannot do exactly: asking it raises an error
# that says why.

# %%
torch.manual_seed(0)
reverse = pyro_ar.NADE(event_size=n, hidden_size=hidden, conditional=Categorical(K), order="reverse")
fit(reverse, x_train, x_valid, epochs)
bottom = ~top
with torch.no_grad():
    cond = -nade().condition(x_test, top).log_prob(x_test).mean().item()  # -log p(x_u | x_o)
    marg = -reverse().condition(x_test, bottom).observed_log_prob.mean().item()  # -log p(x_u)
print(f"lower half, bits per pixel: alone {marg / (32 * math.log(2)):.3f} (reverse model), "
      f"given the upper half {cond / (32 * math.log(2)):.3f} (raster model)")
print(f"bits saved on the whole lower half by seeing the upper half: {(marg - cond) / math.log(2):.1f}")

try:
    nade().condition(digits, bottom)
except ValueError as err:
    print("\nraster model, top from bottom -> ValueError:", str(err)[:160], "...")

torch.manual_seed(3)
tops = reverse().condition(digits, bottom).sample((3,))
shown_bottom = digits.float().clone()
shown_bottom[:, :32] = float("nan")
fig, axes = plt.subplots(4, 1, figsize=(6.5, 4))
show_grid(shown_bottom, None, axes[0])
axes[0].set_ylabel("observed", rotation=0, ha="right", va="center")
for k in range(3):
    show_grid(tops[k], None, axes[k + 1])
    axes[k + 1].set_ylabel(f"sample {k + 1}", rotation=0, ha="right", va="center")
plt.suptitle("reverse-order NADE: upper half drawn from p(upper | lower)")
plt.tight_layout()
plt.show()

# %% [markdown]
# Seeing the upper half saves a few bits on the lower half as a whole, of the order of the
# $\log_2 10 \approx 3.3$ bits that name a digit: the two halves share mostly the identity of the
# digit, plus some of its style and position. (The two numbers come from two different models, so
# their difference is only an estimate of the mutual information between the halves.)
#
# An order-agnostic MADE (`num_masks > 1`) conditions the same way: `net().condition(observed,
# observed_mask)` is the mixture of its masks' completions, each weighted by its posterior
# probability, proportional to $p_m(x_o)$. That is exact when every mask puts the observed
# pixels first; with `admissible_only=True` each row uses only the masks that do (the exact
# conditional of their sub-mixture; `pyro_ar.inpainting.members_admitting` lists them).
#
# ## Summary
#
# * A `Categorical(K)` head gives softmax conditionals; earlier values are fed back one-hot, so
#   every level has its own weights. `Bernoulli` is the $K = 2$ case.
# * Likelihoods of the same images at different resolutions differ by the information in the
#   finer levels: $-\log p(x) = -\log p(b) - \log p(x \mid b)$.
# * Temperature sharpens or flattens each conditional during sampling.
# * When the observed variables come first in the order, inpainting is exact: the marginal is a
#   prefix sum of log-conditionals and the conditional is the sampling loop with the prefix
#   clamped. `d.condition(observed, observed_mask)` gives both: `.sample()`, `.log_prob()` and
#   `.observed_log_prob`.
#
# Next: [continuous conditionals](03_continuous_conditionals.ipynb) with mixtures of Gaussians.
