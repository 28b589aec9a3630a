"""Data sets of the likelihood benchmarks: all offline, with fixed splits.

* The embedded 8x8 digits (``pyro_ar.program.datasets``): binarized at half the grey range, or
  quantized to 4 grey levels for categorical heads; the package's fixed split
  (1,197 / 300 / 300).
* Fashion-MNIST from the Debian package ``dataset-fashion-mnist`` (IDX files under
  ``/usr/share/datasets/fashion-mnist``), binarized deterministically at half the grey
  range (pixel > 127.5); the last 5,000 training images are the validation split
  (55,000 / 5,000 / 10,000).
* Real-valued tables: scikit-learn's bundled breast-cancer table (569 x 30, no download)
  and the dequantized digits (1,797 x 64); a seeded 60/20/20 split of the rows for the
  table, the package split for the digits; standardized with the training split's
  per-column mean and standard deviation.
* scikit-learn's bundled wine table (178 x 13), dequantized: every column is a measurement
  rounded to a fixed number of decimals (magnesium and proline to integers), so values repeat
  (up to 15 times in a column), and a continuous density can put unbounded mass on a repeated
  value; adding uniform noise over one rounding unit of each column (fixed seed) removes the
  ties, as for the digits. Same seeded 60/20/20 split and standardization as the breast-cancer
  table (106 / 35 / 37 rows).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch
from torch import Tensor

from pyro_ar.program.data_files import load_fashion_mnist
from pyro_ar.program.datasets import load_digits

__all__ = ["digits", "fashion_mnist_binary", "breast_cancer", "wine", "digits_continuous", "rounding_units",
           "CONTINUOUS_TABLES", "check_tables", "continuous_table"]

Splits = Dict[str, Tensor]
FASHION_VALID = 5000


def digits(kind: str, levels: int = 4) -> Splits:
    """The embedded digits for the head ``kind``: ``"bernoulli"`` (float 0/1) or
    ``"categorical"`` (long, ``levels`` grey levels)."""
    if kind not in ("bernoulli", "categorical"):
        raise ValueError(f"kind must be 'bernoulli' or 'categorical', got {kind!r}")
    return {s: load_digits(s, kind, levels=levels) for s in ("train", "valid", "test")}


def fashion_mnist_binary(root: Optional[str] = None, max_train: Optional[int] = None) -> Splits:
    """Binarized Fashion-MNIST, ``(N, 784)`` float 0/1, thresholded at half the grey range."""
    train, test = load_fashion_mnist(root)
    binary = lambda a: torch.from_numpy((a.reshape(len(a), -1) > 127.5).astype(np.float32))  # noqa: E731
    splits = {"train": binary(train[:-FASHION_VALID]), "valid": binary(train[-FASHION_VALID:]), "test": binary(test)}
    if max_train is not None:
        splits = {k: v[:max_train] for k, v in splits.items()}
    return splits


def _standardize(splits: Dict[str, np.ndarray]) -> Splits:
    mean, std = splits["train"].mean(0), splits["train"].std(0)
    std = np.where(std > 1e-2, std, 1.0)
    return {k: torch.from_numpy(((v - mean) / std).astype(np.float32)) for k, v in splits.items()}


def _seeded_split(x: np.ndarray, seed: int) -> Splits:
    """A seeded 60/20/20 split of the rows of ``x``, standardized by the training rows."""
    perm = np.random.default_rng(seed).permutation(len(x))
    n_train, n_valid = int(0.6 * len(x)), int(0.2 * len(x))
    idx = {"train": perm[:n_train], "valid": perm[n_train : n_train + n_valid], "test": perm[n_train + n_valid :]}
    return _standardize({k: x[v] for k, v in idx.items()})


def breast_cancer(seed: int = 0) -> Splits:
    """scikit-learn's breast-cancer features (569 x 30), standardized; 341 / 113 / 115 rows."""
    from sklearn.datasets import load_breast_cancer

    return _seeded_split(load_breast_cancer().data.astype(np.float64), seed)


def rounding_units(x: np.ndarray, max_decimals: int = 6) -> np.ndarray:
    """``(n,)``: per column, the largest ``10^-d`` (``d <= max_decimals``) of which every value is a multiple
    (within 1e-5: the wine table has one 9.899999 among values of two decimals)."""
    units = []
    for col in x.T:
        d = next((d for d in range(max_decimals + 1) if np.allclose(np.round(col, d), col, rtol=0, atol=1e-5)),
                 max_decimals)
        units.append(10.0**-d)
    return np.array(units)


def wine(seed: int = 0, noise_seed: int = 0) -> Splits:
    """scikit-learn's wine features (178 x 13), dequantized over each column's rounding unit
    (``x + unit * U[0, 1)``, fixed ``noise_seed``) and standardized; 106 / 35 / 37 rows."""
    from sklearn.datasets import load_wine

    x = load_wine().data.astype(np.float64)
    x = x + rounding_units(x) * np.random.default_rng(noise_seed).random(x.shape)
    return _seeded_split(x, seed)


def digits_continuous() -> Splits:
    """The digits dequantized (uniform noise) and standardized, as ``pyro_ar.program.datasets`` gives them
    for mixture-of-Gaussians heads (``kind="mog"``)."""
    return {s: load_digits(s, "mog") for s in ("train", "valid", "test")}


#: The real-valued tables of the continuous benchmarks: name -> label in the result tables.
CONTINUOUS_TABLES = {
    "breast_cancer": "breast cancer (sklearn), 30 cols",
    "digits": "digits dequantized, 64 cols",
    "wine": "wine (sklearn) dequantized, 13 cols",
}


def check_tables(names: List[str]) -> None:
    """``SystemExit`` naming every name that is not in :data:`CONTINUOUS_TABLES`, and the choices."""
    unknown = sorted(set(names) - set(CONTINUOUS_TABLES))
    if unknown:
        raise SystemExit(f"unknown tables {unknown}: choose from {', '.join(CONTINUOUS_TABLES)}")


def continuous_table(name: str, seed: int = 0) -> Splits:
    """The splits of table ``name`` of :data:`CONTINUOUS_TABLES` (``seed``: the row split of the
    sklearn tables; the digits keep the package split)."""
    check_tables([name])
    if name == "breast_cancer":
        return breast_cancer(seed)
    if name == "wine":
        return wine(seed)
    return digits_continuous()
