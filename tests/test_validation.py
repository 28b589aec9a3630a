"""Bad input raises a clear ``ValueError`` naming the problem, never a silent NaN.

Values (event size, support, NaN/inf, dtype, broadcasting), contexts (size, missing,
unexpected, NaN, dtype), orders, hyperparameters at construction, mask indices,
temperatures, and a conditioner/conditional size mismatch.
"""

from __future__ import annotations

import math

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
    with pytest.raises(ValueError, match="mask_index"):
        net(mask_index=mask_index)
    if not isinstance(mask_index, str):
        with pytest.raises(ValueError, match="mask_index"):
            pyro_ar.Autoregressive(net.conditioner, net.conditional, mask_index=mask_index)


def test_random_mask_index_picks_a_member():
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[4], num_masks=3)
    torch.manual_seed(0)
    picked = {net(mask_index="random").mask_index for _ in range(30)}
    assert picked == {0, 1, 2}


@heads
@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan, math.inf], ids=["zero", "negative", "nan", "inf"])
def test_bad_temperature(head, temperature):
    d = build("nade", head)()
    with pytest.raises(ValueError, match="temperature"):
        d.sample((2,), temperature=temperature)


def test_temperature_on_continuous_head():
    d = build("made", "mog2")()
    with pytest.raises(ValueError, match="temperature"):
        d.sample((2,), temperature=0.5)


def test_enumeration_errors():
    with pytest.raises(NotImplementedError, match="continuous"):
        build("made", "mog2")().enumerate_support()
    big = pyro_ar.NADE(event_size=20, hidden_size=2)()
    with pytest.raises(ValueError, match="max_enumeration_size"):
        big.enumerate_support()
