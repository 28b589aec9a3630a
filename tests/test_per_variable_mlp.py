"""PerVariableMLP: the lecture notes' per-variable MLP, checked against a literal loop over variables.

The conformance harness (``tests/conftest.py``) already runs every generic test over it
(``-k pervariablemlp``); these tests check what is particular to it: the one-pass forward is
the notes' formula evaluated variable by variable, nothing is shared between variables, the
parameter count, and its options.
"""

from __future__ import annotations

import pytest
import torch

import pyro_ar
from pyro_ar.conditionals import Categorical, MixtureOfGaussians
from pyro_ar.nn import PerVariableMLP


def literal_params(net: PerVariableMLP, x: torch.Tensor, context=None) -> torch.Tensor:
    """``theta_i = V_i act(A_i x_<i + c_i + U_i ctx) + b_i + C_i ctx``, one variable at a time."""
    n, d, i_size = net.event_size, net.hidden_size, net.input_size
    rank = torch.argsort(net.order)
    rows = []
    for i in range(n):
        earlier = [j for j in range(n) if rank[j] < rank[i]]
        cols = [j * i_size + a for j in earlier for a in range(i_size)]
        pre = net.hidden_bias[i] + x.flatten(-2)[..., cols] @ net.in_weight[i][:, cols].T
        if context is not None:
            pre = pre + context @ net.context_to_hidden.weight[i * d : (i + 1) * d].T
        rows.append(net.activation(pre) @ net.out_weight[i].T)
    return torch.stack(rows, -2) + net.output_offset(context)


def perturbed(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("activation", ["sigmoid", "relu", "tanh"])
@pytest.mark.parametrize("order", [None, "reverse", [2, 0, 3, 1]])
@pytest.mark.parametrize("head", ["bernoulli", "categorical3", "mog2"])
def test_forward_is_the_per_variable_formula(head, order, activation):
    torch.manual_seed(0)
    conditional = {"bernoulli": None, "categorical3": Categorical(3), "mog2": MixtureOfGaussians(2)}[head]
    kw = {} if conditional is None else {"conditional": conditional}
    model = perturbed(pyro_ar.PerVariableMLP(4, 5, order=order, activation=activation, context_size=2, **kw).double())
    net, head_ = model.conditioner, model.conditional
    x = head_.encode(model(torch.zeros(2)).sample((6,)), torch.float64)
    context = torch.randn(6, 2, dtype=torch.float64)
    assert torch.allclose(net(x, context), literal_params(net, x, context), atol=1e-12)


def test_nothing_is_shared_between_variables():
    """Changing variable i's weights changes only variable i's parameters."""
    torch.manual_seed(1)
    net = perturbed(PerVariableMLP(5, 3, order="random", seed=2).double())
    x = torch.bernoulli(torch.full((7, 5, 1), 0.5, dtype=torch.float64))
    before = net(x)
    with torch.no_grad():
        net.in_weight[3].add_(1.0)
        net.hidden_bias[3].add_(1.0)
        net.out_weight[3].add_(1.0)
    changed = (net(x) - before).abs().amax(dim=(0, 2)) > 0
    assert changed.tolist() == [i == 3 for i in range(5)]


def test_parameter_count_is_quadratic_in_n_times_d():
    n, d = 7, 5
    model = pyro_ar.PerVariableMLP(n, d)
    count = sum(p.numel() for p in model.parameters())
    assert count == n * d * n + n * d + n * d + n  # A (masked to the past), c, V, b
    used = n * d * (n - 1) // 2 + 2 * n * d + n  # the entries the mask lets through
    assert int(model.conditioner.mask.expand_as(model.conditioner.in_weight).sum()) + 2 * n * d + n == used


def test_incremental_state_matches_forward_step_by_step_and_by_blocks():
    torch.manual_seed(3)
    net = perturbed(PerVariableMLP(40, 3, input_size=3, param_size=3, context_size=2, order="random").double())
    x = torch.nn.functional.one_hot(torch.randint(3, (4, 2, 40)), 3).double()
    context = torch.randn(4, 1, 2, dtype=torch.float64)
    full = net(x, context)  # (4, 2, n, P)
    order = net.order.tolist()
    state = net.incremental(context.expand(4, 2, 2), torch.Size([4, 2]))
    for step, i in enumerate(order):
        assert torch.allclose(state.params(step), full[..., i, :], atol=1e-12)
        state.observe(step, x[..., i, :])
    blocks = net.incremental(context.expand(4, 2, 2), torch.Size([4, 2]))
    for start in range(0, 40, blocks.block_size):
        steps = order[start : start + blocks.block_size]
        got = blocks.block_params(start, x[..., steps, :])
        assert torch.allclose(got, full[..., steps, :], atol=1e-12)
        blocks.observe_block(start, x[..., steps, :])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"hidden_size": 2.5}, "hidden_size"),
        ({"activation": "swish"}, "activation"),
    ],
)
def test_bad_options_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pyro_ar.PerVariableMLP(4, **{"hidden_size": 3, **kwargs})


def test_registered_with_cli_name_and_distribution_class():
    entry = pyro_ar.registry.conditioner_entry("pervariablemlp")
    assert entry.cls is PerVariableMLP
    d = pyro_ar.PerVariableMLP(3, 2)()
    assert isinstance(d, pyro_ar.distributions.PerVariableMLP) and isinstance(d, pyro_ar.Autoregressive)
