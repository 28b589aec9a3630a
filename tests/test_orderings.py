"""Orderings: any permutation, reversed or seeded-random, gives a valid AR distribution.

For every conditioner (FVSBN, NADE, MADE) and every head, a non-identity order must give
an exactly normalized distribution (enumeration; numerical integration for mixtures of
Gaussians), respect the AR property in *that* order (Jacobians), and sample from it
(frequencies against ``exp(log_prob)``).
"""

import pytest
import torch

import pyro_ar
from frequency_checks import assert_frequencies, config_index
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.nn import make_order

N_VARS = 4
ORDERS = {"identity": None, "reverse": "reverse", "random": "random", "permutation": [2, 0, 3, 1]}
HEADS = {"bernoulli": Bernoulli, "categorical3": lambda: Categorical(3)}


def build(kind, head, order=None, seed=3, n=N_VARS, context_size=None):
    if kind == "fvsbn":
        return pyro_ar.FVSBN(n, conditional=head, order=order, seed=seed, context_size=context_size)
    if kind == "nade":
        return pyro_ar.NADE(n, hidden_size=8, conditional=head, order=order, seed=seed, context_size=context_size)
    return pyro_ar.MADE(n, hidden_sizes=[16, 16], conditional=head, order=order, seed=seed, context_size=context_size)


def randomize(net, std=1.0):
    """Non-trivial float64 weights, so that a wrong order would change the distribution."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, std)
    return net.double()


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_normalized_for_every_order(kind, order, head):
    torch.manual_seed(0)
    net = randomize(build(kind, HEADS[head](), ORDERS[order]))
    d = net()
    assert torch.equal(d.order, make_order(ORDERS[order], N_VARS, seed=3))
    total = d.log_prob(d.enumerate_support()).exp().sum().detach()
    assert torch.allclose(total, torch.ones((), dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_normalized_with_context_and_random_order(kind):
    torch.manual_seed(1)
    net = randomize(build(kind, Categorical(3), "random", seed=11, n=3, context_size=2))
    d = net(torch.randn(5, 2, dtype=torch.float64))
    lp = d.log_prob(d.enumerate_support())  # (27, 5)
    assert lp.shape == (27, 5)
    assert torch.allclose(lp.exp().sum(0), torch.ones(5, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_mixture_of_gaussians_integrates_in_reverse_order(kind):
    torch.manual_seed(2)
    net = build(kind, MixtureOfGaussians(2), "reverse", n=2)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
        if kind == "fvsbn":  # linear in x: keep the slope of the scales small so the grid holds the mass
            net.conditioner.weight.mul_(0.1)
    d = net.double()()
    grid = torch.linspace(-11.0, 11.0, 221, dtype=torch.float64)
    x = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1)  # (221, 221, 2)
    with torch.no_grad():
        density = d.log_prob(x).exp()
    total = torch.trapezoid(torch.trapezoid(density, grid, dim=1), grid)
    assert abs(float(total) - 1.0) < 1e-5


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_ar_property_in_the_given_order(kind):
    torch.manual_seed(3)
    n = 5
    net = randomize(build(kind, Bernoulli(), "random", seed=7, n=n))
    order = net.conditioner.orders[0]
    assert not torch.equal(order, torch.arange(n))
    rank = torch.argsort(order)
    x = torch.rand(n, 1, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: net.conditioner(v)[..., 0], x)[..., 0]  # (n, n)
    allowed = rank.unsqueeze(1) > rank.unsqueeze(0)  # allowed[i, j]: j comes before i
    assert torch.all(jac[~allowed] == 0)
    assert bool((jac[allowed].abs() > 0).any())


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_samples_follow_a_random_order(kind):
    torch.manual_seed(4)
    net = randomize(build(kind, Bernoulli(), "random", seed=5))
    d = net()
    with torch.no_grad():
        probs = d.log_prob(d.enumerate_support()).exp()
    # A distribution far from uniform, so that sampling in the wrong order would be detected.
    assert float((probs - 1 / 16).abs().sum()) > 0.3
    x = d.sample((20000,))
    assert_frequencies(config_index(x, 2), probs)


def test_random_order_is_seeded():
    a = pyro_ar.NADE(8, hidden_size=4, order="random", seed=1).conditioner.orders[0]
    b = pyro_ar.NADE(8, hidden_size=4, order="random", seed=1).conditioner.orders[0]
    c = pyro_ar.NADE(8, hidden_size=4, order="random", seed=2).conditioner.orders[0]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a.sort().values, torch.arange(8))
    assert torch.equal(pyro_ar.FVSBN(4, order="reverse").conditioner.orders[0], torch.tensor([3, 2, 1, 0]))


@pytest.mark.parametrize(
    "order, match",
    [
        ([0, 1, 1, 3], "permutation"),
        ([0, 1, 2], "length"),
        ([0.0, 1.0, 2.0, 3.0], "integers"),
        ("sideways", "order must be"),
        ([[0, 1], [2, 3]], "length"),
    ],
)
@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_invalid_order_raises(kind, order, match):
    with pytest.raises(ValueError, match=match):
        build(kind, Bernoulli(), order)
