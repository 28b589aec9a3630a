"""Reparameterized sampling of 1-D Gaussian mixtures (implicit reparameterization)."""

from torch import Tensor

__all__ = ["mixture_rsample"]


def mixture_rsample(logits: Tensor, means: Tensor, scales: Tensor) -> Tensor:
    raise NotImplementedError("mixture rsample is not implemented yet")
