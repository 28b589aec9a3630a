r"""KL divergences between pyro_ar distributions (and factorized ones), for ``kl_divergence``.

Importing :mod:`pyro_ar` registers, with :func:`torch.distributions.register_kl`, rules for

* ``KL(p || q)`` between pyro_ar distributions (chains, ensembles, conditioned ones),
* ``KL(pyro_ar || Independent)`` and ``KL(Independent || pyro_ar)``, e.g. against
  a factorized ``dist.Bernoulli(probs).to_event(1)`` or ``dist.Categorical(logits).to_event(1)``.

For discrete models small enough to enumerate (``K^n <= max_enumeration_size``)
the KL is exact:

.. math:: \mathrm{KL}(p \,\|\, q) = \sum_x p(x) \big(\log p(x) - \log q(x)\big),

summed over every joint value ``x`` of the shared support (terms with ``p(x) = 0`` count as 0).
The result has exactly the broadcast batch shape of ``p`` and ``q``, as Pyro's
``TraceMeanField_ELBO`` requires. Otherwise (continuous heads, or too many joint values) the
rules raise ``NotImplementedError`` naming :func:`monte_carlo_kl`; Pyro's mean-field ELBO
catches that and falls back to sampling. Supports that differ (Bernoulli vs Categorical,
different ``K``, different event shapes) raise ``ValueError``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.distributions import Distribution, Independent, constraints, register_kl

from pyro_ar.distributions.base import JointDistribution

__all__ = ["monte_carlo_kl", "exact_kl"]

_MC_HINT = (
    "use pyro_ar.kl.monte_carlo_kl(p, q, num_samples) for a Monte-Carlo estimate with its standard error"
)


def _support_key(d: Distribution) -> Optional[tuple]:
    """A comparable description of one element's support: ``("boolean",)``,
    ``("integer", lo, hi)``, ``("real",)``, or ``None`` when not recognized."""
    try:
        c = d.support
    except NotImplementedError:
        return None
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    if hasattr(c, "support_key"):  # a support of its own (one per column: Mixed)
        return c.support_key()
    if isinstance(c, type(constraints.boolean)):
        return ("boolean",)
    if isinstance(c, constraints._IntegerInterval):
        return ("integer", int(c.lower_bound), int(c.upper_bound))
    if isinstance(c, type(constraints.real)):
        return ("real",)
    return None


def _check_compatible(p: Distribution, q: Distribution) -> None:
    """Raise ``ValueError`` unless ``p`` and ``q`` live on the same space."""
    if p.event_shape != q.event_shape:
        raise ValueError(
            f"KL needs equal event shapes, got p.event_shape={tuple(p.event_shape)} and "
            f"q.event_shape={tuple(q.event_shape)}"
        )
    kp, kq = _support_key(p), _support_key(q)
    if kp is not None and kq is not None and kp != kq:
        raise ValueError(f"KL needs the same support for p and q, got p: {p.support} and q: {q.support}")
    try:
        torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    except RuntimeError as err:
        raise ValueError(
            f"batch shapes {tuple(p.batch_shape)} and {tuple(q.batch_shape)} do not broadcast"
        ) from err


def exact_kl(p: Distribution, q: Distribution) -> Tensor:
    r"""``KL(p || q) = sum_x p(x) (log p(x) - log q(x))`` by enumerating every joint value.

    At least one of ``p``, ``q`` must be a discrete pyro_ar distribution (its
    ``enumerate_support`` gives the joint values); the other may be any distribution with
    the same support and event shape.

    Args:
        p, q: distributions with ``event_shape (n,)`` and broadcastable batch shapes.

    Returns:
        ``broadcast(p.batch_shape, q.batch_shape)``; ``inf`` where ``q(x) = 0 < p(x)``.

    Raises:
        ValueError: incompatible supports or shapes, or ``K^n`` too large to enumerate.
        NotImplementedError: neither is an enumerable pyro_ar distribution.

    Example:
        >>> import pyro_ar
        >>> d = pyro_ar.NADE(event_size=4, hidden_size=8)()
        >>> exact_kl(d, d).item()
        0.0
    """
    _check_compatible(p, q)
    ar = p if isinstance(p, JointDistribution) and p.has_enumerate_support else q
    if not (isinstance(ar, JointDistribution) and ar.has_enumerate_support):
        raise NotImplementedError(f"exact KL needs an enumerable pyro_ar distribution; {_MC_HINT}")
    batch = torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    n = ar.event_shape[0]
    values = ar.enumerate_support(expand=False)
    values = values.reshape(values.shape[:1] + (1,) * len(batch) + (n,))  # (K^n, 1.., n)
    lp = p.log_prob(values)
    lq = q.log_prob(values)
    # Terms with p(x) = 0 contribute nothing, even where q(x) = 0 too.
    terms = torch.where(lp > -float("inf"), lp.exp() * (lp - lq), torch.zeros_like(lp))
    return terms.sum(0).expand(batch)


def _kl_or_raise(p: Distribution, q: Distribution) -> Tensor:
    _check_compatible(p, q)
    discrete = p if isinstance(p, JointDistribution) else q
    if not discrete.has_enumerate_support:
        raise NotImplementedError(
            f"KL({type(p).__name__} || {type(q).__name__}) of continuous autoregressive models has no "
            f"closed form; {_MC_HINT}"
        )
    try:
        discrete.enumeration_size()
    except ValueError as err:
        raise NotImplementedError(f"exact KL: {err}; {_MC_HINT}") from err
    return exact_kl(p, q)


@register_kl(JointDistribution, JointDistribution)
def _kl_ar_ar(p: JointDistribution, q: JointDistribution) -> Tensor:
    return _kl_or_raise(p, q)


@register_kl(JointDistribution, Independent)
def _kl_ar_independent(p: JointDistribution, q: Independent) -> Tensor:
    return _kl_or_raise(p, q)


@register_kl(Independent, JointDistribution)
def _kl_independent_ar(p: Independent, q: JointDistribution) -> Tensor:
    return _kl_or_raise(p, q)


def monte_carlo_kl(p: Distribution, q: Distribution, num_samples: int = 1000) -> Tuple[Tensor, Tensor]:
    r"""A Monte-Carlo estimate of ``KL(p || q)`` and its standard error.

    .. math::
        \widehat{\mathrm{KL}} = \frac1N \sum_{s=1}^N \big(\log p(x_s) - \log q(x_s)\big),
        \quad x_s \sim p, \qquad
        \mathrm{se} = \frac{\operatorname{std}_s(\log p(x_s) - \log q(x_s))}{\sqrt N}.

    Works for any pair (continuous or discrete, pyro_ar or not) with the same support. When
    ``p.has_rsample`` the samples are reparameterized (pathwise gradients: with
    mixture-of-Gaussians AR models, through :mod:`pyro_ar.reparam`); otherwise they are
    plain samples and the estimate's gradient with respect to ``p``'s parameters is not
    an unbiased KL gradient.

    Args:
        p, q: distributions with equal ``event_shape`` and broadcastable batch shapes.
        num_samples: ``N >= 2``.

    Returns:
        ``(estimate, standard_error)``, each of shape ``broadcast(p.batch_shape, q.batch_shape)``.

    Example:
        >>> import pyro_ar
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> p, q = pyro_ar.NADE(event_size=4)(), pyro_ar.NADE(event_size=4)()
        >>> est, se = monte_carlo_kl(p, q, 4000)
        >>> bool(abs(est - torch.distributions.kl_divergence(p, q)) < 4 * se)
        True
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 2:
        raise ValueError(f"num_samples must be an int >= 2, got {num_samples!r}")
    _check_compatible(p, q)
    batch = torch.broadcast_shapes(p.batch_shape, q.batch_shape)
    x = p.rsample((num_samples,)) if p.has_rsample else p.sample((num_samples,))
    ratio = (p.log_prob(x) - q.log_prob(x)).expand((num_samples,) + batch)
    return ratio.mean(0), ratio.std(0) / num_samples**0.5
