"""Data for the ``pyro-ar`` program: the embedded digits, Fashion-MNIST, and user files.

A *source* gives raw arrays split into train/valid/test; :func:`load_dataset` then
prepares them for one registered conditional head (by name) and checks that they fit it.
What the preparation does depends on the kind of value the head describes
(``head.value_kind``), so a new head of an existing kind needs nothing here:

* ``"binary"`` (e.g. ``"bernoulli"``): float 0/1. Image sources are thresholded at half their range; a file
  must already hold 0/1 values unless a ``threshold`` is given.
* ``"categorical"`` (e.g. ``"categorical"``): long in ``0..K-1``. Image sources are quantized to ``levels`` grey
  levels; a file must hold non-negative integers (``K`` defaults to its maximum + 1).
* ``"real"`` (e.g. ``"mog"``, the mixture of Gaussians): float, standardized with the training split's
  per-variable mean and std. Image sources (integer grey levels) are dequantized first
  (uniform noise in [0, 1)), so the discrete NLL can be bounded by the continuous one.
* ``"count"`` (e.g. ``"count"``, Poisson): float non-negative integers, as they are.
* ``"mixed"`` (``"mixed"``, one head per column): a table, a CSV file with a header row of
  column names (or a table source such as ``"penguins"``); see :mod:`pyro_ar.program.tables`.

Sources: ``"digits"`` (embedded, 8x8), ``"fashion-mnist"`` (the Debian package
``dataset-fashion-mnist``, IDX files), or a path to a ``.npy``, ``.npz``, ``.csv`` or IDX
(``-ubyte``/``.gz``) file. Every problem (missing file, wrong shape, non-numeric or
non-finite entries, values that do not fit the head) raises ``ValueError`` naming it.

Labels: the digits and Fashion-MNIST come with class labels (a ``.npz`` file may hold them
as ``labels``, or ``train_labels``/``test_labels`` beside ``train``/``test``); with
``context="labels"`` each split gets a one-hot context ``(N, num_classes)`` for a
class-conditional model ``p(x | class)``.
"""

from __future__ import annotations

import csv
import gzip
import importlib
import math
import os
import pkgutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from pyro_ar import registry
from pyro_ar.program.digits import DIGITS_MAX_LEVEL, dequantize, digits_split, quantize

__all__ = [
    "DataSet",
    "head_names",
    "value_kind",
    "load_dataset",
    "load_source",
    "is_table",
    "decode_text",
    "register_source",
    "source_names",
    "read_array_file",
    "read_csv",
    "read_table_source",
    "is_table_file",
    "read_idx",
    "write_idx",
    "load_fashion_mnist",
    "FASHION_MNIST_DIRS",
    "square_side",
]

SPLIT_NAMES = ("train", "valid", "test")
#: Where the Debian package ``dataset-fashion-mnist`` puts its files (first match wins);
#: the environment variable ``PYRO_AR_FASHION_MNIST_DIR`` is searched first.
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist", "/usr/share/dataset-fashion-mnist")
FASHION_MNIST_VALID = 5000
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]
_FILE_SPLIT_SEED = 0
_STD_FLOOR = 1e-2


@dataclass
class RawSource:
    """Raw splits of a source, each ``(N, n)`` float64, before any preprocessing."""

    name: str
    splits: Dict[str, np.ndarray]
    image_shape: Optional[Tuple[int, int]] = None
    max_level: Optional[int] = None  # integer grey levels 0..max_level (image sources)
    labels: Optional[Dict[str, np.ndarray]] = None  # integer class per row of each split
    class_names: Optional[List[str]] = None
    #: Text sources: the symbol of each categorical code (code k is alphabet[k]; the code whose
    #: symbol is "" ends a sequence and pads it). Its length is the default number of levels.
    alphabet: Optional[List[str]] = None
    #: Table sources (:mod:`pyro_ar.program.tables`): the column names of the header; ``splits``
    #: then hold each row's entries as text ``(N, n)``, and ``lines`` each row's line in the file.
    columns: Optional[List[str]] = None
    lines: Optional[Dict[str, np.ndarray]] = None


def decode_text(rows: Tensor, alphabet: List[str]) -> List[str]:
    """Each row ``(N, n)`` of codes as text (code ``k`` is ``alphabet[k]``), up to its first end
    symbol (the empty string)."""
    words = []
    for row in rows.long().tolist():
        symbols = [alphabet[c] for c in row]
        words.append("".join(symbols[: symbols.index("")] if "" in symbols else symbols))
    return words


@dataclass
class DataSet:
    """Train/valid/test tensors ``(N, n)`` prepared for one conditional head.

    Attributes:
        name: ``"digits"``, ``"fashion-mnist"`` or the absolute path of a file.
        conditional: the head's registry name (``"bernoulli"``, ``"categorical"``, ``"mog"``, ...).
        preprocessing: plain description (stored in checkpoints, re-applied by ``evaluate``):
            ``kind`` (the head), ``value_kind``, and
            ``threshold``/``levels``/``mean``/``std``/``dequantize``/``max_level``.
        image_shape: ``(h, w)`` for image data, else ``None``.
        log_scale: ``sum_i log std_i`` for real values (0 otherwise): add it to an NLL of the
            standardized data to get the NLL in the data's own units.
        contexts: with ``context="labels"``, each split's one-hot labels ``(N, num_classes)``.
        class_names: the names of the classes (with labels).
        alphabet: text data: the symbol of each code (see :class:`RawSource`), else ``None``.
    """

    name: str
    conditional: str
    train: Tensor
    valid: Tensor
    test: Tensor
    preprocessing: Dict[str, Any] = field(default_factory=dict)
    image_shape: Optional[Tuple[int, int]] = None
    log_scale: float = 0.0
    contexts: Optional[Dict[str, Tensor]] = None
    class_names: Optional[List[str]] = None
    alphabet: Optional[List[str]] = None

    def symbols_per_row(self, rows: Tensor) -> Tensor:
        """Text data: the symbols of each row ``(N, n)`` up to and including its first end
        symbol (all ``n`` if it has none), ``(N,)``; the unit of bits per character."""
        ends = torch.tensor([s == "" for s in self.alphabet])[rows.long()]
        return torch.where(ends.any(-1), ends.int().argmax(-1) + 1, rows.shape[-1])

    def decode(self, rows: Tensor) -> List[str]:
        """Text data: each row ``(N, n)`` of codes as text, up to its first end symbol."""
        return decode_text(rows, self.alphabet)

    @property
    def event_size(self) -> int:
        return self.train.shape[-1]

    @property
    def value_kind(self) -> str:
        return value_kind(self.conditional)

    @property
    def context_size(self) -> Optional[int]:
        return None if self.contexts is None else self.contexts["train"].shape[-1]

    def context(self, name: str) -> Optional[Tensor]:
        """The context of one split (or ``"all"``), or ``None`` without labels."""
        if self.contexts is None:
            return None
        if name == "all":
            return torch.cat([self.contexts[k] for k in SPLIT_NAMES])
        return self.contexts[name]

    def split(self, name: str) -> Tensor:
        """One split by name, or ``"all"`` (train, valid and test concatenated)."""
        return split_by_name(self, name)


def split_by_name(data: Any, name: str) -> Tensor:
    """``data.train``, ``data.valid`` or ``data.test`` by name, or ``"all"`` (the three concatenated)."""
    if name == "all":
        return torch.cat([data.train, data.valid, data.test])
    if name not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {list(SPLIT_NAMES) + ['all']}, got {name!r}")
    return getattr(data, name)


# ---- file readers ----------------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: "str | os.PathLike[str]") -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, into a numpy array.

    Layout: two zero bytes, a type code (0x08 uint8 ... 0x0E float64), the number of
    dimensions, each dimension as a big-endian int32, then the values (big-endian).
    """
    path = _existing_file(path)
    try:
        with _open_maybe_gzip(path) as f:
            blob = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read IDX file {str(path)!r}: {err}") from err
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _IDX_TYPES:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    ndim = blob[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(blob) < header:
        raise ValueError(f"IDX file {str(path)!r} has a truncated header")
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[blob[2]])
    expected = header + dtype.itemsize * math.prod(shape)
    if len(blob) != expected:
        raise ValueError(
            f"IDX file {str(path)!r} is truncated or has trailing data: shape {shape} needs "
            f"{expected} bytes, found {len(blob)}"
        )
    return np.frombuffer(blob, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: "str | os.PathLike[str]", array: np.ndarray, compress: Optional[bool] = None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(_IDX_TYPES[code]).tobytes()
    compress = str(path).endswith(".gz") if compress is None else compress
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(blob)


def _existing_file(path: "str | os.PathLike[str]") -> Path:
    p = Path(path)
    if not p.exists():
        raise ValueError(f"data file {str(p)!r} does not exist")
    if not p.is_file():
        raise ValueError(f"data path {str(p)!r} is not a file")
    return p


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_content(row: List[str]) -> bool:
    """A CSV row that is neither blank nor a ``#`` comment."""
    return bool(row) and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")


def _csv_rows(path: Path) -> List[Tuple[int, List[str]]]:
    """``(line number, entries)`` of a CSV file's rows, without blank lines and ``#`` comments."""
    with open(path, newline="") as f:
        try:
            lines = list(enumerate(csv.reader(f), start=1))
        except (csv.Error, UnicodeDecodeError) as err:
            raise ValueError(f"cannot parse CSV file {str(path)!r}: {err}") from err
    return [(i, r) for i, r in lines if _is_content(r)]


def read_csv(path: "str | os.PathLike[str]") -> np.ndarray:
    """Read a comma-separated file of numbers, one example per row, into ``(N, n)`` float64.

    A first row that is not numeric is taken as a header and skipped; blank lines and lines
    starting with ``#`` are ignored. A non-numeric entry or a ragged row raises ``ValueError``
    with its line and column.
    """
    path = _existing_file(path)
    rows: List[List[float]] = []
    width = None
    lines = _csv_rows(path)
    if lines and not all(_is_number(c) for c in lines[0][1]) and not any(_is_number(c) for c in lines[0][1]):
        lines = lines[1:]  # a header row
    for lineno, row in lines:
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ValueError(f"{str(path)!r} line {lineno} has {len(row)} columns, expected {width} like the first row")
        values = []
        for col, cell in enumerate(row, start=1):
            try:
                values.append(float(cell))
            except ValueError:
                raise ValueError(
                    f"{str(path)!r} line {lineno}, column {col}: {cell.strip()!r} is not a number "
                    "(entries must be numeric)"
                ) from None
        rows.append(values)
    if not rows:
        raise ValueError(f"CSV file {str(path)!r} holds no data rows")
    return np.asarray(rows, dtype=np.float64)




def is_table_file(path: "str | os.PathLike[str]") -> bool:
    """Whether ``path`` is a ``.csv``/``.txt`` file whose first row names its columns (no
    entry of it is a number): a table. Blank lines and ``#`` comments are skipped."""
    p = Path(path)
    if not p.is_file() or not p.name.lower().endswith((".csv", ".txt")):
        return False
    try:
        with open(p, newline="") as f:
            for row in csv.reader(f):
                if _is_content(row):
                    return not any(_is_number(c) for c in row)
    except (OSError, csv.Error, UnicodeDecodeError):
        return False
    return False


def read_table_source(path: "str | os.PathLike[str]", name: Optional[str] = None) -> RawSource:
    """A CSV table (a header row of column names, then rows of entries) as a :class:`RawSource`
    with ``columns``, each split's rows as text cells and their ``lines``.

    The rows are split 80/10/10 with the seed every file source uses; nothing is inferred
    (see :mod:`pyro_ar.program.tables`). ``ValueError`` for a missing or empty file, no
    header, empty or duplicate column names, ragged rows, fewer than 3 data rows.
    """
    path = _existing_file(path)
    shown = name or str(path)
    rows = [(line, [c.strip() for c in row]) for line, row in _csv_rows(path)]
    if not rows:
        raise ValueError(f"table {shown!r} is empty (a table needs a header row of column names, then data rows)")
    header_line, header = rows[0]
    if any(_is_number(c) for c in header):
        raise ValueError(f"table {shown!r} has no header row: line {header_line} holds numbers "
                         f"({', '.join(header[:4])}); a table's first row names its columns")
    for j, c in enumerate(header):
        if not c:
            raise ValueError(f"table {shown!r}: column {j + 1} of the header (line {header_line}) has no name")
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValueError(f"table {shown!r}: the header names columns {dupes} more than once")
    data = rows[1:]
    for line, row in data:
        if len(row) != len(header):
            raise ValueError(f"table {shown!r} line {line} has {len(row)} entries, expected {len(header)} "
                             f"like the header ({', '.join(header)})")
    if len(data) < 3:
        raise ValueError(f"table {shown!r} has {len(data)} data row(s); at least 3 are needed to split it "
                         "into train/valid/test")
    cells = np.array([row for _, row in data], dtype=object)
    lines = np.array([line for line, _ in data])
    index = _split_rows(np.arange(len(data)))
    return RawSource(shown, {k: cells[v] for k, v in index.items()}, columns=list(header),
                     lines={k: lines[v] for k, v in index.items()})


def _numeric(array: Any, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype == bool:
        return array.astype(np.float64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{what} holds non-numeric entries (dtype {array.dtype}); entries must be numbers")
    return array


def read_array_file(path: "str | os.PathLike[str]") -> Dict[str, np.ndarray]:
    """Read a data file into named arrays: ``{"data": array}`` or the ``.npz``'s arrays.

    Accepts ``.npy``, ``.npz``, ``.csv`` (and ``.txt``) and IDX files (``*-ubyte``, ``.idx``,
    optionally ``.gz``). Pickled (object) arrays are refused.
    """
    path = _existing_file(path)
    suffixes = "".join(path.suffixes).lower()
    name = path.name.lower()
    try:
        if suffixes.endswith(".npy"):
            return {"data": _numeric(np.load(path, allow_pickle=False), repr(str(path)))}
        if suffixes.endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                if not npz.files:
                    raise ValueError(f"{str(path)!r} holds no arrays")
                return {k: _numeric(npz[k], f"{str(path)!r} array {k!r}") for k in npz.files}
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"cannot read {str(path)!r} (corrupt or not a numpy file): {err}") from err
    except ValueError as err:
        if "pickle" in str(err).lower() or "object arrays" in str(err).lower():
            raise ValueError(f"{str(path)!r} holds non-numeric (object) entries; entries must be numbers") from err
        if "non-numeric" in str(err) or "holds no arrays" in str(err):
            raise
        raise ValueError(f"cannot read {str(path)!r} (corrupt or not a numpy file): {err}") from err
    if suffixes.endswith((".csv", ".txt")):
        return {"data": read_csv(path)}
    if "ubyte" in name or suffixes.endswith((".idx", ".gz")):
        return {"data": read_idx(path)}
    raise ValueError(f"unsupported data file {str(path)!r}: use .npy, .npz, .csv or an IDX (-ubyte[.gz]) file")


# ---- sources ---------------------------------------------------------------------------------


def _flatten(array: np.ndarray, what: str) -> Tuple[np.ndarray, Optional[Tuple[int, int]]]:
    if array.ndim == 2:
        return array, None
    if array.ndim == 3:
        return array.reshape(array.shape[0], -1), (int(array.shape[1]), int(array.shape[2]))
    raise ValueError(
        f"{what} has shape {tuple(array.shape)}; expected a 2-D array (examples, variables) "
        "or a 3-D stack of images (examples, height, width)"
    )


def _check_finite(array: np.ndarray, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        r, c = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{what} has a non-finite entry ({array[r, c]}) at row {r}, column {c}")


def _split_rows(data: np.ndarray, fractions=(0.8, 0.1, 0.1)) -> Dict[str, np.ndarray]:
    """A fixed seeded split of one array into train/valid/test (at least one row each)."""
    n = data.shape[0]
    if n < 3:
        raise ValueError(f"data needs at least 3 rows to split into train/valid/test, got {n}")
    perm = np.random.default_rng(_FILE_SPLIT_SEED).permutation(n)
    n_valid = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_valid - n_test
    return {
        "train": data[perm[:n_train]],
        "valid": data[perm[n_train : n_train + n_valid]],
        "test": data[perm[n_train + n_valid :]],
    }


def _file_source(path: "str | os.PathLike[str]") -> RawSource:
    path = Path(path)
    arrays = read_array_file(path)
    what = lambda key: repr(str(path)) if key == "data" else f"{str(path)!r} array {key!r}"  # noqa: E731
    aliases = {"validation": "valid", "val": "valid"}
    named = {aliases.get(k, k): v for k, v in arrays.items()}
    label_arrays = {k: named.pop(k) for k in list(named) if k == "labels" or k.endswith("_labels")}
    shapes = {}
    flat = {}
    for key, arr in named.items():
        flat[key], shapes[key] = _flatten(arr, what(key))
    if "train" in flat:
        if "test" not in flat:
            raise ValueError(f"{str(path)!r} has a 'train' array but no 'test' array (found {sorted(arrays)})")
        splits = {"train": flat["train"], "test": flat["test"]}
        if "valid" in flat:
            splits["valid"] = flat["valid"]
        else:  # carve the validation set out of the training set
            part = _split_rows(flat["train"], (0.9, 0.1, 0.0))
            splits["train"], splits["valid"] = np.concatenate([part["train"], part["test"]]), part["valid"]
    elif len(flat) == 1:
        data = next(iter(flat.values()))
        if "labels" in label_arrays:  # split the labels with the rows (same seeded permutation)
            data = np.concatenate([data, np.asarray(label_arrays.pop("labels"), np.float64).reshape(-1, 1)], 1)
            both = _split_rows(data)
            splits = {k: v[:, :-1] for k, v in both.items()}
            label_arrays = {f"{k}_labels": v[:, -1] for k, v in both.items()}
        else:
            splits = _split_rows(data)
    else:
        raise ValueError(
            f"{str(path)!r} holds several arrays {sorted(arrays)}; expected one array, or 'train', 'test' "
            "(and optionally 'valid')"
        )
    sizes = {k: v.shape[1] for k, v in splits.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"{str(path)!r}: the splits have different numbers of variables {sizes}")
    for key, arr in splits.items():
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"{str(path)!r}: split {key!r} is empty (shape {tuple(arr.shape)})")
        _check_finite(arr, f"{str(path)!r} ({key} split)")
    image_shapes = {s for s in shapes.values() if s is not None}
    image_shape = image_shapes.pop() if len(image_shapes) == 1 else None
    splits = {k: v.astype(np.float64) for k, v in splits.items()}
    labels = None
    if all(f"{k}_labels" in label_arrays for k in splits):
        labels = {}
        for k in splits:
            y = np.asarray(label_arrays[f"{k}_labels"])
            if y.shape != (splits[k].shape[0],) or not np.all(y == np.round(y)):
                raise ValueError(f"{str(path)!r}: {k}_labels must hold one integer label per {k} row")
            labels[k] = y.astype(np.int64)
    return RawSource(str(path.resolve()), splits, image_shape=image_shape, labels=labels)


def _fashion_dir() -> Optional[Path]:
    candidates = [os.environ.get("PYRO_AR_FASHION_MNIST_DIR"), *FASHION_MNIST_DIRS]
    for c in candidates:
        if c and all((Path(c) / f"{part}-images-idx3-ubyte.gz").is_file() for part in ("train", "t10k")):
            return Path(c)
    return None


def load_fashion_mnist(root: "str | os.PathLike[str] | None" = None) -> Tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST images ``(train (60000, 28, 28), test (10000, 28, 28))`` uint8 in 0..255.

    Read from ``root`` or from the Debian package ``dataset-fashion-mnist``; a clear
    ``ValueError`` says how to install it when the files are missing.
    """
    folder = Path(root) if root is not None else _fashion_dir()
    if folder is None or not (folder / "train-images-idx3-ubyte.gz").is_file():
        looked = [str(root)] if root is not None else [d for d in FASHION_MNIST_DIRS]
        raise ValueError(
            "Fashion-MNIST is not installed: install the Debian package with "
            f"`apt-get install dataset-fashion-mnist` (looked in {looked}; or set PYRO_AR_FASHION_MNIST_DIR)"
        )
    return read_idx(folder / "train-images-idx3-ubyte.gz"), read_idx(folder / "t10k-images-idx3-ubyte.gz")


def load_fashion_mnist_labels(root: "str | os.PathLike[str] | None" = None) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The Fashion-MNIST class labels ``(train (60000,), test (10000,))`` in 0..9, or ``None``
    where the label files are not beside the images."""
    folder = Path(root) if root is not None else _fashion_dir()
    paths = [None if folder is None else folder / f"{part}-labels-idx1-ubyte.gz" for part in ("train", "t10k")]
    if not all(p is not None and p.is_file() for p in paths):
        return None
    return read_idx(paths[0]), read_idx(paths[1])


# ---- named sources -----------------------------------------------------------------------------

#: ``{name: loader}``: the sources ``--data`` accepts by name (anything else is a file path).
_SOURCES: Dict[str, Callable[[], RawSource]] = {}
_ALIASES: Dict[str, str] = {}
_TABLES: set = set()  # the sources that are tables (named columns of mixed kinds)


def register_source(name: str, loader: Callable[[], RawSource], *, aliases: Sequence[str] = (),
                    table: bool = False) -> None:
    """Make ``loader`` (no arguments, returns a :class:`RawSource`) the data set ``name``.

    A new data set is one module of :mod:`pyro_ar.program.sources` that ends with this call;
    ``load_dataset``, ``pyro-ar fit --data NAME`` and its help pick it up. ``table``: the
    loader returns a table (:func:`pyro_ar.program.tables.read_table_source`), modelled with
    the ``mixed`` head by default.
    """
    if name in _SOURCES or name in _ALIASES:
        raise ValueError(f"a data source named {name!r} is already registered")
    _SOURCES[name] = loader
    _ALIASES.update({alias: name for alias in aliases})
    if table:
        _TABLES.add(name)


def is_table(source: str) -> bool:
    """Whether ``source`` is a table: a table source, or a CSV file with a header row of names."""
    _import_sources()
    name = _ALIASES.get(source, source)
    if name in _SOURCES:
        return name in _TABLES
    return is_table_file(source)


def _import_sources() -> None:
    # The modules of pyro_ar.program.sources register themselves when imported, and so does
    # pyro_ar.program.tables (the preparation of tables, PREPARE["mixed"]); imported on first
    # use, since they import this module.
    import pyro_ar.program.sources as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    importlib.import_module("pyro_ar.program.tables")


def source_names() -> List[str]:
    """The names of the registered data sources, in registration order."""
    _import_sources()
    return list(_SOURCES)


def load_source(source: str, table: bool = False) -> RawSource:
    """Raw splits of a registered source (``"digits"``, ``"fashion-mnist"``, ...) or a data file
    path; with ``table``, a file is read as a table (a CSV with a header row of names)."""
    _import_sources()
    name = _ALIASES.get(source, source)
    if name in _SOURCES:
        return _SOURCES[name]()
    if table:
        return read_table_source(source)
    return _file_source(source)


def _load_digits() -> RawSource:
    parts = {s: digits_split(s) for s in SPLIT_NAMES}
    splits = {s: images.numpy().astype(np.float64) for s, (images, _) in parts.items()}
    labels = {s: y.numpy() for s, (_, y) in parts.items()}
    return RawSource("digits", splits, image_shape=(8, 8), max_level=DIGITS_MAX_LEVEL, labels=labels,
                     class_names=[str(d) for d in range(10)])


def _load_fashion_mnist() -> RawSource:
    train, test = load_fashion_mnist()
    if train.ndim != 3 or test.shape[1:] != train.shape[1:]:
        raise ValueError(f"Fashion-MNIST files have unexpected shapes {train.shape} and {test.shape}")
    labels = None
    found = load_fashion_mnist_labels()
    if found is not None:
        train_y, test_y = found
        if train_y.shape != (len(train),) or test_y.shape != (len(test),):
            raise ValueError(f"Fashion-MNIST label files do not match the images ({train_y.shape}, {test_y.shape})")
        labels = {"train": train_y[:-FASHION_MNIST_VALID], "valid": train_y[-FASHION_MNIST_VALID:], "test": test_y}
        labels = {k: v.astype(np.int64) for k, v in labels.items()}
    image_shape = (int(train.shape[1]), int(train.shape[2]))
    train = train.reshape(len(train), -1).astype(np.float64)
    splits = {
        "train": train[:-FASHION_MNIST_VALID],
        "valid": train[-FASHION_MNIST_VALID:],
        "test": test.reshape(len(test), -1).astype(np.float64),
    }
    return RawSource("fashion-mnist", splits, image_shape=image_shape, max_level=255, labels=labels,
                     class_names=FASHION_MNIST_CLASSES)


register_source("digits", _load_digits)
register_source("fashion-mnist", _load_fashion_mnist, aliases=("fashion_mnist",))


# ---- preprocessing ---------------------------------------------------------------------------


def _first_bad(mask: np.ndarray) -> Tuple[int, int]:
    r, c = np.argwhere(mask)[0]
    return int(r), int(c)


def _binary(raw: RawSource, prep: Dict[str, Any]) -> Dict[str, Tensor]:
    threshold = prep.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not math.isfinite(threshold)):
        raise ValueError(f"the binarization threshold must be a finite number, got {threshold!r}")
    if threshold is None and raw.max_level is not None:
        threshold = raw.max_level / 2
    out = {}
    for key, arr in raw.splits.items():
        if threshold is not None:
            out[key] = torch.from_numpy((arr > threshold).astype(np.float32))
            continue
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            r, c = _first_bad(bad)
            raise ValueError(
                f"{raw.name}: values do not fit the bernoulli conditional: found {arr[r, c]:g} at row {r}, "
                f"column {c} of the {key} split; Bernoulli data must be 0/1 (give a threshold, "
                "--threshold T, to binarize)"
            )
        out[key] = torch.from_numpy(arr.astype(np.float32))
    prep["threshold"] = threshold
    return out


def _categorical(raw: RawSource, prep: Dict[str, Any]) -> Dict[str, Tensor]:
    levels = prep.get("levels")
    if raw.max_level is not None:  # grey-level images: equal-width bins
        levels = 4 if levels is None else levels
        if not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an int >= 2, got {levels!r}")
        prep.update(levels=levels, max_level=raw.max_level)
        return {k: quantize(torch.from_numpy(v), levels, raw.max_level) for k, v in raw.splits.items()}
    _check_non_negative_integers(raw, "categorical", "integers 0..K-1")
    top = int(max(arr.max() for arr in raw.splits.values()))
    if levels is None:
        levels = max(top + 1, 2) if raw.alphabet is None else len(raw.alphabet)
    if not isinstance(levels, int) or levels < 2:
        raise ValueError(f"levels must be an int >= 2, got {levels!r}")
    if top >= levels:
        raise ValueError(
            f"{raw.name}: values do not fit the categorical conditional with {levels} levels: "
            f"the largest value is {top}, but values must lie in 0..{levels - 1}"
        )
    prep["levels"] = levels
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in raw.splits.items()}


def _stats(prep: Dict[str, Any], key: str, n: int, name: str) -> Tensor:
    """A stored standardization statistic as ``(n,)`` float32; ``ValueError`` if malformed."""
    value = prep[key]
    ok = isinstance(value, (list, tuple, Tensor)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value.tolist() if isinstance(value, Tensor) else value)
    )
    stats = torch.tensor(value.tolist() if isinstance(value, Tensor) else value, dtype=torch.float32) if ok else None
    if stats is None or stats.shape != (n,) or not bool(torch.isfinite(stats).all()):
        shown = f"{len(value)} entries" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
        raise ValueError(
            f"{name}: the standardization {key!r} must be {n} finite numbers, one per variable; got {shown}"
        )
    return stats


def _continuous(raw: RawSource, prep: Dict[str, Any]) -> Dict[str, Tensor]:
    dequant = raw.max_level is not None
    splits = {k: torch.from_numpy(v).float() for k, v in raw.splits.items()}
    if dequant:
        # Fixed noise: stats from seed 0,
        # every split dequantized with seed 1, so runs and evaluations are reproducible.
        stats_source = dequantize(splits["train"], torch.Generator().manual_seed(0))
        splits = {k: dequantize(v, torch.Generator().manual_seed(1)) for k, v in splits.items()}
    else:
        stats_source = splits["train"]
    if prep.get("mean") is None:
        mean = stats_source.mean(0)
        std = stats_source.std(0) if stats_source.shape[0] > 1 else torch.ones_like(mean)
        std = torch.where(std > 0, std.clamp_min(_STD_FLOOR), torch.ones_like(std))  # constant columns: unscaled
        prep.update(mean=mean.tolist(), std=std.tolist())
    n = splits["train"].shape[1]
    mean, std = (_stats(prep, key, n, raw.name) for key in ("mean", "std"))
    if not bool((std > 0).all()):
        raise ValueError(f"{raw.name}: the stored standardization std must be positive")
    prep.update(dequantize=dequant, max_level=raw.max_level)
    return {k: (v - mean) / std for k, v in splits.items()}


def head_names() -> List[str]:
    """The registered heads, by name: the ``conditional`` values :func:`load_dataset` takes."""
    return [entry.name for entry in registry.head_entries()]


def value_kind(conditional: str) -> str:
    """``"binary"``, ``"categorical"`` or ``"real"``: what the values of head ``conditional`` are."""
    try:
        return registry.head_entry(conditional).cls.value_kind
    except ValueError:
        raise ValueError(f"conditional must be one of {head_names()}, got {conditional!r}") from None


def _check_non_negative_integers(raw: RawSource, kind: str, expected: str) -> None:
    """``ValueError`` naming the first entry of any split that is not a non-negative integer."""
    for key, arr in raw.splits.items():
        bad = (arr != np.round(arr)) | (arr < 0)
        if bad.any():
            r, c = _first_bad(bad)
            raise ValueError(
                f"{raw.name}: values do not fit the {kind} conditional: found {arr[r, c]:g} at row {r}, "
                f"column {c} of the {key} split; {kind} data must be {expected}"
            )


def _count(raw: RawSource, prep: Dict[str, Any]) -> Dict[str, Tensor]:
    _check_non_negative_integers(raw, "count", "non-negative integers")
    return {k: torch.from_numpy(v.astype(np.float32)) for k, v in raw.splits.items()}


#: How data are prepared for each kind of value. Tables (``"mixed"``) add theirs,
#: :func:`pyro_ar.program.tables.prepare`, when that module is imported (with the sources).
PREPARE = {"binary": _binary, "categorical": _categorical, "real": _continuous, "count": _count}


def _one_hot_labels(raw: RawSource, num_classes: Optional[int]) -> Tuple[Dict[str, Tensor], int]:
    if raw.labels is None:
        raise ValueError(f"{raw.name} has no class labels, so it cannot give a labels context "
                         "(the digits and Fashion-MNIST have them; a .npz file may hold 'labels' arrays)")
    for key, y in raw.labels.items():
        if y.shape != (raw.splits[key].shape[0],):
            raise ValueError(f"{raw.name}: the {key} labels have shape {y.shape}, expected ({raw.splits[key].shape[0]},)")
        if y.size and (y.min() < 0 or not np.issubdtype(y.dtype, np.integer)):
            raise ValueError(f"{raw.name}: labels must be non-negative integers")
    top = int(max(y.max() for y in raw.labels.values() if y.size)) + 1
    num_classes = top if num_classes is None else num_classes
    if top > num_classes:
        raise ValueError(f"{raw.name}: a label {top - 1} does not fit the {num_classes} classes of the model")
    return {k: torch.nn.functional.one_hot(torch.from_numpy(y), num_classes).float() for k, y in raw.labels.items()}, num_classes


def load_dataset(
    source: str = "digits",
    conditional: str = "bernoulli",
    *,
    levels: Optional[int] = None,
    threshold: Optional[float] = None,
    preprocessing: Optional[Dict[str, Any]] = None,
    max_train: Optional[int] = None,
    context: Optional[str] = None,
    num_classes: Optional[int] = None,
    column_types: Optional[Dict[str, str]] = None,
    components: Optional[int] = None,
) -> DataSet:
    """Load ``source`` and prepare it for the head ``conditional``; see the module docstring.

    Args:
        source: ``"digits"``, ``"fashion-mnist"`` or a file path.
        conditional: a registered head's name (``"bernoulli"``, ``"categorical"``, ``"mog"``, ...).
        levels: categorical levels ``K`` (default 4 for images, max + 1 for files).
        threshold: binarize with ``x > threshold`` (binary heads; default half the grey range
            for images, none for files, which must then hold 0/1).
        preprocessing: a checkpoint's stored preprocessing; overrides ``levels``/``threshold``
            and fixes the standardization statistics instead of refitting them.
        max_train: keep only the first ``max_train`` training rows (quick runs).
        context: ``None``, or ``"labels"`` for one-hot class labels as each row's context.
        num_classes: the number of classes of a labels context (default: the largest label + 1).
        column_types, components: tables (``conditional="mixed"``): kinds overriding the
            inferred ones, and mixture components per real column (see :mod:`.tables`).

    Returns:
        a :class:`DataSet` with ``(N, n)`` tensors: float 0/1, long, or standardized float.
    """
    kind = value_kind(conditional)
    if context not in (None, "labels"):
        raise ValueError(f"context must be None or 'labels', got {context!r}")
    if max_train is not None and (isinstance(max_train, bool) or not isinstance(max_train, int) or max_train < 1):
        raise ValueError(f"max_train must be a positive int, got {max_train!r}")
    if preprocessing is not None and not isinstance(preprocessing, dict):
        raise ValueError(f"stored preprocessing must be a dict, got {type(preprocessing).__name__}")
    prep: Dict[str, Any] = dict(preprocessing or {})
    if preprocessing is None:
        prep.update(levels=levels, threshold=threshold, column_types=column_types, components=components)
    elif prep.get("kind") not in (None, conditional):
        raise ValueError(f"stored preprocessing is for {prep.get('kind')!r} data, not {conditional!r}")
    prep["kind"] = conditional
    raw = load_source(source, table=kind == "mixed")  # imports the sources and tables, which add to PREPARE
    if (raw.columns is not None) != (kind == "mixed"):
        raise ValueError(f"{raw.name} is a table of named columns: model it with the mixed head (conditional "
                         "'mixed', the default for tables)" if raw.columns is not None else
                         f"the mixed head needs a table (a CSV file with a header row of column names, or a "
                         f"table source such as penguins); {raw.name} is not one")
    if max_train is not None:
        raw.splits["train"] = raw.splits["train"][:max_train]
        if raw.labels is not None:
            raw.labels["train"] = raw.labels["train"][:max_train]
    tensors = PREPARE[kind](raw, prep)
    prep = {k: v for k, v in prep.items() if v is not None}
    prep["value_kind"] = kind
    log_scale = float(torch.tensor(prep["std"]).log().sum()) if kind == "real" else 0.0
    if kind == "mixed":  # the real columns' sum of log std
        log_scale = float(sum(math.log(c["std"]) for c in prep["table"]["columns"] if c["kind"] == "real"))
    contexts = None
    if context == "labels":
        contexts, num_classes = _one_hot_labels(raw, num_classes)
    return DataSet(
        name=raw.name,
        conditional=conditional,
        train=tensors["train"],
        valid=tensors["valid"],
        test=tensors["test"],
        preprocessing=prep,
        image_shape=raw.image_shape,
        log_scale=log_scale,
        contexts=contexts,
        class_names=raw.class_names if contexts is not None else None,
        alphabet=raw.alphabet,
    )


def square_side(n: int) -> Optional[int]:
    """``s`` when ``n == s * s``, else ``None``."""
    s = int(round(math.sqrt(n)))
    return s if s * s == n else None
