"""The Mixed head (one head per column) with every conditioner: exact normalization by
enumeration, the AR property by Jacobians, the sampler against a naive sampler with the same
noise, goodness of fit per column, KL, validation naming the column, and checkpoints."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from scipy import stats
from torch.autograd.functional import jacobian

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, Mixed, MixtureOfGaussians, Poisson

F64 = torch.float64
MODELS = {"fvsbn": {}, "nade": {"hidden_size": 8}, "made": {"hidden_sizes": [16, 16]}}

DISCRETE = [Bernoulli(), Categorical(3), Categorical(4), Bernoulli(), Categorical(3)]  # K = 2*3*4*2*3 = 144
WITH_REALS = [Categorical(3), MixtureOfGaussians(2), Bernoulli(), Poisson(), MixtureOfGaussians(3), Categorical(4)]


def build(model, heads, context_size=None, order="random", seed=0, scale=0.5):
    """A seeded model whose weights are perturbed so that columns depend visibly on each other."""
    torch.manual_seed(seed)
    net = pyro_ar.models.factory(model)(
        len(heads), conditional=Mixed(heads), context_size=context_size, order=order, seed=seed, **MODELS[model]
    ).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def context(batch, c, seed=5):
    return None if c is None else torch.randn(*batch, c, generator=torch.Generator().manual_seed(seed), dtype=F64)


def random_rows(heads, shape, seed=0):
    """Values in each column's support, ``shape + (n,)`` float64."""
    gen = torch.Generator().manual_seed(seed)
    cols = []
    for h in heads:
        if isinstance(h, Bernoulli):
            cols.append(torch.randint(2, shape, generator=gen).double())
        elif isinstance(h, Categorical):
            cols.append(torch.randint(h.num_categories, shape, generator=gen).double())
        elif isinstance(h, Poisson):
            cols.append(torch.randint(6, shape, generator=gen).double())
        else:
            cols.append(torch.randn(shape, generator=gen, dtype=F64))
    return torch.stack(cols, -1)


# ---- exactness ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("context_size", [None, 2])
def test_all_discrete_rows_normalize_by_enumeration(model, context_size):
    net = build(model, DISCRETE, context_size)
    d = net(context((3,), context_size)) if context_size else net()
    support = d.enumerate_support()
    assert support.shape == (144,) + tuple(d.batch_shape) + (5,) and support.dtype == F64
    assert len({tuple(r) for r in support.reshape(144, -1, 5)[:, 0].tolist()}) == 144  # every row once
    lp = d.log_prob(support)
    torch.testing.assert_close(lp.exp().sum(0), torch.ones(d.batch_shape, dtype=F64), atol=1e-12, rtol=0)
    # The exact entropy is -sum p log p, and not the entropy of independent columns.
    torch.testing.assert_close(d.entropy(), -(lp.exp() * lp).sum(0))
    assert d.has_enumerate_support and d.support.is_discrete


def test_exact_kl_between_mixed_models_and_its_refusals():
    p, q = build("made", DISCRETE)(), build("nade", DISCRETE, seed=1)()
    kl = torch.distributions.kl_divergence(p, q)
    support = p.enumerate_support()
    expected = (p.log_prob(support).exp() * (p.log_prob(support) - q.log_prob(support))).sum()
    torch.testing.assert_close(kl, expected)
    assert float(kl.detach()) > 0.01
    assert float(torch.distributions.kl_divergence(p, p).detach()) == pytest.approx(0, abs=1e-12)
    other = build("nade", [Bernoulli(), Categorical(4), Categorical(4), Bernoulli(), Categorical(3)])()
    with pytest.raises(ValueError, match="same support"):
        torch.distributions.kl_divergence(p, other)
    cont = build("made", WITH_REALS)()
    with pytest.raises(NotImplementedError, match="monte_carlo_kl"):
        torch.distributions.kl_divergence(cont, cont)
    estimate, se = pyro_ar.kl.monte_carlo_kl(cont, build("fvsbn", WITH_REALS)(), 500)
    assert torch.isfinite(estimate) and se > 0


def test_a_real_column_makes_the_table_continuous():
    d = build("made", WITH_REALS)()
    assert not d.has_enumerate_support
    with pytest.raises(NotImplementedError, match="continuous"):
        d.enumerate_support()
    with pytest.raises(NotImplementedError, match="entropy"):
        d.entropy()
    with pytest.raises(NotImplementedError, match="reparameterized"):
        d.rsample()
    with pytest.raises(NotImplementedError, match=r"columns 0 \(Categorical"):
        Mixed(WITH_REALS).rsample(torch.zeros(len(WITH_REALS), 9))
    with pytest.raises(ValueError, match="temperature"):
        d.tempered(0.5)
    # Every column continuous: reparameterized draws, differentiable in the weights.
    reals = build("nade", [MixtureOfGaussians(2), MixtureOfGaussians(3)])
    x = reals().rsample((7,))
    assert x.shape == (7, 2) and x.requires_grad
    x.sum().backward()
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in reals.parameters())


def test_mixture_columns_integrate_to_one_given_discrete_columns():
    # Columns (Bernoulli, mixture): sum over b of the integral over y of p(b, y) = 1.
    net = build("made", [Bernoulli(), MixtureOfGaussians(2)], order=None)
    y = torch.linspace(-15, 15, 6001, dtype=F64)
    total = 0.0
    for b in (0.0, 1.0):
        rows = torch.stack([torch.full_like(y, b), y], -1)
        total += float(torch.trapezoid(net().log_prob(rows).exp(), y))
    assert total == pytest.approx(1.0, abs=1e-6)


# ---- the AR property -------------------------------------------------------------------------


def before(order):
    rank = torch.argsort(order)
    return rank.unsqueeze(0) < rank.unsqueeze(1)


@pytest.mark.parametrize("model", list(MODELS))
def test_ar_property_by_jacobian(model):
    heads = WITH_REALS
    net = build(model, heads, context_size=2)
    head, cond = net.conditional, net.conditioner
    n, ctx = len(heads), context((), 2)
    dep = torch.zeros(n, n, dtype=F64)
    encoded = head.encode(random_rows(heads, (3,), seed=1), F64)
    points = torch.cat([encoded, torch.randn(encoded.shape, generator=torch.Generator().manual_seed(2), dtype=F64)])
    for x in points:
        jac = jacobian(lambda v: cond(v, ctx), x)  # (n, P, n, I)
        dep = torch.maximum(dep, jac.abs().amax(dim=(1, 3)))
    allowed = before(cond.order)
    assert (dep[~allowed] == 0).all(), dep
    assert (dep[allowed] > 0).all(), dep  # no dead input among the padded features
    # The log density of each column depends on the values of earlier columns only (the reals
    # by a Jacobian in x itself, through the head's encoding).
    d = net(ctx)
    value = random_rows(heads, (), seed=3)
    real = torch.tensor([isinstance(h, MixtureOfGaussians) for h in heads])

    def per_column(reals):
        v = value.clone()
        v[real] = reals
        return d.variable_log_probs(v)

    jac = jacobian(per_column, value[real])  # (n, number of real columns)
    later = ~allowed[:, real] & ~torch.eye(n, dtype=torch.bool)[:, real]
    assert (jac[later] == 0).all()


# ---- sampling ---------------------------------------------------------------------------------


def naive_sample(d, noise, observed=None, mask=None):
    """Rerun the whole conditioner for each variable, drawing it with its column's head from
    ``noise[..., step, :]`` (the noise of the loop, in step order)."""
    head, order = d.conditional, d.order.tolist()
    x = torch.zeros(noise.shape[:-1], dtype=F64)
    for step, i in enumerate(order):
        params = d.conditioner(head.encode(x, F64), d.context)[..., i, :]
        value = head.for_variables(i).sample_from_noise(params, noise[..., step, :])
        if observed is not None:
            value = torch.where(mask[..., i], observed[..., i], value)
        x[..., i] = value
    return x


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("heads", [DISCRETE, WITH_REALS], ids=["discrete", "with-reals"])
def test_sample_equals_naive_sampler_with_the_same_noise(model, heads):
    # All-discrete tables go through FVSBN's and MADE's block sampler, the others step by step.
    n = len(heads)
    net = build(model, heads, context_size=2, scale=1.0)
    d = net(context((3,), 2))
    torch.manual_seed(11)
    x = d.sample((4,))
    torch.manual_seed(11)  # the loop draws all its noise first, in step order
    steps_head = d.conditional.for_variables(d.order.tolist())
    noise = steps_head.draw_noise(torch.Size((4, 3, n)), F64, torch.device("cpu"))
    expected = naive_sample(d.expand((4, 3)), noise)
    assert x.shape == (4, 3, n) and x.dtype == F64
    torch.testing.assert_close(x, expected, atol=1e-10, rtol=0)
    d.log_prob(x)  # in the support (validated)
    # Conditioned on a prefix of the order, observed differently per row.
    mask = torch.zeros(3, n, dtype=torch.bool)
    mask[:, d.order[:2]] = True
    mask[1] = False
    observed = random_rows(heads, (3,), seed=4)
    torch.manual_seed(12)
    x = d.condition(observed, mask).sample((4,))
    torch.manual_seed(12)
    noise = steps_head.draw_noise(torch.Size((4, 3, n)), F64, torch.device("cpu"))
    expected = naive_sample(d.expand((4, 3)), noise, observed.expand(4, 3, n), mask.expand(4, 3, n))
    torch.testing.assert_close(x, expected, atol=1e-10, rtol=0)


def test_mixed_discrete_block_sampler_with_blocks_longer_than_one():
    # More columns than one block (32): the block rounds run across a block boundary too.
    heads = [Categorical(3), Bernoulli(), Categorical(5)] * 14
    net = build("fvsbn", heads, scale=1.5)
    d = net()
    assert d.conditioner.incremental(None, torch.Size([2])).block_size > 1
    torch.manual_seed(3)
    x = d.sample((20,))
    torch.manual_seed(3)
    noise = d.conditional.for_variables(d.order.tolist()).draw_noise(torch.Size((20, 42)), F64, torch.device("cpu"))
    assert torch.equal(x, naive_sample(d.expand((20,)), noise))


def test_goodness_of_fit_per_column():
    # A chain over (categorical, mixture, bernoulli, poisson, mixture, categorical): each column's
    # samples against its exact marginal, computed from the exact conditionals by Monte Carlo
    # over the earlier columns' samples (the marginal of column j is E[p(x_j | x_<j)]).
    torch.manual_seed(0)
    heads = WITH_REALS
    net = build("made", heads, order=None, scale=0.3)
    d = net()
    x = d.sample((20_000,))
    params = d.conditioner(d.conditional.encode(x, F64), None)
    for j, h in enumerate(heads):
        col, p = x[:, j], params[:, j, : h.param_size]
        if isinstance(h, (Bernoulli, Categorical)):
            k = 2 if isinstance(h, Bernoulli) else h.num_categories
            probs = torch.stack([h.log_prob(p, torch.full_like(col, v)).exp() for v in range(k)], -1).mean(0)
            counts = torch.bincount(col.long(), minlength=k).double()
            chi2 = float(((counts - probs * len(col)) ** 2 / (probs * len(col))).sum())
            assert stats.chi2.sf(chi2, k - 1) > 1e-4, (j, counts, probs)
        elif isinstance(h, Poisson):
            mean = h.log_rate(p).exp().mean()  # E[x_j] = E[rate_j]
            assert abs(float(col.mean() - mean)) < 5 * float(col.std()) / math.sqrt(len(col))
        else:
            # The probability integral transform through the row's own conditional CDF is uniform.
            from pyro_ar.reparam import mixture_cdf

            u = mixture_cdf(col, *h.split(p))
            assert stats.kstest(u.detach().numpy(), "uniform").pvalue > 1e-3, j


# ---- validation and configuration ----------------------------------------------------------------


def test_values_are_checked_column_by_column():
    d = build("made", WITH_REALS)()
    good = random_rows(WITH_REALS, (2,))
    d.log_prob(good)
    for column, value, match in [
        (0, 3.0, r"column 0 \(Categorical\(num_categories=3\)\) holds 3.0"),
        (2, 0.5, r"column 2 \(Bernoulli\(\)\) holds 0.5"),
        (3, -1.0, r"column 3 \(Poisson\(\)\) holds -1.0"),
        (3, 1.5, r"column 3 \(Poisson\(\)\)"),
        (5, float("nan"), r"column 5 \(Categorical"),
        (1, float("inf"), r"column 1 \(MixtureOfGaussians.*finite"),
    ]:
        bad = good.clone()
        bad[1, column] = value
        with pytest.raises(ValueError, match=match):
            d.log_prob(bad)
    with pytest.raises(ValueError, match=r"shape \(\*, 6\)"):
        d.log_prob(good[..., :5])


def test_bad_mixed_heads_are_refused():
    for heads, match in [
        ([], "at least one"),
        ("bernoulli", "list"),
        ([Bernoulli(), 3], r"heads\[1\]"),
        ([Mixed([Bernoulli()])], r"heads\[0\] must be a single-column"),
        ([{"name": "nope"}], "unknown conditional"),
    ]:
        with pytest.raises(ValueError, match=match):
            Mixed(heads)
    with pytest.raises(ValueError, match=r"Mixed has 2 heads \(one per column\) but the model has event_size=5"):
        pyro_ar.MADE(5, hidden_sizes=[8], conditional=Mixed([Bernoulli(), Categorical(4)]))
    net = pyro_ar.MADE(2, hidden_sizes=[8], conditional=Mixed([Bernoulli(), Categorical(4)]))
    with pytest.raises(ValueError, match="Mixed has 2 heads"):
        pyro_ar.Autoregressive(pyro_ar.nn.FVSBN(3, input_size=4, param_size=4), net.conditional)


def test_padded_sizes_initial_bias_and_unused_parameters():
    heads = [Bernoulli(), Categorical(5), MixtureOfGaussians(3)]
    head = Mixed(heads)
    assert (head.param_size, head.input_size, head.noise_size) == (9, 5, 5)
    bias = head.initial_bias()
    assert bias.shape == (3, 9)
    torch.testing.assert_close(bias[2], MixtureOfGaussians(3).initial_bias())
    assert (bias[0, 1:] == 0).all() and (bias[1, 5:] == 0).all()
    net = pyro_ar.FVSBN(3, conditional=head).double()
    torch.testing.assert_close(net.conditioner.output_bias.detach(), bias.double())
    # The padded (unused) parameters of a column get exactly zero gradient.
    net().log_prob(torch.tensor([[1.0, 4.0, 0.3]], dtype=F64)).sum().backward()
    grad = net.conditioner.output_bias.grad
    assert (grad[0, 1:] == 0).all() and (grad[1, 5:] == 0).all() and (grad[:, :1] != 0).all()
    # One pass: each group of equal heads is scored in one call.
    assert len(Mixed([Bernoulli(), Categorical(3), Bernoulli(), Categorical(3)])._groups) == 2


def test_config_round_trip_checkpoint_and_pickle(tmp_path):
    heads = [Bernoulli(), Categorical(5), MixtureOfGaussians(3, min_scale=0.05), Poisson()]
    head = Mixed(heads)
    config = pyro_ar.models.head_config(head)
    assert config == {"name": "mixed", "heads": [
        {"name": "bernoulli"}, {"name": "categorical", "num_categories": 5},
        {"name": "mog", "num_components": 3, "min_scale": 0.05}, {"name": "count"}]}
    assert pyro_ar.models.head_from_config(config) == head
    net = build("made", heads)
    path = tmp_path / "model.pt"
    pyro_ar.save(net, path)
    loaded = pyro_ar.load(path)
    x = random_rows(heads, (5,))
    assert loaded.conditional == head
    torch.testing.assert_close(loaded().log_prob(x), net().log_prob(x))
    d = pickle.loads(pickle.dumps(net()))
    torch.testing.assert_close(d.log_prob(x), net().log_prob(x))
    assert pyro_ar.registry.head_entry("mixed").cls is Mixed


def test_pyro_svi_step_on_a_mixed_table():
    import pyro
    from pyro.infer import SVI, Trace_ELBO

    net = build("nade", WITH_REALS)
    rows = random_rows(WITH_REALS, (64,), seed=8)

    def model(x):
        pyro.module("ar", net)
        with pyro.plate("rows", x.shape[0]):
            pyro.sample("x", net(), obs=x)

    pyro.clear_param_store()
    svi = SVI(model, lambda x: None, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    losses = [svi.step(rows) for _ in range(30)]
    assert math.isfinite(losses[-1]) and losses[-1] < losses[0]


@pytest.mark.parametrize("factory", [pyro_ar.FVSBN, pyro_ar.NADE, pyro_ar.MADE])
def test_factory_refuses_a_wrong_number_of_heads(factory):
    heads = Mixed([Bernoulli(), Categorical(3)])
    with pytest.raises(ValueError, match=r"Mixed has 2 heads .* event_size=3"):
        factory(3, conditional=heads)
