"""Mixture-of-Gaussians AR models: normalization by quadrature, goodness of fit, far
outliers, gradients, and use as a prior under NUTS.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pyro.distributions.testing.gof as gof
import pytest
import torch
from pyro.infer import MCMC, NUTS

import pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians

F64 = torch.float64
# Pyro's density-binning test is approximate: over 16 seeds its p-values for samples drawn
# with torch's own MixtureSameFamily sampler were below 0.05 for 30-55% of seeds on these 2-d
# models (not uniform). So its bound is loose; the stretched samples below sit at 1e-25 or
# lower, and the exact test of samples is the Rosenblatt one in test_conformance.py.
GOF_FAILURE_RATE = 1e-5

FACTORIES = {
    "fvsbn": lambda **kw: pyro_ar.FVSBN(**kw),
    "nade": lambda **kw: pyro_ar.NADE(hidden_size=8, **kw),
    "made": lambda **kw: pyro_ar.MADE(hidden_sizes=[8, 8], **kw),
    "made-ensemble": lambda **kw: pyro_ar.MADE(hidden_sizes=[8], num_masks=3, **kw),
}
models = pytest.mark.parametrize("model", list(FACTORIES))


def build(model: str, n: int, context_size=None, dtype=F64, seed: int = 0, spread: float = 0.4):
    """A MoG(3) model with every parameter perturbed (multimodal, dependent conditionals)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FACTORIES[model](event_size=n, conditional=MixtureOfGaussians(3), context_size=context_size).to(dtype)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(spread * torch.randn_like(p))
    return net


def context(batch: int = 3, size: int = 2) -> torch.Tensor:
    return torch.randn(batch, size, generator=torch.Generator().manual_seed(5), dtype=F64)


def grid(n: int, half_width: float = 10.0, points: int = 241) -> tuple:
    """A regular grid ``(points^n, n)`` over ``[-half_width, half_width]^n`` and its spacing."""
    axis = torch.linspace(-half_width, half_width, points, dtype=F64)
    mesh = torch.stack(torch.meshgrid(*[axis] * n, indexing="ij"), -1)
    return mesh.reshape(-1, n), axis[1] - axis[0]


def integrate(density: torch.Tensor, n: int, points: int, h: float) -> torch.Tensor:
    """Trapezoidal rule over the grid of :func:`grid`: ``density: (points^n, *)`` -> ``(*)``."""
    d = density.reshape((points,) * n + density.shape[1:])
    for _ in range(n):
        d = torch.trapezoid(d, dx=h, dim=0)
    return d


# ---- normalization -------------------------------------------------------------------------


@models
@pytest.mark.parametrize("n", [1, 2], ids=["1d", "2d"])
@pytest.mark.parametrize("context_size", [None, 2], ids=["noctx", "ctx"])
def test_integrates_to_one(model, n, context_size):
    net = build(model, n, context_size)
    points = 241 if n == 2 else 4001
    x, h = grid(n, points=points)
    with torch.no_grad():
        if context_size is None:
            density = net().log_prob(x).exp()
        else:
            density = net(context(2)).log_prob(x.unsqueeze(-2)).exp()  # (points^n, 2)
    total = integrate(density, n, points, float(h))
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-3, rtol=0)


# ---- samples follow the density ----------------------------------------------------------


def goodness_of_fit(d, x: torch.Tensor) -> float:  # with the exact_chi2sf fixture (conftest)
    """Pyro's density (1-D) or nearest-neighbour (n-D) goodness of fit of ``x: (N, n)`` to ``d``."""
    with torch.no_grad():
        return gof.auto_goodness_of_fit(x, d.log_prob(x).exp())


@models
@pytest.mark.parametrize("n", [1, 2], ids=["1d", "2d"])
@pytest.mark.parametrize("context_size", [None, 2], ids=["noctx", "ctx"])
def test_goodness_of_fit(model, n, context_size, exact_chi2sf):
    d = build(model, n, context_size)(None if context_size is None else context(1)[0])
    pyro.set_rng_seed(0)
    x = d.sample((4000,))
    assert goodness_of_fit(d, x) > GOF_FAILURE_RATE
    # The same bound rejects samples of the same law stretched by 1.5 (a scale bug).
    assert goodness_of_fit(d, 1.5 * x) < GOF_FAILURE_RATE


# ---- numerics -----------------------------------------------------------------------------


@models
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_far_outliers_are_finite(model, dtype):
    net = build(model, 2, dtype=dtype)
    big = 1e6
    x = torch.tensor([[big, big], [-big, big], [0.0, big], [big, 0.0], [-big, -big], [0.0, 0.0]], dtype=dtype)
    x.requires_grad_(True)
    lp = net().log_prob(x)
    assert torch.isfinite(lp).all(), lp
    assert (lp[:5] < -1e3).all() and lp[5] > -20  # far points are very unlikely, the bulk is not
    (grad,) = torch.autograd.grad(lp.sum(), x)
    assert torch.isfinite(grad).all(), grad
    assert grad[:5].abs().amax(-1).min() > 1.0  # far out, the density keeps pulling back


@models
@pytest.mark.parametrize("context_size", [None, 2], ids=["noctx", "ctx"])
def test_gradients_wrt_every_parameter(model, context_size):
    net = build(model, 2, context_size)
    torch.manual_seed(0)
    x = 2 * torch.randn(64, 2, dtype=F64)
    c = None if context_size is None else torch.randn(64, context_size, dtype=F64)
    net(c).log_prob(x).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().max() > 0, f"{name} has an all-zero gradient"


@models
def test_gradient_in_x_matches_finite_differences(model):
    net = build(model, 2, context_size=2)
    d = net(context(1)[0])
    x = torch.tensor([[0.3, -1.2], [1.5, 0.7], [-2.0, 2.5]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(d.log_prob, (x,), eps=1e-6, atol=1e-6)


# ---- as a prior under NUTS -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")
def test_nuts_with_a_mog_ar_prior():
    """NUTS over ``z ~ MADE-MoG, y ~ Normal(z, 0.5)``: finite draws whose mean matches the
    posterior mean computed by quadrature on a grid."""
    net = build("made", 2, seed=3, spread=0.3)
    for p in net.parameters():
        p.requires_grad_(False)
    y = torch.tensor([0.8, -0.4], dtype=F64)
    sigma = 0.5

    def model():
        z = pyro.sample("z", net())
        pyro.sample("y", dist.Normal(z, sigma).to_event(1), obs=y)

    pyro.set_rng_seed(0)
    kernel = NUTS(model, max_tree_depth=4, jit_compile=True, ignore_jit_warnings=True)
    mcmc = MCMC(kernel, warmup_steps=150, num_samples=150, disable_progbar=True)
    mcmc.run()
    z = mcmc.get_samples()["z"]
    assert z.shape == (150, 2) and torch.isfinite(z).all()

    x, h = grid(2, half_width=8.0, points=321)
    with torch.no_grad():
        log_post = net().log_prob(x) + dist.Normal(x, sigma).log_prob(y).sum(-1)
    w = (log_post - log_post.max()).exp()
    w = w / w.sum()
    mean = (w.unsqueeze(-1) * x).sum(0)
    std = ((w.unsqueeze(-1) * (x - mean) ** 2).sum(0)).sqrt()
    # 150 correlated draws: allow about 4 standard errors at an effective sample size of ~40.
    assert ((z.mean(0) - mean).abs() < 4 * std / math.sqrt(40)).all(), (z.mean(0), mean, std)
    assert ((z.std(0) - std).abs() < 0.5 * std).all(), (z.std(0), std)
