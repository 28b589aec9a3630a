"""``Autoregressive``: the one distribution class behind every pyro_ar model."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from pyro.distributions import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from pyro_ar.conditionals import Conditional
from pyro_ar.distributions.module_samples import bound_pyro_samples, module_dtype_device, snapshot_pyro_samples
from pyro_ar.nn.base import Conditioner

__all__ = ["Autoregressive"]


class Autoregressive(TorchDistribution):
    r"""A joint distribution over ``n`` variables, factorized by the chain rule.

    .. math:: p(x \mid \text{context}) = \prod_{k=1}^{n} p(x_{σ_k} \mid x_{σ_{<k}}, \text{context})

    where σ is the conditioner's order and each factor is the ``conditional`` head with
    parameters computed by the ``conditioner`` network. A conditioner with ``M > 1``
    members (masks/orders) gives their exact equal-weight mixture,
    ``log p(x) = logsumexp_m log p_m(x) - log M``, unless ``mask_index`` picks one.

    This class owns, once for all models: shapes and broadcasting, validation, ``expand``,
    the sequential sampling loop (over incremental conditioner state), the ensemble
    mixture, and enumeration (``enumerate_support``, exact ``entropy``) for small discrete
    models.

    Shapes: ``batch_shape`` is the context's leading shape (``()`` without context);
    ``event_shape`` is ``(n,)``. ``log_prob(x)`` takes ``x: (*, n)`` broadcastable against
    ``batch_shape`` and returns ``(*)`` in one vectorized pass.

    Args:
        conditioner: a :class:`pyro_ar.nn.Conditioner` (FVSBN, NADE, MADE, ...).
        conditional: the head, e.g. :class:`pyro_ar.conditionals.Bernoulli`; its
            ``input_size`` and ``param_size`` must match the conditioner's.
        context: ``(*batch, c)`` or ``None``.
        mask_index: ``None`` for the mixture of all members, or one member's index.
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

    arg_constraints = {}
    #: Largest number of joint configurations that enumeration will build.
    max_enumeration_size = 2**16

    def __init__(
        self,
        conditioner: Conditioner,
        conditional: Conditional,
        context: Optional[Tensor] = None,
        mask_index: Optional[int] = None,
        validate_args: Optional[bool] = None,
    ):
        if not isinstance(conditioner, Conditioner):
            raise TypeError(f"conditioner must be a pyro_ar.nn.Conditioner, got {type(conditioner).__name__}")
        if not isinstance(conditional, Conditional):
            raise TypeError(f"conditional must be a pyro_ar.conditionals.Conditional, got {type(conditional).__name__}")
        if conditioner.input_size != conditional.input_size or conditioner.param_size != conditional.param_size:
            raise ValueError(
                f"conditioner (input_size={conditioner.input_size}, param_size={conditioner.param_size}) does not "
                f"match conditional {conditional!r} (input_size={conditional.input_size}, "
                f"param_size={conditional.param_size})"
            )
        if mask_index is not None:
            m = conditioner.num_members
            if isinstance(mask_index, bool) or not isinstance(mask_index, int) or not 0 <= mask_index < m:
                raise ValueError(f"mask_index must be None or an int in [0, {m - 1}], got {mask_index!r}")
        self.conditioner = conditioner
        self.conditional = conditional
        self.context = conditioner.check_context(context)
        self.mask_index = mask_index
        self._module_samples = snapshot_pyro_samples(conditioner)
        batch_shape = torch.Size() if context is None else context.shape[:-1]
        super().__init__(batch_shape, torch.Size([conditioner.event_size]), validate_args=validate_args)

    # ---- static properties -------------------------------------------------------------

    @property
    def support(self) -> constraints.Constraint:
        return constraints.independent(self.conditional.support, 1)

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.conditional.is_discrete

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.conditional.has_rsample

    @property
    def event_size(self) -> int:
        return self.conditioner.event_size

    @property
    def members(self) -> List[int]:
        """The member indices this distribution mixes (one when ``mask_index`` is set)."""
        if self.mask_index is not None:
            return [self.mask_index]
        return list(range(self.conditioner.num_members))

    @property
    def order(self) -> Tensor:
        """The order ``(n,)`` of the (single) member this distribution samples from."""
        if len(self.members) != 1:
            raise ValueError("an ensemble of several orders has no single order; pick one with mask_index")
        return self.conditioner.orders[self.members[0]]

    def _param_dtype_device(self) -> tuple:
        return module_dtype_device(self.conditioner, self._module_samples)

    def _bound_weights(self):
        """Context in which the conditioner sees the weights this distribution was built with
        (the ``PyroSample`` draws of a Bayesian conditioner; a no-op for plain modules)."""
        return bound_pyro_samples(self.conditioner, self._module_samples)

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

    # ---- expand ------------------------------------------------------------------------

    def expand(self, batch_shape: Sequence[int], _instance=None) -> "Autoregressive":
        new = self._get_checked_instance(Autoregressive, _instance)
        batch_shape = torch.Size(batch_shape)
        new.conditioner = self.conditioner
        new.conditional = self.conditional
        new.mask_index = self.mask_index
        new._module_samples = self._module_samples
        if self.context is None:
            new.context = None
        else:
            new.context = self.context.expand(batch_shape + self.context.shape[-1:])
        super(Autoregressive, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # ---- validation --------------------------------------------------------------------

    def _validate_sample(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise ValueError(f"value must be a torch.Tensor, got {type(value).__name__}")
        self.conditional.check_value(value)
        try:
            super()._validate_sample(value)
        except ValueError as err:
            # NaN is outside every support; name it (looked for only on this failure path, so
            # valid values pay for one pass over them, the support check).
            if value.is_floating_point() and bool(torch.isnan(value).any()):
                raise ValueError("value contains NaN") from err
            raise

    def _check_event_shape(self, value: Tensor) -> None:
        # Cheap and always on: a wrong event size would otherwise fail deep inside a matmul.
        if not isinstance(value, Tensor):
            raise ValueError(f"value must be a torch.Tensor, got {type(value).__name__}")
        if value.dim() == 0 or value.shape[-1] != self.event_size:
            raise ValueError(
                f"value must have shape (*, {self.event_size}) to match event_shape {tuple(self.event_shape)}, "
                f"got shape {tuple(value.shape)}"
            )
        try:
            torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        except RuntimeError as err:
            raise ValueError(
                f"value of shape {tuple(value.shape)} does not broadcast against batch_shape {tuple(self.batch_shape)}"
            ) from err

    # ---- density -----------------------------------------------------------------------

    def member_log_probs(self, value: Tensor) -> Tensor:
        """``log p_m(x)`` for each member mixed here: ``x: (*, n) -> (M, *)``."""
        self._check_event_shape(value)
        if self._validate_args:
            self._validate_sample(value)
        dtype, _ = self._param_dtype_device()
        x = self.conditional.encode(value, dtype)
        shape = torch.broadcast_shapes(value.shape[:-1], self.batch_shape)
        lps = []
        with self._bound_weights():
            for m in self.members:
                params = self.conditioner(x, self.context, member=m)
                lps.append(self.conditional.log_prob(params, value).sum(-1).expand(shape))
        return torch.stack(lps)

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(x)``: ``x: (*, n)`` broadcastable against ``batch_shape`` -> ``(*)``."""
        lps = self.member_log_probs(value)
        if lps.shape[0] == 1:
            return lps[0]
        return torch.logsumexp(lps, 0) - math.log(lps.shape[0])

    # ---- sampling ----------------------------------------------------------------------

    def sample(self, sample_shape: Sequence[int] = torch.Size(), temperature: float = 1.0) -> Tensor:
        """Draw ``sample_shape + batch_shape + (n,)`` values, one variable at a time.

        ``temperature`` (discrete heads only) divides every conditional's logits: below 1
        sharpens, above 1 flattens; 1 is the model itself.
        """
        with torch.no_grad():
            return self._sample(sample_shape, temperature=temperature)

    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """A reparameterized sample (mixture-of-Gaussians heads), differentiable in the parameters."""
        if not self.has_rsample:
            raise NotImplementedError(f"{self.conditional!r} conditionals have no reparameterized sampler")
        return self._sample(sample_shape, reparameterized=True)

    def _sample(
        self,
        sample_shape: Sequence[int] = torch.Size(),
        temperature: float = 1.0,
        observed: Optional[Tensor] = None,
        observed_mask: Optional[Tensor] = None,
        reparameterized: bool = False,
        members: Optional[Sequence[int]] = None,
    ) -> Tensor:
        """The sampling loop shared by ``sample``, ``rsample`` and conditional sampling.

        Args:
            observed, observed_mask: ``(*, n)`` values and a boolean mask, broadcast to the
                output shape; where the mask is set, the variable is clamped to its value
                instead of drawn (exact conditioning only when observed variables come first
                in the order: callers check that).
            members: the members a row may be drawn from (default: all mixed here).
        """
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        shape = self._extended_shape(sample_shape)
        batch = shape[:-1]
        context = None if self.context is None else self.context.expand(batch + self.context.shape[-1:])
        if observed is not None:
            observed = observed.expand(shape)
            observed_mask = observed_mask.expand(shape)
        members = list(self.members if members is None else members)
        if len(members) == 1:
            return self._sample_member(members[0], batch, context, temperature, observed, observed_mask, reparameterized)

        # An ensemble: each row picks its member uniformly, then rows are drawn member by member.
        rows = batch.numel()
        _, device = self._param_dtype_device()
        choice = torch.randint(len(members), (rows,), device=device)
        flat = lambda t, k: None if t is None else t.reshape(rows, t.shape[-1])[k]  # noqa: E731
        parts, picked = [], []
        for j, m in enumerate(members):
            idx = (choice == j).nonzero().squeeze(-1)
            if idx.numel() == 0:
                continue
            parts.append(
                self._sample_member(
                    m,
                    torch.Size([idx.numel()]),
                    flat(context, idx),
                    temperature,
                    flat(observed, idx),
                    flat(observed_mask, idx),
                    reparameterized,
                )
            )
            picked.append(idx)
        x = torch.cat(parts)[torch.argsort(torch.cat(picked))]
        return x.reshape(shape)

    def _sample_member(
        self,
        member: int,
        batch: torch.Size,
        context: Optional[Tensor],
        temperature: float,
        observed: Optional[Tensor],
        observed_mask: Optional[Tensor],
        reparameterized: bool,
    ) -> Tensor:
        """Draw ``batch + (n,)`` values from one member, in its order; returns variable order."""
        dtype, device = self._param_dtype_device()
        head, n = self.conditional, self.event_size
        order = self.conditioner.orders[member]
        if observed is not None:  # into step order, like everything below
            observed, observed_mask = observed[..., order], observed_mask[..., order]
        with self._bound_weights():
            state = self.conditioner.incremental(context, batch, member)
            if reparameterized:
                draw = lambda k, params: head.rsample(params)  # noqa: E731
                steps = self._sample_steps(state, draw, observed, observed_mask, dtype)
            else:
                # All the randomness up front, in step order: each draw is then a function
                # of its parameters (see Conditional.sample_from_noise).
                noise = head.draw_noise(batch + (n,), dtype, device)
                # Fixed-point rounds pay off for discrete values, which stop changing once the
                # steps they depend on are right; continuous ones change until the last round.
                if state.block_size > 1 and head.is_discrete:
                    steps = self._sample_blocks(state, noise, temperature, observed, observed_mask, dtype)
                else:
                    noise_k = noise.unbind(-2)
                    draw = lambda k, params: head.sample_from_noise(params, noise_k[k], temperature)  # noqa: E731
                    steps = self._sample_steps(state, draw, observed, observed_mask, dtype)
        rank = torch.empty_like(order)
        rank[order] = torch.arange(n, device=order.device)
        return torch.cat(steps, -1)[..., rank]

    def _sample_steps(self, state, draw, observed, observed_mask, dtype) -> List[Tensor]:
        """One variable per step, ``draw(step, params) -> value``: ``n`` tensors ``(*, 1)`` in
        step order. With ``head.rsample`` as ``draw`` it is differentiable through the chain."""
        head, steps = self.conditional, []
        for step in range(self.event_size):
            value = draw(step, state.params(step))
            if observed is not None:
                value = torch.where(observed_mask[..., step], observed[..., step].to(value.dtype), value)
            steps.append(value.unsqueeze(-1))
            state.observe(step, head.encode_one(value, dtype))
        return steps

    def _sample_blocks(self, state, noise, temperature, observed, observed_mask, dtype) -> List[Tensor]:
        """Blocks of ``state.block_size`` steps, each by fixed-point iteration: ``(*, b)`` tensors.

        Round ``t`` recomputes the block's parameters from the previous round's values and
        redraws with the same noise; step ``k`` of the block is exact after ``k + 1`` rounds,
        so at most ``b`` rounds are needed, and a round that changes nothing is exact.
        """
        head, n, size, blocks = self.conditional, self.event_size, state.block_size, []
        for start in range(0, n, size):
            stop = min(start + size, n)
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

    # ---- conditioning (the logic lives in pyro_ar.inpainting) -----------------------------

    def conditional_sample(
        self,
        observed: Tensor,
        observed_mask: Tensor,
        sample_shape: Sequence[int] = torch.Size(),
        temperature: float = 1.0,
        *,
        admissible_only: bool = False,
    ) -> Tensor:
        """Inpainting: draws of the unobserved variables from ``p(x_u | x_o)``, observed kept.

        ``observed, observed_mask: (*, n)`` (mask boolean, ``True`` = observed) ->
        ``sample_shape + broadcast(*, batch_shape) + (n,)``. Exact: raises ``ValueError``
        unless the observed variables come first in the order (for an ensemble, in every
        member's order; ``admissible_only=True`` mixes only the members that admit each
        row). See :func:`pyro_ar.inpainting.conditional_sample`.
        """
        from pyro_ar.inpainting import conditional_sample

        return conditional_sample(
            self, observed, observed_mask, sample_shape, temperature, admissible_only=admissible_only
        )

    def marginal_log_prob(self, observed: Tensor, observed_mask: Tensor, *, admissible_only: bool = False) -> Tensor:
        """The exact marginal ``log p(x_o)`` of an observed prefix: ``(*, n) -> broadcast(*, batch_shape)``.

        Raises ``ValueError`` where the observed variables do not come first in the order.
        See :func:`pyro_ar.inpainting.marginal_log_prob`.
        """
        from pyro_ar.inpainting import marginal_log_prob

        return marginal_log_prob(self, observed, observed_mask, admissible_only=admissible_only)

    # ---- enumeration -------------------------------------------------------------------

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """Every joint value, ``(K^n,) + batch_shape + (n,)`` (``(K^n,) + (1,)*len(batch_shape) + (n,)``
        without ``expand``), for discrete heads with ``K^n <= max_enumeration_size``."""
        if not self.conditional.is_discrete:
            raise NotImplementedError(f"{self.conditional!r} conditionals are continuous: no enumerable support")
        dtype, device = self._param_dtype_device()
        values = self.conditional.enumerate_values(device, dtype)
        k, n = values.numel(), self.event_size
        if k**n > self.max_enumeration_size:
            raise ValueError(
                f"enumeration needs K^n = {k}^{n} = {k**n} joint values, more than "
                f"max_enumeration_size={self.max_enumeration_size}; use Monte-Carlo estimates instead"
            )
        index = torch.arange(k**n, device=device).unsqueeze(-1)
        powers = k ** torch.arange(n - 1, -1, -1, device=device)
        joint = values[(index // powers) % k].to(self.conditional.sample_dtype(dtype))  # (K^n, n)
        joint = joint.reshape((k**n,) + (1,) * len(self.batch_shape) + (n,))
        if expand:
            joint = joint.expand((k**n,) + self.batch_shape + (n,))
        return joint

    def entropy(self) -> Tensor:
        """Exact entropy ``-sum_x p(x) log p(x)`` by enumeration, ``batch_shape``."""
        if not self.conditional.is_discrete:
            raise NotImplementedError(
                "the entropy of a continuous AR model has no closed form; estimate it by Monte Carlo "
                "as -d.log_prob(d.sample((N,))).mean(0)"
            )
        lp = self.log_prob(self.enumerate_support(expand=False))
        return -(lp.exp() * lp).sum(0)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(conditioner={type(self.conditioner).__name__}, "
            f"conditional={self.conditional!r}, batch_shape={tuple(self.batch_shape)}, "
            f"event_shape={tuple(self.event_shape)}"
            + ("" if self.mask_index is None else f", mask_index={self.mask_index}")
            + ")"
        )
