"""``Autoregressive``: the one single-order distribution class behind every pyro_ar model."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from pyro_ar.conditionals import Conditional
from pyro_ar.distributions.base import JointDistribution, check_temperature
from pyro_ar.distributions.conditioned import ConditionedAutoregressive
from pyro_ar.distributions.module_samples import bound_pyro_samples, module_dtype_device, snapshot_pyro_samples
from pyro_ar.nn.base import Conditioner, ConditionerMember

__all__ = ["Autoregressive"]

SingleOrder = Union[Conditioner, ConditionerMember]


class Autoregressive(JointDistribution):
    r"""A joint distribution over ``n`` variables, factorized by the chain rule in one order.

    .. math:: p(x \mid \text{context}) = \prod_{k=1}^{n} p(x_{σ_k} \mid x_{σ_{<k}}, \text{context})

    where σ is the conditioner's order and each factor is the ``conditional`` head with
    parameters computed by the ``conditioner`` network. (An ensemble of several orders is
    :class:`pyro_ar.distributions.Ensemble`, the exact mixture of such chains.)

    This class owns, once for all models: shapes and broadcasting, validation, ``expand``,
    the sequential sampling loop (over incremental conditioner state), tempering
    (:meth:`tempered`) and conditioning (:meth:`condition`); enumeration and the exact
    entropy come from :class:`~pyro_ar.distributions.base.JointDistribution`.

    Shapes: ``batch_shape`` is the context's leading shape (``()`` without context);
    ``event_shape`` is ``(n,)``. ``log_prob(x)`` takes ``x: (*, n)`` broadcastable against
    ``batch_shape`` and returns ``(*)`` in one vectorized pass.

    Args:
        conditioner: a single-order :class:`pyro_ar.nn.Conditioner` (FVSBN, NADE, a MADE with
            one mask, ...) or one member of a conditioner with several, ``net.member(k)``.
        conditional: the head, e.g. :class:`pyro_ar.conditionals.Bernoulli`; its
            ``input_size`` and ``param_size`` must match the conditioner's.
        context: ``(*batch, c)`` or ``None``.
        validate_args: as in ``torch.distributions``.

    Example:
        >>> from pyro_ar.nn import NADE
        >>> from pyro_ar.conditionals import Bernoulli
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> d = Autoregressive(NADE(event_size=3, hidden_size=8), Bernoulli())
        >>> d.sample((5,)).shape, d.log_prob(torch.ones(3)).shape
        (torch.Size([5, 3]), torch.Size([]))
    """

    def __init__(
        self,
        conditioner: SingleOrder,
        conditional: Conditional,
        context: Optional[Tensor] = None,
        validate_args: Optional[bool] = None,
    ):
        if not isinstance(conditioner, (Conditioner, ConditionerMember)):
            raise TypeError(f"conditioner must be a pyro_ar.nn.Conditioner, got {type(conditioner).__name__}")
        if conditioner.num_members != 1:
            raise ValueError(
                f"{type(conditioner).__name__} has {conditioner.num_members} members (orders): an Autoregressive "
                "distribution has one; pass conditioner.member(k), or build the exact mixture with "
                "pyro_ar.distributions.Ensemble"
            )
        if not isinstance(conditional, Conditional):
            raise TypeError(f"conditional must be a pyro_ar.conditionals.Conditional, got {type(conditional).__name__}")
        if conditioner.input_size != conditional.input_size or conditioner.param_size != conditional.param_size:
            raise ValueError(
                f"conditioner (input_size={conditioner.input_size}, param_size={conditioner.param_size}) does not "
                f"match conditional {conditional!r} (input_size={conditional.input_size}, "
                f"param_size={conditional.param_size})"
            )
        conditional.check_event_size(conditioner.event_size)
        self.conditioner = conditioner
        self.conditional = conditional
        self.temperature = 1.0
        self._module_samples = snapshot_pyro_samples(conditioner.network)
        self.context = self._convert_context(conditioner.check_context(context))
        batch_shape = torch.Size() if context is None else context.shape[:-1]
        super().__init__(batch_shape, torch.Size([conditioner.event_size]), validate_args=validate_args)

    # ---- static properties -------------------------------------------------------------

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.conditional.has_rsample

    @property
    def order(self) -> Tensor:
        """The order ``(n,)``: ``order[k]`` is the variable drawn at step ``k``."""
        return self.conditioner.order

    def param_dtype_device(self) -> tuple:
        """The floating dtype and the device of the weights (values and samples follow them)."""
        return module_dtype_device(self.conditioner.network, self._module_samples)

    def _convert_context(self, context: Optional[Tensor]) -> Optional[Tensor]:
        """A context in the weights' dtype and device (values are converted the same way)."""
        if context is None:
            return None
        dtype, device = self.param_dtype_device()
        return context.to(dtype=dtype, device=device)

    def _bound_weights(self):
        """Context in which the conditioner sees the weights this distribution was built with
        (the ``PyroSample`` draws of a Bayesian conditioner; a no-op for plain modules)."""
        return bound_pyro_samples(self.conditioner.network, self._module_samples)

    # ---- derived distributions -----------------------------------------------------------

    def _copy(self, batch_shape: torch.Size, context: Optional[Tensor], _instance=None) -> "Autoregressive":
        new = self._get_checked_instance(Autoregressive, _instance)
        new.conditioner = self.conditioner
        new.conditional = self.conditional
        new.temperature = self.temperature
        new._module_samples = self._module_samples
        new.context = context
        super(Autoregressive, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def expand(self, batch_shape: Sequence[int], _instance=None) -> "Autoregressive":
        batch_shape = torch.Size(batch_shape)
        if any(s < 0 for s in batch_shape):
            raise ValueError(f"expand needs a batch shape of non-negative sizes, got {tuple(batch_shape)}")
        try:
            torch.broadcast_shapes(batch_shape, self.batch_shape)
        except RuntimeError as err:
            raise ValueError(f"cannot expand batch_shape {tuple(self.batch_shape)} to {tuple(batch_shape)}") from err
        context = None if self.context is None else self.context.expand(batch_shape + self.context.shape[-1:])
        return self._copy(batch_shape, context, _instance)

    def select_rows(self, batch_shape: torch.Size, index: Tensor) -> "Autoregressive":
        """The chains of rows ``index`` of this distribution expanded to ``batch_shape`` and
        flattened: batch shape ``(len(index),)`` (how mixtures draw each row from its member)."""
        rows = torch.Size([index.numel()])
        if self.context is None:
            return self._copy(rows, None)
        c = self.context.shape[-1]
        return self._copy(rows, self.context.expand(torch.Size(batch_shape) + (c,)).reshape(-1, c)[index])

    def tempered(self, temperature: float) -> "Autoregressive":
        """The tempered chain: every conditional's logits divided by ``temperature`` (discrete
        heads). Below 1 sharpens, above 1 flattens; ``tempered(a).tempered(b)`` divides by
        ``a b``. Its ``log_prob`` is that of its samples: each conditional is normalized
        after tempering (the joint is not the normalized ``p(x)^(1/T)``)."""
        combined = self.temperature * check_temperature(temperature, self.conditional)
        if not (math.isfinite(combined) and combined > 0):
            raise ValueError(
                f"temperature {temperature!r} on top of {self.temperature!r} gives {combined!r}, not a positive "
                "finite number; temper the original distribution once instead"
            )
        new = self._copy(self.batch_shape, self.context)
        new.temperature = combined
        return new

    def condition(self, observed: Tensor, observed_mask: Tensor) -> "JointDistribution":
        """The distribution of the completions given ``observed`` where ``observed_mask`` is set.

        Exact when, in every row, the observed variables come first in the order (else a
        ``ValueError`` says which variable breaks that). See
        :class:`pyro_ar.distributions.ConditionedAutoregressive`.
        """
        return ConditionedAutoregressive(self, observed, observed_mask)

    # ---- density -----------------------------------------------------------------------

    def variable_log_probs(self, value: Tensor) -> Tensor:
        """``log p(x_i | x_<i)`` of every variable: ``x: (*, n) -> broadcast(*, batch_shape) + (n,)``."""
        self.check_value(value)
        dtype, _ = self.param_dtype_device()
        x = self.conditional.encode(value, dtype)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape) if self.batch_shape else value.shape[:-1]
        with self._bound_weights():
            params = self.conditioner(x, self.context)
        lp = self.conditional.log_prob(params, value, self.temperature)
        return lp.expand(shape + lp.shape[-1:])

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(x)``: ``x: (*, n)`` broadcastable against ``batch_shape`` -> ``(*)``."""
        return self.variable_log_probs(value).sum(-1)

    # ---- sampling ----------------------------------------------------------------------

    def _draw(self, sample_shape: Sequence[int], reparameterized: bool) -> Tensor:
        # One variable (or block of variables) at a time.
        return self.sample_clamped(sample_shape, reparameterized=reparameterized)

    def sample_clamped(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        observed: Optional[Tensor] = None,
        observed_mask: Optional[Tensor] = None,
        reparameterized: bool = False,
    ) -> Tensor:
        """The sampling loop behind ``sample``, ``rsample`` and conditioned sampling.

        Args:
            sample_shape: leading shape of the draws.
            observed, observed_mask: ``(*, n)`` values and a boolean mask, broadcast to the
                output shape; where the mask is set, the variable is clamped to its value
                instead of drawn. (That is exact conditioning only where the observed
                variables come first in the order: :meth:`condition` checks it.)
            reparameterized: draw with the head's ``rsample`` (differentiable through the chain).

        Returns:
            ``sample_shape + batch_shape + (n,)``, of the head's sample dtype.
        """
        shape = self._extended_shape(sample_shape)
        batch = shape[:-1]
        dtype, device = self.param_dtype_device()
        if batch.numel() == 0:
            return self._empty_sample(sample_shape)
        context = None if self.context is None else self.context.expand(batch + self.context.shape[-1:])
        n, order = self.event_size, self.order
        # The head(s) in step order (``self.conditional`` itself unless it has one per variable).
        head = self.conditional.for_variables(order.tolist())
        if observed is not None:  # into step order, like everything below
            observed = observed.expand(shape)[..., order]
            observed_mask = observed_mask.expand(shape)[..., order]
        with self._bound_weights():
            state = self.conditioner.incremental(context, batch)
            if reparameterized:
                draw = lambda k, params: head.for_variables(k).rsample(params)  # noqa: E731
                steps = self._sample_steps(state, head, draw, observed, observed_mask, dtype)
            else:
                # All the randomness up front, in step order: each draw is then a function
                # of its parameters (see Conditional.sample_from_noise).
                noise = head.draw_noise(batch + (n,), dtype, device)
                temperature = self.temperature
                # Fixed-point rounds pay off for discrete values, which stop changing once the
                # steps they depend on are right; continuous ones change until the last round.
                if state.block_size > 1 and head.is_discrete:
                    steps = self._sample_blocks(state, head, noise, temperature, observed, observed_mask, dtype)
                else:
                    noise_k = noise.unbind(-2)
                    draw = lambda k, params: head.for_variables(k).sample_from_noise(params, noise_k[k], temperature)  # noqa: E731
                    steps = self._sample_steps(state, head, draw, observed, observed_mask, dtype)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n, device=order.device)
        return torch.cat(steps, -1)[..., rank]

    def _sample_steps(self, state, head, draw, observed, observed_mask, dtype) -> List[Tensor]:
        """One variable per step, ``draw(step, params) -> value``: ``n`` tensors ``(*, 1)`` in
        step order (``head``: the head(s) in step order). With ``head.rsample`` as ``draw`` it
        is differentiable through the chain."""
        steps = []
        for step in range(self.event_size):
            value = draw(step, state.params(step))
            if observed is not None:
                value = torch.where(observed_mask[..., step], observed[..., step].to(value.dtype), value)
            steps.append(value.unsqueeze(-1))
            state.observe(step, head.for_variables(step).encode_one(value, dtype))
        return steps

    def _sample_blocks(self, state, steps_head, noise, temperature, observed, observed_mask, dtype) -> List[Tensor]:
        """Blocks of ``state.block_size`` steps, each by fixed-point iteration: ``(*, b)`` tensors.

        Round ``t`` recomputes the block's parameters from the previous round's values and
        redraws with the same noise; step ``k`` of the block is exact after ``k + 1`` rounds,
        so at most ``b`` rounds are needed, and a round that changes nothing is exact.
        """
        n, size, blocks = self.event_size, state.block_size, []
        for start in range(0, n, size):
            stop = min(start + size, n)
            head = steps_head.for_variables(range(start, stop))
            noise_b = noise[..., start:stop, :]
            keep = None if observed is None else (observed_mask[..., start:stop], observed[..., start:stop])
            value = None
            encoded = head.encode(torch.zeros(noise_b.shape[:-1], dtype=torch.long, device=noise.device), dtype)
            for _ in range(stop - start):
                new = head.sample_from_noise(state.block_params(start, encoded), noise_b, temperature)
                if keep is not None:
                    new = torch.where(keep[0], keep[1].to(new.dtype), new)
                if value is not None and torch.equal(new, value):
                    break
                value, encoded = new, head.encode(new, dtype)
            state.observe_block(start, encoded)
            blocks.append(value)
        return blocks

    def __repr__(self) -> str:
        extra = "" if self.temperature == 1.0 else f", temperature={self.temperature:g}"
        return (
            f"{type(self).__name__}(conditioner={self.conditioner.network._get_name()}, "
            f"conditional={self.conditional!r}, batch_shape={tuple(self.batch_shape)}, "
            f"event_shape={tuple(self.event_shape)}{extra})"
        )
