"""Peer libraries' models seen through the calls of pyro_ar's one training loop.

:func:`pyro_ar.program.training.train` and :func:`~pyro_ar.program.training.evaluate_nll`
use a model as ``net.num_masks`` and ``net(context, mask_index=...).log_prob(x)``. Wrapping a
peer's density model this way trains it with exactly the loop, shuffling, early stopping and
evaluation that our models get, so that a comparison differs only in the model.
"""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

__all__ = ["PeerDensity"]


class PeerDensity(nn.Module):
    """A module with ``log_prob(x: (B, n)) -> (B,)`` (an nflows ``MixtureOfGaussiansMADE``, a
    zuko flow's distribution, ...) as a one-member unconditional model.

    Args:
        peer: the peer's module; its parameters are this module's.
    """

    num_masks = 1

    def __init__(self, peer: nn.Module):
        super().__init__()
        self.peer = peer

    def forward(self, context: Optional[Tensor] = None, mask_index: Optional[int] = None) -> "PeerDensity":
        if context is not None:
            raise ValueError("the wrapped peer model is unconditional: it takes no context")
        return self  # the "distribution": only log_prob is needed

    def log_prob(self, x: Tensor) -> Tensor:
        """``x: (B, n) -> (B,)``: the peer's log density."""
        return self.peer.log_prob(x)
