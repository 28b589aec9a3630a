"""FVSBN: the fully visible sigmoid belief network, one linear map per variable."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, LinearBlockState
from pyro_ar.registry import register_conditioner

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
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size``, ``order``, ``seed``, ``initial_bias``.

    Example:
        >>> net = FVSBN(event_size=4, input_size=1, param_size=1)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(self, event_size: int, **common: Any):
        super().__init__(event_size, **common)
        n, i_size, p_size = self.event_size, self.input_size, self.param_size
        # The mask is as large as the weight: built on the default device (meta when measured).
        order_ = self.order.to(torch.get_default_device())
        rank = torch.empty_like(order_)
        rank[order_] = torch.arange(n, device=order_.device)
        allowed = rank.unsqueeze(1) > rank.unsqueeze(0)  # allowed[i, j]: j is before i
        mask = allowed.repeat_interleave(p_size, 0).repeat_interleave(i_size, 1)
        self.register_buffer("mask", mask.float())
        bound = (n * i_size) ** -0.5
        self.weight = nn.Parameter(torch.empty(n * p_size, n * i_size).uniform_(-bound, bound))

    def masked_weight(self) -> Tensor:
        """``(n P, n I)``: the weight with every not-yet-seen input zeroed."""
        return self.weight * self.mask.to(self.weight.dtype)

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        linear = (x.flatten(-2) @ self.masked_weight().mT).unflatten(-1, (self.event_size, self.param_size))
        return linear + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _FVSBNState(self, context, batch_shape)


class _FVSBNState(LinearBlockState):
    """FVSBN's parameters are the running linear terms themselves (``U = P``), kept one block
    of variables at a time (:class:`~pyro_ar.nn.base.LinearBlockState`): the total arithmetic
    is half of one log_prob pass, and a block can be drawn in a few fixed-point rounds."""

    def __init__(self, net: FVSBN, context: Optional[Tensor], batch_shape: torch.Size):
        n, i_size, p_size = net.event_size, net.input_size, net.param_size
        order = net.orders[0]
        # weight_t[j I + a, k P + p]: effect of input feature a of the j-th drawn variable on
        # parameter p of the k-th; nonzero only for j < k (strictly block upper triangular).
        weight = net.masked_weight().unflatten(0, (n, p_size)).unflatten(-1, (n, i_size))
        weight_t = weight[order][:, :, order].permute(2, 3, 0, 1).reshape(n * i_size, n * p_size)
        offset = net.output_offset(context).expand(*batch_shape, n, p_size)[..., order, :]
        super().__init__(weight_t, offset.reshape(-1, n * p_size), (n, i_size, p_size), batch_shape)

    def params(self, step: int) -> Tensor:
        out = self.linear(step)
        return out if self.flat_batch else out.reshape(*self.batch_shape, self.units)

    def block_params(self, start: int, guess: Tensor) -> Tensor:
        out = self.block_linear(start, guess)
        return out.reshape(*self.batch_shape, *out.shape[1:])


register_conditioner(FVSBN, "fvsbn", cli_defaults={"lr": 1e-2})
