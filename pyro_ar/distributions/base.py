"""``JointDistribution``: what every pyro_ar distribution shares, whatever its structure.

A single-order chain (:class:`~pyro_ar.Autoregressive`), an equal-weight mixture of chains
(:class:`~pyro_ar.distributions.Ensemble`) and their conditioned forms all are joint
distributions over ``n`` variables of one head. This base class owns, once for all of them:
the support, the event-shape and value checks, enumeration of the joint values with the
one enumeration-size check, the exact entropy, the one temperature check, and the
conditioning wrappers (:meth:`conditional_sample`, :meth:`marginal_log_prob`) over
``condition``.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from pyro_ar.conditionals import Conditional
from pyro_ar.distributions.support_check import holds_everywhere

__all__ = ["JointDistribution", "check_temperature", "draw_by_member", "MAX_ENUMERATION_SIZE"]

#: Largest number of joint configurations that enumeration (entropy, exact KL) will build.
MAX_ENUMERATION_SIZE = 2**16


def check_temperature(temperature: object, conditional: Conditional) -> float:
    """Return ``temperature`` as a float if it is positive and finite, and usable with the head."""
    if isinstance(temperature, bool) or not (
        isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if temperature != 1.0 and not conditional.is_discrete:
        raise ValueError(f"temperature applies to discrete conditionals only; {conditional!r} needs temperature=1")
    return float(temperature)


def draw_by_member(choice: Tensor, num_members: int, draw: Callable[[int, Tensor], Tensor]) -> Tensor:
    """Rows drawn each from its own member: ``choice: (R,)`` member indices, ``draw(m, index)``
    gives the ``(len(index), n)`` draws of member ``m`` for rows ``index``; returns ``(R, n)``
    in row order. One call per member that some row chose, never a loop over rows."""
    parts, picked = [], []
    for m in range(num_members):
        index = (choice == m).nonzero().squeeze(-1)
        if index.numel():
            parts.append(draw(m, index))
            picked.append(index)
    return torch.cat(parts)[torch.argsort(torch.cat(picked))]


class JointDistribution(TorchDistribution):
    """Base class of pyro_ar's distributions over ``event_shape = (n,)`` values of one head.

    Subclasses set ``conditional`` (the head) and implement ``log_prob``, ``sample``,
    ``expand``, ``tempered``, ``condition`` and ``param_dtype_device``.
    """

    arg_constraints = {}
    conditional: Conditional
    #: Largest ``K^n`` that :meth:`enumerate_support` builds.
    max_enumeration_size = MAX_ENUMERATION_SIZE

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.conditional.support, 1)

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.conditional.has_enumerate_support

    @property
    def event_size(self) -> int:
        return self.event_shape[0]

    def param_dtype_device(self) -> tuple:
        """The floating dtype and the device of the weights (values and samples follow them)."""
        raise NotImplementedError

    @classmethod
    def infer_shapes(cls, **arg_shapes):
        """Not available from shapes alone: the event size lives in the conditioner module.

        Build the distribution and read ``d.batch_shape`` (the context's leading shape) and
        ``d.event_shape`` (``(n,)``) instead.
        """
        raise NotImplementedError(
            f"{cls.__name__}.infer_shapes cannot know the event size, which lives in the conditioner; "
            "build the distribution and read d.batch_shape (context.shape[:-1]) and d.event_shape ((n,))"
        )

    # ---- values ------------------------------------------------------------------------

    def check_value(self, value: Tensor) -> Tensor:
        """Check ``value: (*, n)`` against the event and batch shapes (always), and against
        the support when ``validate_args`` is on; ``ValueError`` names the problem."""
        self._check_shape(value)
        if self._validate_args:
            self._check_support(value)
        return value

    def _check_shape(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise ValueError(f"value must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0 or value.shape[-1] != self.event_size:
            raise ValueError(
                f"value must have shape (*, {self.event_size}) to match event_shape {tuple(self.event_shape)}, "
                f"got shape {tuple(value.shape)}"
            )
        try:
            if self.batch_shape:  # (torch.broadcast_shapes costs ~10 us: skip it when trivial)
                torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        except RuntimeError as err:
            raise ValueError(
                f"value of shape {tuple(value.shape)} does not broadcast against batch_shape {tuple(self.batch_shape)}"
            ) from err

    def _validate_sample(self, value: Tensor) -> None:  # torch's hook, for callers that use it
        self._check_shape(value)
        self._check_support(value)

    def _check_support(self, value: Tensor) -> None:
        self.conditional.check_value(value)
        if value.numel() == 0 or holds_everywhere(self.conditional.support, value):
            return
        # The fast check said no: torch's own check decides and words the error. NaN is
        # outside every support; name it (looked for only on this failure path).
        try:
            super()._validate_sample(value)
        except ValueError as err:
            if value.is_floating_point() and bool(torch.isnan(value).any()):
                raise ValueError("value contains NaN") from err
            raise

    # ---- enumeration -------------------------------------------------------------------

    def enumeration_size(self) -> int:
        """``K^n``, the number of joint values; ``ValueError`` unless the head is discrete and
        ``K^n <= max_enumeration_size`` (the one place this bound is checked)."""
        if not self.conditional.is_discrete:
            raise NotImplementedError(f"{self.conditional!r} conditionals are continuous: no enumerable support")
        sizes = [v.numel() for v in self._variable_values(torch.device("cpu"), torch.float64)]
        n = self.event_size
        size = math.prod(sizes)
        if size > self.max_enumeration_size:
            counted = f"K^n = {sizes[0]}^{n}" if len(set(sizes)) == 1 else "prod_i K_i = " + "*".join(map(str, sizes))
            raise ValueError(
                f"enumeration needs {counted} = {size} joint values, more than "
                f"max_enumeration_size={self.max_enumeration_size}; use Monte-Carlo estimates instead"
            )
        return size

    def _variable_values(self, device: torch.device, dtype: torch.dtype) -> list:
        """The values of each variable, ``n`` tensors ``(K_i,)`` (one per distinct head)."""
        heads = [self.conditional.for_variables(i) for i in range(self.event_size)]
        values: dict = {}
        for h in heads:
            if id(h) not in values:
                values[id(h)] = h.enumerate_values(device, dtype)
        return [values[id(h)] for h in heads]

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """Every joint value, ``(K^n,) + batch_shape + (n,)`` (``(K^n,) + (1,)*len(batch_shape) + (n,)``
        without ``expand``), for discrete heads with ``K^n <= max_enumeration_size``."""
        size = self.enumeration_size()
        dtype, device = self.param_dtype_device()
        values, n = self._variable_values(device, dtype), self.event_size
        # Mixed radix (variable 0 most significant): ``K^n`` rows when every variable has K values.
        sizes = torch.tensor([v.numel() for v in values], device=device)
        strides = torch.cat([sizes.flip(0).cumprod(0).flip(0)[1:], sizes.new_ones(1)])
        digits = (torch.arange(size, device=device).unsqueeze(-1) // strides) % sizes  # (size, n)
        if all(v is values[0] for v in values):
            joint = values[0][digits]
        else:
            joint = torch.stack([v[digits[:, i]] for i, v in enumerate(values)], -1)
        joint = joint.to(self.conditional.sample_dtype(dtype))  # (K^n, n)
        joint = joint.reshape((size,) + (1,) * len(self.batch_shape) + (n,))
        if expand:
            joint = joint.expand((size,) + self.batch_shape + (n,))
        return joint

    def entropy(self) -> Tensor:
        """Exact entropy ``-sum_x p(x) log p(x)`` by enumeration, ``batch_shape``."""
        if not self.conditional.is_discrete:
            raise NotImplementedError(
                "the entropy of a continuous AR model has no closed form; estimate it by Monte Carlo "
                "as -d.log_prob(d.sample((N,))).mean(0)"
            )
        lp = self.log_prob(self.enumerate_support(expand=False))
        # Terms with p(x) = 0 contribute nothing (0 * -inf would be NaN).
        return -torch.where(lp > -math.inf, lp.exp() * lp, torch.zeros_like(lp)).sum(0)

    # ---- sampling ----------------------------------------------------------------------

    def _draw(self, sample_shape: Sequence[int], reparameterized: bool) -> Tensor:
        """``sample_shape + batch_shape + (n,)`` draws; with ``reparameterized``, differentiable."""
        raise NotImplementedError

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Draw ``sample_shape + batch_shape + (n,)`` values (of the head's sample dtype)."""
        with torch.no_grad():
            return self._draw(sample_shape, False)

    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """A reparameterized sample (mixture-of-Gaussians heads), differentiable in the parameters."""
        if not self.has_rsample:
            raise NotImplementedError(f"{self.conditional!r} conditionals have no reparameterized sampler")
        return self._draw(sample_shape, True)

    def _empty_sample(self, sample_shape: Sequence[int]) -> Tensor:
        dtype, device = self.param_dtype_device()
        return torch.empty(self._extended_shape(sample_shape), dtype=self.conditional.sample_dtype(dtype), device=device)

    # ---- derived distributions -----------------------------------------------------------

    def tempered(self, temperature: float) -> "JointDistribution":
        """The distribution with every discrete conditional's logits divided by ``temperature``."""
        raise NotImplementedError

    def condition(self, observed: Tensor, observed_mask: Tensor, **kwargs) -> "JointDistribution":
        """The distribution of the completions given the observed variables."""
        raise NotImplementedError

    def conditional_sample(
        self,
        observed: Tensor,
        observed_mask: Tensor,
        sample_shape: Sequence[int] = torch.Size(),
        temperature: float = 1.0,
        **kwargs,
    ) -> Tensor:
        """Inpainting: ``self.condition(observed, observed_mask).tempered(temperature).sample(sample_shape)``.

        ``observed, observed_mask: (*, n)`` (mask boolean, ``True`` = observed) ->
        ``sample_shape + broadcast(*, batch_shape) + (n,)``, observed values kept. Exact:
        raises ``ValueError`` unless the observed variables come first in the order (see
        :meth:`condition`). ``temperature`` tempers the drawn conditionals only (an
        ensemble's member weights stay those of the model).
        """
        check_temperature(temperature, self.conditional)
        conditioned = self.condition(observed, observed_mask, **kwargs)
        if temperature != 1.0:
            conditioned = conditioned.tempered(temperature)
        return conditioned.sample(sample_shape)

    def marginal_log_prob(self, observed: Tensor, observed_mask: Tensor, **kwargs) -> Tensor:
        """The exact marginal ``log p(x_o)`` of an observed prefix:
        ``self.condition(observed, observed_mask).observed_log_prob``, ``broadcast(*, batch_shape)``."""
        return self.condition(observed, observed_mask, **kwargs).observed_log_prob
