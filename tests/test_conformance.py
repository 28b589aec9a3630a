"""Generic conformance tests run over every model of the harness (see ``conftest.py``).

Exact normalization and entropy by enumeration, exact ensemble mixtures, incremental
sampling state vs the one-pass forward, sample frequencies vs ``exp(log_prob)``, shapes,
broadcasting, ``expand``, dtypes, support, pickling and ``state_dict`` round trips.
"""

from __future__ import annotations

import itertools
import math
import pickle

import pyro
import pytest
import torch
from scipy import stats
from torch.distributions import constraints

import pyro_ar
from pyro_ar.distributions import Ensemble, JointDistribution

F64 = torch.float64


# ---- helpers ----------------------------------------------------------------------------


def all_values(spec) -> torch.Tensor:
    """Every joint value, built independently of ``enumerate_support``: ``(K^n, n)``, the
    first variable the most significant digit."""
    grid = torch.tensor(list(itertools.product(range(spec.num_values), repeat=spec.event_size)))
    return grid.to(F64) if spec.head == "bernoulli" else grid


def value_index(x: torch.Tensor, k: int) -> torch.Tensor:
    """The row of :func:`all_values` that each ``x: (*, n)`` is: ``(*)`` long."""
    n = x.shape[-1]
    powers = k ** torch.arange(n - 1, -1, -1)
    return (x.long() * powers).sum(-1)


def exact_probs(d: JointDistribution, spec) -> torch.Tensor:
    """``p(x)`` for every joint value: ``(K^n, *batch_shape)``."""
    values = all_values(spec)
    values = values.reshape((values.shape[0],) + (1,) * len(d.batch_shape) + (spec.event_size,))
    with torch.no_grad():
        return d.log_prob(values).exp()


def chi_square(counts: torch.Tensor, probs: torch.Tensor, min_expected: float = 5.0) -> tuple:
    """Pearson's statistic of ``counts`` against ``probs`` and its degrees of freedom, after
    pooling the cells whose expected count is below ``min_expected`` into one."""
    expected = counts.sum() * probs
    small = expected < min_expected
    if small.any():
        counts = torch.cat([counts[~small], counts[small].sum(0, keepdim=True)])
        expected = torch.cat([expected[~small], expected[small].sum(0, keepdim=True)])
    stat = ((counts - expected) ** 2 / expected).sum()
    return float(stat), counts.numel() - 1


def chi_square_passes(samples: torch.Tensor, probs: torch.Tensor, k: int, alpha: float = 1e-4) -> bool:
    """Whether ``samples: (N, n)`` are consistent with ``probs: (K^n,)`` at level ``alpha``."""
    counts = torch.bincount(value_index(samples, k), minlength=probs.numel()).to(F64)
    stat, df = chi_square(counts, probs)
    return stat < stats.chi2.isf(alpha, df)


def batch_for(spec) -> tuple:
    """A non-trivial batch shape through the context, or none without context."""
    return (2,) if spec.context_size is not None else ()


# ---- exactness by enumeration -------------------------------------------------------------


def test_enumerate_support_is_every_value(ar_discrete_spec):
    spec = ar_discrete_spec
    d = spec.distribution(spec.build(), (2, 3))
    k, n = spec.num_values, spec.event_size
    full = d.enumerate_support()
    assert full.shape == (k**n, 2, 3, n)
    assert full.dtype == (torch.long if spec.has_levels else F64)
    assert torch.equal(full[:, 1, 2].to(F64), all_values(spec).to(F64))
    assert d.enumerate_support(expand=False).shape == (k**n, 1, 1, n)


def test_normalization(ar_discrete_spec):
    spec = ar_discrete_spec
    net = spec.build()
    batch = (3,) if spec.context_size is not None else ()
    for mask_index in [None, *range(spec.num_masks)]:
        d = spec.distribution(net, batch, mask_index=mask_index)
        lp = d.log_prob(d.enumerate_support())
        assert lp.shape == (spec.num_values**spec.event_size,) + batch
        assert lp.dtype == F64
        total = torch.logsumexp(lp, 0).exp()
        torch.testing.assert_close(total, torch.ones(batch, dtype=F64), atol=1e-9, rtol=0)


def test_normalization_float32(ar_discrete_spec):
    spec = ar_discrete_spec
    d = spec.distribution(spec.build(torch.float32), batch_for(spec))
    total = d.log_prob(d.enumerate_support()).exp().sum(0)
    assert total.dtype == torch.float32
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch", [(), (3,)], ids=["batch()", "batch(3)"])
def test_entropy_is_exact(ar_discrete_spec, batch):
    spec = ar_discrete_spec
    net = spec.build()
    for mask_index in [None, *range(spec.num_masks)]:
        d = spec.distribution(net, batch, mask_index=mask_index)
        p = exact_probs(d, spec)
        expected = -(p * p.log()).sum(0)
        entropy = d.entropy()
        assert entropy.shape == batch
        torch.testing.assert_close(entropy.detach(), expected, atol=1e-10, rtol=0)


def test_ensemble_is_exact_mixture(ar_spec):
    """``log p(x) = logsumexp_m log p_m(x) - log M``: a mixture of members, not of logits."""
    spec = ar_spec
    net = spec.build()
    x = spec.random_value((7,) + batch_for(spec))
    d = spec.distribution(net, batch_for(spec))
    lp = d.log_prob(x)
    members = torch.stack(
        [spec.distribution(net, batch_for(spec), mask_index=m).log_prob(x) for m in range(spec.num_masks)]
    )
    torch.testing.assert_close(lp, torch.logsumexp(members, 0) - math.log(spec.num_masks), atol=1e-12, rtol=0)
    if spec.num_masks > 1:  # the model is the Ensemble of its members, member k is net(mask_index=k)
        assert isinstance(d, Ensemble) and len(d.members) == spec.num_masks
        assert all(isinstance(m, spec.distribution_class) for m in d.members)
        for k, member in enumerate(d.members):
            assert torch.equal(member.order, net.conditioner.orders[k])
        torch.testing.assert_close(d.member_log_probs(x), members, atol=1e-12, rtol=0)
    else:  # a single chain, and mask_index=0 is the same chain
        assert isinstance(d, spec.distribution_class) and not isinstance(d, Ensemble)
        assert torch.equal(d.order, net.conditioner.orders[0])
        torch.testing.assert_close(members[0], lp, atol=0, rtol=0)
    if spec.num_masks > 1:  # the members really differ, so the mixture is not trivially one of them
        assert (members[0] - members[1]).abs().max() > 1e-3


def test_log_prob_is_chain_rule_of_forward(ar_member):
    """log_prob is the sum of the head's per-variable scores on the one-pass parameters."""
    spec, member = ar_member
    net = spec.build()
    batch = batch_for(spec)
    x = spec.random_value((4,) + batch)
    context = spec.context(batch)
    params = net.conditioner.member(member)(net.conditional.encode(x, F64), context)
    dists = [net.conditional.distribution(params[..., i, :]) for i in range(spec.event_size)]
    expected = sum(di.log_prob(x[..., i]) for i, di in enumerate(dists))
    lp = spec.distribution(net, batch, mask_index=member).log_prob(x)
    torch.testing.assert_close(lp, expected, atol=1e-12, rtol=0)


# ---- incremental state == one-pass forward -------------------------------------------------


def test_incremental_state_matches_forward(ar_member):
    """Feeding a value through ``IncrementalState`` gives the forward pass's parameters: the
    sampler draws each variable from exactly the conditional that log_prob scores."""
    spec, member = ar_member
    net = spec.build()
    cond, head = net.conditioner, net.conditional
    batch = torch.Size([2, 3])
    context = spec.context(batch)
    x = spec.random_value(batch, seed=5)
    encoded = head.encode(x, F64)
    view = cond.member(member)  # the single-order conditioner of that member
    full = view(encoded, context)
    state = view.incremental(context, batch)
    assert torch.equal(view.order, cond.orders[member])
    for step, i in enumerate(view.order.tolist()):
        params = state.params(step)
        assert params.shape == batch + (cond.param_size,)
        torch.testing.assert_close(params, full[..., i, :], atol=1e-10, rtol=0)
        state.observe(step, encoded[..., i, :])


#: Options at n = 70 where a model's registry ``example`` would not exercise what matters
#: there: NADE's shared hidden layer, MADE's degrees over two layers and a second member.
MANY_VARIABLES_OPTIONS = {"nade": {"hidden_size": 16}, "made": {"hidden_sizes": [40, 40], "num_masks": 2}}


@pytest.mark.parametrize("batch", [torch.Size([5]), torch.Size([2, 3]), torch.Size([])], ids=["1d", "2d", "0d"])
def test_incremental_state_matches_forward_over_many_variables(ar_model, batch):
    """The same check at n = 70 with categorical feedback and a context, for every model of
    the harness (and every member): several of the sampling state's blocks (FVSBN updates
    blocks of 32 variables), and batches of any rank."""
    n, k = 70, 3
    options = MANY_VARIABLES_OPTIONS.get(ar_model, pyro_ar.registry.conditioner_entry(ar_model).example)
    torch.manual_seed(0)
    factory, entry = pyro_ar.models.factory(ar_model), pyro_ar.registry.conditioner_entry(ar_model)
    order = None if entry.fixed_order else "random"
    net = factory(**entry.event_kwargs(n), conditional=pyro_ar.conditionals.Categorical(k), context_size=2, order=order,
                  **options)
    net = net.double()
    with torch.no_grad():  # non-zero everywhere, so that a dropped or misplaced term shows
        for p in net.parameters():
            p.normal_(0, 0.3)
    cond, head = net.conditioner, net.conditional
    context = torch.randn(batch + (2,), dtype=F64)
    x = torch.randint(k, batch + (n,))
    encoded = head.encode(x, F64)
    for member in range(cond.num_members):
        view = cond.member(member)
        full = view(encoded, context)
        state = view.incremental(context, batch)
        for step, i in enumerate(view.order.tolist()):
            params = state.params(step)
            assert params.shape == batch + (k,)
            torch.testing.assert_close(params, full[..., i, :], atol=1e-10, rtol=0)
            state.observe(step, encoded[..., i, :])


# ---- samples follow the density -----------------------------------------------------------


def independent_sampler(net, spec, context, shape) -> torch.Tensor:
    """A deliberately wrong sampler: every variable from its conditional at x = 0, i.e. the
    dependencies between variables dropped (what a sampler feeding back nothing would do)."""
    zeros = net.conditional.encode(torch.zeros(spec.event_size, dtype=torch.long), F64)
    params = net.conditioner(zeros, context)
    return net.conditional.distribution(params).sample(shape)


def test_samples_match_density(ar_discrete_spec):
    spec = ar_discrete_spec
    net = spec.build()
    batch = batch_for(spec)
    d = spec.distribution(net, batch)
    pyro.set_rng_seed(spec.seed)
    with torch.no_grad():
        x = d.sample((20000,))
    p = exact_probs(d, spec)
    k = spec.num_values
    for b in itertools.product(*map(range, batch)):
        assert chi_square_passes(x[(slice(None),) + b], p[(slice(None),) + b], k), f"batch element {b}"


def test_chi_square_has_power(ar_discrete_spec):
    """The bound of ``test_samples_match_density`` rejects wrong samplers and wrong densities."""
    spec = ar_discrete_spec
    if spec.event_size == 1:
        pytest.skip("a single variable has no dependencies to drop")
    net = spec.build()
    d = net(spec.context())
    p = exact_probs(d, spec)
    pyro.set_rng_seed(spec.seed)
    with torch.no_grad():
        good = d.sample((20000,))
        wrong = independent_sampler(net, spec, spec.context(), (20000,))
    k = spec.num_values
    assert chi_square_passes(good, p, k)
    assert not chi_square_passes(wrong, p, k), "samples that ignore dependencies pass"
    flattened = 0.85 * p + 0.15 / p.numel()
    assert not chi_square_passes(good, flattened, k), "a 15% flattened density passes"


def rosenblatt(net, x: torch.Tensor, context, member: int) -> torch.Tensor:
    """``u_i = F_i(x_i | x_<i)``, the CDF of each mixture-of-Gaussians conditional at the
    sample: ``x: (N, n) -> (N, n)``. For exact samples of the member, the ``u`` are iid
    Uniform(0, 1) (Rosenblatt's transform), however sharp or multimodal the conditionals."""
    params = net.conditioner.member(member)(net.conditional.encode(x, F64), context)
    logits, means, scales = net.conditional.split(params)
    cdf = torch.distributions.Normal(means, scales).cdf(x.unsqueeze(-1))
    return (logits.softmax(-1) * cdf).sum(-1)


def uniform_iid(u: torch.Tensor, alpha: float = 1e-3) -> bool:
    """Each column Uniform(0, 1) (Kolmogorov-Smirnov) and the joint uniform on a grid of
    ``3^n`` cells (chi-square), both at level ``alpha``."""
    if any(stats.kstest(col.numpy(), "uniform").pvalue < alpha for col in u.T):
        return False
    cells = (u * 3).long().clamp(0, 2)
    index = (cells * 3 ** torch.arange(u.shape[1])).sum(-1)
    counts = torch.bincount(index, minlength=3 ** u.shape[1]).to(F64)
    stat, df = chi_square(counts, torch.full((3 ** u.shape[1],), 3.0 ** -u.shape[1], dtype=F64))
    return stat < stats.chi2.isf(alpha, df)


def test_mog_samples_pass_rosenblatt_test(ar_mog_member):
    spec, member = ar_mog_member
    net = spec.build()
    d = net(spec.context(), mask_index=member)
    pyro.set_rng_seed(spec.seed)
    with torch.no_grad():
        x = d.sample((4000,))
        assert uniform_iid(rosenblatt(net, x, spec.context(), member))
        # The same test rejects a sampler that drops the dependencies, or a stretched one.
        params = net.conditioner.member(member)(torch.zeros_like(net.conditional.encode(x, F64)), spec.context())
        wrong = net.conditional.distribution(params).sample()  # every x_i given x_<i = 0
        if spec.event_size > 1:
            assert not uniform_iid(rosenblatt(net, wrong, spec.context(), member))
        assert not uniform_iid(rosenblatt(net, 1.5 * x, spec.context(), member))


def test_temperature_samples_follow_tempered_conditionals(ar_discrete_spec):
    """``tempered(T)`` draws each x_i from its conditional with logits / T: the joint is
    ``mean_m prod_i softmax(logits_mi(x_<i) / T)[x_i]`` (normalized by the chain rule), and
    the tempered distribution's ``log_prob`` is that of its samples."""
    spec = ar_discrete_spec
    net = spec.build()
    d = net(spec.context())
    temperature = 0.6
    values = all_values(spec)
    encoded = net.conditional.encode(values, F64)
    with torch.no_grad():
        members = []
        for m in range(spec.num_masks):
            params = net.conditioner.member(m)(encoded, spec.context())
            members.append(net.conditional.distribution(params, temperature).log_prob(values).sum(-1))
        q = torch.stack(members).exp().mean(0)
        torch.testing.assert_close(q.sum(), torch.tensor(1.0, dtype=F64), atol=1e-9, rtol=0)
        tempered = d.tempered(temperature)
        assert type(tempered) is type(d) and tempered.batch_shape == d.batch_shape
        torch.testing.assert_close(exact_probs(tempered, spec), q, atol=1e-12, rtol=0)
        pyro.set_rng_seed(spec.seed)
        x = tempered.sample((20000,))
    assert chi_square_passes(x, q, spec.num_values)
    if spec.event_size > 1 or spec.num_values > 2:
        assert not chi_square_passes(x, exact_probs(d, spec), spec.num_values), "T = 0.6 looks like T = 1"


def test_ensemble_samples_every_member(ar_ensemble_spec):
    """An ensemble sampler draws from the equal-weight mixture, not from one member:
    ``E_{x~p}[p_m(x) / (M p(x))] = 1/M`` for every member ``m``."""
    spec = ar_ensemble_spec
    net = spec.build()
    d = spec.distribution(net, batch_for(spec))
    pyro.set_rng_seed(0)
    with torch.no_grad():
        x = d.sample((4000,))
    # A sampler stuck on member 0 would give E_{x~p_0}[p_m / (M p)], far from 1/M.
    lps = torch.stack([net(spec.context(batch_for(spec)), mask_index=m).log_prob(x) for m in range(spec.num_masks)])
    lp = d.log_prob(x)
    responsibilities = (lps - lp).exp().mean(1) / spec.num_masks
    expected = torch.full_like(responsibilities, 1 / spec.num_masks)
    torch.testing.assert_close(responsibilities, expected, atol=0.05, rtol=0)


# ---- shapes -------------------------------------------------------------------------------

SAMPLE_SHAPES = [(), (4,), (2, 3)]


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 3)], ids=["batch()", "batch(3)", "batch(2,3)"])
def test_sample_and_log_prob_shapes(ar_spec, batch_shape):
    spec = ar_spec
    d = spec.distribution(spec.build(), batch_shape)
    assert d.batch_shape == batch_shape and d.event_shape == (spec.event_size,)
    for sample_shape in SAMPLE_SHAPES:
        x = d.sample(sample_shape)
        assert x.shape == sample_shape + batch_shape + (spec.event_size,), sample_shape
        assert d.log_prob(x).shape == sample_shape + batch_shape, sample_shape
        assert d.shape(sample_shape) == x.shape


def test_expand_of_a_context_batch(ar_spec):
    spec = ar_spec
    d = spec.distribution(spec.build(), (3,)).expand((2, 3))
    assert d.batch_shape == (2, 3)
    assert d.sample((4,)).shape == (4, 2, 3, spec.event_size)


def test_log_prob_broadcasting(ar_spec):
    spec = ar_spec
    net = spec.build()
    d = spec.distribution(net, (3,))
    x = spec.random_value((5, 1))
    lp = d.log_prob(x)
    assert lp.shape == (5, 3)
    context = spec.context((3,))
    for b in range(3):
        single = net(None if context is None else context[b])
        torch.testing.assert_close(lp[:, b], single.log_prob(x[:, 0]), atol=1e-12, rtol=0)


def check_expand(d, e, spec, validate_args) -> None:
    """``e = d.expand((2, 3))`` of a ``(3,)`` batch: the same values, checked the same way."""
    assert d.batch_shape == (3,) and e.batch_shape == (2, 3)  # expand does not mutate self
    assert e._validate_args is validate_args
    x = spec.random_value((2, 3))
    torch.testing.assert_close(e.log_prob(x), d.log_prob(x), atol=1e-12, rtol=0)
    assert e.expand((4, 2, 3)).batch_shape == (4, 2, 3)
    if spec.head == "bernoulli":
        bad = torch.full((2, 3, spec.event_size), 0.5, dtype=F64)
        if validate_args:
            with pytest.raises(ValueError, match="support"):
                e.log_prob(bad)
        else:
            assert e.log_prob(bad).shape == (2, 3)


@pytest.mark.parametrize("validate_args", [True, False], ids=["validate", "novalidate"])
def test_expand(ar_spec, validate_args):
    """``expand`` of every single-order chain (each member of an ensemble, built from its
    ``conditioner.member(k)`` view), and of the ensemble of them."""
    spec = ar_spec
    net = spec.build()
    context = spec.context((3,))
    chains = []
    for k in range(spec.num_masks):
        view = net.conditioner.member(k)
        if spec.num_masks == 1:
            assert view is net.conditioner  # a single-member conditioner is its own member
        d = spec.distribution_class(view, net.conditional, context=context, validate_args=validate_args)
        if context is None:
            d = d.expand((3,))
        e = d.expand((2, 3))
        assert type(e) is type(d) and isinstance(e, spec.distribution_class)
        assert isinstance(e, pyro_ar.Autoregressive) and isinstance(e, torch.distributions.Distribution)
        assert e.conditioner is view and e.conditioner.network is net.conditioner
        assert e.conditional == net.conditional
        assert torch.equal(e.order, net.conditioner.orders[k])
        check_expand(d, e, spec, validate_args)
        chains.append(d)
    if spec.num_masks > 1:
        with pytest.raises(ValueError, match="members"):  # one order per chain
            spec.distribution_class(net.conditioner, net.conditional, context=context)
        d = Ensemble(chains, validate_args=validate_args)
        e = d.expand((2, 3))
        assert type(e) is Ensemble and len(e.members) == spec.num_masks
        assert all(type(m) is spec.distribution_class and m.batch_shape == (2, 3) for m in e.members)
        assert all(m.conditioner is c.conditioner for m, c in zip(e.members, chains))
        check_expand(d, e, spec, validate_args)


def test_pyro_wrappers(ar_spec):
    """``to_event``, ``mask`` and ``expand_by`` (Pyro's mixin) compose with the distribution."""
    spec = ar_spec
    d = spec.distribution(spec.build(), (3,))
    x = spec.random_value((3,))
    torch.testing.assert_close(d.to_event(1).log_prob(x), d.log_prob(x).sum(), atol=1e-12, rtol=0)
    mask = torch.tensor([True, False, True])
    torch.testing.assert_close(d.mask(mask).log_prob(x), d.log_prob(x) * mask, atol=0, rtol=0)
    assert d.expand_by((5,)).batch_shape == (5, 3)


# ---- dtypes, support ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_dtypes(ar_spec, dtype):
    spec = ar_spec
    d = spec.distribution(spec.build(dtype), batch_for(spec))
    x = d.sample((50,))
    if spec.head == "bernoulli":
        assert x.dtype == dtype and set(x.unique().tolist()) <= {0.0, 1.0}
    elif spec.has_levels:
        assert x.dtype == torch.long and x.min() >= 0 and x.max() < spec.num_values
    else:
        assert x.dtype == dtype and torch.isfinite(x).all()
    assert d.log_prob(x).dtype == dtype


def test_support(ar_spec):
    spec = ar_spec
    d = spec.distribution(spec.build(), batch_for(spec))
    support = d.support
    assert isinstance(support, constraints.independent) and support.reinterpreted_batch_ndims == 1
    assert support.event_dim == 1
    base = support.base_constraint
    if spec.head == "bernoulli":
        assert base is constraints.boolean
    elif spec.has_levels:
        assert isinstance(base, constraints.integer_interval)
        assert (base.lower_bound, base.upper_bound) == (0, spec.num_values - 1)
    else:
        assert base is constraints.real
    x = d.sample((20,))
    assert support.check(x).all()
    assert d.has_enumerate_support is spec.is_discrete
    if spec.is_discrete:
        outside = x.clone()
        outside[..., 0] = spec.num_values  # one past the largest value
        assert not support.check(outside).any()


# ---- persistence ---------------------------------------------------------------------------


def test_pickle_round_trip(ar_spec):
    spec = ar_spec
    net = spec.build()
    d = spec.distribution(net, batch_for(spec))
    x = spec.random_value((4,) + batch_for(spec))
    net2 = pickle.loads(pickle.dumps(net))
    d2 = pickle.loads(pickle.dumps(d))
    assert type(d2) is type(d) and d2.batch_shape == d.batch_shape and d2.event_shape == d.event_shape
    torch.testing.assert_close(d2.log_prob(x), d.log_prob(x), atol=0, rtol=0)
    torch.testing.assert_close(spec.distribution(net2, batch_for(spec)).log_prob(x), d.log_prob(x), atol=0, rtol=0)


def test_state_dict_round_trip(ar_spec):
    spec = ar_spec
    net = spec.build()
    fresh = spec.build(weight_seed=12345)
    x = spec.random_value((6,) + batch_for(spec))
    before = spec.distribution(fresh, batch_for(spec)).log_prob(x)
    expected = spec.distribution(net, batch_for(spec)).log_prob(x)
    assert not torch.allclose(before, expected)  # the fresh model really starts elsewhere
    fresh.load_state_dict(net.state_dict())
    torch.testing.assert_close(spec.distribution(fresh, batch_for(spec)).log_prob(x), expected, atol=0, rtol=0)
    pyro.set_rng_seed(3)
    a = spec.distribution(net, batch_for(spec)).sample((5,))
    pyro.set_rng_seed(3)
    b = spec.distribution(fresh, batch_for(spec)).sample((5,))
    assert torch.equal(a, b)


def test_config_round_trip(ar_spec):
    """``net.config()`` holds the arguments the model was built with (the head as
    ``{"name": ...}``), and ``from_config`` of it rebuilds the same structure."""
    spec = ar_spec
    net = spec.build()
    assert type(net) is spec.factory and isinstance(net, pyro_ar.models.RegisteredModel)
    config = net.config()
    assert {key: config[key] for key in spec.config()} == spec.config()
    rebuilt = spec.factory.from_config(config)
    assert rebuilt.config() == config and rebuilt.conditional == net.conditional
    assert torch.equal(rebuilt.conditioner.orders, net.conditioner.orders)
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
