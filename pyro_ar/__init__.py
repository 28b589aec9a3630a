"""pyro_ar: autoregressive distributions (FVSBN, NADE, MADE) for Pyro and PyTorch.

>>> import pyro_ar
>>> net = pyro_ar.NADE(event_size=64, hidden_size=128)   # Bernoulli conditionals by default
>>> d = net()                                            # a pyro_ar.distributions.NADE
"""

from pyro_ar import conditionals, distributions, nn
from pyro_ar.distributions import Autoregressive
from pyro_ar.models import FVSBN, MADE, NADE, AutoregressiveModel
from pyro_ar.checkpoint import load, save
from pyro_ar import kl, reparam  # importing kl registers its rules with register_kl

__version__ = "0.1.0"

__all__ = [
    "Autoregressive",
    "AutoregressiveModel",
    "FVSBN",
    "NADE",
    "MADE",
    "conditionals",
    "distributions",
    "nn",
    "save",
    "load",
    "kl",
    "reparam",
]
