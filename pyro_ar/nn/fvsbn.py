"""FVSBN: the fully visible sigmoid belief network, one linear map per variable."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, OrderSpec, make_order

__all__ = ["FVSBN"]


class FVSBN(Conditioner):
    r"""Fully visible sigmoid belief network (Frey, 1998), generalized to any head.

    The parameters of variable ``i`` are a linear function of the earlier ones:

    .. math:: \theta_i = b_i + \sum_{j <_\sigma i} A_{ij}\, e(x_j) + C_i\, \text{context}

    where ``e`` is the head's encoding and ``<_σ`` is "earlier in the order". With a
    Bernoulli head, ``p(x_i = 1 | x_<i) = sigmoid(θ_i)``: logistic regression on the past.
    ``O(n^2)`` parameters; log_prob is one masked matmul, and sampling keeps a running
    linear term, adding one column per drawn variable (about one pass of arithmetic).

    Args:
        event_size: ``n``.
        input_size: features per variable fed back (1, or K for one-hot).
        param_size: parameters per variable.
        context_size: ``c`` or ``None``.
        order: ``None`` (identity), ``"random"``, ``"reverse"`` or a permutation.
        seed: seed of a random order.
        initial_bias: ``(P,)`` starting output bias.

    Example:
        >>> net = FVSBN(event_size=4, input_size=1, param_size=1)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(
        self,
        event_size: int,
        input_size: int = 1,
        param_size: int = 1,
        context_size: Optional[int] = None,
        order: OrderSpec = None,
        seed: Optional[int] = None,
        initial_bias: Optional[Tensor] = None,
    ):
        super().__init__(event_size, input_size, param_size, context_size, initial_bias)
        n, i_size, p_size = self.event_size, self.input_size, self.param_size
        order_ = make_order(order, n, seed)
        self.register_buffer("orders", order_.unsqueeze(0))
        rank = torch.empty_like(order_)
        rank[order_] = torch.arange(n)
        allowed = rank.unsqueeze(1) > rank.unsqueeze(0)  # allowed[i, j]: j is before i
        mask = allowed.repeat_interleave(p_size, 0).repeat_interleave(i_size, 1)
        self.register_buffer("mask", mask.float())
        bound = (n * i_size) ** -0.5
        self.weight = nn.Parameter(torch.empty(n * p_size, n * i_size).uniform_(-bound, bound))

    def masked_weight(self) -> Tensor:
        """``(n P, n I)``: the weight with every not-yet-seen input zeroed."""
        return self.weight * self.mask.to(self.weight.dtype)

    def forward(self, x: Tensor, context: Optional[Tensor] = None, member: int = 0) -> Tensor:
        linear = (x.flatten(-2) @ self.masked_weight().mT).unflatten(-1, (self.event_size, self.param_size))
        return linear + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size, member: int = 0) -> IncrementalState:
        return _FVSBNState(self, context, batch_shape)


class _FVSBNState(IncrementalState):
    """Running parameters of every variable; each drawn value adds its own column."""

    def __init__(self, net: FVSBN, context: Optional[Tensor], batch_shape: torch.Size):
        self.net = net
        self.order = net.orders[0].tolist()
        self.weight = net.masked_weight().unflatten(1, (net.event_size, net.input_size))  # (nP, n, I)
        offset = net.output_offset(context)
        self.acc = offset.expand(*batch_shape, net.event_size, net.param_size).flatten(-2).clone()

    def params(self, step: int) -> Tensor:
        p = self.net.param_size
        i = self.order[step]
        return self.acc[..., i * p : (i + 1) * p]

    def observe(self, step: int, value: Tensor) -> None:
        self.acc = self.acc + value @ self.weight[:, self.order[step]].T
