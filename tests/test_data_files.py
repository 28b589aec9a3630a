"""Data for the pyro-ar program: digits preprocessing, user files, IDX reader, Fashion-MNIST."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from pyro_ar.program import data_files
from pyro_ar.program.data_files import load_dataset, read_csv, read_idx, write_idx
from pyro_ar.program.datasets import load_digits

# ---- the embedded digits ------------------------------------------------------------------------


@pytest.mark.parametrize("conditional", ["bernoulli", "categorical", "mog"])
def test_load_digits_prepares_the_raw_levels(conditional):
    """load_digits gives the program's preparation, checked against the raw grey levels 0..16."""
    data = load_dataset("digits", conditional)
    assert (len(data.train), len(data.valid), len(data.test)) == (1197, 300, 300)
    assert data.image_shape == (8, 8) and data.event_size == 64
    assert data.preprocessing["kind"] == conditional
    for split in ("train", "valid", "test"):
        raw = load_digits(split, "raw").double()
        x = load_digits(split, conditional)
        assert torch.equal(x, data.split(split)), split
        if conditional == "bernoulli":
            assert torch.equal(x.double(), (raw > 8).double())
        elif conditional == "categorical":
            assert x.dtype == torch.long and torch.equal(x, torch.floor(raw * 4 / 17).long())
        else:  # dequantized: raw level + noise in [0, 1), then standardized with the training stats
            mean = torch.tensor(data.preprocessing["mean"], dtype=torch.float64)
            std = torch.tensor(data.preprocessing["std"], dtype=torch.float64)
            level = x.double() * std + mean
            assert bool(((level >= raw - 1e-4) & (level < raw + 1 + 1e-4)).all())
    train = load_digits("train", "mog").double()
    assert train.mean(0).abs().max() < 0.2 and (train.std(0) - 1).abs().max() < 0.2
    with pytest.raises(ValueError, match="conditional must be one of"):
        load_digits("train", "binary")


def test_digits_preprocessing_values():
    binary = load_dataset("digits", "bernoulli")
    assert set(binary.train.unique().tolist()) == {0.0, 1.0} and binary.preprocessing["threshold"] == 8
    cat = load_dataset("digits", "categorical", levels=3)
    assert cat.train.dtype == torch.long and set(cat.train.unique().tolist()) == {0, 1, 2}
    cont = load_dataset("digits", "mog")
    # Standardized with the training split's own statistics: per-pixel mean ~0 and std ~1.
    assert cont.train.mean(0).abs().max() < 0.1 and (cont.train.std(0) - 1).abs().max() < 0.1
    assert cont.preprocessing["dequantize"] is True
    assert cont.log_scale == pytest.approx(float(torch.tensor(cont.preprocessing["std"]).log().sum()))


def test_stored_preprocessing_reproduces_the_data():
    first = load_dataset("digits", "mog", max_train=100)
    again = load_dataset("digits", "mog", preprocessing=first.preprocessing)
    # Stats come from the checkpoint (fitted on 100 rows), not refitted on all 1197.
    assert torch.equal(first.test, again.test)
    with pytest.raises(ValueError, match="stored preprocessing is for 'mog' data, not 'bernoulli'"):
        load_dataset("digits", "bernoulli", preprocessing=first.preprocessing)


def test_max_train_and_bad_options():
    assert len(load_dataset("digits", max_train=10).train) == 10
    with pytest.raises(ValueError, match="max_train must be a positive int"):
        load_dataset("digits", max_train=0)
    with pytest.raises(ValueError, match="conditional must be one of"):
        load_dataset("digits", "poisson")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits").split("holdout")


# ---- user files ----------------------------------------------------------------------------------


def _binary_rows(n_rows=50, n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n_rows, n))


def test_npy_single_array_is_split_80_10_10_deterministically(tmp_path):
    x = _binary_rows()
    np.save(tmp_path / "x.npy", x)
    data = load_dataset(str(tmp_path / "x.npy"))
    assert (len(data.train), len(data.valid), len(data.test)) == (40, 5, 5)
    rows = torch.cat([data.train, data.valid, data.test]).long().numpy()
    assert sorted(map(tuple, rows)) == sorted(map(tuple, x))  # a partition of the rows
    assert torch.equal(load_dataset(str(tmp_path / "x.npy")).test, data.test)
    assert data.image_shape is None and data.name == str((tmp_path / "x.npy").resolve())


def test_npz_with_named_splits(tmp_path):
    np.savez(tmp_path / "s.npz", train=_binary_rows(30), valid=_binary_rows(4, seed=1), test=_binary_rows(5, seed=2))
    data = load_dataset(str(tmp_path / "s.npz"))
    assert (len(data.train), len(data.valid), len(data.test)) == (30, 4, 5)
    np.savez(tmp_path / "t.npz", train=_binary_rows(30), test=_binary_rows(5, seed=2))
    data = load_dataset(str(tmp_path / "t.npz"))
    assert (len(data.train), len(data.valid), len(data.test)) == (27, 3, 5)


def test_image_stacks_keep_their_shape(tmp_path):
    np.save(tmp_path / "img.npy", np.random.default_rng(0).integers(0, 2, (20, 3, 4)))
    data = load_dataset(str(tmp_path / "img.npy"))
    assert data.event_size == 12 and data.image_shape == (3, 4)


def test_csv_with_header_and_comments(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c\n# a comment\n1,0,1\n0,1,1\n\n1,1,0\n")
    assert read_csv(path).tolist() == [[1, 0, 1], [0, 1, 1], [1, 1, 0]]


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("1,0,1\n0,x,1\n")
    with pytest.raises(ValueError, match=r"line 2, column 2: 'x' is not a number"):
        read_csv(path)
    path.write_text("1,0,1\n0,1\n")
    with pytest.raises(ValueError, match="line 2 has 2 columns, expected 3"):
        read_csv(path)
    path.write_text("a,b\n")
    with pytest.raises(ValueError, match="holds no data rows"):
        read_csv(path)


def test_categorical_and_continuous_files(tmp_path):
    x = np.random.default_rng(0).integers(0, 5, (40, 3))
    x[0, 0] = 4
    np.save(tmp_path / "c.npy", x)
    data = load_dataset(str(tmp_path / "c.npy"), "categorical")
    assert data.preprocessing["levels"] == 5 and data.train.dtype == torch.long
    assert load_dataset(str(tmp_path / "c.npy"), "categorical", levels=7).preprocessing["levels"] == 7
    y = np.random.default_rng(1).normal(3.0, 2.0, (100, 2))
    np.save(tmp_path / "y.npy", y)
    data = load_dataset(str(tmp_path / "y.npy"), "mog")
    assert data.preprocessing["dequantize"] is False
    assert torch.allclose(data.train.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(data.train.std(0), torch.ones(2), atol=1e-5)


def test_threshold_binarizes_a_file(tmp_path):
    np.save(tmp_path / "g.npy", np.arange(30.0).reshape(10, 3))
    data = load_dataset(str(tmp_path / "g.npy"), "bernoulli", threshold=14.5)
    assert torch.equal(data.split("all").sum(), torch.tensor(15.0)) and data.preprocessing["threshold"] == 14.5


@pytest.mark.parametrize(
    "content, conditional, kwargs, message",
    [
        (
            np.arange(12.0).reshape(4, 3),
            "bernoulli",
            {},
            r"do not fit the bernoulli conditional: found \d+ at row \d, column \d of the train split",
        ),
        (np.full((4, 3), 0.5), "categorical", {}, r"do not fit the categorical conditional: found 0.5"),
        (-np.ones((4, 3)), "categorical", {}, r"do not fit the categorical conditional: found -1"),
        (np.full((4, 3), 3.0), "categorical", {"levels": 3}, r"with 3 levels: the largest value is 3"),
        (np.zeros(5), "bernoulli", {}, r"has shape \(5,\); expected a 2-D array"),
        (np.zeros((2, 2, 2, 2)), "bernoulli", {}, r"has shape \(2, 2, 2, 2\)"),
        (np.zeros((2, 3)), "bernoulli", {}, r"at least 3 rows"),
        (np.array([[0.0, np.nan], [1, 1], [0, 0]]), "mog", {}, r"non-finite entry \(nan\) at row \d, column 1"),
        (np.array([["a", "b"]] * 3), "bernoulli", {}, r"non-numeric entries"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, conditional, kwargs, message):
    np.save(tmp_path / "bad.npy", content)
    with pytest.raises(ValueError, match=message):
        load_dataset(str(tmp_path / "bad.npy"), conditional, **kwargs)


def test_missing_corrupt_and_unsupported_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npy"))
    with pytest.raises(ValueError, match="is not a file"):
        load_dataset(str(tmp_path))
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ValueError, match="corrupt or not a numpy file"):
        load_dataset(str(tmp_path / "broken.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="non-numeric"):
        load_dataset(str(tmp_path / "obj.npy"))
    (tmp_path / "data.parquet").write_bytes(b"x")
    with pytest.raises(ValueError, match="unsupported data file"):
        load_dataset(str(tmp_path / "data.parquet"))
    np.savez(tmp_path / "many.npz", a=np.zeros((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"holds several arrays \['a', 'b'\]"):
        load_dataset(str(tmp_path / "many.npz"))
    np.savez(tmp_path / "mismatch.npz", train=np.zeros((5, 2)), test=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="different numbers of variables"):
        load_dataset(str(tmp_path / "mismatch.npz"))


# ---- IDX and Fashion-MNIST ----------------------------------------------------------------------------


def test_read_idx_of_a_hand_written_file(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    blob = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2, 3, 4) + images.tobytes()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(blob)
    (tmp_path / "plain-idx3-ubyte").write_bytes(blob)
    for name in ("train-images-idx3-ubyte.gz", "plain-idx3-ubyte"):
        out = read_idx(tmp_path / name)
        assert out.dtype == np.uint8 and np.array_equal(out, images)
    floats = np.array([[1.5, -2.0], [0.25, 3.0]], dtype=np.float32)
    (tmp_path / "f.idx").write_bytes(bytes([0, 0, 0x0D, 2]) + struct.pack(">II", 2, 2) + floats.astype(">f4").tobytes())
    assert np.array_equal(read_idx(tmp_path / "f.idx"), floats)


def test_write_idx_round_trip(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 2, 3)).astype(np.uint8)
    write_idx(tmp_path / "x-ubyte.gz", x)
    assert np.array_equal(read_idx(tmp_path / "x-ubyte.gz"), x)
    data = load_dataset(str(tmp_path / "x-ubyte.gz"), "categorical", levels=256)
    assert data.image_shape == (2, 3) and data.split("all").shape == (5, 6)


def test_read_idx_errors(tmp_path):
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(bytes([0, 0, 0x08, 2]) + struct.pack(">II", 3, 3) + b"\x00" * 5)
    with pytest.raises(ValueError, match=r"truncated or has trailing data: shape \(3, 3\) needs 21 bytes, found 17"):
        read_idx(tmp_path / "short")
    (tmp_path / "header").write_bytes(bytes([0, 0, 0x08, 3]) + b"\x00\x00")
    with pytest.raises(ValueError, match="truncated header"):
        read_idx(tmp_path / "header")


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(data_files, "FASHION_MNIST_DIRS", (str(tmp_path / "nowhere"),))
    monkeypatch.delenv("PYRO_AR_FASHION_MNIST_DIR", raising=False)
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_fashion_mnist_from_a_directory_of_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5003, 2, 2)).astype(np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (7, 2, 2)).astype(np.uint8))
    monkeypatch.setenv("PYRO_AR_FASHION_MNIST_DIR", str(tmp_path))
    data = load_dataset("fashion-mnist", "bernoulli")
    assert (len(data.train), len(data.valid), len(data.test)) == (3, 5000, 7)
    assert data.preprocessing["threshold"] == 127.5 and data.image_shape == (2, 2)


# CI installs the Debian package (.ci/run), so there the test must run, never skip.
@pytest.mark.skipif(
    data_files._fashion_dir() is None and os.environ.get("CI") != "true",
    reason="dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_installed_fashion_mnist():
    train, test = data_files.load_fashion_mnist()
    assert train.shape == (60000, 28, 28) and test.shape == (10000, 28, 28)
    assert train.dtype == np.uint8 and train.max() == 255 and train.min() == 0
    # A slice through the program's preparation, with the class labels as a context.
    data = load_dataset("fashion-mnist", "bernoulli", max_train=500, context="labels")
    assert data.train.shape == (500, 784) and data.valid.shape == (5000, 784) and data.test.shape == (10000, 784)
    assert set(data.train.unique().tolist()) == {0.0, 1.0} and data.image_shape == (28, 28)
    labels = data.context("test").argmax(-1)
    assert data.context_size == 10 and torch.equal(torch.bincount(labels), torch.full((10,), 1000))
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
