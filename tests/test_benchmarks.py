"""Smoke runs of the benchmark scripts (``--quick``): they must keep working as the package
changes, and write JSON results whose numbers are consistent. The real runs and their
tables live in ``benchmarks/README.md``; nothing here times anything against a threshold."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / name), "--threads", "1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)


def test_speed_quick_run(tmp_path):
    out = tmp_path / "speed.json"
    proc = run_script("speed.py", "--quick", "--no-memory", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "command", "machine", "settings", "targets"} <= set(result)
    sampling = result["sampling"]
    for name in ("FVSBN", "NADE", "MADE", "MADE 2 layers", "MoG-MADE (K=5)"):
        row = sampling[name]
        assert row["log_prob_ms"] > 0 and row["sample_ms"] > 0
        assert row["sample_over_log_prob"] == pytest.approx(row["sample_ms"] / row["log_prob_ms"])
    # FVSBN's and MADE's blocks (n = 64 in a quick run: two blocks of 32) take 1 to 32 rounds.
    for name in ("FVSBN", "MADE", "MADE 2 layers"):
        assert 1 <= sampling[name]["rounds_per_block"] <= 32
    assert sampling["NADE"]["rounds_per_block"] is None and sampling["MoG-MADE (K=5)"]["rounds_per_block"] is None
    assert "needs n = 784" in sampling["trained_skipped"]
    assert set(result["targets"]) >= {"FVSBN sampling <= 5x log_prob", "NADE sampling <= 5x log_prob"}
    assert "## Sampling a batch of 16" in proc.stdout


def test_likelihood_quick_run(tmp_path):
    out = tmp_path / "likelihood.json"
    proc = run_script("likelihood.py", "--quick", "--groups", "digits", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 16  # 8 models (FVSBN, NADE, 4 MADEs, RNN, Transformer) x (binary, 4 grey levels)
    for row in rows:
        assert math.isfinite(row["test_nll"]) and row["test_nll"] > 0
        assert row["test_bits_per_dim"] == pytest.approx(row["test_nll"] / (64 * math.log(2)))
        assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 5
    assert "| digits 8x8, binarized |" in proc.stdout
    assert {"pyro_ar RNN (GRU, H=128)", "pyro_ar Transformer (D=64, 4 heads, 2 layers)"} <= {r["model"] for r in rows}


def test_likelihood_words_quick_run(tmp_path):
    out = tmp_path / "likelihood_words.json"
    proc = run_script("likelihood.py", "--quick", "--groups", "words", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"].split(" (")[0].split(" 1x")[0] for r in rows] == [
        "pyro_ar NADE", "pyro_ar MADE", "pyro_ar RNN", "pyro_ar Transformer"]
    for row in rows:
        assert row["dims"] == 13 and row["train_rows"] == 2000 and row["epochs_run"] == 1
        # 27 codes: a model no better than uniform would score 13 ln 27 = 42.8 nats per word
        assert 0 < row["test_nll"] < 13 * math.log(27) + 5
        symbols = row["symbols_per_word"]["test"]
        assert 2 <= symbols <= 13  # letters up to and including the end symbol
        assert row["test_bits_per_character"] == pytest.approx(row["test_nll"] / (math.log(2) * symbols))
        assert len(row["samples"]) == 8 and all(set(w) <= set("abcdefghijklmnopqrstuvwxyz") for w in row["samples"])
    assert "| words (13 codes of 27) |" in proc.stdout and "bits/char" in proc.stdout


def test_ensemble_digits_quick_run(tmp_path):
    out = tmp_path / "ensemble.json"
    proc = run_script("ensemble_digits.py", "--epochs", "6", "--hidden-sizes", "16", "--num-masks", "2",
                      "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    # Validated every 5 epochs and after the last one (the one training loop's valid_every).
    assert result["training"]["best_epoch"] in (5, 6)
    nll = result["test_nll_nats"]
    assert len(nll["members"]) == 2 and all(math.isfinite(v) for v in nll["members"])
    # The exact mixture is at least as good as its average member (log-sum-exp is concave).
    assert nll["ensemble"] <= nll["average_member"] + 1e-9


def test_pixelcnn_quick_run(tmp_path):
    out = tmp_path / "pixelcnn.json"
    proc = run_script("pixelcnn.py", "--quick", "--parts", "speed,digits", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for row in result["speed"]["rows"]:
        assert row["cached_sample_ms"] > 0 and row["naive_over_log_prob"] > 0
        assert row["cached_over_log_prob"] == pytest.approx(row["cached_sample_ms"] / row["log_prob_ms"])
    (digits,) = result["likelihood"]
    assert math.isfinite(digits["test_nll"]) and digits["target"] == 16.5 and digits["epochs_run"] <= 2
    assert "## Test NLL (nats)" in proc.stdout


def test_sequence_quick_run(tmp_path):
    out = tmp_path / "sequence.json"
    proc = run_script("sequence.py", "--quick", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert {"date", "command", "machine", "settings", "sizes", "targets"} <= set(result)
    assert set(result["sizes"]) == {"64", "16"}
    for n, size in result["sizes"].items():
        assert set(size["log_prob"]) == set(size["sampling"]) == {"MADE", "RNN", "Transformer"}
        for name, row in size["log_prob"].items():
            for key in ("forward_over_made", "forward_backward_over_made"):
                assert math.isfinite(row[key]) and row[key] > 0
            assert row["forward_over_made"] == pytest.approx(
                row["forward"]["ms"] / size["log_prob"]["MADE"]["forward"]["ms"])
        for name, row in size["sampling"].items():
            for key in ("sample_over_log_prob", "naive_over_log_prob", "naive_over_ours"):
                assert math.isfinite(row[key]) and row[key] > 0
            assert row["sample_over_log_prob"] == pytest.approx(row["sample_ms"] / row["log_prob_ms"])
            assert row["naive_over_ours"] == pytest.approx(row["naive_sample_ms"] / row["sample_ms"])
            assert row["naive_steps_timed"] == 4
    assert set(result["targets"]) == {
        f"{name} (n = {n})" for n in (64, 16) for name in (
            "RNN sampling <= 5x log_prob", "Transformer sampling <= 10x log_prob",
            "Transformer cached sampling >= 20x faster than naive")}
    assert all(isinstance(ok, bool) for ok in result["targets"].values())
    assert "## n = 64, batch 8: sampling" in proc.stdout
