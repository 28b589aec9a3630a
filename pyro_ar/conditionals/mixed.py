"""Mixed: one head per variable, for tables whose columns are of different kinds."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, constraints

from pyro_ar import registry
from pyro_ar.conditionals.base import Conditional

__all__ = ["Mixed", "ColumnSupport"]


def _pad_last(x: Tensor, size: int) -> Tensor:
    """``x: (*, s) -> (*, size)`` with zeros after the first ``s`` entries."""
    return x if x.shape[-1] == size else F.pad(x, (0, size - x.shape[-1]))


def _head_of(j: int, spec: Any) -> Conditional:
    """A head, or one built from its config dict ``{"name": ..., **options}``."""
    if isinstance(spec, Conditional):
        return spec
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"heads[{j}] must be a pyro_ar.conditionals head or a config dict with a 'name', got {spec!r}")
    rest = {k: v for k, v in spec.items() if k != "name"}
    return registry.head_entry(spec["name"]).cls.from_config(rest)


class ColumnSupport(constraints.Constraint):
    """The support of a row of columns of different kinds: column ``j`` is checked against
    its own head's support; ``check(value: (*, n)) -> (*, n)`` boolean, in one call per
    group of columns with equal heads. ``is_discrete`` when every column is."""

    event_dim = 0

    def __init__(self, mixed: "Mixed"):
        self.mixed = mixed
        super().__init__()

    @property
    def is_discrete(self) -> bool:  # type: ignore[override]
        return all(h.support.is_discrete for h in self.mixed.heads)

    def check(self, value: Tensor) -> Tensor:
        return self.mixed._by_group(value, lambda head, v: head.support.check(v))

    def support_key(self) -> tuple:
        """A comparable description, one entry per column (for KL's support check)."""
        return ("columns",) + tuple(repr(h.support) for h in self.mixed.heads)

    def __repr__(self) -> str:
        return f"ColumnSupport([{', '.join(repr(h.support) for h in self.mixed.heads)}])"


class _Column(Conditional):
    """The head of one column of a :class:`Mixed`, in the Mixed's padded sizes: it takes the
    first ``P_j`` of ``P`` parameters and the first ``N_j`` numbers of noise, pads its
    encoding to ``I`` features with zeros, and draws in the parameters' floating dtype (the
    dtype of a Mixed row). What the shared sampling loop sees at one step."""

    def __init__(self, head: Conditional, param_size: int, input_size: int, noise_size: int):
        self.head, self.param_size, self.input_size, self.noise_size = head, param_size, input_size, noise_size
        self.is_discrete, self.has_rsample, self.value_kind = head.is_discrete, head.has_rsample, head.value_kind
        self.support = head.support

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return self.head.has_enumerate_support

    def _own(self, params: Tensor) -> Tensor:
        return params[..., : self.head.param_size]

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        return self.head.distribution(self._own(params), temperature)

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        return self.head.log_prob(self._own(params), x, temperature)

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return _pad_last(self.head.encode(x, dtype), self.input_size)

    def encode_one(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        return _pad_last(self.head.encode_one(x, dtype), self.input_size)

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return param_dtype

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        return _pad_last(self.head.draw_noise(shape, dtype, device), self.noise_size)

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        value = self.head.sample_from_noise(self._own(params), noise[..., : self.head.noise_size], temperature)
        return value.to(params.dtype)

    def rsample(self, params: Tensor) -> Tensor:
        return self.head.rsample(self._own(params))

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        return self.head.enumerate_values(device, dtype)

    def check_value(self, x: Tensor) -> None:
        self.head.check_value(x)

    def __repr__(self) -> str:
        return repr(self.head)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Column) and (self.head, self.param_size, self.input_size) == (
            other.head, other.param_size, other.input_size)

    def __hash__(self) -> int:
        return hash((_Column, self.head, self.param_size, self.input_size))


class Mixed(Conditional):
    r"""One head per variable: ``x_j`` follows ``heads[j]``, e.g. a table's columns.

    .. math:: p(x) = \prod_k p_{h(σ_k)}(x_{σ_k} \mid \text{params}_{σ_k}(x_{σ_{<k}}))

    where column ``j``'s conditional is ``heads[j]`` (Bernoulli, Categorical(K),
    MixtureOfGaussians(K), Poisson, ...). Usable with every conditioner.

    Sizes: the conditioner outputs ``P = max_j P_j`` parameters per variable and is fed
    ``I = max_j I_j`` features per variable. Column ``j`` uses the first ``P_j`` of its
    parameters (the others get no gradient: they are unused outputs) and is encoded as its
    head encodes it (0/1 as is, one-hot codes, reals as they are), zero-padded to ``I``.
    Its initial output bias is each column's own, one row per variable.

    Values: one floating tensor ``(*, n)`` holding, in their columns, 0/1, integer codes
    ``0..K-1``, counts and reals; samples are of the parameters' floating dtype. With
    ``validate_args`` each column is checked against its head's support, and a
    ``ValueError`` names the first column (index and head) that is out of it.

    Scoring is one pass: the columns are grouped by equal heads and each group is scored in
    one vectorized call. Sampling uses the shared loop, which asks for the head of each
    step (:meth:`for_variables`); the block sampler applies when every column is discrete.
    ``is_discrete`` (and so ``enumerate_support``, exact ``entropy`` and exact KL) when every
    column is discrete with finite support; ``has_rsample`` when every column has one
    (``rsample`` is refused with a clear error otherwise). Tempering divides the logits of
    discrete columns, and is refused when any column is continuous.

    Args:
        heads: one head per variable (at least one), in column order, not themselves Mixed;
            a head or its config dict (``{"name": "categorical", "num_categories": 5}``).

    Example:
        >>> import pyro_ar
        >>> from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
        >>> head = Mixed([Bernoulli(), Categorical(3), MixtureOfGaussians(2)])
        >>> net = pyro_ar.MADE(event_size=3, hidden_sizes=[16], conditional=head, seed=0)
        >>> net().sample((4,)).shape
        torch.Size([4, 3])
    """

    value_kind = "mixed"

    def __init__(self, heads: Sequence[Conditional]):
        if isinstance(heads, (str, bytes)) or not isinstance(heads, (list, tuple)):
            raise ValueError(f"heads must be a list of pyro_ar.conditionals heads, one per column, got {heads!r}")
        if not heads:
            raise ValueError("heads must hold at least one head (one per column)")
        heads = [_head_of(j, h) for j, h in enumerate(heads)]
        for j, h in enumerate(heads):
            if isinstance(h, Mixed) or not isinstance(h, Conditional) or isinstance(h, _Column):
                raise ValueError(f"heads[{j}] must be a single-column pyro_ar.conditionals head, got {h!r}")
        self.heads = list(heads)
        self._sizes = (max(h.param_size for h in heads), max(h.input_size for h in heads),
                       max(h.noise_size for h in heads))
        self._setup()

    def _setup(self) -> None:
        p, i, m = self._sizes
        groups: Dict[Conditional, List[int]] = {}
        for j, h in enumerate(self.heads):
            groups.setdefault(h, []).append(j)
        #: ``(head, column indices)`` of each group of equal heads.
        self._groups: List[Tuple[Conditional, List[int]]] = list(groups.items())
        order = [j for _, cols in self._groups for j in cols]
        self._unsort = torch.argsort(torch.tensor(order))  # grouped order -> column order
        self._columns = [_Column(h, p, i, m) for h in self.heads]
        self._subsets: Dict[tuple, "Mixed"] = {}

    @classmethod
    def _padded(cls, heads: List[Conditional], sizes: Tuple[int, int, int]) -> "Mixed":
        """A Mixed of some columns of another, keeping that one's padded sizes."""
        new = cls.__new__(cls)
        new.heads, new._sizes = list(heads), sizes
        new._setup()
        return new

    # ---- sizes and kind -------------------------------------------------------------------

    @property
    def param_size(self) -> int:  # type: ignore[override]
        return self._sizes[0]

    @property
    def input_size(self) -> int:  # type: ignore[override]
        return self._sizes[1]

    @property
    def noise_size(self) -> int:  # type: ignore[override]
        return self._sizes[2]

    @property
    def is_discrete(self) -> bool:  # type: ignore[override]
        return all(h.is_discrete for h in self.heads)

    @property
    def has_enumerate_support(self) -> bool:  # type: ignore[override]
        return all(h.has_enumerate_support for h in self.heads)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return all(h.has_rsample for h in self.heads)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        return ColumnSupport(self)

    @property
    def num_columns(self) -> int:
        return len(self.heads)

    def check_event_size(self, event_size: int) -> None:
        if event_size != len(self.heads):
            raise ValueError(f"Mixed has {len(self.heads)} heads (one per column) but the model has "
                             f"event_size={event_size}")

    def for_variables(self, index: "int | Sequence[int]") -> Conditional:
        if isinstance(index, int):
            return self._columns[index]
        key = tuple(int(i) for i in index)
        if key == tuple(range(len(self.heads))):
            return self
        if key not in self._subsets:
            self._subsets[key] = Mixed._padded([self.heads[i] for i in key], self._sizes)
        return self._subsets[key]

    def initial_bias(self) -> Tensor:
        """``(n, P)``: each column's own initial bias, zero-padded."""
        return torch.stack([_pad_last(h.initial_bias(), self.param_size) for h in self.heads])

    # ---- the per-group machinery ---------------------------------------------------------

    def _check_columns(self, x: Tensor) -> None:
        if x.dim() == 0 or x.shape[-1] != len(self.heads):
            raise ValueError(f"Mixed values must have shape (*, {len(self.heads)}) (one entry per column), "
                             f"got shape {tuple(x.shape)}")

    def _by_group(self, x: Tensor, fn, params: "Tensor | None" = None) -> Tensor:
        """``fn(head, x[..., cols] (, params[..., cols, :P_h]))`` per group, reassembled into
        column order along the last dimension: ``(*, n)``."""
        self._check_columns(x)
        parts = []
        for head, cols in self._groups:
            index = torch.tensor(cols, device=x.device)
            xs = x.index_select(-1, index)
            if params is None:
                parts.append(fn(head, xs))
            else:
                parts.append(fn(head, xs, params.index_select(-2, index)[..., : head.param_size]))
        shape = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
        out = torch.cat([p.expand(shape + p.shape[-1:]) for p in parts], -1)
        return out if len(self._groups) == 1 else out.index_select(-1, self._unsort.to(out.device))

    # ---- scoring ---------------------------------------------------------------------------

    def distribution(self, params: Tensor, temperature: float = 1.0) -> Distribution:
        raise NotImplementedError(
            "a Mixed head has one torch distribution per column: use mixed.for_variables(j).distribution(params)"
        )

    def log_prob(self, params: Tensor, x: Tensor, temperature: float = 1.0) -> Tensor:
        """``params: (*, n, P)``, ``x: (*, n) -> (*, n)``: one vectorized call per group of
        equal heads (with ``temperature``, that of the discrete columns)."""
        if params.shape[-2] != len(self.heads):
            raise ValueError(f"Mixed needs params of shape (*, {len(self.heads)}, P), got {tuple(params.shape)}")
        return self._by_group(x, lambda head, v, p: head.log_prob(p, v, temperature), params)

    def check_value(self, x: Tensor) -> None:
        super().check_value(x)
        self._check_columns(x)
        for head, cols in self._groups:
            xs = x[..., cols]
            try:
                head.check_value(xs)
            except ValueError:
                for j in cols:  # the failure path only: find the column
                    try:
                        head.check_value(x[..., j])
                    except ValueError as err:
                        raise ValueError(f"column {j} ({head!r}): {err}") from err
                raise
            ok = head.support.check(xs)
            if not bool(ok.all()):
                bad = (~ok).reshape(-1, len(cols)).any(0).nonzero()[0].item()
                j = cols[bad]
                value = xs[..., bad][~ok[..., bad]].reshape(-1)[0].item()
                raise ValueError(f"column {j} ({head!r}) holds {value!r}, outside its support {head.support}")

    # ---- sampling --------------------------------------------------------------------------

    def encode(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """``x: (*, n) -> (*, n, I)``: each column as its head encodes it, zero-padded to ``I``."""
        self._check_columns(x)
        parts = [(_pad_last(head.encode(x[..., cols], dtype), self.input_size), cols) for head, cols in self._groups]
        out = torch.cat([p for p, _ in parts], -2)
        return out if len(self._groups) == 1 else out.index_select(-2, self._unsort.to(out.device))

    def encode_one(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        raise NotImplementedError("encode one column of a Mixed head with mixed.for_variables(j).encode_one")

    def sample_dtype(self, param_dtype: torch.dtype) -> torch.dtype:
        return param_dtype

    def draw_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Noise for ``shape = (*, n)`` rows of columns: ``(*, n, N)``, each column's own
        noise zero-padded to ``N = max_j N_j``."""
        shape = torch.Size(shape)
        if not shape or shape[-1] != len(self.heads):
            raise ValueError(f"Mixed draws noise for shapes (*, {len(self.heads)}), got {tuple(shape)}")
        parts = [_pad_last(head.draw_noise(shape[:-1] + (len(cols),), dtype, device), self.noise_size)
                 for head, cols in self._groups]
        out = torch.cat(parts, -2)
        return out if len(self._groups) == 1 else out.index_select(-2, self._unsort.to(out.device))

    def sample_from_noise(self, params: Tensor, noise: Tensor, temperature: float = 1.0) -> Tensor:
        """``params: (*, n, P)``, ``noise: (*, n, N) -> (*, n)`` in the parameters' dtype."""
        parts = []
        for head, cols in self._groups:
            index = torch.tensor(cols, device=params.device)
            p = params.index_select(-2, index)[..., : head.param_size]
            z = noise.index_select(-2, index)[..., : head.noise_size]
            parts.append(head.sample_from_noise(p, z, temperature).to(params.dtype))
        out = torch.cat(parts, -1)
        return out if len(self._groups) == 1 else out.index_select(-1, self._unsort.to(out.device))

    def rsample(self, params: Tensor) -> Tensor:
        if not self.has_rsample:
            discrete = [f"{j} ({h!r})" for j, h in enumerate(self.heads) if not h.has_rsample]
            raise NotImplementedError(f"Mixed has no rsample: columns {', '.join(discrete)} are discrete")
        return torch.cat([self._columns[j].rsample(params[..., j, :]).unsqueeze(-1) for j in range(len(self.heads))], -1)

    def enumerate_values(self, device: torch.device, dtype: torch.dtype) -> Tensor:
        raise NotImplementedError("a Mixed head's columns have different values: use mixed.for_variables(j).enumerate_values")

    # ---- configuration ---------------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        """``{"heads": [{"name": "bernoulli"}, {"name": "categorical", "num_categories": 5}, ...]}``."""
        return {"heads": [{"name": registry.entry_of(h).name, **h.config()} for h in self.heads]}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Mixed":
        if not isinstance(config, dict) or set(config) != {"heads"} or not isinstance(config["heads"], (list, tuple)):
            raise ValueError(f"a Mixed config must be {{'heads': [head configs]}}, got {config!r}")
        return cls(list(config["heads"]))

    def __repr__(self) -> str:
        return f"Mixed([{', '.join(map(repr, self.heads))}])"

    def __eq__(self, other: object) -> bool:
        return type(other) is Mixed and self.heads == other.heads and self._sizes == other._sizes

    def __hash__(self) -> int:
        return hash((Mixed, tuple(self.heads), self._sizes))

    def __getstate__(self) -> Dict[str, Any]:
        return {"heads": self.heads, "_sizes": self._sizes}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.heads, self._sizes = state["heads"], state["_sizes"]
        self._setup()


registry.register_head(
    Mixed, "mixed",
    example={"heads": [{"name": "bernoulli"}, {"name": "categorical", "num_categories": 3}, {"name": "mog", "num_components": 2}]},
    data_option="heads",
)
