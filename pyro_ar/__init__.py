"""pyro_ar: autoregressive distributions (FVSBN, NADE, MADE, ...) for Pyro and PyTorch.

>>> import pyro_ar
>>> net = pyro_ar.NADE(event_size=64, hidden_size=128)   # Bernoulli conditionals by default
>>> d = net()                                            # a pyro_ar.distributions.NADE

The factory of every registered conditioner is an attribute here (``pyro_ar.MADE``);
:func:`register` adds one. The ``pyro-ar`` program lives in :mod:`pyro_ar.program`.
"""

# Importing kl registers its rules with torch.distributions.register_kl.
from pyro_ar import conditionals, distributions, inpainting, kl, models, nn, registry, reparam
from pyro_ar.checkpoint import load, save
from pyro_ar.distributions import Autoregressive, Ensemble
from pyro_ar.models import FVSBN, MADE, NADE, AutoregressiveModel, factory, register
from pyro_ar.registry import register_head

__version__ = "0.1.0"


def __getattr__(name: str):
    # Factories of conditioners registered after import.
    try:
        return getattr(models, name)
    except AttributeError:
        raise AttributeError(f"module 'pyro_ar' has no attribute {name!r}") from None


__all__ = [
    "FVSBN",
    "NADE",
    "MADE",
    "Autoregressive",
    "Ensemble",
    "AutoregressiveModel",
    "factory",
    "register",
    "register_head",
    "save",
    "load",
    "conditionals",
    "distributions",
    "inpainting",
    "kl",
    "models",
    "nn",
    "registry",
    "reparam",
] + [e.class_name for e in registry.conditioner_entries() if e.class_name not in ("FVSBN", "NADE", "MADE")]
