"""KL divergences: the register_kl rules of pyro_ar.kl, the Monte-Carlo helper, and Pyro's
TraceMeanField_ELBO on both of its paths (exact KL, and the sampling fallback)."""

import itertools

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO, TraceMeanField_ELBO
from torch.distributions import kl_divergence

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.kl import exact_kl, monte_carlo_kl


def _pair(spec, batch=(2,)):
    """Two different models of the same spec, with a batch shape."""
    p = spec.distribution(spec.build(torch.float64), batch)
    q = spec.distribution(spec.build(torch.float64, weight_seed=spec.seed + 100), batch)
    return p, q


def _factorized_fvsbn(head, n, bias_seed):
    """An FVSBN with zero weights: its conditionals ignore the past, so it is factorized."""
    net = pyro_ar.FVSBN(event_size=n, conditional=head).double()
    gen = torch.Generator().manual_seed(bias_seed)
    with torch.no_grad():
        net.conditioner.weight.zero_()
        net.conditioner.output_bias.copy_(torch.randn(net.conditioner.output_bias.shape, generator=gen))
    return net


# ---- exact KL by enumeration -----------------------------------------------------------------


def test_exact_kl_is_the_sum_over_every_joint_value(ar_discrete_spec):
    spec = ar_discrete_spec
    p, q = _pair(spec)
    kl = kl_divergence(p, q)
    assert kl.shape == (2,)
    # Brute force over itertools' list of joint values (independent of enumerate_support).
    combos = list(itertools.product(range(spec.num_values), repeat=spec.event_size))
    x = spec.random_value((), seed=0).new_tensor(combos).unsqueeze(1)  # (K^n, 1, n)
    lp, lq = p.log_prob(x), q.log_prob(x)
    assert torch.allclose(lp.exp().sum(0), torch.ones(2, dtype=torch.float64))
    expected = (lp.exp() * (lp - lq)).sum(0)
    assert torch.allclose(kl, expected, rtol=1e-10, atol=1e-12)
    assert (kl > 0).all()
    assert torch.allclose(kl_divergence(p, p), torch.zeros(2, dtype=torch.float64), atol=1e-12)


def test_kl_rules_cover_every_joint_distribution():
    """The rules are registered for JointDistribution pairs: chains, ensembles, tempered and
    conditioned distributions all get the exact KL, in either argument."""
    torch.manual_seed(4)
    net = pyro_ar.MADE(event_size=4, hidden_sizes=[12], conditional=Categorical(3), num_masks=3, order_agnostic=False)
    net = net.double()
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.5 * torch.randn_like(param))
    ensemble, member = net(), net(mask_index=1)
    observed = torch.tensor([2, 0, 0, 1])
    mask = torch.tensor([True, False, False, False])  # a prefix of the shared order
    pairs = {
        "ensemble-member": (ensemble, member),
        "member-ensemble": (member, ensemble),
        "tempered": (ensemble.tempered(0.7), member.tempered(1.5)),
        "conditioned": (ensemble.condition(observed, mask), member.condition(observed, mask)),
        "conditioned-vs-chain": (member.condition(observed, mask), ensemble),
    }
    x = torch.tensor(list(itertools.product(range(3), repeat=4)))
    for name, (p, q) in pairs.items():
        lp, lq = p.log_prob(x), q.log_prob(x)
        terms = torch.where(lp > -float("inf"), lp.exp() * (lp - lq), torch.zeros_like(lp))
        kl = kl_divergence(p, q)
        assert kl.shape == () and torch.allclose(kl, terms.sum(), rtol=1e-10, atol=1e-12), name
        assert kl > 0, name
    # KL(p || conditioned) is infinite: the conditioned one puts no mass off the observation.
    assert kl_divergence(ensemble, member.condition(observed, mask)) == float("inf")


# One model per conditioner, plus a MADE ensemble (sampling is the slow part).
MC_MODELS = {
    "fvsbn-categorical3-ctx": lambda: pyro_ar.FVSBN(event_size=4, conditional=Categorical(3), context_size=3),
    "nade-bernoulli-perm": lambda: pyro_ar.NADE(event_size=5, hidden_size=8, order=[2, 4, 0, 3, 1]),
    "made-categorical3-ensemble": lambda: pyro_ar.MADE(
        event_size=4, hidden_sizes=[12, 12], conditional=Categorical(3), context_size=2, num_masks=3, order="random"
    ),
}


def _perturbed_distribution(make, seed):
    """A float64 model from ``make`` with seeded weights (perturbed), batch (2,)."""
    torch.manual_seed(seed)
    net = make().double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn_like(p))
    if net.context_size is None:
        return net().expand((2,))
    return net(torch.randn(2, net.context_size, generator=torch.Generator().manual_seed(99), dtype=torch.float64))


@pytest.mark.parametrize("name", list(MC_MODELS))
def test_monte_carlo_kl_agrees_with_exact(name):
    p = _perturbed_distribution(MC_MODELS[name], seed=0)
    q = _perturbed_distribution(MC_MODELS[name], seed=1)
    torch.manual_seed(2)
    est, se = monte_carlo_kl(p, q, num_samples=3000)
    exact = kl_divergence(p, q)
    assert est.shape == se.shape == (2,)
    assert ((est - exact).abs() < 4.5 * se).all(), (est, exact, se)
    assert (se > 0).all() and (se < 0.1 * exact + 0.05).all()


def test_kl_result_has_the_broadcast_batch_shape():
    torch.manual_seed(1)
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[8], context_size=2)
    p = net(torch.randn(3, 2))  # batch (3,)
    q = dist.Bernoulli(torch.rand(2, 1, 3)).to_event(1)  # batch (2, 1)
    assert kl_divergence(p, q).shape == (2, 3)
    assert kl_divergence(q, p).shape == (2, 3)
    r = pyro_ar.MADE(event_size=3, hidden_sizes=[8])().expand((4, 1))
    assert kl_divergence(p, r).shape == (4, 3)


@pytest.mark.parametrize("head", [Bernoulli(), Categorical(3)], ids=["bernoulli", "categorical3"])
def test_kl_against_factorized_distributions_matches_closed_form(head):
    # A zero-weight FVSBN is factorized, so KL to/from a factorized Pyro distribution must
    # equal torch's closed form between the two factorized distributions.
    n = 4
    net = _factorized_fvsbn(head, n, bias_seed=0)
    ar = net()
    params = net.conditioner.output_bias.detach()
    gen = torch.Generator().manual_seed(1)
    other_logits = torch.randn(2, *params.shape, generator=gen, dtype=torch.float64)  # batch (2,)
    if isinstance(head, Bernoulli):
        same = dist.Bernoulli(logits=params[:, 0]).to_event(1)
        other = dist.Bernoulli(logits=other_logits[..., 0]).to_event(1)
    else:
        same = dist.Categorical(logits=params).to_event(1)
        other = dist.Categorical(logits=other_logits).to_event(1)
    assert torch.allclose(kl_divergence(ar, same), torch.zeros((), dtype=torch.float64), atol=1e-12)
    assert torch.allclose(kl_divergence(ar, other), kl_divergence(same.expand((2,)), other), rtol=1e-10)
    assert torch.allclose(kl_divergence(other, ar), kl_divergence(other, same.expand((2,))), rtol=1e-10)


def test_continuous_or_too_large_models_point_to_monte_carlo():
    mog = pyro_ar.MADE(event_size=2, hidden_sizes=[8], conditional=MixtureOfGaussians(2))()
    with pytest.raises(NotImplementedError, match="pyro_ar.kl.monte_carlo_kl"):
        kl_divergence(mog, mog)
    with pytest.raises(NotImplementedError, match="pyro_ar.kl.monte_carlo_kl"):
        kl_divergence(mog, dist.Normal(torch.zeros(2), 1.0).to_event(1))
    big = pyro_ar.NADE(event_size=20, hidden_size=4)()  # 2^20 joint values
    with pytest.raises(NotImplementedError, match="monte_carlo_kl"):
        kl_divergence(big, big)
    with pytest.raises(NotImplementedError, match="monte_carlo_kl"):
        kl_divergence(big, dist.Bernoulli(0.5 * torch.ones(20)).to_event(1))


def test_incompatible_supports_raise():
    bern = pyro_ar.FVSBN(event_size=3)()
    cat2 = pyro_ar.FVSBN(event_size=3, conditional=Categorical(2))()
    cat3 = pyro_ar.FVSBN(event_size=3, conditional=Categorical(3))()
    cat4 = pyro_ar.FVSBN(event_size=3, conditional=Categorical(4))()
    mog = pyro_ar.FVSBN(event_size=3, conditional=MixtureOfGaussians(2))()
    for p, q in [(bern, cat2), (cat3, cat4), (bern, mog), (mog, cat3)]:
        with pytest.raises(ValueError, match="same support"):
            kl_divergence(p, q)
    with pytest.raises(ValueError, match="same support"):
        kl_divergence(cat3, dist.Categorical(logits=torch.zeros(3, 4)).to_event(1))
    with pytest.raises(ValueError, match="event shapes"):
        kl_divergence(bern, pyro_ar.FVSBN(event_size=4)())
    with pytest.raises(ValueError, match="event shapes"):
        kl_divergence(bern, dist.Bernoulli(0.5 * torch.ones(4)).to_event(1))
    with pytest.raises(ValueError, match="num_samples"):
        monte_carlo_kl(bern, bern, num_samples=1)


def test_monte_carlo_kl_of_continuous_models_is_unbiased_and_pathwise():
    # Zero-weight FVSBN with one Gaussian per variable = a factorized Normal: closed-form KL.
    torch.manual_seed(2)
    net = _factorized_fvsbn(MixtureOfGaussians(1), 3, bias_seed=3)
    head = net.conditional
    q = dist.Normal(torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64), 1.5).to_event(1)

    def as_normal():
        _, means, scales = head.split(net.conditioner.output_bias)
        return dist.Normal(means[:, 0], scales[:, 0]).to_event(1)

    exact = kl_divergence(as_normal(), q)
    est, se = monte_carlo_kl(net(), q, num_samples=20000)
    assert abs(est - exact) < 4 * se
    # rsample makes the estimate differentiable: its gradient estimates the exact one.
    (g_est,) = torch.autograd.grad(est, net.conditioner.output_bias)
    (g_exact,) = torch.autograd.grad(exact, net.conditioner.output_bias)
    assert torch.allclose(g_est, g_exact, atol=0.05 * g_exact.abs().max())


def test_exact_kl_helper_handles_factorized_first_argument():
    net = _factorized_fvsbn(Bernoulli(), 3, bias_seed=4)
    f = dist.Bernoulli(logits=torch.zeros(3, dtype=torch.float64)).to_event(1)
    assert torch.allclose(exact_kl(f, net()), kl_divergence(f, net()))
    with pytest.raises(NotImplementedError, match="enumerable"):
        exact_kl(f, f)


# ---- Pyro's TraceMeanField_ELBO --------------------------------------------------------------


def test_trace_mean_field_elbo_uses_the_exact_kl():
    # No observations: the mean-field loss is exactly KL(guide || prior), summed over the plate.
    pyro.clear_param_store()
    torch.manual_seed(3)
    n, b = 4, 3
    guide_net = pyro_ar.NADE(event_size=n, hidden_size=8, context_size=2)
    context = torch.randn(b, 2)
    probs = torch.rand(n)

    def model():
        with pyro.plate("data", b):
            pyro.sample("z", dist.Bernoulli(probs).to_event(1))

    def guide():
        pyro.module("guide_net", guide_net)
        with pyro.plate("data", b):
            pyro.sample("z", guide_net(context))

    # A discrete guide is not reparameterized; Pyro only checks that under validation.
    with pyro.validation_enabled(False):
        loss = TraceMeanField_ELBO().loss(model, guide)
        loss_again = TraceMeanField_ELBO().loss(model, guide)
    exact = kl_divergence(guide_net(context), dist.Bernoulli(probs).to_event(1)).sum()
    assert loss == pytest.approx(exact.item(), rel=1e-5)
    assert loss == loss_again  # exact: no sampling noise


def test_trace_mean_field_elbo_falls_back_to_sampling():
    # Continuous AR guide and prior: kl_divergence raises NotImplementedError, so Pyro scores
    # the sampled z, i.e. exactly Trace_ELBO's estimate with the same random numbers.
    pyro.clear_param_store()
    torch.manual_seed(4)
    prior_net = pyro_ar.MADE(event_size=2, hidden_sizes=[8], conditional=MixtureOfGaussians(2))
    guide_net = pyro_ar.MADE(event_size=2, hidden_sizes=[8], conditional=MixtureOfGaussians(3), context_size=1)
    context = torch.randn(5, 1)

    def model():
        with pyro.plate("data", 5):
            z = pyro.sample("z", prior_net())
            pyro.sample("y", dist.Normal(z.sum(-1), 1.0), obs=torch.ones(5))

    def guide():
        pyro.module("guide_net", guide_net)
        with pyro.plate("data", 5):
            pyro.sample("z", guide_net(context))

    losses = {}
    for name, elbo in [("mean_field", TraceMeanField_ELBO()), ("trace", Trace_ELBO())]:
        pyro.set_rng_seed(5)
        losses[name] = elbo.differentiable_loss(model, guide)
    assert torch.allclose(losses["mean_field"], losses["trace"], rtol=1e-6)
    (grad,) = torch.autograd.grad(losses["mean_field"], guide_net.conditioner.output_bias)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0  # pathwise gradient reached the guide
