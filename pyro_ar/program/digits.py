"""The embedded 8x8 digits, raw, and the grey-level primitives (binarize, quantize, dequantize).

The embedded default is the 8x8 handwritten digits of the UCI "Optical Recognition of
Handwritten Digits" data (1,797 images, grey levels 0..16; CC BY 4.0, Alpaydin & Kaynak,
as distributed with scikit-learn), stored in ``pyro_ar/program/data/digits.npz``: no download.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = ["digits_split", "binarize", "quantize", "dequantize", "SPLITS", "DIGITS_MAX_LEVEL"]

Split = Literal["train", "valid", "test", "all"]
#: Fixed split of the digits (a seeded permutation): 1,197 train, 300 validation, 300 test.
SPLITS = {"train": (0, 1197), "valid": (1197, 1497), "test": (1497, 1797)}
_SPLIT_SEED = 20240607
DIGITS_MAX_LEVEL = 16


def _raw_digits() -> Tuple[np.ndarray, np.ndarray]:
    with resources.files("pyro_ar.program").joinpath("data/digits.npz").open("rb") as f:
        with np.load(f) as data:
            return data["images"], data["labels"]


def digits_split(split: Split = "train") -> Tuple[Tensor, Tensor]:
    """Raw digits of one split: ``(images (N, 64) uint8 in 0..16, labels (N,) long)``."""
    images, labels = _raw_digits()
    if split == "all":
        return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS) + ['all']}, got {split!r}")
    perm = np.random.default_rng(_SPLIT_SEED).permutation(len(images))
    lo, hi = SPLITS[split]
    idx = perm[lo:hi]
    return torch.from_numpy(images[idx]), torch.from_numpy(labels[idx].astype(np.int64))


def binarize(images: Tensor, max_level: int = DIGITS_MAX_LEVEL) -> Tensor:
    """Threshold at half the range: ``(N, n)`` grey levels -> float 0/1."""
    return (images.float() > max_level / 2).float()


def quantize(images: Tensor, levels: int, max_level: int = DIGITS_MAX_LEVEL) -> Tensor:
    """Grey levels ``0..max_level`` -> ``levels`` equal-width bins, ``torch.long`` in ``0..levels-1``."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    return torch.clamp((images.float() * levels / (max_level + 1)).floor().long(), 0, levels - 1)


def dequantize(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Integer levels + uniform noise in [0, 1): a continuous version of discrete data."""
    return images.float() + torch.rand(images.shape, generator=generator)
