"""Training works: maximum likelihood brings NADE and MADE to the true entropy of a known
model (exact by enumeration), and a MADE with mixture-of-Gaussians conditionals beats a
Gaussian on a ring-shaped 2-D data set.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

import pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians

F64 = torch.float64
N_VARS = 6


def true_fvsbn() -> pyro_ar.FVSBN:
    """A known small FVSBN with strong dependencies (weights of a few nats)."""
    torch.manual_seed(0)
    net = pyro_ar.FVSBN(event_size=N_VARS).double()
    with torch.no_grad():
        net.conditioner.weight.normal_(0.0, 2.0)
        net.conditioner.output_bias.normal_(0.0, 1.0)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def cross_entropy(p: pyro_ar.Autoregressive, q: pyro_ar.Autoregressive) -> torch.Tensor:
    """``-sum_x p(x) log q(x)`` by enumeration (equal to the entropy of p when q = p)."""
    x = p.enumerate_support()
    with torch.no_grad():
        return -(p.log_prob(x).exp() * q.log_prob(x)).sum(0)


@pytest.fixture(scope="module")
def binary_data():
    truth = true_fvsbn()
    pyro.set_rng_seed(0)
    data = truth().sample((2000,))
    return truth, data


def test_true_model_is_not_trivial(binary_data):
    truth, data = binary_data
    entropy = float(truth().entropy())
    # Far from independent uniform bits and from its own independent marginals.
    assert entropy < N_VARS * math.log(2) - 0.5
    marginals = data.mean(0).clamp(1e-3, 1 - 1e-3)
    independent = -(marginals * marginals.log() + (1 - marginals) * (1 - marginals).log()).sum()
    assert entropy < float(independent) - 0.2


def test_nade_trained_with_svi_reaches_the_entropy(binary_data):
    truth, data = binary_data
    torch.manual_seed(1)
    net = pyro_ar.NADE(event_size=N_VARS, hidden_size=16).double()
    start = float(cross_entropy(truth(), net()))

    def model(x):
        pyro.module("nade", net)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", net(), obs=x)

    pyro.clear_param_store()
    svi = SVI(model, lambda x: None, Adam({"lr": 0.08}), Trace_ELBO())
    for _ in range(60):
        svi.step(data)
    entropy = float(truth().entropy())
    end = float(cross_entropy(truth(), net()))
    assert start - entropy > 0.3  # the untrained model is far off
    assert end - entropy < 0.03, (end, entropy)  # KL(truth || model) in nats


@pytest.mark.parametrize("hidden_sizes", [[32], [32, 32]], ids=["1-layer", "2-layer"])
def test_made_reaches_the_entropy(binary_data, hidden_sizes):
    truth, data = binary_data
    torch.manual_seed(2)
    net = pyro_ar.MADE(event_size=N_VARS, hidden_sizes=hidden_sizes).double()
    start = float(cross_entropy(truth(), net()))
    opt = torch.optim.Adam(net.parameters(), lr=0.03)
    for _ in range(100):
        opt.zero_grad()
        loss = -net().log_prob(data).mean()
        loss.backward()
        opt.step()
    entropy = float(truth().entropy())
    end = float(cross_entropy(truth(), net()))
    assert start - entropy > 0.3
    assert end - entropy < 0.03, (end, entropy)  # KL(truth || model) in nats


def ring(num: int, generator: torch.Generator) -> torch.Tensor:
    """Points near a circle of radius 2: ``(num, 2)``."""
    angle = 2 * math.pi * torch.rand(num, generator=generator, dtype=F64)
    radius = 2.0 + 0.15 * torch.randn(num, generator=generator, dtype=F64)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], -1)


def test_made_mog_beats_a_gaussian_on_a_ring():
    gen = torch.Generator().manual_seed(0)
    train, test = ring(2000, gen), ring(1000, gen)
    # The maximum-likelihood diagonal Gaussian, in closed form.
    gaussian = dist.Normal(train.mean(0), train.std(0, unbiased=False)).to_event(1)
    gaussian_nll = -float(gaussian.log_prob(test).mean())

    torch.manual_seed(0)
    net = pyro_ar.MADE(event_size=2, hidden_sizes=[32, 32], conditional=MixtureOfGaussians(5)).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(100):
        opt.zero_grad()
        (-net().log_prob(train).mean()).backward()
        opt.step()
    with torch.no_grad():
        made_nll = -float(net().log_prob(test).mean())
    # The ring's own entropy is ~2.05 nats; the Gaussian's NLL is ~3.5.
    assert made_nll < gaussian_nll - 1.0, (made_nll, gaussian_nll)
