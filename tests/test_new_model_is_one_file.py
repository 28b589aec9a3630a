"""Acceptance test of the registry: a conditioner defined only in this file, registered with
one line, is a full model: a factory, ``pyro-ar fit`` (the CLI's own code path), checkpoints,
and the whole conformance harness (the generic tests imported below run over its specs).
"""

from __future__ import annotations

import json
from typing import Optional

import torch
from torch import Tensor, nn

import pyro_ar
from pyro_ar.checkpoint import load_checkpoint
from pyro_ar.nn.base import Conditioner, IncrementalState
from pyro_ar.program import cli


class Markov(Conditioner):
    """A first-order Markov chain in the order: ``θ_{σ_k} = b + A_k e(x_{σ_{k-1}})``.

    Args:
        event_size: ``n``.
        scale: the initial spread of the transition weights.
        **common: the arguments every conditioner takes (context_size, order, seed, ...).
    """

    def __init__(self, event_size: int, scale: float = 0.5, **common):
        super().__init__(event_size, **common)
        self.transition = nn.Parameter(scale * torch.randn(event_size, self.input_size, self.param_size))

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tensor:
        order = self.order
        previous = torch.zeros_like(x)  # step k sees the value drawn at step k - 1
        previous[..., order[1:], :] = x[..., order[:-1], :]
        rank = torch.argsort(order)
        return torch.einsum("...ni,nip->...np", previous, self.transition[rank]) + self.output_offset(context)

    def incremental(self, context: Optional[Tensor], batch_shape: torch.Size) -> IncrementalState:
        return _MarkovState(self, context, batch_shape)


class _MarkovState(IncrementalState):
    def __init__(self, net: Markov, context: Optional[Tensor], batch_shape: torch.Size):
        self.net, self.order = net, net.order.tolist()
        self.offset = net.output_offset(context).expand(*batch_shape, net.event_size, net.param_size)
        self.last = None

    def params(self, step: int) -> Tensor:
        out = self.offset[..., self.order[step], :]
        return out if self.last is None else out + self.last @ self.net.transition[step]

    def observe(self, step: int, value: Tensor) -> None:
        self.last = value


# The one registration line.
MarkovModel = pyro_ar.register(Markov, "markov", example={"scale": 0.7})


# ---- the conformance harness over the new model ---------------------------------------------------

# conftest.py parametrizes the generic tests of this module over AR_SPECS (every head, with and
# without context, and several orders) instead of the built-in models.
from conftest import specs_for  # noqa: E402

AR_SPECS = specs_for("markov")

from test_ar_property import test_ar_property_by_jacobian, test_context_reaches_every_output  # noqa: E402,F401
from test_conformance import *  # noqa: E402,F401,F403
from test_sampling_noise import test_sample_equals_naive_sampler  # noqa: E402,F401


# ---- factory, program, checkpoint ------------------------------------------------------------------


def test_registration_gives_a_factory_and_a_distribution_class():
    assert pyro_ar.Markov is MarkovModel is pyro_ar.models.factory("markov")
    net = MarkovModel(event_size=4, scale=0.1)
    d = net()
    assert isinstance(d, pyro_ar.Autoregressive) and isinstance(d, pyro_ar.distributions.Markov)
    assert net.config() == {
        "event_size": 4, "context_size": None, "order": None, "seed": None, "scale": 0.1,
        "conditional": {"name": "bernoulli"},
    }
    total = d.log_prob(d.enumerate_support()).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0), atol=1e-5, rtol=0)


def test_fit_saves_and_loads_through_the_cli(tmp_path, capsys, restore_torch_state):
    out = tmp_path / "run"
    argv = ["fit", "--model", "markov", "--scale", "0.2", "--epochs", "2", "--max-train", "200",
            "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    assert "--scale" in cli.build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "markov" and metrics["config"]["scale"] == 0.2
    ckpt = load_checkpoint(out / "model.pt")
    assert type(ckpt.model) is MarkovModel and ckpt.model.config()["scale"] == 0.2
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(report["test_nll"] - metrics["test_nll"]) < 1e-6 * abs(metrics["test_nll"])
    assert cli.main(["fit", "--model", "nade", "--scale", "0.2", "--out", str(tmp_path / "x")]) == 1
    assert "--scale applies to --model markov only, not nade" in capsys.readouterr().err
