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
    assert len(rows) == 12  # 6 models x (binary, 4 grey levels)
    for row in rows:
        assert math.isfinite(row["test_nll"]) and row["test_nll"] > 0
        assert row["test_bits_per_dim"] == pytest.approx(row["test_nll"] / (64 * math.log(2)))
        assert 1 <= row["best_epoch"] <= row["epochs_run"] <= 5
    assert "| digits 8x8, binarized |" in proc.stdout
