"""Categorical: variables with K unordered levels, fed back one-hot."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar.conditionals.base import MAX_SIZE, Conditional, _gumbel
from pyro_ar.registry import register_head

__all__ = ["Categorical"]


class Categorical(Conditional):
    """``x_i`` in {0, ..., K-1} with ``p(x_i = k) = softmax(logits_i)_k``.

    ``K`` parameters per variable (logits); values are fed back one-hot. Samples are
    ``torch.long``.

    Args:
        num_categories: ``K >= 2``.
    """

    is_discrete = True
    value_kind = "categorical"

    def __init__(self, num_categories: int):
        if isinstance(num_categories, bool) or not isinstance(num_categories, int):
            raise TypeError(f"num_categories must be an int, got {num_categories!r}")
        if not 2 <= num_categories <= MAX_SIZE:
            raise ValueError(f"num_categories must be in 2..{MAX_SIZE}, got {num_categories}")
        self.num_categories = num_categories

    @property
    def param_size(self) -> int:
        return self.num_categories

    @property
    def input_size(self) -> int:
        return self.num_categories

    @property
    def support(self) -> constraints.Constraint:
        return constraints.integer_interval(0, self.num_categories - 1)

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        logits = params
        if temperature != 1.0:
            # Shift each row's largest logit to exactly 0 before dividing: the others are then
            # <= 0 and a tiny T sends them to -inf (probability 0), never to +inf (NaN once
            # normalized). The 0 is kept as it is, since 0 / T is 0 / 0 where T rounds to 0 in
            # the dtype; a T past the dtype's range divides as its largest number.
            shifted = params - params.amax(-1, keepdim=True)
            tempered = shifted / min(temperature, torch.finfo(params.dtype).max)
            logits = torch.where(shifted == 0, shifted, tempered)
        return torch.distributions.Categorical(logits=logits, validate_args=False)

    @property
    def noise_size(self) -> int:  # type: ignore[override]
        return self.num_categories

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        return _gumbel(tuple(shape) + (self.num_categories,), dtype, device)

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        # Gumbel-max: argmax_k(logit_k / T + G_k) is distributed as softmax(logits / T), with the
        # logits tempered as in ``distribution`` (largest shifted to 0, so that as T -> 0 the
        # others go to -inf and the draw to the argmax, ties broken uniformly by the noise).
        logits = params
        if temperature != 1.0:
            shifted = params - params.amax(-1, keepdim=True)
            tempered = shifted / min(temperature, torch.finfo(params.dtype).max)
            logits = torch.where(shifted == 0, shifted, tempered)
        return (logits + noise).argmax(-1)

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return F.one_hot(x.long(), self.num_categories).to(dtype)

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return torch.long

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.arange(self.num_categories, device=device, dtype=dtype)

    def _as_value(self, x: Tensor, params: Tensor) -> Tensor:
        return x.long()

    def __repr__(self) -> str:
        return f"Categorical(num_categories={self.num_categories})"


register_head(Categorical, "categorical", example={"num_categories": 3}, data_option="num_categories")
