"""The conformance harness: a list of model fixtures with readable ids, driven by the registry.

Every pyro_ar model that the generic tests run over is described by one :class:`ModelSpec`
(registered conditioner x head x context x order x the model's own options). A test asks for
one of these argument names and ``pytest_generate_tests`` parametrizes it over the matching
fixtures:

* ``ar_spec``: every fixture;
* ``ar_discrete_spec``: fixtures with an enumerable head (Bernoulli, Categorical);
* ``ar_mog_spec``: fixtures with a mixture-of-Gaussians head;
* ``ar_ensemble_spec``: fixtures with several members (MADE's masks, ``num_masks > 1``);
* ``ar_member``: ``(spec, member)`` for every member of every fixture;
* ``ar_mog_member``, ``ar_context_member``: the same, for the mixture-of-Gaussians
  fixtures and for the fixtures with a context;
* ``ar_model``: the registry name of every model among the fixtures.

(The ``ar_`` prefix keeps these names clear of other test files' own parameters.)

The fixtures are :data:`SPECS`: the core grid of every built-in model (:func:`specs_for`,
from its registry entry's ``example`` options) and hand-written extras. A test module that
defines ``AR_SPECS`` (e.g. ``AR_SPECS = specs_for("markov")`` in a new model's file, which
then imports the generic tests) gets its own list instead, so a new model needs no edit here.

Building a spec is deterministic (its own seed, the global RNG untouched) and every parameter
is perturbed away from its initial value, so that biases are not zero and conditionals
depend visibly on earlier variables: sampling and Jacobian tests then have power.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import pyro.distributions.testing.gof as gof
import pytest
import torch
from scipy import stats

import pyro_ar
from pyro_ar.conditionals import Bernoulli, Categorical, Conditional, DiscretizedLogisticMixture, MixtureOfGaussians
from pyro_ar.distributions import JointDistribution
from pyro_ar.models import head_config

__all__ = [
    "ModelSpec",
    "specs_for",
    "BUILTIN_MODELS",
    "SPECS",
    "DISCRETE_SPECS",
    "MOG_SPECS",
    "ENSEMBLE_SPECS",
    "MEMBER_SPECS",
]

Order = Union[None, str, Tuple[int, ...]]
Options = Tuple[Tuple[str, Any], ...]

#: Short names of some model options in test ids (any other option shows its own name).
_OPTION_IDS = {"hidden_size": "d", "hidden_sizes": "h", "num_masks": "m"}


def _frozen(value: Any) -> Any:
    """Lists as tuples (a spec is frozen and hashable)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def _thawed(value: Any) -> Any:
    """Tuples back to lists, as a user would pass them."""
    return [_thawed(v) for v in value] if isinstance(value, tuple) else value


def as_options(options: Mapping[str, Any]) -> Options:
    """``{"hidden_sizes": [12]} -> (("hidden_sizes", (12,)),)``: options in a spec's form."""
    return tuple((name, _frozen(value)) for name, value in options.items())


def _option_id(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return name if value else f"no_{name}"
    text = "-".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"{_OPTION_IDS.get(name, name)}{text}"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the harness.

    Args:
        model: the registry name of the conditioner (``"fvsbn"``, ``"nade"``, ``"made"``, or any
            registered one); built with the factory ``pyro_ar.models.factory(model)``.
        head: ``"bernoulli"``, ``"categorical3"``, ``"categorical4"``, ``"mog2"`` or ``"dlogistic3"``
            (a mixture of two discretized logistics over 3 levels).
        event_size: ``n`` (small enough to enumerate: ``K^n <= 256``).
        context_size: ``c`` or ``None``.
        order: ``None``, ``"reverse"``, ``"random"`` or an explicit permutation.
        options: the model's own options as ``(name, value)`` pairs (sequences as tuples),
            e.g. ``(("hidden_sizes", (12, 12)), ("num_masks", 3))``; the factory's defaults
            for the others.
        seed: the seed of the weights (and of a random order).
    """

    model: str
    head: str
    event_size: int
    context_size: Optional[int] = None
    order: Order = None
    options: Options = ()
    seed: int = 0

    # ---- description --------------------------------------------------------------------

    @property
    def id(self) -> str:
        parts = [self.model]
        parts += [_option_id(name, value) for name, value in self.options]
        parts += [self.head, f"n{self.event_size}"]
        if self.context_size is not None:
            parts.append(f"ctx{self.context_size}")
        if self.order is not None:
            parts.append(self.order if isinstance(self.order, str) else "perm" + "".join(map(str, self.order)))
        if self.seed:
            parts.append(f"seed{self.seed}")
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    def option(self, name: str, default: Any = None) -> Any:
        """The value of model option ``name`` in this spec, else ``default``."""
        return dict(self.options).get(name, default)

    @property
    def num_masks(self) -> int:
        """The number of members (orders) of the model: its ``num_masks`` option, default 1."""
        return self.option("num_masks", 1)

    @property
    def is_discrete(self) -> bool:
        return self.head != "mog2"

    @property
    def has_levels(self) -> bool:
        """Whether values are integer levels ``0..K-1`` (long samples): categorical, dlogistic."""
        return self.head.startswith(("categorical", "dlogistic"))

    @property
    def num_values(self) -> int:
        """Values one discrete variable takes (``K``)."""
        return {"bernoulli": 2, "categorical3": 3, "categorical4": 4, "dlogistic3": 3}[self.head]

    @property
    def entry(self) -> pyro_ar.registry.ConditionerEntry:
        return pyro_ar.registry.conditioner_entry(self.model)

    @property
    def factory(self) -> type:
        return pyro_ar.models.factory(self.model)

    @property
    def distribution_class(self) -> type:
        self.factory  # makes the distribution class of a newly registered model, if not yet made
        return self.entry.distribution_class

    def conditional(self) -> Conditional:
        if self.head == "bernoulli":
            return Bernoulli()
        if self.head.startswith("categorical"):
            return Categorical(int(self.head[-1]))
        if self.head.startswith("dlogistic"):  # two logistic components over the levels
            return DiscretizedLogisticMixture(2, num_levels=int(self.head[-1]))
        return MixtureOfGaussians(2)

    # ---- construction -------------------------------------------------------------------

    def event_kwargs(self) -> dict:
        """The event argument of the factory call: ``{"event_size": n}``, or the value of the
        model's own event argument for ``n`` variables (PixelCNN: a small image of ``n`` pixels)."""
        return self.entry.event_kwargs(self.event_size)

    def factory_kwargs(self) -> dict:
        """The keyword arguments of the factory call (besides the event argument)."""
        kw = dict(conditional=self.conditional(), context_size=self.context_size, seed=self.seed)
        kw["order"] = list(self.order) if isinstance(self.order, tuple) else self.order
        kw.update({name: _thawed(value) for name, value in self.options})
        return kw

    def config(self) -> dict:
        """What ``net.config()`` of the built model must hold for these arguments (the head
        as :func:`pyro_ar.models.head_config`)."""
        kw = self.factory_kwargs()
        return {**self.event_kwargs(), **kw, "conditional": head_config(kw["conditional"])}

    def build(
        self, dtype: torch.dtype = torch.float64, weight_seed: Optional[int] = None
    ) -> pyro_ar.AutoregressiveModel:
        """A fresh model in ``dtype``, its weights drawn from ``weight_seed`` (default: ``seed``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if weight_seed is None else weight_seed)
            net = self.factory(**self.event_kwargs(), **self.factory_kwargs()).to(dtype)
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
    ) -> JointDistribution:
        """``net``'s distribution with ``batch_shape``: through the context where there is one,
        else through ``expand``. ``mask_index=None`` is the model itself (an
        :class:`~pyro_ar.distributions.Ensemble` when it has several members), an int one member
        (an :class:`~pyro_ar.Autoregressive`)."""
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


#: The heads of the core grid and their event sizes (``K^n <= 256``).
CORE_HEADS = {"bernoulli": 5, "categorical3": 4, "mog2": 3, "dlogistic3": 4}


def specs_for(name: str) -> list:
    """The core grid of one registered model, built with its registry ``example`` options:
    every head x (no context, a context of 3), plus a reversed and a seeded random order (for a
    model with a fixed order, ``fixed_order=True``: another size and another seed instead)."""
    entry = pyro_ar.registry.conditioner_entry(name)
    options = as_options(entry.example)
    grid = [
        ModelSpec(entry.name, head, n, context_size=ctx, options=options)
        for head, n in CORE_HEADS.items()
        for ctx in (None, 3)
    ]
    if entry.fixed_order:
        return grid + [
            ModelSpec(entry.name, "bernoulli", 6, options=options),
            ModelSpec(entry.name, "categorical3", 4, context_size=2, options=options, seed=1),
        ]
    return grid + [
        ModelSpec(entry.name, "bernoulli", 5, order="reverse", options=options),
        ModelSpec(entry.name, "categorical3", 4, context_size=2, order="random", options=options, seed=1),
    ]


#: The models that ship with pyro_ar (registered by the package itself, not by a test).
BUILTIN_MODELS = [e.name for e in pyro_ar.registry.conditioner_entries() if e.cls.__module__.startswith("pyro_ar.")]


def _spec(model: str, head: str, n: int, **kw: Any) -> ModelSpec:
    """A hand-written spec: ``options`` given as a dict."""
    return ModelSpec(model, head, n, options=as_options(kw.pop("options", {})), **kw)


NADE8 = {"hidden_size": 8}

SPECS = [s for name in BUILTIN_MODELS for s in specs_for(name)] + [
    # orders
    _spec("fvsbn", "bernoulli", 6, order="reverse"),
    _spec("fvsbn", "categorical3", 5, context_size=2, order=(3, 0, 4, 1, 2)),
    _spec("nade", "bernoulli", 5, order=(2, 4, 0, 3, 1), options=NADE8),
    _spec("nade", "categorical4", 4, context_size=2, order="random", options=NADE8, seed=3),
    _spec("nade", "mog2", 3, order="reverse", options=NADE8),
    _spec("made", "bernoulli", 6, order="reverse", options={"hidden_sizes": [12, 12]}),
    _spec("made", "mog2", 3, context_size=2, order="random", options={"hidden_sizes": [12]}, seed=1),
    # MADE depth x masks
    _spec("made", "bernoulli", 5, options={"hidden_sizes": [12, 12]}),
    _spec("made", "bernoulli", 5, options={"hidden_sizes": [12], "num_masks": 3}),
    _spec("made", "bernoulli", 5, context_size=3, options={"hidden_sizes": [12, 12], "num_masks": 3}),
    _spec("made", "bernoulli", 5, options={"hidden_sizes": [12], "num_masks": 3, "order_agnostic": False}),
    _spec("made", "categorical3", 4, context_size=2, order="random", options={"hidden_sizes": [12, 12], "num_masks": 3},
          seed=2),
    _spec("made", "categorical3", 4, context_size=2, order="reverse", options={"hidden_sizes": [12]}),
    _spec("made", "mog2", 3, context_size=2, options={"hidden_sizes": [12, 12], "num_masks": 3}),
    # layers narrower than n - 1 (no input may be left dead), and a single variable
    _spec("made", "bernoulli", 6, options={"hidden_sizes": [3]}),
    # residual MADE: blocks whose units keep their degrees (every head, context, masks, orders)
    _spec("made", "bernoulli", 5, options={"hidden_sizes": [12], "residual_blocks": 2}),
    _spec("made", "categorical3", 4, context_size=2, order="reverse", options={"hidden_sizes": [12], "residual_blocks": 1}),
    _spec("made", "mog2", 3, context_size=2, options={"hidden_sizes": [12, 12], "residual_blocks": 2, "num_masks": 3}),
    _spec("made", "bernoulli", 5, order="random", options={"hidden_sizes": [12], "residual_blocks": 1, "num_masks": 3},
          seed=1),
    _spec("made", "bernoulli", 6, order="random", options={"hidden_sizes": [3, 2]}, seed=4),
    _spec("made", "categorical3", 1, context_size=2, options={"hidden_sizes": [4]}),
    _spec("nade", "bernoulli", 1, options={"hidden_size": 4}),
    _spec("fvsbn", "mog2", 1, context_size=2),
]


def _member_id(spec_member: tuple) -> str:
    return f"{spec_member[0].id}-mask{spec_member[1]}"


def _spec_id(spec: ModelSpec) -> str:
    return spec.id


def parameter_lists(specs: Sequence[ModelSpec]) -> Dict[str, tuple]:
    """``{fixture name: (values, id function)}`` for a list of specs (module docstring)."""
    specs = list(specs)
    members = [(s, m) for s in specs for m in range(s.num_masks)]
    return {
        "ar_spec": (specs, _spec_id),
        "ar_discrete_spec": ([s for s in specs if s.is_discrete], _spec_id),
        "ar_mog_spec": ([s for s in specs if not s.is_discrete], _spec_id),
        "ar_ensemble_spec": ([s for s in specs if s.num_masks > 1], _spec_id),
        "ar_member": (members, _member_id),
        "ar_mog_member": ([sm for sm in members if not sm[0].is_discrete], _member_id),
        "ar_context_member": ([sm for sm in members if sm[0].context_size is not None], _member_id),
        "ar_model": (list(dict.fromkeys(s.model for s in specs)), str),
    }


_PARAMS = parameter_lists(SPECS)
DISCRETE_SPECS = _PARAMS["ar_discrete_spec"][0]
MOG_SPECS = _PARAMS["ar_mog_spec"][0]
ENSEMBLE_SPECS = _PARAMS["ar_ensemble_spec"][0]
MEMBER_SPECS = _PARAMS["ar_member"][0]


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
    # A test module may run the generic tests over its own models (a new conditioner's file
    # sets ``AR_SPECS = specs_for("its-name")``); every other module gets the global lists.
    specs = getattr(metafunc.module, "AR_SPECS", None)
    params = _PARAMS if specs is None else parameter_lists(specs)
    for name, (values, make_id) in params.items():
        if name in metafunc.fixturenames and not any(
            name in m.args[0] for m in metafunc.definition.iter_markers("parametrize")
        ):
            metafunc.parametrize(name, values, ids=[make_id(v) for v in values])
