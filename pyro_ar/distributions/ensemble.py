r"""``Ensemble``: the exact equal-weight mixture of several AR chains (e.g. MADE's masks).

.. math:: p(x) = \frac1M \sum_{m=1}^{M} p_m(x), \qquad
          \log p(x) = \operatorname{logsumexp}_m \log p_m(x) - \log M,

a mixture of densities, never an average of logits, in the spirit of
``torch.distributions.MixtureSameFamily``: a distribution built from its members, not a
flag threaded through them. Sampling picks each row's member uniformly, then draws the row
from that member; conditioning weights the members by their posterior ``p_m(x_o)``
(:class:`~pyro_ar.distributions.conditioned.ConditionedEnsemble`).
"""

from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor

from pyro_ar.distributions.autoregressive import Autoregressive
from pyro_ar.distributions.base import JointDistribution, draw_by_member
from pyro_ar.distributions.conditioned import ConditionedEnsemble

__all__ = ["Ensemble"]


class Ensemble(JointDistribution):
    """The equal-weight mixture of ``M`` :class:`~pyro_ar.Autoregressive` members.

    ``pyro_ar.MADE(..., num_masks=M)()`` returns one; ``net(mask_index=k)`` is member ``k``.

    Args:
        members: chains with the same head, event shape and batch shape (typically the
            members of one conditioner, ``net.conditioner.member(k)``; any chains work).
        validate_args: as in ``torch.distributions`` (default: the first member's).

    Example:
        >>> import pyro_ar
        >>> d = pyro_ar.MADE(event_size=4, hidden_sizes=[16], num_masks=3)()
        >>> len(d.members), d.sample((2,)).shape
        (3, torch.Size([2, 4]))
    """

    def __init__(self, members: Sequence[Autoregressive], validate_args=None):
        members = list(members)
        if not members or not all(isinstance(m, Autoregressive) for m in members):
            raise ValueError("an Ensemble needs a non-empty list of pyro_ar.Autoregressive members")
        first = members[0]
        for k, m in enumerate(members[1:], start=1):
            if m.conditional != first.conditional or m.event_shape != first.event_shape:
                raise ValueError(
                    f"ensemble member {k} ({m.conditional!r}, event_shape {tuple(m.event_shape)}) does not match "
                    f"member 0 ({first.conditional!r}, event_shape {tuple(first.event_shape)})"
                )
            if m.batch_shape != first.batch_shape:
                raise ValueError(
                    f"ensemble member {k} has batch_shape {tuple(m.batch_shape)}, member 0 {tuple(first.batch_shape)}"
                )
        self.members: List[Autoregressive] = members
        self.conditional = first.conditional
        if validate_args is None:
            validate_args = first._validate_args
        super().__init__(first.batch_shape, first.event_shape, validate_args=validate_args)

    @property
    def num_members(self) -> int:
        return len(self.members)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return all(m.has_rsample for m in self.members)

    def param_dtype_device(self) -> tuple:
        return self.members[0].param_dtype_device()

    def member_log_probs(self, value: Tensor) -> Tensor:
        """``log p_m(x)`` of every member: ``x: (*, n) -> (M,) + broadcast(*, batch_shape)``."""
        self.check_value(value)
        return torch.stack([m.log_prob(value) for m in self.members])

    def log_prob(self, value: Tensor) -> Tensor:
        """``logsumexp_m log p_m(x) - log M``: ``x: (*, n) -> broadcast(*, batch_shape)``."""
        lps = self.member_log_probs(value)
        return torch.logsumexp(lps, 0) - math.log(lps.shape[0])

    def _draw(self, sample_shape: Sequence[int], reparameterized: bool) -> Tensor:
        # Each row from a uniformly chosen member (the choice does not depend on the parameters).
        shape = self._extended_shape(sample_shape)
        full = shape[:-1]
        if full.numel() == 0:
            return self._empty_sample(sample_shape)
        _, device = self.param_dtype_device()
        choice = torch.randint(self.num_members, (full.numel(),), device=device)

        def draw(m: int, index: Tensor) -> Tensor:
            rows = self.members[m].select_rows(full, index)
            return rows.rsample() if reparameterized else rows.sample()

        return draw_by_member(choice, self.num_members, draw).reshape(shape)


    def expand(self, batch_shape: Sequence[int], _instance=None) -> "Ensemble":
        return Ensemble([m.expand(batch_shape) for m in self.members], validate_args=self._validate_args)

    def tempered(self, temperature: float) -> "Ensemble":
        """The mixture of the tempered members (the weights stay equal)."""
        return Ensemble([m.tempered(temperature) for m in self.members], validate_args=self._validate_args)

    def condition(self, observed: Tensor, observed_mask: Tensor, admissible_only: bool = False) -> ConditionedEnsemble:
        """The completions given the observed variables: a mixture of the members' completions
        with posterior weights. Exact when every member puts the observed variables first in
        its order (else ``ValueError``), or, with ``admissible_only=True``, the conditional of
        the per-row mixture of only the members that do."""
        return ConditionedEnsemble(self.members, observed, observed_mask, admissible_only=admissible_only)

    def __repr__(self) -> str:
        return (
            f"Ensemble(num_members={self.num_members}, member={type(self.members[0]).__name__}, "
            f"conditional={self.conditional!r}, batch_shape={tuple(self.batch_shape)}, "
            f"event_shape={tuple(self.event_shape)})"
        )
