"""The training loop (pyro_ar.program.training) on one process, and on two under torchrun (DDP, gloo)."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

import pyro_ar
from pyro_ar.program import cli
from pyro_ar.program.datasets import load_digits
from pyro_ar.program.training import (
    DistributedInfo,
    NegativeLogLikelihood,
    bits_per_dim,
    evaluate_nll,
    setup_distributed,
    train,
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
# Same seed and global batch for both runs: 300 rows, batches of 100 (50 per process).
SMALL = [
    "fit", "--model", "made", "--num-masks", "2", "--hidden-sizes", "16", "--epochs", "2", "--max-train", "300",
    "--batch-size", "100", "--device", "cpu", "--no-progress", "--seed", "5",
]  # fmt: skip


# In-process runs of main() set the thread count and the global seed, as the program does.
pytestmark = pytest.mark.usefixtures("restore_torch_state")


# The sequence and image conditioners under torchrun too (tiny sizes; fewer variables than
# MADE's run would not change what is checked: the DDP wrapper, sharding and rank-0 output).
OTHER_MODELS = {
    "rnn": ["--hidden-size", "8"],
    "transformer": ["--d-model", "8", "--num-heads", "2", "--num-layers", "1"],
    "pixelcnn": ["--channels", "4", "--num-layers", "2", "--kernel-size", "3"],
}


def _small(model: str) -> list:
    if model == "made":
        return SMALL
    start = SMALL.index("--epochs")
    return ["fit", "--model", model, *OTHER_MODELS[model], *SMALL[start:]]


@pytest.mark.parametrize("model", ["made", *OTHER_MODELS])
def test_torchrun_two_processes_match_one(tmp_path, capsys, model):
    out2 = tmp_path / "two"
    small = _small(model)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.Popen(
        [*launcher, "-m", "pyro_ar", *small, "--out", str(out2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:  # the one-process reference runs meanwhile, in this process
        assert cli.main([*small, "--out", str(tmp_path / "one")]) == 0
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.count("test NLL:") == 1 and "2 process(es)" in stdout  # rank 0 alone prints
    assert sorted(p.name for p in out2.iterdir()) == sorted(cli.OUTPUT_FILES)  # rank 0 alone writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]

    one = json.loads((tmp_path / "one" / "metrics.json").read_text())
    two = json.loads((out2 / "metrics.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["first_step_loss"] == pytest.approx(one["first_step_loss"], rel=1e-6)
    # Same trajectory up to float summation order: gradients are averaged over equal shards.
    assert two["history"]["train_loss"] == pytest.approx(one["history"]["train_loss"], rel=1e-5)
    assert two["test_nll"] == pytest.approx(one["test_nll"], rel=1e-5)
    assert two["history"]["steps"] == one["history"]["steps"] == 6
    # The checkpoint written by rank 0 holds the trained (synchronized) weights.
    data = load_digits("test", "bernoulli")
    assert evaluate_nll(pyro_ar.load(out2 / "model.pt"), data) == pytest.approx(two["test_nll"], rel=1e-6)


# ---- the loop on one process ------------------------------------------------------------------------


def test_single_process_without_torchrun_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = setup_distributed("cpu")
    assert (info.rank, info.world_size, info.enabled, info.is_main) == (0, 1, False, True)
    assert info.device == torch.device("cpu")


def test_loss_module_and_units():
    torch.manual_seed(0)
    net = pyro_ar.NADE(event_size=64, hidden_size=8).double()
    x = load_digits("valid", "bernoulli").double()
    loss = NegativeLogLikelihood(net)(x)
    assert torch.allclose(loss, -net().log_prob(x).mean())
    # evaluate_nll batches (7 rows at a time here) and averages exactly.
    assert evaluate_nll(net, x, batch_size=7) == pytest.approx(float(loss.detach()), rel=1e-12)
    assert bits_per_dim(64 * math.log(2.0), 64) == pytest.approx(1.0)


def test_train_improves_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    net = pyro_ar.MADE(event_size=64, hidden_sizes=[64])
    train_x, valid_x = load_digits("train", "bernoulli")[:40], load_digits("valid", "bernoulli")[:100]
    before = evaluate_nll(net, valid_x)
    history = train(net, train_x, valid_x, epochs=60, batch_size=20, lr=1e-2, patience=2, progress=False)
    # 40 rows overfit fast: validation turns up and training stops `patience` epochs after the best.
    assert history.stopped_early and history.epochs_run == history.best_epoch + 2
    assert len(history.valid_nll) == len(history.train_loss) == history.epochs_run
    assert history.steps == 2 * history.epochs_run and math.isfinite(history.first_step_loss)
    assert min(history.valid_nll) == history.best_valid_nll == history.valid_nll[history.best_epoch - 1]
    # The parameters of the best epoch are restored, not those of the last one.
    assert evaluate_nll(net, valid_x) == pytest.approx(history.best_valid_nll, rel=1e-9)
    assert history.valid_nll[-1] > history.best_valid_nll and history.best_valid_nll < before - 5


def test_training_is_reproducible_with_random_masks():
    x = load_digits("train", "bernoulli")[:60]
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        net = pyro_ar.MADE(event_size=64, hidden_sizes=[16], num_masks=3)
        torch.manual_seed(123)  # the loop's own generators must not depend on the global RNG
        train(net, x, x, epochs=2, batch_size=20, seed=4, progress=False)
        states.append(net.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_train_rejects_bad_settings():
    net, x = pyro_ar.FVSBN(event_size=3), torch.zeros(10, 3)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        train(net, x, x, batch_size=0)
    with pytest.raises(ValueError, match="lr must be a positive float"):
        train(net, x, x, lr=-1.0)
    with pytest.raises(ValueError, match=r"batch_size=3 must be divisible by the number of processes \(2\)"):
        train(net, x, x, batch_size=3, info=DistributedInfo(world_size=2))
