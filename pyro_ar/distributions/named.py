"""Named AR distributions: thin subclasses of :class:`Autoregressive`, one per conditioner.

They add nothing but a name, so that ``isinstance(d, pyro_ar.distributions.NADE)`` works
and KL rules and error messages can say which model they hold. Everything else (shapes,
validation, sampling, enumeration) is inherited. A registered conditioner without a class
here gets one made by :func:`named_distribution`.
"""

from __future__ import annotations

from typing import Dict

from pyro_ar.distributions.autoregressive import Autoregressive

__all__ = ["FVSBN", "NADE", "MADE", "named_distribution"]


class FVSBN(Autoregressive):
    """A fully visible sigmoid belief network: each conditional's parameters are linear in
    the earlier variables. Built by :class:`pyro_ar.FVSBN`; see :class:`pyro_ar.nn.FVSBN`."""


class NADE(Autoregressive):
    """A neural autoregressive density estimator (shared hidden layer). Built by
    :class:`pyro_ar.NADE`; see :class:`pyro_ar.nn.NADE`."""


class MADE(Autoregressive):
    """One member (mask/order) of a masked autoencoder for distribution estimation; the
    mixture of several is a :class:`pyro_ar.distributions.Ensemble` of these. Built by
    :class:`pyro_ar.MADE`; see :class:`pyro_ar.nn.MADE`."""


_MADE: Dict[str, type] = {}


def named_distribution(class_name: str) -> type:
    """The named :class:`Autoregressive` subclass for conditioner class ``class_name``: one
    defined above, or a new one (made once, then reused)."""
    found = globals().get(class_name)
    if isinstance(found, type) and issubclass(found, Autoregressive):
        return found
    if class_name not in _MADE:
        _MADE[class_name] = type(
            class_name,
            (Autoregressive,),
            # Found by pyro_ar.distributions.__getattr__ (so pickle finds it too).
            {"__doc__": f"The AR distribution of the {class_name} conditioner.", "__module__": "pyro_ar.distributions"},
        )
    return _MADE[class_name]
