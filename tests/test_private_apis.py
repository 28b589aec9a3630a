"""The private torch and Pyro hooks pyro_ar relies on: each test fails loudly when one changes.

* ``torch._C._are_functorch_transforms_active`` and ``torch._C._functorch.is_batchedtensor``:
  NADE's fast one-pass evaluation (a custom autograd function) must step aside under
  ``torch.func`` transforms and for vectorized Jacobians (``pyro_ar.nn.nade``).
* ``torch.distributions.constraints._IntegerInterval``: how KL rules read a categorical
  support's bounds (``pyro_ar.kl``).
* ``PyroModule._pyro_context``: how a distribution binds the ``PyroSample`` weights it was
  built with (``pyro_ar.distributions.module_samples``).
"""

import pyro
import torch
from pyro.nn import PyroSample
from torch.distributions import constraints

import pyro_ar
from pyro_ar.distributions.module_samples import bound_pyro_samples, snapshot_pyro_samples
from pyro_ar.kl import _support_key
from pyro_ar.nn import nade


def test_functorch_hooks_exist_and_detect_transforms():
    assert callable(torch._C._are_functorch_transforms_active)
    assert callable(torch._C._functorch.is_batchedtensor)
    assert not nade._functorch_active()
    seen = []

    def probe(t):
        seen.append((nade._functorch_active(), nade._is_batched(t)))
        return t

    torch.func.vmap(probe)(torch.zeros(2, 3))
    assert seen == [(True, True)]
    assert not nade._is_batched(torch.zeros(3))


def test_nade_transforms_through_the_hooks_match_the_reference():
    """Large enough for the fast path: torch.func's vjp and batched gradients (vmap over the
    backward pass) must equal the reference graph's."""
    torch.manual_seed(0)
    n, b, d = 64, 128, 160
    assert n * b * d >= nade._BLOCKED_MIN_ELEMENTS
    x, init = torch.randn(n, b, 1, dtype=torch.float64), torch.randn(b, d, dtype=torch.float64)
    w_in, w_out = torch.randn(n, 1, d, dtype=torch.float64), torch.randn(n, 1, d, dtype=torch.float64)
    cotangent = torch.randn(n, b, 1, dtype=torch.float64)
    fast = torch.func.vjp(lambda v: nade.nade_outputs(v, init, w_in, w_out), x)[1](cotangent)[0]
    ref = torch.func.vjp(lambda v: nade.nade_outputs_reference(v, init, w_in, w_out), x)[1](cotangent)[0]
    torch.testing.assert_close(fast, ref)
    xs = x.clone().requires_grad_()
    out = nade.nade_outputs(xs, init, w_in, w_out)
    assert out.grad_fn is not None and "NADEOutputs" in type(out.grad_fn).__name__  # the fast path
    cotangents = torch.randn(3, n, b, 1, dtype=torch.float64)
    batched = torch.autograd.grad(out, xs, cotangents, is_grads_batched=True)[0]
    xr = x.clone().requires_grad_()
    expected = torch.stack([
        torch.autograd.grad(nade.nade_outputs_reference(xr, init, w_in, w_out), xr, c)[0] for c in cotangents
    ])
    torch.testing.assert_close(batched, expected)


def test_integer_interval_constraint_exposes_its_bounds():
    c = constraints.integer_interval(0, 3)
    assert isinstance(c, constraints._IntegerInterval) and (c.lower_bound, c.upper_bound) == (0, 3)
    d = pyro_ar.FVSBN(event_size=2, conditional=pyro_ar.conditionals.Categorical(4))()
    assert _support_key(d) == ("integer", 0, 3)


def test_pyro_module_context_binds_sampled_weights():
    net = pyro_ar.nn.FVSBN(event_size=3)
    pyro.nn.module.to_pyro_module_(net)
    net.weight = PyroSample(pyro.distributions.Normal(0.0, 1.0).expand(net.weight.shape).to_event(2))
    assert hasattr(net, "_pyro_context") and hasattr(net._pyro_context, "cache")
    snapshot = snapshot_pyro_samples(net)
    with bound_pyro_samples(net, snapshot):
        first = net.weight.clone()
        assert torch.equal(net.weight, first)  # the same draw while bound
    with bound_pyro_samples(net, snapshot):
        assert torch.equal(net.weight, first)  # and again later
