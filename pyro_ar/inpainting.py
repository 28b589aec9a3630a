r"""Exact conditioning of AR distributions on a partial observation (inpainting).

Given values ``observed: (*, n)`` and a boolean ``observed_mask: (*, n)`` (``True`` where a
variable is observed), an AR model conditions *exactly* when, in its order σ, every
observed variable comes before every unobserved one (the observed set is a prefix of σ).
Then

.. math::

    \log p(x_o) = \sum_{k=1}^{|o|} \log p(x_{σ_k} \mid x_{σ_{<k}}), \qquad
    p(x_u \mid x_o) = \prod_{k > |o|} p(x_{σ_k} \mid x_{σ_{<k}}),

so the marginal is one forward pass (the parameters of prefix variables depend on the
prefix only) and the conditional is the ordinary sampling loop with the prefix clamped.
For any other pattern, ``p(x_o)`` would need a sum over the unobserved variables that
precede observed ones, which this module refuses to approximate: it raises ``ValueError``.

An ensemble of ``M`` members (MADE's masks, ``mask_index=None``) is the mixture
``p(x) = (1/M) sum_m p_m(x)``. Its exact conditional is again a mixture, with *posterior*
member weights:

.. math::

    p(x_u \mid x_o) = \sum_m w_m(x_o)\, p_m(x_u \mid x_o), \qquad
    w_m(x_o) \propto p_m(x_o),

so each row draws its member from ``w(x_o)`` and then samples that member. This is exact
only when every member admits the pattern. Otherwise the functions raise, naming the
members that fail, unless ``admissible_only=True`` is passed: then each row uses the
mixture of only the members that admit its pattern (an exact conditional of that
sub-mixture, which is a different distribution from the full ensemble).

The mask may differ from row to row; every row is checked. Values at unobserved
positions are ignored (they may even be NaN).

Example:
    >>> import torch, pyro_ar
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> d = pyro_ar.NADE(event_size=4, hidden_size=8, order="reverse")()
    >>> x = torch.tensor([0.0, 0.0, 1.0, 1.0])
    >>> mask = torch.tensor([False, False, True, True])  # x_3, x_2 come first in the order
    >>> conditional_sample(d, x, mask, (5,)).shape
    torch.Size([5, 4])
    >>> marginal_log_prob(d, x, mask).shape
    torch.Size([])
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, List, Sequence, Tuple

import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from pyro_ar.distributions.autoregressive import Autoregressive

__all__ = [
    "observed_first",
    "admissible_members",
    "members_admitting",
    "marginal_log_prob",
    "conditional_sample",
]


def observed_first(order: Tensor, observed_mask: Tensor) -> Tensor:
    """Whether, in ``order``, every observed variable precedes every unobserved one.

    Args:
        order: a permutation ``(n,)``: ``order[k]`` is the variable drawn at step ``k``.
        observed_mask: boolean ``(*, n)``.

    Returns:
        boolean ``(*)``: ``True`` for the rows that condition exactly under ``order``.
    """
    in_order = observed_mask[..., order.to(observed_mask.device)]
    # A row fails iff an unobserved step is directly followed by an observed one somewhere.
    return ~(~in_order[..., :-1] & in_order[..., 1:]).any(-1)


def admissible_members(d: "Autoregressive", observed_mask: Tensor) -> Tensor:
    """Which members of ``d`` condition exactly on each row of ``observed_mask``.

    Args:
        d: the distribution; its members are ``d.members``.
        observed_mask: boolean ``(*, n)``.

    Returns:
        boolean ``(len(d.members), *)``, rows in the order of ``d.members``.
    """
    _check_mask(d, observed_mask)
    orders = d.conditioner.orders
    return torch.stack([observed_first(orders[m], observed_mask) for m in d.members])


def members_admitting(d: "Autoregressive", observed_mask: Tensor) -> List[int]:
    """The members of ``d`` whose order puts the observed variables first in *every* row.

    Any of them can be selected with ``net(mask_index=m)`` to condition exactly.

    Args:
        d: the distribution.
        observed_mask: boolean ``(*, n)``.
    """
    mask = _check_mask(d, observed_mask)
    ok = admissible_members(d, mask).reshape(len(d.members), -1).all(-1)
    return [m for m, good in zip(d.members, ok.tolist()) if good]


# ---- input checks ------------------------------------------------------------------------


def _check_mask(d: "Autoregressive", observed_mask: Tensor) -> Tensor:
    if not isinstance(observed_mask, Tensor):
        raise ValueError(f"observed_mask must be a boolean torch.Tensor, got {type(observed_mask).__name__}")
    if observed_mask.dtype != torch.bool:
        raise ValueError(f"observed_mask must have dtype torch.bool (True = observed), got {observed_mask.dtype}")
    n = d.event_size
    if observed_mask.dim() == 0 or observed_mask.shape[-1] != n:
        raise ValueError(f"observed_mask must have shape (*, {n}), got shape {tuple(observed_mask.shape)}")
    return observed_mask


def _check_inputs(d: "Autoregressive", observed: Tensor, observed_mask: Tensor) -> Tuple[Tensor, Tensor, torch.Size]:
    """Validate; return ``(observed with unobserved entries zeroed, mask, batch shape B)``."""
    mask = _check_mask(d, observed_mask)
    if not isinstance(observed, Tensor):
        raise ValueError(f"observed must be a torch.Tensor, got {type(observed).__name__}")
    n = d.event_size
    if observed.dim() == 0 or observed.shape[-1] != n:
        raise ValueError(f"observed must have shape (*, {n}), got shape {tuple(observed.shape)}")
    try:
        batch = torch.broadcast_shapes(observed.shape[:-1], mask.shape[:-1], d.batch_shape)
    except RuntimeError as err:
        raise ValueError(
            f"observed {tuple(observed.shape)}, observed_mask {tuple(mask.shape)} and batch_shape "
            f"{tuple(d.batch_shape)} do not broadcast"
        ) from err
    _, device = d._param_dtype_device()
    observed, mask = observed.to(device), mask.to(device)
    # Unobserved entries are placeholders (maybe NaN): zero is a valid value for every head,
    # and by the AR property it cannot reach the conditionals of the observed prefix.
    filled = torch.where(mask, observed, torch.zeros((), dtype=observed.dtype, device=device))
    d.conditional.check_value(filled)
    if d._validate_args:
        try:
            d._validate_sample(filled)
        except ValueError as err:
            raise ValueError(f"observed values (where observed_mask is True) are invalid: {err}") from err
    return filled, mask, batch


def _check_temperature(d: "Autoregressive", temperature: float) -> None:
    if isinstance(temperature, bool) or not (
        isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if temperature != 1.0 and not d.conditional.is_discrete:
        raise ValueError(f"temperature applies to discrete conditionals only; {d.conditional!r} needs temperature=1")


def _explain(order: Tensor, mask_row: Tensor) -> str:
    """Say which unobserved variable precedes which observed one in ``order``."""
    steps = mask_row[order].tolist()
    first_gap = steps.index(False)
    late = steps.index(True, first_gap)
    o = order.tolist()
    shown = f" {o}" if len(o) <= 16 else ""
    return f"variable {o[first_gap]} is unobserved but comes before observed variable {o[late]} in the order{shown}"


def _admissibility(
    d: "Autoregressive", mask: Tensor, batch: torch.Size, admissible_only: bool, what: str
) -> Tensor:
    """``(M, *B)`` admissibility, or a ``ValueError`` where exact conditioning is impossible."""
    members = d.members
    adm = admissible_members(d, mask.expand(batch + mask.shape[-1:]))  # (M, *B)
    flat = adm.reshape(len(members), -1)
    if len(members) == 1:
        if not bool(flat.all()):
            row = int((~flat[0]).nonzero()[0])
            mask_row = mask.expand(batch + mask.shape[-1:]).reshape(-1, mask.shape[-1])[row]
            which = "" if d.conditioner.num_members == 1 else f" (member mask_index={members[0]})"
            raise ValueError(
                f"cannot compute the exact {what}: the observed variables must come first in the "
                f"model's order{which}, but in row {row} "
                f"{_explain(d.conditioner.orders[members[0]], mask_row)}. Build the model with an order "
                "that puts the observed variables first (order=...), or use an order-agnostic "
                "MADE (num_masks > 1) and pick a member that does"
            )
        return adm
    if admissible_only:
        none = ~flat.any(0)
        if bool(none.any()):
            row = int(none.nonzero()[0])
            raise ValueError(
                f"cannot compute the exact {what}: no member of the ensemble puts the observed variables "
                f"of row {row} first in its order, so not even admissible_only=True can condition that row"
            )
        return adm
    bad = [m for m, ok in zip(members, flat.all(-1).tolist()) if not ok]
    if bad:
        good = [m for m in members if m not in bad]
        j = members.index(bad[0])
        row = int((~flat[j]).nonzero()[0])
        mask_row = mask.expand(batch + mask.shape[-1:]).reshape(-1, mask.shape[-1])[row]
        hint = (
            f"members {good} do put the observed variables first: select one with mask_index=..., or "
            if good
            else "no member puts the observed variables first in every row; use a model whose order does "
            "(order=...), or "
        )
        raise ValueError(
            f"cannot compute the exact {what} of the {len(members)}-member ensemble: it needs every "
            f"member to put the observed variables first, but members {bad} do not (member {bad[0]}, "
            f"row {row}: {_explain(d.conditioner.orders[bad[0]], mask_row)}). Options: {hint}pass "
            "admissible_only=True to condition, per row, the mixture of only the members that admit "
            "the pattern (a different distribution from the full ensemble)"
        )
    return adm


# ---- marginals -----------------------------------------------------------------------------


def _prefix_log_probs(d: "Autoregressive", filled: Tensor, mask: Tensor, batch: torch.Size) -> Tensor:
    """``sum over observed i of log p_m(x_i | x_<i)`` for every member: ``(M, *B)``.

    It equals ``log p_m(x_o)`` for the rows where member m admits the pattern.
    """
    dtype, _ = d._param_dtype_device()
    x = d.conditional.encode(filled, dtype)
    out = []
    with d._bound_weights():
        for m in d.members:
            params = d.conditioner(x, d.context, member=m)
            lp = d.conditional.log_prob(params, filled)
            out.append(torch.where(mask, lp, torch.zeros((), dtype=lp.dtype, device=lp.device)).sum(-1).expand(batch))
    return torch.stack(out)


def marginal_log_prob(
    d: "Autoregressive", observed: Tensor, observed_mask: Tensor, *, admissible_only: bool = False
) -> Tensor:
    r"""The exact marginal ``log p(x_o)`` of the observed variables.

    For one member, the sum of the log conditionals of the observed variables, which must
    form a prefix of its order. For an ensemble,
    ``log p(x_o) = logsumexp_m log p_m(x_o) - log M``, which needs every member to admit
    the pattern (with ``admissible_only=True``: the marginal of the per-row mixture of the
    admitting members). Differentiable in the model's parameters and, for continuous
    heads, in ``observed``.

    Args:
        d: the distribution.
        observed: ``(*, n)`` values; entries where the mask is ``False`` are ignored.
        observed_mask: boolean ``(*, n)``, ``True`` where observed.
        admissible_only: see the module docstring.

    Returns:
        ``(*B)`` with ``B = broadcast(observed.shape[:-1], observed_mask.shape[:-1], batch_shape)``.

    Raises:
        ValueError: where the pattern cannot be conditioned on exactly, or on bad input.
    """
    filled, mask, batch = _check_inputs(d, observed, observed_mask)
    adm = _admissibility(d, mask, batch, admissible_only, "marginal log-probability")
    lps = _prefix_log_probs(d, filled, mask, batch)
    if lps.shape[0] == 1:
        return lps[0]
    if not admissible_only:
        return torch.logsumexp(lps, 0) - math.log(lps.shape[0])
    lps = lps.masked_fill(~adm, -math.inf)
    return torch.logsumexp(lps, 0) - adm.sum(0).to(lps.dtype).log()


# ---- conditional sampling ------------------------------------------------------------------


def conditional_sample(
    d: "Autoregressive",
    observed: Tensor,
    observed_mask: Tensor,
    sample_shape: Sequence[int] = torch.Size(),
    temperature: float = 1.0,
    *,
    admissible_only: bool = False,
) -> Tensor:
    r"""Fill in the unobserved variables: draws from ``p(x_u | x_o)``, observed ones kept.

    Exact for one member when the observed variables come first in its order (the
    sampling loop with the prefix clamped). For an ensemble, each row first draws its
    member from the posterior weights ``w_m ∝ p_m(x_o)`` (computed at temperature 1),
    then samples that member; this needs every member to admit the pattern, or
    ``admissible_only=True`` (see the module docstring).

    Args:
        d: the distribution.
        observed: ``(*, n)`` values; entries where the mask is ``False`` are ignored.
        observed_mask: boolean ``(*, n)``, ``True`` where observed.
        sample_shape: leading shape of the draws.
        temperature: divides each drawn conditional's logits (discrete heads only), as in
            :meth:`Autoregressive.sample`; 1 is the model.
        admissible_only: see the module docstring.

    Returns:
        ``sample_shape + B + (n,)`` with ``B = broadcast(observed.shape[:-1],
        observed_mask.shape[:-1], batch_shape)``, of the head's sample dtype; equal to
        ``observed`` where the mask is set.

    Raises:
        ValueError: where the pattern cannot be conditioned on exactly, or on bad input.
    """
    _check_temperature(d, temperature)
    filled, mask, batch = _check_inputs(d, observed, observed_mask)
    with torch.no_grad():
        adm = _admissibility(d, mask, batch, admissible_only, "conditional")
        if len(d.members) == 1:
            expanded = d if batch == d.batch_shape else d.expand(batch)
            return expanded._sample(sample_shape, temperature=temperature, observed=filled, observed_mask=mask)
        return _ensemble_conditional_sample(d, filled, mask, batch, adm, torch.Size(sample_shape), temperature)


def _ensemble_conditional_sample(
    d: "Autoregressive",
    filled: Tensor,
    mask: Tensor,
    batch: torch.Size,
    adm: Tensor,
    sample_shape: torch.Size,
    temperature: float,
) -> Tensor:
    members = d.members
    n = d.event_size
    full = sample_shape + batch
    dtype, device = d._param_dtype_device()
    rows = full.numel()
    if rows == 0:
        return torch.empty(full + (n,), dtype=d.conditional.sample_dtype(dtype), device=device)
    log_w = _prefix_log_probs(d, filled, mask, batch).masked_fill(~adm, -math.inf)  # (M, *B)
    choice = torch.distributions.Categorical(logits=log_w.movedim(0, -1)).sample(sample_shape).reshape(rows)
    obs = filled.expand(full + (n,)).reshape(rows, n)
    msk = mask.expand(full + (n,)).reshape(rows, n)
    ctx = None if d.context is None else d.context.expand(full + d.context.shape[-1:]).reshape(rows, -1)
    parts, picked = [], []
    for j, m in enumerate(members):
        idx = (choice == j).nonzero().squeeze(-1)
        if idx.numel() == 0:
            continue
        part_ctx = None if ctx is None else ctx[idx]
        parts.append(
            d._sample_member(m, torch.Size([idx.numel()]), part_ctx, temperature, obs[idx], msk[idx], False)
        )
        picked.append(idx)
    x = torch.cat(parts)[torch.argsort(torch.cat(picked))]
    return x.reshape(full + (n,))
