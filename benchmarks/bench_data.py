"""Data sets of the likelihood benchmarks: all offline, with fixed splits.

* The embedded 8x8 digits (``pyro_ar.datasets``): binarized at half the grey range, or
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
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from pyro_ar.datasets import load_digits

__all__ = ["digits", "fashion_mnist_binary", "breast_cancer", "digits_continuous", "FASHION_DIRS"]

Splits = Dict[str, Tensor]
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist", "/usr/share/dataset-fashion-mnist")
FASHION_VALID = 5000


def digits(kind: str, levels: int = 4) -> Splits:
    """The embedded digits as ``"binary"`` (float 0/1) or ``"categorical"`` (long, ``levels``)."""
    return {s: load_digits(s, kind, levels=levels) for s in ("train", "valid", "test")}


def _read_idx(path: Path) -> np.ndarray:
    """A minimal reader of the gzip-compressed IDX files of (Fashion-)MNIST (uint8 only)."""
    with gzip.open(path, "rb") as f:
        blob = f.read()
    if blob[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not a uint8 IDX file")
    ndim = blob[3]
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(blob, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_raw(root: Optional[str]) -> tuple:
    # Prefer the package's own loader where it exists; fall back to the reader above.
    try:
        from pyro_ar.data_files import load_fashion_mnist

        return load_fashion_mnist(root)
    except ImportError:
        pass
    for folder in [root] if root else FASHION_DIRS:
        folder = Path(folder)
        if (folder / "train-images-idx3-ubyte.gz").is_file():
            return _read_idx(folder / "train-images-idx3-ubyte.gz"), _read_idx(folder / "t10k-images-idx3-ubyte.gz")
    raise ValueError("Fashion-MNIST not found: `apt-get install dataset-fashion-mnist` (Debian/Ubuntu)")


def fashion_mnist_binary(root: Optional[str] = None, max_train: Optional[int] = None) -> Splits:
    """Binarized Fashion-MNIST, ``(N, 784)`` float 0/1, thresholded at half the grey range."""
    train, test = _fashion_raw(root)
    binary = lambda a: torch.from_numpy((a.reshape(len(a), -1) > 127.5).astype(np.float32))  # noqa: E731
    splits = {"train": binary(train[:-FASHION_VALID]), "valid": binary(train[-FASHION_VALID:]), "test": binary(test)}
    if max_train is not None:
        splits = {k: v[:max_train] for k, v in splits.items()}
    return splits


def _standardize(splits: Dict[str, np.ndarray]) -> Splits:
    mean, std = splits["train"].mean(0), splits["train"].std(0)
    std = np.where(std > 1e-2, std, 1.0)
    return {k: torch.from_numpy(((v - mean) / std).astype(np.float32)) for k, v in splits.items()}


def breast_cancer(seed: int = 0) -> Splits:
    """scikit-learn's breast-cancer features (569 x 30), standardized; 341 / 114 / 114 rows."""
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer().data.astype(np.float64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_train, n_valid = int(0.6 * len(x)), int(0.2 * len(x))
    idx = {"train": perm[:n_train], "valid": perm[n_train : n_train + n_valid], "test": perm[n_train + n_valid :]}
    return _standardize({k: x[v] for k, v in idx.items()})


def digits_continuous() -> Splits:
    """The digits dequantized (uniform noise) and standardized, as ``pyro_ar.datasets`` gives them."""
    return {s: load_digits(s, "continuous") for s in ("train", "valid", "test")}
