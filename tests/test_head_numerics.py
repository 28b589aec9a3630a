"""Numerics of the conditional heads at the edges of the floating-point range.

* Mixture of Gaussians: the density of every finite value (up to the dtype's largest, such
  as the NetCDF fill value 9.97e36) is finite or ``-inf``, never NaN, and its gradient with
  respect to the value and to every parameter is finite; for ordinary values it equals
  torch's ``MixtureSameFamily``.
* Mixture of Gaussians: every ``min_scale`` in [1e-30, 1e6] gives a finite initial bias.
* Categorical and Bernoulli tempering: correct for every positive finite temperature, the
  argmax as ``T -> 0`` and uniform as ``T -> inf``, with tempered log-probabilities that are
  never NaN.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians

F32, F64 = torch.float32, torch.float64
DTYPES = pytest.mark.parametrize("dtype", [F32, F64], ids=["float32", "float64"])

# Magnitudes of far values: ordinary outliers up to the largest finite number of the dtype
# (9.97e36 is the NetCDF fill value).
FAR = {
    F32: [1e6, 1e15, 1e20, 1e25, 9.97e36, 3e38, torch.finfo(F32).max],
    F64: [1e6, 1e15, 1e20, 1e25, 9.97e36, 3e38, 1e300, torch.finfo(F64).max],
}
FAR_CASES = [(dtype, sign * v) for dtype in (F32, F64) for v in FAR[dtype] for sign in (1.0, -1.0)]
FAR_IDS = [f"{str(d).split('.')[-1]}-{v:.3g}" for d, v in FAR_CASES]


def mog_params(head: MixtureOfGaussians, shape: tuple, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Random mixture parameters ``shape + (3K,)`` around the head's initial bias."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(shape + (head.param_size,), generator=g, dtype=F64)
    return (head.initial_bias().to(F64) + noise).to(dtype)


def finite_or_minus_inf(t: torch.Tensor) -> bool:
    return bool((torch.isfinite(t) | (t == -math.inf)).all())


def all_finite(tensors) -> bool:
    return all(t is None or bool(torch.isfinite(t).all()) for t in tensors)


# ---- mixture of Gaussians: far values ------------------------------------------------------


@pytest.mark.parametrize("dtype, value", FAR_CASES, ids=FAR_IDS)
@pytest.mark.parametrize("k", [1, 3])
def test_mog_head_far_values_have_finite_density_and_gradient(dtype, value, k):
    head = MixtureOfGaussians(k)
    params = mog_params(head, (2, 4), dtype).requires_grad_(True)
    x = torch.tensor([[value, 0.0, -1.0, value], [0.5, value, value, 2.0]], dtype=dtype, requires_grad=True)
    lp = head.log_prob(params, x)
    assert lp.dtype == dtype and lp.shape == (2, 4)
    assert finite_or_minus_inf(lp), lp
    far = x.detach() == value
    assert (lp[far] < -1e5).all(), lp  # far values are very unlikely ...
    assert (lp[~far] > -50).all(), lp  # ... the bulk is not
    grads = torch.autograd.grad(lp.sum(), (params, x))
    assert all_finite(grads), grads


@DTYPES
def test_mog_head_density_decreases_with_distance(dtype):
    """Far out the density goes on falling (or stays flat, at the floor): never rises."""
    head = MixtureOfGaussians(2)
    params = mog_params(head, (1,), dtype)
    values = [0.0, 1e1, 1e3, 1e6, 1e9, 1e12, 1e15, 1e20, 1e25, 9.97e36, 3e38]
    if dtype == F64:
        values += [1e300, torch.finfo(F64).max]
    for sign in (1.0, -1.0):
        x = torch.tensor([sign * v for v in values], dtype=dtype)
        lp = head.log_prob(params.expand(len(values), -1).unsqueeze(-2), x.unsqueeze(-1)).squeeze(-1)
        assert not torch.isnan(lp).any()
        assert bool((lp[1:] <= lp[:-1]).all()), lp


@DTYPES
def test_mog_head_is_exact_for_outliers_that_stay_representable(dtype):
    """Outliers at a million standard deviations are scored exactly (float64 reference)."""
    head = MixtureOfGaussians(3)
    params = mog_params(head, (5,), dtype, seed=1)
    x = torch.tensor([1e6, -1e6, 3e5, -2e6, 1e7], dtype=dtype)
    lp = head.log_prob(params, x)
    ref = head.distribution(params.to(F64)).log_prob(x.to(F64))
    torch.testing.assert_close(lp.to(F64), ref, rtol=1e-6 if dtype == F32 else 1e-12, atol=0)


MODELS = {
    "MADE": lambda head: pyro_ar.MADE(4, [8], conditional=head),
    "FVSBN": lambda head: pyro_ar.FVSBN(4, conditional=head),
    "NADE": lambda head: pyro_ar.NADE(4, 8, conditional=head),
}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("dtype, value", FAR_CASES, ids=FAR_IDS)
def test_mog_models_far_values_have_finite_density_and_gradient(model, dtype, value):
    torch.manual_seed(0)
    net = MODELS[model](MixtureOfGaussians(2)).to(dtype)
    params = list(net.parameters())
    for x in ([value, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, value], [value, -value, value, 1.0]):
        x = torch.tensor(x, dtype=dtype, requires_grad=True)
        lp = net().log_prob(x)
        assert finite_or_minus_inf(lp), (x, lp)
        grads = torch.autograd.grad(lp, [x] + params, allow_unused=True)
        assert all_finite(grads), (x, grads)


def test_mog_made_example_from_the_report():
    """The reported case: ``MADE(4, [8], MixtureOfGaussians(2))`` at 1e25 gave NaN."""
    torch.manual_seed(0)
    net = pyro_ar.MADE(4, [8], conditional=MixtureOfGaussians(2))
    x = torch.tensor([1e25, 0.0, 0.0, 0.0], requires_grad=True)
    lp = net().log_prob(x)
    assert not torch.isnan(lp) and lp < -1e5
    grads = torch.autograd.grad(lp, [x] + list(net.parameters()))
    assert all_finite(grads)


# ---- mixture of Gaussians: ordinary values match torch -----------------------------------


@DTYPES
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("min_scale", [1e-2, 1.0, 3.0])
def test_mog_log_prob_matches_mixture_same_family(dtype, k, min_scale):
    head = MixtureOfGaussians(k, min_scale=min_scale)
    params = mog_params(head, (7, 6), dtype, seed=k).requires_grad_(True)
    x = (3 * torch.randn(7, 6, generator=torch.Generator().manual_seed(3), dtype=F64)).to(dtype)
    x.requires_grad_(True)
    lp = head.log_prob(params, x)
    ref = head.distribution(params).log_prob(x)
    assert isinstance(head.distribution(params), torch.distributions.MixtureSameFamily)
    tol = 1e-6 if dtype == F32 else 1e-12
    torch.testing.assert_close(lp, ref, rtol=tol, atol=tol)
    got = torch.autograd.grad(lp.sum(), (params, x))
    want = torch.autograd.grad(ref.sum(), (params, x))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=10 * tol, atol=10 * tol)


def test_mog_log_prob_does_not_build_the_torch_distribution(monkeypatch):
    head = MixtureOfGaussians(2)
    params = mog_params(head, (3, 4), F64)
    x = torch.randn(3, 4, dtype=F64)
    expected = head.distribution(params).log_prob(x)

    def refuse(*args, **kwargs):
        raise AssertionError("log_prob went through distribution()")

    monkeypatch.setattr(MixtureOfGaussians, "distribution", refuse)
    torch.testing.assert_close(head.log_prob(params, x), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(head.log_prob(params, x, 1.0), expected, rtol=1e-12, atol=1e-12)


def test_mog_log_prob_rejects_temperature():
    head = MixtureOfGaussians(2)
    params = mog_params(head, (4,), F64)
    with pytest.raises(ValueError, match="temperature"):
        head.log_prob(params, torch.zeros(4, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="temperature"):
        head.log_prob(params, torch.zeros(4, dtype=F64), temperature=2.0)


@DTYPES
def test_mog_samples_are_scored_like_torch(dtype):
    """sample/rsample are untouched: their values are scored as torch scores them."""
    head = MixtureOfGaussians(3)
    params = mog_params(head, (200, 2), dtype, seed=4)
    torch.manual_seed(0)
    for x in (head.sample(params), head.rsample(params)):
        assert x.shape == (200, 2) and x.dtype == dtype and bool(torch.isfinite(x).all())
        tol = 1e-6 if dtype == F32 else 1e-12
        torch.testing.assert_close(head.log_prob(params, x), head.distribution(params).log_prob(x), rtol=tol, atol=tol)


# ---- mixture of Gaussians: min_scale ------------------------------------------------------


@pytest.mark.parametrize("min_scale", [1e-30, 1e-6, 1e-2, 0.5, 0.999999, 1.0, 1.5, 10.0, 1e6])
def test_mog_initial_bias_for_any_min_scale(min_scale):
    head = MixtureOfGaussians(3, min_scale=min_scale)
    bias = head.initial_bias()
    assert bias.shape == (9,) and bool(torch.isfinite(bias).all()), bias
    _, _, scales = head.split(bias.to(F64))
    expected = 1.0 if min_scale < 1 else min_scale + 1.0
    torch.testing.assert_close(scales, torch.full((3,), expected, dtype=F64), rtol=1e-6, atol=0)
    # And a model with it builds and scores.
    net = pyro_ar.MADE(2, [4], conditional=head).double()
    lp = net().log_prob(torch.tensor([0.5, -0.5], dtype=F64))
    assert torch.isfinite(lp)


@pytest.mark.parametrize("min_scale", [1e-300, 1e-31, 1e6 * 1.01, 1e30])
def test_mog_min_scale_outside_the_usable_range_is_refused(min_scale):
    """Below 1e-30 a float32 scale can round to 0; above 1e6 (standardized units) float32
    samples overflow: both are refused by name."""
    with pytest.raises(ValueError, match="min_scale must be"):
        MixtureOfGaussians(3, min_scale=min_scale)


# ---- tempering: Categorical ---------------------------------------------------------------

# (dtype, temperature): the tiniest ones round to zero (float32) or are subnormal.
TINY = [(F64, 1e-300), (F64, 1e-320), (F32, 1e-40), (F32, 1e-45), (F32, 1e-300)]
TINY_IDS = [f"{str(d).split('.')[-1]}-{t:g}" for d, t in TINY]
HUGE = [(F64, 1e300), (F32, 1e300), (F32, 1e30)]
HUGE_IDS = [f"{str(d).split('.')[-1]}-{t:g}" for d, t in HUGE]

# Rows of distinct logits, from ordinary to ones that overflow when divided by a tiny T.
CATEGORICAL_LOGITS = [
    [0.0, 1.0, 0.5],
    [1.0, 3.0, 2.0],
    [-30.0, -10.0, -20.0],
    [2.0, -1.0, 1.999],
    [1e9, 3e9, 2e9],
    [-3e9, -2e9, -1e9],
    [-math.inf, 0.0, -1.0],
]


@pytest.mark.parametrize("dtype, temperature", TINY, ids=TINY_IDS)
def test_categorical_tiny_temperature_samples_the_argmax(dtype, temperature):
    head = Categorical(3)
    logits = torch.tensor(CATEGORICAL_LOGITS, dtype=dtype)
    torch.manual_seed(0)
    x = head.sample(logits.expand(500, -1, -1), temperature)
    assert bool((x == logits.argmax(-1)).all()), x
    # The same through the noise interface (what the AR sampler uses).
    noise = head.draw_noise(torch.Size([500, len(CATEGORICAL_LOGITS)]), dtype, torch.device("cpu"))
    assert bool((head.sample_from_noise(logits.expand(500, -1, -1), noise, temperature) == logits.argmax(-1)).all())


@pytest.mark.parametrize("dtype, temperature", TINY, ids=TINY_IDS)
def test_categorical_tiny_temperature_log_prob(dtype, temperature):
    head = Categorical(3)
    logits = torch.tensor(CATEGORICAL_LOGITS, dtype=dtype)
    d = head.distribution(logits, temperature)
    assert not torch.isnan(d.logits).any(), d.logits
    values = torch.arange(3).unsqueeze(-1)  # (3, 1): every value against every row
    lp = d.log_prob(values)
    assert not torch.isnan(lp).any(), lp
    top = head.log_prob(logits, logits.argmax(-1), temperature)
    assert bool(torch.isfinite(top).all()) and bool((top.abs() < 1e-6).all()), top
    others = lp.T[torch.arange(3) != logits.argmax(-1, keepdim=True)]
    assert bool((others < -1e3).all()), others


@pytest.mark.parametrize("dtype, temperature", HUGE, ids=HUGE_IDS)
def test_categorical_huge_temperature_samples_uniformly(dtype, temperature):
    head = Categorical(3)
    logits = torch.tensor([[0.0, 5.0, -5.0], [-1e9, 3e9, 2e9]], dtype=dtype)
    torch.manual_seed(1)
    n = 30000
    x = head.sample(logits.expand(n, -1, -1), temperature)
    for row in range(logits.shape[0]):
        counts = torch.bincount(x[:, row], minlength=3).numpy()
        assert stats.chisquare(counts).pvalue > 1e-4, counts
    lp = head.distribution(logits, temperature).log_prob(torch.arange(3).unsqueeze(-1))
    torch.testing.assert_close(lp, torch.full_like(lp, -math.log(3)), rtol=0, atol=1e-5)


def test_categorical_masked_category_stays_impossible_at_any_temperature():
    head = Categorical(3)
    for dtype, temperature in TINY + HUGE + [(F64, 1.0), (F32, 0.3), (F32, 7.0)]:
        logits = torch.tensor([[-math.inf, 0.0, 1.0]], dtype=dtype)
        torch.manual_seed(2)
        x = head.sample(logits.expand(2000, -1, -1), temperature)
        assert bool((x != 0).all()), (dtype, temperature)
        lp = head.distribution(logits, temperature).log_prob(torch.arange(3).unsqueeze(-1))
        assert lp[0, 0] == -math.inf and not torch.isnan(lp).any(), (dtype, temperature, lp)


def test_categorical_ordinary_temperature_is_logits_over_t():
    head = Categorical(4)
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=F64)
    for temperature in (0.1, 0.6, 2.0, 50.0):
        got = head.distribution(logits, temperature).log_prob(torch.arange(4).unsqueeze(-1))
        want = torch.log_softmax(logits / temperature, -1).T
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_categorical_model_tiny_temperature_is_greedy():
    """Through a public factory: one categorical variable whose logits overflow at T."""
    net = pyro_ar.FVSBN(1, conditional=Categorical(3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.conditioner.output_bias.copy_(torch.tensor([[1e9, 3e9, 2e9]], dtype=F64))
    d = net().tempered(1e-300)
    x = d.sample((300,))
    assert bool((x == 1).all()), x
    lp = d.log_prob(torch.tensor([[1], [0]]))
    assert lp[0].abs() < 1e-12 and not torch.isnan(lp).any(), lp


# ---- tempering: Bernoulli -----------------------------------------------------------------

BERNOULLI_LOGITS = [3.0, -2.0, 1e-3, -1e-3, 1e9, -1e9, 0.0]


@pytest.mark.parametrize("dtype, temperature", TINY, ids=TINY_IDS)
def test_bernoulli_tiny_temperature(dtype, temperature):
    head = Bernoulli()
    logits = torch.tensor(BERNOULLI_LOGITS, dtype=dtype).unsqueeze(-1)
    torch.manual_seed(0)
    n = 4000
    x = head.sample(logits.expand(n, -1, -1), temperature)
    decided = logits[:, 0] != 0
    assert bool((x[:, :-1] == (logits[:-1, 0] > 0).to(dtype)).all()), x
    # A logit of exactly 0 stays a fair coin at every temperature.
    assert stats.binomtest(int(x[:, -1].sum()), n).pvalue > 1e-4
    d = head.distribution(logits, temperature)
    lp = d.log_prob(torch.tensor([[0.0], [1.0]], dtype=dtype))  # (2, rows)
    assert not torch.isnan(lp).any() and not torch.isnan(d.logits).any(), lp
    likely = (logits[:, 0] > 0).long()
    top = lp.gather(0, likely.unsqueeze(0))[0]
    assert bool((top[decided].abs() < 1e-6).all()), top
    torch.testing.assert_close(top[-1], torch.tensor(-math.log(2), dtype=dtype))
    bottom = lp.gather(0, (1 - likely).unsqueeze(0))[0]
    assert bool((bottom[decided] < -1e3).all()), bottom
    # And head.log_prob (what the AR distribution calls) agrees.
    got = head.log_prob(logits, (logits[:, 0] > 0).to(dtype), temperature)
    assert not torch.isnan(got).any() and bool((got[decided].abs() < 1e-6).all()), got


@pytest.mark.parametrize("dtype, temperature", HUGE, ids=HUGE_IDS)
def test_bernoulli_huge_temperature_is_a_fair_coin(dtype, temperature):
    head = Bernoulli()
    logits = torch.tensor([[5.0], [-3e9], [0.0]], dtype=dtype)
    torch.manual_seed(3)
    n = 20000
    x = head.sample(logits.expand(n, -1, -1), temperature)
    for row in range(logits.shape[0]):
        ones = int(x[:, row].sum())
        assert stats.chisquare([ones, n - ones]).pvalue > 1e-4, ones
    lp = head.distribution(logits, temperature).log_prob(torch.tensor([[0.0], [1.0]], dtype=dtype))
    torch.testing.assert_close(lp, torch.full_like(lp, -math.log(2)), rtol=0, atol=1e-5)


def test_bernoulli_ordinary_temperature_is_logits_over_t():
    head = Bernoulli()
    logits = torch.randn(6, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    for temperature in (0.1, 0.6, 2.0, 50.0):
        got = head.distribution(logits, temperature).logits
        torch.testing.assert_close(got, logits[:, 0] / temperature, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_bernoulli_log_prob_is_torchs_at_every_logit_and_shape(dtype):
    # The head scores with one fused kernel instead of building a torch Bernoulli: the same
    # numbers (extreme logits included), broadcasting and gradients.
    head = Bernoulli()
    big = torch.finfo(dtype).max
    logits = torch.tensor([-big, -1e4, -30.0, -1.0, 0.0, 1e-8, 1.0, 30.0, 1e4, big], dtype=dtype)
    params = logits.view(1, -1, 1).expand(2, -1, 1).clone().requires_grad_()
    x = torch.tensor([[0.0, 1.0] * 5, [1.0, 0.0] * 5], dtype=dtype)
    ref_params = params.detach().clone().requires_grad_()
    got = head.log_prob(params, x)
    ref = torch.distributions.Bernoulli(logits=ref_params[..., 0]).log_prob(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    got.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(params.grad, ref_params.grad, rtol=0, atol=0)
    # x broadcast against the parameters' batch, and the other way round.
    assert head.log_prob(params, x[0]).shape == (2, 10)
    assert head.log_prob(params[:1], x).shape == (2, 10)
    torch.testing.assert_close(head.log_prob(params[:1], x), torch.distributions.Bernoulli(logits=logits).log_prob(x))
    # Tempered scores still come from the tempered distribution.
    torch.testing.assert_close(head.log_prob(params, x, 2.0),
                               torch.distributions.Bernoulli(logits=params[..., 0] / 2).log_prob(x))
