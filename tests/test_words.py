"""The words data set (``--data words``): the shipped file, its encoding and split, categorical
preparation with all 27 levels, bits per character, and ``samples.txt`` from ``pyro-ar fit``."""

from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_ar.program import cli
from pyro_ar.program.data_files import load_dataset, source_names
from pyro_ar.program.sources.words import WORDS_ALPHABET, load_words

ROOT = Path(__file__).resolve().parents[1]
DICTIONARY = Path("/usr/share/dict/american-english")


def test_the_shipped_words_are_well_formed():
    raw = load_words()
    assert "words" in source_names() and raw.alphabet == WORDS_ALPHABET and len(WORDS_ALPHABET) == 27
    sizes = {k: v.shape for k, v in raw.splits.items()}
    assert sizes == {"train": (50678, 13), "valid": (5000, 13), "test": (5000, 13)}
    codes = np.concatenate(list(raw.splits.values())).astype(np.int64)
    assert codes.min() == 0 and codes.max() == 26
    assert (codes[:, -1] == 0).all(), "every word ends with an end symbol"
    assert (codes[:, 0] > 0).all(), "no empty word"
    ended = np.cumsum(codes == 0, axis=1) > 0
    assert (codes[ended] == 0).all(), "nothing but padding after the end symbol"
    rows = {bytes(r) for r in codes.astype(np.uint8)}
    assert len(rows) == len(codes), "words are unique (across splits too)"
    assert (ROOT / "pyro_ar/program/data/words.npz").stat().st_size < 400_000


def test_categorical_preparation_uses_the_whole_alphabet():
    data = load_dataset("words", "categorical", max_train=20)
    assert data.preprocessing["levels"] == 27 and data.train.dtype == torch.long
    assert data.decode(torch.tensor([[3, 1, 20, 0, 0], [1, 2, 3, 4, 5]])) == ["cat", "abcde"]
    torch.testing.assert_close(data.symbols_per_row(torch.tensor([[3, 1, 20, 0, 0], [1, 2, 3, 4, 5]])),
                               torch.tensor([4, 5]))
    words = data.decode(data.test)
    assert all(re.fullmatch("[a-z]{1,12}", w) for w in words)
    symbols = data.symbols_per_row(data.test)
    assert torch.equal(symbols, torch.tensor([len(w) + 1 for w in words]))
    with pytest.raises(ValueError, match="levels"):
        load_dataset("words", "categorical", levels=20)  # the letters do not fit
    with pytest.raises(ValueError, match="values do not fit"):
        load_dataset("words", "bernoulli")


def test_fit_on_words_reports_bits_per_character_and_writes_words(tmp_path, capsys, restore_torch_state):
    out = tmp_path / "run"
    argv = ["fit", "--data", "words", "--model", "rnn", "--conditional", "categorical", "--hidden-size", "16",
            "--epochs", "1", "--max-train", "300", "--num-samples", "12", "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "bits per character (end symbol included)" in printed and "samples.txt" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["conditional"] == {"name": "categorical", "num_categories": 27}
    data = load_dataset("words", "categorical")
    symbols = float(data.symbols_per_row(data.test).double().mean())
    assert math.isclose(metrics["test_bits_per_character"], metrics["test_nll"] / (math.log(2) * symbols))
    assert "end symbol" in metrics["density"]
    lines = (out / "samples.txt").read_text().splitlines()
    assert len(lines) == 12 and all(re.fullmatch("[a-z]*", w) and len(w) <= 13 for w in lines)
    assert sorted(p.name for p in out.iterdir()) == sorted([*cli.OUTPUT_FILES, cli.TEXT_OUTPUT])
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert math.isclose(report["test_bits_per_character"], metrics["test_bits_per_character"], rel_tol=1e-6)
    # `pyro-ar sample` writes words as text from the checkpoint alone (its alphabet travels with it).
    words = tmp_path / "more.txt"
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "7", "--out", str(words)]) == 0
    lines = words.read_text().splitlines()
    assert len(lines) == 7 and all(re.fullmatch("[a-z]*", w) for w in lines)


@pytest.mark.skipif(not DICTIONARY.exists(), reason="needs Debian's wamerican (/usr/share/dict/american-english)")
def test_make_words_rebuilds_the_shipped_file(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_words", ROOT / "benchmarks" / "make_words.py")
    make_words = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_words)
    monkeypatch.setattr("sys.argv", ["make_words.py", "--out", str(tmp_path / "words.npz")])
    make_words.main()
    with np.load(tmp_path / "words.npz") as new, np.load(ROOT / "pyro_ar/program/data/words.npz") as old:
        for name in ("train", "valid", "test"):
            assert np.array_equal(new[name], old[name])


def test_sample_to_text_needs_a_text_model(tmp_path, capsys, restore_torch_state):
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "fvsbn", "--epochs", "1", "--max-train", "50", "--no-progress",
                     "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "--out", str(tmp_path / "s.txt")]) == 1
    assert "needs a model of text data" in capsys.readouterr().err
    assert not (tmp_path / "s.txt").exists()
