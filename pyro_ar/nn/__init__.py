"""Conditioner networks: plain ``torch.nn.Module``s mapping x_<i (and context) to the
parameters of every conditional in one pass, with an incremental state for sampling.

Each model is one module of this package that ends by registering its conditioner
(:func:`pyro_ar.registry.register_conditioner`). Every module here is imported with the
package, so a new file is picked up without editing a list; registered conditioners are
attributes of this package (``pyro_ar.nn.MADE``).
"""

import importlib
import pkgutil

from pyro_ar import registry as _registry
from pyro_ar.nn.base import Conditioner, ConditionerMember, IncrementalState, make_order
from pyro_ar.nn.fvsbn import FVSBN
from pyro_ar.nn.made import MADE
from pyro_ar.nn.nade import NADE

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name: str):
    for entry in _registry.conditioner_entries():
        if entry.class_name == name:
            return entry.cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Conditioner", "ConditionerMember", "IncrementalState", "make_order", "FVSBN", "NADE", "MADE"] + [
    e.class_name for e in _registry.conditioner_entries() if e.class_name not in ("FVSBN", "NADE", "MADE")
]
