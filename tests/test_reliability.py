"""Defects found by a bad-input probe (the reliability issue), each kept out by a test:
contexts of another dtype, empty batches, bad expand shapes, non-finite scores in ``fit``
and ``evaluate``, bad thresholds and seeds, malformed checkpoints and metadata, size limits,
and saving to a folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import pyro_ar
from pyro_ar.checkpoint import load_checkpoint
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians
from pyro_ar.program import cli

pytestmark = pytest.mark.usefixtures("restore_torch_state")

HEADS = [Bernoulli(), Categorical(3), MixtureOfGaussians(2)]


# ---- the library ------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights, context", [(torch.float64, torch.float32), (torch.float32, torch.float64)])
def test_a_context_of_another_dtype_is_converted(weights, context):
    net = pyro_ar.MADE(4, [8], context_size=2).to(weights)
    ctx = torch.randn(3, 2, dtype=torch.float64)
    x = torch.randint(0, 2, (3, 4)).to(weights)
    expected = net(ctx.to(weights)).log_prob(x)
    d = net(ctx.to(context))
    assert d.context.dtype == weights
    torch.testing.assert_close(d.log_prob(x), expected)
    assert d.sample((2,)).shape == (2, 3, 4)


@pytest.mark.parametrize("head", HEADS, ids=repr)
@pytest.mark.parametrize("num_masks", [1, 3])
def test_empty_batches_give_empty_results(head, num_masks):
    net = pyro_ar.MADE(4, [8], num_masks=num_masks, conditional=head)
    d = net()
    x = d.sample((0,))
    assert x.shape == (0, 4) and d.log_prob(x).shape == (0,)
    assert d.sample((0, 2)).shape == (0, 2, 4) and d.log_prob(d.sample((2, 0))).shape == (2, 0)
    cond = pyro_ar.MADE(4, [8], num_masks=num_masks, conditional=head, context_size=2)(torch.zeros(0, 2))
    assert cond.sample((3,)).shape == (3, 0, 4) and cond.log_prob(torch.zeros(0, 4)).shape == (0,)
    if head.has_rsample:
        assert d.rsample((0,)).shape == (0, 4)


def test_expand_refuses_negative_and_incompatible_shapes():
    d = pyro_ar.NADE(4, 8)()
    with pytest.raises(ValueError, match="non-negative sizes"):
        d.expand((-1,))
    with pytest.raises(ValueError, match="cannot expand batch_shape"):
        pyro_ar.NADE(4, 8, context_size=2)(torch.zeros(3, 2)).expand((2,))
    assert d.expand((0,)).sample().shape == (0, 4)


@pytest.mark.parametrize("seed", ["a", 2.5, -1, 2**70, True])
def test_bad_seeds_are_named(seed):
    with pytest.raises(ValueError, match="seed must be None or an int"):
        pyro_ar.FVSBN(4, order="random", seed=seed)


def test_save_refuses_a_folder(tmp_path):
    net = pyro_ar.FVSBN(3)
    with pytest.raises(ValueError, match="it is a folder"):
        pyro_ar.save(net, tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        pyro_ar.save(net, tmp_path / "missing" / "m.pt")


def test_a_crafted_checkpoint_is_refused_before_allocating(tmp_path):
    """A 4 KB checkpoint whose config asks for a huge model: shapes are compared on the meta
    device, so nothing of that size is allocated."""
    net = pyro_ar.FVSBN(3)
    pyro_ar.save(net, tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["config"]["event_size"] = 10**7  # FVSBN: 10^14 weights, 400 TB
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="needs about .* GiB"):
        pyro_ar.load(tmp_path / "m.pt")
    payload["config"]["event_size"] = 10**5  # 40 GB: still too large here
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="GiB|shape"):
        pyro_ar.load(tmp_path / "m.pt")


def test_integer_parameters_and_malformed_state_are_refused(tmp_path):
    pyro_ar.save(pyro_ar.FVSBN(3), tmp_path / "m.pt")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["state_dict"]["conditioner.weight"] = payload["state_dict"]["conditioner.weight"].long()
    torch.save(payload, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="'conditioner.weight' has dtype torch.int64"):
        pyro_ar.load(tmp_path / "m.pt")


def test_an_unsafe_checkpoint_gets_one_line(tmp_path):
    torch.save({"format": "pyro_ar.checkpoint", "evil": object()}, tmp_path / "m.pt")  # needs unpickling
    with pytest.raises(ValueError) as info:
        pyro_ar.load(tmp_path / "m.pt")
    message = str(info.value)
    assert "not a readable pyro_ar checkpoint" in message and "\n" not in message and len(message) < 600


# ---- the program ------------------------------------------------------------------------------------


TINY = ["--epochs", "1", "--max-train", "100", "--no-progress", "--num-samples", "4"]


def test_a_far_outlier_in_the_test_split_scores_finite(tmp_path, capsys):
    """A test value near float32's largest: the mixture density stays finite, so the run's
    test NLL is a number (huge), not NaN."""
    rng = np.random.default_rng(0)
    train, valid, test = rng.normal(size=(60, 3)), rng.normal(size=(10, 3)), rng.normal(size=(10, 3))
    test[0, 0] = 3e38
    np.savez(tmp_path / "d.npz", train=train, valid=valid, test=test)
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "fvsbn", "--conditional", "mog", "--data", str(tmp_path / "d.npz"),
                     *TINY, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test_nll"]) and metrics["test_nll"] > 1e10


@pytest.mark.parametrize("where, split", [("training", "validation"), ("cli", "test")])
def test_a_non_finite_score_stops_fit(tmp_path, capsys, monkeypatch, where, split):
    """Should a score still be NaN, the run fails naming the split, and writes nothing."""
    from pyro_ar.program import training

    module = training if where == "training" else cli
    real = module.evaluate_nll
    monkeypatch.setattr(module, "evaluate_nll", lambda *a, **k: float("nan") if real(*a, **k) else 0.0)
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "fvsbn", *TINY, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"the {split} NLL" in err and "nan" in err and err.startswith("pyro-ar: error:")
    assert not out.exists()


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_thresholds_are_refused(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as info:
        cli.main(["fit", f"--threshold={bad}", "--out", str(tmp_path / "o")])
    assert info.value.code == 2 and "expected a finite number" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [str(2**70), "-1", "x"])
def test_bad_cli_seeds_are_refused(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as info:
        cli.main(["fit", "--seed", bad, "--out", str(tmp_path / "o")])
    assert info.value.code == 2 and "seed" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--hidden-sizes", "1000000,1000000"], ["--hidden-sizes", "10000000"]])
def test_huge_models_are_refused_before_training(tmp_path, capsys, flags):
    try:
        code = cli.main(["fit", "--model", "made", *flags, "--out", str(tmp_path / "o")])
    except SystemExit as exit_info:  # refused by the parser
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (1, 2) and ("GiB" in err or "integer in 1..1000000" in err)
    assert not (tmp_path / "o").exists()


def test_huge_categorical_levels_in_a_file_are_refused(tmp_path, capsys):
    rows = np.zeros((30, 3), dtype=np.int64)
    rows[0, 0] = 99999999999
    np.savetxt(tmp_path / "c.csv", rows, delimiter=",", fmt="%d")
    code = cli.main(["fit", "--model", "fvsbn", "--conditional", "categorical", "--data", str(tmp_path / "c.csv"),
                     *TINY, "--out", str(tmp_path / "o")])
    assert code == 1 and "num_categories must be in 2..16777216, got 100000000000" in capsys.readouterr().err


def test_huge_sample_requests_are_refused(tmp_path, capsys):
    pyro_ar.save(pyro_ar.FVSBN(784), tmp_path / "m.pt")
    with pytest.raises(SystemExit):
        cli.main(["sample", "--checkpoint", str(tmp_path / "m.pt"), "-n", str(10**12), "--out", str(tmp_path / "s.npy")])
    assert "expected a positive integer in 1..1000000" in capsys.readouterr().err
    assert cli.main(["sample", "--checkpoint", str(tmp_path / "m.pt"), "-n", "1000000", "--out",
                     str(tmp_path / "s.npy")]) == 1
    assert "GiB" in capsys.readouterr().err and not (tmp_path / "s.npy").exists()


def _fitted(tmp_path, *extra) -> tuple:
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "fvsbn", *TINY, *extra, "--out", str(out)]) == 0
    return out, torch.load(out / "model.pt", weights_only=True)


def test_metrics_are_standard_json(tmp_path):
    out, _ = _fitted(tmp_path)
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e: e.update(preprocessing="bernoulli"), "preprocessing"),
        (lambda e: e["preprocessing"].update(threshold="high"), "threshold must be a finite number"),
        (lambda e: e["preprocessing"].update(threshold=float("nan")), "threshold must be a finite number"),
        (lambda e: e.update(context="pixels"), "context 'pixels'"),
        (lambda e: e.update(context="labels"), "does not match its model's context_size"),
    ],
    ids=["prep-string", "threshold-string", "threshold-nan", "context-unknown", "context-mismatch"],
)
def test_malformed_metadata_gets_a_clear_error(tmp_path, capsys, change, message):
    out, payload = _fitted(tmp_path)
    change(payload["extra"])
    torch.save(payload, out / "model.pt")
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt")]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_short_standardization_stats_are_named(tmp_path, capsys):
    out, payload = _fitted(tmp_path, "--conditional", "mog")
    payload["extra"]["preprocessing"]["std"] = payload["extra"]["preprocessing"]["std"][:5]
    torch.save(payload, out / "model.pt")
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt")]) == 1
    assert "the standardization 'std' must be 64 finite numbers, one per variable; got 5 entries" in capsys.readouterr().err


def test_class_conditional_fit_samples_one_row_per_class(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "nade", "--hidden-size", "16", "--context", "labels", "--epochs", "2",
                     "--no-progress", "--num-samples", "30", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ckpt = load_checkpoint(out / "model.pt")
    assert metrics["context"] == "labels" and ckpt.model.context_size == 10 and ckpt.extra["context"] == "labels"
    assert ckpt.extra["class_names"] == [str(d) for d in range(10)]
    image = __import__("matplotlib.image").image.imread(out / "samples.png")
    assert image.shape[0] > 2 * image.shape[1]  # one row of 3 digits per class: 10 rows, taller than wide
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-6)
    samples = tmp_path / "s.npy"
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "5", "--label", "3",
                     "--out", str(samples)]) == 0
    assert np.load(samples).shape == (5, 64)
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "2", "--out", str(samples),
                     "--overwrite"]) == 0
    assert np.load(samples).shape == (20, 64)  # 2 per class
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "--label", "10", "--out", str(samples)]) == 1


def test_compounded_temperatures_that_underflow_are_refused():
    d = pyro_ar.FVSBN(3, conditional=Categorical(3))().tempered(1e-300)
    with pytest.raises(ValueError, match="temper the original distribution once"):
        d.tempered(1e-300)
    assert d.tempered(2.0).temperature == 2e-300


@pytest.mark.skipif(
    __import__("pyro_ar.program.data_files", fromlist=["x"])._fashion_dir() is None and os.environ.get("CI") != "true",
    reason="dataset-fashion-mnist is not installed",
)
def test_class_conditional_fit_on_fashion_mnist(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "fvsbn", "--data", "fashion-mnist", "--context", "labels", "--epochs", "1",
                     "--max-train", "200", "--no-progress", "--num-samples", "20", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["context"] == "labels" and metrics["event_size"] == 784 and np.isfinite(metrics["test_nll"])
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.model.context_size == 10 and ckpt.extra["class_names"][9] == "Ankle boot"


def test_conditional_sample_checks_its_temperature():
    d = pyro_ar.NADE(event_size=4)()
    x, mask = torch.zeros(4), torch.tensor([True, False, False, False])
    for bad in (True, 0.0, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            d.conditional_sample(x, mask, (2,), temperature=bad)


def test_conditioning_an_ensemble_twice_is_conditioning_once_on_both():
    d = pyro_ar.MADE(event_size=4, hidden_sizes=[8], num_masks=2, order_agnostic=False)()
    x = torch.tensor([1.0, 0.0, 1.0, 0.0])
    first, second = torch.tensor([True, False, False, False]), torch.tensor([False, True, False, False])
    twice, once = d.condition(x, first).condition(x, second), d.condition(x, first | second)
    torch.testing.assert_close(twice.observed_log_prob, once.observed_log_prob)
    torch.testing.assert_close(twice.log_weights, once.log_weights)
    v = d.enumerate_support()
    torch.testing.assert_close(twice.log_prob(v), once.log_prob(v))
