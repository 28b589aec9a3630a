"""The pyro-ar program end to end: fit/sample/evaluate in subprocesses and in process, and
a clear error with a non-zero exit (and no output directory) for every bad input."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

import pyro_ar
from pyro_ar.program import cli, data_files
from pyro_ar.checkpoint import load_checkpoint
from pyro_ar.program.data_files import load_dataset
from pyro_ar.program.training import evaluate_nll

MODELS = ("fvsbn", "nade", "made")
CONDITIONALS = ("bernoulli", "categorical", "mog")
COMBOS = [(m, c) for m in MODELS for c in CONDITIONALS]
# A small budget: one epoch on 100 training rows, tiny networks.
TINY = ["--epochs", "1", "--max-train", "100", "--batch-size", "50", "--num-samples", "16"]
#: Each model's own size flag (from the registry), tiny.
SIZES = {"fvsbn": [], "nade": ["--hidden-size", "8"], "made": ["--hidden-sizes", "8"]}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _command(model: str) -> list:
    # One model runs through the installed console script, the others through `python -m`.
    script = shutil.which("pyro-ar", path=str(Path(sys.executable).parent)) or shutil.which("pyro-ar")
    if model == "made" and script:
        return [script]
    return [sys.executable, "-m", "pyro_ar"]


def _run(args: list, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every model x conditional fitted once, three subprocesses at a time."""
    root = tmp_path_factory.mktemp("runs")

    def fit(combo):
        model, conditional = combo
        out = root / f"{model}-{conditional}"
        cmd = _command(model) + ["fit", "--model", model, "--conditional", conditional, *TINY, *SIZES[model]]
        cmd += ["--out", str(out)]
        if (model, conditional) == ("made", "mog"):
            cmd += ["--min-scale", "0.05", "--activation", "tanh"]
        return combo, (_run(cmd), out)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(fit, COMBOS))


def _assert_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50 and image.shape[2] in (3, 4)
    assert image.std() > 0  # not a blank canvas
    return image


# In-process runs of main() set the thread count and the global seed, as the program does.
pytestmark = pytest.mark.usefixtures("restore_torch_state")


@pytest.mark.parametrize("model, conditional", COMBOS, ids=[f"{m}-{c}" for m, c in COMBOS])
def test_fit_end_to_end(runs, model, conditional):
    proc, out = runs[(model, conditional)]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test NLL:" in proc.stdout and "bits/dim" in proc.stdout
    assert "loss=" in proc.stderr  # the tqdm bar with the running loss
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.OUTPUT_FILES)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers
    _assert_png(out / "samples.png")
    _assert_png(out / "learning_curve.png")

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == model and metrics["conditional"] == conditional and metrics["event_size"] == 64
    for key in ("test_nll", "valid_nll", "test_bits_per_dim", "first_step_loss"):
        assert math.isfinite(metrics[key]), key
    assert metrics["test_bits_per_dim"] == pytest.approx(metrics["test_nll"] / (64 * math.log(2)))
    assert metrics["num_train"] == 100 and metrics["epochs_run"] == 1 and len(metrics["history"]["valid_nll"]) == 1
    if conditional == "mog":
        # made-mog ran with --min-scale 0.05 and --activation tanh; the others keep the defaults.
        reloaded = load_checkpoint(out / "model.pt").model
        assert reloaded.conditional.min_scale == (0.05 if model == "made" else 1e-2)
        if model == "made":
            assert reloaded.config()["activation"] == "tanh" and isinstance(reloaded.conditioner.activation, torch.nn.Tanh)
        assert metrics["density"].startswith("continuous")
        assert math.isfinite(metrics["test_nll_data_units"]) and math.isfinite(metrics["test_bits_per_dim_discrete"])
    else:
        assert metrics["density"].startswith("discrete") and metrics["test_nll"] > 0

    # The checkpoint reloads to the same model and evaluates to the same NLL.
    ckpt = load_checkpoint(out / "model.pt")
    assert type(ckpt.model) is getattr(pyro_ar, model.upper())
    assert ckpt.extra["conditional"] == conditional and ckpt.extra["data"] == "digits"
    data = load_dataset("digits", conditional, preprocessing=ckpt.extra["preprocessing"])
    assert evaluate_nll(ckpt.model, data.test) == pytest.approx(metrics["test_nll"], rel=1e-6)


def test_evaluate_and_sample_subcommands(runs, tmp_path, capsys):
    for (model, conditional), (proc, out) in runs.items():
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics = json.loads((out / "metrics.json").read_text())
        assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-6) and report["num_examples"] == 300

        values = tmp_path / f"{model}-{conditional}.npy"
        assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "10", "--out", str(values)]) == 0
        assert f"wrote 10 samples to {values}" in capsys.readouterr().out
        x = np.load(values)
        assert x.shape == (10, 64) and np.isfinite(x).all()
        if conditional == "bernoulli":
            assert set(np.unique(x)) <= {0.0, 1.0}
        elif conditional == "categorical":
            assert set(np.unique(x)) <= {0.0, 1.0, 2.0, 3.0}  # 4 grey levels by default
    png = tmp_path / "grid.png"
    out = runs[("nade", "categorical")][1]
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "7", "--out", str(png)]) == 0
    _assert_png(png)


def test_evaluate_in_a_subprocess_on_another_split(runs):
    proc, out = runs[("fvsbn", "bernoulli")]
    checkpoint = str(out / "model.pt")
    command = ["evaluate", "--checkpoint", checkpoint, "--data", "digits", "--split", "valid", "--json"]
    result = _run([sys.executable, "-m", "pyro_ar", *command])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    assert report["split"] == "valid" and report["valid_nll"] == pytest.approx(metrics["valid_nll"], rel=1e-6)


# ---- in-process runs: reproducibility, overwrite, atomic output --------------------------------------


def _fit_args(out: Path, *extra: str) -> list:
    return ["fit", "--model", "made", *TINY, *SIZES["made"], "--no-progress", "--out", str(out), *extra]


def test_same_seed_same_numbers(tmp_path, capsys):
    results = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert cli.main(_fit_args(tmp_path / name, "--seed", seed, "--num-masks", "2")) == 0
        results.append(json.loads((tmp_path / name / "metrics.json").read_text()))
    a, b, c = results
    for key in ("first_step_loss", "test_nll", "valid_nll"):
        assert a[key] == b[key], key
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["first_step_loss"] != c["first_step_loss"]


def test_overwrite_replaces_only_the_runs_own_files(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "mydata.csv").write_text("1,2\n")
    assert cli.main(_fit_args(out)) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mydata.csv"]
    assert cli.main(_fit_args(out, "--overwrite")) == 0
    first = (out / "model.pt").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted([*cli.OUTPUT_FILES, "mydata.csv"])
    assert (out / "mydata.csv").read_text() == "1,2\n"  # the user's file is never touched
    assert cli.main(_fit_args(out, "--overwrite", "--seed", "9")) == 0
    assert (out / "model.pt").read_bytes() != first and (out / "mydata.csv").read_text() == "1,2\n"
    assert not [p for p in [*tmp_path.iterdir(), *out.iterdir()] if p.name.startswith(".")]


def test_failure_while_writing_leaves_no_output(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(cli, "save_learning_curve", broken)
    assert cli.main(_fit_args(tmp_path / "run")) == 1
    assert list(tmp_path.iterdir()) == []
    # An existing run survives a failed --overwrite.
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    assert cli.main(_fit_args(tmp_path / "run", "--overwrite")) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]


# ---- bad inputs: a clear message, exit status 1, nothing written, no training -----------------------


@pytest.fixture
def no_training(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("training started despite a bad input")

    monkeypatch.setattr(cli, "train", fail)


def _bad_files(tmp_path: Path) -> dict:
    np.save(tmp_path / "flat.npy", np.zeros(10))
    (tmp_path / "words.csv").write_text("1,0\n0,one\n1,1\n")
    np.save(tmp_path / "grey.npy", np.arange(30.0).reshape(10, 3))
    np.save(tmp_path / "cats.npy", np.tile([0, 1, 3], (10, 1)))
    return {
        "missing": ([str(tmp_path / "nope.npy")], "does not exist"),
        "shape": ([str(tmp_path / "flat.npy")], r"has shape \(10,\); expected a 2-D array"),
        "non-numeric": ([str(tmp_path / "words.csv")], r"line 2, column 2: 'one' is not a number"),
        "not-binary": ([str(tmp_path / "grey.npy")], "do not fit the bernoulli conditional"),
        "too-many-levels": (
            [str(tmp_path / "cats.npy"), "--conditional", "categorical", "--levels", "2"],
            "do not fit the categorical conditional with 2 levels",
        ),
    }


@pytest.mark.parametrize("case", ["missing", "shape", "non-numeric", "not-binary", "too-many-levels"])
def test_bad_data_is_refused_before_training(tmp_path, capsys, no_training, case):
    args, message = _bad_files(tmp_path)[case]
    out = tmp_path / "out"
    assert cli.main(["fit", "--out", str(out), "--data", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pyro-ar: error:")
    assert re.search(message, err), err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_fashion_mnist_is_refused(tmp_path, capsys, no_training, monkeypatch):
    monkeypatch.setattr(data_files, "FASHION_MNIST_DIRS", (str(tmp_path / "none"),))
    monkeypatch.delenv("PYRO_AR_FASHION_MNIST_DIR", raising=False)
    assert cli.main(["fit", "--data", "fashion-mnist", "--out", str(tmp_path / "out")]) == 1
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bad_options_are_refused(tmp_path, capsys, no_training):
    out = str(tmp_path / "out")
    assert cli.main(["fit", "--levels", "3", "--out", out]) == 1
    with_levels = ", ".join(e.name for e in pyro_ar.registry.head_entries() if e.data_option is not None)
    assert f"--levels applies to heads with levels ({with_levels}) only" in capsys.readouterr().err
    assert cli.main(["fit", "--min-scale", "0.1", "--out", out]) == 1
    assert "--min-scale applies to --conditional mog only" in capsys.readouterr().err
    # Which models own an option is the registry's to say (more models share hidden_size, ...).
    def owners(option: str) -> str:
        return " / ".join(e.name for e in pyro_ar.registry.conditioner_entries()
                          if option in {o.name for o in e.model_options})

    assert cli.main(["fit", "--model", "nade", "--num-masks", "2", "--out", out]) == 1
    assert f"--num-masks applies to --model {owners('num_masks')} only, not nade" in capsys.readouterr().err
    assert cli.main(["fit", "--model", "fvsbn", "--activation", "tanh", "--out", out]) == 1
    assert f"--activation applies to --model {owners('activation')} only, not fvsbn" in capsys.readouterr().err
    assert cli.main(["fit", "--model", "made", "--hidden-size", "8", "--out", out]) == 1
    assert f"--hidden-size applies to --model {owners('hidden_size')} only, not made" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["fit", "--device", "cuda", "--out", out]) == 1
        assert "CUDA is not available" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fit", "--epochs", "0"])
    assert exit_info.value.code == 2 and "expected a positive integer" in capsys.readouterr().err
    # A value the head refuses is reported by the head's own check, before any training.
    assert cli.main(["fit", "--conditional", "mog", "--min-scale", "-1", "--out", out]) == 1
    assert "min_scale must be a positive finite number, got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint_is_refused(tmp_path, capsys):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    for command in (["evaluate"], ["sample", "--out", str(tmp_path / "s.png")]):
        assert cli.main([*command, "--checkpoint", str(bad)]) == 1
        assert "corrupt or truncated" in capsys.readouterr().err
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_evaluate_refuses_data_of_another_size(runs, tmp_path, capsys):
    np.save(tmp_path / "small.npy", np.zeros((10, 5)))
    ckpt = runs[("fvsbn", "bernoulli")][1] / "model.pt"
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "small.npy")]) == 1
    assert "has 5 variables per example, but the checkpoint's model has event_size=64" in capsys.readouterr().err


def test_bad_input_exits_non_zero_in_a_subprocess(tmp_path):
    out = tmp_path / "out"
    result = _run([sys.executable, "-m", "pyro_ar", "fit", "--data", str(tmp_path / "nope.csv"), "--out", str(out)])
    assert result.returncode == 1
    assert "pyro-ar: error:" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_shared_option_shows_each_models_own_help():
    from pyro_ar.program.options import model_flags

    for flag in model_flags().values():
        texts = {h.rstrip(".").replace("``", "") for h in flag.helps}
        assert len(flag.helps) == len(flag.owners)
        if len(texts) > 1:  # e.g. hidden_size: NADE's shared units, the RNN's state size, ...
            for owner, text in zip(flag.owners, flag.helps):
                assert f"{owner}: {text.rstrip('.').replace('``', '')}" in flag.help
        else:
            assert flag.help == texts.pop()
    hidden = model_flags()["hidden_size"]
    assert "rnn: " in hidden.help and "nade: " in hidden.help
