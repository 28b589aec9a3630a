"""Conditioner networks: plain ``torch.nn.Module``s mapping x_<i (and context) to the
parameters of every conditional in one pass, with an incremental state for sampling."""

from pyro_ar.nn.base import Conditioner, IncrementalState, make_order
from pyro_ar.nn.fvsbn import FVSBN
from pyro_ar.nn.made import MADE
from pyro_ar.nn.nade import NADE

__all__ = ["Conditioner", "IncrementalState", "make_order", "FVSBN", "NADE", "MADE"]
