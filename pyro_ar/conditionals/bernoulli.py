"""Bernoulli: binary variables with a logit per variable."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar.conditionals.base import _FedBackAsIs
from pyro_ar.registry import register_head

__all__ = ["Bernoulli"]


class Bernoulli(_FedBackAsIs):
    """Binary ``x_i`` in {0, 1}, ``p(x_i = 1) = sigmoid(logit_i)``.

    One parameter per variable (the logit); values are fed back as they are. Samples are
    floating point 0/1, as ``torch.distributions.Bernoulli`` gives them.
    """

    param_size = 1
    support = constraints.boolean

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        logits = params[..., 0]
        if temperature != 1.0:
            # logit / T in the dtype's finite range: a tiny T overflows it to +-inf (and 0 / T is
            # 0 / 0 where T rounds to 0 in the dtype), which makes torch's log_prob NaN. A T past
            # the dtype's range divides as its largest number (the quotient is 0 either way).
            big = torch.finfo(logits.dtype).max
            tempered = logits / min(temperature, big)
            logits = torch.where(logits == 0, logits, tempered).clamp(-big, big)
        return torch.distributions.Bernoulli(logits=logits, validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        if temperature != 1.0:
            return super().log_prob(params, x, temperature)
        # What torch's Bernoulli computes, without building one: a single fused kernel.
        logits, x = torch.broadcast_tensors(params[..., 0], x.to(params.dtype))
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").neg_()

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        # Standard logistic noise L: P(L < logit) = sigmoid(logit).
        return torch.logit(torch.rand(*shape, 1, dtype=dtype, device=device))

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        # x = 1 exactly when logit / T > L, with logit / T as ``distribution`` tempers it (an
        # overflow to +-inf still compares right; a logit of 0 stays 0, a fair coin at every T).
        if temperature != 1.0:
            tempered = params / min(temperature, torch.finfo(params.dtype).max)
            params = torch.where(params == 0, params, tempered)
        return (params > noise).to(params.dtype).squeeze(-1)

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        return torch.tensor([0.0, 1.0], device=device, dtype=dtype)


register_head(Bernoulli, "bernoulli")
