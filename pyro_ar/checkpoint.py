"""Save and load pyro_ar models: ``pyro_ar.save(net, path, **extra)`` / ``pyro_ar.load(path)``.

A checkpoint is a ``torch.save``'d dict of plain Python values and tensors only, so that
``torch.load(path, weights_only=True)`` reads it without unpickling arbitrary objects::

    {"format": "pyro_ar.checkpoint", "version": 1,
     "model": "MADE",                                  # the factory class name
     "hparams": {..., "conditional": {"type": "Categorical", "num_categories": 4}},
     "state_dict": {name: tensor},
     "extra": {...}}                                   # caller metadata: preprocessing, metrics

Loading validates every part and raises ``ValueError`` naming the problem (not a file,
corrupt or truncated file, unknown model, missing keys, parameter shape mismatch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Union

import torch
from torch import Tensor

from pyro_ar.conditionals import Bernoulli, Categorical, Conditional, MixtureOfGaussians
from pyro_ar.models import FVSBN, MADE, NADE, AutoregressiveModel

__all__ = ["save", "load", "load_checkpoint", "Checkpoint", "plain_hparams", "FORMAT", "VERSION"]

FORMAT = "pyro_ar.checkpoint"
VERSION = 1
MODELS = {"FVSBN": FVSBN, "NADE": NADE, "MADE": MADE}
HEADS = {"Bernoulli": Bernoulli, "Categorical": Categorical, "MixtureOfGaussians": MixtureOfGaussians}
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model and the caller's metadata."""

    model: AutoregressiveModel
    extra: Dict[str, Any] = field(default_factory=dict)


# ---- plain-value conversion ----------------------------------------------------------------


def head_to_dict(head: Conditional) -> Dict[str, Any]:
    """``Categorical(4) -> {"type": "Categorical", "num_categories": 4}``."""
    name = type(head).__name__
    if name not in HEADS or type(head) is not HEADS[name]:
        raise TypeError(f"cannot save a model with conditional {head!r}: only {sorted(HEADS)} are supported")
    return {"type": name, **vars(head)}


def head_from_dict(spec: Any) -> Conditional:
    """Inverse of :func:`head_to_dict`; ``ValueError`` on an unknown or malformed head."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"checkpoint conditional must be a dict with a 'type', got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if name not in HEADS:
        raise ValueError(f"checkpoint has unknown conditional type {name!r}; expected one of {sorted(HEADS)}")
    try:
        return HEADS[name](**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint conditional {spec!r} is invalid: {err}") from err


def _plain(value: Any, where: str) -> Any:
    """Check (and lightly convert) that ``value`` is safe for ``torch.load(weights_only=True)``."""
    if type(value).__module__ == "numpy":  # numpy scalars and arrays (np.float64 is a float!): make them plain
        import numpy as np

        return torch.from_numpy(np.array(value)) if getattr(value, "ndim", 0) else value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"checkpoint metadata keys must be strings, got {k!r} in {where}")
            out[k] = _plain(v, f"{where}.{k}")
        return out
    raise TypeError(
        f"checkpoint metadata {where} has type {type(value).__name__}; only None, bool, int, float, str, "
        "lists, dicts with string keys and tensors can be stored"
    )


def plain_hparams(net: AutoregressiveModel) -> Dict[str, Any]:
    hparams = dict(net.hparams)
    if not hparams or "conditional" not in hparams:
        raise TypeError(f"cannot save {type(net).__name__}: it has no hparams; use pyro_ar.FVSBN, NADE or MADE")
    hparams["conditional"] = head_to_dict(hparams["conditional"])
    order = hparams.get("order")
    if isinstance(order, Tensor):
        hparams["order"] = order.tolist()
    elif order is not None and not isinstance(order, str):
        hparams["order"] = [int(i) for i in order]
    return _plain(hparams, "hparams")


# ---- save / load ----------------------------------------------------------------------------


def save(net: AutoregressiveModel, path: PathLike, **extra: Any) -> None:
    """Write ``net`` (a :class:`pyro_ar.FVSBN`, ``NADE`` or ``MADE``) and ``extra`` metadata to ``path``.

    Args:
        net: the model; its ``hparams`` and ``state_dict`` are stored (tensors moved to CPU).
        path: the file to write.
        **extra: plain metadata (numbers, strings, lists, dicts, tensors), returned by
            :func:`load_checkpoint`.
    """
    name = type(net).__name__
    if name not in MODELS or not isinstance(net, MODELS[name]):
        raise TypeError(f"can only save pyro_ar.FVSBN, NADE or MADE models, got {type(net).__name__}")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": name,
        "hparams": plain_hparams(net),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "extra": _plain(extra, "extra"),
    }
    torch.save(payload, os.fspath(path))


def _read(path: PathLike, map_location: Any) -> Dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"checkpoint file {str(p)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"checkpoint {str(p)!r} is not a file")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - a damaged file can fail inside the unpickler in many ways
        raise ValueError(f"{str(p)!r} is not a readable pyro_ar checkpoint (corrupt or truncated file): {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(p)!r} is not a pyro_ar checkpoint (no 'format': {FORMAT!r} entry)")
    missing = [k for k in ("version", "model", "hparams", "state_dict") if k not in payload]
    if missing:
        raise ValueError(f"checkpoint {str(p)!r} is missing the keys {missing}")
    version = payload["version"]
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(
            f"checkpoint {str(p)!r} has format version {version!r}; this pyro_ar reads versions 1..{VERSION}"
        )
    return payload


def _build(payload: Dict[str, Any], source: str) -> AutoregressiveModel:
    name = payload["model"]
    if name not in MODELS:
        raise ValueError(f"checkpoint {source!r} holds an unknown model {name!r}; expected one of {sorted(MODELS)}")
    hparams = payload["hparams"]
    if not isinstance(hparams, dict) or "conditional" not in hparams:
        raise ValueError(f"checkpoint {source!r} has malformed hparams {hparams!r}")
    kwargs = dict(hparams)
    kwargs["conditional"] = head_from_dict(kwargs["conditional"])
    try:
        net = MODELS[name](**kwargs)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint {source!r} has invalid hparams for {name}: {err}") from err
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"checkpoint {source!r} has a malformed state_dict")
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {source!r} does not match a {name} with its hparams: "
            f"missing {missing}, unexpected {unexpected}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"checkpoint {source!r}: parameter {key!r} has shape {tuple(value.shape)}, "
                f"but the {name} built from its hparams needs {tuple(expected[key].shape)}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"checkpoint {source!r}: parameter {key!r} contains NaN or inf")
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:  # keep the saved precision (e.g. a float64 model stays float64)
        net = net.to(dtypes.pop())
    net.load_state_dict(state)
    return net


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save`: the rebuilt model and its ``extra`` metadata.

    Raises:
        ValueError: the path is not a file, the file is corrupt or truncated, or its content
            (model name, hparams, parameter names or shapes) does not describe a pyro_ar model.
    """
    payload = _read(path, map_location)
    net = _build(payload, str(path))
    extra = payload.get("extra", {})
    if not isinstance(extra, dict):
        raise ValueError(f"checkpoint {str(path)!r} has malformed metadata (extra is {type(extra).__name__})")
    return Checkpoint(net, extra)


def load(path: PathLike, map_location: Any = "cpu") -> AutoregressiveModel:
    """The model saved at ``path`` by :func:`save` (same class, hyperparameters and weights).

    Example:
        >>> import pyro_ar, tempfile, os
        >>> net = pyro_ar.NADE(event_size=4, hidden_size=3)
        >>> path = os.path.join(tempfile.mkdtemp(), "nade.pt")
        >>> pyro_ar.save(net, path)
        >>> type(pyro_ar.load(path)).__name__
        'NADE'
    """
    return load_checkpoint(path, map_location).model
