"""User-facing models: modules whose call returns a fresh AR distribution (lazy distributions).

``net = pyro_ar.NADE(event_size=64, hidden_size=128)`` builds the conditioner and the head in
one call; ``net(context)`` gives a :class:`pyro_ar.distributions.NADE` whose parameters are
the module's, so ``pyro.module("ar", net)`` and optimizers see them.

Every factory is made from the registry by :func:`factory`: its signature is its
conditioner's options, ``(event_size, <the model's own options>, *, conditional, context_size,
order, seed)`` (the head-derived ``input_size``, ``param_size``, ``initial_bias`` replaced
by one ``conditional`` head), and it records the arguments it was called with (:meth:`RegisteredModel.config`), so that checkpoints rebuild the same model.
A new model is one conditioner file ending in ``register_conditioner(...)``; its factory is
``pyro_ar.<ClassName>`` (or ``pyro_ar.models.factory(name)``).
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Dict, Optional, Union

import torch
from torch import Tensor, nn

from pyro_ar import registry
from pyro_ar.conditionals import Bernoulli, Conditional
from pyro_ar.distributions import Autoregressive, Ensemble, JointDistribution, named_distribution
from pyro_ar.nn.base import Conditioner
from pyro_ar.registry import ConditionerEntry

__all__ = ["AutoregressiveModel", "RegisteredModel", "factory", "register", "head_config", "head_from_config"]

MaskIndex = Union[None, int, str]


class AutoregressiveModel(nn.Module):
    """A conditioner and a conditional head; calling it gives the distribution.

    Args:
        conditioner: a :class:`pyro_ar.nn.Conditioner`.
        conditional: the head the conditioner was sized for.
    """

    distribution_class = Autoregressive

    def __init__(self, conditioner: Conditioner, conditional: Conditional):
        super().__init__()
        self.conditioner = conditioner
        self.conditional = conditional

    @property
    def event_size(self) -> int:
        return self.conditioner.event_size

    @property
    def context_size(self) -> Optional[int]:
        return self.conditioner.context_size

    @property
    def num_masks(self) -> int:
        """The number of members (masks/orders) of the conditioner."""
        return self.conditioner.num_members

    def forward(self, context: Optional[Tensor] = None, mask_index: MaskIndex = None) -> JointDistribution:
        """The distribution ``p(x | context)``.

        Args:
            context: ``(*batch, c)``, or ``None`` for an unconditional model.
            mask_index: ``None`` for the model itself (the exact mixture of all members when
                there are several), an int for one member, or ``"random"`` for a member drawn
                uniformly (one per training step, as in order-agnostic training).

        Returns:
            a ``distribution_class`` chain (one member), or an
            :class:`~pyro_ar.distributions.Ensemble` of them, with
            ``batch_shape = context.shape[:-1]`` and ``event_shape = (n,)``.
        """
        m = self.num_masks
        if isinstance(mask_index, str):
            if mask_index != "random":
                raise ValueError(f"mask_index must be None, an int or 'random', got {mask_index!r}")
            mask_index = int(torch.randint(m, ()))
        if mask_index is not None:
            if isinstance(mask_index, bool) or not isinstance(mask_index, int) or not 0 <= mask_index < m:
                raise ValueError(f"mask_index must be None, 'random' or an int in [0, {m - 1}], got {mask_index!r}")
            return self.distribution_class(self.conditioner.member(mask_index), self.conditional, context)
        if m == 1:
            return self.distribution_class(self.conditioner, self.conditional, context)
        return Ensemble([self.distribution_class(self.conditioner.member(k), self.conditional, context) for k in range(m)])

    def extra_repr(self) -> str:
        return f"conditional={self.conditional!r}"


def memory_limit() -> int:
    """Half of this machine's physical memory, in bytes (the most a model may take here)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GiB
        return 4 * 2**30


def head_config(head: Conditional) -> Dict[str, Any]:
    """``Categorical(4) -> {"name": "categorical", "num_categories": 4}`` (plain values)."""
    entry = registry.entry_of(head)
    return {"name": entry.name, **head.config()}


def head_from_config(spec: Any) -> Conditional:
    """Inverse of :func:`head_config`; ``ValueError`` naming an unknown or malformed head.
    (Also reads ``{"type": "Categorical", ...}``, the form of version-1 checkpoints.)"""
    if not isinstance(spec, dict) or not ({"name", "type"} & set(spec)):
        raise ValueError(f"a conditional must be a dict with a 'name', got {spec!r}")
    config = dict(spec)
    name = config.pop("name", None) or config.pop("type")
    config.pop("type", None)
    return registry.head_entry(name).cls.from_config(config)


def _head(conditional: Optional[Conditional]) -> Conditional:
    if conditional is None:
        return Bernoulli()
    if not isinstance(conditional, Conditional):
        raise TypeError(
            "conditional must be a pyro_ar.conditionals head such as Bernoulli(), Categorical(K) "
            f"or MixtureOfGaussians(K), got {conditional!r}"
        )
    return conditional


class RegisteredModel(AutoregressiveModel):
    """Base of the factories made by :func:`factory`; ``entry`` is the registry entry.

    ``__init__`` binds its arguments to ``__signature__`` (the factory's signature), builds
    the head-sized conditioner and records the arguments, which :meth:`config` returns.
    """

    entry: ConditionerEntry
    __signature__: inspect.Signature

    def __init__(self, *args: Any, **kwargs: Any):
        bound = type(self).__signature__.bind(*args, **kwargs)
        bound.apply_defaults()
        options = dict(bound.arguments)
        head = _head(options.pop("conditional"))
        n = options.get("event_size")
        if isinstance(n, int) and not isinstance(n, bool) and n >= 1:
            head.check_event_size(n)  # a per-column head (Mixed) must have one head per variable
        conditioner = self.entry.cls(
            **options, input_size=head.input_size, param_size=head.param_size, initial_bias=head.initial_bias()
        )
        super().__init__(conditioner, head)
        self._options = options

    def config(self) -> Dict[str, Any]:
        """The arguments this model was built with, the head as :func:`head_config`:
        ``type(net).from_config(net.config())`` is the same model (with fresh weights)."""
        return {**self._options, "conditional": head_config(self.conditional)}

    @classmethod
    def size_in_bytes(cls, *args: Any, **kwargs: Any) -> int:
        """The bytes of the parameters and buffers the model ``cls(*args, **kwargs)`` would
        allocate, measured by building it on the ``meta`` device (nothing is allocated)."""
        try:
            with torch.device("meta"):
                net = cls(*args, **kwargs)
        except RuntimeError as err:  # sizes past what a tensor can even describe
            if "overflow" not in str(err):
                raise
            return 2**63 - 1
        return sum(t.numel() * t.element_size() for t in (*net.parameters(), *net.buffers()))

    @classmethod
    def checked(cls, *args: Any, limit: Optional[int] = None, copies: int = 1, **kwargs: Any) -> "RegisteredModel":
        """``cls(*args, **kwargs)``, after checking that ``copies`` times its size fits in
        ``limit`` bytes (default: half of this machine's memory); ``ValueError`` otherwise.
        (Training holds about four copies: weights, gradients and Adam's two moments.)"""
        limit = memory_limit() if limit is None else limit
        need = copies * cls.size_in_bytes(*args, **kwargs)
        if need > limit:
            raise ValueError(
                f"this {cls.__name__} needs about {min(need, 2**63) / 2**30:.3g} GiB ({copies} x its parameters and buffers), "
                f"more than the {limit / 2**30:.3g} GiB allowed (half of this machine's memory); use smaller sizes"
            )
        return cls(*args, **kwargs)

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "RegisteredModel":
        """A model built from :meth:`config`'s dict; ``ValueError`` naming a bad entry."""
        if not isinstance(config, dict):
            raise ValueError(f"{cls.__name__} config must be a dict, got {type(config).__name__}")
        config = dict(config)
        known = list(cls.__signature__.parameters)
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__} has no options {unknown}; its options are {known}")
        if "conditional" in config:
            config["conditional"] = head_from_config(config["conditional"])
        try:
            return cls.checked(**config)
        except TypeError as err:
            raise ValueError(f"invalid {cls.__name__} config: {err}") from err


def _factory_signature(entry: ConditionerEntry) -> inspect.Signature:
    """``(event_size, <the model's options>, *, conditional=None, context_size=None, order=None,
    seed=None)``: the conditioner's options with the head-derived ones replaced by ``conditional``
    (a model with another event argument, e.g. PixelCNN's ``image_shape``, takes it first instead)."""
    positional, keyword = [], [inspect.Parameter("conditional", inspect.Parameter.KEYWORD_ONLY, default=None,
                                                 annotation=Optional[Conditional])]
    for o in entry.options:
        universal = o.name in registry.UNIVERSAL_ARGUMENTS and o.name != "event_size"
        kind = inspect.Parameter.KEYWORD_ONLY if universal else inspect.Parameter.POSITIONAL_OR_KEYWORD
        (keyword if universal else positional).append(
            inspect.Parameter(o.name, kind, default=o.default, annotation=o.annotation)
        )
    return inspect.Signature(positional + keyword)


def _factory_doc(entry: ConditionerEntry) -> str:
    summary = (inspect.getdoc(entry.cls) or entry.class_name).split("\n\n")[0]
    lines = [
        summary,
        "",
        f"Builds a :class:`pyro_ar.nn.{entry.class_name}` sized for the head ``conditional`` (default",
        "``Bernoulli()``); calling the module gives the distribution "
        f"(:class:`pyro_ar.distributions.{entry.class_name}`).",
        "",
        "Args:",
        "    conditional: the head, e.g. ``Bernoulli()``, ``Categorical(K)``, ``MixtureOfGaussians(K)``.",
    ]
    lines += [f"    {o.name}: {o.help}" for o in entry.options]
    return "\n".join(lines)


def factory(name: Union[str, ConditionerEntry]) -> type:
    """The public factory class of a registered conditioner (made once, then reused)."""
    entry = name if isinstance(name, ConditionerEntry) else registry.conditioner_entry(name)
    if entry.factory is None:
        if entry.distribution_class is None:
            entry.distribution_class = named_distribution(entry.class_name)
        entry.factory = type(
            entry.class_name,
            (RegisteredModel,),
            {
                "entry": entry,
                "distribution_class": entry.distribution_class,
                "__signature__": _factory_signature(entry),
                "__doc__": _factory_doc(entry),
                "__module__": "pyro_ar.models",
                "__qualname__": entry.class_name,
            },
        )
    return entry.factory


def register(conditioner_class: type, name: Optional[str] = None, **kwargs: Any) -> type:
    """Register a conditioner (:func:`pyro_ar.registry.register_conditioner`) and return its factory.

    The one line that makes a conditioner defined anywhere (a script, a test) a full model:
    ``Markov = pyro_ar.register(MarkovConditioner, "markov")`` gives ``Markov(event_size=5)()``,
    ``pyro-ar fit --model markov``, checkpoints and the conformance harness.
    """
    return factory(registry.register_conditioner(conditioner_class, name, **kwargs))


FVSBN = factory("fvsbn")
NADE = factory("nade")
MADE = factory("made")


def __getattr__(name: str) -> type:
    # Factories of conditioners registered after import (so that pickle finds them too).
    for entry in registry.conditioner_entries():
        if entry.class_name == name:
            return factory(entry)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
