"""Named AR distributions: thin subclasses of :class:`Autoregressive`, one per conditioner.

They add nothing but a name, so that ``isinstance(d, pyro_ar.distributions.NADE)`` works
and KL rules and error messages can say which model they hold. Everything else (shapes,
validation, sampling, enumeration) is inherited.
"""

from pyro_ar.distributions.autoregressive import Autoregressive

__all__ = ["FVSBN", "NADE", "MADE"]


class FVSBN(Autoregressive):
    """A fully visible sigmoid belief network: each conditional's parameters are linear in
    the earlier variables. Built by :class:`pyro_ar.FVSBN`; see :class:`pyro_ar.nn.FVSBN`."""


class NADE(Autoregressive):
    """A neural autoregressive density estimator (shared hidden layer). Built by
    :class:`pyro_ar.NADE`; see :class:`pyro_ar.nn.NADE`."""


class MADE(Autoregressive):
    """A masked autoencoder for distribution estimation, the exact mixture of its masks
    unless ``mask_index`` picks one. Built by :class:`pyro_ar.MADE`; see :class:`pyro_ar.nn.MADE`."""
