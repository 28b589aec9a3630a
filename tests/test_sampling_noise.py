"""Sampling as a function of noise: the heads' noise samplers, and the sampling loop
(step by step, or FVSBN's and MADE's blocks by fixed-point rounds) against a naive sampler
that reruns the whole conditioner once per variable with the same noise."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.reparam import mixture_cdf

F64 = torch.float64
N = 200_000


# ---- heads --------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_bernoulli_noise_sampler_frequencies(temperature):
    torch.manual_seed(0)
    logits = torch.tensor([-3.0, -0.4, 0.0, 1.2, 4.0], dtype=F64)
    head = Bernoulli()
    params = logits.unsqueeze(-1).expand(N, 5, 1)
    x = head.sample(params, temperature)
    assert x.shape == (N, 5) and x.dtype == F64
    p = torch.sigmoid(logits / temperature)
    # Within 5 standard errors per entry.
    assert ((x.mean(0) - p).abs() <= 5 * (p * (1 - p) / N).sqrt() + 1e-12).all(), (x.mean(0), p)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_categorical_noise_sampler_frequencies(temperature):
    torch.manual_seed(1)
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0], dtype=F64)
    x = Categorical(4).sample(logits.expand(N, 4), temperature)
    assert x.shape == (N,) and x.dtype == torch.long
    counts = torch.bincount(x, minlength=4).double()
    expected = torch.softmax(logits / temperature, -1) * N
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, 3) > 1e-4, (counts, expected)


def test_mixture_noise_sampler_follows_the_mixture():
    torch.manual_seed(2)
    head = MixtureOfGaussians(3)
    params = torch.tensor([0.5, -1.0, 0.2, -2.0, 0.5, 3.0, 0.0, -1.5, 0.3], dtype=F64)
    x = head.sample(params.expand(20_000, 9))
    u = mixture_cdf(x, *head.split(params))  # uniform exactly when x follows the mixture
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3
    with pytest.raises(ValueError, match="temperature"):
        head.sample(params, temperature=2.0)


@pytest.mark.parametrize("head", [Bernoulli(), Categorical(3), MixtureOfGaussians(2)], ids=repr)
def test_noise_has_the_declared_shape(head):
    noise = head.draw_noise(torch.Size([4, 5]), F64, torch.device("cpu"))
    assert noise.shape == (4, 5, head.noise_size) and noise.dtype == F64


# ---- the sampling loop against a naive sampler with the same noise ---------------------------


def naive_sample(d, noise, temperature=1.0, observed=None, mask=None):
    """Rerun the whole conditioner of the chain ``d`` for each variable, drawing it from
    ``noise[..., step, :]`` with the conditional's logits divided by ``temperature``."""
    head, cond = d.conditional, d.conditioner  # d's one order: a conditioner or a member view
    order = d.order.tolist()
    x = torch.zeros(noise.shape[:-1], dtype=head.sample_dtype(F64))
    for step, i in enumerate(order):
        params = cond(head.encode(x, F64), d.context)[..., i, :]
        value = head.sample_from_noise(params, noise[..., step, :], temperature)
        if observed is not None:
            value = torch.where(mask[..., i], observed[..., i].to(value.dtype), value)
        x[..., i] = value
    return x


KINDS = {  # model, extra arguments; MADE 2 layers, and a layer narrower than n - 1 (spread degrees)
    "FVSBN": ("FVSBN", {}),
    "NADE": ("NADE", {"hidden_size": 12}),
    "MADE": ("MADE", {"hidden_sizes": [48]}),
    "MADE-2-layers": ("MADE", {"hidden_sizes": [90, 40]}),
    "MADE-narrow": ("MADE", {"hidden_sizes": [16]}),
}


def build(kind, head, n=70, context_size=2, coupling=0.3):
    model, extra = KINDS[kind]
    torch.manual_seed(3)
    net = getattr(pyro_ar, model)(n, conditional=head, context_size=context_size, order="random", **extra).double()
    with torch.no_grad():  # weights large enough that variables really depend on each other
        for p in net.parameters():
            p.normal_(0, coupling)
    return net


HEADS = [Bernoulli(), Categorical(3), MixtureOfGaussians(2)]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("head", HEADS, ids=repr)
def test_sample_equals_naive_sampling_with_the_same_noise(kind, head):
    net = build(kind, head)
    batch = (2, 3)
    d = net(torch.randn(batch + (2,), dtype=F64))
    temperature = 1.0 if not head.is_discrete else 0.7
    torch.manual_seed(11)
    x = d.tempered(temperature).sample((4,))
    torch.manual_seed(11)  # the loop draws all its noise first, in step order
    noise = head.draw_noise(torch.Size((4,) + batch + (70,)), F64, torch.device("cpu"))
    expected = naive_sample(d.expand((4,) + batch), noise, temperature)
    assert x.shape == expected.shape and x.dtype == expected.dtype
    if head.is_discrete:
        assert torch.equal(x, expected)
    else:
        torch.testing.assert_close(x, expected, atol=1e-10, rtol=0)


def test_sample_equals_naive_sampler(ar_member):
    """Every harness model, each member of an ensemble: ``sample`` (at T = 1 and, for
    discrete heads, tempered) and the clamped loop of ``condition(...).sample`` are exactly the
    naive sampler's draws with the same noise."""
    spec, member = ar_member
    net = spec.build()
    head, n = net.conditional, spec.event_size
    batch = (2, 3)
    d = spec.distribution(net, batch, mask_index=member)
    assert isinstance(d, pyro_ar.Autoregressive) and torch.equal(d.order, net.conditioner.orders[member])
    wide = d.expand((4,) + batch)

    def same(x, expected):
        assert x.shape == expected.shape == (4,) + batch + (n,) and x.dtype == expected.dtype
        if head.is_discrete:
            return torch.equal(x, expected)
        return torch.allclose(x, expected, atol=1e-10, rtol=0)

    for temperature in (1.0, 0.7) if head.is_discrete else (1.0,):
        torch.manual_seed(11)
        x = d.tempered(temperature).sample((4,))
        torch.manual_seed(11)  # the loop draws all its noise first, in step order
        noise = head.draw_noise(torch.Size((4,) + batch + (n,)), F64, torch.device("cpu"))
        assert same(x, naive_sample(wide, noise, temperature)), temperature
    # The first half of the order observed (a prefix: exact), differently in each row.
    mask = torch.zeros(batch + (n,), dtype=torch.bool)
    mask[..., d.order[: n // 2 + 1]] = True
    mask[1, 2] = False  # a row with nothing observed
    observed = spec.random_value(batch, seed=9)
    torch.manual_seed(12)
    x = d.condition(observed, mask).sample((4,))
    torch.manual_seed(12)
    noise = head.draw_noise(torch.Size((4,) + batch + (n,)), F64, torch.device("cpu"))
    shape = (4,) + batch + (n,)
    expected = naive_sample(wide, noise, observed=observed.expand(shape), mask=mask.expand(shape))
    assert same(x, expected)
    assert torch.equal(x[:, mask], observed[mask].to(x.dtype).expand(4, -1))


@pytest.mark.parametrize("head", [Bernoulli(), Categorical(3)], ids=repr)
def test_fvsbn_blocks_are_exact_under_strong_coupling(head):
    # Each variable almost copies the one before it, so a change early in a block travels to
    # its end and the fixed-point rounds run to their bound: still exactly the naive sample.
    n = 70
    net = pyro_ar.FVSBN(n, conditional=head).double()
    with torch.no_grad():
        w = net.conditioner.weight.view(n, head.param_size, n, head.input_size)
        w.zero_()
        for i in range(1, n):
            for k in range(head.param_size):
                w[i, k, i - 1, min(k, head.input_size - 1)] = 12.0
    d = net()
    torch.manual_seed(5)
    x = d.sample((50,))
    torch.manual_seed(5)
    noise = head.draw_noise(torch.Size([50, n]), F64, torch.device("cpu"))
    assert torch.equal(x, naive_sample(d.expand((50,)), noise))


@pytest.mark.parametrize("kind", ["FVSBN", "MADE", "MADE-2-layers"])
def test_conditional_sample_equals_naive_with_clamping(kind):
    head = Categorical(3)
    net = build(kind, head, context_size=None)
    n = 70
    order = net.conditioner.orders[0]
    mask = torch.zeros(n, dtype=torch.bool)
    mask[order[:40]] = True  # the first 40 in the order: across FVSBN's first blocks
    observed = torch.randint(3, (n,))
    d = net()
    torch.manual_seed(8)
    x = d.conditional_sample(observed, mask, (6,))
    assert torch.equal(x[:, mask], observed[mask].expand(6, 40))
    torch.manual_seed(8)
    noise = head.draw_noise(torch.Size([6, n]), F64, torch.device("cpu"))
    assert torch.equal(x, naive_sample(d.expand((6,)), noise, observed=observed.expand(6, n), mask=mask.expand(6, n)))
    # The loop itself, public as sample_clamped, and the conditioned distribution's sampler.
    torch.manual_seed(8)
    assert torch.equal(d.sample_clamped((6,), observed, mask), x)
    torch.manual_seed(8)
    assert torch.equal(d.condition(observed, mask).sample((6,)), x)
    # Tempered, with the same noise: the naive sampler at that temperature.
    torch.manual_seed(8)
    cooled = d.conditional_sample(observed, mask, (6,), temperature=0.6)
    assert torch.equal(cooled[:, mask], observed[mask].expand(6, 40))
    expected = naive_sample(d.expand((6,)), noise, 0.6, observed=observed.expand(6, n), mask=mask.expand(6, n))
    assert torch.equal(cooled, expected) and not torch.equal(cooled, x)
