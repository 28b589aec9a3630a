"""Transformer: causal self-attention over the variables drawn so far, with a key/value cache."""

from __future__ import annotations

import math
from typing import Any, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pyro_ar.nn.base import Conditioner, IncrementalState, check_positive_int
from pyro_ar.nn.teacher_forcing import shifted_inputs, to_variable_order
from pyro_ar.registry import register_conditioner

__all__ = ["Transformer", "CausalBlock"]


class CausalBlock(nn.Module):
    """One pre-LayerNorm transformer block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``.

    Written out (rather than ``nn.TransformerEncoderLayer``) so that sampling can run it one
    position at a time against cached keys and values (:meth:`step`).

    Args:
        d_model: ``D``, the width of every position.
        num_heads: attention heads (``D`` divisible by it).
        dim_feedforward: the hidden width of the MLP.
        dropout: dropout on the attention weights and on both residual branches (training only).
    """

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.num_heads, self.head_size, self.dropout = num_heads, d_model // num_heads, dropout
        self.attention_norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attention_out = nn.Linear(d_model, d_model)
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, dim_feedforward), nn.GELU(), nn.Linear(dim_feedforward, d_model))

    def _p(self) -> float:
        return self.dropout if self.training else 0.0

    def _heads(self, x: Tensor) -> List[Tensor]:
        """``(B, L, D) -> [q, k, v]``, each ``(B, heads, L, D / heads)``."""
        qkv = self.qkv(self.attention_norm(x)).unflatten(-1, (3, self.num_heads, self.head_size))
        return list(qkv.permute(2, 0, 3, 1, 4).unbind(0))

    def _finish(self, x: Tensor, attended: Tensor) -> Tensor:
        """Residual attention output, then the MLP; ``attended: (B, heads, L, D / heads)``."""
        p = self._p()
        x = x + F.dropout(self.attention_out(attended.transpose(1, 2).flatten(-2)), p, self.training)
        return x + F.dropout(self.mlp(self.mlp_norm(x)), p, self.training)

    def forward(self, x: Tensor) -> Tensor:
        """All positions at once, position ``k`` attending to positions ``<= k``: ``(B, L, D)``."""
        q, k, v = self._heads(x)
        return self._finish(x, F.scaled_dot_product_attention(q, k, v, dropout_p=self._p(), is_causal=True))

    def step(self, x: Tensor, cache: "KVCache", layer: int, position: int) -> Tensor:
        """Position ``position`` alone, ``x: (B, 1, D)``: its key and value join the cache,
        its query attends to every cached position (the ones before it and itself)."""
        q, k, v = self._heads(x)
        keys, values = cache.append(layer, position, k, v)
        return self._finish(x, F.scaled_dot_product_attention(q, keys, values, dropout_p=self._p()))


class KVCache:
    """The keys and values of the positions run so far, per layer: ``(B, heads, k, D / heads)``.

    Without autograd, each layer's cache is one preallocated tensor filled in place (no
    copying as it grows); when gradients flow (``rsample`` through the chain) it grows by
    concatenation instead, which autograd can differentiate.
    """

    def __init__(self, num_layers: int, length: int):
        self.length = length
        self.keys: List[Optional[Tensor]] = [None] * num_layers
        self.values: List[Optional[Tensor]] = [None] * num_layers
        self.in_place = not torch.is_grad_enabled()

    def append(self, layer: int, position: int, k: Tensor, v: Tensor):
        keys, values = self.keys[layer], self.values[layer]
        if keys is None:
            if self.in_place:
                shape = k.shape[:2] + (self.length, k.shape[-1])
                keys, values = k.new_empty(shape), v.new_empty(shape)
            else:
                keys, values = k, v
        elif not self.in_place:
            keys, values = torch.cat([keys, k], -2), torch.cat([values, v], -2)
        if self.in_place:
            keys[:, :, position] = k[:, :, 0]
            values[:, :, position] = v[:, :, 0]
        self.keys[layer], self.values[layer] = keys, values
        if self.in_place:
            return keys[:, :, : position + 1], values[:, :, : position + 1]
        return keys, values


class Transformer(Conditioner):
    r"""A causal transformer conditioner (decoder-only, pre-LayerNorm blocks).

    The ``n`` variables are a sequence in the order σ. Position ``k`` predicts variable
    ``σ_k`` from the values drawn at the positions before it (teacher forcing: the input is
    shifted by one):

    .. math::
        z_k = W_e\, e(x_{σ_{k-1}}) + P_k + E_{σ_k} + U\,\text{context}
        \quad (z_0 = s + P_0 + E_{σ_0} + U\,\text{context}),\\
        \theta_{σ_k} = W_{out}\, \mathrm{LN}(\mathrm{blocks}(z)_k) + b_{σ_k} + C_{σ_k}\,\text{context},

    with a learned start vector ``s``, step embeddings ``P_k`` and variable embeddings
    ``E_i`` (both, so that any order works: the step says how much has been seen, the
    variable which one is asked for). Each block is causal self-attention
    (``torch.nn.functional.scaled_dot_product_attention``, position ``k`` sees ``<= k``)
    and an MLP, each with a residual connection.

    log_prob is one pass over all positions, ``O(n^2 D + n D F)`` per row. Sampling keeps a
    key/value cache per layer: step ``k`` runs one position through the blocks, attending
    over ``k + 1`` cached keys, instead of a full pass per variable.

    Args:
        event_size: ``n``.
        d_model: ``D``, the width of every position.
        num_heads: attention heads per layer (``d_model`` must be divisible by it).
        num_layers: how many transformer blocks are stacked.
        dim_feedforward: the hidden width of each block's MLP (default ``4 * d_model``).
        dropout: dropout rate in training (attention weights and residual branches); never at
            evaluation or sampling (``net.eval()``).
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size`` (the context is added to every
            position through a linear map, and reaches every output directly), ``order``,
            ``seed``, ``initial_bias``.

    Example:
        >>> net = Transformer(event_size=4, d_model=8, num_heads=2, num_layers=1)
        >>> net(torch.zeros(2, 4, 1)).shape
        torch.Size([2, 4, 1])
    """

    def __init__(
        self,
        event_size: int,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        dim_feedforward: Optional[int] = None,
        dropout: float = 0.0,
        **common: Any,
    ):
        super().__init__(event_size, **common)
        self.d_model = d = check_positive_int("d_model", d_model)
        self.num_heads = check_positive_int("num_heads", num_heads)
        if d % self.num_heads:
            raise ValueError(f"d_model must be divisible by num_heads, got d_model={d} and num_heads={self.num_heads}")
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.dim_feedforward = 4 * d if dim_feedforward is None else check_positive_int("dim_feedforward", dim_feedforward)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        n, context_size = self.event_size, self.context_size
        self.register_buffer("inverse_order", torch.argsort(self.order))
        scale = d**-0.5
        self.value_embedding = nn.Linear(self.input_size, d, bias=False)  # W_e
        self.start = nn.Parameter(torch.randn(d) * scale)  # s
        self.step_embedding = nn.Parameter(torch.randn(n, d) * scale)  # P
        self.variable_embedding = nn.Parameter(torch.randn(n, d) * scale)  # E
        self.context_to_model = None if context_size is None else nn.Linear(context_size, d, bias=False)  # U
        self.blocks = nn.ModuleList(
            CausalBlock(d, self.num_heads, self.dim_feedforward, self.dropout) for _ in range(self.num_layers)
        )
        self.final_norm = nn.LayerNorm(d)
        self.readout = nn.Linear(d, self.param_size, bias=False)  # W_out
        # Small steps out of the blocks at first, so that a deep stack starts near the identity.
        with torch.no_grad():
            for block in self.blocks:
                block.attention_out.weight.mul_(math.sqrt(0.5 / self.num_layers))
                block.mlp[-1].weight.mul_(math.sqrt(0.5 / self.num_layers))

    def position_terms(self, context: Optional[Tensor]) -> Tensor:
        """What every input gets besides the shifted value: ``P_k + E_{σ_k}`` (+ the context
        term), ``(*, n, D)`` in step order (``(n, D)`` without context)."""
        terms = self.step_embedding + self.variable_embedding[self.orders[0]]
        if context is not None and self.context_to_model is not None:
            terms = terms + self.context_to_model(context).unsqueeze(-2)
        return terms

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        n = self.event_size
        order = self.orders[0]
        terms = self.position_terms(context)
        batch = torch.broadcast_shapes(x.shape[:-2], terms.shape[:-2])
        rows = batch.numel()
        shifted = shifted_inputs(x, batch, order, self.start, self.value_embedding)  # teacher forcing
        z = shifted + terms.expand(*batch, n, self.d_model).reshape(rows, n, self.d_model)
        for block in self.blocks:
            z = block(z)
        params = to_variable_order(self.readout(self.final_norm(z)), self.inverse_order, batch)
        return params + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _TransformerState(self, context, torch.Size(batch_shape))


class _TransformerState(IncrementalState):
    """A key/value cache per layer; step ``k`` runs one position through the blocks."""

    def __init__(self, net: Transformer, context: Optional[Tensor], batch_shape: torch.Size):
        self.net, self.batch_shape = net, batch_shape
        self.order = net.orders[0].tolist()
        self.rows = batch_shape.numel()
        self.offset = net.output_offset(context)  # (*, n, P) or (n, P)
        self.terms = net.position_terms(context)  # (*, n, D) or (n, D)
        self.cache = KVCache(net.num_layers, net.event_size)
        self._run(0, net.start.expand(self.rows, -1))

    def _run(self, position: int, value_term: Tensor) -> None:
        term = self.terms[..., position, :].expand(*self.batch_shape, self.net.d_model).reshape(self.rows, self.net.d_model)
        z = (value_term + term).unsqueeze(1)  # (B, 1, D)
        for layer, block in enumerate(self.net.blocks):
            z = block.step(z, self.cache, layer, position)
        self.top = self.net.final_norm(z[:, 0])

    def params(self, step: int) -> Tensor:
        out = self.net.readout(self.top).reshape(*self.batch_shape, self.net.param_size)
        return out + self.offset[..., self.order[step], :]

    def observe(self, step: int, value: Tensor) -> None:
        if step + 1 == len(self.order):  # nothing comes after the last variable
            return
        self._run(step + 1, self.net.value_embedding(value.reshape(self.rows, self.net.input_size)))


register_conditioner(
    Transformer,
    "transformer",
    example={"d_model": 8, "num_heads": 2, "num_layers": 1},
    cli_defaults={"d_model": 64, "num_heads": 4, "num_layers": 2, "lr": 1e-3},
)
