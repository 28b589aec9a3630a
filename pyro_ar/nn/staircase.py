"""Masked linear layers that skip the masked-out part of the weight.

A MADE mask whose rows (output units sorted by degree) each allow a prefix of the columns
(input units sorted by degree), with prefixes that grow from row to row, is a *staircase*.
Member 0 of a MADE in the natural order has such masks in every layer: about half of each
weight is masked out. :func:`staircase_linear` halves the rows recursively: the block that
every row of the lower half sees whole is one dense matmul without the mask, the two halves
are planned again, and only the small blocks on the diagonal at the bottom of the tree
are multiplied by the mask. Blocks that no row may see are never read. At depth 2 the
product does 5/8 of the dense arithmetic and masks 1/4 of the weight instead of all of it.

Nothing here caches weights: the plan is a few integers derived from the mask (a buffer),
and every call reads the current parameters, so a weight written through ``p.data`` or
``load_state_dict`` takes effect at once and masked-out entries never leak in.
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["StaircasePlan", "staircase_plan", "staircase_linear"]

#: A plan is a binary tree over the rows. A leaf ``("leaf", r0, r1, c0, c1)``: rows
#: ``[r0, r1)`` times columns ``[c0, c1)``, multiplied by the mask (the staircase steps
#: through it). A split ``("split", r0, r1, c0, cut, top, bottom)``: the top half of the rows
#: and the bottom half are planned on their own (from column ``c0``, and from ``cut`` on
#: for the bottom), and the block ``[middle, r1) x [c0, cut)``, which every bottom row sees
#: whole, is one dense matmul without the mask.
StaircasePlan = tuple

#: Depth of the tree: each level halves the rows of the masked leaves (``2**DEPTH`` leaves
#: holding ``1 / 2**DEPTH`` of the weight); the dense blocks stay large matmuls. At
#: n = 784, d = 500 on one CPU thread depth 2 was fastest (deeper: more, smaller matmuls).
DEPTH = 2
#: Layers with fewer weights than this use the plain masked product (small matmuls gain
#: nothing from blocking).
MIN_WEIGHTS = 64 * 64


def staircase_plan(mask: Tensor, depth: int = DEPTH, min_weights: int = MIN_WEIGHTS) -> Optional[StaircasePlan]:
    """The block tree of ``mask: (rows, cols)`` if it is a staircase, else None.

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
    return _plan(prefix.tolist(), 0, rows, 0, depth)


def _plan(prefix: List[int], r0: int, r1: int, c0: int, depth: int) -> StaircasePlan:
    if depth == 0 or r1 - r0 < 2:
        return ("leaf", r0, r1, c0, max(prefix[r1 - 1], c0))
    middle = (r0 + r1) // 2
    cut = max(prefix[middle - 1], c0)  # every row from ``middle`` on sees columns [c0, cut)
    top = _plan(prefix, r0, middle, c0, depth - 1)
    bottom = _plan(prefix, middle, r1, cut, depth - 1)
    return ("split", r0, r1, c0, cut, top, bottom)


def _fill(node: StaircasePlan, x: Tensor, weight: Tensor, mask: Tensor, out: Tensor) -> None:
    """``out[:, r0:r1] = x[:, c0:c1] @ (weight * mask)[r0:r1, c0:c1].T`` over the node's rows.

    Every block writes its columns of ``out`` in place (a column slice is a valid BLAS
    output, with the full row as its leading dimension): no concatenation, no copy.
    """
    if node[0] == "leaf":
        _, r0, r1, c0, c1 = node
        if c1 <= c0:
            out[:, r0:r1].zero_()
        else:  # beta=0: the uninitialized output is ignored, not scaled
            block = weight[r0:r1, c0:c1] * mask[r0:r1, c0:c1].to(weight.dtype)
            out[:, r0:r1].addmm_(x[:, c0:c1], block.T, beta=0)
        return
    _, r0, r1, c0, cut, top, bottom = node
    _fill(top, x, weight, mask, out)
    _fill(bottom, x, weight, mask, out)
    if cut > c0:
        middle = bottom[1]
        out[:, middle:r1].addmm_(x[:, c0:cut], weight[middle:r1, c0:cut].T)


def _tracks_gradients(*tensors: Optional[Tensor]) -> bool:
    """Whether autograd would record an operation on ``tensors`` (None entries ignored)."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def staircase_linear(
    x: Tensor, weight: Tensor, bias: Optional[Tensor], mask: Tensor, plan: Optional[StaircasePlan]
) -> Tensor:
    """``F.linear(x, weight * mask, bias)``: blockwise along a staircase ``mask`` with its
    ``plan`` without autograd; the fused masked product when autograd records it or when
    there is no plan (``mask`` not a staircase).

    Args:
        x: ``(*, cols)``.
        weight, mask: ``(rows, cols)``; only the leaves' blocks of ``mask`` are read.
        bias: ``(rows,)`` or None.
        plan: :func:`staircase_plan` of ``mask`` (None where it gave None).

    Returns:
        ``(*, rows)``.
    """
    if plan is None or _tracks_gradients(x, weight, bias):
        # The fused product. With autograd: its backward is one matmul per gradient, where the
        # blocks' backward would add a full-size gradient per block (and they write in place).
        return F.linear(x, weight * mask.to(weight.dtype), bias)
    flat = x.reshape(-1, x.shape[-1])
    out = flat.new_empty(flat.shape[0], weight.shape[0], dtype=weight.dtype)
    _fill(plan, flat, weight, mask, out)
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0])
