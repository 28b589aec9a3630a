"""Conditional sampling (inpainting), prefix marginals and sampling temperature.

Every conditional is checked against ``p(x_u | x_o)`` computed by enumerating the joint;
every marginal against the sum of ``exp(log_prob)`` over the completions.
"""

import math
import re

import numpy as np
import pytest
import torch
from scipy.stats import kstest

import pyro_ar
from frequency_checks import assert_frequencies, config_index
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.inpainting import (
    admissible_members,
    conditional_sample,
    marginal_log_prob,
    members_admitting,
    observed_first,
)

ORDER = [2, 0, 3, 1]
N_SAMPLES = 20000


def build(kind, head=None, order=ORDER, n=4, context_size=None, num_masks=1, order_agnostic=True, seed=0, std=1.0):
    head = Bernoulli() if head is None else head
    torch.manual_seed(seed)
    if kind == "fvsbn":
        net = pyro_ar.FVSBN(n, conditional=head, order=order, context_size=context_size)
    elif kind == "nade":
        net = pyro_ar.NADE(n, hidden_size=8, conditional=head, order=order, context_size=context_size)
    else:
        net = pyro_ar.MADE(
            n,
            hidden_sizes=[16, 16],
            conditional=head,
            order=order,
            context_size=context_size,
            num_masks=num_masks,
            order_agnostic=order_agnostic,
            seed=seed,
        )
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, std)
    return net.double()


def joint_table(d):
    """``(support (K^n, n), log p (K^n, *batch))`` by enumeration."""
    support = d.enumerate_support(expand=False).reshape(-1, d.event_size)
    with torch.no_grad():
        lp = d.log_prob(support.reshape((-1,) + (1,) * len(d.batch_shape) + (d.event_size,)))
    return support, lp


def exact_conditional(d, x_obs, mask):
    """``p(x | x_o)`` over the support (zero off the observed values), by enumeration: ``(K^n,)``."""
    support, lp = joint_table(d)
    consistent = (support == x_obs)[:, mask].all(-1)
    lp = lp.masked_fill(~consistent, -math.inf)
    return (lp - torch.logsumexp(lp, 0)).exp()


def prefix_mask(order, k, n=4):
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.tensor(order[:k], dtype=torch.long)] = True
    return mask


# ---- exactness rule ----------------------------------------------------------------------


def test_observed_first_rule():
    order = torch.tensor(ORDER)
    masks = torch.tensor(
        [
            [False, False, False, False],  # nothing observed: always fine
            [False, False, True, False],  # {2}: the first step
            [True, False, True, False],  # {2, 0}: the first two steps
            [True, True, True, True],  # everything
            [True, False, False, False],  # {0} without 2: step 1 observed after unobserved step 0
            [False, True, True, False],  # {2, 1}: skips 0 and 3
        ]
    )
    assert observed_first(order, masks).tolist() == [True, True, True, True, False, False]


# ---- single-member conditionals and marginals --------------------------------------------


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_conditional_frequencies_match_enumeration(kind):
    d = build(kind)()
    mask = prefix_mask(ORDER, 2)  # variables 2 and 0 observed
    x_obs = torch.tensor([1.0, float("nan"), 0.0, float("nan")], dtype=torch.float64)
    probs = exact_conditional(d, torch.nan_to_num(x_obs), mask)
    torch.manual_seed(1)
    x = conditional_sample(d, x_obs, mask, (N_SAMPLES,))
    assert x.shape == (N_SAMPLES, 4)
    assert bool((x[:, mask] == torch.tensor([1.0, 0.0], dtype=torch.float64)).all())
    assert_frequencies(config_index(x, 2), probs)
    # The method on the distribution is the same function.
    torch.manual_seed(1)
    assert torch.equal(d.conditional_sample(x_obs, mask, (N_SAMPLES,)), x)


def test_conditional_with_a_different_mask_per_row():
    d = build("made", Categorical(3), n=3, order=[1, 2, 0])()
    masks = torch.stack([prefix_mask([1, 2, 0], k, n=3) for k in (0, 1, 2)])  # (3, 3)
    values = torch.tensor([[0, 0, 0], [0, 2, 0], [0, 1, 2]])
    torch.manual_seed(2)
    x = d.conditional_sample(values, masks, (N_SAMPLES,))
    assert x.shape == (N_SAMPLES, 3, 3) and x.dtype == torch.long
    for row in range(3):
        probs = exact_conditional(d, values[row], masks[row])
        assert_frequencies(config_index(x[:, row], 3), probs)


@pytest.mark.parametrize("head", ["bernoulli", "categorical3"])
@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_prefix_marginal_matches_enumeration(kind, head):
    conditional, n = (Bernoulli(), 4) if head == "bernoulli" else (Categorical(3), 3)
    order = ORDER if n == 4 else [2, 0, 1]
    d = build(kind, conditional, order=order, n=n)()
    support, lp = joint_table(d)
    for k in range(n + 1):
        mask = prefix_mask(order, k, n)
        same = (support.unsqueeze(1) == support.unsqueeze(0))[..., mask].all(-1)  # (K^n, K^n)
        expected = torch.logsumexp(lp.unsqueeze(0).masked_fill(~same, -math.inf), 1)
        got = marginal_log_prob(d, support, mask)
        assert got.shape == (support.shape[0],)
        assert torch.allclose(got, expected, atol=1e-10), k
    # Rows with different prefix lengths at once, through the method.
    masks = torch.stack([prefix_mask(order, k % (n + 1), n) for k in range(support.shape[0])])
    each = torch.stack([marginal_log_prob(d, s, m) for s, m in zip(support, masks)])
    assert torch.allclose(d.marginal_log_prob(support, masks), each, atol=1e-12)


def test_marginal_with_context_batch():
    net = build("nade", Categorical(3), n=3, order="reverse", context_size=2)
    d = net(torch.randn(5, 2, dtype=torch.float64))
    support, lp = joint_table(d)  # lp (27, 5)
    mask = prefix_mask([2, 1, 0], 2, n=3)
    value = torch.tensor([0, 1, 2])
    got = d.marginal_log_prob(value, mask)
    assert got.shape == (5,)
    consistent = (support == value)[:, mask].all(-1)
    expected = torch.logsumexp(lp[consistent], 0)
    assert torch.allclose(got, expected, atol=1e-10)
    x = d.conditional_sample(value, mask, (7,))
    assert x.shape == (7, 5, 3) and bool((x[..., 1:] == value[1:]).all())


def test_marginal_is_differentiable_in_parameters():
    net = build("made")
    mask = prefix_mask(ORDER, 2)
    lp = net().marginal_log_prob(torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64), mask)
    lp.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_mixture_of_gaussians_marginal_and_conditional():
    net = build("made", MixtureOfGaussians(2), order=[1, 0], n=2, std=0.3)
    d = net()
    x1 = 0.7
    mask = torch.tensor([False, True])
    observed = torch.tensor([float("nan"), x1], dtype=torch.float64)
    grid = torch.linspace(-15.0, 15.0, 6001, dtype=torch.float64)
    points = torch.stack([grid, torch.full_like(grid, x1)], -1)
    with torch.no_grad():
        joint = d.log_prob(points).exp()
        marginal = torch.trapezoid(joint, grid)
        got = d.marginal_log_prob(observed, mask)
    assert abs(float(got) - math.log(float(marginal))) < 1e-6
    torch.manual_seed(3)
    x = d.conditional_sample(observed, mask, (4000,))
    assert bool((x[:, 1] == x1).all()) and bool(torch.isfinite(x).all())
    cdf = torch.cumulative_trapezoid(joint / marginal, grid, dim=0)
    cdf_fn = lambda v: np.interp(v, grid[1:].numpy(), cdf.numpy())  # noqa: E731
    assert kstest(x[:, 0].numpy(), cdf_fn).pvalue > 1e-3


# ---- ensembles: the mixture's exact conditional ------------------------------------------


def test_ensemble_conditional_uses_posterior_member_weights():
    net = build("made", num_masks=3, order_agnostic=False, seed=4, std=1.5)  # shared order ORDER
    d = net()
    mask = prefix_mask(ORDER, 2)
    x_obs = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    probs = exact_conditional(d, x_obs, mask)
    # The naive alternative (uniform member weights) is clearly different, so the test has power.
    uniform = torch.stack([exact_conditional(net(mask_index=m), x_obs, mask) for m in range(3)]).mean(0)
    assert float((probs - uniform).abs().sum()) > 0.05
    torch.manual_seed(5)
    x = d.conditional_sample(x_obs, mask, (N_SAMPLES,))
    assert bool((x[:, mask] == x_obs[mask]).all())
    assert_frequencies(config_index(x, 2), probs)


def test_ensemble_marginal_matches_enumeration():
    net = build("made", num_masks=3, order_agnostic=False, seed=6)
    d = net()
    support, lp = joint_table(d)
    mask = prefix_mask(ORDER, 3)
    same = (support.unsqueeze(1) == support.unsqueeze(0))[..., mask].all(-1)
    expected = torch.logsumexp(lp.unsqueeze(0).masked_fill(~same, -math.inf), 1)
    assert torch.allclose(d.marginal_log_prob(support, mask), expected, atol=1e-10)


def test_ensemble_conditional_with_context_batch():
    net = build("made", Categorical(3), order=[1, 0, 2], n=3, context_size=2, num_masks=2, order_agnostic=False)
    d = net(torch.randn(3, 2, dtype=torch.float64))
    mask = prefix_mask([1, 0, 2], 1, n=3)
    value = torch.tensor([0, 2, 0])
    support, lp = joint_table(d)  # lp (27, 3)
    consistent = (support == value)[:, mask].all(-1)
    torch.manual_seed(8)
    x = d.conditional_sample(value, mask, (N_SAMPLES,))
    assert x.shape == (N_SAMPLES, 3, 3)
    for row in range(3):
        lp_row = lp[:, row].masked_fill(~consistent, -math.inf)
        assert_frequencies(config_index(x[:, row], 3), (lp_row - torch.logsumexp(lp_row, 0)).exp())


def _partly_admissible_ensemble():
    net = build("made", num_masks=4, order=ORDER, order_agnostic=True, seed=7)
    mask = torch.zeros(4, dtype=torch.bool)
    mask[ORDER[0]] = True  # member 0 draws variable 2 first; some members do not
    d = net()
    good = members_admitting(d, mask)
    assert 0 in good and 0 < len(good) < 4  # precondition of the tests below
    return net, d, mask, good


def test_ensemble_raises_when_a_member_cannot_condition():
    net, d, mask, good = _partly_admissible_ensemble()
    bad = [m for m in range(4) if m not in good]
    x = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    # The message names the failing members, the first one's row and variables, and the ways out.
    first = net.conditioner.orders[bad[0]].tolist()
    why = f"variable {first[0]} is unobserved but comes before observed variable 2 in the order {first}"
    which = re.escape(f"members {bad} do not (member {bad[0]}, row 0: {why})")
    options = re.escape(f"members {good} do put") + ".*mask_index.*admissible_only"
    with pytest.raises(ValueError, match=which + ".*" + options):
        d.conditional_sample(x, mask, (3,))
    with pytest.raises(ValueError, match=which):
        d.marginal_log_prob(x, mask)
    with pytest.raises(ValueError, match=which):
        d.condition(x, mask)
    with pytest.raises(ValueError, match="must come first in the model's order, but " + re.escape(f"in row 0 {why}")):
        net(mask_index=bad[0]).conditional_sample(x, mask)
    with pytest.raises(ValueError, match="must come first in the model's order, but " + re.escape(f"in row 0 {why}")):
        net(mask_index=bad[0]).condition(x, mask)
    # A chosen admitting member conditions exactly.
    member = net(mask_index=good[-1])
    torch.manual_seed(6)
    probs = exact_conditional(member, x, mask)
    assert_frequencies(config_index(member.conditional_sample(x, mask, (N_SAMPLES,)), 2), probs)


def test_ensemble_admissible_only_is_the_exact_sub_mixture():
    net, d, mask, good = _partly_admissible_ensemble()
    x = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    adm = admissible_members(d, mask)
    assert adm.tolist() == [m in good for m in range(4)]
    # The sub-mixture of the admitting members, by enumeration.
    support = d.enumerate_support()
    with torch.no_grad():
        lp = torch.logsumexp(torch.stack([net(mask_index=m).log_prob(support) for m in good]), 0) - math.log(len(good))
    consistent = (support == x)[:, mask].all(-1)
    assert torch.allclose(
        d.marginal_log_prob(x, mask, admissible_only=True), torch.logsumexp(lp[consistent], 0), atol=1e-10
    )
    probs = (lp.masked_fill(~consistent, -math.inf) - torch.logsumexp(lp[consistent], 0)).exp()
    torch.manual_seed(7)
    draws = d.conditional_sample(x, mask, (N_SAMPLES,), admissible_only=True)
    assert_frequencies(config_index(draws, 2), probs)


def test_admissible_only_raises_for_a_row_no_member_admits():
    net = build("made", num_masks=2, order=[0, 1, 2, 3], order_agnostic=False)
    masks = torch.tensor([[True, False, False, False], [False, True, False, False]])
    with pytest.raises(ValueError, match="variables of row 1 first in its order, so not even admissible_only=True"):
        net().conditional_sample(torch.zeros(2, 4), masks, admissible_only=True)
    with pytest.raises(ValueError, match="variables of row 1 first in its order, so not even admissible_only=True"):
        net().condition(torch.zeros(2, 4), masks, admissible_only=True)
    # Without admissible_only the first failing row is named, here by both members.
    with pytest.raises(ValueError, match=re.escape("members [0, 1] do not (member 0, row 1: variable 0 is unobserved")):
        net().condition(torch.zeros(2, 4), masks)


# ---- the conditioned distribution itself ---------------------------------------------------


@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made", "made-ensemble"])
def test_condition_log_prob_is_the_exact_conditional(kind):
    """``d.condition(x_o, mask)`` is ``p(x_u | x_o)``: its ``log_prob`` matches enumeration
    (``-inf`` off the observed values), ``observed_log_prob`` is ``log p(x_o)``, and it samples
    what ``conditional_sample`` samples."""
    if kind == "made-ensemble":
        net = build("made", num_masks=3, order_agnostic=False, seed=4, std=1.5)
    else:
        net = build(kind)
    d = net()
    mask = prefix_mask(ORDER, 2)
    x_obs = torch.tensor([1.0, float("nan"), 0.0, float("nan")], dtype=torch.float64)
    conditioned = d.condition(x_obs, mask)
    expected_type = pyro_ar.distributions.ConditionedEnsemble if kind == "made-ensemble" else (
        pyro_ar.distributions.ConditionedAutoregressive
    )
    assert type(conditioned) is expected_type
    assert conditioned.batch_shape == () and conditioned.event_shape == (4,)
    support = d.enumerate_support()
    probs = exact_conditional(d, torch.nan_to_num(x_obs), mask)
    with torch.no_grad():
        lp = conditioned.log_prob(support)
        assert torch.allclose(lp.exp(), probs, atol=1e-12)
        assert bool((lp[probs == 0] == -math.inf).all()) and bool(torch.isfinite(lp[probs > 0]).all())
        torch.testing.assert_close(conditioned.observed_log_prob, d.marginal_log_prob(x_obs, mask), atol=0, rtol=0)
        consistent = (support == torch.nan_to_num(x_obs))[:, mask].all(-1)
        marginal = torch.logsumexp(d.log_prob(support)[consistent], 0)
        assert torch.allclose(conditioned.observed_log_prob, marginal, atol=1e-10)
    torch.manual_seed(21)
    x = conditioned.sample((N_SAMPLES,))
    assert bool((x[:, mask] == torch.tensor([1.0, 0.0], dtype=torch.float64)).all())
    assert_frequencies(config_index(x, 2), probs)
    torch.manual_seed(21)
    assert torch.equal(d.conditional_sample(x_obs, mask, (N_SAMPLES,)), x)


def test_condition_admissible_only_is_the_sub_mixture_conditional():
    """``condition(..., admissible_only=True)`` of a partly admissible ensemble is the exact
    conditional of the mixture of the admitting members: over all 16 values its probabilities
    sum to 1 and are ``p_A(v) / p_A(x_o)`` (zero off the observation), the member weights are
    the posterior ``p_m(x_o)`` among those members (zero for the others), and it samples that."""
    net, d, mask, good = _partly_admissible_ensemble()
    x_obs = torch.tensor([float("nan"), float("nan"), 1.0, float("nan")], dtype=torch.float64)
    conditioned = d.condition(x_obs, mask, admissible_only=True)
    assert type(conditioned) is pyro_ar.distributions.ConditionedEnsemble
    support = d.enumerate_support()
    with torch.no_grad():
        members = torch.stack([net(mask_index=m).log_prob(support) for m in range(4)])  # (4, 16)
        sub = torch.logsumexp(members[good], 0) - math.log(len(good))  # log p_A(v)
        consistent = support[:, 2] == 1.0
        log_marginal = torch.logsumexp(sub[consistent], 0)  # log p_A(x_o)
        expected = torch.where(consistent, (sub - log_marginal).exp(), torch.zeros_like(sub))
        lp = conditioned.log_prob(support)
        torch.testing.assert_close(lp.exp().sum(), torch.ones((), dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(lp.exp(), expected, atol=1e-12, rtol=0)
        assert bool((lp[~consistent] == -math.inf).all())
        torch.testing.assert_close(conditioned.observed_log_prob, log_marginal, atol=1e-10, rtol=0)
        # Posterior member weights: p_m(x_o) normalized over the admitting members.
        member_marginals = torch.logsumexp(members[:, consistent], 1)
        weights = torch.full((4,), -math.inf, dtype=torch.float64)
        weights[good] = member_marginals[good] - torch.logsumexp(member_marginals[good], 0)
        torch.testing.assert_close(conditioned.log_weights, weights, atol=1e-10, rtol=0)
        # The sub-mixture differs from the full ensemble's conditional (which cannot be had exactly).
        full = d.log_prob(support)
        full_conditional = torch.where(consistent, (full - torch.logsumexp(full[consistent], 0)).exp(), 0.0)
        assert float((expected - full_conditional).abs().sum()) > 1e-3
    torch.manual_seed(22)
    x = conditioned.sample((N_SAMPLES,))
    assert bool((x[:, 2] == 1.0).all())
    assert_frequencies(config_index(x, 2), expected)


def test_condition_with_a_prefix_per_row_over_a_context_batch():
    """One chain, a batch of contexts, each row with its own observed prefix (from nothing to
    everything): per row, ``condition(...).log_prob`` over every value sums to 1 and is
    ``p(v) / p(x_o)``; ``observed_log_prob`` is ``log p(x_o)``; samples match per row."""
    order = [1, 2, 0]
    net = build("nade", Categorical(3), order=order, n=3, context_size=2, seed=15)
    d = net(torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)))
    masks = torch.stack([prefix_mask(order, k, n=3) for k in range(4)])  # row k observes k variables
    observed = torch.tensor([[0, 0, 0], [0, 2, 0], [0, 1, 2], [1, 0, 2]])
    conditioned = d.condition(observed, masks)
    assert conditioned.batch_shape == (4,)
    support, lp = joint_table(d)  # (27, 3), (27, 4)
    with torch.no_grad():
        clp = conditioned.log_prob(support.unsqueeze(1))  # (27, 4)
    torch.testing.assert_close(clp.exp().sum(0), torch.ones(4, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.manual_seed(23)
    x = conditioned.sample((N_SAMPLES,))
    assert x.shape == (N_SAMPLES, 4, 3) and bool((x[:, masks] == observed[masks]).all())
    for row in range(4):
        consistent = (support == observed[row])[:, masks[row]].all(-1)
        log_marginal = torch.logsumexp(lp[consistent, row], 0)
        expected = torch.where(consistent, (lp[:, row] - log_marginal).exp(), torch.zeros(()))
        torch.testing.assert_close(clp[:, row].exp(), expected, atol=1e-12, rtol=0)
        torch.testing.assert_close(conditioned.observed_log_prob[row], log_marginal, atol=1e-10, rtol=0)
        assert_frequencies(config_index(x[:, row], 3), expected)
    observed_lp = conditioned.observed_log_prob.detach()
    assert float(observed_lp[0]) == 0.0  # nothing observed: log p(x_o) = log 1
    assert float(observed_lp[3]) == pytest.approx(float(lp[config_index(observed[3], 3), 3]))  # everything


# ---- input validation --------------------------------------------------------------------


def test_invalid_inputs_raise():
    d = build("fvsbn")()
    x = torch.zeros(4, dtype=torch.float64)
    mask = prefix_mask(ORDER, 1)
    with pytest.raises(ValueError, match="torch.bool"):
        d.conditional_sample(x, mask.double())
    with pytest.raises(ValueError, match=r"shape \(\*, 4\)"):
        d.marginal_log_prob(x, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \(\*, 4\)"):
        d.conditional_sample(torch.zeros(5), mask)
    with pytest.raises(ValueError, match="do not broadcast"):
        d.conditional_sample(torch.zeros(2, 4), torch.zeros(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="observed values"):
        d.marginal_log_prob(torch.tensor([0.0, 0.0, 0.5, 0.0]), mask)  # 0.5 is no Bernoulli value
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        d.conditional_sample(x, mask, temperature=0.0)
    # Garbage where nothing is observed is ignored.
    garbage = torch.tensor([7.0, float("nan"), 1.0, -3.0], dtype=torch.float64)
    assert torch.isfinite(d.marginal_log_prob(garbage, mask))
    assert d.conditional_sample(garbage, mask, (2,))[:, 2].eq(1.0).all()


# ---- temperature --------------------------------------------------------------------------


def tempered_log_prob(d, x, temperature):
    """``log q_T(x) = sum_i log softmax(theta_i(x_<i) / T)[x_i]``, the AR model at temperature T."""
    params = d.conditioner(d.conditional.encode(x, torch.float64))
    return d.conditional.distribution(params, temperature).log_prob(d.conditional._as_value(x, params)).sum(-1)


def greedy(d, observed=None, mask=None):
    """Per-step argmax completion in the model's order (observed variables kept)."""
    n = d.event_size
    x = torch.zeros(n, dtype=torch.long)
    for i in d.order.tolist():
        if mask is not None and bool(mask[i]):
            x[i] = observed[i].long()
            continue
        params = d.conditioner(d.conditional.encode(x, torch.float64))[i]
        x[i] = int(params.argmax()) if params.numel() > 1 else int(params[0] > 0)
    return x


@pytest.mark.parametrize("kind", ["nade", "made"])
def test_temperature_one_is_the_model_and_others_are_tempered_conditionals(kind):
    d = build(kind, Categorical(3), order=[2, 0, 1], n=3, seed=8)()
    support = d.enumerate_support()
    with torch.no_grad():
        for temperature in (1.0, 0.5, 2.0):
            lq = tempered_log_prob(d, support, temperature)
            assert torch.allclose(lq.exp().sum(), torch.ones((), dtype=torch.float64), atol=1e-12)
            if temperature == 1.0:
                assert torch.allclose(lq, d.log_prob(support), atol=1e-12)
            tempered = d.tempered(temperature)
            assert type(tempered) is type(d) and tempered.temperature == temperature
            # The tempered chain's log_prob is that of its samples.
            assert torch.allclose(tempered.log_prob(support), lq, atol=1e-12)
            torch.manual_seed(9)
            x = tempered.sample((N_SAMPLES,))
            assert_frequencies(config_index(x, 3), lq.exp())
        # Tempering returns a new distribution: the model itself is unchanged.
        assert d.temperature == 1.0
        assert torch.allclose(d.log_prob(support), tempered_log_prob(d, support, 1.0), atol=1e-12)
        # Temperatures compound: tempered(a).tempered(b) is tempered(a * b).
        twice = d.tempered(0.5).tempered(4.0)
        assert torch.allclose(twice.log_prob(support), tempered_log_prob(d, support, 2.0), atol=1e-12)


def test_temperature_flattens_and_sharpens_each_conditional():
    d = build("made", Categorical(3), order=[2, 0, 1], n=3, seed=10)()
    support = d.enumerate_support()
    with torch.no_grad():
        params = d.conditioner(d.conditional.encode(support, torch.float64))  # (27, 3, 3)
        entropy = {t: d.conditional.distribution(params, t).entropy() for t in (0.5, 1.0, 2.0)}
        assert bool((entropy[2.0] > entropy[1.0]).all()) and bool((entropy[1.0] > entropy[0.5]).all())
        # And the samples show it: plug-in joint entropy grows with the temperature.
        plug_in = []
        for t in (0.5, 1.0, 2.0):
            torch.manual_seed(11)
            freq = torch.bincount(config_index(d.tempered(t).sample((N_SAMPLES,)), 3), minlength=27) / N_SAMPLES
            plug_in.append(float(-(freq[freq > 0] * freq[freq > 0].log()).sum()))
    assert plug_in[0] < plug_in[1] < plug_in[2]


@pytest.mark.parametrize("kind", ["fvsbn", "made"])
def test_small_temperature_concentrates_on_per_step_argmax(kind):
    d = build(kind, Categorical(3), order=[1, 2, 0], n=3, seed=12)()
    torch.manual_seed(13)
    with torch.no_grad():
        x = d.tempered(1e-4).sample((200,))
        assert bool((x == greedy(d)).all())
        observed, mask = torch.tensor([0, 2, 0]), torch.tensor([False, True, False])
        filled = d.conditional_sample(observed, mask, (200,), temperature=1e-4)
        assert bool((filled == greedy(d, observed, mask)).all())
        # The same through the distributions: the tempered completions, or the completions of the tempered chain.
        assert bool((d.condition(observed, mask).tempered(1e-4).sample((200,)) == greedy(d, observed, mask)).all())
        assert bool((d.tempered(1e-4).condition(observed, mask).sample((200,)) == greedy(d, observed, mask)).all())
    # Bernoulli too: the sign of each logit.
    b = build(kind, Bernoulli(), order="reverse", n=4, seed=14)()
    with torch.no_grad():
        assert bool((b.tempered(1e-4).sample((200,)) == greedy(b).double()).all())


def test_temperature_is_rejected_for_mixtures_of_gaussians_and_bad_values():
    d = build("nade", MixtureOfGaussians(2), order=None, n=2, std=0.3)()
    observed, mask = torch.zeros(2), torch.tensor([True, False])
    with pytest.raises(ValueError, match="temperature applies to discrete conditionals only"):
        d.tempered(0.5)
    with pytest.raises(ValueError, match="temperature applies to discrete conditionals only"):
        d.conditional_sample(observed, mask, temperature=2.0)
    with pytest.raises(ValueError, match="temperature applies to discrete conditionals only"):
        d.condition(observed, mask).tempered(2.0)
    assert d.tempered(1.0).sample((3,)).shape == (3, 2)
    assert d.conditional_sample(observed, mask, (3,), temperature=1.0).shape == (3, 2)
    b = build("nade")()
    bx, bmask = torch.zeros(4), prefix_mask(ORDER, 1)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a positive finite number"):
            b.tempered(bad)
        with pytest.raises(ValueError, match="temperature must be a positive finite number"):
            b.condition(bx, bmask).tempered(bad)
        with pytest.raises(ValueError, match="temperature must be a positive finite number"):
            b.conditional_sample(bx, bmask, (2,), temperature=bad)
