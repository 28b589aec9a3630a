"""Property-based fuzzing of the public API: every registered conditioner and head.

Hypothesis draws constructor arguments (good and bad), batch shapes (empty ones included),
dtypes, contexts and values (huge, tiny, NaN, inf, out of support) and checks the promise:
either a ``ValueError``/``TypeError`` that names the offending argument, or finite results
(``-inf`` allowed for a log-density) of the right shape and dtype; never a NaN, never an
error from deep inside torch.

The normal suite runs a short seeded profile; ``PYRO_AR_FUZZ=long python -m pytest
tests/test_fuzz.py`` runs many more examples.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyro_ar
from pyro_ar import registry

settings.register_profile(
    "pyro_ar-short", max_examples=150, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "pyro_ar-long", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = "pyro_ar-long" if os.environ.get("PYRO_AR_FUZZ") == "long" else "pyro_ar-short"

MODELS = [e.name for e in registry.conditioner_entries()]
# Heads of one kind for every variable, with a finite support when discrete (what the values
# drawn below assume); the per-column Mixed head and the infinite-support count head have their
# own tests (tests/test_mixed.py, tests/test_count_head.py).
HEADS = [e.name for e in registry.head_entries() if e.name not in ("mixed", "count")]

magnitudes = st.sampled_from([0.0, -0.0, 1e-45, -1e-30, 0.5, 1.0, -3.0, 1e15, -1e20, 1e25, 9.97e36, -3e38])
weird = st.sampled_from([float("nan"), float("inf"), -float("inf")])
batch_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple)


def _head(name: str, draw) -> object:
    entry = registry.head_entry(name)
    return entry.cls(**entry.example)


def _model(draw, name: str, head_name: str, context_size, dtype):
    entry = registry.conditioner_entry(name)
    n = draw(st.integers(1, 4))
    order = None if entry.fixed_order else draw(st.sampled_from([None, "reverse", "random"]))
    net = pyro_ar.models.factory(name)(
        **entry.event_kwargs(n), **entry.example, conditional=_head(head_name, draw), context_size=context_size,
        order=order, seed=1,
    )
    return net.to(dtype), n


@st.composite
def models(draw):
    name, head = draw(st.sampled_from(MODELS)), draw(st.sampled_from(HEADS))
    context_size = draw(st.sampled_from([None, 1, 3]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    net, n = _model(draw, name, head, context_size, dtype)
    return net, n, context_size, dtype


def _values(draw, net, n, shape):
    """Values in the support, with sometimes one entry replaced by something odd."""
    head = net.conditional
    if head.is_discrete:
        k = head.enumerate_values(torch.device("cpu"), torch.float64).numel()
        x = torch.randint(0, k, shape + (n,), generator=torch.Generator().manual_seed(draw(st.integers(0, 99))))
        x = x.to(draw(st.sampled_from([torch.float32, torch.float64, torch.int64])))
    else:
        x = torch.full(shape + (n,), draw(magnitudes), dtype=draw(st.sampled_from([torch.float32, torch.float64])))
    odd = draw(st.sampled_from(["none", "none", "magnitude", "weird", "out_of_support", "wrong_size", "bool"]))
    if odd == "none" or x.numel() == 0:
        return x, odd
    x = x.clone() if x.is_floating_point() or odd not in ("magnitude", "weird") else x.double()
    if odd == "magnitude":
        x.view(-1)[0] = draw(magnitudes)
    elif odd == "weird":
        x.view(-1)[0] = draw(weird)
    elif odd == "out_of_support":
        x = x.double()
        x.view(-1)[0] = 0.5 if head.is_discrete else float("nan")
    elif odd == "wrong_size":
        x = torch.zeros(shape + (n + 1,), dtype=x.dtype)
    elif odd == "bool":
        x = x != 0
    return x, odd


def _in_support(head, x: torch.Tensor) -> bool:
    if head.is_discrete:
        values = head.enumerate_values(torch.device("cpu"), torch.float64)
        return bool(torch.isin(x.double(), values).all())
    return x.is_floating_point() and bool(torch.isfinite(x).all())


def _finite_or_neg_inf(t: torch.Tensor) -> bool:
    return bool((torch.isfinite(t) | (t == -math.inf)).all())


@settings(settings.get_profile(PROFILE))
@given(st.data())
def test_log_prob_and_sample_keep_the_promise(data):
    torch.manual_seed(data.draw(st.integers(0, 2**16)))  # the weights and samples, reproducibly
    net, n, context_size, dtype = data.draw(models())
    batch = data.draw(batch_shapes)
    context = None
    if context_size is not None:
        context = torch.randn(batch + (context_size,), dtype=data.draw(st.sampled_from([torch.float32, torch.float64])))
        if data.draw(st.booleans()) and context.numel():
            context.view(-1)[0] = data.draw(weird)
            with pytest.raises(ValueError, match="context"):
                net(context)
            return
    d = net(context)
    expected_batch = torch.Size(batch if context_size is not None else ())
    assert d.batch_shape == expected_batch and d.event_shape == (n,)

    x, odd = _values(data.draw, net, n, data.draw(batch_shapes) if context is None else batch)
    valid = None if odd == "bool" else (odd in ("none", "magnitude") and _in_support(net.conditional, x))
    try:
        lp = d.log_prob(x)
    except ValueError as err:
        assert valid is not True, (x, err)
        assert any(word in str(err) for word in ("value", "shape")), err
    else:
        assert valid is not False or x.numel() == 0, x
        assert lp.shape == torch.broadcast_shapes(x.shape[:-1], d.batch_shape)
        assert lp.dtype == dtype and _finite_or_neg_inf(lp), (x, lp)
        # (In the value's own dtype: a float64 model's gradient at a float32 value near float32's
        # largest can be too large for float32.)
        if lp.numel() and x.dtype == dtype and net.conditional.has_rsample:
            xs = x.detach().clone().requires_grad_()
            grad = torch.autograd.grad(d.log_prob(xs).sum(), xs)[0]
            assert bool(torch.isfinite(grad).all()), (x, grad)

    shape = data.draw(batch_shapes)
    s = d.sample(shape)
    assert s.shape == shape + expected_batch + (n,)
    assert s.dtype == net.conditional.sample_dtype(dtype) and bool(torch.isfinite(s.double()).all())
    assert _finite_or_neg_inf(d.log_prob(s))


bad_sizes = st.one_of(st.integers(-3, 0), st.sampled_from([2.5, "4", None, True, float("nan")]))


@settings(settings.get_profile(PROFILE))
@given(st.sampled_from(MODELS), st.sampled_from(["event_size", "context_size", "seed", "order"]), st.data())
def test_bad_constructor_arguments_name_themselves(name, argument, data):
    entry = registry.conditioner_entry(name)
    kwargs = dict(**entry.event_kwargs(3), **entry.example)
    if argument == "event_size":  # or the model's own event argument (PixelCNN's image_shape)
        argument = entry.event_argument
        kwargs[argument] = data.draw(bad_sizes)
    elif argument == "context_size":
        kwargs["context_size"] = data.draw(st.one_of(st.integers(-3, 0), st.sampled_from([2.5, "2", True])))
    elif argument == "seed":
        kwargs.update(order="random", seed=data.draw(st.sampled_from([-1, 2**70, "a", 1.5, True])))
    else:
        kwargs["order"] = data.draw(st.sampled_from(["sideways", [0, 0, 1], [0, 1], [0.0, 1.0, 2.0], [3, 1, 2]]))
    torch.manual_seed(0)
    with pytest.raises((ValueError, TypeError), match=argument):
        pyro_ar.models.factory(name)(**kwargs)


@settings(settings.get_profile(PROFILE))
@given(st.sampled_from(HEADS), st.data())
def test_bad_head_arguments_name_themselves(name, data):
    entry = registry.head_entry(name)
    if not entry.options:
        return
    option = data.draw(st.sampled_from(entry.options))
    kwargs = dict(entry.example)
    kwargs[option.name] = data.draw(st.sampled_from([-1, 0, float("nan"), float("inf"), "x", True, 10**100]))
    try:
        entry.cls(**kwargs)
    except (ValueError, TypeError) as err:
        assert option.name in str(err), err
    else:  # accepted: then it must be a working head
        torch.manual_seed(0)
        net = pyro_ar.models.factory(MODELS[0])(2, conditional=entry.cls(**kwargs))
        assert _finite_or_neg_inf(net().log_prob(net().sample((3,))))


@settings(settings.get_profile(PROFILE))
@given(st.sampled_from(MODELS), st.sampled_from(HEADS), st.data())
def test_tempering_stays_a_distribution(name, head, data):
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    entry = registry.conditioner_entry(name)
    net = pyro_ar.models.factory(name)(**entry.event_kwargs(3), **entry.example, conditional=_head(head, data.draw))
    net = net.double()
    t = data.draw(st.sampled_from([1e-300, 1e-40, 0.01, 0.5, 1.0, 3.0, 1e40, 1e300, 0.0, -1.0, float("nan"), True]))
    d = net()
    if not (isinstance(t, float) and math.isfinite(t) and t > 0) or (t != 1.0 and not net.conditional.is_discrete):
        with pytest.raises(ValueError, match="temperature"):
            d.tempered(t)
        return
    tempered = d.tempered(t)
    x = tempered.sample((50,))
    lp = tempered.log_prob(x)
    assert lp.shape == (50,) and _finite_or_neg_inf(lp) and bool((lp > -math.inf).all())
    if net.conditional.is_discrete:
        total = tempered.log_prob(tempered.enumerate_support()).exp().sum()
        assert abs(float(total) - 1.0) < 1e-9
