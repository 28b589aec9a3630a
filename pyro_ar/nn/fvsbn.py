"""FVSBN: the fully visible sigmoid belief network, one linear map per variable."""

from __future__ import annotations

from typing import Any, List, Optional

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import SAMPLING_BLOCK, Conditioner, IncrementalState
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


class _FVSBNState(IncrementalState):
    """Running parameters of the current block of variables, in order coordinates.

    Updating the parameters of all ``n`` variables after every draw would move ``O(B n)``
    memory per step; here a block of ``b`` variables starts from one matmul of the values
    drawn so far, and each draw updates only the rest of its block (``O(B b)``). The
    total arithmetic is half of one log_prob pass. The block interface (``block_size``)
    computes a whole block's parameters from guessed values in one matmul, so the
    sampling loop can draw a block in a few rounds instead of ``b`` steps. Updates are out
    of place, so ``rsample`` can differentiate through the loop.
    """

    block_size = SAMPLING_BLOCK

    def __init__(self, net: FVSBN, context: Optional[Tensor], batch_shape: torch.Size):
        n, i_size, p_size = net.event_size, net.input_size, net.param_size
        order = net.orders[0]
        self.sizes = (n, i_size, p_size)
        self.batch_shape = batch_shape
        # Rows are flattened to (R, ...); reshaped back only when the batch isn't 1-D.
        self.flat_batch = len(batch_shape) == 1
        # weight_t[j I + a, k P + p]: effect of input feature a of the j-th drawn variable on
        # parameter p of the k-th; nonzero only for j < k (strictly block upper triangular).
        weight = net.masked_weight().unflatten(0, (n, p_size)).unflatten(-1, (n, i_size))
        self.weight_t = weight[order][:, :, order].permute(2, 3, 0, 1).reshape(n * i_size, n * p_size)
        offset = net.output_offset(context).expand(*batch_shape, n, p_size)[..., order, :]
        self.offset = offset.reshape(-1, n * p_size)
        self.prefix: List[Tensor] = []  # encoded values of finished blocks, each (R, b I)
        self.current: List[Tensor] = []  # encoded values of the current block, each (R, I)
        self.block_start, self.block_end = -1, 0  # no block started yet

    def _start_block(self, start: int) -> None:
        """Parameters of block ``start..end-1`` from the values before ``start`` alone."""
        n, i_size, p_size = self.sizes
        end = min(start + self.block_size, n)
        cols = slice(start * p_size, end * p_size)
        acc = self.offset[:, cols]
        if start > 0:
            drawn = torch.cat(self.prefix, -1) if len(self.prefix) > 1 else self.prefix[0]
            acc = torch.addmm(acc, drawn, self.weight_t[: start * i_size, cols])
        self.acc = self.block_offset = acc
        self.block_weight = self.weight_t[start * i_size : end * i_size, cols]  # (b I, b P)
        # Each step's (I, b P) rows of it, cut in one call.
        self.step_weights = self.block_weight.unflatten(0, (end - start, i_size)).unbind(0)
        self.block_start, self.block_end = start, end

    def params(self, step: int) -> Tensor:
        if step == self.block_end:
            self._start_block(step)
        p_size = self.sizes[2]
        out = self.acc.narrow(1, (step - self.block_start) * p_size, p_size)
        return out if self.flat_batch else out.reshape(*self.batch_shape, p_size)

    def observe(self, step: int, value: Tensor) -> None:
        if not self.flat_batch:
            value = value.reshape(-1, self.sizes[1])
        self.current.append(value)
        if step + 1 < self.block_end:
            self.acc = torch.addmm(self.acc, value, self.step_weights[step - self.block_start])
        else:
            self.prefix.append(torch.cat(self.current, -1))
            self.current = []

    def block_params(self, start: int, guess: Tensor) -> Tensor:
        if start != self.block_start:
            self._start_block(start)
        _, i_size, p_size = self.sizes
        b = self.block_end - start
        flat = torch.addmm(self.block_offset, guess.reshape(-1, b * i_size), self.block_weight)
        return flat.reshape(*self.batch_shape, b, p_size)

    def observe_block(self, start: int, values: Tensor) -> None:
        self.prefix.append(values.reshape(-1, values.shape[-2] * self.sizes[1]))


register_conditioner(FVSBN, "fvsbn", cli_defaults={"lr": 1e-2})
