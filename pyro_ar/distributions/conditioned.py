r"""Conditioning AR distributions on a partial observation: distributions over the completions.

Given values ``observed: (*, n)`` and a boolean ``observed_mask: (*, n)`` (``True`` where a
variable is observed), a chain conditions *exactly* when, in its order σ, every observed
variable comes before every unobserved one (the observed set is a prefix of σ). Then

.. math::

    \log p(x_o) = \sum_{k=1}^{|o|} \log p(x_{σ_k} \mid x_{σ_{<k}}), \qquad
    p(x_u \mid x_o) = \prod_{k > |o|} p(x_{σ_k} \mid x_{σ_{<k}}),

so the marginal is one forward pass (the parameters of prefix variables depend on the
prefix only) and the conditional is the ordinary sampling loop with the prefix clamped.
For any other pattern, ``p(x_o)`` would need a sum over the unobserved variables that
precede observed ones, which is refused with a ``ValueError`` rather than approximated.

An ensemble of ``M`` chains, ``p(x) = (1/M) sum_m p_m(x)``, conditions to a mixture with
*posterior* member weights,

.. math::

    p(x_u \mid x_o) = \sum_m w_m(x_o)\, p_m(x_u \mid x_o), \qquad w_m(x_o) \propto p_m(x_o),

exact only when every member admits the pattern; otherwise ``ValueError``, unless
``admissible_only=True``: then each row uses the mixture of only the members that admit
its pattern (an exact conditional of that sub-mixture, a different distribution).

The mask may differ from row to row; every row is checked. Values at unobserved positions
are ignored (they may even be NaN). Like Pyro's ``GaussianHMM.prefix_condition``, the
result is a distribution: ``sample`` gives full vectors with the observed values in place,
``log_prob(x)`` is ``log p(x_u | x_o)`` (``-inf`` where ``x`` disagrees with an observed
value), and ``observed_log_prob`` is the exact marginal ``log p(x_o)``, ``(*B)``.

Example:
    >>> import torch, pyro_ar
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> d = pyro_ar.NADE(event_size=4, hidden_size=8, order="reverse")()
    >>> x = torch.tensor([0.0, 0.0, 1.0, 1.0])
    >>> mask = torch.tensor([False, False, True, True])  # x_3, x_2 come first in the order
    >>> completions = d.condition(x, mask)
    >>> completions.sample((5,)).shape, completions.observed_log_prob.shape
    (torch.Size([5, 4]), torch.Size([]))
"""

from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import torch
from torch import Tensor
from torch.distributions.utils import lazy_property

from pyro_ar.distributions.base import JointDistribution, draw_by_member

__all__ = [
    "observed_first",
    "check_observation",
    "ConditionedAutoregressive",
    "ConditionedEnsemble",
]


def observed_first(order: Tensor, observed_mask: Tensor) -> Tensor:
    """Whether, in ``order``, every observed variable precedes every unobserved one.

    Args:
        order: a permutation ``(n,)``: ``order[k]`` is the variable drawn at step ``k``.
        observed_mask: boolean ``(*, n)``.

    Returns:
        boolean ``(*)``: ``True`` for the rows that condition exactly under ``order``.
    """
    in_order = observed_mask[..., order.to(observed_mask.device)]
    # A row fails iff an unobserved step is directly followed by an observed one somewhere.
    return ~(~in_order[..., :-1] & in_order[..., 1:]).any(-1)


def check_mask(d: JointDistribution, observed_mask: Tensor) -> Tensor:
    """``observed_mask`` if it is a boolean ``(*, n)`` tensor, else ``ValueError``."""
    if not isinstance(observed_mask, Tensor):
        raise ValueError(f"observed_mask must be a boolean torch.Tensor, got {type(observed_mask).__name__}")
    if observed_mask.dtype != torch.bool:
        raise ValueError(f"observed_mask must have dtype torch.bool (True = observed), got {observed_mask.dtype}")
    n = d.event_size
    if observed_mask.dim() == 0 or observed_mask.shape[-1] != n:
        raise ValueError(f"observed_mask must have shape (*, {n}), got shape {tuple(observed_mask.shape)}")
    return observed_mask


def check_observation(d: JointDistribution, observed: Tensor, observed_mask: Tensor) -> Tuple[Tensor, Tensor, torch.Size]:
    """Validate; return ``(observed with unobserved entries zeroed, mask, batch shape B)``,
    both tensors expanded to ``B + (n,)`` on the weights' device."""
    mask = check_mask(d, observed_mask)
    if not isinstance(observed, Tensor):
        raise ValueError(f"observed must be a torch.Tensor, got {type(observed).__name__}")
    n = d.event_size
    if observed.dim() == 0 or observed.shape[-1] != n:
        raise ValueError(f"observed must have shape (*, {n}), got shape {tuple(observed.shape)}")
    try:
        batch = torch.broadcast_shapes(observed.shape[:-1], mask.shape[:-1], d.batch_shape)
    except RuntimeError as err:
        raise ValueError(
            f"observed {tuple(observed.shape)}, observed_mask {tuple(mask.shape)} and batch_shape "
            f"{tuple(d.batch_shape)} do not broadcast"
        ) from err
    _, device = d.param_dtype_device()
    observed, mask = observed.to(device), mask.to(device)
    # Unobserved entries are placeholders (maybe NaN): zero is a valid value for every head,
    # and by the AR property it cannot reach the conditionals of the observed prefix.
    filled = torch.where(mask, observed, torch.zeros((), dtype=observed.dtype, device=device))
    try:
        d.conditional.check_value(filled)
        d.check_value(filled)  # the support too, with validate_args
    except ValueError as err:
        raise ValueError(f"observed values (where observed_mask is True) are invalid: {err}") from err
    shape = batch + (n,)
    return filled.expand(shape), mask.expand(shape), batch


def _explain(order: Tensor, mask_row: Tensor) -> str:
    """Say which unobserved variable precedes which observed one in ``order``."""
    steps = mask_row[order.to(mask_row.device)].tolist()
    first_gap = steps.index(False)
    late = steps.index(True, first_gap)
    o = order.tolist()
    shown = f" {o}" if len(o) <= 16 else ""
    return f"variable {o[first_gap]} is unobserved but comes before observed variable {o[late]} in the order{shown}"


def _first_failing_row(admits: Tensor) -> int:
    return int((~admits.reshape(-1)).nonzero()[0])


class ConditionedAutoregressive(JointDistribution):
    """The completions of one chain given an observed prefix of its order (module docstring).

    Built by :meth:`pyro_ar.Autoregressive.condition`. ``batch_shape`` is
    ``B = broadcast(observed.shape[:-1], observed_mask.shape[:-1], base.batch_shape)``.

    Attributes:
        base: the chain, expanded to ``B``.
        observed, observed_mask: ``B + (n,)``.
        observed_log_prob: the exact marginal ``log p(x_o)``, ``B``.
    """

    def __init__(self, base, observed: Tensor, observed_mask: Tensor, *, _check_order: bool = True):
        filled, mask, batch = check_observation(base, observed, observed_mask)
        admits = observed_first(base.order, mask)
        if _check_order and not bool(admits.all()):
            row = _first_failing_row(admits)
            raise ValueError(
                "cannot condition exactly: the observed variables must come first in the model's order, "
                f"but in row {row} {_explain(base.order, mask.reshape(-1, mask.shape[-1])[row])}. Build the "
                "model with an order that puts the observed variables first (order=...), or use an "
                "order-agnostic MADE (num_masks > 1), whose members have other orders"
            )
        self.base = base if batch == base.batch_shape else base.expand(batch)
        self.conditional = base.conditional
        self.observed, self.observed_mask, self.admits = filled, mask, admits
        super().__init__(batch, self.base.event_shape, validate_args=False)
        self._validate_args = base._validate_args

    @lazy_property
    def observed_log_prob(self) -> Tensor:
        """The exact marginal ``log p(x_o)``, ``B`` (computed when first asked for: sampling
        needs no extra pass)."""
        lp = self.base.variable_log_probs(self.observed)
        return torch.where(self.observed_mask, lp, torch.zeros((), dtype=lp.dtype, device=lp.device)).sum(-1)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return self.base.has_rsample

    def param_dtype_device(self) -> tuple:
        return self.base.param_dtype_device()

    def log_prob(self, value: Tensor) -> Tensor:
        """``log p(x_u | x_o)``: ``x: (*, n) -> broadcast(*, B)``; ``-inf`` where ``x`` differs
        from an observed value."""
        self.check_value(value)
        x = torch.where(self.observed_mask, self.observed.to(value.dtype), value)
        lp = self.base.variable_log_probs(x)
        zero = torch.zeros((), dtype=lp.dtype, device=lp.device)
        out = torch.where(self.observed_mask, zero, lp).sum(-1)
        differs = (self.observed_mask & (value != self.observed.to(value.dtype))).any(-1)
        return torch.where(differs, torch.full((), -math.inf, dtype=lp.dtype, device=lp.device), out)

    def _draw(self, sample_shape: Sequence[int], reparameterized: bool) -> Tensor:
        # The chain's loop with the observed values clamped.
        return self.base.sample_clamped(sample_shape, self.observed, self.observed_mask, reparameterized=reparameterized)

    def expand(self, batch_shape: Sequence[int], _instance=None) -> "ConditionedAutoregressive":
        batch_shape = torch.Size(batch_shape)
        n = self.event_size
        return ConditionedAutoregressive(
            self.base.expand(batch_shape), self.observed.expand(batch_shape + (n,)),
            self.observed_mask.expand(batch_shape + (n,)), _check_order=False,
        )

    def tempered(self, temperature: float) -> "ConditionedAutoregressive":
        """The completions under the tempered chain (the observed part keeps its values)."""
        return ConditionedAutoregressive(
            self.base.tempered(temperature), self.observed, self.observed_mask, _check_order=False
        )

    def condition(self, observed: Tensor, observed_mask: Tensor) -> "ConditionedAutoregressive":
        """Condition on more variables: the base chain given both observations."""
        mask = check_mask(self, observed_mask)
        both = torch.where(self.observed_mask, self.observed.to(observed.dtype), observed)
        return self.base.condition(both, self.observed_mask | mask.to(self.observed_mask.device))

    def sample_rows(self, index: Tensor, reparameterized: bool = False) -> Tensor:
        """Completions of the rows ``index`` of the flattened batch: ``(len(index), n)``."""
        n, batch = self.event_size, self.batch_shape
        rows = self.base.select_rows(batch, index)
        observed = self.observed.reshape(-1, n)[index]
        mask = self.observed_mask.reshape(-1, n)[index]
        return rows.sample_clamped((), observed, mask, reparameterized=reparameterized)


class ConditionedEnsemble(JointDistribution):
    """The completions of an ensemble: a mixture of its members' completions with posterior
    weights ``w_m ∝ p_m(x_o)`` (module docstring). Built by
    :meth:`pyro_ar.distributions.Ensemble.condition`.

    Attributes:
        components: each member's :class:`ConditionedAutoregressive`.
        log_weights: ``B + (M,)`` normalized log posterior weights (``-inf`` for members
            that do not admit a row, with ``admissible_only=True``).
        observed_log_prob: the exact marginal ``log p(x_o)``, ``B``.
    """

    def __init__(self, members: List, observed: Tensor, observed_mask: Tensor, admissible_only: bool = False):
        components = [ConditionedAutoregressive(m, observed, observed_mask, _check_order=False) for m in members]
        admits = torch.stack([c.admits for c in components], -1)  # B + (M,)
        flat = admits.reshape(-1, len(members))
        if admissible_only:
            none = ~flat.any(-1)
            if bool(none.any()):
                row = int(none.nonzero()[0])
                raise ValueError(
                    "cannot condition exactly: no member of the ensemble puts the observed variables "
                    f"of row {row} first in its order, so not even admissible_only=True can condition that row"
                )
        else:
            bad = [m for m, ok in enumerate(flat.all(0).tolist()) if not ok]
            if bad:
                good = [m for m in range(len(members)) if m not in bad]
                row = _first_failing_row(flat[:, bad[0]])
                mask_row = components[0].observed_mask.reshape(flat.shape[0], -1)[row]
                hint = (
                    f"members {good} do put the observed variables first: select one with mask_index=..., or "
                    if good
                    else "no member puts the observed variables first in every row; use a model whose order "
                    "does (order=...), or "
                )
                raise ValueError(
                    f"cannot condition the {len(members)}-member ensemble exactly: it needs every member to "
                    f"put the observed variables first, but members {bad} do not (member {bad[0]}, row {row}: "
                    f"{_explain(members[bad[0]].order, mask_row)}). Options: {hint}pass admissible_only=True "
                    "to condition, per row, the mixture of only the members that admit the pattern (a "
                    "different distribution from the full ensemble)"
                )
        marginals = torch.stack([c.observed_log_prob for c in components], -1)
        marginals = marginals.masked_fill(~admits, -math.inf)
        count = admits.sum(-1).to(marginals.dtype)
        self.components = components
        self.admissible_only = admissible_only
        self.log_weights = marginals - torch.logsumexp(marginals, -1, keepdim=True)
        self.observed_log_prob = torch.logsumexp(marginals, -1) - count.log()
        self.conditional = components[0].conditional
        super().__init__(components[0].batch_shape, components[0].event_shape, validate_args=False)
        self._validate_args = components[0]._validate_args

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return all(c.has_rsample for c in self.components)

    def param_dtype_device(self) -> tuple:
        return self.components[0].param_dtype_device()

    def _with(self, components: List[ConditionedAutoregressive], log_weights: Tensor, observed_lp: Tensor):
        new = self._get_checked_instance(ConditionedEnsemble, None)
        new.components, new.log_weights, new.observed_log_prob = components, log_weights, observed_lp
        new.admissible_only = self.admissible_only
        new.conditional = self.conditional
        JointDistribution.__init__(new, components[0].batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: Tensor) -> Tensor:
        """``log sum_m w_m(x_o) p_m(x_u | x_o)``: ``x: (*, n) -> broadcast(*, B)``."""
        self.check_value(value)
        lps = torch.stack([c.log_prob(value) for c in self.components], -1)
        return torch.logsumexp(self.log_weights + lps, -1)

    def _draw(self, sample_shape: Sequence[int], reparameterized: bool) -> Tensor:
        # Each row draws its member from the posterior weights, then that member's completion.
        full = torch.Size(sample_shape) + self.batch_shape
        n = self.event_size
        if full.numel() == 0:
            return self._empty_sample(sample_shape)
        choice = torch.distributions.Categorical(logits=self.log_weights).sample(torch.Size(sample_shape))
        expanded = [c.expand(full) for c in self.components]
        x = draw_by_member(
            choice.reshape(-1), len(expanded), lambda m, index: expanded[m].sample_rows(index, reparameterized)
        )
        return x.reshape(full + (n,))


    def expand(self, batch_shape: Sequence[int], _instance=None) -> "ConditionedEnsemble":
        batch_shape = torch.Size(batch_shape)
        return self._with(
            [c.expand(batch_shape) for c in self.components],
            self.log_weights.expand(batch_shape + self.log_weights.shape[-1:]),
            self.observed_log_prob.expand(batch_shape),
        )

    def condition(self, observed: Tensor, observed_mask: Tensor) -> "ConditionedEnsemble":
        """Condition on more variables: the members given both observations, reweighted by
        their posterior (computed from the members as they are, tempered or not)."""
        mask = check_mask(self, observed_mask)
        first = self.components[0]
        both = torch.where(first.observed_mask, first.observed.to(observed.dtype), observed)
        return ConditionedEnsemble(
            [c.base for c in self.components], both, first.observed_mask | mask.to(first.observed_mask.device),
            admissible_only=self.admissible_only,
        )

    def tempered(self, temperature: float) -> "ConditionedEnsemble":
        """Tempered members' completions; the posterior weights stay the model's."""
        return self._with([c.tempered(temperature) for c in self.components], self.log_weights, self.observed_log_prob)
