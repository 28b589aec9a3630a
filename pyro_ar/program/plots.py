"""Pictures that ``pyro-ar`` writes: sample grids and learning curves (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from pyro_ar.program.data_files import square_side

__all__ = ["to_data_units", "save_sample_grid", "save_learning_curve"]



def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _value_kind(preprocessing: Dict[str, Any]) -> str:
    """The kind of value the preprocessing made (checkpoints before version 2 name the head)."""
    legacy = {"bernoulli": "binary", "categorical": "categorical", "mog": "real"}
    return preprocessing.get("value_kind") or legacy.get(preprocessing.get("kind"), "real")


def to_data_units(samples: torch.Tensor, preprocessing: Dict[str, Any]) -> np.ndarray:
    """Model-space samples ``(N, n)`` -> float64 values in data units (mog: un-standardized)."""
    x = samples.double().cpu()
    if _value_kind(preprocessing) == "real":
        x = x * torch.tensor(preprocessing["std"], dtype=torch.float64) + torch.tensor(
            preprocessing["mean"], dtype=torch.float64
        )
    return x.numpy()


def _intensity(values: np.ndarray, preprocessing: Dict[str, Any]) -> np.ndarray:
    """Data-unit values -> grey intensities in [0, 1] for plotting."""
    kind = _value_kind(preprocessing)
    if kind == "binary":
        return values
    if kind == "categorical":
        return values / max(int(preprocessing["levels"]) - 1, 1)
    top = preprocessing.get("max_level")
    if top is not None:  # dequantized grey levels live in [0, max_level + 1)
        return np.clip(values / (top + 1), 0.0, 1.0)
    lo, hi = np.percentile(values, [1, 99], axis=0)  # per variable: columns may have any scale
    return np.clip((values - lo) / np.maximum(hi - lo, 1e-12), 0.0, 1.0)


def save_sample_grid(
    values: np.ndarray,
    path: Path,
    preprocessing: Dict[str, Any],
    image_shape: Optional[Sequence[int]],
    columns: Optional[int] = None,
) -> None:
    """A PNG grid of samples ``(N, n)``: images when ``n`` is a square (or ``image_shape``), else
    rows; ``columns`` images per grid row (default: a square grid)."""
    plt = _pyplot()
    grey = _intensity(values, preprocessing)
    num, n = grey.shape
    side = square_side(n)
    shape = tuple(image_shape) if image_shape else ((side, side) if side else None)
    if shape is None:  # not images: one row of n pixels per sample
        fig, ax = plt.subplots(figsize=(min(2 + n / 8, 16), min(1 + num / 8, 12)))
        ax.imshow(grey, cmap="gray", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xlabel("variable")
        ax.set_ylabel("sample")
    else:
        cols = columns or math.ceil(math.sqrt(num))
        rows = math.ceil(num / cols)
        h, w = shape
        canvas = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1))
        for k in range(num):
            r, c = divmod(k, cols)
            canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = grey[k].reshape(h, w)
        fig, ax = plt.subplots(figsize=(max(2.0, cols * 0.6), max(2.0, rows * 0.6)))
        ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_learning_curve(history: Dict[str, Any], path: Path, title: str) -> None:
    """Training loss and validation NLL per epoch, with the kept epoch marked."""
    plt = _pyplot()
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, history["train_loss"], label="train loss", marker="." if len(epochs) < 30 else None)
    valid_epochs = history.get("valid_epochs") or epochs[: len(history["valid_nll"])]
    ax.plot(valid_epochs, history["valid_nll"], label="validation NLL", marker="." if len(valid_epochs) < 30 else None)
    if history["best_epoch"]:
        ax.axvline(history["best_epoch"], color="grey", linestyle=":", label=f"best epoch {history['best_epoch']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per example")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


