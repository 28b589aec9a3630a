"""The conditioner interface shared by every network in :mod:`pyro_ar.nn`.

A conditioner maps encoded values ``x: (*, n, I)`` (and an optional context ``(*, c)``)
to the parameters of all ``n`` conditionals, ``(*, n, P)``, in one pass, such that the
parameters of variable ``order[k]`` depend only on the variables ``order[:k]`` and the
context. It also gives an :class:`IncrementalState` for sampling, which produces the
parameters of one variable at a time and is told each value as it is drawn.

A conditioner may hold several *members* (MADE's masks), each with its own order;
``orders`` is a ``(M, n)`` buffer. A distribution (:class:`pyro_ar.Autoregressive`) uses one
order: a single-order conditioner or one member's view, ``conditioner.member(k)``; the
ensemble of all members is :class:`pyro_ar.distributions.Ensemble`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import functools
import inspect
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

__all__ = ["Conditioner", "ConditionerMember", "IncrementalState", "LinearBlockState", "make_order", "OrderSpec", "SAMPLING_BLOCK"]

OrderSpec = Union[None, str, Sequence[int], Tensor]


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int ``>= minimum``, else raise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


#: Orders and other small structure are built on the CPU whatever the default device, so that
#: a model can be built on the ``meta`` device to measure it (see ``pyro_ar.models``).
_CPU = torch.device("cpu")


def make_order(order: OrderSpec, n: int, seed: Optional[int] = None) -> Tensor:
    """Turn an order specification into a permutation of ``range(n)``, ``(n,)`` long.

    Args:
        order: ``None`` (identity), ``"random"`` (a random permutation drawn with ``seed``),
            ``"reverse"``, or a sequence/tensor holding each of ``0..n-1`` exactly once.
        n: the number of variables.
        seed: the seed of a random order; ``None`` uses 0 so that models are reproducible.
    """
    if order is None:
        return torch.arange(n, device=_CPU)
    if isinstance(order, str):
        if order == "random":
            gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
            return torch.randperm(n, generator=gen, device=_CPU)
        if order == "reverse":
            return torch.arange(n - 1, -1, -1, device=_CPU)
        raise ValueError(f"order must be None, 'random', 'reverse' or a permutation, got {order!r}")
    try:
        perm = torch.as_tensor(order, device=_CPU)
    except (TypeError, ValueError) as err:
        raise ValueError(f"order must be a permutation of 0..{n - 1}, got {order!r}") from err
    if perm.dtype.is_floating_point or perm.dtype == torch.bool or perm.dtype.is_complex:
        raise ValueError(f"order must hold integers, got dtype {perm.dtype}")
    perm = perm.long().cpu()
    if perm.dim() != 1 or perm.numel() != n:
        raise ValueError(f"order must be a permutation of length event_size={n}, got shape {tuple(perm.shape)}")
    if not torch.equal(perm.sort().values, torch.arange(n, device=_CPU)):
        raise ValueError(f"order must be a permutation of 0..{n - 1} (each index once), got {perm.tolist()}")
    return perm


#: Steps per block for sampling states with a block interface (FVSBN, MADE): small enough
#: that a few fixed-point rounds settle a block, large enough to cut the sequential steps.
SAMPLING_BLOCK = 32


class IncrementalState(ABC):
    """Sampling state of a conditioner for one member, over a batch of shape ``(*)``.

    The sampling loop alternates ``params(k)`` (the parameters of variable ``order[k]``,
    ``(*, P)``) and ``observe(k, x_k)`` (its encoded value, ``(*, I)``), for k = 0..n-1.

    A state whose ``block_size`` is above 1 can also give the parameters of a whole block
    of steps at once from *guessed* values of that block (:meth:`block_params`), each step's
    parameters using only the guesses at earlier steps. The loop then draws the block by
    fixed-point iteration with fixed noise: after ``t`` rounds the first ``t`` steps are
    exact, and a round that changes nothing has reached the one-by-one sample. FVSBN and
    MADE use this to replace ``b`` small sequential steps with a few rounds of block
    arithmetic.
    """

    #: Steps per block of :meth:`block_params` (1: only the step-by-step interface; states
    #: with a block interface use :data:`SAMPLING_BLOCK`).
    block_size: int = 1

    @abstractmethod
    def params(self, step: int) -> Tensor:
        """Parameters of the variable drawn at ``step``: ``(*, P)``."""

    @abstractmethod
    def observe(self, step: int, value: Tensor) -> None:
        """Record the encoded value ``(*, I)`` of the variable drawn at ``step``."""

    def block_params(self, start: int, guess: Tensor) -> Tensor:
        """Parameters ``(*, b, P)`` of steps ``start .. start+b-1`` (``b`` = ``guess.shape[-2]``,
        blocks starting at multiples of ``block_size``), given the encoded guesses
        ``(*, b, I)`` for those steps and the values observed before ``start``."""
        raise NotImplementedError(f"{type(self).__name__} has no block interface (block_size=1)")

    def observe_block(self, start: int, values: Tensor) -> None:
        """Record the encoded values ``(*, b, I)`` drawn at steps ``start .. start+b-1``."""
        raise NotImplementedError(f"{type(self).__name__} has no block interface (block_size=1)")


class LinearBlockState(IncrementalState):
    """Running linear terms of every step, one block of steps at a time, in step order.

    For conditioners whose step ``k`` reads ``U`` units ``offset_k + sum_{j<k} W_kj e(x_j)``
    (FVSBN's parameters, PerVariableMLP's hidden pre-activations). Updating all ``n`` steps
    after every draw would move ``O(R n U)`` memory per step; instead a block of ``b`` steps
    starts from one matmul of the values drawn before it, and each draw adds its column to
    the rest of its block only (``O(R b U)``). :meth:`block_linear` gives a whole block's
    terms from guessed values in one matmul (the block interface). Updates are out of place,
    so ``rsample`` can differentiate through the loop. Subclasses turn :meth:`linear` into
    parameters.

    Args:
        weight_t: ``(n I, n U)``; entry ``[j I + a, k U + u]`` is the effect of feature ``a``
            of the value drawn at step ``j`` on unit ``u`` of step ``k`` (zero unless ``j < k``).
        offset: ``(R, n U)``, the terms that no variable feeds, for ``R = prod(batch_shape)`` rows.
        sizes: ``(n, I, U)``.
        batch_shape: the batch shape of the state.
    """

    block_size = SAMPLING_BLOCK

    def __init__(self, weight_t: Tensor, offset: Tensor, sizes: "tuple[int, int, int]", batch_shape: torch.Size):
        self.weight_t, self.offset, self.batch_shape = weight_t, offset, batch_shape
        self.num_steps, self.input_features, self.units = sizes
        # Rows are kept flat, (R, ...); values are reshaped only when the batch is not 1-D.
        self.flat_batch = len(batch_shape) == 1
        self.prefix: List[Tensor] = []  # encoded values of finished blocks, each (R, b I)
        self.current: List[Tensor] = []  # encoded values of the current block, each (R, I)
        self.block_start, self.block_end = -1, 0  # no block started yet

    def _start_block(self, start: int) -> None:
        """The terms of block ``start..end-1`` from the values before ``start`` alone."""
        i_size, units = self.input_features, self.units
        end = min(start + self.block_size, self.num_steps)
        cols = slice(start * units, end * units)
        acc = self.offset[:, cols]
        if start > 0:
            drawn = torch.cat(self.prefix, -1) if len(self.prefix) > 1 else self.prefix[0]
            acc = torch.addmm(acc, drawn, self.weight_t[: start * i_size, cols])
        self.acc = self.block_offset = acc  # (R, b U)
        self.block_weight = self.weight_t[start * i_size : end * i_size, cols]  # (b I, b U)
        # Each step's (I, b U) rows of it, cut in one call.
        self.step_weights = self.block_weight.unflatten(0, (end - start, i_size)).unbind(0)
        self.block_start, self.block_end = start, end

    def linear(self, step: int) -> Tensor:
        """The ``(R, U)`` terms of ``step``, from every value observed before it."""
        if step == self.block_end:
            self._start_block(step)
        return self.acc.narrow(1, (step - self.block_start) * self.units, self.units)

    def observe(self, step: int, value: Tensor) -> None:
        if not self.flat_batch:
            value = value.reshape(-1, self.input_features)
        self.current.append(value)
        if step + 1 < self.block_end:
            self.acc = torch.addmm(self.acc, value, self.step_weights[step - self.block_start])
        else:
            self.prefix.append(torch.cat(self.current, -1))
            self.current = []

    def block_linear(self, start: int, guess: Tensor) -> Tensor:
        """The ``(R, b, U)`` terms of the block at ``start`` given guessed values ``(*, b, I)``."""
        if start != self.block_start:
            self._start_block(start)
        b = self.block_end - start
        flat = torch.addmm(self.block_offset, guess.reshape(-1, b * self.input_features), self.block_weight)
        return flat.unflatten(-1, (b, self.units))

    def observe_block(self, start: int, values: Tensor) -> None:
        self.prefix.append(values.reshape(-1, values.shape[-2] * self.input_features))


class Conditioner(nn.Module):
    """Base class of AR conditioner networks.

    A conditioner has one order (``order``, ``(n,)``) unless it holds several members (MADE's
    masks, ``num_members > 1``); then ``member(k)`` is the single-order view of member
    ``k`` that a distribution uses, and ``forward``/``incremental`` take ``member=``.

    Not an ``abc.ABC``: ABCMeta would clash with ``PyroModule``'s metaclass, and converting a
    conditioner with ``pyro.nn.module.to_pyro_module_`` (for priors on its weights) must work.

    The arguments every conditioner takes are declared here once; a subclass names its own
    options and passes the rest on, ``def __init__(self, event_size, hidden_size=64, **common)``.
    Its constructor arguments are recorded as they were given (``config()``), so that
    :meth:`from_config` rebuilds the same network; a subclass registers itself with
    :func:`pyro_ar.registry.register_conditioner` (or :func:`pyro_ar.register`).

    The base registers the ``orders`` buffer of one order, ``(1, n)``; a conditioner with
    several members (MADE) replaces it with its own ``(M, n)``.

    Args:
        event_size: ``n``, the number of variables.
        input_size: ``I``, features per variable fed back (1 binary/continuous, K one-hot).
        param_size: ``P``, parameters per variable that the conditional head needs.
        context_size: ``c`` for a conditional model ``p(x | context)``, or ``None``.
        order: ``None`` (identity), ``"random"``, ``"reverse"`` or a permutation of ``0..n-1``.
        seed: the seed of a random order (and of any other random structure).
        initial_bias: ``(P,)`` starting output bias of every variable, or ``(n, P)`` one per variable.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_records_config", False):
            cls.__init__ = _recording_config(init)

    def __init__(
        self,
        event_size: int,
        *,
        input_size: int = 1,
        param_size: int = 1,
        context_size: Optional[int] = None,
        order: OrderSpec = None,
        seed: Optional[int] = None,
        initial_bias: Optional[Tensor] = None,
    ):
        super().__init__()
        self.event_size = check_positive_int("event_size", event_size)
        self.input_size = check_positive_int("input_size", input_size)
        self.param_size = check_positive_int("param_size", param_size)
        if context_size is not None:
            check_positive_int("context_size", context_size)
        self.context_size = context_size
        bias = torch.zeros(param_size) if initial_bias is None else torch.as_tensor(initial_bias, dtype=torch.float32)
        if bias.shape not in ((param_size,), (event_size, param_size)):
            raise ValueError(
                f"initial_bias must have shape ({param_size},) or, one row per variable (a Mixed head has one "
                f"head per variable), ({event_size}, {param_size}); got {tuple(bias.shape)}"
            )
        # Every conditioner ends in the same per-variable output bias, and the context reaches
        # every output directly (so even the first variable in the order sees it).
        self.output_bias = nn.Parameter(bias.expand(event_size, param_size).clone())
        self.context_to_params = None if context_size is None else nn.Linear(context_size, event_size * param_size, bias=False)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
            raise ValueError(f"seed must be None or an int in 0..2**63-1, got {seed!r}")
        self.seed = seed
        self.register_buffer("orders", make_order(order, self.event_size, seed).unsqueeze(0))

    #: ``(M, n)`` long: the order of each member.
    orders: Tensor

    # ---- configuration -------------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        """The constructor arguments this network was built with (``from_config`` inverts it)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Conditioner":
        """A fresh network built from :meth:`config`'s dict (new weights)."""
        return cls(**config)

    # ---- members ---------------------------------------------------------------------------

    @property
    def num_members(self) -> int:
        """How many masks/orders this conditioner holds (1 except for MADE ensembles)."""
        return self.orders.shape[0]

    @property
    def order(self) -> Tensor:
        """The order ``(n,)`` of a single-order conditioner: ``order[k]`` is drawn at step ``k``."""
        if self.num_members != 1:
            raise ValueError(f"this conditioner has {self.num_members} members; use member(k).order")
        return self.orders[0]

    @property
    def network(self) -> nn.Module:
        """The module holding the weights (itself; a :class:`ConditionerMember` gives its parent)."""
        return self

    def member(self, index: int) -> "Union[Conditioner, ConditionerMember]":
        """The single-order conditioner of member ``index`` (``self`` when there is one member)."""
        m = self.num_members
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < m:
            raise ValueError(f"member index must be an int in [0, {m - 1}], got {index!r}")
        return self if m == 1 else ConditionerMember(self, index)

    # ---- evaluation ------------------------------------------------------------------------

    def check_context(self, context: Optional[Tensor]) -> Optional[Tensor]:
        """Validate a context against ``context_size``; raise ``ValueError`` naming the problem."""
        if self.context_size is None:
            if context is not None:
                raise ValueError(
                    "this model was built without context (context_size=None) but a context was given"
                )
            return None
        if context is None:
            raise ValueError(f"this model needs a context of size context_size={self.context_size}, got None")
        if not isinstance(context, Tensor):
            raise ValueError(f"context must be a torch.Tensor, got {type(context).__name__}")
        if not context.dtype.is_floating_point:
            raise ValueError(f"context must be floating point, got dtype {context.dtype}")
        if context.dim() == 0 or context.shape[-1] != self.context_size:
            raise ValueError(
                f"context must have shape (*, {self.context_size}) (context_size={self.context_size}), "
                f"got shape {tuple(context.shape)}"
            )
        if not bool(torch.isfinite(context).all()):
            raise ValueError("context contains NaN or inf")
        return context

    def output_offset(self, context: Optional[Tensor]) -> Tensor:
        """The part of the parameters that no variable feeds: bias + context term, ``(*, n, P)``."""
        if context is None or self.context_to_params is None:
            return self.output_bias
        offset = self.context_to_params(context).unflatten(-1, (self.event_size, self.param_size))
        return offset + self.output_bias

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        """Parameters of all conditionals in one pass.

        Args:
            x: encoded values ``(*, n, I)``.
            context: ``(*, c)`` or ``None``; broadcast against ``x``'s batch dimensions.

        Returns:
            ``(*, n, P)``: row ``i`` holds the parameters of variable ``i``. (A conditioner
            with several members also takes ``member=``.)
        """
        raise NotImplementedError

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        """A fresh sampling state for ``batch_shape`` rows (``context`` broadcast to it).
        (A conditioner with several members also takes ``member=``.)"""
        raise NotImplementedError


class ConditionerMember:
    """Member ``index`` of a conditioner with several members, as a single-order conditioner.

    A light view, not a module: the weights stay in ``network``. It has the attributes and
    calls that :class:`pyro_ar.Autoregressive` uses (``event_size``, ``input_size``,
    ``param_size``, ``context_size``, ``order``, ``check_context``, ``__call__``,
    ``incremental``).
    """

    num_members = 1

    def __init__(self, network: Conditioner, index: int):
        self.network = network
        self.index = index

    event_size = property(lambda self: self.network.event_size)
    input_size = property(lambda self: self.network.input_size)
    param_size = property(lambda self: self.network.param_size)
    context_size = property(lambda self: self.network.context_size)

    @property
    def order(self) -> Tensor:
        return self.network.orders[self.index]

    def check_context(self, context: Optional[Tensor]) -> Optional[Tensor]:
        return self.network.check_context(context)

    def __call__(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        return self.network(x, context, member=self.index)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return self.network.incremental(context, batch_shape, member=self.index)

    def __repr__(self) -> str:
        return f"{type(self.network).__name__}.member({self.index})"


def _recording_config(init):
    """Wrap a conditioner's ``__init__`` so that the outermost call records its arguments."""
    signature = inspect.signature(init)

    passed_on = [p.name for p in signature.parameters.values() if p.kind is p.VAR_KEYWORD]

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        outermost = "_config" not in self.__dict__
        if outermost:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))  # self
            for name in passed_on:  # **common: the base's arguments, with the base's defaults
                arguments.update({**_BASE_DEFAULTS, **arguments.pop(name)})
            object.__setattr__(self, "_config", arguments)
        init(self, *args, **kwargs)

    wrapped._records_config = True
    return wrapped


#: The defaults of the arguments every conditioner takes (recorded for ``**common``).
_BASE_DEFAULTS = {
    p.name: p.default
    for p in inspect.signature(Conditioner.__init__).parameters.values()
    if p.default is not p.empty
}
