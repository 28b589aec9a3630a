"""Tables: CSV files with a header row whose columns are of different kinds.

A table is modelled by one autoregressive distribution over its rows, with one head per
column (:class:`pyro_ar.conditionals.Mixed`). The file is read (header, rows of text,
the seeded split) by :func:`pyro_ar.program.data_files.read_table_source`; this module infers
each column's kind, encodes the rows as the model's values and decodes samples back into rows
of the original columns. It adds the preparation of tables, ``PREPARE["mixed"]``, to
:mod:`~pyro_ar.program.data_files` (which imports it with the sources), so that
``load_dataset(source, "mixed")`` and ``pyro-ar fit --data table.csv`` use it::

    >>> table = read_table("penguins")                    # doctest: +SKIP
    >>> net = pyro_ar.MADE(table.event_size, [64], conditional=table.conditional())  # doctest: +SKIP
    >>> table.write_csv("synth.csv", net().sample((100,)))  # doctest: +SKIP

Kinds (inferred from the training rows; ``column_types={"name": kind}`` overrides):

* ``binary``: exactly two distinct values, numbers or labels -> :class:`Bernoulli`,
  codes 0/1 in the sorted order of the values.
* ``categorical``: labels (any entry that is not a number), or integers with at most
  :data:`MAX_CATEGORIES` distinct values (e.g. a year) -> :class:`Categorical` (K = the
  number of distinct values), codes in sorted order (numbers by value, labels as text).
* ``count``: non-negative integers with more distinct values, unless the header names a
  unit (``flipper_length_mm``, ``body_mass_g``, ``price [usd]``: a measurement) -> :class:`Poisson`.
* ``real``: every other numeric column -> :class:`MixtureOfGaussians` (``components``),
  standardized with the training split's mean and std.
* ``ignore`` (override only): the column is left out of the model (an id, free text).

Missing values: an entry that is empty or one of :data:`MISSING` (``NA``, ``NaN``,
``null``, ...; any case) is missing. A column missing in every row is an error; otherwise a
row with a missing entry (in a modelled column) is dropped, and how many rows of each split
were dropped is reported (the model is of complete rows). The split into train/valid/test
(80/10/10, seeded, as for every file source) is made before dropping.

Errors: no header, duplicate or empty column names, ragged rows, an empty table, a column
of numbers and labels mixed, an entry that does not fit a column's forced kind, a label of
the valid or test split that the training rows do not have (the model gives it no
probability), too few rows: each a ``ValueError`` naming the file, its line and column.

Everything needed to invert the encoding (names, kinds, labels, means, stds, units, the
number of decimals written) is kept as a plain JSON-able dict, :meth:`TableSchema.to_dict`
(stored in a checkpoint's ``preprocessing["table"]``).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from pyro_ar.conditionals import Bernoulli, Categorical, Mixed, MixtureOfGaussians, Poisson
from pyro_ar.conditionals.base import Conditional
from pyro_ar.program import data_files
from pyro_ar.program.data_files import (
    _STD_FLOOR,
    SPLIT_NAMES,
    RawSource,
    _is_number,
    is_table_file,
    load_source,
    read_table_source,
)

__all__ = [
    "KINDS",
    "MISSING",
    "MAX_CATEGORIES",
    "DEFAULT_COMPONENTS",
    "Column",
    "TableSchema",
    "Table",
    "read_table",
    "read_table_source",
    "is_table_file",
    "parse_column_types",
    "prepare",
    "column_nll",
    "DENSITY_NOTE",
]

#: The kinds a column may have (``ignore``: left out of the model).
KINDS = ("binary", "categorical", "count", "real", "ignore")
#: Entries that mean "missing" (compared in lower case, after stripping blanks).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
#: Integer columns with at most this many distinct values are categorical (a year, a grade).
MAX_CATEGORIES = 10
#: Mixture components of a real column's head unless told otherwise.
DEFAULT_COMPONENTS = 3
#: Units recognized at the end of a column name (``_mm``, `` (kg)``, ``[usd]``): such a
#: column is a measurement, real even when its entries are integers.
UNITS = frozenset({
    "mm", "cm", "m", "km", "in", "ft", "mi", "mg", "g", "kg", "lb", "lbs", "oz", "ml", "l",
    "s", "ms", "sec", "min", "h", "hr", "hrs", "hours", "days", "yr", "yrs", "years",
    "pct", "percent", "usd", "eur", "gbp", "k", "degc", "degf", "kcal", "kwh", "mph", "kmh", "bpm",
})
DENSITY_NOTE = (
    "table: NLL = -log p(row) of the model's values of a row, in nats per row: a probability for "
    "binary, categorical and count columns, a density of the standardized value z = (x - mean) / std "
    "for real columns; *_nll_data_units adds sum(log std) of the real columns (the density of x itself)"
)

_UNIT_PATTERNS = (re.compile(r"^.*[_ ]([A-Za-z%$]+)$"), re.compile(r"^.*[(\[]\s*([^()\[\]]+?)\s*[)\]]$"))


def _unit_of(name: str) -> Optional[str]:
    """The unit a column name ends in (``bill_length_mm`` -> ``mm``, ``mass (kg)`` -> ``kg``), or ``None``."""
    for pattern in _UNIT_PATTERNS:
        m = pattern.match(name.strip())
        if m and (m.group(1).lower() in UNITS or pattern is _UNIT_PATTERNS[1]):
            return m.group(1)
    return None


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _decimals(text: str) -> Optional[int]:
    """Digits after the decimal point as written (``"39.10"`` -> 2); ``None`` for exponent notation."""
    text = text.strip().lower()
    if "e" in text:
        return None
    return len(text.split(".", 1)[1]) if "." in text else 0


def _number_key(cell: str) -> float:
    return float(cell) + 0.0  # -0.0 and 0.0 are one value


# ---- columns -------------------------------------------------------------------------------------


@dataclass
class Column:
    """One modelled column: its name, kind and what its encoding needs.

    Attributes:
        name: as in the header.
        kind: ``"binary"``, ``"categorical"``, ``"count"`` or ``"real"``.
        labels: binary/categorical: the label of each code (code ``k`` is ``labels[k]``).
        numeric_labels: the labels are numbers (matched by value, ``"1.0"`` is ``"1"``).
        mean, std: real: the training split's mean and std (value = mean + std * z).
        unit: the unit the name ends in (``"mm"``), if any.
        decimals: real: digits after the point when written (the most the training rows
            have; ``None``: as many as needed).
    """

    name: str
    kind: str
    labels: Optional[List[str]] = None
    numeric_labels: bool = False
    mean: Optional[float] = None
    std: Optional[float] = None
    unit: Optional[str] = None
    decimals: Optional[int] = None

    def head(self, components: int = DEFAULT_COMPONENTS) -> Conditional:
        """The column's head: Bernoulli, Categorical(K), Poisson or MixtureOfGaussians(components)."""
        if self.kind == "binary":
            return Bernoulli()
        if self.kind == "categorical":
            return Categorical(len(self.labels))
        if self.kind == "count":
            return Poisson()
        return MixtureOfGaussians(components)

    def to_dict(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Column":
        if not isinstance(d, dict) or not isinstance(d.get("name"), str) or d.get("kind") not in KINDS[:-1]:
            raise ValueError(f"a stored table column must be a dict with a 'name' and a 'kind' in {KINDS[:-1]}, got {d!r}")
        known = set(cls.__dataclass_fields__)
        col = cls(**{k: v for k, v in d.items() if k in known})
        if col.kind in ("binary", "categorical") and not (isinstance(col.labels, list) and len(col.labels) >= 2):
            raise ValueError(f"stored table column {col.name!r} ({col.kind}) needs at least two labels")
        if col.kind == "real" and not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (col.mean, col.std)):
            raise ValueError(f"stored table column {col.name!r} (real) needs a finite mean and std")
        return col

    # -- encoding ---------------------------------------------------------------------------

    def _key(self, cell: str) -> Any:
        return _number_key(cell) if self.numeric_labels else cell

    def encode(self, cells: Sequence[str], where: "_Where") -> np.ndarray:
        """Cells of one split -> float64 values: codes, counts or standardized reals."""
        if self.kind in ("binary", "categorical"):
            codes = {self._key(label): k for k, label in enumerate(self.labels)}
            out = np.empty(len(cells))
            for r, cell in enumerate(cells):
                if self.numeric_labels and not _is_number(cell):
                    where.fail(r, self.name, f"{cell!r} is not a number, but the training rows of this {self.kind} "
                                             f"column hold the numbers {self.labels}")
                code = codes.get(self._key(cell))
                if code is None:
                    where.fail(r, self.name, f"the label {cell!r} does not occur in the training rows (labels "
                                             f"{self.labels}), so the model gives it no probability; remove those "
                                             "rows or add such rows to the training data")
                out[r] = code
            return out
        values = _numbers(cells, self.name, self.kind, where)
        if self.kind == "count":
            _check_counts(values, self.name, where)
            return values
        return (values - self.mean) / self.std

    def decode(self, values: np.ndarray) -> list:
        """Model values ``(N,)`` -> labels (str), counts (int) or reals (float, rounded to ``decimals``)."""
        if self.kind in ("binary", "categorical"):
            codes = np.clip(np.round(values), 0, len(self.labels) - 1).astype(int)
            return [self.labels[c] for c in codes]
        if self.kind == "count":
            return [int(v) for v in np.round(values)]
        x = values * self.std + self.mean
        return [float(v) for v in (np.round(x, self.decimals) if self.decimals is not None else x)]

    def format(self, value: Any) -> str:
        """A decoded value as CSV text."""
        if self.kind == "real" and self.decimals is not None:
            return f"{value:.{self.decimals}f}"
        return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


class _Where:
    """Where a split's rows come from, for error messages: the file and each row's line."""

    def __init__(self, source: str, split: str, lines: Sequence[int]):
        self.source, self.split, self.lines = source, split, list(lines)

    def fail(self, row: int, column: str, message: str) -> None:
        raise ValueError(f"{self.source!r} line {self.lines[row]} ({self.split} split), column {column!r}: {message}")


def _numbers(cells: Sequence[str], name: str, kind: str, where: _Where) -> np.ndarray:
    out = np.empty(len(cells))
    for r, cell in enumerate(cells):
        try:
            out[r] = float(cell)
        except ValueError:
            where.fail(r, name, f"{cell!r} is not a number, but the column is {kind}; give column_types "
                                f"(--column-types {name}=categorical) to treat its entries as labels")
        if not math.isfinite(out[r]):
            where.fail(r, name, f"{cell!r} is not a finite number")
    return out


def _check_counts(values: np.ndarray, name: str, where: _Where) -> None:
    bad = (values < 0) | (values != np.round(values))
    if bad.any():
        r = int(np.argmax(bad))
        where.fail(r, name, f"{values[r]:g} is not a count (a count column holds non-negative integers)")


# ---- inference -------------------------------------------------------------------------------------


def _infer_kind(name: str, cells: Sequence[str], where: _Where) -> str:
    numeric = [_is_number(c) for c in cells]
    if not any(numeric):
        return "binary" if len(set(cells)) == 2 else "categorical"
    if not all(numeric):
        r = numeric.index(False) if numeric[0] else numeric.index(True)
        where.fail(r, name, f"the column mixes numbers and labels ({cells[r]!r}); give column_types "
                            f"(--column-types {name}=categorical) to treat every entry as a label, or fix the entry")
    values = np.array([_number_key(c) for c in cells])
    distinct = np.unique(values)
    if len(distinct) == 2:
        return "binary"
    integers = bool(np.all(values == np.round(values)))
    if integers and len(distinct) <= MAX_CATEGORIES:
        return "categorical"
    if integers and values.min() >= 0 and _unit_of(name) is None:
        return "count"
    return "real"


def _fit_column(name: str, kind: str, cells: Sequence[str], where: _Where) -> Column:
    """A column of ``kind`` fitted to the training cells (labels, mean, std, decimals)."""
    unit = _unit_of(name)
    if kind in ("binary", "categorical"):
        numeric = all(_is_number(c) for c in cells)
        first: Dict[Any, str] = {}
        for c in cells:
            first.setdefault(_number_key(c) if numeric else c, c)
        keys = sorted(first)
        if len(keys) < 2:
            raise ValueError(f"{where.source!r}, column {name!r}: every training row holds {cells[0]!r}; a constant "
                             f"column carries no information: leave it out (column_types {name}=ignore)")
        if kind == "binary" and len(keys) > 2:
            shown = [first[k] for k in keys[:6]]
            raise ValueError(f"{where.source!r}, column {name!r} is binary but its training rows hold {len(keys)} "
                             f"distinct values ({', '.join(map(repr, shown))}{', ...' if len(keys) > 6 else ''})")
        return Column(name, kind, labels=[first[k] for k in keys], numeric_labels=numeric, unit=unit)
    values = _numbers(cells, name, kind, where)
    if kind == "count":
        _check_counts(values, name, where)
        return Column(name, kind, unit=unit)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    std = max(std, _STD_FLOOR) if std > 0 else 1.0  # a constant column: unscaled
    decimals = [_decimals(c) for c in cells]
    return Column(name, "real", mean=float(values.mean()), std=std, unit=unit,
                  decimals=None if None in decimals else max(decimals))


# ---- the schema ------------------------------------------------------------------------------------


@dataclass
class TableSchema:
    """The header of a table and how each modelled column is encoded.

    Attributes:
        names: every column of the file, in order (modelled or ignored).
        columns: the modelled columns, in the file's order; variable ``j`` of the model is
            ``columns[j]``.
    """

    names: List[str]
    columns: List[Column]

    @property
    def column_names(self) -> List[str]:
        return [c.name for c in self.columns]

    def index(self, name: str) -> int:
        """The variable of column ``name``; ``ValueError`` listing the modelled columns if none."""
        for j, c in enumerate(self.columns):
            if c.name == name:
                return j
        raise ValueError(f"no modelled column {name!r}; the columns are {self.column_names}")

    def code(self, name: str, label: str) -> int:
        """The code of ``label`` in the binary or categorical column ``name``."""
        col = self.columns[self.index(name)]
        if col.labels is None:
            raise ValueError(f"column {name!r} is {col.kind}: it has no labels")
        keys = [col._key(label_) for label_ in col.labels]
        try:
            return keys.index(col._key(str(label)))
        except ValueError:
            raise ValueError(f"column {name!r} has no label {label!r}; its labels are {col.labels}") from None

    def heads(self, components: int = DEFAULT_COMPONENTS) -> List[Conditional]:
        """One head per modelled column."""
        return [c.head(components) for c in self.columns]

    def conditional(self, components: int = DEFAULT_COMPONENTS) -> Mixed:
        """The :class:`Mixed` head of a row (``components`` per real column)."""
        return Mixed(self.heads(components))

    @property
    def log_scale(self) -> float:
        """``sum log std`` of the real columns: add it to an NLL to get it in data units."""
        return float(sum(math.log(c.std) for c in self.columns if c.kind == "real"))

    def encode(self, cells: np.ndarray, where: _Where) -> Tensor:
        """Text cells ``(N, len(names))`` (complete rows) -> values ``(N, n)`` float32."""
        index = {name: i for i, name in enumerate(self.names)}
        parts = [c.encode(list(cells[:, index[c.name]]), where) for c in self.columns]
        return torch.from_numpy(np.stack(parts, -1) if parts else np.zeros((len(cells), 0))).float()

    def decode(self, values: "Tensor | np.ndarray") -> Dict[str, list]:
        """Model values ``(N, n)`` -> ``{column name: N values}`` (labels, counts, reals in data units)."""
        x = np.asarray(values.detach().double().cpu() if isinstance(values, Tensor) else values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.columns):
            raise ValueError(f"values must have shape (N, {len(self.columns)}) (one entry per column "
                             f"{self.column_names}), got {tuple(x.shape)}")
        return {c.name: c.decode(x[:, j]) for j, c in enumerate(self.columns)}

    def csv_text(self, values: "Tensor | np.ndarray") -> str:
        """Rows ``(N, n)`` as CSV text with a header of the column names."""
        decoded = self.decode(values)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.column_names)
        columns = [[c.format(v) for v in decoded[c.name]] for c in self.columns]
        writer.writerows(zip(*columns))
        return buffer.getvalue()

    def write_csv(self, path: "str | os.PathLike[str]", values: "Tensor | np.ndarray") -> None:
        """Write rows ``(N, n)`` of model values as a CSV file of the original columns."""
        Path(path).write_text(self.csv_text(values))

    def to_dict(self) -> Dict[str, Any]:
        return {"names": list(self.names), "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TableSchema":
        if not isinstance(d, dict) or not isinstance(d.get("names"), list) or not isinstance(d.get("columns"), list):
            raise ValueError("stored table preprocessing must be a dict with 'names' and 'columns' lists")
        columns = [Column.from_dict(c) for c in d["columns"]]
        unknown = [c.name for c in columns if c.name not in d["names"]]
        if unknown or not columns:
            raise ValueError(f"stored table preprocessing is malformed (columns {unknown} not among its names)")
        return cls(list(d["names"]), columns)

    @classmethod
    def from_preprocessing(cls, preprocessing: Dict[str, Any]) -> "TableSchema":
        """The schema stored in a checkpoint's ``preprocessing`` (``ValueError`` if it is not a table's)."""
        if not isinstance(preprocessing, dict) or "table" not in preprocessing:
            raise ValueError("this model was not trained on a table (its preprocessing has no columns)")
        return cls.from_dict(preprocessing["table"])


# ---- reading (the file itself is read by data_files.read_table_source) -----------------------------


def parse_column_types(text: "str | Dict[str, str] | None") -> Optional[Dict[str, str]]:
    """``"sex=binary,year=count"`` (the ``--column-types`` syntax) or a dict -> ``{name: kind}``;
    ``ValueError`` for a kind not in :data:`KINDS` or a malformed entry."""
    if text is None:
        return None
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in (p.strip() for p in str(text).split(",")):
            if not part:
                continue
            name, sep, kind = part.rpartition("=")
            if not sep or not name.strip():
                raise ValueError(f"column types must be name=kind entries separated by commas, got {part!r}")
            items.append((name.strip(), kind.strip()))
    for name, kind in items:
        if kind not in KINDS:
            raise ValueError(f"column {name!r}: unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
    return dict(items)


def _complete_rows(raw: RawSource, modelled: List[int]) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, int]]:
    """Each split's rows without a missing entry in a modelled column, their lines, and how many were dropped."""
    everything = np.concatenate([raw.splits[k] for k in SPLIT_NAMES])
    missing_all = np.vectorize(_is_missing, otypes=[bool])(everything) if everything.size else everything.astype(bool)
    for j in modelled:
        if missing_all[:, j].all():
            raise ValueError(f"table {raw.name!r}: column {raw.columns[j]!r} is missing in every row; leave it out "
                             f"(column_types {raw.columns[j]}=ignore)")
    cells, lines, dropped = {}, {}, {}
    for key in SPLIT_NAMES:
        split = raw.splits[key]
        split_lines = raw.lines[key][: len(split)]  # max_train keeps a prefix of the training rows
        miss = np.vectorize(_is_missing, otypes=[bool])(split[:, modelled]).any(1) if split.size else np.zeros(0, bool)
        cells[key], lines[key], dropped[key] = split[~miss], split_lines[~miss], int(miss.sum())
    for key in SPLIT_NAMES:
        if len(cells[key]) == 0:
            raise ValueError(f"table {raw.name!r}: every row of the {key} split has a missing entry "
                             f"(dropped {dropped[key]}); fill in the missing values or leave the emptiest "
                             "columns out (column_types name=ignore)")
    return cells, lines, dropped


def prepare(raw: RawSource, prep: Dict[str, Any]) -> Dict[str, Tensor]:
    """Encode a table source's splits (see the module docstring), filling ``prep``.

    ``prep`` may hold ``column_types`` and ``components`` (given), or a stored ``table``
    schema (a checkpoint's: then it is applied, not refitted). It receives ``table`` (the
    schema), ``heads`` (the head configs of the row, ``Mixed(prep["heads"])``),
    ``components``, ``dropped_rows`` (per split) and ``notes`` (one line each, for a report).
    """
    if raw.columns is None:
        raise ValueError(f"{raw.name} is not a table: the mixed head needs a CSV file with a header row "
                         "of column names (or a table source such as penguins)")
    if prep.get("levels") is not None or prep.get("threshold") is not None:
        raise ValueError("levels and threshold do not apply to tables (each column's kind sets its encoding)")
    components = prep.get("components") or DEFAULT_COMPONENTS
    if isinstance(components, bool) or not isinstance(components, int) or components < 1:
        raise ValueError(f"components must be a positive int, got {components!r}")
    stored = prep.get("table")
    if stored is not None:
        schema = TableSchema.from_dict(stored)
        if schema.names != raw.columns:
            raise ValueError(f"table {raw.name!r} has the columns {raw.columns}, but the model was trained on a "
                             f"table with the columns {schema.names}")
        modelled = [raw.columns.index(n) for n in schema.column_names]
    else:
        types = parse_column_types(prep.get("column_types")) or {}
        unknown = [n for n in types if n not in raw.columns]
        if unknown:
            raise ValueError(f"column_types names {unknown}, not columns of {raw.name!r}; its columns are {raw.columns}")
        modelled = [j for j, n in enumerate(raw.columns) if types.get(n) != "ignore"]
        if not modelled:
            raise ValueError(f"table {raw.name!r}: every column is ignored; nothing is left to model")
    cells, lines, dropped = _complete_rows(raw, modelled)
    wheres = {k: _Where(raw.name, k, lines[k]) for k in SPLIT_NAMES}
    if stored is None:
        train = cells["train"]
        columns = []
        for j in modelled:
            name = raw.columns[j]
            kind = types.get(name) or _infer_kind(name, list(train[:, j]), wheres["train"])
            columns.append(_fit_column(name, kind, list(train[:, j]), wheres["train"]))
        schema = TableSchema(list(raw.columns), columns)
    out = {k: schema.encode(cells[k], wheres[k]) for k in SPLIT_NAMES}
    total = sum(dropped.values())
    notes = []
    if total:
        rows = total + sum(len(c) for c in cells.values())
        per = ", ".join(f"{dropped[k]} {k}" for k in SPLIT_NAMES)
        notes.append(f"dropped {total} of {rows} rows of {raw.name} with a missing entry ({per})")
    prep.update(table=schema.to_dict(), heads=Mixed(schema.heads(components)).config()["heads"],
                components=components, dropped_rows=dropped, notes=notes)
    return out


# ---- the public entry point ----------------------------------------------------------------------


@dataclass
class Table:
    """A table read for modelling: the encoded splits and the schema to decode samples.

    Attributes:
        name: the source (``"penguins"`` or the file's path).
        schema: the columns (:class:`TableSchema`).
        train, valid, test: ``(N, n)`` float32 values, one variable per modelled column
            (codes, counts, standardized reals).
        components: mixture components of each real column's head.
        dropped_rows: how many rows of each split had a missing entry.
        preprocessing: the plain dict a checkpoint stores (``kind`` ``"mixed"``, ``table``, ``heads``, ...).
    """

    name: str
    schema: TableSchema
    train: Tensor
    valid: Tensor
    test: Tensor
    components: int = DEFAULT_COMPONENTS
    dropped_rows: Dict[str, int] = field(default_factory=dict)
    preprocessing: Dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> List[Column]:
        return self.schema.columns

    @property
    def column_names(self) -> List[str]:
        return self.schema.column_names

    @property
    def event_size(self) -> int:
        return len(self.schema.columns)

    @property
    def heads(self) -> List[Conditional]:
        return self.schema.heads(self.components)

    def conditional(self, components: Optional[int] = None) -> Mixed:
        """The :class:`Mixed` head of a row, for any factory's ``conditional=``."""
        return self.schema.conditional(components or self.components)

    def split(self, name: str) -> Tensor:
        """``"train"``, ``"valid"``, ``"test"`` or ``"all"``."""
        return data_files.split_by_name(self, name)

    def index(self, name: str) -> int:
        return self.schema.index(name)

    def code(self, name: str, label: str) -> int:
        return self.schema.code(name, label)

    def order_first(self, names: "str | Sequence[str]") -> List[int]:
        """An order (for a factory's ``order=``) that puts columns ``names`` first, then the
        others in table order: a model with it conditions exactly on those columns
        (``d.condition(x, mask)``, ``p(other columns | these)``)."""
        first = [self.index(n) for n in ([names] if isinstance(names, str) else names)]
        return first + [j for j in range(self.event_size) if j not in first]

    def decode(self, values: "Tensor | np.ndarray") -> Dict[str, list]:
        return self.schema.decode(values)

    def write_csv(self, path: "str | os.PathLike[str]", values: "Tensor | np.ndarray") -> None:
        self.schema.write_csv(path, values)

    @property
    def log_scale(self) -> float:
        return self.schema.log_scale


def read_table(
    source: "str | os.PathLike[str]",
    column_types: "Dict[str, str] | str | None" = None,
    *,
    components: int = DEFAULT_COMPONENTS,
    max_train: Optional[int] = None,
    preprocessing: Optional[Dict[str, Any]] = None,
) -> Table:
    """Read a table (a CSV path with a header row, or a table source such as ``"penguins"``).

    Args:
        source: a path or a registered table source's name.
        column_types: ``{name: kind}`` (or ``"name=kind,..."``) overriding the inferred kinds;
            kinds are :data:`KINDS`.
        components: mixture components of each real column's head.
        max_train: keep only the first ``max_train`` training rows (before dropping incomplete ones).
        preprocessing: a stored ``preprocessing`` (a checkpoint's): apply its schema instead
            of inferring one.

    Returns:
        a :class:`Table`; see the module docstring for kinds, missing values and errors.
    """
    raw = load_source(str(source), table=True)
    if max_train is not None:
        raw.splits["train"] = raw.splits["train"][:max_train]
    prep: Dict[str, Any] = dict(preprocessing or {"column_types": parse_column_types(column_types),
                                                  "components": components})
    tensors = prepare(raw, prep)
    prep.update(kind="mixed", value_kind="mixed")
    prep = {k: v for k, v in prep.items() if v is not None}
    return Table(raw.name, TableSchema.from_dict(prep["table"]), tensors["train"], tensors["valid"], tensors["test"],
                 components=prep["components"], dropped_rows=prep["dropped_rows"], preprocessing=prep)


def column_nll(net: Any, rows: Tensor, context: Optional[Tensor] = None, batch_size: int = 1000) -> Optional[Tensor]:
    """Each column's share of the NLL: ``(n,)``, the mean over ``rows (N, n)`` of
    ``-log p(x_j | the columns before j in the order)``; the shares sum to the mean NLL.

    ``None`` for a model without per-variable factors (a mixture of orders, e.g. MADE with
    ``num_masks > 1``: its density is not a product over columns).
    """
    params = next(net.parameters(), None)
    device = params.device if params is not None else torch.device("cpu")
    total = None
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            x = rows[start : start + batch_size].to(device)
            c = None if context is None else context[start : start + batch_size].to(device)
            d = net(c)
            if not hasattr(d, "variable_log_probs"):
                return None
            lp = -d.variable_log_probs(x).double().sum(0).cpu()
            total = lp if total is None else total + lp
    return total / len(rows)


# The preparation of tables (load_dataset with the mixed head), as the sources register theirs.
data_files.PREPARE["mixed"] = prepare
