"""PerVariableMLP: an independent one-hidden-layer MLP for each variable (no weight sharing)."""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, LinearBlockState, check_positive_int
from pyro_ar.nn.made import ACTIVATIONS, Activation
from pyro_ar.registry import register_conditioner

__all__ = ["PerVariableMLP"]


class PerVariableMLP(Conditioner):
    r"""One small MLP per variable: the step between FVSBN and NADE.

    Each variable has its own hidden layer over the variables before it in the order σ:

    .. math::
        h_i = \sigma(A_i\, e(x_{<_σ i}) + c_i + U_i\,\text{context}), \qquad
        \theta_i = V_i h_i + b_i + C_i\,\text{context},

    with ``A_i: (d, n I)`` (columns of later variables masked to zero), ``c_i: (d,)``,
    ``V_i: (P, d)``. Nothing is shared between variables: ``O(n^2 d)`` parameters. NADE is
    this model with ``A_i`` tied to the columns of one shared ``W``.

    log_prob is one pass: a single masked matmul gives the pre-activations of all ``n``
    hidden layers at once, ``(*, n d)``, then one batched product applies every ``V_i``.
    Sampling keeps each variable's running pre-activation and adds one column per drawn
    variable (blocks of variables start from one matmul of the values drawn before them,
    as in :class:`~pyro_ar.nn.FVSBN`), so drawing ``n`` variables costs about half a
    log_prob pass of arithmetic.

    Args:
        event_size: ``n``.
        hidden_size: ``d``, the hidden units of each variable's own MLP.
        activation: the hidden nonlinearity (the lecture notes' model uses ``"sigmoid"``).
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size`` (the context feeds every hidden
            layer and every output), ``order``, ``seed``, ``initial_bias``.

    Example:
        >>> net = PerVariableMLP(event_size=4, hidden_size=8)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(self, event_size: int, hidden_size: int = 16, activation: Activation = "sigmoid", **common: Any):
        super().__init__(event_size, **common)
        self.hidden_size = d = check_positive_int("hidden_size", hidden_size)
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = ACTIVATIONS[activation]()
        n, i_size, p_size = self.event_size, self.input_size, self.param_size
        # mask[i, 0, j I + a]: input feature a of variable j is before variable i in the order.
        # Built on the default device (meta when a model is only measured).
        order_ = self.order.to(torch.get_default_device())
        rank = torch.empty_like(order_)
        rank[order_] = torch.arange(n, device=order_.device)
        allowed = (rank.unsqueeze(1) > rank.unsqueeze(0)).repeat_interleave(i_size, 1)
        self.register_buffer("mask", allowed.unsqueeze(1).float())
        bound = (n * i_size) ** -0.5
        self.in_weight = nn.Parameter(torch.empty(n, d, n * i_size).uniform_(-bound, bound))  # A
        self.hidden_bias = nn.Parameter(torch.zeros(n, d))  # c
        self.out_weight = nn.Parameter(torch.empty(n, p_size, d).uniform_(-1, 1).mul_(d**-0.5))  # V
        context_size = self.context_size
        self.context_to_hidden = None if context_size is None else nn.Linear(context_size, n * d, bias=False)

    def masked_in_weight(self) -> Tensor:
        """``(n, d, n I)``: every variable's ``A_i`` with the not-yet-seen inputs zeroed."""
        return self.in_weight * self.mask.to(self.in_weight.dtype)

    def hidden_offset(self, context: Optional[Tensor]) -> Tensor:
        """``c + U context``: ``(*, n d)``, or ``(n d,)`` without context."""
        bias = self.hidden_bias.flatten()
        if context is None or self.context_to_hidden is None:
            return bias
        return self.context_to_hidden(context) + bias

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        n, d = self.event_size, self.hidden_size
        weight = self.masked_in_weight().reshape(n * d, -1)
        pre = torch.nn.functional.linear(x.flatten(-2), weight) + self.hidden_offset(context)  # (*, n d)
        hidden = self.activation(pre.unflatten(-1, (n, d)))
        out = torch.einsum("...nd,npd->...np", hidden, self.out_weight)
        return out + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _PerVariableMLPState(self, context, batch_shape)


class _PerVariableMLPState(LinearBlockState):
    """The running hidden pre-activations of every variable (``U = d``), one block at a time
    (:class:`~pyro_ar.nn.base.LinearBlockState`); a step's parameters are its own MLP's
    output layer on them. The block interface computes a whole block's parameters from
    guessed values with one ``(b I, b d)`` matmul, one activation and one batched product."""

    def __init__(self, net: PerVariableMLP, context: Optional[Tensor], batch_shape: torch.Size):
        n, i_size, p_size, d = net.event_size, net.input_size, net.param_size, net.hidden_size
        order = net.orders[0]
        self.net = net
        # weight_t[j I + a, k d + h]: effect of feature a of the j-th drawn variable on hidden
        # unit h of the k-th; nonzero only for j < k.
        weight = net.masked_in_weight().unflatten(-1, (n, i_size))[order][:, :, order]  # (k, h, j, a)
        weight_t = weight.permute(2, 3, 0, 1).reshape(n * i_size, n * d)
        hidden = net.hidden_offset(context).unflatten(-1, (n, d)).expand(*batch_shape, n, d)[..., order, :]
        super().__init__(weight_t, hidden.reshape(-1, n * d), (n, i_size, d), batch_shape)
        self.out_weight = net.out_weight[order]  # (n, P, d) in step order
        out = net.output_offset(context).expand(*batch_shape, n, p_size)[..., order, :]
        self.out_offset = out.reshape(-1, n, p_size)

    def _reshaped(self, out: Tensor) -> Tensor:
        return out.reshape(*self.batch_shape, *out.shape[1:])

    def params(self, step: int) -> Tensor:
        h = self.net.activation(self.linear(step))
        return self._reshaped(torch.addmm(self.out_offset[:, step], h, self.out_weight[step].T))

    def block_params(self, start: int, guess: Tensor) -> Tensor:
        h = self.net.activation(self.block_linear(start, guess))  # (R, b, d)
        out = torch.einsum("rbd,bpd->rbp", h, self.out_weight[start : self.block_end])
        return self._reshaped(out + self.out_offset[:, start : self.block_end])


register_conditioner(
    PerVariableMLP,
    "pervariablemlp",
    example={"hidden_size": 8},
    cli_defaults={"hidden_size": 16, "lr": 1e-2},
)
