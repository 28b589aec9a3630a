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
# # 4. pyro_ar inside Pyro: likelihood, decoder, prior, guide, and KL
#
# Every `pyro_ar` model returns an ordinary Pyro distribution, so it can appear at any
# `pyro.sample` site. This tutorial uses one in each role:
#
# 1. **as a likelihood**, `pyro.sample("x", net(), obs=x)`, trained with SVI (which is then plain
#    maximum likelihood), and with a `context`: a class-conditional model $p(x \mid y)$ that also
#    classifies;
# 2. **as the decoder of a VAE**, $p(x \mid z)$ with `context=z`, against a factorized decoder;
# 3. **as a learned prior** $p(z)$ over the latent space of a VAE;
# 4. **as a guide** (variational posterior) with mixture-of-Gaussians conditionals, whose samples
#    are reparameterized;
# 5. **KL divergences** between AR models: exact by enumeration and by Monte Carlo, and the link
#    between maximum likelihood and the forward KL.

# %%
# %matplotlib inline
import math
import os
import time

import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from torch import nn
from torch.distributions import kl_divergence

import pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians
from pyro_ar.kl import monte_carlo_kl
from pyro_ar.program.datasets import binarize, digits_split

QUICK = os.environ.get("PYRO_AR_TUTORIAL_QUICK") == "1"  # set by the test suite
pyro.set_rng_seed(0)
plt.rcParams.update({"figure.dpi": 72, "axes.grid": False})
print(f"pyro_ar {pyro_ar.__version__}, pyro {pyro.__version__}, torch {torch.__version__}: {'quick' if QUICK else 'full'} mode")


def load(split, limit):
    images, labels = digits_split(split)
    return binarize(images)[:limit], labels[:limit]


limit = 300 if QUICK else None
(x_train, y_train), (x_valid, y_valid), (x_test, y_test) = (load(s, limit) for s in ("train", "valid", "test"))
n = x_train.shape[1]


def show_rows(rows, labels, title=None, ax=None):
    # One row of 8x8 images per entry of `rows` (each (k, 64)), with a label on the left.
    k = max(len(r) for r in rows)
    canvas = torch.full((len(rows) * 9 - 1, k * 9 - 1), float("nan"))
    for r, images in enumerate(rows):
        for c, img in enumerate(images):
            canvas[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = img.reshape(8, 8)
    ax = ax or plt.gca()
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([4 + 9 * r for r in range(len(rows))], labels)
    ax.set_xticks([])
    if title:
        ax.set_title(title)


# %% [markdown]
# ## 1. As a likelihood
#
# Inside a model, an AR distribution is observed like any other. Under `pyro.plate` the model's
# `batch_shape` `()` is expanded to the plate size, and `log_prob` scores each image in one pass.
# With no latent variables the guide is empty, the ELBO *is* the log-likelihood, and SVI is
# maximum likelihood with the optimizer of your choice:

# %%
nade = pyro_ar.NADE(event_size=n, hidden_size=16 if QUICK else 64)


def model(x):
    pyro.module("nade", nade)
    with pyro.plate("data", len(x)):
        pyro.sample("x", nade(), obs=x)


def guide(x):  # no latent variables
    pass


svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
print(f"SVI loss {svi.evaluate_loss(x_test):.2f} = -sum log p(x) {-nade().log_prob(x_test).sum().item():.2f}")

epochs = 2 if QUICK else 40
for epoch in range(epochs):
    for batch in x_train[torch.randperm(len(x_train))].split(100):
        svi.step(batch)
print(f"after {epochs} epochs of SVI: test NLL {svi.evaluate_loss(x_test) / len(x_test):.2f} nats per image")

# %% [markdown]
# ### With a context: a class-conditional model that classifies
#
# With `context_size=c`, calling the model with a context tensor of shape `(*batch, c)` gives a
# distribution with `batch_shape = batch`: here $p(x \mid y)$ with the one-hot digit label as
# context (the context shifts NADE's hidden units and every output). A generative model of each
# class is also a classifier, by Bayes' rule:
#
# $$
# p(y \mid x) = \frac{p(x \mid y)\, p(y)}{\sum_{y'} p(x \mid y')\, p(y')} .
# $$
#
# Scoring every test image under all ten contexts is one broadcast `log_prob`: a distribution with
# `batch_shape` `(10,)` and images of shape `(N, 1, 64)` give a `(N, 10)` table.

# %%
cond_nade = pyro_ar.NADE(event_size=n, hidden_size=16 if QUICK else 64, context_size=10)


def class_model(x, y):
    pyro.module("cond_nade", cond_nade)
    with pyro.plate("data", len(x)):
        pyro.sample("x", cond_nade(F.one_hot(y, 10).float()), obs=x)


svi = SVI(class_model, lambda x, y: None, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
for epoch in range(epochs):
    perm = torch.randperm(len(x_train))
    for idx in perm.split(100):
        svi.step(x_train[idx], y_train[idx])

with torch.no_grad():
    d = cond_nade(torch.eye(10))  # batch_shape (10,): one distribution per class
    log_lik = d.log_prob(x_test.unsqueeze(1))  # (N, 10)
    log_prior = torch.bincount(y_train, minlength=10).float().log()
    accuracy = ((log_lik + log_prior).argmax(-1) == y_test).float().mean().item()
    print(f"batch_shape {tuple(d.batch_shape)} -> log p(x | y) table {tuple(log_lik.shape)}")
    print(f"test accuracy of the generative classifier: {accuracy:.3f}")
    torch.manual_seed(0)
    samples = d.sample((8,))  # (8, 10, 64)
plt.figure(figsize=(5, 6))
show_rows([samples[:, k] for k in range(10)], [f"y = {k}" for k in range(10)], "samples of p(x | y)")
plt.show()


# %% [markdown]
# ## 2. As the decoder of a VAE
#
# A variational autoencoder has a latent $z \sim \mathcal{N}(0, I)$, a decoder $p(x \mid z)$ and
# an encoder (guide) $q(z \mid x)$, and maximizes the evidence lower bound
#
# $$
# \log p(x) \;\ge\; \mathrm{ELBO}(x) = \mathbb{E}_{q(z \mid x)}\big[\log p(x \mid z)\big]
# - D_{\mathrm{KL}}\big(q(z \mid x) \,\|\, p(z)\big).
# $$
#
# The usual decoder makes the pixels independent given $z$,
# $p(x \mid z) = \prod_i \mathrm{Bernoulli}(x_i; \sigma(f_i(z)))$, so every correlation between
# pixels must pass through $z$. An **AR decoder** is a MADE with `context=z`:
# $p(x \mid z) = \prod_i p(x_i \mid x_{<i}, z)$, which can model the local correlations itself.
# We train both with the same encoder, seed and budget, and compare the ELBO, its two terms (the
# *distortion* $-\mathbb{E}_q \log p(x \mid z)$ and the *rate* $D_{\mathrm{KL}}(q \| p)$), and a
# tighter importance-weighted bound,
# $\log \frac1S \sum_{s} \frac{p(x, z_s)}{q(z_s \mid x)}$ with $S = 100$ samples $z_s \sim q$.

# %%
class Encoder(nn.Module):
    # q(z | x) = Normal(loc(x), scale(x)), an MLP.
    def __init__(self, latent, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n, hidden), nn.Softplus(), nn.Linear(hidden, 2 * latent))

    def forward(self, x):
        loc, raw = self.net(x).chunk(2, -1)
        return dist.Normal(loc, F.softplus(raw) + 1e-3).to_event(1)


class FactorizedDecoder(nn.Module):
    # p(x | z) = prod_i Bernoulli(x_i | logit_i(z)): pixels independent given z.
    def __init__(self, latent, hidden=128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.Softplus(), nn.Linear(hidden, n))

    def forward(self, z):
        return dist.Bernoulli(logits=self.net(z)).to_event(1)


def standard_normal(latent):
    return dist.Normal(torch.zeros(latent), 1.0).to_event(1)


def make_vae(encoder, decoder, prior):
    # prior: a callable returning p(z) (a fixed Normal, or a pyro_ar model).
    def model(x):
        pyro.module("decoder", decoder)
        if isinstance(prior, nn.Module):
            pyro.module("prior", prior)
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", prior())
            pyro.sample("x", decoder(z), obs=x)

    def guide(x):
        pyro.module("encoder", encoder)
        with pyro.plate("data", len(x)):
            pyro.sample("z", encoder(x))

    return model, guide


def train_vae(model, guide, steps, lr=3e-3, batch_size=100):
    pyro.clear_param_store()
    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), Trace_ELBO())
    for step in range(steps):
        svi.step(x_train[torch.randint(len(x_train), (batch_size,))])


@torch.no_grad()
def bounds(encoder, decoder, prior, x, particles=100):
    # Per image: ELBO, its distortion and rate terms (Monte Carlo), and the importance-weighted bound.
    q = encoder(x)
    z = q.sample((particles,))  # (S, N, latent)
    log_lik = decoder(z).log_prob(x)  # (S, N)
    log_ratio = q.log_prob(z) - prior().log_prob(z)  # log q - log p(z)
    elbo = log_lik - log_ratio
    iw = torch.logsumexp(elbo, 0) - math.log(particles)
    return {"ELBO": elbo.mean().item(), "distortion": -log_lik.mean().item(),
            "rate": log_ratio.mean().item(), "IW bound (S=100)": iw.mean().item()}


latent = 8
vae_steps = 50 if QUICK else 1500
vaes = {}
for name in ["factorized decoder", "AR decoder (MADE)"]:
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    encoder = Encoder(latent)
    if name.startswith("AR"):
        decoder = pyro_ar.MADE(event_size=n, hidden_sizes=[128], context_size=latent)
    else:
        decoder = FactorizedDecoder(latent)
    prior = lambda: standard_normal(latent)  # noqa: E731
    start = time.perf_counter()
    train_vae(*make_vae(encoder, decoder, prior), vae_steps)
    vaes[name] = (encoder, decoder, prior)
    print(f"{name}: {vae_steps} SVI steps in {time.perf_counter() - start:.0f} s")

print(f"\n{'test, nats per image':22s} " + " ".join(f"{k:>17s}" for k in bounds(*vaes[name], x_test[:10])))
for name, parts in vaes.items():
    print(f"{name:22s} " + " ".join(f"{v:17.2f}" for v in bounds(*parts, x_test).values()))

# %% [markdown]
# The AR decoder gives a better bound on $\log p(x)$, by about a nat in the ELBO and half a nat
# in the importance-weighted bound. It also uses the latent code
# differently: its rate (the information that $z$ carries about $x$, in nats) is smaller, because
# the decoder can describe the local structure of the strokes by itself and leaves to $z$ only the
# global information (which digit, which style). Taken to the extreme, a powerful AR decoder can
# ignore $z$ entirely ("posterior collapse", rate 0); the rate is the number to watch.
#
# The difference is visible in samples $z \sim \mathcal{N}(0, I)$, $x \sim p(x \mid z)$: given $z$,
# the factorized decoder flips every pixel independently, which gives speckled images, while the AR
# decoder draws pixels that agree with each other.

# %%
torch.manual_seed(1)
z = torch.randn(8, latent)
rows, labels = [], []
with torch.no_grad():
    for name, (encoder, decoder, prior) in vaes.items():
        rows += [decoder(z).sample() for _ in range(2)]
        labels += [f"{name.split(' (')[0]}, draw {k + 1}" for k in range(2)]
plt.figure(figsize=(6, 3))
show_rows(rows, labels, "same 8 latent codes z, two draws of x ~ p(x | z) each")
plt.show()

# %% [markdown]
# ## 3. As a prior
#
# The prior $p(z)$ of a VAE need not be a fixed $\mathcal{N}(0, I)$. The ELBO pays the rate
# $\mathbb{E}_{q}[\log q(z \mid x) - \log p(z)]$, which is smallest when $p(z)$ matches the
# *aggregate posterior* $\frac1N \sum_j q(z \mid x_j)$, usually a lumpy, clustered cloud. A
# mixture-of-Gaussians MADE over $z$ can learn that shape; its parameters are trained together
# with the decoder and the encoder, simply by registering it with `pyro.module` and using it at
# the `z` site (no closed-form KL is needed: `Trace_ELBO` estimates the rate by sampling).
#
# We use a two-dimensional latent space, so that we can look at it, and the factorized decoder,
# which must rely on $z$.

# %%
latent2 = 2
prior_vaes = {}
for name in ["N(0, I) prior", "MoG-MADE prior"]:
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    encoder, decoder = Encoder(latent2), FactorizedDecoder(latent2)
    if name.startswith("MoG"):
        prior = pyro_ar.MADE(event_size=latent2, hidden_sizes=[32, 32], conditional=MixtureOfGaussians(8))
    else:
        prior = lambda: standard_normal(latent2)  # noqa: E731
    train_vae(*make_vae(encoder, decoder, prior), vae_steps)
    prior_vaes[name] = (encoder, decoder, prior)
    result = bounds(encoder, decoder, prior, x_test)
    print(f"{name:15s} test ELBO {result['ELBO']:7.2f} = -(distortion {result['distortion']:5.2f} + rate {result['rate']:4.2f}),"
          f" IW bound {result['IW bound (S=100)']:7.2f} nats")

lim = 4.0
grid = torch.linspace(-lim, lim, 100)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
points = torch.stack([gx.flatten(), gy.flatten()], -1)
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, (name, (encoder, decoder, prior)) in zip(axes, prior_vaes.items()):
    with torch.no_grad():
        density = prior().log_prob(points).exp().reshape(100, 100)
        means = encoder(x_test).mean
    ax.contourf(gx, gy, density, levels=15, cmap="Greys")
    sc = ax.scatter(*means.T, c=y_test, cmap="tab10", s=6)
    ax.set_title(name)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
fig.suptitle("prior density (grey) and encoder means of the test digits (colour)")
plt.show()

# %% [markdown]
# The learned prior is no longer round: it adapts to the cloud of codes, and the encoder, no
# longer pulled towards one round Gaussian, spreads the classes further apart. Both bounds improve.
# The rate does not fall here, it even rises a little: with a prior that fits the codes, it pays
# to put more information into $z$, and the distortion falls by more than the rate rises. The ELBO
# is a trade-off between the two terms, and a better prior moves the optimum of that trade-off.
#
# ## 4. As a guide
#
# Variational inference fits a guide $q(z)$ to a posterior $p(z \mid y)$ by maximizing the ELBO,
# that is by minimizing the **reverse** KL, $D_{\mathrm{KL}}(q \,\|\, p(\cdot \mid y))
# = \log p(y) - \mathrm{ELBO}(q)$. Its gradient needs samples of $q$ that are differentiable in
# $q$'s parameters. A mixture-of-Gaussians conditional has no simple "noise to sample" map (the
# choice of component is discrete), so `pyro_ar` uses **implicit reparameterization**: a sample
# $x = F^{-1}(u)$ of the mixture's CDF $F$ has $\partial x / \partial \theta =
# -\big(\partial F(x; \theta) / \partial \theta\big) / p(x; \theta)$, applied conditional by
# conditional through the chain. So `rsample` works, `has_rsample` is `True`, and Pyro's
# `Trace_ELBO` takes pathwise gradients.
#
# A posterior that a Gaussian cannot fit: $z \sim \mathcal{N}(0, I_2)$ and one observation
# $y \sim \mathcal{N}(z_1 z_2, 0.3^2)$ with $y = 1$. The posterior lives on the two branches of the
# hyperbola $z_1 z_2 = 1$. In two dimensions we can compute $\log p(y)$ on a grid, so each guide's
# gap $\log p(y) - \mathrm{ELBO}$, its KL from the posterior, is known.

# %%
y_obs = torch.tensor(1.0)


def hyperbola_model(y):
    z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    pyro.sample("y", dist.Normal(z[..., 0] * z[..., 1], 0.3), obs=y)


# log p(y) by quadrature on a fine grid (float64).
g = torch.linspace(-5, 5, 1001, dtype=torch.float64)
z1, z2 = torch.meshgrid(g, g, indexing="xy")
log_joint = (dist.Normal(0.0, 1.0).log_prob(z1) + dist.Normal(0.0, 1.0).log_prob(z2)
             + dist.Normal(z1 * z2, 0.3).log_prob(y_obs.double()))
log_evidence = (torch.logsumexp(log_joint.flatten(), 0) + 2 * math.log(g[1] - g[0])).item()
print(f"log p(y) = {log_evidence:.4f}")

guide_net = pyro_ar.MADE(event_size=2, hidden_sizes=[32, 32], conditional=MixtureOfGaussians(4))


def mog_made_guide(y):
    pyro.module("guide_net", guide_net)
    pyro.sample("z", guide_net())


print("MoG-MADE guide has_rsample:", guide_net().has_rsample)
guides = {
    "AutoNormal (mean field)": AutoNormal(hyperbola_model),
    "AutoMultivariateNormal": AutoMultivariateNormal(hyperbola_model),
    "MoG-MADE guide (K = 4)": mog_made_guide,
}
guide_steps = 50 if QUICK else 1000
guide_samples = {}
for name, guide in guides.items():
    pyro.clear_param_store()
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    svi = SVI(hyperbola_model, guide, pyro.optim.Adam({"lr": 0.01}),
              Trace_ELBO(num_particles=16, vectorize_particles=True, max_plate_nesting=0))
    for step in range(guide_steps):
        svi.step(y_obs)
    elbo = -Trace_ELBO(num_particles=4000, vectorize_particles=True, max_plate_nesting=0).loss(hyperbola_model, guide, y_obs)
    with torch.no_grad():
        if name.startswith("MoG"):
            guide_samples[name] = guide_net().sample((1000,))
        else:
            guide_samples[name] = torch.stack([guide(y_obs)["z"] for _ in range(1000)])
    print(f"{name:26s} ELBO {elbo:7.3f}   KL(q || posterior) = log p(y) - ELBO = {log_evidence - elbo:.3f}")

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, (name, zs) in zip(axes, guide_samples.items()):
    ax.contourf(z1, z2, log_joint.exp(), levels=12, cmap="Greys")
    ax.scatter(*zs.T, s=2, alpha=0.5, color="tab:red")
    ax.set_title(name)
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
    ax.set_aspect("equal")
plt.show()

# %% [markdown]
# The Gaussian guides can only place one ellipse across a curved, two-branched posterior; the
# reverse KL they minimize is *mode seeking* and punishes any mass outside the posterior, so they
# shrink into a compromise. The AR guide, $q(z_1)\, q(z_2 \mid z_1)$ with mixture conditionals,
# follows both branches and nearly closes the gap.
#
# ## 5. KL divergences between AR models
#
# For discrete AR models small enough to enumerate, `torch.distributions.kl_divergence(p, q)` is
# exact:
#
# $$
# D_{\mathrm{KL}}(p \,\|\, q) = \sum_{x} p(x) \big(\log p(x) - \log q(x)\big),
# $$
#
# a sum over all $2^n$ binary vectors. Otherwise `pyro_ar.kl.monte_carlo_kl(p, q, N)` averages
# $\log p(x_s) - \log q(x_s)$ over $x_s \sim p$ and returns the estimate with its standard error.
# To have models with real structure, we fit them to a $4 \times 3$ patch of the digits
# ($n = 12$, 4,096 joint values): $p$ a NADE, $q$ an FVSBN and, as a third model, independent
# pixels (a factorized `Bernoulli(...).to_event(1)`, for which the KL rules also work).

# %%
patch = torch.tensor([8 * r + c for r in range(2, 6) for c in range(2, 5)])  # rows 2-5, columns 2-4
p_train, p_valid = x_train[:, patch], x_valid[:, patch]
m = len(patch)


def fit_ml(net, data, epochs, lr=1e-2):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for epoch in range(epochs):
        for batch in data[torch.randperm(len(data))].split(100):
            loss = -net().log_prob(batch).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


torch.manual_seed(0)
kl_epochs = 3 if QUICK else 60
p_net = fit_ml(pyro_ar.NADE(event_size=m, hidden_size=16), p_train, kl_epochs)
q_net = fit_ml(pyro_ar.FVSBN(event_size=m), p_train, max(1, kl_epochs // 6))  # deliberately under-trained
with torch.no_grad():
    p, q = p_net(), q_net()
    independent = dist.Bernoulli(probs=p_train.mean(0).clamp(0.01, 0.99)).to_event(1)
    print(f"H(p) = {p.entropy().item():.3f} nats (exact, by enumeration)")
    for name, other in [("q (FVSBN)", q), ("independent pixels", independent)]:
        print(f"KL(p || {name}) = {kl_divergence(p, other).item():.4f},  KL({name} || p) = {kl_divergence(other, p).item():.4f}")

# %% [markdown]
# The KL is not symmetric: $D_{\mathrm{KL}}(p \| q)$ weighs the log-ratio by $p$, the other
# direction by $q$. Now the Monte-Carlo estimator against the exact value, with error bars of two
# standard errors, for growing sample sizes:

# %%
exact = kl_divergence(p, q).item()
sizes = [10, 30, 100, 300, 1000] if QUICK else [10, 30, 100, 300, 1000, 3000, 10000, 30000]
torch.manual_seed(0)
estimates = []
with torch.no_grad():
    for size in sizes:
        est, se = monte_carlo_kl(p, q, size)
        estimates.append((est.item(), se.item()))
        print(f"N = {size:6d}: {est.item():.4f} +- {se.item():.4f}   (exact {exact:.4f})")

est, se = map(torch.tensor, zip(*estimates))
plt.figure(figsize=(5.5, 3.2))
plt.errorbar(sizes, est, yerr=2 * se, fmt="o", capsize=3, label="Monte Carlo, $\\pm 2$ s.e.")
plt.axhline(exact, color="k", ls="--", label="exact (enumeration)")
plt.xscale("log")
plt.xlabel("number of samples N")
plt.ylabel("KL(p || q), nats")
plt.legend()
plt.show()

try:
    mog = pyro_ar.MADE(event_size=2, hidden_sizes=[8], conditional=MixtureOfGaussians(2))
    kl_divergence(mog(), mog())
except NotImplementedError as err:
    print("continuous models:", str(err)[:150], "...")

# %% [markdown]
# The estimates scatter around the exact value with a spread that shrinks like $1/\sqrt{N}$, and
# about 95% of the $\pm 2$ s.e. bars cover it. For continuous heads no exact KL exists, and the
# error message points to the Monte-Carlo estimator.
#
# ### Maximum likelihood minimizes the forward KL
#
# Because the KL decomposes as cross-entropy minus entropy,
#
# $$
# \mathbb{E}_{x \sim p}\big[-\log q_\theta(x)\big] = H(p) + D_{\mathrm{KL}}(p \,\|\, q_\theta),
# $$
#
# the expected NLL of a model $q_\theta$ under data from $p$ is the entropy of $p$ (a floor no model
# can beat) plus the forward KL. Maximum likelihood on samples of $p$ therefore drives
# $D_{\mathrm{KL}}(p \| q_\theta)$ down. With an enumerable "data distribution" $p$ we can watch
# both sides: we train a student NADE on 2,000 samples of $p$ and track the exact KL and the NLL on
# the training samples and on fresh samples.

# %%
torch.manual_seed(1)
with torch.no_grad():
    samples, fresh = p.sample((2000,)), p.sample((2000,))
    entropy = p.entropy().item()
student = pyro_ar.NADE(event_size=m, hidden_size=16)
opt = torch.optim.Adam(student.parameters(), lr=1e-2)
history = []
for epoch in range(3 if QUICK else 40):
    with torch.no_grad():
        history.append((kl_divergence(p, student()).item(), -student().log_prob(samples).mean().item(),
                        -student().log_prob(fresh).mean().item()))
    for batch in samples[torch.randperm(len(samples))].split(100):
        loss = -student().log_prob(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
kl_curve, train_nll, fresh_nll = zip(*history)
print(f"after training: exact KL(p || student) = {kl_curve[-1]:.4f} nats; H(p) + KL = {entropy + kl_curve[-1]:.4f}, "
      f"NLL on fresh samples = {fresh_nll[-1]:.4f}")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
axes[0].plot([entropy + k for k in kl_curve], "k", label="H(p) + KL(p || q)  (exact)")
axes[0].plot(train_nll, label="NLL on the 2,000 training samples")
axes[0].plot(fresh_nll, ls="--", label="NLL on fresh samples")
axes[0].axhline(entropy, color="gray", ls=":", label="H(p)")
axes[0].set_xlabel("epoch")
axes[0].set_ylabel("nats")
axes[0].legend(fontsize=8)
axes[1].semilogy(kl_curve)
axes[1].set_xlabel("epoch")
axes[1].set_ylabel("exact KL(p || student), nats")
plt.tight_layout()
plt.show()

# %% [markdown]
# Both sample NLLs are Monte-Carlo estimates of the exact curve $H(p) + D_{\mathrm{KL}}(p \| q_\theta)$
# and follow it, offset by their sampling noise (a few hundredths of a nat with 2,000 samples). In
# expectation they can only approach $H(p)$ from above. A student that overfit its finite training
# sample would show a training NLL falling below the exact curve; with 12 variables and 2,000
# samples this one hardly does, and its exact KL keeps decreasing.
#
# ## Summary
#
# * An AR model is an ordinary Pyro distribution: observe it (`obs=`), condition it on a `context`,
#   use it under plates; with SVI and no latents, training is maximum likelihood.
# * As a VAE decoder it models the correlations between pixels that a factorized decoder leaves
#   to the latent code: a better bound, a smaller rate, coherent samples.
# * As a learned prior it adapts to the aggregate posterior and lowers the rate.
# * As a guide, mixture-of-Gaussians conditionals with implicit reparameterization fit curved,
#   multimodal posteriors that Gaussian guides cannot.
# * `kl_divergence` between small discrete AR models is exact (by enumeration);
#   `pyro_ar.kl.monte_carlo_kl` gives an estimate with its standard error otherwise.
#   Maximum likelihood minimizes the forward KL: expected NLL $= H(p) + D_{\mathrm{KL}}(p \| q)$.
