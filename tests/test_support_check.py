"""The one-reduction support check agrees with torch's constraint checks, entry by entry."""

import math

import pytest
import torch
from torch.distributions import constraints

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.distributions.support_check import holds_everywhere

CONSTRAINTS = {
    "boolean": constraints.boolean,
    "integer_interval(0, 3)": constraints.integer_interval(0, 3),
    "integer_interval(-2, 5)": constraints.integer_interval(-2, 5),
    "nonnegative_integer": constraints.nonnegative_integer,
    "positive_integer": constraints.positive_integer,
    "real": constraints.real,
}


def edge_values(dtype: torch.dtype) -> torch.Tensor:
    info = torch.finfo(dtype)
    one = torch.tensor(1.0, dtype=dtype)
    special = [0.0, -0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -1.0, -2.0, -3.0, 0.5, -0.5, 2.5, math.inf, -math.inf, math.nan,
               info.max, -info.max, info.tiny, info.tiny / 4, -info.tiny, info.eps, 1e30 if dtype != torch.float16 else 6e4]
    values = torch.tensor(special, dtype=dtype)
    near = torch.cat([torch.nextafter(v.expand(1), torch.tensor([d], dtype=dtype))
                      for v in (one * 0, one, one * 3) for d in (-math.inf, math.inf)])
    return torch.cat([values, near])


def all_float16() -> torch.Tensor:
    return torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16).view(torch.float16)


@pytest.mark.parametrize("name", list(CONSTRAINTS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_agrees_with_the_constraint_on_each_edge_value(name, dtype):
    constraint = CONSTRAINTS[name]
    for v in edge_values(dtype):
        expected = bool(constraint.check(v.reshape(1)).all())
        assert holds_everywhere(constraint, v.reshape(1)) == expected, (name, dtype, v.item())
        # And inside an otherwise valid tensor: one bad entry is enough.
        good = torch.full((3, 4), 1.0, dtype=dtype)
        good[1, 2] = v
        assert holds_everywhere(constraint, good) == expected, (name, dtype, v.item())


@pytest.mark.parametrize("name", ["boolean", "integer_interval(0, 3)", "nonnegative_integer", "real"])
def test_agrees_with_the_constraint_on_every_float16(name):
    constraint = CONSTRAINTS[name]
    values = all_float16().float()  # every half-precision number, exactly, as float32 entries
    expected = constraint.check(values)
    gen = torch.Generator().manual_seed(0)
    chosen = torch.cat([torch.nonzero(expected).flatten(), torch.randperm(values.numel(), generator=gen)[:3000]])
    for i in chosen.tolist():
        assert holds_everywhere(constraint, values[i : i + 1]) == bool(expected[i]), (name, values[i].item())
    assert holds_everywhere(constraint, values[expected]) is True
    assert holds_everywhere(constraint, values) == bool(expected.all())


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
@pytest.mark.parametrize("name", list(CONSTRAINTS))
def test_agrees_on_integer_and_bool_tensors(name, dtype):
    constraint = CONSTRAINTS[name]
    values = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 200], dtype=torch.int64)
    if dtype == torch.bool:
        values = values.clamp(max=1)
    elif dtype != torch.uint8:
        values = torch.cat([values, -values])
    values = values.to(dtype)
    for v in values:
        assert holds_everywhere(constraint, v.reshape(1)) == bool(constraint.check(v.reshape(1)).all()), (name, v)
    assert holds_everywhere(constraint, values) == bool(constraint.check(values).all())


def test_other_constraints_are_asked_directly():
    c = constraints.interval(-1.0, 1.0)
    assert holds_everywhere(c, torch.tensor([0.0, 0.9])) is True
    assert holds_everywhere(c, torch.tensor([0.0, 1.5])) is False


@pytest.mark.parametrize(
    "head, bad",
    [(Bernoulli(), 0.5), (Bernoulli(), 2.0), (Bernoulli(), -1.0), (Bernoulli(), math.inf),
     (Categorical(3), 3.0), (Categorical(3), 1.5), (Categorical(3), -1.0), (MixtureOfGaussians(2), None)],
)
def test_log_prob_still_refuses_values_outside_the_support(head, bad):
    torch.manual_seed(0)
    d = pyro_ar.MADE(5, [8], conditional=head)()
    x = d.sample((4,)).to(torch.get_default_dtype())
    d.log_prob(x)  # valid: no error
    if bad is None:  # real values: only NaN is outside
        x[2, 3] = math.nan
        with pytest.raises(ValueError, match="NaN"):
            d.log_prob(x)
        return
    x[2, 3] = bad
    with pytest.raises(ValueError, match="support"):
        d.log_prob(x)
    x[2, 3] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        d.log_prob(x)


def test_torch_hook_checks_shape_and_support():
    d = pyro_ar.MADE(3, [8])()
    d._validate_sample(torch.tensor([[0.0, 1.0, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        d._validate_sample(torch.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="support"):
        d._validate_sample(torch.tensor([[0.0, 1.0, 0.3]]))
