"""MADE's blockwise masked products (``pyro_ar/nn/staircase.py``): equal to the masked
product, used where they apply, and never stale.

The fast path reads the current weights on every call and derives its plan from the mask
buffers only, so weights written through ``p.data`` (masked-out entries included) or
``load_state_dict`` must give exactly the density of the masked network.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

import pyro_ar
import pyro_ar.nn.staircase as staircase_module
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.nn.staircase import staircase_linear, staircase_plan


def random_staircase(rows: int, cols: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(0, cols + 1, (rows,), generator=g).sort().values
    return (torch.arange(cols).unsqueeze(0) < prefix.unsqueeze(1)).float()


def reference_forward(net, x: torch.Tensor, context=None, member: int = 0) -> torch.Tensor:
    """MADE's function written out from ``masked_weights`` (weight * mask, every layer)."""
    weights = net.masked_weights(member)
    residual = net.masked_residual_weights(member)
    h = x.flatten(-2)
    for l, layer in enumerate(net.hidden_layers):
        h = F.linear(h, weights[l], layer.bias)
        if l == 0 and context is not None:
            h = h + net.context_to_hidden(context)
        if l == len(net.hidden_layers) - 1:
            for b in range(net.residual_blocks):
                first, second = net.residual_layers[2 * b], net.residual_layers[2 * b + 1]
                inner = net.activation(F.linear(net.activation(h), residual[2 * b], first.bias))
                h = h + F.linear(inner, residual[2 * b + 1], second.bias)
        h = net.activation(h)
    out = F.linear(h, weights[-1]).unflatten(-1, (net.event_size, net.param_size))
    return out + net.output_offset(context)


def leaves(plan):
    if plan[0] == "leaf":
        return [plan]
    return leaves(plan[5]) + leaves(plan[6])


def _reference_log_prob(net, x):
    params = reference_forward(net, x.unsqueeze(-1))
    return -F.binary_cross_entropy_with_logits(params[..., 0], x, reduction="none").sum(-1)


def test_plan_recognizes_staircases_only():
    mask = random_staircase(80, 70, seed=0)
    plan = staircase_plan(mask, depth=2, min_weights=0)
    assert plan is not None
    prefix = mask.sum(1).long().tolist()
    parts = leaves(plan)
    assert [(r0, r1) for _, r0, r1, _, _ in parts] == [(0, 20), (20, 40), (40, 60), (60, 80)]
    for _, r0, r1, c0, c1 in parts:  # each leaf reaches the longest prefix of its rows
        assert c1 == max(prefix[r1 - 1], c0) and c0 <= prefix[r0] or c0 == c1
    assert staircase_plan(mask.flip(0), min_weights=0) is None  # prefixes shrink
    holed = mask.clone()
    holed[-1, 0] = 0  # not a prefix
    assert staircase_plan(holed, min_weights=0) is None
    assert staircase_plan(mask, min_weights=mask.numel() + 1) is None  # too small to gain
    assert staircase_plan(torch.empty(80, 70, device="meta"), min_weights=0) is None


@pytest.mark.parametrize("depth", [0, 1, 2, 4])
@pytest.mark.parametrize("with_bias", [True, False])
def test_staircase_linear_equals_masked_linear_with_gradients(depth, with_bias):
    mask = random_staircase(50, 40, seed=depth)
    mask[:3] = 0  # rows that see nothing (the first variable's outputs)
    plan = staircase_plan(mask, depth=depth, min_weights=0)
    assert plan is not None
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(50, 40, generator=g, requires_grad=True)
    bias = torch.randn(50, generator=g, requires_grad=True) if with_bias else None
    x = torch.randn(2, 3, 40, generator=g, requires_grad=True)
    fast = staircase_linear(x, weight, bias, mask, plan)
    ref = F.linear(x, weight * mask, bias)
    assert fast.shape == (2, 3, 50)
    torch.testing.assert_close(fast, ref)
    up = torch.randn(2, 3, 50, generator=g)
    grads = torch.autograd.grad((fast * up).sum(), [x, weight, *([bias] if with_bias else [])])
    ref_grads = torch.autograd.grad((ref * up).sum(), [x, weight, *([bias] if with_bias else [])])
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)
    assert torch.all(grads[1][mask == 0] == 0), "masked-out weights got a gradient"


@pytest.mark.parametrize("depth", [0, 1, 2, 4])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("batch", [(), (7,), (2, 3)])
def test_blockwise_product_without_autograd_equals_masked_linear(depth, with_bias, batch, monkeypatch):
    # The blockwise path writes each block of rows in place (transposed); it must equal the
    # masked product for every tree depth and batch shape, rows that see nothing included.
    mask = random_staircase(50, 40, seed=depth + 10)
    mask[:3] = 0
    plan = staircase_plan(mask, depth=depth, min_weights=0)
    g = torch.Generator().manual_seed(2)
    weight, x = torch.randn(50, 40, generator=g), torch.randn(*batch, 40, generator=g)
    bias = torch.randn(50, generator=g) if with_bias else None
    calls = []
    real = staircase_module._fill
    monkeypatch.setattr(staircase_module, "_fill", lambda *args: calls.append(1) or real(*args))
    with torch.no_grad():
        fast = staircase_linear(x, weight, bias, mask, plan)
    assert calls, "the blockwise path was not taken"
    assert fast.shape == (*batch, 50)
    torch.testing.assert_close(fast, F.linear(x, weight * mask, bias), rtol=1e-5, atol=1e-5)
    assert torch.all(fast[..., :3] == (0 if bias is None else bias[:3]))


CONFIGS = [
    dict(hidden_sizes=[100]),
    dict(hidden_sizes=[90, 110]),
    dict(hidden_sizes=[100], residual_blocks=2),
    dict(hidden_sizes=[100], context_size=3),
    dict(hidden_sizes=[100], activation="tanh"),
]
HEADS = [Bernoulli(), Categorical(3), MixtureOfGaussians(2)]


def build(config, head, seed=0):
    model = pyro_ar.MADE(48, conditional=head, seed=seed, **config)
    with torch.no_grad():  # non-zero residual second layers, so the blocks compute something
        for layer in model.conditioner.residual_layers:
            layer.weight.normal_(0, 0.05)
            layer.bias.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("config,head", list(itertools.product(CONFIGS, HEADS)), ids=lambda v: repr(v))
def test_made_forward_takes_the_blockwise_path_and_equals_the_masked_network(config, head, monkeypatch):
    calls = []
    real = staircase_module._fill
    monkeypatch.setattr(staircase_module, "_fill", lambda *args: calls.append(1) or real(*args))
    model = build(config, head)
    net = model.conditioner
    assert all(plan is not None for plan in net._plans[0][:-1]), "member 0's masks should be staircases"
    context = torch.randn(5, 3) if net.context_size else None
    x = head.encode(model(context).sample() if context is not None else model().sample((5,)), torch.float32)
    with torch.no_grad():  # the blockwise path (with autograd on, the fused masked product)
        fast = net(x, context)
    assert len(calls) >= 2
    torch.testing.assert_close(fast, reference_forward(net, x, context))
    calls.clear()
    torch.testing.assert_close(net(x, context), fast)
    assert not calls  # with autograd: the fused product


def test_other_members_use_the_masked_product_and_agree():
    model = pyro_ar.MADE(48, hidden_sizes=[100], num_masks=3)
    net = model.conditioner
    x = model().sample((4,)).unsqueeze(-1)
    for member in range(3):
        with torch.no_grad():
            torch.testing.assert_close(net(x, member=member), reference_forward(net, x, member=member))


def test_weights_written_through_data_take_effect_including_masked_out_entries():
    model = build(dict(hidden_sizes=[100], residual_blocks=1), Bernoulli())
    net = model.conditioner
    x = model().sample((6,))
    with torch.no_grad():
        before = model().log_prob(x)
    g = torch.Generator().manual_seed(3)
    for p in net.parameters():  # every entry, the masked-out ones too, behind autograd's back
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.3)
    with torch.no_grad():
        after = model().log_prob(x)
    assert not torch.allclose(before, after)
    params = reference_forward(net, x.unsqueeze(-1))
    want = -F.binary_cross_entropy_with_logits(params[..., 0], x, reduction="none").sum(-1)
    torch.testing.assert_close(after, want)
    torch.testing.assert_close(model().log_prob(x), want)  # with autograd: the fused path
    # The AR property still holds with the masked-out entries now non-zero: flipping
    # variable j changes no parameters of the variables up to j (exactly, no autograd).
    with torch.no_grad():
        base = net(x.unsqueeze(-1))
        for j in (0, 7, 23, 47):
            flipped = x.clone()
            flipped[:, j] = 1 - flipped[:, j]
            moved = net(flipped.unsqueeze(-1))
            assert torch.equal(moved[:, : j + 1], base[:, : j + 1])
            if j < 47:
                assert not torch.equal(moved[:, j + 1 :], base[:, j + 1 :])


def test_load_state_dict_takes_effect_and_replans():
    a = build(dict(hidden_sizes=[100]), Bernoulli(), seed=0)
    b = pyro_ar.MADE(48, hidden_sizes=[100], seed=1)
    with torch.no_grad():
        for p in b.parameters():
            p.normal_(0, 0.3)
    x = a().sample((6,))
    a.load_state_dict(b.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(a().log_prob(x), b().log_prob(x))
        torch.testing.assert_close(a().log_prob(x), _reference_log_prob(b.conditioner, x))
    # A checkpoint whose hidden degrees are not sorted (older layout): its masks are not
    # staircases, the loaded model plans none and computes the masked network exactly.
    state = b.state_dict()
    perm = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    state["conditioner.hidden_degrees_0"] = state["conditioner.hidden_degrees_0"][:, perm]
    state["conditioner.masks_0"] = state["conditioner.masks_0"][:, perm]
    state["conditioner.masks_1"] = state["conditioner.masks_1"][:, :, perm]
    a.load_state_dict(state)
    assert a.conditioner._plans[0][0] is None and a.conditioner._plans[0][1] is None
    with torch.no_grad():
        torch.testing.assert_close(a.conditioner(x.unsqueeze(-1)), reference_forward(a.conditioner, x.unsqueeze(-1)))
    a.load_state_dict(b.state_dict())
    assert a.conditioner._plans[0][0] is not None


def test_blockwise_model_is_normalized_by_enumeration():
    model = pyro_ar.MADE(10, hidden_sizes=[512], residual_blocks=1)
    assert model.conditioner._plans[0][0] is not None
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    dist = model()
    with torch.no_grad():
        total = dist.log_prob(dist.enumerate_support(expand=False).squeeze(-2)).logsumexp(0)
    torch.testing.assert_close(total, torch.tensor(0.0), atol=1e-5, rtol=0)
