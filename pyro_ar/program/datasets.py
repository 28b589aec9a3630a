"""Data sets shipped with pyro_ar, prepared for a head: ``load_digits``.

The embedded default is the 8x8 handwritten digits of the UCI "Optical Recognition of
Handwritten Digits" data (1,797 images, grey levels 0..16; CC BY 4.0, Alpaydin & Kaynak,
as distributed with scikit-learn), stored in ``pyro_ar/program/data/digits.npz``: no
download. The preparation is the one the ``pyro-ar`` program uses
(:func:`pyro_ar.program.data_files.load_dataset`).
"""

from __future__ import annotations

from torch import Tensor

from pyro_ar.program.data_files import load_dataset
from pyro_ar.program.digits import SPLITS, Split, binarize, dequantize, digits_split, quantize

__all__ = ["load_digits", "digits_split", "binarize", "quantize", "dequantize", "SPLITS"]


def load_digits(split: Split = "train", kind: str = "bernoulli", levels: int = 4) -> Tensor:
    """The digits of ``split`` prepared for a head: ``(N, 64)``.

    Args:
        split: ``"train"`` (1,197), ``"valid"`` (300), ``"test"`` (300) or ``"all"``.
        kind: a head's name, as for ``pyro-ar fit --conditional``: ``"bernoulli"`` (float
            0/1, thresholded at half the grey range), ``"categorical"`` (long, ``levels``
            grey levels), ``"mog"`` (dequantized, then standardized with the training split's
            per-pixel mean and std), or ``"raw"`` (uint8 0..16).
        levels: grey levels for ``"categorical"``.
    """
    if kind == "raw":
        return digits_split(split)[0]
    return load_dataset("digits", kind, levels=levels if kind == "categorical" else None).split(split)
