"""Conditional heads: what one variable ``x_i`` is, given the parameters of its conditional.

A head is a small, stateless description of the per-variable distribution
``p(x_i | params_i)``. It knows

* ``param_size``: how many numbers a conditioner must output per variable (``P``),
* ``input_size``: how a value of ``x_i`` is fed back into a conditioner (``I`` features),
* ``support``: the constraint on one element of ``x``,
* how to score: by the matching torch distribution (Bernoulli, Categorical: torch's own
  stable ``log_prob``), or, for the mixture of Gaussians, by its own ``log_softmax`` +
  ``logsumexp`` that stays finite for every finite value (torch's Normal overflows),
* how to sample, as a deterministic function of noise drawn beforehand
  (:meth:`Conditional.draw_noise`, :meth:`Conditional.sample_from_noise`): the logistic
  threshold for Bernoulli, the Gumbel-max trick for categorical and mixture choices.
  With the noise fixed, a draw depends on the parameters alone, which lets the sampling
  loop draw a block of variables by fixed-point iteration (see
  :class:`pyro_ar.nn.IncrementalState`) and gives the same sample as drawing one by one.

Shapes: ``params`` is ``(*, P)`` for one variable or ``(*, n, P)`` for all of them; the
value is ``(*)`` or ``(*, n)`` accordingly.

Each head is one module of this package that ends by registering itself
(:func:`pyro_ar.registry.register_head`). Every module here is imported with the package,
so a new file is picked up without editing a list; registered heads are attributes of
this package (``pyro_ar.conditionals.Categorical``).
"""

import importlib
import pkgutil

from pyro_ar import registry as _registry
from pyro_ar.conditionals.base import MAX_SIZE, Conditional  # noqa: F401  (MAX_SIZE: the limit on K)
from pyro_ar.conditionals.bernoulli import Bernoulli
from pyro_ar.conditionals.categorical import Categorical
from pyro_ar.conditionals.mixture_of_gaussians import MixtureOfGaussians

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def __getattr__(name: str):
    for entry in _registry.head_entries():
        if entry.class_name == name:
            return entry.cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Conditional", "Bernoulli", "Categorical", "MixtureOfGaussians"] + [
    e.class_name for e in _registry.head_entries() if e.class_name not in ("Bernoulli", "Categorical", "MixtureOfGaussians")
]
