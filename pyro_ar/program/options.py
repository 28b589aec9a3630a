"""Command-line options derived from the registry: one flag per model or head option.

Every registered conditioner's own options (those beyond ``event_size``, ``conditional``,
``context_size``, ``order`` and ``seed``) and every head's options (beyond the one the data
determine) become flags of ``pyro-ar fit``: ``hidden_sizes`` -> ``--hidden-sizes``. The
parser comes from the constructor's type hint (int, float, str, bool, ``Literal`` choices,
sequences of ints as ``512,512``), the help from its docstring. A flag given for a model or
head that lacks the option is refused with a clear error.
"""

from __future__ import annotations

import argparse
import inspect
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Sequence

from pyro_ar import registry
from pyro_ar.registry import Option

__all__ = ["positive_int", "positive_float", "finite_float", "random_seed", "OptionFlag", "add_option_flags", "model_kwargs", "head_kwargs"]

#: Largest value of any integer size a command line accepts (a layer width, a count of
#: components...); far beyond what fits in memory, so a typo is refused before allocating.
MAX_SIZE = 1_000_000


def _int_in(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not low <= value <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"expected a{' positive' if low else 'n'} integer in {low}..{MAX_SIZE}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An int in ``1..MAX_SIZE`` (argparse type)."""
    return _int_in(text, 1)


def _size(text: str) -> int:
    """An int in ``0..MAX_SIZE`` (the constructor checks its own lower bound)."""
    return _int_in(text, 0)


def random_seed(text: str) -> int:
    """A random seed, ``0 <= seed < 2**63`` (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..2**63-1, got {value}")
    return value


def positive_float(text: str) -> float:
    """A positive finite float (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {value}")
    return value


def _int_list(text: str) -> List[int]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if not parts:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return [positive_int(p) for p in parts]


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value}")
    return value


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _parser_for(annotation: Any) -> Dict[str, Any]:
    """argparse keywords for an option of type ``annotation``."""
    annotation = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if origin is typing.Literal:
        return {"choices": list(typing.get_args(annotation))}
    if annotation is int:
        return {"type": _size, "metavar": "N"}
    if annotation is float:
        return {"type": finite_float, "metavar": "X"}
    if origin in (list, tuple, Sequence, typing.Sequence) or getattr(origin, "__name__", "") == "Sequence":
        return {"type": _int_list, "metavar": "N,N,..."}
    return {"type": str}


@dataclass
class OptionFlag:
    """One flag and the models or heads (registry entries) that have the option."""

    option: Option
    owners: List[str] = field(default_factory=list)
    #: Each owner's help text (the models that share an option may describe it differently).
    helps: List[str] = field(default_factory=list)

    @property
    def help(self) -> str:
        texts = [h.rstrip(".").replace("``", "") for h in self.helps] or [self.option.help]
        if len(set(texts)) == 1:
            return texts[0]
        return "; ".join(f"{owner}: {text}" for owner, text in zip(self.owners, texts))

    @property
    def dest(self) -> str:
        return self.option.name

    @property
    def flag(self) -> str:
        return "--" + self.option.name.replace("_", "-")


def _collect(entries: Sequence[Any], options_of: Callable[[Any], Sequence[Option]]) -> Dict[str, OptionFlag]:
    flags: Dict[str, OptionFlag] = {}
    for entry in entries:
        for option in options_of(entry):
            known = flags.get(option.name)
            if known is None:
                flags[option.name] = OptionFlag(option, [entry.name], [option.help])
            elif _strip_optional(known.option.annotation) != _strip_optional(option.annotation):
                raise TypeError(
                    f"option {option.name!r} has type {option.annotation} in {entry.name!r} but "
                    f"{known.option.annotation} in {known.owners}; give one of them another name"
                )
            else:
                known.owners.append(entry.name)
                known.helps.append(option.help)
    return flags


def model_flags() -> Dict[str, OptionFlag]:
    """The flags of every registered conditioner's own options."""
    return _collect(registry.conditioner_entries(), lambda entry: entry.model_options)


def head_flags() -> Dict[str, OptionFlag]:
    """The flags of every registered head's options (except the one the data determine)."""
    return _collect(registry.head_entries(), lambda entry: [o for o in entry.options if o.name != entry.data_option])


def _add(group: argparse._ArgumentGroup, flags: Dict[str, OptionFlag], what: str, defaults) -> None:
    for name, flag in flags.items():
        kwargs = _parser_for(flag.option.annotation)
        shown = []
        for owner in flag.owners:
            default = defaults(owner, flag.option)
            shown.append(f"{owner}: {default}" if default is not None else owner)
        group.add_argument(flag.flag, dest=name, default=None, help=f"{flag.help} [{what} {', '.join(shown)}]",
                           **kwargs)


def _model_default(model: str, option: Option) -> Any:
    entry = registry.conditioner_entry(model)
    default = entry.cli_defaults.get(option.name, entry.option(option.name).default)
    return None if default is inspect.Parameter.empty else _show(default)


def _head_default(head: str, option: Option) -> Any:
    entry = registry.head_entry(head)
    default = entry.cli_defaults.get(option.name, entry.option(option.name).default)
    return None if default is inspect.Parameter.empty else _show(default)


def _show(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per model option and per head option to ``parser`` (``fit``)."""
    _add(parser.add_argument_group("model options (from the registry)"), model_flags(), "default", _model_default)
    _add(parser.add_argument_group("conditional options (from the registry)"), head_flags(), "default", _head_default)


def _given(args: argparse.Namespace, flags: Dict[str, OptionFlag], owner: str, what: str) -> Dict[str, Any]:
    kwargs = {}
    for name, flag in flags.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        if owner not in flag.owners:
            raise ValueError(f"{flag.flag} applies to {what} {' / '.join(flag.owners)} only, not {owner}")
        kwargs[name] = value
    return kwargs


def model_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The model's own options: the flags given, else the program's defaults for the model."""
    entry = registry.conditioner_entry(args.model)
    given = _given(args, model_flags(), entry.name, "--model")
    defaults = {k: v for k, v in entry.cli_defaults.items() if k != "lr"}
    return {**defaults, **given}


def head_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The head's options: the flags given, else the program's defaults for the head."""
    entry = registry.head_entry(args.conditional)
    return {**entry.cli_defaults, **_given(args, head_flags(), entry.name, "--conditional")}
