"""NADE: the neural autoregressive density estimator, with weights shared across variables."""

from __future__ import annotations

import functools
from typing import Any, Optional

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, check_positive_int
from pyro_ar.registry import register_conditioner

__all__ = ["NADE", "nade_outputs", "nade_outputs_reference"]


class NADE(Conditioner):
    r"""Neural autoregressive density estimator (Larochelle & Murray, 2011).

    One hidden layer whose pre-activation is shared by all conditionals and grows by one
    column per variable, in the order σ:

    .. math::
        a_1 = c + U\,\text{context}, \qquad a_{k+1} = a_k + W_{:, σ_k}\, e(x_{σ_k}),\\
        \theta_{σ_k} = b_{σ_k} + V_{σ_k} \operatorname{sigmoid}(a_k) + C_{σ_k}\,\text{context}.

    ``O(n d)`` parameters. log_prob computes all ``a_k`` in one pass, ``O(B n d)`` time, in
    cache-sized blocks of positions whose hidden units the backward pass recomputes rather
    than stores (see :func:`nade_outputs`); sampling carries ``a_k`` forward, so drawing
    ``n`` variables costs about one log_prob pass.

    Args:
        event_size: ``n``.
        hidden_size: ``d``, the number of hidden units shared by all conditionals.
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size``, ``order``, ``seed``, ``initial_bias``.

    Example:
        >>> net = NADE(event_size=4, hidden_size=8)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(self, event_size: int, hidden_size: int = 64, **common: Any):
        super().__init__(event_size, **common)
        self.hidden_size = d = check_positive_int("hidden_size", hidden_size)
        n, context_size = self.event_size, self.context_size
        self.register_buffer("inverse_order", torch.argsort(self.order))
        self.in_weight = nn.Parameter(torch.empty(n, self.input_size, d).uniform_(-1, 1).mul_(n**-0.5))  # W
        self.hidden_bias = nn.Parameter(torch.zeros(d))  # c
        self.out_weight = nn.Parameter(torch.empty(n, self.param_size, d).uniform_(-1, 1).mul_(d**-0.5))  # V
        self.context_to_hidden = None if context_size is None else nn.Linear(context_size, d, bias=False)

    def initial_hidden(self, context: Optional[Tensor]) -> Tensor:
        """``a_1``: ``(*, d)``, or ``(d,)`` without context."""
        if context is None or self.context_to_hidden is None:
            return self.hidden_bias
        return self.hidden_bias + self.context_to_hidden(context)

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        n, i_size, p_size, d = self.event_size, self.input_size, self.param_size, self.hidden_size
        order = self.orders[0]
        init = self.initial_hidden(context)  # (*, d) or (d,)
        batch = torch.broadcast_shapes(x.shape[:-2], init.shape[:-1])
        # Work position-major, (n, B, .), so that each variable's rows are one contiguous slab.
        x_steps = x.expand(*batch, n, i_size).reshape(-1, n, i_size).transpose(0, 1)[order]
        init = init.expand(*batch, d).reshape(-1, d)
        out_steps = nade_outputs(x_steps, init, self.in_weight[order], self.out_weight[order])  # (n, B, P)
        out = out_steps[self.inverse_order].transpose(0, 1).reshape(*batch, n, p_size)
        return out + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
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


# ---- the one-pass evaluation -------------------------------------------------------------
#
# All n conditionals need the hidden units h_k = sigmoid(a_k) of every row: a (B, n, d)
# tensor, the bulk of the work. The straightforward way (``nade_outputs_reference``) builds
# it with a cumulative sum and lets autograd keep it for the backward pass: about a dozen
# full-size temporaries, each a fresh allocation, and one full-size tensor saved. Here the
# positions are processed in blocks small enough to stay in cache, the carry a_k is updated
# in place, and the backward pass recomputes each block's hidden units from a saved carry
# instead of storing them: the same arithmetic, a fraction of the memory traffic, and
# O(B d n / block) saved memory instead of O(B d n).

#: Below this many hidden activations (n x B x d) everything fits in cache anyway and the
#: plain autograd graph, with no recomputation, is faster.
_BLOCKED_MIN_ELEMENTS = 2**20
#: Elements of one block's hidden units (block x B x d): a few MiB, so the block stays in cache.
_CPU_BLOCK_ELEMENTS = 2**20
#: On an accelerator large blocks are cheaper (fewer kernel launches); memory still stays bounded.
_ACCELERATOR_BLOCK_ELEMENTS = 2**25
#: From this many elements per position (B x d) on, the carry is updated one position at a
#: time in place (CPU); below it, per-op call overhead dominates and a block is summed
#: with one ``cumsum``.
_SEQUENTIAL_MIN_ELEMENTS = 2**11


def nade_outputs_reference(x: Tensor, init: Tensor, in_weight: Tensor, out_weight: Tensor) -> Tensor:
    """The straightforward NADE evaluation: one cumulative sum over the full ``(n, B, d)`` tensor.

    Same arguments and result as :func:`nade_outputs`. Used for higher-order derivatives and
    under ``torch.func`` transforms, and as the reference the fast path is tested against.
    """
    steps = x @ in_weight if x.shape[-1] > 1 else x * in_weight  # (n, B, d): x_k W_k
    before = torch.cat([torch.zeros_like(steps[:1]), steps[:-1]]).cumsum(0)  # sum over j < k
    hidden = torch.sigmoid(before + init)
    return hidden @ out_weight.transpose(-1, -2)  # (n, B, P)


def nade_outputs(x: Tensor, init: Tensor, in_weight: Tensor, out_weight: Tensor) -> Tensor:
    r"""NADE's outputs for every position, ``out_k = V_k sigmoid(a_k)`` with ``a_k = a_1 + \sum_{j<k} W_j x_j``.

    Everything is in drawing order and position-major.

    Args:
        x: encoded values ``(n, B, I)``.
        init: ``a_1`` per row, ``(B, d)``.
        in_weight: ``W``, ``(n, I, d)``.
        out_weight: ``V``, ``(n, P, d)``.

    Returns:
        ``(n, B, P)``. Differentiable in every argument; first derivatives come from a
        memory-lean custom backward pass, higher ones from the reference graph.
    """
    dtype = functools.reduce(torch.promote_types, (t.dtype for t in (x, init, in_weight, out_weight)))
    x, init, in_weight, out_weight = (t.to(dtype) for t in (x, init, in_weight, out_weight))
    small = x.shape[0] * x.shape[1] * in_weight.shape[-1] < _BLOCKED_MIN_ELEMENTS
    if small or _functorch_active():  # vmap/grad transforms need plain torch ops
        return nade_outputs_reference(x, init, in_weight, out_weight)
    return _NADEOutputs.apply(x, init, in_weight, out_weight)


def _functorch_active() -> bool:
    check = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(check()) if check is not None else False


def _is_batched(t: Tensor) -> bool:
    """Whether ``t`` is a vmap-batched gradient (``jacobian(..., vectorize=True)``)."""
    functorch = getattr(torch._C, "_functorch", None)
    checks = [getattr(functorch, name, None) for name in ("is_batchedtensor", "is_legacy_batchedtensor")]
    return any(bool(check(t)) for check in checks if check is not None)


def _plan(x: Tensor, d: int) -> tuple[int, bool]:
    """``(block size, whether to update the carry one position at a time)``."""
    n, rows = x.shape[0], max(x.shape[1] * d, 1)
    on_cpu = x.device.type == "cpu"
    block = (_CPU_BLOCK_ELEMENTS if on_cpu else _ACCELERATOR_BLOCK_ELEMENTS) // rows
    return max(1, min(n, block)), on_cpu and rows >= _SEQUENTIAL_MIN_ELEMENTS


def _add_step(acc: Tensor, x: Tensor, w: Tensor, out: Optional[Tensor] = None) -> Tensor:
    """``acc + x @ w`` for ``x: (B, I)``, ``w: (I, d)``, written to ``out`` if given."""
    if x.shape[-1] == 1:
        return torch.addcmul(acc, x, w, out=out) if out is not None else torch.addcmul(acc, x, w)
    return torch.addmm(acc, x, w, out=out) if out is not None else torch.addmm(acc, x, w)


def _block_pre_activations(carry: Tensor, x: Tensor, w: Tensor, out: Tensor, sequential: bool) -> Tensor:
    """Fill ``out[i] = carry + sum_{j<i} x[j] @ w[j]`` (``(s, B, d)``); return the carry past the block."""
    s = x.shape[0]
    if sequential:
        out[0].copy_(carry)
        for i in range(1, s):
            _add_step(out[i - 1], x[i - 1], w[i - 1], out=out[i])
        return _add_step(out[s - 1], x[s - 1], w[s - 1])
    steps = x @ w if x.shape[-1] > 1 else x * w
    within = steps.cumsum(0)
    out[0].copy_(carry)
    torch.add(within[:-1], carry, out=out[1:])
    return carry + within[-1]


def _block_suffix_sums(total: Tensor, grad: Tensor, out: Tensor, sequential: bool) -> Tensor:
    """Fill ``out[i] = total + sum_{k>i} grad[k]`` (``(s, B, d)``); return ``total + sum_k grad[k]``."""
    s = grad.shape[0]
    out[s - 1].copy_(total)
    if sequential:
        for i in range(s - 1, 0, -1):
            torch.add(out[i], grad[i], out=out[i - 1])
        return out[0] + grad[0]
    from_end = grad.flip(0).cumsum(0)  # from_end[m] = sum of the last m + 1 entries
    torch.add(from_end[: s - 1].flip(0), total, out=out[: s - 1])
    return total + from_end[-1]


class _NADEOutputs(torch.autograd.Function):
    """:func:`nade_outputs` by blocks of positions, recomputing hidden units in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, init: Tensor, in_weight: Tensor, out_weight: Tensor) -> Tensor:
        n, rows, d = x.shape[0], x.shape[1], in_weight.shape[-1]
        block, sequential = _plan(x, d)
        starts = range(0, n, block)
        out = x.new_empty(n, rows, out_weight.shape[1])
        carries = x.new_empty(len(starts), rows, d) if any(ctx.needs_input_grad) else None
        hidden = x.new_empty(block, rows, d)
        carry = init
        for t, lo in enumerate(starts):
            hi = min(lo + block, n)
            if carries is not None:
                carries[t] = carry
            h = hidden[: hi - lo]
            carry = _block_pre_activations(carry, x[lo:hi], in_weight[lo:hi], h, sequential)
            torch.bmm(h.sigmoid_(), out_weight[lo:hi].transpose(1, 2), out=out[lo:hi])
        ctx.save_for_backward(x, init, in_weight, out_weight, carries)
        ctx.plan = (block, sequential)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, init, in_weight, out_weight, carries = ctx.saved_tensors
        if torch.is_grad_enabled() or _is_batched(grad_out):
            # create_graph=True (higher derivatives) or a vectorized Jacobian: differentiate the
            # reference graph instead, which supports both.
            with torch.enable_grad():
                wanted = [t for t, need in zip((x, init, in_weight, out_weight), ctx.needs_input_grad) if need]
                out = nade_outputs_reference(x, init, in_weight, out_weight)
                grads = iter(torch.autograd.grad(out, wanted, grad_out, create_graph=torch.is_grad_enabled()))
            return tuple(next(grads) if need else None for need in ctx.needs_input_grad)

        need_x, need_init, need_in, need_out = ctx.needs_input_grad
        n, rows, d = x.shape[0], x.shape[1], in_weight.shape[-1]
        block, sequential = ctx.plan
        grad_x = torch.empty_like(x) if need_x else None
        grad_in = torch.empty_like(in_weight) if need_in else None
        grad_out_weight = torch.empty_like(out_weight) if need_out else None
        hidden = x.new_empty(block, rows, d)
        grad_steps = x.new_empty(block, rows, d)
        later = x.new_zeros(rows, d)  # dL/da summed over the positions after the current block
        for t, lo in reversed(list(enumerate(range(0, n, block)))):
            hi = min(lo + block, n)
            h = hidden[: hi - lo]
            _block_pre_activations(carries[t], x[lo:hi], in_weight[lo:hi], h, sequential)
            h.sigmoid_()
            g = grad_out[lo:hi]  # (s, B, P)
            if need_out:
                torch.bmm(g.transpose(1, 2), h, out=grad_out_weight[lo:hi])
            grad_a = torch.bmm(g, out_weight[lo:hi])  # dL/dh, then dL/da = dL/dh h (1 - h)
            grad_a.mul_(h).mul_(h.neg_().add_(1))
            # Step j (x_j W_j) feeds every a_k with k > j.
            gs = grad_steps[: hi - lo]
            later = _block_suffix_sums(later, grad_a, gs, sequential)
            if need_in:
                torch.bmm(x[lo:hi].transpose(1, 2), gs, out=grad_in[lo:hi])
            if need_x:
                torch.bmm(gs, in_weight[lo:hi].transpose(1, 2), out=grad_x[lo:hi])
        return grad_x, later if need_init else None, grad_in, grad_out_weight


register_conditioner(NADE, "nade", example={"hidden_size": 8}, cli_defaults={"hidden_size": 128, "lr": 1e-2})
