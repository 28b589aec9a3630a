"""Save and load pyro_ar models: ``pyro_ar.save(net, path, **extra)`` / ``pyro_ar.load(path)``.

A checkpoint is a ``torch.save``'d dict of plain Python values and tensors only, so that
``torch.load(path, weights_only=True)`` reads it without unpickling arbitrary objects::

    {"format": "pyro_ar.checkpoint", "version": 2,
     "model": "made",                                  # the registry name
     "config": {..., "conditional": {"name": "categorical", "num_categories": 4}},
     "state_dict": {name: tensor},
     "extra": {...}}                                   # caller metadata: preprocessing, metrics

Any registered model can be saved (the registry rebuilds it from its ``config()``). Version-1
checkpoints (``"model": "MADE"``, ``"hparams"``, heads as ``{"type": ...}``) still load.

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

from pyro_ar import registry
from pyro_ar.models import RegisteredModel, factory

__all__ = ["save", "load", "load_checkpoint", "Checkpoint", "plain_config", "FORMAT", "VERSION"]

FORMAT = "pyro_ar.checkpoint"
VERSION = 2
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Checkpoint:
    """A loaded checkpoint: the rebuilt model and the caller's metadata."""

    model: RegisteredModel
    extra: Dict[str, Any] = field(default_factory=dict)


# ---- plain-value conversion ----------------------------------------------------------------


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


def plain_config(net: RegisteredModel) -> Dict[str, Any]:
    """``net.config()`` as plain values (orders as lists), safe for ``weights_only`` loading."""
    if not isinstance(net, RegisteredModel):
        raise TypeError(
            f"cannot save a {type(net).__name__}: only models made by a registered factory "
            "(pyro_ar.FVSBN, NADE, MADE, or pyro_ar.register(...)) can be saved"
        )
    config = net.config()
    order = config.get("order")
    if isinstance(order, Tensor):
        config["order"] = order.tolist()
    elif order is not None and not isinstance(order, str):
        config["order"] = [int(i) for i in order]
    return _plain(config, "config")


# ---- save / load ----------------------------------------------------------------------------


def save(net: RegisteredModel, path: PathLike, **extra: Any) -> None:
    """Write ``net`` (any registered model, e.g. :class:`pyro_ar.MADE`) and ``extra`` metadata to ``path``.

    Args:
        net: the model; its ``config()`` and ``state_dict`` are stored (tensors moved to CPU).
        path: the file to write.
        **extra: plain metadata (numbers, strings, lists, dicts, tensors), returned by
            :func:`load_checkpoint`.
    """
    config = plain_config(net)
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"cannot save to {str(target)!r}: it is a folder; give a file path such as {str(target / 'model.pt')!r}")
    if not target.parent.is_dir():
        raise ValueError(f"cannot save to {str(target)!r}: the folder {str(target.parent)!r} does not exist")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": net.entry.name,
        "config": config,
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
        # torch's own text can run to many lines (advice on weights_only); its first line says what failed.
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
        raise ValueError(
            f"{str(p)!r} is not a readable pyro_ar checkpoint (corrupt or truncated file, or one holding "
            f"objects other than plain values and tensors): {first[:300]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(p)!r} is not a pyro_ar checkpoint (no 'format': {FORMAT!r} entry)")
    missing = [k for k in ("version", "model", "state_dict") if k not in payload]
    if "config" not in payload and "hparams" not in payload:
        missing.append("config")
    if missing:
        raise ValueError(f"checkpoint {str(p)!r} is missing the keys {missing}")
    version = payload["version"]
    if not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ValueError(
            f"checkpoint {str(p)!r} has format version {version!r}; this pyro_ar reads versions 1..{VERSION}"
        )
    return payload


def _build(payload: Dict[str, Any], source: str) -> RegisteredModel:
    name = payload["model"]
    try:
        model = factory(registry.conditioner_entry(name))
    except ValueError:
        names = [e.name for e in registry.conditioner_entries()]
        raise ValueError(f"checkpoint {source!r} holds an unknown model {name!r}; expected one of {names}") from None
    config = payload.get("config", payload.get("hparams"))
    if not isinstance(config, dict) or "conditional" not in config:
        raise ValueError(f"checkpoint {source!r} has a malformed model config {config!r}")
    state = payload["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise ValueError(f"checkpoint {source!r} has a malformed state_dict")
    try:
        # Measured on the meta device first: shapes are checked before anything is allocated.
        with torch.device("meta"):
            probe = model.from_config(config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint {source!r} has an invalid config for {name}: {err}") from err
    expected = probe.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {source!r} does not match a {name} with its config: "
            f"missing {missing}, unexpected {unexpected}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"checkpoint {source!r}: parameter {key!r} has shape {tuple(value.shape)}, "
                f"but the {name} built from its config needs {tuple(expected[key].shape)}"
            )
        if value.dtype != expected[key].dtype and not (value.is_floating_point() and expected[key].is_floating_point()):
            raise ValueError(
                f"checkpoint {source!r}: parameter {key!r} has dtype {value.dtype}, "
                f"but the {name} built from its config needs {expected[key].dtype}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"checkpoint {source!r}: parameter {key!r} contains NaN or inf")
    net = model.from_config(config)
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


def load(path: PathLike, map_location: Any = "cpu") -> RegisteredModel:
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
