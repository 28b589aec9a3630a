"""Teacher forcing for the sequence conditioners (RNN, Transformer): one place for the shift.

Step ``k`` of the ordered sequence predicts variable ``order[k]`` from the value drawn at
step ``k - 1`` (a learned start vector at step 0), so the whole sequence is scored in one
pass while sampling feeds one step at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["shifted_inputs", "to_variable_order"]


def shifted_inputs(x: Tensor, batch: torch.Size, order: Tensor, start: Tensor, embed: nn.Module) -> Tensor:
    """The inputs of every step: ``x: (*, n, I)`` broadcast to ``batch`` -> ``(R, n, D)`` with
    ``R = prod(batch)``: ``start`` (``(D,)``) at step 0, then ``embed`` of the value drawn at
    each earlier step, in step order."""
    n, i_size = x.shape[-2:]
    rows = batch.numel()
    steps = x.expand(*batch, n, i_size).reshape(rows, n, i_size)[:, order]
    return torch.cat([start.expand(rows, 1, -1), embed(steps[:, :-1])], 1)


def to_variable_order(step_params: Tensor, inverse_order: Tensor, batch: torch.Size) -> Tensor:
    """Per-step outputs ``(R, n, P)`` back in variable order, ``batch + (n, P)``."""
    return step_params[:, inverse_order].reshape(*batch, *step_params.shape[1:])
