"""The conformance harness: a list of model fixtures with readable ids.

Every pyro_ar model that the generic tests run over is described by one :class:`ModelSpec`
(conditioner x head x context x order x MADE depth/masks). A test asks for one of these
argument names and ``pytest_generate_tests`` parametrizes it over the matching fixtures:

* ``ar_spec``: every fixture;
* ``ar_discrete_spec``: fixtures with an enumerable head (Bernoulli, Categorical);
* ``ar_mog_spec``: fixtures with a mixture-of-Gaussians head;
* ``ar_ensemble_spec``: MADE fixtures with several masks;
* ``ar_member``: ``(spec, member)`` for every member (MADE mask) of every fixture;
* ``ar_mog_member``, ``ar_context_member``: the same, for the mixture-of-Gaussians
  fixtures and for the fixtures with a context.

(The ``ar_`` prefix keeps these names clear of other test files' own parameters.)

Building a spec is deterministic (its own seed, the global RNG untouched) and every parameter
is perturbed away from its initial value, so that biases are not zero and conditionals
depend visibly on earlier variables: sampling and Jacobian tests then have power.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Tuple, Union

import pyro.distributions.testing.gof as gof
import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, Conditional, MixtureOfGaussians

__all__ = ["ModelSpec", "SPECS", "DISCRETE_SPECS", "MOG_SPECS", "ENSEMBLE_SPECS", "MEMBER_SPECS"]

Order = Union[None, str, Tuple[int, ...]]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the harness.

    Args:
        model: ``"FVSBN"``, ``"NADE"`` or ``"MADE"`` (the :mod:`pyro_ar` factory).
        head: ``"bernoulli"``, ``"categorical3"``, ``"categorical4"`` or ``"mog2"``.
        event_size: ``n`` (small enough to enumerate: ``K^n <= 256``).
        context_size: ``c`` or ``None``.
        order: ``None``, ``"reverse"``, ``"random"`` or an explicit permutation.
        hidden: NADE's ``(d,)`` or MADE's hidden sizes.
        num_masks: MADE's number of members.
        order_agnostic: MADE's flag.
        seed: the seed of the weights (and of a random order).
    """

    model: str
    head: str
    event_size: int
    context_size: Optional[int] = None
    order: Order = None
    hidden: Tuple[int, ...] = ()
    num_masks: int = 1
    order_agnostic: bool = True
    seed: int = 0

    # ---- description --------------------------------------------------------------------

    @property
    def id(self) -> str:
        parts = [self.model.lower()]
        if self.model == "NADE":
            parts.append(f"d{self.hidden[0]}")
        elif self.model == "MADE":
            parts.append("h" + "-".join(map(str, self.hidden)))
            parts.append(f"m{self.num_masks}" + ("" if self.order_agnostic else "fixed"))
        parts += [self.head, f"n{self.event_size}"]
        if self.context_size is not None:
            parts.append(f"ctx{self.context_size}")
        if self.order is not None:
            parts.append(self.order if isinstance(self.order, str) else "perm" + "".join(map(str, self.order)))
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    @property
    def is_discrete(self) -> bool:
        return self.head != "mog2"

    @property
    def num_values(self) -> int:
        """Values one discrete variable takes (``K``)."""
        return {"bernoulli": 2, "categorical3": 3, "categorical4": 4}[self.head]

    @property
    def distribution_class(self) -> type:
        return getattr(pyro_ar.distributions, self.model)

    def conditional(self) -> Conditional:
        if self.head == "bernoulli":
            return Bernoulli()
        if self.head.startswith("categorical"):
            return Categorical(int(self.head[-1]))
        return MixtureOfGaussians(2)

    # ---- construction -------------------------------------------------------------------

    def hparams(self) -> dict:
        kw = dict(event_size=self.event_size, conditional=self.conditional(), context_size=self.context_size)
        kw["order"] = list(self.order) if isinstance(self.order, tuple) else self.order
        kw["seed"] = self.seed
        if self.model == "NADE":
            kw["hidden_size"] = self.hidden[0]
        elif self.model == "MADE":
            kw.update(hidden_sizes=list(self.hidden), num_masks=self.num_masks, order_agnostic=self.order_agnostic)
        return kw

    def build(
        self, dtype: torch.dtype = torch.float64, weight_seed: Optional[int] = None
    ) -> pyro_ar.AutoregressiveModel:
        """A fresh model in ``dtype``, its weights drawn from ``weight_seed`` (default: ``seed``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if weight_seed is None else weight_seed)
            net = getattr(pyro_ar, self.model)(**self.hparams()).to(dtype)
            with torch.no_grad():
                for p in net.parameters():
                    p.add_(0.5 * torch.randn_like(p))
        return net

    def context(self, batch_shape: Sequence[int] = (), dtype: torch.dtype = torch.float64) -> Optional[torch.Tensor]:
        """A seeded context ``batch_shape + (c,)``, or ``None`` without context."""
        if self.context_size is None:
            return None
        gen = torch.Generator().manual_seed(1000 + self.seed)
        return torch.randn(*batch_shape, self.context_size, generator=gen, dtype=torch.float64).to(dtype)

    def distribution(
        self,
        net: pyro_ar.AutoregressiveModel,
        batch_shape: Sequence[int] = (),
        mask_index: Optional[int] = None,
    ) -> pyro_ar.Autoregressive:
        """``net``'s distribution with ``batch_shape``: through the context where there is one,
        else through ``expand``."""
        dtype = next(net.parameters()).dtype
        batch_shape = torch.Size(batch_shape)
        if self.context_size is not None:
            return net(self.context(batch_shape, dtype), mask_index=mask_index)
        d = net(mask_index=mask_index)
        return d.expand(batch_shape) if batch_shape else d

    def random_value(self, shape: Sequence[int], dtype: torch.dtype = torch.float64, seed: int = 0) -> torch.Tensor:
        """Seeded values in the support, ``shape + (n,)``."""
        gen = torch.Generator().manual_seed(seed)
        shape = tuple(shape) + (self.event_size,)
        if self.head == "mog2":
            return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        x = torch.randint(self.num_values, shape, generator=gen)
        return x.to(dtype) if self.head == "bernoulli" else x


def _grid() -> list:
    """Every conditioner x head x with/without context (the core grid)."""
    sizes = {"bernoulli": 5, "categorical3": 4, "mog2": 3}
    models = [("FVSBN", ()), ("NADE", (8,)), ("MADE", (12,))]
    return [
        ModelSpec(model, head, n, context_size=ctx, hidden=hidden)
        for model, hidden in models
        for head, n in sizes.items()
        for ctx in (None, 3)
    ]


SPECS = _grid() + [
    # orders
    ModelSpec("FVSBN", "bernoulli", 6, order="reverse"),
    ModelSpec("FVSBN", "categorical3", 5, context_size=2, order=(3, 0, 4, 1, 2)),
    ModelSpec("NADE", "bernoulli", 5, order=(2, 4, 0, 3, 1), hidden=(8,)),
    ModelSpec("NADE", "categorical4", 4, context_size=2, order="random", hidden=(8,), seed=3),
    ModelSpec("NADE", "mog2", 3, order="reverse", hidden=(8,)),
    ModelSpec("MADE", "bernoulli", 6, order="reverse", hidden=(12, 12)),
    ModelSpec("MADE", "mog2", 3, context_size=2, order="random", hidden=(12,), seed=1),
    # MADE depth x masks
    ModelSpec("MADE", "bernoulli", 5, hidden=(12, 12)),
    ModelSpec("MADE", "bernoulli", 5, hidden=(12,), num_masks=3),
    ModelSpec("MADE", "bernoulli", 5, context_size=3, hidden=(12, 12), num_masks=3),
    ModelSpec("MADE", "bernoulli", 5, hidden=(12,), num_masks=3, order_agnostic=False),
    ModelSpec("MADE", "categorical3", 4, context_size=2, order="random", hidden=(12, 12), num_masks=3, seed=2),
    ModelSpec("MADE", "categorical3", 4, context_size=2, order="reverse", hidden=(12,)),
    ModelSpec("MADE", "mog2", 3, context_size=2, hidden=(12, 12), num_masks=3),
    # layers narrower than n - 1 (no input may be left dead), and a single variable
    ModelSpec("MADE", "bernoulli", 6, hidden=(3,)),
    ModelSpec("MADE", "bernoulli", 6, order="random", hidden=(3, 2), seed=4),
    ModelSpec("MADE", "categorical3", 1, context_size=2, hidden=(4,)),
    ModelSpec("NADE", "bernoulli", 1, hidden=(4,)),
    ModelSpec("FVSBN", "mog2", 1, context_size=2),
]
DISCRETE_SPECS = [s for s in SPECS if s.is_discrete]
MOG_SPECS = [s for s in SPECS if not s.is_discrete]
ENSEMBLE_SPECS = [s for s in SPECS if s.num_masks > 1]
MEMBER_SPECS = [(s, m) for s in SPECS for m in range(s.num_masks)]

def _member_id(spec_member: tuple) -> str:
    return f"{spec_member[0].id}-mask{spec_member[1]}"


_PARAMS = {
    "ar_spec": (SPECS, lambda s: s.id),
    "ar_discrete_spec": (DISCRETE_SPECS, lambda s: s.id),
    "ar_mog_spec": (MOG_SPECS, lambda s: s.id),
    "ar_ensemble_spec": (ENSEMBLE_SPECS, lambda s: s.id),
    "ar_member": (MEMBER_SPECS, _member_id),
    "ar_mog_member": ([sm for sm in MEMBER_SPECS if not sm[0].is_discrete], _member_id),
    "ar_context_member": ([sm for sm in MEMBER_SPECS if sm[0].context_size is not None], _member_id),
}


@pytest.fixture
def restore_torch_state():
    """Put back the torch thread count and global RNG state that a test changed (in-process
    runs of the CLI set both, as the program does)."""
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    yield
    torch.set_num_threads(threads)
    torch.set_rng_state(rng)


@pytest.fixture
def exact_chi2sf(monkeypatch):
    """Pyro's goodness-of-fit tests (``pyro.distributions.testing.gof``) with scipy's chi^2
    survival function.

    ``pyro.distributions.testing.special.chi2sf`` (pyro-ppl 1.9.2) is wrong for large
    statistics: ``chi2sf(300, 14) ~ 0.9999`` and ``chi2sf(1000, 14) == 1.0``, so a grossly
    wrong sampler would *pass*. The statistic itself is Pyro's, unchanged.
    """
    monkeypatch.setattr(gof, "chi2sf", lambda x, df: float(stats.chi2.sf(x, df)))


def pytest_configure(config: pytest.Config) -> None:
    # The suite's tensors are tiny: intra-op threads only add contention on a shared machine
    # (10x slower sampling loops were measured with 2 threads on 2 busy cores).
    torch.set_num_threads(int(os.environ.get("PYRO_AR_TEST_THREADS", "1")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, (values, make_id) in _PARAMS.items():
        if name in metafunc.fixturenames and not any(
            name in m.args[0] for m in metafunc.definition.iter_markers("parametrize")
        ):
            metafunc.parametrize(name, values, ids=[make_id(v) for v in values])
