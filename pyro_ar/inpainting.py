r"""Inpainting helpers: exact conditioning of AR distributions on a partial observation.

The conditioning itself is a distribution, :meth:`d.condition(observed, observed_mask)
<pyro_ar.Autoregressive.condition>` (see :mod:`pyro_ar.distributions.conditioned` for the
math and the rules: exact when the observed variables come first in the order; an
ensemble weights its members by their posterior). These functions are thin wrappers kept
for convenience.

See :mod:`pyro_ar.distributions.conditioned` for an example.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor

from pyro_ar.distributions import Ensemble, JointDistribution
from pyro_ar.distributions.conditioned import check_mask, observed_first

__all__ = ["observed_first", "admissible_members", "members_admitting", "marginal_log_prob", "conditional_sample"]


def _members(d: JointDistribution) -> list:
    return d.members if isinstance(d, Ensemble) else [d]


def admissible_members(d: JointDistribution, observed_mask: Tensor) -> Tensor:
    """Which members of ``d`` (one for a single chain) condition exactly on each row:
    boolean ``(M, *)`` for ``observed_mask: (*, n)``."""
    mask = check_mask(d, observed_mask)
    return torch.stack([observed_first(m.order, mask) for m in _members(d)])


def members_admitting(d: JointDistribution, observed_mask: Tensor) -> List[int]:
    """The indices of the members of ``d`` whose order puts the observed variables first in
    *every* row; any of them conditions exactly with ``net(mask_index=m)``."""
    ok = admissible_members(d, observed_mask).reshape(len(_members(d)), -1).all(-1)
    return [m for m, good in enumerate(ok.tolist()) if good]


def marginal_log_prob(d: JointDistribution, observed: Tensor, observed_mask: Tensor, **kwargs) -> Tensor:
    """``d.condition(observed, observed_mask).observed_log_prob``: the exact ``log p(x_o)``."""
    return d.marginal_log_prob(observed, observed_mask, **kwargs)


def conditional_sample(
    d: JointDistribution,
    observed: Tensor,
    observed_mask: Tensor,
    sample_shape: Sequence[int] = torch.Size(),
    temperature: float = 1.0,
    **kwargs,
) -> Tensor:
    """Draws from ``p(x_u | x_o)`` with the observed values kept (see :meth:`JointDistribution.conditional_sample`)."""
    return d.conditional_sample(observed, observed_mask, sample_shape, temperature, **kwargs)
