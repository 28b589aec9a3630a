"""User-facing models: modules whose call returns a fresh AR distribution (lazy distributions).

``net = pyro_ar.NADE(event_size=64, hidden_size=128)`` builds the conditioner and the head in
one call; ``net(context)`` gives a :class:`pyro_ar.distributions.NADE` whose parameters are
the module's, so ``pyro.module("ar", net)`` and optimizers see them.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from pyro_ar import distributions as ar_dist
from pyro_ar import nn as ar_nn
from pyro_ar.conditionals import Bernoulli, Conditional
from pyro_ar.nn.base import OrderSpec

__all__ = ["AutoregressiveModel", "FVSBN", "NADE", "MADE"]

MaskIndex = Union[None, int, str]


class AutoregressiveModel(nn.Module):
    """A conditioner and a conditional head; calling it gives the distribution.

    Args:
        conditioner: a :class:`pyro_ar.nn.Conditioner`.
        conditional: the head the conditioner was sized for.

    ``hparams`` holds the constructor arguments of the named subclasses, so that a
    checkpoint can rebuild the same model.
    """

    distribution_class = ar_dist.Autoregressive

    def __init__(self, conditioner: ar_nn.Conditioner, conditional: Conditional):
        super().__init__()
        self.conditioner = conditioner
        self.conditional = conditional
        self.hparams: Dict[str, Any] = {}

    @property
    def event_size(self) -> int:
        return self.conditioner.event_size

    @property
    def context_size(self) -> Optional[int]:
        return self.conditioner.context_size

    @property
    def num_masks(self) -> int:
        return self.conditioner.num_members

    def forward(self, context: Optional[Tensor] = None, mask_index: MaskIndex = None) -> ar_dist.Autoregressive:
        """The distribution ``p(x | context)``.

        Args:
            context: ``(*batch, c)``, or ``None`` for an unconditional model.
            mask_index: ``None`` for the exact mixture of all masks, an int for one member,
                or ``"random"`` for a member drawn uniformly (one per training step, as in
                order-agnostic training).

        Returns:
            a distribution with ``batch_shape = context.shape[:-1]`` and ``event_shape = (n,)``.
        """
        if isinstance(mask_index, str):
            if mask_index != "random":
                raise ValueError(f"mask_index must be None, an int or 'random', got {mask_index!r}")
            mask_index = int(torch.randint(self.num_masks, ()))
        return self.distribution_class(self.conditioner, self.conditional, context=context, mask_index=mask_index)

    def extra_repr(self) -> str:
        return f"conditional={self.conditional!r}"


def _head(conditional: Optional[Conditional]) -> Conditional:
    if conditional is None:
        return Bernoulli()
    if not isinstance(conditional, Conditional):
        raise TypeError(
            "conditional must be a pyro_ar.conditionals head such as Bernoulli(), Categorical(K) "
            f"or MixtureOfGaussians(K), got {conditional!r}"
        )
    return conditional


class FVSBN(AutoregressiveModel):
    """A fully visible sigmoid belief network (logistic regression on the past), ``O(n^2)`` parameters.

    Args:
        event_size: ``n``, the number of variables.
        conditional: the head (default :class:`~pyro_ar.conditionals.Bernoulli`).
        context_size: ``c`` for a conditional model ``p(x | context)``, else ``None``.
        order: ``None`` (identity), ``"random"``, ``"reverse"`` or a permutation of ``0..n-1``.
        seed: the seed of a random order.

    Example:
        >>> net = FVSBN(event_size=10)
        >>> net().sample((4,)).shape
        torch.Size([4, 10])
    """

    distribution_class = ar_dist.FVSBN

    def __init__(
        self,
        event_size: int,
        conditional: Optional[Conditional] = None,
        context_size: Optional[int] = None,
        order: OrderSpec = None,
        seed: Optional[int] = None,
    ):
        head = _head(conditional)
        net = ar_nn.FVSBN(
            event_size,
            input_size=head.input_size,
            param_size=head.param_size,
            context_size=context_size,
            order=order,
            seed=seed,
            initial_bias=head.initial_bias(),
        )
        super().__init__(net, head)
        self.hparams = dict(event_size=event_size, conditional=head, context_size=context_size, order=order, seed=seed)


class NADE(AutoregressiveModel):
    """A neural autoregressive density estimator: one hidden layer shared by all conditionals,
    ``O(n d)`` parameters and ``O(n d)`` time for both log_prob and sampling.

    Args:
        event_size: ``n``.
        hidden_size: ``d``.
        conditional: the head (default :class:`~pyro_ar.conditionals.Bernoulli`).
        context_size: ``c`` or ``None``.
        order: ``None`` (identity), ``"random"``, ``"reverse"`` or a permutation.
        seed: the seed of a random order.

    Example:
        >>> net = NADE(event_size=64, hidden_size=32)
        >>> d = net()
        >>> d.batch_shape, d.event_shape
        (torch.Size([]), torch.Size([64]))
    """

    distribution_class = ar_dist.NADE

    def __init__(
        self,
        event_size: int,
        hidden_size: int = 64,
        conditional: Optional[Conditional] = None,
        context_size: Optional[int] = None,
        order: OrderSpec = None,
        seed: Optional[int] = None,
    ):
        head = _head(conditional)
        net = ar_nn.NADE(
            event_size,
            hidden_size,
            input_size=head.input_size,
            param_size=head.param_size,
            context_size=context_size,
            order=order,
            seed=seed,
            initial_bias=head.initial_bias(),
        )
        super().__init__(net, head)
        self.hparams = dict(
            event_size=event_size,
            hidden_size=hidden_size,
            conditional=head,
            context_size=context_size,
            order=order,
            seed=seed,
        )


class MADE(AutoregressiveModel):
    """A masked MLP of any depth; with ``num_masks > 1`` an order/connectivity-agnostic ensemble.

    Args:
        event_size: ``n``.
        hidden_sizes: widths of the hidden layers, e.g. ``[256, 256]``.
        conditional: the head (default :class:`~pyro_ar.conditionals.Bernoulli`).
        context_size: ``c`` or ``None``.
        num_masks: number of masks/orders ``M`` (``net()`` is their exact mixture;
            ``net(mask_index="random")`` picks one, as during training).
        order: order of the first mask: ``None``, ``"random"``, ``"reverse"`` or a permutation.
        order_agnostic: whether masks after the first draw their own random orders.
        seed: seed of random orders and hidden degrees.
        activation: hidden nonlinearity: ``"relu"`` (default), ``"tanh"``, ``"sigmoid"``,
            ``"elu"``, ``"gelu"``, or ``"linear"`` for a linear AR model factorized through
            the hidden layers (nflows' ``MixtureOfGaussiansMADE(num_blocks=0)`` is this model;
            on small real-valued tables it trains better than FVSBN's direct parametrization).

    Example:
        >>> from pyro_ar.conditionals import MixtureOfGaussians
        >>> net = MADE(event_size=2, hidden_sizes=[32, 32], conditional=MixtureOfGaussians(5))
        >>> net().log_prob(torch.zeros(7, 2)).shape
        torch.Size([7])
    """

    distribution_class = ar_dist.MADE

    def __init__(
        self,
        event_size: int,
        hidden_sizes: Sequence[int] = (64,),
        conditional: Optional[Conditional] = None,
        context_size: Optional[int] = None,
        num_masks: int = 1,
        order: OrderSpec = None,
        order_agnostic: bool = True,
        seed: Optional[int] = None,
        activation: str = "relu",
    ):
        head = _head(conditional)
        net = ar_nn.MADE(
            event_size,
            hidden_sizes,
            input_size=head.input_size,
            param_size=head.param_size,
            context_size=context_size,
            num_masks=num_masks,
            order=order,
            order_agnostic=order_agnostic,
            seed=seed,
            initial_bias=head.initial_bias(),
            activation=activation,
        )
        super().__init__(net, head)
        self.hparams = dict(
            event_size=event_size,
            hidden_sizes=list(hidden_sizes),
            conditional=head,
            context_size=context_size,
            num_masks=num_masks,
            order=order,
            order_agnostic=order_agnostic,
            seed=seed,
            activation=activation,
        )
