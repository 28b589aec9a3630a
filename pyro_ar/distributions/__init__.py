"""The distribution classes: :class:`Autoregressive` and its named subclasses."""

from pyro_ar.distributions.autoregressive import Autoregressive
from pyro_ar.distributions.named import FVSBN, MADE, NADE

__all__ = ["Autoregressive", "FVSBN", "NADE", "MADE"]
