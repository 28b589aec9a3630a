"""Masked linear layers that skip the masked-out part of the weight.

A MADE mask whose rows (output units sorted by degree) each allow a prefix of the columns
(input units sorted by degree), with prefixes that grow from row to row, is a *staircase*.
Member 0 of a MADE in the natural order has such masks in every layer: about half of each
weight is masked out. :func:`staircase_linear` cuts the rows into a few blocks and, per
block, multiplies the columns that every row of the block may see as they are and the
narrow strip where the staircase steps through the block by the mask, and never reads the
columns that no row of the block may see. So the product costs about half the arithmetic
of the dense one and masks only a strip of the weight instead of all of it.

Nothing here caches weights: the plan is a few integers derived from the mask (a buffer),
and every call reads the current parameters, so a weight written through ``p.data`` or
``load_state_dict`` takes effect at once and masked-out entries never leak in.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StaircasePlan", "staircase_plan", "staircase_linear"]

#: ``(row_start, row_stop, dense_columns, seen_columns)`` per row block: rows
#: ``[row_start, row_stop)`` all see columns ``[0, dense_columns)``, some see
#: ``[dense_columns, seen_columns)`` (masked), none sees columns from ``seen_columns`` on.
StaircasePlan = List[Tuple[int, int, int, int]]

#: Row blocks per layer: more skip more masked-out arithmetic (the fraction of the dense
#: work done is about 1/2 + 1/(2 * BLOCKS)) but make smaller matmuls; at n = 784, d = 500 on
#: one CPU thread 8 and 10 blocks were fastest, 16 slower again.
BLOCKS = 8
#: Layers with fewer weights than this use the plain masked product (small matmuls gain
#: nothing from blocking).
MIN_WEIGHTS = 64 * 64


def staircase_plan(mask: Tensor, blocks: int = BLOCKS, min_weights: int = MIN_WEIGHTS) -> Optional[StaircasePlan]:
    """The row blocks of ``mask: (rows, cols)`` if it is a staircase, else None.

    A staircase: row ``r`` allows exactly the columns ``[0, L_r)`` and ``L`` never
    decreases. None also when the mask is too small to gain (``min_weights``) or lives on
    the meta device (nothing to inspect; a later ``load_state_dict`` plans again).
    """
    if mask.dim() != 2 or mask.is_meta or mask.numel() < min_weights:
        return None
    allowed = mask.detach().to("cpu") != 0
    rows, cols = allowed.shape
    prefix = allowed.sum(1)
    if rows == 0 or bool((prefix[1:] < prefix[:-1]).any()):
        return None
    if not torch.equal(allowed, torch.arange(cols).unsqueeze(0) < prefix.unsqueeze(1)):
        return None
    bounds = torch.linspace(0, rows, min(blocks, rows) + 1).round().long().tolist()
    prefix = prefix.tolist()
    return [(r0, r1, prefix[r0], prefix[r1 - 1]) for r0, r1 in zip(bounds[:-1], bounds[1:]) if r1 > r0]


def staircase_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor], mask: Tensor, plan: StaircasePlan) -> Tensor:
    """``F.linear(x, weight * mask, bias)`` for a staircase ``mask`` with its ``plan``.

    Args:
        x: ``(*, cols)``.
        weight, mask: ``(rows, cols)``; only the masked strips of ``mask`` are read.
        bias: ``(rows,)`` or None.
        plan: :func:`staircase_plan` of ``mask``.

    Returns:
        ``(*, rows)``.
    """
    flat = x.reshape(-1, x.shape[-1])
    sizes = [r1 - r0 for r0, r1, _, _ in plan]
    weights = weight.split(sizes, 0)
    biases = bias.split(sizes, 0) if bias is not None else [None] * len(plan)
    outs = []
    for (r0, r1, dense, seen), w, b in zip(plan, weights, biases):
        y = None
        if dense > 0:
            y = F.linear(flat[:, :dense], w[:, :dense], b)
        if seen > dense:
            strip = w[:, dense:seen] * mask[r0:r1, dense:seen].to(w.dtype)
            y = F.linear(flat[:, dense:seen], strip, b) if y is None else torch.addmm(y, flat[:, dense:seen], strip.T)
        if y is None:  # rows that see nothing: the bias alone
            y = flat.new_zeros(flat.shape[0], r1 - r0) if b is None else b.expand(flat.shape[0], r1 - r0)
        outs.append(y)
    out = torch.cat(outs, -1) if len(outs) > 1 else outs[0]
    return out.reshape(*x.shape[:-1], weight.shape[0])
