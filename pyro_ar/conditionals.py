"""Conditional heads: what one variable ``x_i`` is, given the parameters of its conditional.

A head is a small, stateless description of the per-variable distribution
``p(x_i | params_i)``. It knows

* ``param_size``: how many numbers a conditioner must output per variable (``P``),
* ``input_size``: how a value of ``x_i`` is fed back into a conditioner (``I`` features),
* ``support``: the constraint on one element of ``x``,
* how to score: by the matching torch distribution (Bernoulli, Categorical: torch's own
  stable ``log_prob``), or, for the mixture of Gaussians, by its own ``log_softmax`` +
  ``logsumexp`` that stays finite for every finite value (torch's Normal overflows),
* how to sample, as a deterministic function of noise drawn beforehand
  (:meth:`Conditional.draw_noise`, :meth:`Conditional.sample_from_noise`): the logistic
  threshold for Bernoulli, the Gumbel-max trick for categorical and mixture choices.
  With the noise fixed, a draw depends on the parameters alone, which lets the sampling
  loop draw a block of variables by fixed-point iteration (see
  :class:`pyro_ar.nn.IncrementalState`) and gives the same sample as drawing one by one.

Shapes: ``params`` is ``(*, P)`` for one variable or ``(*, n, P)`` for all of them; the
value is ``(*)`` or ``(*, n)`` accordingly.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import Any, Dict

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar.registry import register_head

__all__ = ["Conditional", "Bernoulli", "Categorical", "MixtureOfGaussians"]


#: The largest number of categories or components a head accepts (far past what fits in
#: memory for any model; the model's own size check refuses smaller ones that do not fit).
MAX_SIZE = 2**24


#: The range of the floor of a mixture-of-Gaussians scale.
MIN_MIN_SCALE, MAX_MIN_SCALE = 1e-30, 1e6


def _init_arguments(cls: type) -> list:
    """The names of ``cls``'s constructor arguments (none when it has no ``__init__``)."""
    if cls.__init__ is object.__init__:
        return []
    return list(inspect.signature(cls.__init__).parameters)[1:]


class Conditional(ABC):
    """Base class of the per-variable conditional distributions.

    Subclasses set ``param_size``, ``input_size``, ``support``, ``is_discrete`` and
    implement :meth:`distribution` and :meth:`encode`.
    """

    param_size: int
    input_size: int
    support: constraints.Constraint
    is_discrete: bool = True
    has_rsample: bool = False
    #: What one value is, for data preparation: ``"binary"`` (0/1), ``"categorical"``
    #: (integer levels ``0..K-1``) or ``"real"``.
    value_kind: str = "binary"
    #: The name this head is registered under (set by :func:`pyro_ar.registry.register_head`).
    registry_name: str

    def config(self) -> Dict[str, Any]:
        """The constructor arguments of this head, read back from the attributes of the
        same names; ``type(head).from_config(head.config()) == head``."""
        return {name: getattr(self, name) for name in _init_arguments(type(self))}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Conditional":
        """A head built from :meth:`config`'s dict; ``ValueError`` naming a bad entry."""
        if not isinstance(config, dict):
            raise ValueError(f"{cls.__name__} config must be a dict, got {type(config).__name__}")
        known = _init_arguments(cls)
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__} has no options {unknown}; its options are {known}")
        try:
            return cls(**config)
        except TypeError as err:
            raise ValueError(f"invalid {cls.__name__} config {config!r}: {err}") from err

    @abstractmethod
    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        """The torch distribution of ``x_i`` given ``params: (*, P)``; batch shape ``(*)``."""

    @abstractmethod
    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """How values are fed back to a conditioner: ``x: (*, n) -> (*, n, I)`` of ``dtype``."""

    def encode_one(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """:meth:`encode` for the value of one variable: ``x: (*) -> (*, I)`` (the sampling loop)."""
        return self.encode(x.unsqueeze(-1), dtype).squeeze(-2)

    @abstractmethod
    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        """The dtype of samples when the parameters have ``param_dtype``."""

    def initial_bias(self) -> Tensor:
        """A good starting value of the output bias of one variable, ``(P,)``."""
        return torch.zeros(self.param_size)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """Per-variable log density: ``params: (*, n, P)``, ``x: (*, n) -> (*, n)``; with
        ``temperature``, that of the tempered conditionals (discrete heads)."""
        return self.distribution(params, temperature).log_prob(self._as_value(x, params))

    #: Numbers of noise per variable that :meth:`sample_from_noise` consumes.
    noise_size: int = 1

    @abstractmethod
    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Fresh noise for ``shape`` variables: ``shape + (noise_size,)``."""

    @abstractmethod
    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        """The draw that ``noise: (*, noise_size)`` gives with ``params: (*, P)``: ``(*)``.

        A deterministic map, distributed as :meth:`distribution` (tempered) when the noise
        comes from :meth:`draw_noise`.
        """

    def sample(self, params: Tensor, temperature: float = 1.0) -> Tensor:
        """One draw per row: ``params: (*, P) -> (*)``."""
        noise = self.draw_noise(params.shape[:-1], params.dtype, params.device)
        return self.sample_from_noise(params, noise, temperature)

    def rsample(self, params: Tensor) -> Tensor:
        """A reparameterized draw, ``params: (*, P) -> (*)``, where the head has one."""
        raise NotImplementedError(f"{type(self).__name__} conditionals have no rsample")

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """All values one discrete variable can take, ``(K,)``."""
        raise NotImplementedError(f"{type(self).__name__} conditionals are not enumerable")

    def check_value(self, x: Tensor) -> None:
        """Raise ``ValueError`` where ``x`` has a dtype this head cannot score."""
        if x.dtype.is_complex:
            raise ValueError(f"value must be real, got dtype {x.dtype}")

    def _as_value(self, x: Tensor, params: Tensor) -> Tensor:
        return x.to(params.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # Heads are compared by value so that checkpoints and KL checks can match them.
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class _FedBackAsIs(Conditional):
    """A head whose values are real numbers fed back as they are: one feature per variable,
    samples in the parameters' dtype (Bernoulli's 0/1 floats, mixture values)."""

    input_size = 1

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return (x if x.dtype == dtype else x.to(dtype)).unsqueeze(-1)

    # One value or n values encode the same way.
    encode_one = encode

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return param_dtype


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


class MixtureOfGaussians(_FedBackAsIs):
    """Real ``x_i`` with a mixture of ``K`` Gaussians as its conditional (RNADE-style).

    ``3K`` parameters per variable: mixture logits, means, and unconstrained scales mapped
    to ``softplus(s) + min_scale`` (a smooth positive floor, so no component collapses).
    Scored with ``log_softmax`` + ``logsumexp`` over components whose standardized distance
    is clamped before it is squared: exact up to about 1.4e9 standard deviations in float32
    (1.2e77 in float64), beyond that a large finite negative floor with zero gradient, so
    every finite value, up to the dtype's largest, has a finite density and gradient.

    The floor is in the data's units, so standardize real data first (the CLI does). Its
    default, 1e-2 (1% of a unit standard deviation), keeps components from collapsing onto
    repeated values, which are common in real tables and make training ill-conditioned: on
    the breast-cancer benchmark table it gave 7 to 8 nats better test NLL than 1e-3
    (``benchmarks/README.md``).

    Args:
        num_components: ``K >= 1`` Gaussian components per conditional.
        min_scale: the floor on every component's standard deviation (> 0).
    """

    is_discrete = False
    has_rsample = True
    support = constraints.real
    value_kind = "real"

    def __init__(self, num_components: int, min_scale: float = 1e-2):
        if isinstance(num_components, bool) or not isinstance(num_components, int):
            raise TypeError(f"num_components must be an int, got {num_components!r}")
        if not 1 <= num_components <= MAX_SIZE:
            raise ValueError(f"num_components must be in 1..{MAX_SIZE}, got {num_components}")
        if isinstance(min_scale, bool) or not (
            isinstance(min_scale, (int, float)) and math.isfinite(min_scale) and min_scale > 0
        ):
            raise ValueError(f"min_scale must be a positive finite number, got {min_scale!r}")
        if not MIN_MIN_SCALE <= min_scale <= MAX_MIN_SCALE:
            # Standardized data have unit scale: a floor far above it is a unit mistake (and
            # float32 samples would overflow); far below it, a float32 scale can round to 0.
            raise ValueError(
                f"min_scale must be in [{MIN_MIN_SCALE:g}, {MAX_MIN_SCALE:g}] (standardized units), got {min_scale!r}"
            )
        self.num_components = num_components
        self.min_scale = float(min_scale)

    @property
    def param_size(self) -> int:
        return 3 * self.num_components

    def initial_bias(self) -> Tensor:
        # Equal weights, means spread over the bulk of standardized data, unit scales; where the
        # floor is 1 or more, scales of min_scale + 1 (softplus(raw) = 1: a raw bias of 0.54,
        # finite in every dtype and off softplus's flat tail, whatever the floor).
        k = self.num_components
        means = torch.linspace(-1.0, 1.0, k) if k > 1 else torch.zeros(1)
        excess = 1.0 - self.min_scale if self.min_scale < 1.0 else 1.0  # > 0: no log(0)
        raw_scale = math.log(math.expm1(excess))
        return torch.cat([torch.zeros(k), means, torch.full((k,), raw_scale)])

    def split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``params: (*, 3K) -> (logits, means, scales)``, each ``(*, K)``."""
        logits, means, raw = params.split(self.num_components, dim=-1)
        # softplus on the strided slice is 4x slower than a copy plus softplus on a contiguous one.
        return logits, means, F.softplus(raw.contiguous()) + self.min_scale

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        if temperature != 1.0:
            raise ValueError("temperature applies to discrete conditionals only")
        logits, means, scales = self.split(params)
        mix = torch.distributions.Categorical(logits=logits, validate_args=False)
        comp = torch.distributions.Normal(means, scales, validate_args=False)
        return torch.distributions.MixtureSameFamily(mix, comp, validate_args=False)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """``log sum_k w_k N(x; mu_k, sigma_k)``, ``params: (*, n, 3K)``, ``x: (*, n) -> (*, n)``.

        Computed here rather than by ``MixtureSameFamily`` (whose ``Normal`` squares
        ``x - mu`` and ``sigma`` separately, both of which overflow for large finite ``x``:
        NaN from 1e20 in float32), as ``logsumexp_k(log_softmax(logits)_k - z_k^2 / 2 -
        log sigma_k) - log(2 pi) / 2`` with ``z_k = (x - mu_k) / sigma_k``. The same as
        torch's to rounding for every ``|z| < c = finfo.max ** (1/4)`` (float32: 1.4e9,
        float64: 1.2e77 standard deviations). Past that, each component's log density is held
        at its floor ``-c^2 / 2`` (float32: -9.2e18, float64: -6.7e153), flat, so that every
        finite value (up to ``finfo.max``) has a finite log density and finite gradients
        (``z^2 / sigma``, the largest, stays below ``sqrt(finfo.max) / min_scale``).
        """
        if temperature != 1.0:
            raise ValueError("temperature applies to discrete conditionals only")
        logits, means, scales = self.split(params)
        cap = torch.finfo(params.dtype).max ** 0.25
        # |x - mu| clamped to 2c sigma (and to finfo.max: its overflow to inf included) before
        # dividing: z stays finite, so the floor's zero gradient never meets an inf (0 * inf =
        # NaN). The floor is reached first, so the clamp changes no value, except where x - mu
        # itself overflows (a sigma past finfo.max / 2c, when it gives |z| >= finfo.max / sigma).
        bound = (scales * (2.0 * cap)).clamp_max(torch.finfo(params.dtype).max)
        z = torch.clamp(self._as_value(x, params).unsqueeze(-1) - means, -bound, bound) / scales
        log_comp = (-0.5 * z * z - scales.log()).clamp_min(-0.5 * cap * cap)
        return torch.logsumexp(torch.log_softmax(logits, -1) + log_comp, -1) - 0.5 * math.log(2 * math.pi)

    @property
    def noise_size(self) -> int:  # type: ignore[override]
        return self.num_components + 1

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        # K Gumbel numbers pick the component, one standard normal places the value in it.
        k = self.num_components
        return torch.cat(
            [_gumbel(tuple(shape) + (k,), dtype, device), torch.randn(*shape, 1, dtype=dtype, device=device)], -1
        )

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        if temperature != 1.0:
            raise ValueError("temperature applies to discrete conditionals only")
        logits, means, scales = self.split(params)
        gumbel, normal = noise.split([self.num_components, 1], -1)
        pick = (logits + gumbel).argmax(-1, keepdim=True)
        return (means.gather(-1, pick) + scales.gather(-1, pick) * normal).squeeze(-1)

    def rsample(self, params: Tensor) -> Tensor:
        from pyro_ar.reparam import mixture_rsample

        return mixture_rsample(*self.split(params))

    def check_value(self, x: Tensor) -> None:
        super().check_value(x)
        if not x.dtype.is_floating_point:
            raise ValueError(f"mixture-of-Gaussians values must be floating point, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("value contains NaN or inf; mixture-of-Gaussians values must be finite")

    def __repr__(self) -> str:
        return f"MixtureOfGaussians(num_components={self.num_components}, min_scale={self.min_scale})"


def _gumbel(shape: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Standard Gumbel noise, ``-log E`` with ``E ~ Exp(1)``."""
    return -torch.empty(shape, dtype=dtype, device=device).exponential_().log()


register_head(Bernoulli, "bernoulli")
register_head(Categorical, "categorical", example={"num_categories": 3}, data_option="num_categories")
register_head(MixtureOfGaussians, "mog", example={"num_components": 2}, cli_defaults={"num_components": 5})
