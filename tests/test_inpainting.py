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
    with pytest.raises(ValueError, match=re.escape(f"members {bad} do not") + ".*mask_index.*admissible_only"):
        d.conditional_sample(x, mask, (3,))
    with pytest.raises(ValueError, match=re.escape(f"members {bad} do not")):
        d.marginal_log_prob(x, mask)
    with pytest.raises(ValueError, match="must come first in the model's order"):
        net(mask_index=bad[0]).conditional_sample(x, mask)
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
    with pytest.raises(ValueError, match="row 1"):
        net().conditional_sample(torch.zeros(2, 4), masks, admissible_only=True)


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
    with pytest.raises(ValueError, match="temperature"):
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
            torch.manual_seed(9)
            x = d.sample((N_SAMPLES,), temperature=temperature)
            assert_frequencies(config_index(x, 3), lq.exp())


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
            freq = torch.bincount(config_index(d.sample((N_SAMPLES,), temperature=t), 3), minlength=27) / N_SAMPLES
            plug_in.append(float(-(freq[freq > 0] * freq[freq > 0].log()).sum()))
    assert plug_in[0] < plug_in[1] < plug_in[2]


@pytest.mark.parametrize("kind", ["fvsbn", "made"])
def test_small_temperature_concentrates_on_per_step_argmax(kind):
    d = build(kind, Categorical(3), order=[1, 2, 0], n=3, seed=12)()
    torch.manual_seed(13)
    with torch.no_grad():
        x = d.sample((200,), temperature=1e-4)
        assert bool((x == greedy(d)).all())
        observed, mask = torch.tensor([0, 2, 0]), torch.tensor([False, True, False])
        filled = d.conditional_sample(observed, mask, (200,), temperature=1e-4)
        assert bool((filled == greedy(d, observed, mask)).all())
    # Bernoulli too: the sign of each logit.
    b = build(kind, Bernoulli(), order="reverse", n=4, seed=14)()
    with torch.no_grad():
        assert bool((b.sample((200,), temperature=1e-4) == greedy(b).double()).all())


def test_temperature_is_rejected_for_mixtures_of_gaussians_and_bad_values():
    d = build("nade", MixtureOfGaussians(2), order=None, n=2, std=0.3)()
    with pytest.raises(ValueError, match="discrete"):
        d.sample((3,), temperature=0.5)
    with pytest.raises(ValueError, match="discrete"):
        d.conditional_sample(torch.zeros(2), torch.tensor([True, False]), temperature=2.0)
    assert d.sample((3,), temperature=1.0).shape == (3, 2)
    b = build("nade")()
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            b.sample((2,), temperature=bad)
