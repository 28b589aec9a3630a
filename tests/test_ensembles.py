"""Order- and connectivity-agnostic MADE: ``num_masks=M`` members mixed exactly.

``net()`` is ``log p(x) = logsumexp_m log p_m(x) - log M`` (never an average of logits);
``net(mask_index=m)`` is one member; ``net(mask_index="random")`` draws one (training).
"""

import math

import pytest
import torch

import pyro_ar
from frequency_checks import assert_frequencies, config_index
from pyro_ar.conditionals import Bernoulli, Categorical
from pyro_ar.distributions import Ensemble

HEADS = {"bernoulli": (Bernoulli, 4), "categorical3": (lambda: Categorical(3), 3)}


def randomize(net, std=1.0):
    """Non-trivial float64 weights, so that members clearly differ."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, std)
    return net.double()


def ensemble(head="bernoulli", num_masks=4, order_agnostic=True, seed=0, context_size=None, std=1.0):
    make_head, n = HEADS[head]
    torch.manual_seed(seed)
    net = pyro_ar.MADE(
        n,
        hidden_sizes=[16, 16],
        conditional=make_head(),
        num_masks=num_masks,
        order_agnostic=order_agnostic,
        seed=seed,
        context_size=context_size,
    )
    return randomize(net, std)


@pytest.mark.parametrize("head", list(HEADS))
def test_ensemble_and_every_member_normalized(head):
    net = ensemble(head)
    d = net()
    support = d.enumerate_support()
    one = torch.ones((), dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(d.log_prob(support).exp().sum(), one, atol=1e-12)
        for m in range(net.num_masks):
            assert torch.allclose(net(mask_index=m).log_prob(support).exp().sum(), one, atol=1e-12)


def test_ensemble_normalized_with_context():
    net = ensemble("categorical3", num_masks=3, context_size=2)
    d = net(torch.randn(4, 2, dtype=torch.float64))
    with torch.no_grad():
        total = d.log_prob(d.enumerate_support()).exp().sum(0)
    assert torch.allclose(total, torch.ones(4, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("head", list(HEADS))
def test_ensemble_log_prob_is_logsumexp_of_members(head):
    net = ensemble(head, num_masks=5)
    d = net()
    x = d.enumerate_support()
    with torch.no_grad():
        members = torch.stack([net(mask_index=m).log_prob(x) for m in range(5)])
        expected = torch.logsumexp(members, 0) - math.log(5)
        assert torch.allclose(d.log_prob(x), expected, atol=1e-12)
        assert torch.allclose(d.member_log_probs(x), members, atol=1e-12)
        # The members really differ, so the identity above is not vacuous.
        assert float((members - members[0]).abs().max()) > 0.1


def test_mixture_differs_from_averaging_logits():
    # Same order for all members (only the hidden connectivity differs), so averaging the
    # members' logits is itself a valid AR model: a plausible but wrong implementation.
    net = ensemble("bernoulli", num_masks=2, order_agnostic=False, seed=1, std=1.5)
    d = net()
    x = d.enumerate_support()  # (16, 4)
    with torch.no_grad():
        encoded = net.conditional.encode(x, torch.float64)
        logits = torch.stack([net.conditioner(encoded, member=m)[..., 0] for m in range(2)])  # (2, 16, 4)
        averaged = torch.distributions.Bernoulli(logits=logits.mean(0)).log_prob(x).sum(-1)
        mixture = torch.logsumexp(torch.stack([net(mask_index=m).log_prob(x) for m in range(2)]), 0) - math.log(2)
        ours = d.log_prob(x)
    assert torch.allclose(averaged.exp().sum(), torch.ones((), dtype=torch.float64), atol=1e-12)
    assert torch.allclose(ours, mixture, atol=1e-12)
    assert float((ours.exp() - averaged.exp()).abs().max()) > 0.02


def test_ensemble_samples_follow_the_mixture():
    net = ensemble("bernoulli", num_masks=3, seed=2)
    d = net()
    with torch.no_grad():
        probs = d.log_prob(d.enumerate_support()).exp()
    torch.manual_seed(0)
    x = d.sample((20000,))
    assert x.shape == (20000, 4)
    assert_frequencies(config_index(x, 2), probs)


def test_single_member_samples_follow_that_member():
    net = ensemble("categorical3", num_masks=3, seed=3)
    d = net(mask_index=2)
    with torch.no_grad():
        probs = d.log_prob(d.enumerate_support()).exp()
        # The member differs from the mixture, so sampling the wrong one would be detected.
        mixture = net().log_prob(net().enumerate_support()).exp()
    assert float((probs - mixture).abs().sum()) > 0.2
    torch.manual_seed(1)
    assert_frequencies(config_index(d.sample((20000,)), 3), probs)


def test_mask_index_selects_one_member():
    net = ensemble("bernoulli", num_masks=4, seed=4)
    x = torch.randint(0, 2, (10, 4)).double()
    with torch.no_grad():
        full = net()
        assert isinstance(full, Ensemble) and len(full.members) == 4
        members = full.member_log_probs(x)
        for m in range(4):
            d = net(mask_index=m)
            # One chain, member m's: an Autoregressive of one order on the shared weights.
            assert isinstance(d, pyro_ar.distributions.MADE) and not isinstance(d, Ensemble)
            assert d.conditioner.network is net.conditioner and d.conditioner.index == m
            assert torch.equal(d.order, net.conditioner.orders[m])
            assert torch.equal(full.members[m].order, net.conditioner.orders[m])
            assert torch.allclose(d.log_prob(x), members[m], atol=1e-12)
            assert torch.allclose(full.members[m].log_prob(x), members[m], atol=1e-12)
    # The ensemble has no single order; the conditioner says to pick a member.
    assert not hasattr(full, "order")
    with pytest.raises(ValueError, match="4 members; use member"):
        net.conditioner.order
    # Nor is a multi-member conditioner one chain.
    with pytest.raises(ValueError, match="4 members"):
        pyro_ar.Autoregressive(net.conditioner, net.conditional)


@pytest.mark.parametrize("bad", [4, -1, 1.0, True, "first"])
def test_invalid_mask_index_raises(bad):
    net = ensemble("bernoulli", num_masks=4)
    with pytest.raises(ValueError, match="mask_index"):
        net(mask_index=bad)


def test_random_mask_index_draws_every_member():
    net = ensemble("bernoulli", num_masks=4)
    torch.manual_seed(5)
    drawn = []
    for _ in range(200):
        d = net(mask_index="random")
        assert not isinstance(d, Ensemble) and d.conditioner.network is net.conditioner
        assert torch.equal(d.order, net.conditioner.orders[d.conditioner.index])
        drawn.append(d.conditioner.index)
    counts = torch.bincount(torch.tensor(drawn), minlength=4)
    assert counts.sum() == 200 and bool((counts > 25).all())


def test_members_have_their_own_orders():
    agnostic = pyro_ar.MADE(6, hidden_sizes=[8], num_masks=4, order="reverse", seed=7)
    orders = agnostic.conditioner.orders
    assert torch.equal(orders[0], torch.arange(5, -1, -1))
    assert len({tuple(o.tolist()) for o in orders}) == 4
    for o in orders:
        assert torch.equal(o.sort().values, torch.arange(6))
    fixed = pyro_ar.MADE(6, hidden_sizes=[8], num_masks=4, order="reverse", order_agnostic=False, seed=7)
    assert all(torch.equal(o, torch.arange(5, -1, -1)) for o in fixed.conditioner.orders)


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 7])
def test_random_order_ensemble_members_have_distinct_orders(seed):
    """With ``order="random"`` member 0 takes the first draw of the seeded stream and the
    other members continue it, so an order-agnostic ensemble never repeats member 0's order
    by construction."""
    net = pyro_ar.MADE(event_size=6, hidden_sizes=[8], num_masks=4, order="random", seed=seed)
    orders = net.conditioner.orders
    assert torch.equal(orders[0], pyro_ar.nn.make_order("random", 6, seed))
    assert len({tuple(o) for o in orders.tolist()}) == 4, orders


def test_ensemble_ar_property_for_every_member():
    net = ensemble("bernoulli", num_masks=3, seed=6)
    x = torch.rand(4, 1, dtype=torch.float64)
    for m in range(3):
        rank = torch.argsort(net.conditioner.orders[m])
        jac = torch.autograd.functional.jacobian(lambda v: net.conditioner(v, member=m)[..., 0], x)[..., 0]
        allowed = rank.unsqueeze(1) > rank.unsqueeze(0)
        assert torch.all(jac[~allowed] == 0)
        assert bool((jac[allowed].abs() > 0).any())


def test_training_step_with_random_member_updates_shared_weights():
    net = ensemble("bernoulli", num_masks=3, std=0.3)
    # Strongly dependent pixels (x0 = x1 = 1 - x2, x3 = 0): far from the near-uniform start.
    b = torch.randint(0, 2, (64, 1)).double()
    data = torch.cat([b, b, 1 - b, torch.zeros_like(b)], -1)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    torch.manual_seed(8)
    with torch.no_grad():
        before = -net().log_prob(data).mean()
    for _ in range(30):
        opt.zero_grad()
        loss = -net(mask_index="random").log_prob(data).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = -net().log_prob(data).mean()
    assert float(after) < float(before) - 0.5
