"""Binding ``PyroSample`` weights of a conditioner to the distribution that uses them.

A distribution is scored after the model that built it has returned (Pyro computes
``log_prob`` lazily, from the trace). A conditioner converted to a ``PyroModule`` with
``PyroSample`` priors on its weights would then draw *fresh, untraced* weights at scoring
time. So the distribution draws every ``PyroSample`` attribute once, when it is built
(inside the model, so the draws are recorded as sample sites), and re-binds exactly those
values into the module's sampling cache around every later evaluation.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Optional

import torch
from pyro.nn import PyroModule
from torch import nn

__all__ = ["snapshot_pyro_samples", "bound_pyro_samples", "module_dtype_device"]

Snapshot = Dict[str, torch.Tensor]


def snapshot_pyro_samples(module: nn.Module) -> Optional[Snapshot]:
    """Draw every ``PyroSample`` attribute of ``module`` once; ``None`` for plain modules."""
    if not isinstance(module, PyroModule):
        return None
    context = module._pyro_context
    with context:
        for sub in module.modules():
            if isinstance(sub, PyroModule):
                for name in list(sub.__dict__.get("_pyro_samples", {})):
                    getattr(sub, name)  # samples and caches it under its full name
        return dict(context.cache)


@contextlib.contextmanager
def bound_pyro_samples(module: nn.Module, snapshot: Optional[Snapshot]) -> Iterator[None]:
    """Evaluate ``module`` with its ``PyroSample`` attributes fixed to ``snapshot``."""
    if snapshot is None:
        yield
        return
    context = module._pyro_context
    with context:
        context.cache.update(snapshot)
        yield


def module_dtype_device(module: nn.Module, snapshot: Optional[Snapshot] = None) -> tuple:
    """The floating dtype and device of a module's weights (parameters, sampled weights, buffers)."""
    candidates = [*module.parameters(), *(snapshot or {}).values(), *module.buffers()]
    for tensor in candidates:
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    device = candidates[0].device if candidates else torch.device("cpu")
    return torch.get_default_dtype(), device
