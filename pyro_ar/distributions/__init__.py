"""The distribution classes: :class:`Autoregressive` (one order) and its named subclasses,
:class:`Ensemble` (the exact mixture of several chains), and the conditioned distributions.

The named class of every registered conditioner is an attribute here
(``pyro_ar.distributions.MADE``), whether defined in :mod:`.named` or made for it.
"""

from pyro_ar import registry as _registry
from pyro_ar.distributions.autoregressive import Autoregressive
from pyro_ar.distributions.base import JointDistribution
from pyro_ar.distributions.conditioned import ConditionedAutoregressive, ConditionedEnsemble
from pyro_ar.distributions.ensemble import Ensemble
from pyro_ar.distributions.named import FVSBN, MADE, NADE, named_distribution


def __getattr__(name: str):
    for entry in _registry.conditioner_entries():
        if entry.class_name == name:
            return named_distribution(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "JointDistribution",
    "Autoregressive",
    "Ensemble",
    "ConditionedAutoregressive",
    "ConditionedEnsemble",
    "FVSBN",
    "NADE",
    "MADE",
    "named_distribution",
]
