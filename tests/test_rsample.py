"""Implicit reparameterization of mixture-of-Gaussians samples (pyro_ar.reparam) and the
pathwise gradient of a whole AR sample (Autoregressive.rsample).

Ground truth is the definition of implicit reparameterization: a sample is x = F^{-1}(u; θ);
holding u = F(x; θ) fixed and re-solving F(x'; θ') = u by bisection gives x(θ') exactly, so
autograd gradients are compared with central finite differences of that map (common random
numbers in u-space), per sample. An expectation check uses the closed form of E[x^2].
"""

import pytest
import torch

import pyro_ar
from pyro_ar.conditionals import Bernoulli, MixtureOfGaussians
from pyro_ar.reparam import mixture_cdf, mixture_reparameterize, mixture_rsample


def inverse_cdf(u, logits, means, scales, iters=64):
    """Solve ``F(x) = u`` by bisection: ``u (*)``, params ``(*, K)`` -> ``(*)`` (float64 accurate)."""
    w = logits.softmax(-1)
    normal = torch.distributions.Normal(means, scales, validate_args=False)
    lo = (means - 40 * scales).min(-1).values
    hi = (means + 40 * scales).max(-1).values
    for _ in range(iters):
        mid = (lo + hi) / 2
        below = (w * normal.cdf(mid.unsqueeze(-1))).sum(-1) < u
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def random_mixture(batch, k, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, k, generator=gen, dtype=dtype)
    means = 2 * torch.randn(batch, k, generator=gen, dtype=dtype)
    scales = 0.3 + torch.rand(batch, k, generator=gen, dtype=dtype)
    return logits, means, scales


def test_mixture_cdf_is_weighted_normal_cdf():
    logits, means, scales = random_mixture(5, 3)
    x = torch.linspace(-3, 3, 5, dtype=torch.float64)
    w = logits.softmax(-1)
    expected = (w * torch.distributions.Normal(means, scales).cdf(x.unsqueeze(-1))).sum(-1)
    assert torch.allclose(mixture_cdf(x, logits, means, scales), expected, atol=1e-14)


def test_rsample_follows_the_mixture():
    # The value of an rsample is an ordinary mixture sample: its CDF values are uniform.
    torch.manual_seed(0)
    logits, means, scales = random_mixture(1, 3)
    params = [t.expand(20000, 3) for t in (logits, means, scales)]
    u = mixture_cdf(mixture_rsample(*params), *params).sort().values
    grid = (torch.arange(20000, dtype=torch.float64) + 0.5) / 20000
    assert (u - grid).abs().max() < 0.015  # Kolmogorov-Smirnov, p ~ 1e-3 threshold is 0.0138 + slack


@pytest.mark.parametrize("k", [1, 3])
def test_implicit_gradient_matches_inverse_cdf_finite_differences(k):
    torch.manual_seed(1)
    params = [t.requires_grad_() for t in random_mixture(8, k, seed=k)]
    x = mixture_rsample(*params)
    grads = torch.autograd.grad(x.sum(), params)  # rows are independent: row b's dx_b/dθ_b
    with torch.no_grad():
        u = mixture_cdf(x, *params)
        # Perturb each (parameter, component) by ±h, all at once along a leading dimension.
        h = 1e-6
        cases = [(j, c, sign) for j in range(3) for c in range(k) for sign in (1.0, -1.0)]
        stacked = [t.expand(len(cases), *t.shape).clone() for t in params]
        for m, (j, c, sign) in enumerate(cases):
            stacked[j][m, :, c] += sign * h
        x_shifted = inverse_cdf(u.expand(len(cases), -1), *stacked)
        for m in range(0, len(cases), 2):
            j, c, _ = cases[m]
            fd = (x_shifted[m] - x_shifted[m + 1]) / (2 * h)
            assert torch.allclose(grads[j][:, c], fd, rtol=1e-5, atol=1e-7), (j, c, grads[j][:, c], fd)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_implicit_gradient_is_finite_and_equivariant_far_in_the_tails(dtype):
    # Far outliers and points in the gap between far-apart narrow components.
    x = torch.tensor([1e4, -1e4, 0.0, 30.0, -7.0, 49.9], dtype=dtype)
    logits = torch.tensor([0.3, -1.0, 2.0], dtype=dtype).expand(6, 3).clone().requires_grad_()
    means = torch.tensor([-50.0, 0.0, 50.0], dtype=dtype).expand(6, 3).clone().requires_grad_()
    scales = torch.tensor([0.1, 1.0, 0.1], dtype=dtype).expand(6, 3).clone().requires_grad_()
    y = mixture_reparameterize(x, logits, means, scales)
    assert torch.equal(y.detach(), x)
    g_logits, g_means, g_scales = torch.autograd.grad(y.sum(), (logits, means, scales))
    for g in (g_logits, g_means, g_scales):
        assert torch.isfinite(g).all()
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    # Shifting every mean by δ shifts x by δ; scaling means and scales by c scales x by c;
    # adding a constant to the logits changes nothing.
    assert torch.allclose(g_means.sum(-1), torch.ones_like(x), atol=tol)
    scale_deriv = (means * g_means + scales * g_scales).sum(-1)
    assert torch.allclose(scale_deriv, x, rtol=tol, atol=tol)
    # (Between far-apart components the logit derivatives are astronomically large, as they
    # should be: the quantile jumps across the gap; so compare relative to their size.)
    assert (g_logits.sum(-1).abs() <= tol * (1 + g_logits.abs().sum(-1))).all()


def test_expected_square_gradient_matches_closed_form():
    # E[x^2] = sum_k w_k (μ_k^2 + σ_k^2); per-sample gradients give the MC error bar.
    torch.manual_seed(2)
    n = 100000
    base = [t[0] for t in random_mixture(1, 3, seed=5)]
    params = [t.expand(n, 3).clone().requires_grad_() for t in base]
    x = mixture_rsample(*params)
    per_sample = torch.autograd.grad((x**2).sum(), params)
    base = [t.clone().requires_grad_() for t in base]
    logits, means, scales = base
    exact = (logits.softmax(-1) * (means**2 + scales**2)).sum()
    exact_grads = torch.autograd.grad(exact, base)
    for g, e in zip(per_sample, exact_grads):
        se = g.std(0) / n**0.5
        assert ((g.mean(0) - e).abs() < 5 * se + 1e-9).all(), (g.mean(0), e, se)


def test_rsample_without_grad_is_the_plain_sample():
    """Without gradients, the surrogate's value is exactly the ancestral sample: the component
    drawn from the mixture weights, then a normal draw in it, with the same random numbers."""
    logits, means, scales = random_mixture(400, 3)
    torch.manual_seed(3)
    x = mixture_rsample(logits, means, scales)
    assert x.shape == (400,) and not x.requires_grad
    torch.manual_seed(3)
    k = torch.distributions.Categorical(logits=logits).sample().unsqueeze(-1)
    plain = torch.distributions.Normal(means.gather(-1, k), scales.gather(-1, k)).sample().squeeze(-1)
    assert torch.equal(x, plain)


def test_bad_mixture_parameters_raise():
    with pytest.raises(ValueError, match="do not broadcast"):
        mixture_rsample(torch.zeros(3), torch.zeros(4), torch.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        mixture_cdf(torch.zeros(()), torch.zeros(()), torch.zeros(2), torch.ones(2))


# ---- the whole AR chain --------------------------------------------------------------------


def _member_of(spec):
    # An ensemble draws each row's member at random; pin one so the chain can be replayed.
    return None if spec.num_masks == 1 else spec.num_masks - 1


def _conditional_cdfs(d, x):
    """``u_i = F_i(x_i | x_<i)`` for every variable of the chain ``d``: ``(*, n)``."""
    params = d.conditioner(d.conditional.encode(x, x.dtype), d.context)  # d's one order (member view)
    return mixture_cdf(x, *d.conditional.split(params))


def _replay(d, u):
    """The sample with conditional CDF values ``u`` (``x = F^{-1}(u)`` variable by variable)."""
    x = torch.zeros_like(u)
    for i in d.order.tolist():
        params = d.conditioner(d.conditional.encode(x, x.dtype), d.context)
        logits, means, scales = d.conditional.split(params[..., i, :])
        x = x.clone()
        x[..., i] = inverse_cdf(u[..., i], logits, means, scales)
    return x


def test_ar_rsample_pathwise_gradient_matches_finite_differences(ar_mog_spec):
    spec = ar_mog_spec
    net = spec.build(torch.float64)
    d = spec.distribution(net, (5,), mask_index=_member_of(spec))
    assert isinstance(d, pyro_ar.Autoregressive)  # one chain, so it can be replayed
    torch.manual_seed(4)
    x = d.rsample()
    assert x.shape == (5, spec.event_size) and x.requires_grad

    def f(v):  # a smooth test function that couples the variables
        return torch.sin(v).sum(-1) + v[..., 0] * v[..., -1]

    params = list(net.parameters())
    gen = torch.Generator().manual_seed(7)
    direction = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    fx = f(x)
    rows = []  # the directional derivative of each row's f, by autograd
    for b in range(5):
        # allow_unused: with n = 1 a model's feedback weights never reach a sample.
        grads = torch.autograd.grad(fx[b], params, retain_graph=True, allow_unused=True)
        rows.append(sum((g * v).sum() for g, v in zip(grads, direction) if g is not None))
    autograd_dd = torch.stack(rows)
    # The gradient really flows through the chain: later variables depend on earlier draws.
    first = d.order[0].item()
    last = d.order[-1].item()
    (g_first,) = torch.autograd.grad(x[:, last].sum(), net.conditioner.output_bias, retain_graph=True)
    assert g_first[first].abs().sum() > 0
    with torch.no_grad():
        u = _conditional_cdfs(d, x.detach())
        assert torch.allclose(_replay(d, u), x, atol=1e-9)  # the replay reproduces the sample
        h = 1e-6
        values = []
        for sign in (1, -1):
            for p, v in zip(params, direction):
                p.add_(sign * h * v)
            values.append(f(_replay(spec.distribution(net, (5,), mask_index=_member_of(spec)), u)))
            for p, v in zip(params, direction):
                p.sub_(sign * h * v)
        fd = (values[0] - values[1]) / (2 * h)
    assert torch.allclose(autograd_dd, fd, rtol=1e-5, atol=1e-6), (autograd_dd, fd)


def test_ar_rsample_shapes_and_ensembles():
    torch.manual_seed(5)
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[8], conditional=MixtureOfGaussians(2), context_size=2, num_masks=2)
    d = net(torch.randn(4, 2))
    assert isinstance(d, pyro_ar.Ensemble) and all(m.has_rsample for m in d.members)
    x = d.rsample((2, 3))
    assert x.shape == (2, 3, 4, 3)
    (g,) = torch.autograd.grad(x.pow(2).sum(), net.conditioner.output_bias)
    assert torch.isfinite(g).all() and g.abs().sum() > 0
    assert d.has_rsample


def test_ar_rsample_gradient_crosses_sampling_blocks():
    # FVSBN's sampling state works in blocks of 32 variables; the pathwise gradient of the
    # last variable must still reach the first one's parameters, through every block.
    torch.manual_seed(6)
    net = pyro_ar.FVSBN(event_size=70, conditional=MixtureOfGaussians(2)).double()
    with torch.no_grad():
        net.conditioner.weight.normal_(0, 0.3)
    x = net().rsample((4,))
    (g,) = torch.autograd.grad(x[:, -1].sum(), net.conditioner.output_bias)
    assert torch.isfinite(g).all()
    assert g[0].abs().sum() > 0 and g[40].abs().sum() > 0


def test_discrete_ar_has_no_rsample():
    d = pyro_ar.NADE(event_size=3, hidden_size=4, conditional=Bernoulli())()
    assert not d.has_rsample
    with pytest.raises(NotImplementedError, match="reparameterized"):
        d.rsample()
