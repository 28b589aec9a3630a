"""The autoregressive property, checked with Jacobians for every conditioner, order and mask.

For each member (MADE mask) of every harness model, on encoded inputs (one-hot for
categorical heads): ``d params_i / d x_j == 0`` exactly whenever ``j`` is not before ``i`` in
the member's order; the allowed entries are not all zero (no dead input, no dead output);
and the context reaches every variable's parameters, the first in the order included.
"""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

import pyro_ar

F64 = torch.float64
# Encoded values, plus as many Gaussian points: a ReLU unit inactive at a few binary points
# is no dead input, and the AR property must hold for any real input anyway.
NUM_POINTS = 3


def dependence(cond, head, context, values: torch.Tensor, member: int) -> torch.Tensor:
    """``|d params_i / d x_j|`` maximized over features and over points: ``(n, n)``.

    The points are ``values: (B, n)`` encoded by the head, plus as many Gaussian points.
    """
    points = head.encode(values, F64)
    gen = torch.Generator().manual_seed(12)
    points = torch.cat([points, torch.randn(points.shape, generator=gen, dtype=F64)])
    n = values.shape[-1]
    view = cond.member(member)  # the single-order conditioner of that member
    dep = torch.zeros(n, n, dtype=F64)
    for x in points:
        jac = jacobian(lambda v: view(v, context), x)  # (n, P, n, I)
        dep = torch.maximum(dep, jac.abs().amax(dim=(1, 3)))
    return dep


def input_jacobians(net, spec, member: int) -> torch.Tensor:
    """:func:`dependence` at a few seeded values of the harness model ``spec``."""
    values = spec.random_value((NUM_POINTS,), seed=11)
    return dependence(net.conditioner, net.conditional, spec.context(), values, member)


def before(order: torch.Tensor) -> torch.Tensor:
    """``allowed[i, j]``: variable ``j`` comes strictly before variable ``i`` in ``order``."""
    rank = torch.argsort(order)
    return rank.unsqueeze(0) < rank.unsqueeze(1)


def fully_connected(spec, net, member: int) -> bool:
    """Whether every allowed pair must be connected: FVSBN, NADE, and MADE's first member,
    whose cycled hidden degrees cover 1..n-1 when every layer has at least n-1 units. (No
    such claim for other models: a registered conditioner may leave pairs out by design, as a
    Markov chain does.)"""
    if spec.model in ("fvsbn", "nade"):
        return True
    if spec.model == "made":
        return member == 0 and min(net.conditioner.hidden_sizes) >= spec.event_size - 1
    return False


def test_ar_property_by_jacobian(ar_member):
    """``d params_i / d x_j == 0`` whenever ``j`` is not before ``i`` in the member's order."""
    spec, member = ar_member
    net = spec.build()
    order = net.conditioner.orders[member]
    dep = input_jacobians(net, spec, member)
    forbidden = ~before(order)
    assert torch.all(dep[forbidden] == 0), f"params depend on later variables: {dep * forbidden}"


def test_allowed_dependencies_are_alive(ar_member):
    spec, member = ar_member
    net = spec.build()
    if spec.model == "made":
        # A ReLU unit can be inactive on the whole input space at a given initialization
        # (a MADE with 3 units of degree 1 has x_0 reach nothing then): a property of the
        # weights, not a wiring bug. Softplus has a positive derivative everywhere, so with it
        # a zero entry means no weighted path at all: a dead mask, degree or input.
        net.conditioner.activation = torch.nn.Softplus()
    order = net.conditioner.orders[member]
    allowed = before(order)
    alive = (input_jacobians(net, spec, member) > 0) & allowed
    # Every variable but the first sees some earlier one; every variable but the last is seen.
    assert alive[order[1:]].any(-1).all(), "a variable's parameters ignore every earlier variable"
    assert alive[:, order[:-1]].any(0).all(), "a dead input: some variable reaches no later conditional"
    if fully_connected(spec, net, member):
        assert torch.equal(alive, allowed), f"allowed but dead pairs (row i, column j): {allowed & ~alive}"


def test_context_reaches_every_output(ar_context_member):
    """The context reaches the parameters of every variable, the first in the order included."""
    spec, member = ar_context_member
    net = spec.build()
    cond, head = net.conditioner, net.conditional
    x = head.encode(spec.random_value((), seed=2), F64)
    view = cond.member(member)
    jac = jacobian(lambda c: view(x, c), spec.context())  # (n, P, c)
    reach = jac.abs().amax(dim=(1, 2))
    first = int(view.order[0])
    assert reach[first] > 0, "the context does not reach the first variable in the order"
    assert torch.all(reach > 0), f"the context does not reach variables {torch.nonzero(reach == 0).flatten().tolist()}"


def test_log_prob_respects_order(ar_member):
    """End to end: changing the last variable in the order changes only its own factor, so
    ``log p(x) - log p(x')`` equals the difference of that variable's conditional alone."""
    spec, member = ar_member
    net = spec.build()
    d = net(spec.context(), mask_index=member)
    assert torch.equal(d.order, net.conditioner.orders[member])
    last = int(d.order[-1])
    x = spec.random_value((6,), seed=4)
    x2 = x.clone()
    if spec.head == "mog2":
        x2[:, last] = x2[:, last] + 1.7
    else:
        x2[:, last] = (x2[:, last] + 1) % spec.num_values
    params = net.conditioner.member(member)(net.conditional.encode(x, F64), spec.context())[:, last]
    factor = net.conditional.distribution(params)
    expected = factor.log_prob(x[:, last]) - factor.log_prob(x2[:, last])
    torch.testing.assert_close(d.log_prob(x) - d.log_prob(x2), expected, atol=1e-10, rtol=0)


def test_jacobian_checks_catch_broken_masks():
    """The checks above have teeth: a mask that lets x_i see itself and later variables, and
    a mask that cuts x_0 off, are both detected."""
    net = pyro_ar.FVSBN(event_size=4).double()
    values = torch.tensor([[0.0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0]], dtype=F64)
    order = net.conditioner.orders[0]
    with torch.no_grad():
        net.conditioner.mask.fill_(1.0)  # sees everything
    dep = dependence(net.conditioner, net.conditional, None, values, 0)
    assert not torch.all(dep[~before(order)] == 0)
    with torch.no_grad():
        net.conditioner.mask.copy_(before(order).to(F64))
        net.conditioner.mask[:, 0] = 0.0  # x_0 feeds nothing
    dep = dependence(net.conditioner, net.conditional, None, values, 0)
    assert torch.all(dep[~before(order)] == 0)
    assert not torch.equal(dep > 0, before(order))


# ---- MADE's hidden nonlinearity ----------------------------------------------------------------


def test_made_activations_keep_the_ar_property_and_sampling_state():
    from pyro_ar.conditionals import Bernoulli
    from pyro_ar.nn.made import ACTIVATIONS

    n = 6
    for name, module in ACTIVATIONS.items():
        torch.manual_seed(0)
        net = pyro_ar.MADE(n, [12, 12], order="random", activation=name).double()
        assert isinstance(net.conditioner.activation, module) and net.config()["activation"] == name
        order = net.conditioner.orders[0]
        rank = torch.argsort(order)
        dep = dependence(net.conditioner, Bernoulli(), None, torch.randint(2, (NUM_POINTS, n)).double(), 0)
        allowed = rank.unsqueeze(1) > rank.unsqueeze(0)  # allowed[i, j]: j before i
        assert (dep[~allowed] == 0).all(), name
        assert (dep[allowed] > 0).any(), name
        # The sampling state applies the same nonlinearity: it reproduces the forward pass.
        x = torch.randn(3, n, 1, dtype=F64)
        full = net.conditioner(x)
        state = net.conditioner.incremental(None, torch.Size([3]))
        for step, i in enumerate(order.tolist()):
            torch.testing.assert_close(state.params(step), full[:, i], atol=1e-12, rtol=0)
            state.observe(step, x[:, i])


def test_linear_made_is_affine_in_x():
    torch.manual_seed(1)
    cond = pyro_ar.MADE(5, [16, 16], activation="linear").double().conditioner
    x, y = torch.randn(2, 5, 1, dtype=F64), torch.randn(2, 5, 1, dtype=F64)
    # f(x + y) - f(x) - f(y) + f(0) vanishes for an affine map, not for a ReLU network.
    second = cond(x + y) - cond(x) - cond(y) + cond(torch.zeros_like(x))
    assert second.abs().max() < 1e-12
    relu = pyro_ar.MADE(5, [16, 16]).double().conditioner
    assert (relu(x + y) - relu(x) - relu(y) + relu(torch.zeros_like(x))).abs().max() > 1e-3


def test_made_refuses_an_unknown_activation():
    for bad in ("swish", None, torch.nn.ReLU()):
        with pytest.raises(ValueError, match="activation must be one of"):
            pyro_ar.MADE(4, [8], activation=bad)
