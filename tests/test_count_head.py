"""The count head (Poisson with a log-rate): stable scores, sampling from noise by the inverse
CDF, use alone and in a Mixed table, refusals (enumeration, tempering), data preparation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar.conditionals import Mixed, Poisson
from pyro_ar.conditionals.poisson import MAX_LOG_RATE

F64 = torch.float64


def test_log_prob_matches_scipy_and_stays_finite_for_large_counts():
    head = Poisson()
    eta = torch.tensor([-3.0, 0.0, 2.5, 9.0, 20.0], dtype=F64)
    k = torch.tensor([0.0, 1.0, 12.0, 8000.0, 1e9], dtype=F64)
    lp = head.log_prob(eta.view(5, 1), k)
    np.testing.assert_allclose(lp.numpy(), stats.poisson.logpmf(k.numpy(), np.exp(eta.numpy())), rtol=1e-10)
    # float32, far counts and rates at the clamp: finite, with finite gradients.
    eta32 = torch.tensor([[-1e6], [0.0], [1e6]], requires_grad=True)
    lp32 = head.log_prob(eta32, torch.tensor([0.0, 3.0e7, 1.0e30]))
    assert torch.isfinite(lp32).all()
    lp32.sum().backward()
    assert torch.isfinite(eta32.grad).all()
    assert head.log_rate(torch.tensor([[1e9]])).item() == MAX_LOG_RATE


@pytest.mark.parametrize("log_rate", [-4.0, 0.0, 1.5, 4.0, 12.0])
def test_inverse_cdf_sampler_follows_the_poisson(log_rate):
    torch.manual_seed(0)
    head = Poisson()
    n = 50_000
    params = torch.full((n, 1), log_rate, dtype=F64)
    x = head.sample(params)
    assert x.shape == (n,) and x.dtype == F64 and bool((x == x.round()).all()) and bool((x >= 0).all())
    rate = math.exp(log_rate)
    # The randomized PIT (u ~ U(F(x-1), F(x))) is uniform exactly when x follows the Poisson.
    lo, hi = stats.poisson.cdf(x.numpy() - 1, rate), stats.poisson.cdf(x.numpy(), rate)
    u = lo + np.random.default_rng(0).random(n) * (hi - lo)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    # Deterministic in the noise, and the smallest k with CDF(k) >= u.
    noise = torch.rand(200, 1, dtype=F64)
    k = head.sample_from_noise(params[:200], noise)
    assert torch.equal(k, head.sample_from_noise(params[:200], noise))
    cdf = torch.from_numpy(stats.poisson.cdf(k.numpy(), rate))
    below = torch.from_numpy(stats.poisson.cdf(k.numpy() - 1, rate))
    assert bool((cdf >= noise[:, 0] - 1e-12).all()) and bool((below < noise[:, 0] + 1e-12).all())


def test_a_count_model_samples_equal_the_naive_sampler_and_fit():
    torch.manual_seed(1)
    net = pyro_ar.MADE(4, hidden_sizes=[16], conditional=Poisson(), order="random", seed=2).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    d = net()
    torch.manual_seed(3)
    x = d.sample((30,))
    torch.manual_seed(3)
    noise = Poisson().draw_noise(torch.Size((30, 4)), F64, torch.device("cpu"))
    expected = torch.zeros(30, 4, dtype=F64)
    for step, i in enumerate(d.order.tolist()):
        params = net.conditioner(Poisson().encode(expected, F64), None)[..., i, :]
        expected[..., i] = Poisson().sample_from_noise(params, noise[..., step, :])
    assert torch.equal(x, expected)
    # Fitting counts: the NLL of data drawn from the model itself beats a unit-rate model.
    lp = d.log_prob(x)
    assert torch.isfinite(lp).all()


def test_refusals_are_clear():
    d = pyro_ar.NADE(3, hidden_size=4, conditional=Poisson())()
    assert not d.has_enumerate_support
    with pytest.raises(NotImplementedError, match="infinite support"):
        d.enumerate_support()
    with pytest.raises(NotImplementedError, match="infinite support"):
        d.entropy()
    with pytest.raises(NotImplementedError, match="monte_carlo_kl"):
        torch.distributions.kl_divergence(d, d)
    with pytest.raises(ValueError, match="Poisson needs temperature=1"):
        d.tempered(0.5).sample()
    with pytest.raises(NotImplementedError, match="reparameterized"):
        d.rsample()
    for bad in (torch.tensor([1.0, -1.0, 2.0]), torch.tensor([1.0, 0.5, 2.0]), torch.tensor([1.0, float("nan"), 2.0])):
        with pytest.raises(ValueError, match="support|NaN"):
            d.log_prob(bad)
    with pytest.raises(ValueError, match="bool"):
        d.log_prob(torch.tensor([True, False, True]))
    # In a Mixed table: the column is named.
    m = pyro_ar.FVSBN(2, conditional=Mixed([Poisson(), Poisson()]))()
    with pytest.raises(ValueError, match=r"column 1 \(Poisson\(\)\) holds -2.0"):
        m.log_prob(torch.tensor([3.0, -2.0]))


def test_counts_encode_as_log1p_and_register():
    head = Poisson()
    torch.testing.assert_close(head.encode(torch.tensor([[0.0, 1.0, 1e6]]), F64),
                               torch.log1p(torch.tensor([[0.0, 1.0, 1e6]], dtype=F64)).unsqueeze(-1))
    entry = pyro_ar.registry.head_entry("count")
    assert entry.cls is Poisson and Poisson.value_kind == "count"
    assert pyro_ar.models.head_from_config({"name": "count"}) == Poisson()
