"""RNN and Transformer beyond the conformance harness (which runs their registry examples):
the tanh cell against the lecture notes' update written out by hand, every cell and deeper
stacks normalized and matching their sampling state, the key/value-cache sampler against a
naive sampler that reruns the full pass per variable, dropout only in training, and the
errors of bad hyperparameters."""

from __future__ import annotations

import pytest
import torch

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians

from test_sampling_noise import naive_sample

F64 = torch.float64


def perturbed(net, scale=0.4, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


def test_tanh_cell_is_the_notes_update():
    """h_k = tanh(W_hh h_{k-1} + W_xh u_k + b), θ = W_hy h_k + b_i + C context, h_{-1} = b_0 + U context."""
    n, h_size = 5, 6
    torch.manual_seed(0)
    net = perturbed(pyro_ar.RNN(n, hidden_size=h_size, cell="tanh", context_size=2, order=[3, 0, 4, 1, 2]).double())
    cond = net.conditioner
    x = torch.randint(2, (3, n)).double()
    context = torch.randn(3, 2, dtype=F64)
    rnn = cond.recurrent
    w_hh, w_xh, b = rnn.weight_hh_l0, rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0
    h = cond.initial_state[0, 0] + context @ cond.context_to_state.weight.T  # (3, H)
    expected = torch.empty(3, n, 1, dtype=F64)
    previous = None
    for step, i in enumerate(cond.order.tolist()):
        u = cond.start if previous is None else x[:, previous, None] @ cond.value_embedding.weight.T
        u = u + cond.variable_embedding[i]
        h = torch.tanh(h @ w_hh.T + u @ w_xh.T + b)
        offset = cond.output_bias[i] + (context @ cond.context_to_params.weight.T)[:, i : i + 1]
        expected[:, i] = h @ cond.readout.weight.T + offset
        previous = i
    torch.testing.assert_close(cond(x.unsqueeze(-1), context), expected, atol=1e-12, rtol=0)


CELL_SPECS = [
    ("RNN", {"hidden_size": 7, "cell": "tanh"}),
    ("RNN", {"hidden_size": 7, "cell": "gru", "num_layers": 2}),
    ("RNN", {"hidden_size": 7, "cell": "lstm", "num_layers": 2}),
    ("Transformer", {"d_model": 8, "num_heads": 2, "num_layers": 2, "dim_feedforward": 12}),
    ("Transformer", {"d_model": 12, "num_heads": 3, "num_layers": 3}),
]
IDS = [f"{m}-{'-'.join(map(str, o.values()))}" for m, o in CELL_SPECS]


@pytest.mark.parametrize("model, options", CELL_SPECS, ids=IDS)
@pytest.mark.parametrize("head", [Bernoulli(), Categorical(3)], ids=repr)
def test_every_cell_and_depth_is_normalized(model, options, head):
    n = 5 if head.param_size == 1 else 4
    net = perturbed(getattr(pyro_ar, model)(n, conditional=head, context_size=2, order="random", **options).double())
    d = net(torch.randn(3, 2, dtype=F64))
    total = d.log_prob(d.enumerate_support()).exp().sum(0)
    torch.testing.assert_close(total, torch.ones(3, dtype=F64), atol=1e-10, rtol=0)


@pytest.mark.parametrize("model, options", CELL_SPECS, ids=IDS)
def test_sampling_state_matches_the_one_pass_params(model, options):
    n, k = 40, 3
    net = perturbed(getattr(pyro_ar, model)(n, conditional=Categorical(k), context_size=2, order="random", **options).double())
    cond, head = net.conditioner, net.conditional
    batch = torch.Size([2, 3])
    context = torch.randn(batch + (2,), dtype=F64)
    encoded = head.encode(torch.randint(k, batch + (n,)), F64)
    full = cond(encoded, context)
    state = cond.incremental(context, batch)
    for step, i in enumerate(cond.order.tolist()):
        torch.testing.assert_close(state.params(step), full[..., i, :], atol=1e-10, rtol=0)
        state.observe(step, encoded[..., i, :])


@pytest.mark.parametrize("model, options", CELL_SPECS, ids=IDS)
@pytest.mark.parametrize("head", [Categorical(4), MixtureOfGaussians(2)], ids=repr)
def test_cached_sampler_equals_the_full_pass_per_step(model, options, head):
    """The recurrent state / key-value cache gives exactly what rerunning the whole network
    once per variable gives, with the same noise."""
    n = 30
    net = perturbed(getattr(pyro_ar, model)(n, conditional=head, context_size=2, order="random", **options).double())
    d = net(torch.randn(3, 2, dtype=F64))
    torch.manual_seed(4)
    x = d.sample((2,))
    torch.manual_seed(4)
    noise = head.draw_noise(torch.Size([2, 3, n]), F64, torch.device("cpu"))
    expected = naive_sample(d.expand((2, 3)), noise)
    if head.is_discrete:
        assert torch.equal(x, expected)
    else:
        torch.testing.assert_close(x, expected, atol=1e-10, rtol=0)


def test_rsample_through_the_cache_is_differentiable():
    """With gradients on, the key/value cache grows by concatenation (autograd-safe)."""
    net = perturbed(pyro_ar.Transformer(6, d_model=8, num_heads=2, conditional=MixtureOfGaussians(2)).double())
    x = net().rsample((4,))
    x.sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.conditioner.blocks[0].qkv.weight.grad.abs().sum() > 0


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    net = pyro_ar.Transformer(6, d_model=8, num_heads=2, dropout=0.5).double()
    x = torch.randint(2, (3, 6, 1)).double()
    net.train()
    assert not torch.equal(net.conditioner(x), net.conditioner(x))
    net.eval()
    torch.testing.assert_close(net.conditioner(x), net.conditioner(x), atol=0, rtol=0)
    d = net()
    torch.manual_seed(1)
    s = d.sample((5,))
    torch.manual_seed(1)
    noise = d.conditional.draw_noise(torch.Size([5, 6]), F64, torch.device("cpu"))
    assert torch.equal(s, naive_sample(d.expand((5,)), noise))


@pytest.mark.parametrize(
    "model, options, message",
    [
        ("RNN", {"cell": "relu"}, "cell must be one of"),
        ("RNN", {"cell": None}, "cell must be one of"),
        ("RNN", {"hidden_size": 0}, "hidden_size must be >= 1"),
        ("RNN", {"num_layers": 1.5}, "num_layers must be an int"),
        ("Transformer", {"d_model": 10, "num_heads": 4}, "d_model must be divisible by num_heads"),
        ("Transformer", {"num_heads": 0}, "num_heads must be >= 1"),
        ("Transformer", {"num_layers": 0}, "num_layers must be >= 1"),
        ("Transformer", {"dim_feedforward": -3}, "dim_feedforward must be >= 1"),
        ("Transformer", {"dropout": 1.0}, r"dropout must be a number in \[0, 1\)"),
        ("Transformer", {"dropout": "0.1"}, r"dropout must be a number in \[0, 1\)"),
    ],
)
def test_bad_hyperparameters_are_refused(model, options, message):
    with pytest.raises(ValueError, match=message):
        getattr(pyro_ar, model)(5, **options)


def test_empty_batches_and_float32():
    for net in (pyro_ar.RNN(4, hidden_size=8, cell="lstm"), pyro_ar.Transformer(4, d_model=8, num_heads=2)):
        d = net()
        assert d.log_prob(torch.zeros(0, 4)).shape == (0,)
        assert d.sample((0,)).shape == (0, 4)
        s = d.sample((3,))
        assert s.dtype == torch.float32 and d.log_prob(s).dtype == torch.float32
