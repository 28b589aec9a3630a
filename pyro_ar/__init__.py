"""pyro_ar: autoregressive distributions (FVSBN, NADE, MADE) for Pyro and PyTorch.

>>> import pyro_ar
>>> net = pyro_ar.NADE(event_size=64, hidden_size=128)   # Bernoulli conditionals by default
>>> d = net()                                            # a pyro_ar.distributions.NADE
"""

# Importing kl registers its rules with torch.distributions.register_kl.
from pyro_ar import conditionals, distributions, inpainting, kl, nn, reparam
from pyro_ar.checkpoint import load, save
from pyro_ar.distributions import Autoregressive
from pyro_ar.models import FVSBN, MADE, NADE, AutoregressiveModel

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "AutoregressiveModel",
    "FVSBN",
    "NADE",
    "MADE",
    "save",
    "load",
    "conditionals",
    "distributions",
    "inpainting",
    "kl",
    "nn",
    "reparam",
]
