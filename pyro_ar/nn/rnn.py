"""RNN: a recurrent summary of the past, updated once per variable (the character RNN)."""

from __future__ import annotations

from typing import Any, Literal, Optional, Tuple

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, check_positive_int
from pyro_ar.nn.teacher_forcing import shifted_inputs, to_variable_order
from pyro_ar.registry import register_conditioner

__all__ = ["RNN", "CELLS"]

#: The recurrent cells by name: torch's fused layers (one call runs the whole sequence).
CELLS = {"tanh": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
#: The names in :data:`CELLS`, as a type (the command line offers them as choices).
Cell = Literal[tuple(CELLS)]  # type: ignore[valid-type]

#: A recurrent state: ``(h,)`` or, for an LSTM, ``(h, c)``; each ``(layers, B, H)``.
State = Tuple[Tensor, ...]


class RNN(Conditioner):
    r"""A recurrent conditioner: a summary ``h`` of the variables drawn so far, updated one
    variable at a time (the lecture notes' RNN; Karpathy's character RNN).

    With the ``"tanh"`` cell and one layer, in the order σ:

    .. math::
        h_{-1} = b_0 + U\,\text{context}, \qquad
        h_k = \tanh(W_{hh} h_{k-1} + W_{xh} u_k + b_h), \qquad
        \theta_{σ_k} = W_{hy} h_k + b_{σ_k} + C_{σ_k}\,\text{context},

    where the input of step ``k`` is the value drawn at the step before it (teacher forcing),
    ``u_k = W_e\, e(x_{σ_{k-1}}) + E_{σ_k}``, and ``u_0 = s + E_{σ_0}`` with a learned start
    vector ``s``; ``E_i`` is a learned embedding of variable ``i`` (which variable the step
    predicts, so that the cell knows where it is in any order). ``"gru"`` and ``"lstm"``
    replace the tanh update with gated ones; ``num_layers`` stacks cells.

    The weights are shared by all steps: ``O(H^2 + n H)`` parameters. log_prob is one call
    of torch's fused recurrent layer (``nn.RNN``/``nn.GRU``/``nn.LSTM``) over the shifted,
    ordered sequence: parallel over the batch, sequential over the ``n`` steps inside one
    kernel. Sampling keeps the recurrent state and runs one cell step per variable through
    the same layer, so drawing ``n`` variables costs about one log_prob pass of arithmetic.
    Long sequences can suffer from vanishing or exploding gradients (the gated cells
    mitigate it).

    Args:
        event_size: ``n``.
        hidden_size: ``H``, the size of the recurrent state (and of each step's input).
        num_layers: how many recurrent cells are stacked.
        cell: the recurrent cell, ``"tanh"`` (the notes' RNN), ``"gru"`` or ``"lstm"``.
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size`` (the context sets the initial
            state through a linear map, and reaches every output directly), ``order``,
            ``seed``, ``initial_bias``.

    Example:
        >>> net = RNN(event_size=4, hidden_size=8, cell="lstm")
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(self, event_size: int, hidden_size: int = 128, num_layers: int = 1, cell: Cell = "gru", **common: Any):
        super().__init__(event_size, **common)
        self.hidden_size = h = check_positive_int("hidden_size", hidden_size)
        self.num_layers = layers = check_positive_int("num_layers", num_layers)
        if not isinstance(cell, str) or cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        n, context_size = self.event_size, self.context_size
        self.register_buffer("inverse_order", torch.argsort(self.order))
        self.value_embedding = nn.Linear(self.input_size, h, bias=False)  # W_e
        self.start = nn.Parameter(torch.randn(h) * h**-0.5)  # s
        self.variable_embedding = nn.Parameter(torch.randn(n, h) * h**-0.5)  # E
        self.recurrent = CELLS[cell](h, h, num_layers=layers, batch_first=True)
        # h_{-1} (and an LSTM's cell state): learned, plus a linear map of the context.
        self.num_states = 2 if cell == "lstm" else 1
        self.initial_state = nn.Parameter(torch.zeros(self.num_states, layers, h))  # b_0
        self.context_to_state = (
            None if context_size is None else nn.Linear(context_size, self.num_states * layers * h, bias=False)
        )
        self.readout = nn.Linear(h, self.param_size, bias=False)  # W_hy

    def initial(self, context: Optional[Tensor], rows: int, batch: torch.Size) -> State:
        """The state before step 0 for ``rows = prod(batch)`` rows: each ``(layers, rows, H)``."""
        s, layers, h = self.num_states, self.num_layers, self.hidden_size
        state = self.initial_state
        if context is not None and self.context_to_state is not None:
            state = state + self.context_to_state(context).unflatten(-1, (s, layers, h))
        state = state.expand(*batch, s, layers, h).reshape(rows, s, layers, h)
        return tuple(part.transpose(0, 1).contiguous() for part in state.unbind(1))

    def _cell_state(self, state: State):
        return state if self.cell == "lstm" else state[0]

    def run(self, inputs: Tensor, state: State) -> Tuple[Tensor, State]:
        """The fused layer over ``inputs: (B, L, H)`` from ``state``: the top layer's outputs
        ``(B, L, H)`` and the state after the last step."""
        out, last = self.recurrent(inputs, self._cell_state(state))
        return out, (last if self.cell == "lstm" else (last,))

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        n = self.event_size
        order = self.orders[0]
        context_batch = context.shape[:-1] if context is not None else torch.Size()
        batch = torch.broadcast_shapes(x.shape[:-2], context_batch)
        rows = batch.numel()
        # Teacher forcing: step k sees the value drawn at step k - 1 (the start vector at step 0).
        inputs = shifted_inputs(x, batch, order, self.start, self.value_embedding) + self.variable_embedding[order]
        if rows == 0:  # torch's recurrent layers refuse an empty batch
            out = inputs.new_zeros(0, n, self.hidden_size)
        else:
            out, _ = self.run(inputs, self.initial(context, rows, batch))
        params = to_variable_order(self.readout(out), self.inverse_order, batch)
        return params + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _RNNState(self, context, torch.Size(batch_shape))


class _RNNState(IncrementalState):
    """The recurrent state itself: one cell step (through the same fused layer) per variable."""

    def __init__(self, net: RNN, context: Optional[Tensor], batch_shape: torch.Size):
        self.net, self.batch_shape = net, batch_shape
        self.order = net.orders[0].tolist()
        self.rows = batch_shape.numel()
        self.offset = net.output_offset(context)  # (*, n, P) or (n, P)
        first = net.start + net.variable_embedding[self.order[0]]
        self._advance(first.expand(self.rows, -1), net.initial(context, self.rows, batch_shape))

    def _advance(self, inputs: Tensor, state: State) -> None:
        out, self.state = self.net.run(inputs.unsqueeze(1), state)
        self.top = out[:, 0]  # (B, H): the summary h_k the next params read

    def params(self, step: int) -> Tensor:
        out = self.net.readout(self.top).reshape(*self.batch_shape, self.net.param_size)
        return out + self.offset[..., self.order[step], :]

    def observe(self, step: int, value: Tensor) -> None:
        if step + 1 == len(self.order):  # nothing comes after the last variable
            return
        value = value.reshape(self.rows, self.net.input_size)
        inputs = self.net.value_embedding(value) + self.net.variable_embedding[self.order[step + 1]]
        self._advance(inputs, self.state)


register_conditioner(
    RNN, "rnn", example={"hidden_size": 8}, cli_defaults={"hidden_size": 128, "lr": 3e-3}
)
