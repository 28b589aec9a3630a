"""Bad input raises a clear ``ValueError`` naming the problem, never a silent NaN.

Values (event size, support, NaN/inf, dtype, broadcasting), contexts (size, missing,
unexpected, NaN, dtype), orders, hyperparameters at construction, mask indices,
temperatures, and a conditioner/conditional size mismatch.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians

F64 = torch.float64
HEADS = {"bernoulli": Bernoulli, "categorical3": lambda: Categorical(3), "mog2": lambda: MixtureOfGaussians(2)}
FACTORIES = {
    "fvsbn": lambda **kw: pyro_ar.FVSBN(**kw),
    "nade": lambda **kw: pyro_ar.NADE(hidden_size=4, **kw),
    "made": lambda **kw: pyro_ar.MADE(hidden_sizes=[4], **kw),
}
N = 3


def build(model: str, head: str, **kw) -> pyro_ar.AutoregressiveModel:
    torch.manual_seed(0)
    return FACTORIES[model](event_size=N, conditional=HEADS[head](), **kw).double()


def valid_value(head: str, shape=()) -> torch.Tensor:
    if head == "categorical3":
        return torch.zeros(*shape, N, dtype=torch.long)
    return torch.zeros(*shape, N, dtype=F64)


models = pytest.mark.parametrize("model", list(FACTORIES))
heads = pytest.mark.parametrize("head", list(HEADS))


# ---- values ------------------------------------------------------------------------------


@models
@heads
@pytest.mark.parametrize("validate_args", [True, False], ids=["validate", "novalidate"])
def test_wrong_event_size(model, head, validate_args):
    net = build(model, head)
    d = pyro_ar.Autoregressive(net.conditioner, net.conditional, validate_args=validate_args)
    for bad in [valid_value(head)[:-1], torch.zeros(5, N + 1).to(valid_value(head).dtype), valid_value(head)[0]]:
        with pytest.raises(ValueError, match=rf"shape \(\*, {N}\)"):
            d.log_prob(bad)


@models
@heads
def test_value_not_broadcastable_to_batch(model, head):
    d = build(model, head)().expand((3,))
    with pytest.raises(ValueError, match="does not broadcast against batch_shape"):
        d.log_prob(valid_value(head, (4,)))


@models
@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0], ids=["half", "two", "minus-one"])
def test_bernoulli_non_binary_value(model, bad):
    d = build(model, "bernoulli")()
    x = torch.tensor([0.0, bad, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="support"):
        d.log_prob(x)


@models
@pytest.mark.parametrize(
    "bad", [torch.tensor([0, 3, 1]), torch.tensor([0, -1, 1]), torch.tensor([0.0, 1.5, 1.0], dtype=F64)],
    ids=["too-large", "negative", "non-integer"],
)
def test_categorical_value_outside_support(model, bad):
    d = build(model, "categorical3")()
    with pytest.raises(ValueError, match="support"):
        d.log_prob(bad)


@models
@heads
def test_nan_value(model, head):
    d = build(model, head)()
    x = torch.tensor([0.0, math.nan, 1.0], dtype=F64)
    with pytest.raises(ValueError, match="NaN"):
        d.log_prob(x)


@models
@pytest.mark.parametrize("bad", [math.inf, -math.inf], ids=["inf", "-inf"])
def test_mog_infinite_value(model, bad):
    d = build(model, "mog2")()
    with pytest.raises(ValueError, match="inf"):
        d.log_prob(torch.tensor([0.0, bad, 1.0], dtype=F64))


def test_mog_integer_value():
    d = build("made", "mog2")()
    with pytest.raises(ValueError, match="floating point"):
        d.log_prob(torch.zeros(N, dtype=torch.long))


@models
def test_bernoulli_accepts_bool_and_integer_values(model):
    d = build(model, "bernoulli")()
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=F64)
    expected = d.log_prob(x)
    torch.testing.assert_close(d.log_prob(x.bool()), expected, atol=0, rtol=0)
    torch.testing.assert_close(d.log_prob(x.long()), expected, atol=0, rtol=0)
    torch.testing.assert_close(d.log_prob(x.float()), expected, atol=0, rtol=0)


def test_value_not_a_tensor():
    d = build("nade", "bernoulli")()
    with pytest.raises(ValueError, match="torch.Tensor"):
        d.log_prob([0.0, 1.0, 0.0])


def test_validation_can_be_switched_off():
    net = build("fvsbn", "bernoulli")
    d = pyro_ar.Autoregressive(net.conditioner, net.conditional, validate_args=False)
    assert torch.isfinite(d.log_prob(torch.full((N,), 0.5, dtype=F64)))  # relaxed value, unchecked


# ---- contexts ----------------------------------------------------------------------------


@models
@heads
def test_context_errors(model, head):
    net = build(model, head, context_size=2)
    with pytest.raises(ValueError, match=r"context must have shape \(\*, 2\)"):
        net(torch.zeros(4, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"context must have shape"):
        net(torch.tensor(1.0, dtype=F64))
    with pytest.raises(ValueError, match="needs a context"):
        net()
    with pytest.raises(ValueError, match="NaN or inf"):
        net(torch.tensor([[0.0, math.nan]], dtype=F64))
    with pytest.raises(ValueError, match="NaN or inf"):
        net(torch.tensor([[0.0, math.inf]], dtype=F64))
    with pytest.raises(ValueError, match="floating point"):
        net(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="without context"):
        build(model, head)(torch.zeros(4, 2, dtype=F64))


def test_context_errors_in_autoregressive():
    net = build("made", "bernoulli", context_size=2)
    with pytest.raises(ValueError, match="needs a context"):
        pyro_ar.Autoregressive(net.conditioner, net.conditional)
    with pytest.raises(ValueError, match=r"context must have shape \(\*, 2\)"):
        pyro_ar.Autoregressive(net.conditioner, net.conditional, context=torch.zeros(3, dtype=F64))


# ---- construction ------------------------------------------------------------------------


@models
@pytest.mark.parametrize(
    "order, match",
    [
        ([0, 0, 1], "each index once"),
        ([0, 1], "length event_size=3"),
        ([0, 1, 2, 3], "length event_size=3"),
        ([0, 1, 3], "each index once"),
        ([-1, 0, 1], "each index once"),
        ([0.0, 1.0, 2.0], "integers"),
        ([[0, 1, 2]], "length event_size=3"),
        ("sideways", "'random', 'reverse'"),
    ],
    ids=["duplicate", "too-short", "too-long", "out-of-range", "negative", "float", "2-d", "unknown-name"],
)
def test_order_not_a_permutation(model, order, match):
    with pytest.raises(ValueError, match=match):
        FACTORIES[model](event_size=N, order=order)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: pyro_ar.MADE(event_size=3, hidden_sizes=[0]), "hidden_sizes"),
        (lambda: pyro_ar.MADE(event_size=3, hidden_sizes=[8, -2]), "hidden_sizes"),
        (lambda: pyro_ar.MADE(event_size=3, hidden_sizes=[]), "hidden_sizes"),
        (lambda: pyro_ar.MADE(event_size=3, hidden_sizes=8), "hidden_sizes"),
        (lambda: pyro_ar.MADE(event_size=3, hidden_sizes=[4.0]), "hidden_sizes"),
        (lambda: pyro_ar.NADE(event_size=3, hidden_size=0), "hidden_size"),
        (lambda: pyro_ar.NADE(event_size=3, hidden_size=-4), "hidden_size"),
        (lambda: pyro_ar.MADE(event_size=3, num_masks=0), "num_masks"),
        (lambda: pyro_ar.FVSBN(event_size=0), "event_size"),
        (lambda: pyro_ar.NADE(event_size=-1), "event_size"),
        (lambda: pyro_ar.MADE(event_size=3, context_size=0), "context_size"),
        (lambda: Categorical(1), "num_categories"),
        (lambda: Categorical(0), "num_categories"),
        (lambda: MixtureOfGaussians(0), "num_components"),
        (lambda: MixtureOfGaussians(2, min_scale=0.0), "min_scale"),
    ],
    ids=[
        "made-hidden-0",
        "made-hidden-negative",
        "made-hidden-empty",
        "made-hidden-int",
        "made-hidden-float",
        "nade-hidden-0",
        "nade-hidden-negative",
        "num-masks-0",
        "event-size-0",
        "event-size-negative",
        "context-size-0",
        "num-categories-1",
        "num-categories-0",
        "num-components-0",
        "min-scale-0",
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_head_type():
    with pytest.raises(TypeError, match="conditional"):
        pyro_ar.NADE(event_size=3, conditional="bernoulli")
    with pytest.raises(TypeError, match="num_categories"):
        Categorical(2.0)


@pytest.mark.parametrize(
    "conditioner, conditional",
    [
        (lambda: pyro_ar.nn.NADE(3, 4, input_size=1, param_size=1), lambda: Categorical(3)),
        (lambda: pyro_ar.nn.MADE(3, [4], input_size=3, param_size=3), lambda: Bernoulli()),
        (lambda: pyro_ar.nn.FVSBN(3, input_size=1, param_size=3), lambda: MixtureOfGaussians(2)),
        (lambda: pyro_ar.nn.FVSBN(3, input_size=1, param_size=6), lambda: Categorical(6)),
    ],
    ids=["nade-binary-vs-categorical", "made-categorical-vs-bernoulli", "fvsbn-mog1-vs-mog2", "fvsbn-input-size"],
)
def test_conditioner_conditional_mismatch(conditioner, conditional):
    with pytest.raises(ValueError, match="does not match conditional"):
        pyro_ar.Autoregressive(conditioner(), conditional())


@pytest.mark.parametrize(
    "mask_index", [3, -1, 1.0, True, "first"], ids=["too-large", "negative", "float", "bool", "name"]
)
def test_bad_mask_index(mask_index):
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[4], num_masks=3)
    named = re.escape(f"got {mask_index!r}")  # every message names the bad value
    expected = "mask_index must be None, an int or 'random'" if isinstance(mask_index, str) else (
        r"mask_index must be None, 'random' or an int in \[0, 2\]"
    )
    with pytest.raises(ValueError, match=f"{expected}, {named}"):
        net(mask_index=mask_index)
    # The members of the conditioner (what a single-order distribution is built from) check it too.
    with pytest.raises(ValueError, match=r"member index must be an int in \[0, 2\], " + named):
        net.conditioner.member(mask_index)
    with pytest.raises(ValueError, match=r"mask index must be an int in \[0, 2\], " + named):
        net.conditioner(torch.zeros(3, 1), member=mask_index)
    with pytest.raises(ValueError, match=r"mask index must be an int in \[0, 2\], " + named):
        net.conditioner.incremental(None, torch.Size([2]), member=mask_index)
    # A single-member model has member 0 only.
    single = pyro_ar.NADE(event_size=3, hidden_size=4)
    if not isinstance(mask_index, str):
        with pytest.raises(ValueError, match=r"mask_index must be None, 'random' or an int in \[0, 0\]"):
            single(mask_index=1 if mask_index == 3 else mask_index)
    with pytest.raises(ValueError, match=r"member index must be an int in \[0, 0\]"):
        single.conditioner.member(1 if mask_index == 3 else mask_index)


def test_multi_member_conditioner_is_not_one_chain():
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[4], num_masks=3)
    with pytest.raises(ValueError, match="MADE has 3 members.*pass conditioner.member"):
        pyro_ar.Autoregressive(net.conditioner, net.conditional)
    with pytest.raises(ValueError, match="3 members; use member"):
        net.conditioner.order
    for k in range(3):
        d = pyro_ar.Autoregressive(net.conditioner.member(k), net.conditional)
        assert torch.equal(d.order, net.conditioner.orders[k])
    with pytest.raises(ValueError, match="non-empty list"):
        pyro_ar.Ensemble([])
    other = pyro_ar.MADE(event_size=3, hidden_sizes=[4], conditional=Categorical(3))
    with pytest.raises(ValueError, match="ensemble member 1"):
        pyro_ar.Ensemble([net(mask_index=0), other()])


def test_random_mask_index_picks_a_member():
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[4], num_masks=3)
    torch.manual_seed(0)
    picked = set()
    for _ in range(30):
        d = net(mask_index="random")
        assert isinstance(d, pyro_ar.Autoregressive) and d.conditioner.network is net.conditioner
        picked.add(d.conditioner.index)
    assert picked == {0, 1, 2}


@heads
@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf], ids=["zero", "negative", "nan", "inf"])
def test_bad_temperature(head, temperature):
    d = build("nade", head)()
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        d.tempered(temperature)
    ensemble = build("made", head, num_masks=2)()
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        ensemble.tempered(temperature)


@pytest.mark.parametrize("temperature", [True, "1", None, 1j], ids=["bool", "str", "none", "complex"])
def test_temperature_not_a_number(temperature):
    with pytest.raises(ValueError, match="temperature must be a positive finite number"):
        build("nade", "bernoulli")().tempered(temperature)


def test_sample_keeps_torch_signature():
    """Temperature lives in ``tempered``: ``sample`` takes only ``sample_shape``, as in torch."""
    d = build("nade", "bernoulli")()
    with pytest.raises(TypeError, match="temperature"):
        d.sample((2,), temperature=0.5)


def test_temperature_on_continuous_head():
    d = build("made", "mog2")()
    with pytest.raises(ValueError, match="temperature applies to discrete conditionals only"):
        d.tempered(0.5)
    with pytest.raises(ValueError, match="temperature applies to discrete conditionals only"):
        build("made", "mog2", num_masks=2)().tempered(2.0)
    assert d.tempered(1.0).sample((2,)).shape == (2, N)  # T = 1 is the model itself


def test_enumeration_errors():
    with pytest.raises(NotImplementedError, match="continuous"):
        build("made", "mog2")().enumerate_support()
    with pytest.raises(NotImplementedError, match="continuous"):
        build("made", "mog2")().enumeration_size()
    big = pyro_ar.NADE(event_size=20, hidden_size=2)()
    assert big.max_enumeration_size == 2**16
    with pytest.raises(ValueError, match=r"K\^n = 2\^20 = 1048576 joint values, more than max_enumeration_size=65536"):
        big.enumerate_support()
    with pytest.raises(ValueError, match="max_enumeration_size"):
        big.enumeration_size()
    with pytest.raises(ValueError, match="max_enumeration_size"):
        big.entropy()
    assert pyro_ar.NADE(event_size=16, hidden_size=2)().enumeration_size() == 2**16  # the bound itself is allowed
    ensemble = pyro_ar.MADE(event_size=17, hidden_sizes=[4], num_masks=2)()
    with pytest.raises(ValueError, match="max_enumeration_size"):
        ensemble.enumerate_support()
