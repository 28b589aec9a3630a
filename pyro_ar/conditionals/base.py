"""The interface every conditional head implements (:class:`Conditional`), and what heads share."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, Dict, Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

__all__ = ["Conditional", "MAX_SIZE"]


#: The largest number of categories or components a head accepts (far past what fits in
#: memory for any model; the model's own size check refuses smaller ones that do not fit).
MAX_SIZE = 2**24


def _init_arguments(cls: type) -> list:
    """The names of ``cls``'s constructor arguments (none when it has no ``__init__``)."""
    if cls.__init__ is object.__init__:
        return []
    return list(inspect.signature(cls.__init__).parameters)[1:]


class Conditional(ABC):
    """Base class of the per-variable conditional distributions.

    Subclasses set ``param_size``, ``input_size``, ``support``, ``is_discrete`` and
    implement :meth:`distribution` and :meth:`encode`.
    """

    param_size: int
    input_size: int
    support: constraints.Constraint
    is_discrete: bool = True
    has_rsample: bool = False
    #: What one value is, for data preparation: ``"binary"`` (0/1), ``"categorical"``
    #: (integer levels ``0..K-1``) or ``"real"``.
    value_kind: str = "binary"
    #: The name this head is registered under (set by :func:`pyro_ar.registry.register_head`).
    registry_name: str

    def config(self) -> Dict[str, Any]:
        """The constructor arguments of this head, read back from the attributes of the
        same names; ``type(head).from_config(head.config()) == head``."""
        return {name: getattr(self, name) for name in _init_arguments(type(self))}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Conditional":
        """A head built from :meth:`config`'s dict; ``ValueError`` naming a bad entry."""
        if not isinstance(config, dict):
            raise ValueError(f"{cls.__name__} config must be a dict, got {type(config).__name__}")
        known = _init_arguments(cls)
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__} has no options {unknown}; its options are {known}")
        try:
            return cls(**config)
        except TypeError as err:
            raise ValueError(f"invalid {cls.__name__} config {config!r}: {err}") from err

    @abstractmethod
    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        """The torch distribution of ``x_i`` given ``params: (*, P)``; batch shape ``(*)``."""

    @abstractmethod
    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """How values are fed back to a conditioner: ``x: (*, n) -> (*, n, I)`` of ``dtype``."""

    def encode_one(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """:meth:`encode` for the value of one variable: ``x: (*) -> (*, I)`` (the sampling loop)."""
        return self.encode(x.unsqueeze(-1), dtype).squeeze(-2)

    @abstractmethod
    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        """The dtype of samples when the parameters have ``param_dtype``."""

    def initial_bias(self) -> Tensor:
        """A good starting value of the output bias of one variable, ``(P,)``."""
        return torch.zeros(self.param_size)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """Per-variable log density: ``params: (*, n, P)``, ``x: (*, n) -> (*, n)``; with
        ``temperature``, that of the tempered conditionals (discrete heads)."""
        return self.distribution(params, temperature).log_prob(self._as_value(x, params))

    #: Numbers of noise per variable that :meth:`sample_from_noise` consumes.
    noise_size: int = 1

    @abstractmethod
    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Fresh noise for ``shape`` variables: ``shape + (noise_size,)``."""

    @abstractmethod
    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        """The draw that ``noise: (*, noise_size)`` gives with ``params: (*, P)``: ``(*)``.

        A deterministic map, distributed as :meth:`distribution` (tempered) when the noise
        comes from :meth:`draw_noise`.
        """

    def sample(self, params: Tensor, temperature: float = 1.0) -> Tensor:
        """One draw per row: ``params: (*, P) -> (*)``."""
        noise = self.draw_noise(params.shape[:-1], params.dtype, params.device)
        return self.sample_from_noise(params, noise, temperature)

    def rsample(self, params: Tensor) -> Tensor:
        """A reparameterized draw, ``params: (*, P) -> (*)``, where the head has one."""
        raise NotImplementedError(f"{type(self).__name__} conditionals have no rsample")

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        """All values one discrete variable can take, ``(K,)``."""
        raise NotImplementedError(f"{type(self).__name__} conditionals are not enumerable")

    @property
    def has_enumerate_support(self) -> bool:
        """Whether :meth:`enumerate_values` lists a finite support (discrete heads, except
        those with infinitely many values such as counts)."""
        return self.is_discrete

    def for_variables(self, index: "int | Sequence[int]") -> "Conditional":
        """The head of variable ``index`` (an int), or of the variables ``index`` (a sequence,
        in that order). A head that is the same for every variable returns ``self``; one head
        per column (:class:`pyro_ar.conditionals.Mixed`) returns its column's. Shared code
        that handles one step or one block of steps asks for the head of those variables."""
        return self

    def check_event_size(self, event_size: int) -> None:
        """Raise ``ValueError`` where this head cannot describe ``event_size`` variables."""

    def check_value(self, x: Tensor) -> None:
        """Raise ``ValueError`` where ``x`` has a dtype this head cannot score."""
        if x.dtype.is_complex:
            raise ValueError(f"value must be real, got dtype {x.dtype}")

    def _as_value(self, x: Tensor, params: Tensor) -> Tensor:
        return x.to(params.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # Heads are compared by value so that checkpoints and KL checks can match them.
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class _FedBackAsIs(Conditional):
    """A head whose values are real numbers fed back as they are: one feature per variable,
    samples in the parameters' dtype (Bernoulli's 0/1 floats, mixture values)."""

    input_size = 1

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return (x if x.dtype == dtype else x.to(dtype)).unsqueeze(-1)

    # One value or n values encode the same way.
    encode_one = encode

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return param_dtype


def _gumbel(shape: tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Standard Gumbel noise, ``-log E`` with ``E ~ Exp(1)``."""
    return -torch.empty(shape, dtype=dtype, device=device).exponential_().log()
