r"""Reparameterized sampling of 1-D Gaussian mixtures by implicit reparameterization.

A mixture of Gaussians has no differentiable "noise -> sample" map (the component choice
is discrete), but its CDF

.. math:: F(x; θ) = \sum_k w_k\, Φ\Big(\frac{x - μ_k}{σ_k}\Big), \qquad w = \operatorname{softmax}(\text{logits})

is smooth. A sample is ``x = F^{-1}(u; θ)`` for ``u ~ Uniform(0, 1)``; holding ``u`` fixed and
differentiating ``F(x(θ); θ) = u`` gives the *implicit* gradient (Figurnov et al., 2018)

.. math:: \frac{dx}{dθ} = -\frac{\partial F(x; θ) / \partial θ}{p(x; θ)}.

For the three kinds of parameters this is, with responsibilities
``r_k = w_k N(x; μ_k, σ_k) / p(x)`` and ``z_k = (x - μ_k) / σ_k``:

.. math::
    \frac{dx}{dμ_k} = r_k, \qquad \frac{dx}{dσ_k} = r_k z_k, \qquad
    \frac{dx}{d\,\text{logit}_j} = -\frac{w_j\,(Φ(z_j) - F(x))}{p(x)}.

:func:`mixture_rsample` draws ``x`` without gradient (ancestral sampling) and attaches these
derivatives with a first-order surrogate whose value is exactly ``x``. Responsibilities are
computed with ``logsumexp``, and the weight term with ``log_ndtr`` on whichever side of the
median ``x`` lies (so tails never lose precision); the density in that last term is floored
at ``sqrt(finfo.tiny)`` (only reached between far-apart components), so gradients are finite
for every finite input: no NaN far in a tail.

Because :class:`pyro_ar.Autoregressive` feeds each reparameterized ``x_i`` to the conditioner
that produces the parameters of later variables, the pathwise gradient of an AR sample flows
through the whole chain.

References:
    M. Figurnov, S. Mohamed, A. Mnih. Implicit Reparameterization Gradients. NeurIPS 2018.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mixture_rsample", "mixture_reparameterize", "mixture_cdf"]


def _check_params(logits: Tensor, means: Tensor, scales: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    for name, t in (("logits", logits), ("means", means), ("scales", scales)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() == 0:
            raise ValueError(f"{name} must have shape (*, K), got a scalar")
    try:
        return tuple(torch.broadcast_tensors(logits, means, scales))
    except RuntimeError as err:
        raise ValueError(
            f"logits {tuple(logits.shape)}, means {tuple(means.shape)} and scales {tuple(scales.shape)} "
            "do not broadcast to a common (*, K)"
        ) from err


def mixture_cdf(x: Tensor, logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    r"""The mixture CDF ``F(x) = sum_k softmax(logits)_k Φ((x - μ_k) / σ_k)``.

    Args:
        x: ``(*)`` points.
        logits, means, scales: ``(*, K)`` mixture logits, component means and (positive)
            standard deviations.

    Returns:
        ``(*)``, differentiable in every argument.

    Example:
        >>> mixture_cdf(torch.zeros(()), torch.zeros(2), torch.tensor([-1.0, 1.0]), torch.ones(2))
        tensor(0.5000)
    """
    logits, means, scales = _check_params(logits, means, scales)
    log_w = torch.log_softmax(logits, -1)
    z = (x.unsqueeze(-1) - means) / scales
    return torch.logsumexp(log_w + torch.special.log_ndtr(z), -1).exp()


def mixture_reparameterize(x: Tensor, logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    r"""Attach implicit reparameterization gradients to mixture samples ``x``.

    Returns a tensor equal to ``x`` in value whose gradient with respect to the mixture
    parameters is the implicit one, ``dx/dθ = -(∂F(x; θ)/∂θ) / p(x; θ)``, i.e. the
    derivative of ``F^{-1}(u; θ)`` at fixed ``u = F(x; θ)``. The value ``x`` itself is
    treated as a constant (it carries no gradient of its own).

    The surrogate is first-order: ``x + Σ_k r_k Δμ_k + r_k z_k Δσ_k + c_k Δlogit_k`` with the
    coefficients detached and ``Δθ = θ - θ.detach()`` (zero in value); see the module
    docstring for the coefficients.

    Args:
        x: ``(*)`` samples (any finite values, e.g. from :func:`mixture_rsample`).
        logits, means, scales: ``(*, K)``; scales must be positive.

    Returns:
        ``(*)``: ``x`` in value, differentiable in ``logits``, ``means`` and ``scales``.

    Example:
        >>> means = torch.tensor([0.0, 3.0], requires_grad=True)
        >>> x = mixture_reparameterize(torch.tensor(3.0), torch.zeros(2), means, torch.ones(2))
        >>> x.backward(); means.grad  # responsibilities of the two components at x = 3
        tensor([0.0110, 0.9890])
    """
    logits, means, scales = _check_params(logits, means, scales)
    x = x.detach()
    if not (logits.requires_grad or means.requires_grad or scales.requires_grad):
        return x
    with torch.no_grad():
        dtype = torch.promote_types(x.dtype, means.dtype)
        lw, mu, sd = logits.to(dtype), means.to(dtype), scales.to(dtype)
        xd = x.to(dtype).unsqueeze(-1)
        log_w = torch.log_softmax(lw, -1)
        z = (xd - mu) / sd
        log_joint = log_w - 0.5 * z**2 - sd.log() - 0.5 * math.log(2 * math.pi)  # log w_k N(x; μ_k, σ_k)
        log_p = torch.logsumexp(log_joint, -1, keepdim=True)
        resp = (log_joint - log_p).exp()  # r_k, in [0, 1]
        # Weight term, c_j = -w_j (Φ(z_j) - F) / p. Left of the median use Φ, right of it use
        # the upper tail Q(z) = Φ(-z) (Φ_j - F = G - Q_j with G = 1 - F), so that neither side
        # subtracts two numbers close to 1. The floor only binds between far-apart components.
        floor = 0.5 * math.log(torch.finfo(dtype).tiny)
        log_p_floored = log_p.clamp_min(floor)
        log_lower = log_w + torch.special.log_ndtr(z)  # log w_k Φ(z_k)
        log_upper = log_w + torch.special.log_ndtr(-z)  # log w_k Q(z_k)
        left = torch.logsumexp(log_lower, -1, keepdim=True) < math.log(0.5)
        a_lower = (log_lower - log_p_floored).exp()  # w_k Φ_k / p
        a_upper = (log_upper - log_p_floored).exp()  # w_k Q_k / p
        w = log_w.exp()
        c_left = -(a_lower - w * a_lower.sum(-1, keepdim=True))
        c_right = a_upper - w * a_upper.sum(-1, keepdim=True)
        coef_logits = torch.where(left, c_left, c_right)
        coef_scales = resp * z
    surrogate = (
        resp.to(means.dtype) * (means - means.detach())
        + coef_scales.to(scales.dtype) * (scales - scales.detach())
        + coef_logits.to(logits.dtype) * (logits - logits.detach())
    ).sum(-1)
    return x + surrogate.to(x.dtype)


def mixture_rsample(logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    r"""One reparameterized draw from each 1-D Gaussian mixture.

    ``x ~ sum_k w_k N(μ_k, σ_k)`` with ``w = softmax(logits)``, drawn ancestrally (component,
    then Gaussian) without gradient, then given the implicit gradient of the inverse CDF by
    :func:`mixture_reparameterize`. This is what
    :meth:`pyro_ar.conditionals.MixtureOfGaussians.rsample` uses, so that an AR model with
    mixture-of-Gaussians conditionals has ``rsample`` and Pyro's ``Trace_ELBO`` gets pathwise
    gradients from it.

    Args:
        logits, means, scales: ``(*, K)``, broadcastable; scales positive.

    Returns:
        ``(*)`` samples of the parameters' dtype, differentiable in all three.

    Example:
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> means = torch.tensor([-2.0, 2.0], requires_grad=True)
        >>> x = mixture_rsample(torch.zeros(1000, 2), means, torch.ones(2))
        >>> (x**2).mean().backward()  # d E[x^2] / d μ_k = 2 w_k μ_k = (-2, 2)
        >>> means.grad.round(decimals=0)
        tensor([-2.,  2.])
    """
    logits, means, scales = _check_params(logits, means, scales)
    with torch.no_grad():
        k = torch.distributions.Categorical(logits=logits, validate_args=False).sample().unsqueeze(-1)
        loc = means.gather(-1, k).squeeze(-1)
        scale = scales.gather(-1, k).squeeze(-1)
        x = loc + scale * torch.randn_like(loc)
    return mixture_reparameterize(x, logits, means, scales)
