"""The discretized mixture of logistics head: exact normalization over the levels, stable
log-probabilities at the edges for extreme parameters, the closed form, sampling, tempering,
validation, and every registered conditioner with it."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar import registry
from pyro_ar.conditionals import DiscretizedLogisticMixture
from pyro_ar.program.data_files import load_dataset

F64 = torch.float64


def random_params(k: int, rows: int, dtype=F64, seed: int = 0) -> torch.Tensor:
    """Parameters ``(rows, 3K)``: ordinary ones, then extremes (means far outside [-1, 1],
    scales at the floor and past the cap, huge logits)."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(rows, 3 * k, generator=gen, dtype=F64) * torch.tensor([3.0] * k + [1.0] * k + [2.0] * k, dtype=F64)
    extremes = torch.tensor([1e30, -1e30, 1e6, -1e6, 0.0, 1.0 - 1e-9, 1e-3])
    for r in range(min(rows, 40)):
        p[r, k:2 * k] = extremes[torch.randint(len(extremes), (k,), generator=gen)].to(F64)
        p[r, 2 * k:] = torch.tensor([-1e30, 1e30, -20.0, 30.0, 0.0], dtype=F64)[torch.randint(5, (k,), generator=gen)]
        p[r, :k] = torch.tensor([1e20, -1e20, 0.0], dtype=F64)[torch.randint(3, (k,), generator=gen)]
    return p.to(dtype)


@pytest.mark.parametrize("levels", [2, 3, 256])
@pytest.mark.parametrize("dtype, atol", [(F64, 1e-12), (torch.float32, 5e-5)], ids=["float64", "float32"])
def test_levels_sum_to_one_and_edges_are_finite(levels, dtype, atol):
    head = DiscretizedLogisticMixture(3, num_levels=levels)
    params = random_params(3, 300, dtype).requires_grad_()
    lp = head.level_log_probs(params)
    assert lp.shape == (300, levels) and lp.dtype == dtype
    assert torch.isfinite(lp).all(), "a level has log-probability -inf or NaN"
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(300, dtype=dtype), atol=atol, rtol=0)
    # The scored level alone (log_prob's path) is the same number, with finite gradients.
    x = torch.randint(levels, (300,))
    x[:50] = 0
    x[50:100] = levels - 1
    one = head.log_prob(params, x)
    torch.testing.assert_close(one, lp.gather(-1, x[:, None])[:, 0], atol=1e-12 if dtype == F64 else 1e-4, rtol=0)
    grad = torch.autograd.grad(one.sum(), params)[0]
    assert torch.isfinite(grad).all()


def test_log_prob_is_the_closed_form():
    """Against the textbook formula, by differences of sigmoids, in float64 where that is exact."""
    k, levels = 2, 8
    head = DiscretizedLogisticMixture(k, num_levels=levels)
    gen = torch.Generator().manual_seed(1)
    logits, means = torch.randn(50, k, generator=gen, dtype=F64), 0.5 * torch.randn(50, k, generator=gen, dtype=F64)
    scales = torch.rand(50, k, generator=gen, dtype=F64) * 0.5 + 0.05
    raw = torch.log(torch.expm1(torch.log(scales) + 7.0)) - 7.0  # the inverse of the smooth floor
    params = torch.cat([logits, means, raw], -1)
    v = torch.arange(levels, dtype=F64) * 2 / (levels - 1) - 1
    delta = 1 / (levels - 1)
    upper = torch.sigmoid((v[:, None, None] + delta - means) / scales)
    lower = torch.sigmoid((v[:, None, None] - delta - means) / scales)
    upper[-1], lower[0] = 1.0, 0.0
    expected = ((upper - lower) * torch.softmax(logits, -1)).sum(-1).T  # (50, L)
    torch.testing.assert_close(head.level_log_probs(params).exp(), expected, atol=1e-12, rtol=0)


def test_samples_follow_the_levels_and_tempering():
    head = DiscretizedLogisticMixture(3, num_levels=6)
    gen = torch.Generator().manual_seed(3)
    params = torch.randn(3, 9, generator=gen, dtype=F64) * torch.tensor([1.0] * 3 + [0.6] * 3 + [0.5] * 3, dtype=F64)
    params[:, 6:] -= 1.5  # scales of about a bin or two
    torch.manual_seed(0)
    for temperature in (1.0, 0.6):
        noise = head.draw_noise(torch.Size([40000, 3]), F64, torch.device("cpu"))
        x = head.sample_from_noise(params.expand(40000, 3, -1), noise, temperature)
        assert x.dtype == torch.long and x.min() >= 0 and x.max() <= 5
        assert torch.equal(x, head.sample_from_noise(params.expand(40000, 3, -1), noise, temperature))
        probs = head.distribution(params, temperature).probs
        if temperature != 1.0:  # the level log-probabilities divided by T, renormalized
            torch.testing.assert_close(probs, torch.softmax(head.level_log_probs(params) / temperature, -1))
        for r in range(3):
            counts = torch.bincount(x[:, r], minlength=6).double()
            expected = 40000 * probs[r]
            keep = expected > 5
            stat = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
            assert stat < stats.chi2.isf(1e-4, int(keep.sum()) - 1), (temperature, r)


def test_feedback_is_the_scaled_level():
    head = DiscretizedLogisticMixture(2, num_levels=5)
    assert head.input_size == 1 and head.param_size == 6
    torch.testing.assert_close(head.encode(torch.arange(5), F64)[:, 0], torch.tensor([-1, -0.5, 0, 0.5, 1], dtype=F64))
    assert head.value_kind == "categorical" and head.sample_dtype(F64) == torch.long


@pytest.mark.parametrize(
    "kwargs, match",
    [({"num_components": 0}, "num_components"), ({"num_components": 2.0}, "num_components"),
     ({"num_components": 2, "num_levels": 1}, "num_levels"), ({"num_components": 2, "num_levels": True}, "num_levels"),
     ({"num_components": 2, "num_levels": 2**20}, "num_levels")],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DiscretizedLogisticMixture(**kwargs)


def test_values_outside_the_levels_are_refused():
    d = pyro_ar.MADE(3, [8], conditional=DiscretizedLogisticMixture(2, num_levels=4))()
    for bad in (torch.tensor([0, 1, 4]), torch.tensor([0, -1, 2]), torch.tensor([0.5, 1.0, 2.0])):
        with pytest.raises(ValueError):
            d.log_prob(bad)


@pytest.mark.parametrize("model", [e.name for e in registry.conditioner_entries() if e.cls.__module__.startswith("pyro_ar.")])
def test_every_conditioner_normalizes_with_it(model):
    entry = registry.conditioner_entry(model)
    torch.manual_seed(0)
    net = pyro_ar.models.factory(model)(**entry.event_kwargs(4), **entry.example,
                                        conditional=DiscretizedLogisticMixture(2, num_levels=3), context_size=2).double()
    d = net(torch.randn(2, 2, dtype=F64))
    total = d.log_prob(d.enumerate_support()).exp().sum(0)
    torch.testing.assert_close(total, torch.ones(2, dtype=F64), atol=1e-10, rtol=0)


def test_program_prepares_levels_for_it():
    data = load_dataset("digits", "dlogistic", levels=4)
    assert data.preprocessing["levels"] == 4 and data.train.dtype == torch.long
    assert int(data.train.max()) == 3 and int(data.train.min()) == 0
