"""Poisson: count variables (non-negative integers) with a log-rate per variable."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar.conditionals.base import Conditional
from pyro_ar.registry import register_head

__all__ = ["Poisson", "MAX_LOG_RATE"]

#: The log-rate is clamped to ``[-MAX_LOG_RATE, MAX_LOG_RATE]`` (rates from 1e-13 to 1e13):
#: ``exp`` then never overflows, and no table has counts beyond it.
MAX_LOG_RATE = 30.0


class Poisson(Conditional):
    r"""Count ``x_i`` in {0, 1, 2, ...} with ``p(x_i = k) = λ^k e^{-λ} / k!``, ``λ = exp(η_i)``.

    One parameter per variable, the log-rate ``η`` (clamped to ``±MAX_LOG_RATE``, so that
    ``λ`` stays finite; no gradient beyond). Scored as ``k η - e^η - lgamma(k + 1)``: exact
    and finite for every count a float holds (no factorial, no ``λ^k``).

    Values are fed back to a conditioner as ``log(1 + k)``, so that large counts do not
    dominate its inputs. Samples are floating point counts (as torch's ``Poisson`` gives).

    Why Poisson (and not a negative binomial): one parameter, a log-linear model that
    conditioners learn easily; over-dispersion across rows is already modelled by the
    dependence on earlier columns and the context. (A negative binomial would add a
    dispersion parameter per variable.)

    Sampling is the inverse CDF of one uniform number ``u`` (a deterministic function of the
    noise, as the sampling loop requires): the smallest ``k`` with ``P(X <= k) >= u``,
    found by bisection over ``[0, λ + 20 sqrt(λ) + 20]`` with the CDF
    ``Q(k + 1, λ)`` (``torch.special.gammaincc``, in float64): about ``log2(λ)`` vectorized
    steps, no loop over rows.

    The support is infinite: enumeration (``enumerate_support``, exact entropy and KL) is
    not available, and tempering is refused.
    """

    param_size = 1
    input_size = 1
    is_discrete = True
    has_rsample = False
    value_kind = "count"
    support = constraints.nonnegative_integer

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return False

    def log_rate(self, params: Tensor) -> Tensor:
        """``params: (*, 1) -> (*)``, clamped."""
        return params[..., 0].clamp(-MAX_LOG_RATE, MAX_LOG_RATE)

    def _no_temperature(self, temperature: float) -> None:
        if temperature != 1.0:
            raise ValueError("temperature applies to Bernoulli and categorical conditionals; Poisson needs temperature=1")

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        self._no_temperature(temperature)
        return torch.distributions.Poisson(self.log_rate(params).exp(), validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """``k η - e^η - lgamma(k + 1)``: ``params: (*, n, 1)``, ``x: (*, n) -> (*, n)``."""
        self._no_temperature(temperature)
        eta = self.log_rate(params)
        k = x.to(params.dtype)
        return k * eta - eta.exp() - torch.lgamma(k + 1)

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return torch.log1p(x.to(dtype)).unsqueeze(-1)

    def encode_one(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return self.encode(x, dtype)

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return param_dtype

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        return torch.rand(*shape, 1, dtype=dtype, device=device)

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        self._no_temperature(temperature)
        rate = self.log_rate(params.detach()).double().exp()  # a draw has no gradient
        u = noise[..., 0].double()
        lo = torch.zeros_like(rate)
        # P(X > rate + 20 sqrt(rate) + 20) is far below the smallest 1 - u a float can hold.
        hi = torch.ceil(rate + 20 * rate.sqrt() + 20)
        for _ in range(int(math.ceil(math.log2(float(hi.max()) + 1))) + 1 if hi.numel() else 0):
            mid = torch.floor((lo + hi) / 2)
            left = torch.special.gammaincc(mid + 1, rate) >= u  # P(X <= mid) >= u
            hi = torch.where(left, mid, hi)
            lo = torch.where(left, lo, mid + 1)
        return lo.to(params.dtype)

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        raise NotImplementedError(
            "a Poisson count has infinite support {0, 1, 2, ...}: it cannot be enumerated "
            "(use Monte-Carlo estimates, e.g. pyro_ar.kl.monte_carlo_kl)"
        )

    def check_value(self, x: Tensor) -> None:
        super().check_value(x)
        if x.dtype == torch.bool:
            raise ValueError("Poisson values must be counts (a floating or integer dtype), got dtype torch.bool")


register_head(Poisson, "count")
