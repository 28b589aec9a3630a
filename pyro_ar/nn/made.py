"""MADE: a masked multilayer perceptron whose masks come from degrees of an ordering."""

from __future__ import annotations

from typing import Any, List, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

from pyro_ar.nn.base import SAMPLING_BLOCK, Conditioner, IncrementalState, check_positive_int
from pyro_ar.nn.staircase import staircase_linear, staircase_plan
from pyro_ar.registry import register_conditioner

__all__ = ["MADE", "made_degrees"]


def made_degrees(
    rank: Tensor, input_size: int, hidden_sizes: Sequence[int], generator: Optional[torch.Generator]
) -> List[Tensor]:
    """Degrees of the input units and of each hidden layer of one MADE member.

    An input feature of the variable at position ``k`` of the order has degree ``k + 1``.
    A hidden unit of degree ``m`` may see inputs of degree ``<= m``; an output of degree
    ``k + 1`` may see hidden units of degree ``<= k``. Hidden degrees lie in ``[1, n - 1]``
    (``0`` when ``n == 1``): cycled (and sorted) when ``generator`` is None, else drawn at random from
    the smallest degree of the layer below upward (connectivity-agnostic training). A layer
    narrower than ``n - 1`` cannot hold every degree: its degrees are spread evenly over
    ``[1, n - 1]`` instead, keeping ``n - 1`` so that no input is left dead.

    Returns:
        ``[input degrees (n I,), layer-1 degrees (H_1,), ..., layer-L degrees (H_L,)]``.
    """
    n = rank.numel()
    degrees = [(rank + 1).repeat_interleave(input_size)]
    for size in hidden_sizes:
        if n == 1:
            deg = torch.zeros(size, dtype=torch.long, device="cpu")
        elif generator is None and size < n - 1:
            deg = torch.linspace(1, n - 1, size, device="cpu").round().long()
        elif generator is None:  # sorted, so that member 0's masks are staircases (nn/staircase.py)
            deg = (torch.arange(size, device="cpu") % (n - 1) + 1).sort().values
        else:
            low = max(int(degrees[-1].min()), 1)
            deg = torch.randint(low, n, (size,), generator=generator, device="cpu")
        degrees.append(deg)
    return degrees


#: Hidden-layer nonlinearities by name (names keep checkpoints plain). ``"linear"`` makes the
#: whole network linear in ``x``: a linear AR model factorized through the hidden layers.
ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "linear": nn.Identity,
}
#: The names in :data:`ACTIVATIONS`, as a type (the command line offers them as choices).
Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]


class MADE(Conditioner):
    r"""Masked autoencoder for distribution estimation (Germain et al., 2015).

    An MLP of any depth whose weights are multiplied by fixed binary masks so that output
    ``i`` sees only the inputs before ``i`` in the order. With ``num_masks = M > 1`` it
    holds ``M`` members: member 0 uses ``order`` and cycled hidden degrees; the others draw
    hidden degrees at random and, with ``order_agnostic=True``, a random order as well. The
    distribution mixes members exactly (``log p = logsumexp_m log p_m - log M``); training
    picks one member per step.

    With ``residual_blocks = B > 0``, ``B`` masked residual blocks follow the last hidden
    layer, at its width: ``z <- z + W_2 act(W_1 act(z) + b_1) + b_2`` on that layer's
    pre-activation ``z``, whose masks let a unit see units of equal or lower degree (so each
    unit keeps its degree through every block and the AR property holds at any depth); the
    output layer then reads ``act(z)``. The second layer of each block starts at zero, so
    that a fresh residual MADE computes the same function as the plain one.

    log_prob is one masked forward pass. Sampling computes each hidden unit exactly once,
    at the first step at which all of its inputs are known (units grouped by degree), so
    drawing ``n`` variables costs about one pass of arithmetic.

    Args:
        event_size: ``n``.
        hidden_sizes: the width of each hidden layer (at least one layer).
        num_masks: ``M >= 1`` members (masks/orders); the model is their exact mixture.
        order_agnostic: whether members ``1..M-1`` draw their own random orders.
        activation: the hidden nonlinearity (``"linear"``: a linear AR model factorized through the layers).
        residual_blocks: masked residual blocks (two layers each) after the last hidden layer;
            0 is the plain MADE.
        **common: the arguments of every conditioner (:class:`~pyro_ar.nn.Conditioner`):
            ``input_size``, ``param_size``, ``context_size`` (the context feeds the first hidden
            layer and every output directly, so the first variable depends on it too),
            ``order`` (of member 0), ``seed`` (of random orders and degrees), ``initial_bias``.

    Example:
        >>> net = MADE(event_size=4, hidden_sizes=[16, 16], num_masks=2)
        >>> net(torch.zeros(2, 4, 1), member=1).shape
        torch.Size([2, 4, 1])
    """

    def __init__(
        self,
        event_size: int,
        hidden_sizes: Sequence[int] = (64,),
        num_masks: int = 1,
        order_agnostic: bool = True,
        activation: Activation = "relu",
        residual_blocks: int = 0,
        **common: Any,
    ):
        super().__init__(event_size, **common)
        order, seed, context_size = common.get("order"), self.seed, self.context_size
        if not isinstance(activation, str) or activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if isinstance(hidden_sizes, int) or not isinstance(hidden_sizes, Sequence) or len(hidden_sizes) == 0:
            raise ValueError(f"hidden_sizes must be a non-empty list of ints, got {hidden_sizes!r}")
        self.hidden_sizes = [check_positive_int("each of hidden_sizes", h) for h in hidden_sizes]
        self.num_masks = check_positive_int("num_masks", num_masks)
        self.residual_blocks = check_positive_int("residual_blocks", residual_blocks, minimum=0)
        n, n_in, n_out = self.event_size, self.event_size * self.input_size, self.event_size * self.param_size
        widths = [n_in, *self.hidden_sizes]
        self.hidden_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.output_layer = nn.Linear(widths[-1], n_out, bias=False)
        # Residual blocks: pairs of square layers on the last hidden width (none when 0, so
        # that a plain MADE's parameters and checkpoints are as before).
        self.residual_layers = nn.ModuleList(nn.Linear(widths[-1], widths[-1]) for _ in range(2 * self.residual_blocks))
        with torch.no_grad():
            for layer in self.residual_layers[1::2]:  # each block starts as the identity
                layer.weight.zero_()
                layer.bias.zero_()
        self.context_to_hidden = None if context_size is None else nn.Linear(context_size, widths[1], bias=False)
        self.activation = ACTIVATIONS[activation]()

        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        orders, degrees = [], []
        for m in range(self.num_masks):
            if m == 0 and isinstance(order, str) and order == "random":
                # The first draw of the shared stream (equal to make_order(order, n, seed)), so
                # that the random orders of the other members continue it and do not repeat it.
                member_order = torch.randperm(n, generator=gen, device="cpu")
            elif m == 0:
                member_order = self.orders[0]
            elif order_agnostic:
                member_order = torch.randperm(n, generator=gen, device="cpu")
            else:
                member_order = orders[0]
            rank = torch.argsort(member_order)
            orders.append(member_order)
            degrees.append(made_degrees(rank, self.input_size, self.hidden_sizes, None if m == 0 else gen))
        self.register_buffer("orders", torch.stack(orders))
        # hidden_degrees_l: (M, H_l); masks_l: (M, out, in) for every layer incl. the output.
        for l in range(len(self.hidden_sizes)):
            self.register_buffer(f"hidden_degrees_{l}", torch.stack([d[l + 1] for d in degrees]))
        # The masks are as large as the weights: built on the default device (degrees are small
        # and on the CPU), so that a model built on the meta device allocates nothing.
        here = torch.get_default_device()
        degrees = [[deg.to(here) for deg in d] for d in degrees]
        orders = [o.to(here) for o in orders]
        for l in range(len(self.hidden_sizes) + 1):
            if l < len(self.hidden_sizes):
                masks = [d[l + 1].unsqueeze(1) >= d[l].unsqueeze(0) for d in degrees]
            else:  # output of variable i (degree rank_i + 1) sees hidden degrees <= rank_i
                masks = [
                    (torch.argsort(o) + 1).repeat_interleave(self.param_size).unsqueeze(1) > d[-1].unsqueeze(0)
                    for o, d in zip(orders, degrees)
                ]
            self.register_buffer(f"masks_{l}", torch.stack(masks).float())
        if self.residual_blocks:  # a unit sees the units of equal or lower degree: degrees kept
            last = [d[-1] for d in degrees]
            self.register_buffer("residual_masks", torch.stack([d.unsqueeze(1) >= d.unsqueeze(0) for d in last]).float())
        self._plan_staircases()
        # Loaded masks (an older checkpoint's degrees) get their own plans.
        self.register_load_state_dict_post_hook(_replan_after_load)

    def _plan_staircases(self) -> None:
        """Per member, the :func:`~pyro_ar.nn.staircase.staircase_plan` of every layer's
        mask (None where it is not a staircase), then of the residual mask: derived from the
        mask buffers only, never from the weights, so that no parameter write can make it stale."""
        layers = len(self.hidden_sizes) + 1
        self._plans = [
            [staircase_plan(getattr(self, f"masks_{l}")[m]) for l in range(layers)]
            + [staircase_plan(self.residual_masks[m]) if self.residual_blocks else None]
            for m in range(self.num_masks)
        ]

    def _check_member(self, member: int) -> int:
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < self.num_masks:
            raise ValueError(f"mask index must be an int in [0, {self.num_masks - 1}], got {member!r}")
        return member

    def masked_weights(self, member: int) -> List[Tensor]:
        """The weights of every layer (hidden..., output) multiplied by member's masks."""
        self._check_member(member)
        layers = [*self.hidden_layers, self.output_layer]
        return [layer.weight * getattr(self, f"masks_{l}")[member].to(layer.weight.dtype) for l, layer in enumerate(layers)]

    def masked_residual_weights(self, member: int) -> List[Tensor]:
        """The weights of the residual layers (two per block) multiplied by member's mask."""
        self._check_member(member)
        if not self.residual_blocks:
            return []
        mask = self.residual_masks[member]
        return [layer.weight * mask.to(layer.weight.dtype) for layer in self.residual_layers]

    def _residual(self, z: Tensor, member: int) -> Tensor:
        """``z`` through every residual block: ``z + W_2 act(W_1 act(z) + b_1) + b_2``, per block."""
        act, layers = self.activation, self.residual_layers
        mask, plan = self.residual_masks[member], self._plans[member][-1]
        for b in range(self.residual_blocks):
            first, second = layers[2 * b], layers[2 * b + 1]
            inner = act(staircase_linear(act(z), first.weight, first.bias, mask, plan))
            z = z + staircase_linear(inner, second.weight, second.bias, mask, plan)
        return z

    def forward(self, x: Tensor, context: Optional[Tensor] = None, member: int = 0) -> Tensor:
        plans = self._plans[self._check_member(member)]
        h = x.flatten(-2)
        last = len(self.hidden_layers) - 1
        for l, layer in enumerate(self.hidden_layers):
            h = staircase_linear(h, layer.weight, layer.bias, getattr(self, f"masks_{l}")[member], plans[l])
            if l == 0 and context is not None and self.context_to_hidden is not None:
                h = h + self.context_to_hidden(context)
            if l == last and self.residual_blocks:
                h = self._residual(h, member)
            h = self.activation(h)
        out_mask, out_plan = getattr(self, f"masks_{last + 1}")[member], plans[last + 1]
        if context is None:  # the output bias rides in the last matmul
            out = staircase_linear(h, self.output_layer.weight, self.output_bias.flatten(), out_mask, out_plan)
            return out.unflatten(-1, (self.event_size, self.param_size))
        out = staircase_linear(h, self.output_layer.weight, None, out_mask, out_plan)
        return out.unflatten(-1, (self.event_size, self.param_size)) + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size, member: int = 0) -> IncrementalState:
        return _MADEState(self, context, batch_shape, self._check_member(member))


def _replan_after_load(module: MADE, _incompatible_keys: Any) -> None:
    module._plan_staircases()  # a module-level function (not a lambda): the module stays picklable


class _MADEState(IncrementalState):
    """Pre-activations filled in as inputs arrive; each hidden unit is evaluated once.

    In step terms, a hidden unit of degree ``D`` (any layer) depends only on the variables
    drawn at steps ``< D``, and the output of step ``t`` sees last-layer units of degree
    ``<= t``. So at step ``k`` exactly the units of degree ``k`` become computable, layer by
    layer, and their contributions are pushed to the next layer at once.

    The block interface evaluates, for a block of steps ``[a, b)``, only the units of degree
    in ``(a, b)`` from guessed values (two small matmuls per layer and round); the units of
    degree ``<= a`` are settled and enter through their pushed contributions. Observing the
    block pushes its values and settles the units of degree ``<= b``.

    Residual blocks keep the degrees of the last hidden layer, so they are settled with it:
    when last-layer units of degree ``k`` are complete, each block's inner units of degree
    ``k`` are complete too once the block's input ``act(z)`` of those units has been pushed
    into the inner pre-activations, and so on through the block's second layer.
    """

    block_size = SAMPLING_BLOCK

    def __init__(self, net: MADE, context: Optional[Tensor], batch_shape: torch.Size, member: int):
        self.net = net
        self.batch_shape = batch_shape
        self.order = net.orders[member].tolist()
        self.weights = net.masked_weights(member)
        n = net.event_size
        self.degrees = [getattr(net, f"hidden_degrees_{l}")[member] for l in range(len(net.hidden_sizes))]
        self.groups = []  # groups[l][k]: indices of layer-l units of degree k
        for deg in self.degrees:
            idx = torch.argsort(deg, stable=True)
            counts = torch.bincount(deg, minlength=n).tolist()
            self.groups.append(list(idx.split(counts)))
        pre = []
        for l, layer in enumerate(net.hidden_layers):
            start = layer.bias
            if l == 0 and context is not None and net.context_to_hidden is not None:
                start = start + net.context_to_hidden(context)
            pre.append(start.expand(*batch_shape, layer.bias.shape[0]).clone())
        self.pre = pre
        # Residual blocks: running pre-activations of each layer of each block, (*, H).
        self.residual_weights = net.masked_residual_weights(member)
        width = net.hidden_sizes[-1]
        self.residual_pre = [layer.bias.expand(*batch_shape, width).clone() for layer in net.residual_layers]
        offset = net.output_offset(context)
        self.out = offset.expand(*batch_shape, n, net.param_size).flatten(-2).clone()
        self.block_start = -1

    def _settle(self, units_per_layer: List[Tensor]) -> None:
        """Evaluate the given units of every layer (their inputs are all known) and push them."""
        num_layers = len(self.pre)
        for l, units in enumerate(units_per_layer):
            if units.numel() == 0:
                continue
            z = self.pre[l][..., units]
            if l + 1 == num_layers:
                z = self._settle_residual(z, units)
            h = self.net.activation(z)
            target = self.weights[l + 1][:, units]
            if l + 1 < num_layers:
                self.pre[l + 1] += h @ target.T
            else:
                self.out += h @ target.T

    def _settle_residual(self, z: Tensor, units: Tensor) -> Tensor:
        """The complete last-layer pre-activations ``z`` of ``units`` through every residual block."""
        act, weights, pre = self.net.activation, self.residual_weights, self.residual_pre
        for first in range(0, len(weights), 2):
            second = first + 1
            pre[first] += act(z) @ weights[first][:, units].T  # reaches units of equal degree too
            inner = act(pre[first][..., units])
            pre[second] += inner @ weights[second][:, units].T
            z = z + pre[second][..., units]
        return z

    def params(self, step: int) -> Tensor:
        self._settle([groups[step] for groups in self.groups])
        p = self.net.param_size
        i = self.order[step]
        return self.out[..., i * p : (i + 1) * p].clone()

    def observe(self, step: int, value: Tensor) -> None:
        size = self.net.input_size
        j = self.order[step]
        self.pre[0] += value @ self.weights[0][:, j * size : (j + 1) * size].T

    # ---- blocks of steps --------------------------------------------------------------------

    def _columns(self, start: int, stop: int, size: int) -> Tensor:
        """Feature columns of the variables at steps ``start..stop-1``, in step order."""
        variables = torch.tensor(self.order[start:stop], device=self.out.device)
        return (variables.unsqueeze(-1) * size + torch.arange(size, device=variables.device)).flatten()

    def _start_block(self, start: int) -> None:
        net, n = self.net, self.net.event_size
        stop = min(start + self.block_size, n)
        if start == 0:  # units of degree 0 (only when n == 1) see no input at all
            self._settle([(deg <= 0).nonzero().squeeze(-1) for deg in self.degrees])
        inputs = self._columns(start, stop, net.input_size)
        outputs = self._columns(start, stop, net.param_size)
        # The units the block's outputs need that are not settled: degrees in (start, stop - 1].
        units = [((deg > start) & (deg < stop)).nonzero().squeeze(-1) for deg in self.degrees]
        self.block_base = [self.pre[l][..., u] for l, u in enumerate(units)]
        self.block_weights = [self.weights[0][units[0]][:, inputs].T]
        self.block_weights += [self.weights[l][units[l]][:, units[l - 1]].T for l in range(1, len(units))]
        last = units[-1]
        self.block_residual = [
            (pre[..., last], weight[last][:, last].T) for pre, weight in zip(self.residual_pre, self.residual_weights)
        ]
        self.block_out_base = self.out[..., outputs]
        self.block_out_weight = self.weights[-1][outputs][:, units[-1]].T
        self.block_start, self.block_stop = start, stop
        self.block_inputs = inputs

    def block_params(self, start: int, guess: Tensor) -> Tensor:
        if start != self.block_start:
            self._start_block(start)
        h = guess.flatten(-2)
        act, last = self.net.activation, len(self.block_base) - 1
        for l, (base, weight) in enumerate(zip(self.block_base, self.block_weights)):
            h = base + h @ weight
            if l == last:
                for b in range(0, len(self.block_residual), 2):
                    (inner_base, inner_weight), (outer_base, outer_weight) = self.block_residual[b : b + 2]
                    h = h + outer_base + act(inner_base + act(h) @ inner_weight) @ outer_weight
            h = act(h)
        out = self.block_out_base + h @ self.block_out_weight
        return out.unflatten(-1, (self.block_stop - start, self.net.param_size))

    def observe_block(self, start: int, values: Tensor) -> None:
        self.pre[0] += values.flatten(-2) @ self.weights[0][:, self.block_inputs].T
        stop = self.block_stop
        self._settle([((deg > start) & (deg <= stop)).nonzero().squeeze(-1) for deg in self.degrees])
        self.block_start = -1


register_conditioner(
    MADE, "made", example={"hidden_sizes": [12]}, cli_defaults={"hidden_sizes": [512], "lr": 3e-3}
)
