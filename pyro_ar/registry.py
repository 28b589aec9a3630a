"""The one registry of conditioners and heads: each declares its name and options once.

A model is a conditioner class (:mod:`pyro_ar.nn`) and a head class
(:mod:`pyro_ar.conditionals`). Each registers itself with one line at the end of its own
file::

    register_head(Categorical, "categorical")
    register_conditioner(MADE, "made", example={"hidden_sizes": [12]}, cli_defaults={"hidden_sizes": [512]})

Its constructor is the declaration of its options: the registry reads names, defaults and
type hints from ``inspect.signature`` and the help text from the ``Args:`` section of the
class docstring. Everything else is derived from these entries: the public factories
(``pyro_ar.MADE``, built by :func:`pyro_ar.models.factory`), the distribution classes,
checkpoints, the ``pyro-ar`` command line (``--model``/``--conditional`` choices and each
model's own options), data preparation and the test harness.

This module imports nothing else of pyro_ar, so every layer can register into it.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

__all__ = [
    "Option",
    "ConditionerEntry",
    "HeadEntry",
    "HEAD_ARGUMENTS",
    "UNIVERSAL_ARGUMENTS",
    "register_conditioner",
    "register_head",
    "conditioner_entry",
    "head_entry",
    "conditioner_entries",
    "head_entries",
    "entry_of",
]

#: Constructor arguments of a conditioner that its head determines; a factory replaces
#: them with one ``conditional`` argument.
HEAD_ARGUMENTS = ("input_size", "param_size", "initial_bias")
#: Arguments every model has, which the program sets from the data and its own flags.
UNIVERSAL_ARGUMENTS = ("event_size", "conditional", "context_size", "order", "seed")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Option:
    """One constructor option: its name, type hint, default (``inspect.Parameter.empty``
    when it has none) and the help text of the class docstring."""

    name: str
    annotation: Any
    default: Any
    help: str = ""


@dataclass
class _Entry:
    name: str
    cls: type
    options: Tuple[Option, ...]
    #: Small options for tests and examples (the conformance harness builds models from them).
    example: Dict[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    def option(self, name: str) -> Option:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)


@dataclass
class ConditionerEntry(_Entry):
    """A registered conditioner.

    Attributes:
        cli_defaults: defaults of the ``pyro-ar`` program where they differ from the
            constructor's (sizes that suit the digits), and ``lr``, its learning rate.
        distribution_class: the named :class:`~pyro_ar.Autoregressive` subclass its
            distributions have (made by :func:`pyro_ar.distributions.named_distribution`
            when the registration gives none).
        factory: the public factory (made by :func:`pyro_ar.models.factory`).
    """

    cli_defaults: Dict[str, Any] = field(default_factory=dict)
    distribution_class: Optional[type] = None
    factory: Optional[type] = None
    #: The constructor argument that determines the event (``"event_size"``, or e.g.
    #: PixelCNN's ``"image_shape"``); the program reads the data set's attribute of that name.
    event_argument: str = "event_size"
    #: ``n -> a value of event_argument`` for an event of ``n`` variables (tests and examples).
    example_event: Optional[Callable[[int], Any]] = None
    #: Whether the model has one built-in order (``order=`` must stay ``None``).
    fixed_order: bool = False

    @property
    def model_options(self) -> Tuple[Option, ...]:
        """The options that are this model's own (not the head's, the universal ones, nor
        the event argument, which the data determine)."""
        return tuple(o for o in self.options if o.name not in UNIVERSAL_ARGUMENTS and o.name != self.event_argument)

    def event_kwargs(self, n: int) -> Dict[str, Any]:
        """The event argument for an event of ``n`` variables: ``{"event_size": n}``, or for a
        model with another event argument what its ``example_event(n)`` gives."""
        if self.event_argument == "event_size":
            return {"event_size": n}
        if self.example_event is None:
            raise ValueError(f"model {self.name!r} declares no example_event for its {self.event_argument!r}")
        return {self.event_argument: self.example_event(n)}


@dataclass
class HeadEntry(_Entry):
    """A registered head.

    Attributes:
        data_option: the constructor argument that the data determines (Categorical's
            ``num_categories`` is the number of levels), or ``None``.
    """

    data_option: Optional[str] = None
    cli_defaults: Dict[str, Any] = field(default_factory=dict)


_CONDITIONERS: Dict[str, ConditionerEntry] = {}
_HEADS: Dict[str, HeadEntry] = {}


def _docstring_args(cls: type) -> Dict[str, str]:
    """``{name: help}`` from the ``Args:`` section of ``cls``'s docstring (Google style)."""
    doc = inspect.getdoc(cls) or ""
    out: Dict[str, str] = {}
    in_args, current = False, None
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args, current = True, None
            continue
        if not in_args:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        match = re.match(r"^    (\*{0,2}\w+)(?: \([^)]*\))?: (.*)$", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


def _options(cls: type, drop: Tuple[str, ...] = ()) -> Tuple[Option, ...]:
    """The constructor options of ``cls``; ``**common`` stands for those of the nearest base
    class whose constructor names its own (a conditioner's base declares the shared ones)."""
    if cls.__init__ is object.__init__:
        return ()
    init = inspect.unwrap(cls.__init__)
    signature = inspect.signature(init)
    hints = typing.get_type_hints(init, include_extras=False)
    helps = _docstring_args(cls)
    options, passed_on = [], False
    for p in list(signature.parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            raise TypeError(f"{cls.__name__}.__init__ must name its options (no *args) to be registered")
        if p.kind is p.VAR_KEYWORD:
            passed_on = True
        elif p.name not in drop:
            options.append(Option(p.name, hints.get(p.name, Any), p.default, helps.get(p.name, "")))
    if passed_on:
        base = next((b for b in cls.__mro__[1:] if "__init__" in vars(b)), None)
        if base is None or base is object:
            raise TypeError(f"{cls.__name__}.__init__ passes **kwargs to no base class that names them")
        own = {o.name for o in options}
        options += [o for o in _options(base, drop) if o.name not in own]
    return tuple(options)


def _check_name(name: str, table: Mapping[str, _Entry], cls: type, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} name must be lower-case letters, digits and '_', got {name!r}")
    old = table.get(name)
    if old is not None and old.cls is not cls:
        raise ValueError(f"a {what} named {name!r} is already registered ({old.cls.__qualname__})")


def register_head(cls: type, name: Optional[str] = None, *, example: Optional[Dict[str, Any]] = None,
                  data_option: Optional[str] = None, cli_defaults: Optional[Dict[str, Any]] = None) -> type:
    """Register a head class (a :class:`pyro_ar.conditionals.Conditional`); returns it.

    Args:
        cls: the head class; its constructor arguments are its options, stored under
            attributes of the same names (so that ``config()`` can read them back).
        name: the name used by checkpoints and ``--conditional`` (default: the class
            name in lower case).
        example: constructor arguments of a small instance (tests and docs).
        data_option: the constructor argument that the data determines, if any.
        cli_defaults: defaults of the ``pyro-ar`` program where the constructor has none.
    """
    name = cls.__name__.lower() if name is None else name
    _check_name(name, _HEADS, cls, "head")
    options = _options(cls)
    if data_option is not None and data_option not in {o.name for o in options}:
        raise ValueError(f"data_option {data_option!r} is not an argument of {cls.__name__}")
    _HEADS[name] = HeadEntry(name, cls, options, dict(example or {}), data_option=data_option,
                             cli_defaults=dict(cli_defaults or {}))
    cls.registry_name = name
    return cls


def register_conditioner(
    cls: type,
    name: Optional[str] = None,
    *,
    example: Optional[Dict[str, Any]] = None,
    cli_defaults: Optional[Dict[str, Any]] = None,
    distribution_class: Optional[type] = None,
    event_argument: str = "event_size",
    example_event: Optional[Callable[[int], Any]] = None,
    fixed_order: bool = False,
) -> ConditionerEntry:
    """Register a conditioner class (a :class:`pyro_ar.nn.Conditioner`).

    Its constructor must take ``event_size`` and (usually through ``**common``, passed on
    to :class:`pyro_ar.nn.Conditioner`) the head-derived ``input_size``, ``param_size`` and
    ``initial_bias`` (:data:`HEAD_ARGUMENTS`); every other argument is an option of the model. Prefer :func:`pyro_ar.models.register`, which also builds the
    factory and the distribution class.

    A model whose event is given by another argument (PixelCNN's ``image_shape``, from which it
    computes ``event_size`` itself) names it as ``event_argument``, with ``example_event``,
    ``n -> `` a value of it for an event of ``n`` variables (for the test harness);
    ``event_size`` is then not one of its options. ``fixed_order=True`` declares that the model
    refuses every ``order`` but ``None`` (the harness and the program then ask for no other).

    Returns:
        the new :class:`ConditionerEntry`.
    """
    name = cls.__name__.lower() if name is None else name
    _check_name(name, _CONDITIONERS, cls, "conditioner")
    declared = {o.name for o in _options(cls)}
    missing = [a for a in HEAD_ARGUMENTS if a not in declared]
    if missing:
        raise TypeError(f"{cls.__name__}.__init__ must take the head-derived arguments {list(HEAD_ARGUMENTS)}; "
                        f"missing {missing}")
    drop = HEAD_ARGUMENTS if event_argument == "event_size" else HEAD_ARGUMENTS + ("event_size",)
    if event_argument not in declared:
        raise TypeError(f"{cls.__name__}.__init__ has no event argument {event_argument!r}")
    entry = ConditionerEntry(
        name, cls, _options(cls, drop=drop), dict(example or {}),
        cli_defaults=dict(cli_defaults or {}), distribution_class=distribution_class,
        event_argument=event_argument, example_event=example_event, fixed_order=bool(fixed_order),
    )
    unknown = sorted((set(entry.example) | set(entry.cli_defaults) - {"lr"}) - {o.name for o in entry.options})
    if unknown:
        raise ValueError(f"example/cli_defaults of {name!r} name unknown options {unknown}")
    _CONDITIONERS[name] = entry
    return entry


def _lookup(table: Mapping[str, _Entry], key: Any, what: str) -> Any:
    if isinstance(key, str):
        if key in table:
            return table[key]
        for entry in table.values():  # class names too, as version-1 checkpoints stored them
            if entry.class_name == key or (getattr(entry, "factory", None) is not None
                                           and entry.factory.__name__ == key):
                return entry
    raise ValueError(f"unknown {what} {key!r}; registered: {sorted(table)}")


def conditioner_entry(name: str) -> ConditionerEntry:
    """The entry of a registered conditioner, by name or class name; ``ValueError`` if none."""
    return _lookup(_CONDITIONERS, name, "model")


def head_entry(name: str) -> HeadEntry:
    """The entry of a registered head, by name or class name; ``ValueError`` if none."""
    return _lookup(_HEADS, name, "conditional")


def conditioner_entries() -> List[ConditionerEntry]:
    """Every registered conditioner, in registration order."""
    return list(_CONDITIONERS.values())


def head_entries() -> List[HeadEntry]:
    """Every registered head, in registration order."""
    return list(_HEADS.values())


def entry_of(obj: Any) -> _Entry:
    """The entry of a head, a conditioner or a factory instance (or class)."""
    cls = obj if isinstance(obj, type) else type(obj)
    for table in (_HEADS, _CONDITIONERS):
        for entry in table.values():
            if cls is entry.cls or cls is getattr(entry, "factory", None):
                return entry
    for table in (_HEADS, _CONDITIONERS):  # subclasses (e.g. PyroModule[MADE]) last
        for entry in table.values():
            if issubclass(cls, entry.cls) or (getattr(entry, "factory", None) and issubclass(cls, entry.factory)):
                return entry
    raise ValueError(f"{cls.__qualname__} is not registered; register it with pyro_ar.register(...)")
