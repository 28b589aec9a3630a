"""NADE: the neural autoregressive density estimator, with weights shared across variables."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, OrderSpec, check_positive_int, make_order

__all__ = ["NADE"]


class NADE(Conditioner):
    r"""Neural autoregressive density estimator (Larochelle & Murray, 2011).

    One hidden layer whose pre-activation is shared by all conditionals and grows by one
    column per variable, in the order σ:

    .. math::
        a_1 = c + U\,\text{context}, \qquad a_{k+1} = a_k + W_{:, σ_k}\, e(x_{σ_k}),\\
        \theta_{σ_k} = b_{σ_k} + V_{σ_k} \operatorname{sigmoid}(a_k) + C_{σ_k}\,\text{context}.

    ``O(n d)`` parameters. log_prob computes all ``a_k`` with one cumulative sum, ``O(B n d)``;
    sampling carries ``a_k`` forward, so drawing ``n`` variables costs about one log_prob pass.

    Args:
        event_size: ``n``.
        hidden_size: ``d``.
        input_size: features per variable fed back (1, or K for one-hot).
        param_size: parameters per variable.
        context_size: ``c`` or ``None``.
        order: ``None`` (identity), ``"random"``, ``"reverse"`` or a permutation.
        seed: seed of a random order.
        initial_bias: ``(P,)`` starting output bias.

    Example:
        >>> net = NADE(event_size=4, hidden_size=8)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(
        self,
        event_size: int,
        hidden_size: int = 64,
        input_size: int = 1,
        param_size: int = 1,
        context_size: Optional[int] = None,
        order: OrderSpec = None,
        seed: Optional[int] = None,
        initial_bias: Optional[Tensor] = None,
    ):
        super().__init__(event_size, input_size, param_size, context_size, initial_bias)
        self.hidden_size = d = check_positive_int("hidden_size", hidden_size)
        n = self.event_size
        order_ = make_order(order, n, seed)
        self.register_buffer("orders", order_.unsqueeze(0))
        self.register_buffer("inverse_order", torch.argsort(order_))
        self.in_weight = nn.Parameter(torch.empty(n, self.input_size, d).uniform_(-1, 1).mul_(n**-0.5))  # W
        self.hidden_bias = nn.Parameter(torch.zeros(d))  # c
        self.out_weight = nn.Parameter(torch.empty(n, self.param_size, d).uniform_(-1, 1).mul_(d**-0.5))  # V
        self.context_to_hidden = None if context_size is None else nn.Linear(context_size, d, bias=False)

    def initial_hidden(self, context: Optional[Tensor]) -> Tensor:
        """``a_1``: ``(*, d)``, or ``(d,)`` without context."""
        if context is None or self.context_to_hidden is None:
            return self.hidden_bias
        return self.hidden_bias + self.context_to_hidden(context)

    def forward(self, x: Tensor, context: Optional[Tensor] = None, member: int = 0) -> Tensor:
        order = self.orders[0]
        x_seq = x.index_select(-2, order)  # (*, n, I), in drawing order
        w_seq = self.in_weight.index_select(0, order)  # (n, I, d)
        if self.input_size == 1:
            steps = x_seq * w_seq[:, 0]  # (*, n, d)
        else:
            steps = (x_seq.unsqueeze(-2) @ w_seq).squeeze(-2)
        # a_k sums the contributions of the variables strictly before step k.
        before = F.pad(steps[..., :-1, :], (0, 0, 1, 0)).cumsum(-2)
        hidden = torch.sigmoid(before + self.initial_hidden(context).unsqueeze(-2))  # (*, n, d)
        v_seq = self.out_weight.index_select(0, order)  # (n, P, d)
        if self.param_size == 1:
            out_seq = (hidden * v_seq[:, 0]).sum(-1, keepdim=True)
        else:
            out_seq = (hidden.unsqueeze(-2) @ v_seq.transpose(-1, -2)).squeeze(-2)
        return out_seq.index_select(-2, self.inverse_order) + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size, member: int = 0) -> IncrementalState:
        return _NADEState(self, context, batch_shape)


class _NADEState(IncrementalState):
    """Carries ``a_k`` forward: ``O(d (P + I))`` work per variable."""

    def __init__(self, net: NADE, context: Optional[Tensor], batch_shape: torch.Size):
        self.net = net
        self.order = net.orders[0].tolist()
        self.offset = net.output_offset(context)  # (*, n, P) or (n, P)
        self.hidden = net.initial_hidden(context).expand(*batch_shape, net.hidden_size)

    def params(self, step: int) -> Tensor:
        i = self.order[step]
        return torch.sigmoid(self.hidden) @ self.net.out_weight[i].T + self.offset[..., i, :]

    def observe(self, step: int, value: Tensor) -> None:
        self.hidden = self.hidden + value @ self.net.in_weight[self.order[step]]
