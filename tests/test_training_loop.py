"""The one training loop (``pyro_ar.program.training.train``) that ``pyro-ar fit`` and every
benchmark use: its options (weight decay, validation interval, no early stopping, learning-rate
decay, a time budget), and a peer model trained through it exactly like ours."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import pyro_ar
from pyro_ar.program.training import evaluate_nll, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers import PeerDensity  # noqa: E402


def data(rows: int = 64, n: int = 5, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(rows, n, generator=gen) < 0.3).float()


def test_valid_every_validates_those_epochs_and_the_last():
    torch.manual_seed(0)
    net = pyro_ar.FVSBN(5)
    history = train(net, data(), data(seed=1), epochs=7, batch_size=16, valid_every=3, patience=None, progress=False)
    assert history.valid_epochs == [3, 6, 7]
    assert len(history.valid_nll) == 3 and len(history.train_loss) == 7
    assert history.epochs_run == 7 and not history.stopped_early
    assert history.best_epoch in history.valid_epochs
    # The kept parameters are those of the best validated epoch.
    assert evaluate_nll(net, data(seed=1)) == pytest.approx(min(history.valid_nll), rel=1e-6)


def test_patience_counts_epochs_and_none_never_stops():
    torch.manual_seed(0)
    train_x, valid_x = data(32), data(200, seed=1)
    # A large learning rate overfits 32 rows at once: validation gets worse after the first epochs.
    history = train(pyro_ar.FVSBN(5), train_x, valid_x, epochs=60, batch_size=32, lr=0.5, patience=2, progress=False)
    assert history.stopped_early and history.epochs_run == history.best_epoch + 2
    history = train(pyro_ar.FVSBN(5), train_x, valid_x, epochs=15, batch_size=32, lr=0.5, patience=None,
                    progress=False)
    assert history.epochs_run == 15 and not history.stopped_early


def test_weight_decay_shrinks_the_weights():
    norms = {}
    for decay in (0.0, 1.0):
        torch.manual_seed(0)
        net = pyro_ar.FVSBN(5)
        train(net, data(), data(seed=1), epochs=20, batch_size=16, lr=0.05, weight_decay=decay, patience=None,
              progress=False)
        norms[decay] = float(net.conditioner.masked_weight().norm())
    assert norms[1.0] < 0.5 * norms[0.0]


@pytest.mark.parametrize("bad", [dict(weight_decay=-1.0), dict(weight_decay=float("nan")), dict(valid_every=0),
                                 dict(patience=0), dict(weight_decay=True)])
def test_bad_options_are_refused(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=1, progress=False, **bad)


class _IndependentBernoulli(nn.Module):
    """A peer-style density module: only ``log_prob(x)``."""

    def __init__(self, n: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(n))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.distributions.Bernoulli(logits=self.logits).log_prob(x).sum(-1)


def test_a_peer_model_trains_through_the_same_loop():
    train_x = data(400)
    peer = PeerDensity(_IndependentBernoulli(5))
    # Validated on the training rows, so the kept epoch is the one nearest the maximum likelihood.
    history = train(peer, train_x, train_x, epochs=40, batch_size=100, lr=0.1, patience=None, progress=False)
    assert history.valid_nll[-1] < history.valid_nll[0]
    # Maximum likelihood of independent Bernoullis: the probabilities go to the column means.
    mean = train_x.mean(0)
    torch.testing.assert_close(torch.sigmoid(peer.peer.logits.detach()), mean, atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="takes no context"):
        peer(torch.zeros(1, 2))


def test_train_lr_decay_multiplies_the_rate_smoothly_over_each_epoch(monkeypatch):
    used = []
    step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        used.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=3, batch_size=16, lr=0.1, lr_decay=0.5, patience=None,
          progress=False)
    assert used == pytest.approx([0.1 * 0.5 ** (k / 4) for k in range(12)], rel=1e-12)
    used.clear()
    train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=2, batch_size=16, lr=0.1, progress=False)
    assert used == [0.1] * 8  # the default keeps it constant


def test_train_max_seconds_stops_after_the_step_that_spends_the_budget():
    history = train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=5, batch_size=16, max_seconds=1e-9,
                    patience=None, progress=False)
    assert history.out_of_time and history.steps == 1 and history.epochs_run == 1
    assert history.valid_epochs == [1] and history.best_epoch == 1  # the partial epoch is validated
    history = train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=3, batch_size=16, max_seconds=1e6,
                    patience=None, progress=False)
    assert not history.out_of_time and history.steps == 12 and history.epochs_run == 3


@pytest.mark.parametrize("bad", [dict(lr_decay=0.0), dict(lr_decay=1.5), dict(lr_decay=True), dict(max_seconds=0),
                                 dict(max_seconds=-1.0), dict(max_seconds=float("nan"))])
def test_train_refuses_bad_lr_decay_and_max_seconds(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        train(pyro_ar.FVSBN(5), data(), data(seed=1), epochs=1, progress=False, **bad)
