"""Discretized mixture of logistics: ordinal levels 0..L-1 (PixelCNN++'s conditional)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar.conditionals.base import MAX_SIZE, Conditional, _gumbel
from pyro_ar.registry import register_head

__all__ = ["DiscretizedLogisticMixture", "MIN_LOG_SCALE", "MAX_LOG_SCALE", "MAX_LEVELS"]

#: The range of a component's log scale, in the units of the levels mapped to [-1, 1]: a floor
#: as in PixelCNN++ (a bin is 2 / (L - 1) wide), and a ceiling far past any useful spread that
#: keeps every bin's probability above float32's smallest number.
MIN_LOG_SCALE, MAX_LOG_SCALE = -7.0, 10.0
#: The most levels a head accepts (the tempered distribution holds all of them per variable).
MAX_LEVELS = 2**16
#: ``|level value - mean|`` is clamped to this before scaling (values lie in [-1, 1]): far enough that
#: the widest component puts no mass past it (exact normalization), near enough that no
#: standardized distance overflows, whatever the mean.
_MAX_DISTANCE = 1e8


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate at both ends (Maechler's two branches)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


class DiscretizedLogisticMixture(Conditional):
    r"""Ordinal ``x_i`` in {0, ..., L-1}: a mixture of ``K`` logistics discretized to ``L`` bins.

    Level ``l`` stands for the value ``v_l = 2 l / (L - 1) - 1`` in ``[-1, 1]``, with the bin
    ``[v_l - δ, v_l + δ]``, ``δ = 1 / (L - 1)``; the edge bins take the tails, so the ``L``
    probabilities sum to exactly 1 (Salimans et al., 2017, PixelCNN++):

    .. math::
        p(l) = \sum_k π_k \,[σ((v_l + δ - μ_k) / s_k) - σ((v_l - δ - μ_k) / s_k)],
        \quad σ(+\infty) = 1 \text{ at } l = L-1,\ σ(-\infty) = 0 \text{ at } l = 0.

    ``3K`` parameters per variable: mixture logits, means and log scales (floored smoothly at
    ``MIN_LOG_SCALE`` and capped at ``MAX_LOG_SCALE``). The log-probability is computed in
    log space, ``log(σ(a) - σ(b)) = log σ(a) - softplus(b) + log(1 - e^{-(a - b)})`` with
    ``a - b = 2 δ / s`` taken directly, and ``log σ(a)``, ``log σ(-b)`` at the edges: finite
    for every finite parameter, never ``log(0)``. Values are fed back as ``v_l`` (one feature);
    samples are ``torch.long`` levels (a component by the Gumbel-max trick, logistic noise in
    it, rounded to its bin and clamped to the levels). Tempering divides the ``L`` level
    log-probabilities by ``T`` and renormalizes.

    Args:
        num_components: ``K >= 1`` logistic components per conditional.
        num_levels: ``L >= 2`` ordinal levels (256 for 8-bit intensities).
    """

    is_discrete = True
    value_kind = "categorical"

    def __init__(self, num_components: int, num_levels: int = 256):
        for name, value, low, high in (("num_components", num_components, 1, MAX_SIZE),
                                       ("num_levels", num_levels, 2, MAX_LEVELS)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"{name} must be in {low}..{high}, got {value}")
        self.num_components = num_components
        self.num_levels = num_levels

    @property
    def param_size(self) -> int:
        return 3 * self.num_components

    input_size = 1

    @property
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self.num_levels - 1)

    def initial_bias(self) -> Tensor:
        # Equal weights, means spread over [-1, 1], scales of a fifth of the range.
        k = self.num_components
        means = torch.linspace(-0.8, 0.8, k) if k > 1 else torch.zeros(1)
        raw = math.log(math.expm1(math.log(0.4) - MIN_LOG_SCALE)) + MIN_LOG_SCALE
        return torch.cat([torch.zeros(k), means, torch.full((k,), raw)])

    # ---- parameters -------------------------------------------------------------------------

    def split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``params: (*, 3K) -> (log weights, means, inverse scales)``, each ``(*, K)``."""
        logits, means, raw = params.split(self.num_components, dim=-1)
        log_scale = (MIN_LOG_SCALE + F.softplus(raw.contiguous() - MIN_LOG_SCALE)).clamp_max(MAX_LOG_SCALE)
        return torch.log_softmax(logits, -1), means, torch.exp(-log_scale)

    def level_values(self, levels: Tensor, dtype: torch.dtype) -> Tensor:
        """``v_l = 2 l / (L - 1) - 1``, in ``dtype``."""
        return levels.to(dtype) * (2.0 / (self.num_levels - 1)) - 1.0

    def _component_log_probs(self, params: Tensor, x: Tensor) -> Tensor:
        """``log w_k + log P_k(level x)``: ``params (*, 3K)``, ``x (*)`` long -> ``(*, K)``."""
        log_w, means, inv_s = self.split(params)
        delta = 1.0 / (self.num_levels - 1)
        centred = (self.level_values(x, params.dtype).unsqueeze(-1) - means).clamp(-_MAX_DISTANCE, _MAX_DISTANCE)
        upper = (centred + delta) * inv_s  # a
        lower = (centred - delta) * inv_s  # b
        interior = F.logsigmoid(upper) - F.softplus(lower) + _log1mexp(-2.0 * delta * inv_s)
        first, last = (x == 0).unsqueeze(-1), (x == self.num_levels - 1).unsqueeze(-1)
        log_p = torch.where(first, F.logsigmoid(upper), torch.where(last, F.logsigmoid(-lower), interior))
        return log_w + log_p

    def level_log_probs(self, params: Tensor) -> Tensor:
        """``log p(l)`` for every level: ``params (*, 3K) -> (*, L)``."""
        levels = torch.arange(self.num_levels, device=params.device)
        return torch.logsumexp(self._component_log_probs(params.unsqueeze(-2), levels), -1)

    # ---- scoring --------------------------------------------------------------------------

    def _tempered_logits(self, params: Tensor, temperature: float) -> Tensor:
        # As Categorical tempers: the largest level shifted to exactly 0, the others divided.
        logits = self.level_log_probs(params)
        if temperature == 1.0:
            return logits
        shifted = logits - logits.amax(-1, keepdim=True)
        tempered = shifted / min(temperature, torch.finfo(params.dtype).max)
        return torch.where(shifted == 0, shifted, tempered)

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        """The categorical distribution over the ``L`` levels (all of them computed)."""
        return torch.distributions.Categorical(logits=self._tempered_logits(params, temperature), validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """``log p(x_i)``: ``params (*, n, 3K)``, ``x (*, n) -> (*, n)``; only the observed
        level's bin is evaluated (the tempered one normalizes over all levels)."""
        if temperature != 1.0:
            return super().log_prob(params, x, temperature)
        return torch.logsumexp(self._component_log_probs(params, x.long()), -1)

    # ---- sampling -------------------------------------------------------------------------

    @property
    def noise_size(self) -> int:  # type: ignore[override]
        return self.num_components + 1

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        # K Gumbel numbers pick the component, one uniform places the value in it.
        k = self.num_components
        return torch.cat(
            [_gumbel(tuple(shape) + (k,), dtype, device), torch.rand(*shape, 1, dtype=dtype, device=device)], -1
        )

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        gumbel, uniform = noise.split([self.num_components, 1], -1)
        top = self.num_levels - 1
        if temperature != 1.0:  # inverse CDF of the tempered levels
            cdf = torch.softmax(self._tempered_logits(params, temperature), -1).cumsum(-1)
            return (cdf < uniform).sum(-1).clamp_max(top)
        log_w, means, inv_s = self.split(params)
        pick = (log_w + gumbel).argmax(-1, keepdim=True)
        # A logistic draw, mu + s logit(u), rounded to its bin: bin l holds [v_l - δ, v_l + δ).
        y = means.gather(-1, pick) + torch.logit(uniform) / inv_s.gather(-1, pick)
        level = torch.floor((y + 1.0) * (top / 2.0) + 0.5)
        return level.nan_to_num(0.0).clamp(0, top).long().squeeze(-1)

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return self.level_values(x, dtype).unsqueeze(-1)

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return torch.long

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.arange(self.num_levels, device=device, dtype=dtype)

    def _as_value(self, x: Tensor, params: Tensor) -> Tensor:
        return x.long()

    def __repr__(self) -> str:
        return f"DiscretizedLogisticMixture(num_components={self.num_components}, num_levels={self.num_levels})"


register_head(
    DiscretizedLogisticMixture, "dlogistic", example={"num_components": 2, "num_levels": 4},
    data_option="num_levels", cli_defaults={"num_components": 5},
)
