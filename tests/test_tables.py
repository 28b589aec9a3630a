"""Tables (pyro_ar.program.tables): kinds inferred from a CSV with a header, the override,
encoding and decoding (the CSV round trip), normalization of an all-discrete table model,
per-column NLL shares, conditioning on one column, bad tables, and the program end to end
on the penguins."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import torch

import pyro_ar
from pyro_ar.checkpoint import load_checkpoint
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians, Poisson
from pyro_ar.program import cli, tables
from pyro_ar.program.data_files import _split_rows, is_table, load_dataset
from pyro_ar.program.tables import read_table

pytestmark = pytest.mark.usefixtures("restore_torch_state")

N = 40  # rows of the synthetic tables


def _rows(seed: int = 0, n: int = N) -> list:
    """Rows of a small mixed table: labels, a 0/1 column, a year, a count, a measurement."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        colour = ["red", "green", "blue"][i % 3]
        rows.append([colour, str(i % 2), str(2000 + i % 4), str(int(rng.integers(0, 40))),
                     f"{rng.normal(50, 5):.2f}", str(int(rng.integers(150, 260))), ["yes", "no"][i % 2]])
    return rows


HEADER = ["colour", "flag", "year", "visits", "score", "height_cm", "member"]


def _write(path, header=HEADER, rows=None, text=None):
    if text is None:
        lines = [",".join(header)] + [",".join(r) for r in (rows if rows is not None else _rows())]
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    return path


@pytest.fixture
def table_file(tmp_path):
    return _write(tmp_path / "t.csv")


# ---- kinds -------------------------------------------------------------------------------------


def test_kinds_are_inferred(table_file):
    t = read_table(table_file)
    kinds = {c.name: c.kind for c in t.columns}
    assert kinds == {"colour": "categorical", "flag": "binary", "year": "categorical", "visits": "count",
                     "score": "real", "height_cm": "real", "member": "binary"}
    by_name = {c.name: c for c in t.columns}
    assert by_name["colour"].labels == ["blue", "green", "red"]  # sorted labels
    assert by_name["year"].labels == ["2000", "2001", "2002", "2003"] and by_name["year"].numeric_labels
    assert by_name["member"].labels == ["no", "yes"]
    assert by_name["height_cm"].unit == "cm" and by_name["height_cm"].decimals == 0  # integers, but a unit
    assert by_name["score"].decimals == 2
    heads = t.heads
    assert heads == [Categorical(3), Bernoulli(), Categorical(4), Poisson(), MixtureOfGaussians(3),
                     MixtureOfGaussians(3), Bernoulli()]
    assert t.conditional().heads == heads and t.conditional(2).heads[4] == MixtureOfGaussians(2)
    assert t.train.dtype == torch.float32 and t.train.shape[1] == 7
    assert len(t.train) + len(t.valid) + len(t.test) == N


def test_real_columns_use_the_training_split_statistics(table_file):
    t = read_table(table_file)
    j = t.index("score")
    assert abs(float(t.train[:, j].mean())) < 1e-5 and abs(float(t.train[:, j].std()) - 1) < 1e-5
    assert float(t.valid[:, j].std()) != pytest.approx(1.0, abs=1e-6)  # not refitted on other splits
    raw = np.array([float(r[4]) for r in _rows()])
    index = _split_rows(np.arange(N))["train"]
    assert t.columns[j].mean == pytest.approx(raw[index].mean()) and t.columns[j].std == pytest.approx(raw[index].std(ddof=1))


def test_column_types_override(table_file):
    t = read_table(table_file, {"year": "count", "flag": "categorical", "visits": "real", "height_cm": "ignore"})
    kinds = {c.name: c.kind for c in t.columns}
    assert kinds == {"colour": "categorical", "flag": "categorical", "year": "count", "visits": "real",
                     "score": "real", "member": "binary"}
    assert t.schema.names == HEADER and t.event_size == 6  # the ignored column stays in the header
    assert read_table(table_file, "year=count, height_cm=ignore").columns[2].kind == "count"  # the CLI syntax


@pytest.mark.parametrize("types, message", [
    ({"nope": "real"}, r"column_types names \['nope'\], not columns of .*its columns are \['colour', 'flag'"),
    ({"score": "fancy"}, r"column 'score': unknown kind 'fancy'; the kinds are binary, categorical, count, real, ignore"),
    ("score", r"name=kind entries separated by commas, got 'score'"),
    ({"colour": "real"}, r"line \d+ \(train split\), column 'colour': '(red|green|blue)' is not a number, but the column is real"),
    ({"score": "count"}, r"column 'score': \d+\.\d+ is not a count"),
    ({"colour": "binary"}, r"column 'colour' is binary but its training rows hold 3 distinct values"),
])
def test_bad_overrides_are_named(table_file, types, message):
    with pytest.raises(ValueError, match=message):
        read_table(table_file, types)


# ---- encoding and decoding ---------------------------------------------------------------------


def test_decode_inverts_encode(table_file):
    t = read_table(table_file)
    cells = _rows()
    index = _split_rows(np.arange(N))["train"]
    decoded = t.decode(t.train)
    for j, name in enumerate(HEADER):
        original = [cells[i][j] for i in index]
        if name == "score":
            assert decoded[name] == pytest.approx([float(v) for v in original], abs=1e-4)
        elif name in ("visits", "height_cm"):
            assert decoded[name] == [int(v) for v in original]
        else:
            assert decoded[name] == original
    # The CSV text of the training rows, read back with the same schema, gives the same values.
    again = tmp = table_file.with_name("again.csv")
    t.write_csv(tmp, t.train)
    with open(again, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER and [r[5] for r in rows[1:]] == [cells[i][5] for i in index]
    assert [r[4] for r in rows[1:]] == [cells[i][4] for i in index]  # two decimals, as written
    assert t.schema.code("colour", "red") == 2 and t.code("year", "2001.0") == 1
    with pytest.raises(ValueError, match=r"column 'colour' has no label 'pink'; its labels are \['blue'"):
        t.code("colour", "pink")
    with pytest.raises(ValueError, match=r"values must have shape \(N, 7\)"):
        t.decode(torch.zeros(3, 5))


def test_stored_preprocessing_reapplies_the_schema(table_file):
    t = read_table(table_file)
    json.dumps(t.preprocessing)  # plain data, as a checkpoint stores it
    again = read_table(table_file, preprocessing=t.preprocessing)
    assert torch.equal(again.test, t.test) and again.schema == t.schema
    other = _write(table_file.with_name("other.csv"), header=["a", *HEADER[1:]])
    with pytest.raises(ValueError, match=r"has the columns \['a', 'flag'.*trained on a table with the columns \['colour'"):
        read_table(other, preprocessing=t.preprocessing)


def test_missing_values_drop_rows_and_say_so(tmp_path):
    rows = _rows()
    rows[3][6], rows[10][4], rows[11][0] = "NA", "", "n/a"
    t = read_table(_write(tmp_path / "m.csv", rows=rows))
    assert sum(t.dropped_rows.values()) == 3 and len(t.train) + len(t.valid) + len(t.test) == N - 3
    assert t.preprocessing["notes"] == [f"dropped 3 of {N} rows of {tmp_path / 'm.csv'} with a missing entry "
                                        f"({t.dropped_rows['train']} train, {t.dropped_rows['valid']} valid, "
                                        f"{t.dropped_rows['test']} test)"]
    # A missing entry in an ignored column drops nothing.
    assert sum(read_table(tmp_path / "m.csv", {"member": "ignore", "score": "ignore", "colour": "ignore"}
                          ).dropped_rows.values()) == 0


def test_penguins_source():
    t = read_table("penguins")
    assert t.column_names == ["species", "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
                              "body_mass_g", "sex", "year"]
    assert [c.kind for c in t.columns] == ["categorical", "categorical", "real", "real", "real", "real",
                                          "binary", "categorical"]
    assert t.columns[0].labels == ["Adelie", "Chinstrap", "Gentoo"] and t.columns[6].labels == ["female", "male"]
    assert sum(t.dropped_rows.values()) == 11 and len(t.split("all")) == 333
    assert is_table("penguins") and not is_table("digits")


# ---- the model -------------------------------------------------------------------------------------


def _trained(t, steps=60, order=None, seed=0):
    torch.manual_seed(seed)
    net = pyro_ar.MADE(t.event_size, [32], conditional=t.conditional(), order=order, seed=seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = -net().log_prob(t.train).mean()
        loss.backward()
        opt.step()
    return net


def test_all_discrete_table_model_normalizes(table_file):
    t = read_table(table_file, {"visits": "ignore", "score": "ignore", "height_cm": "ignore"})
    assert all(c.kind in ("binary", "categorical") for c in t.columns)
    d = _trained(t, steps=20).double()()
    support = d.enumerate_support()
    assert support.shape == (3 * 2 * 4 * 2, 4)
    with torch.no_grad():
        assert float(d.log_prob(support).exp().sum()) == pytest.approx(1.0, abs=1e-10)
    decoded = t.decode(support)
    assert set(decoded["colour"]) == {"blue", "green", "red"} and set(decoded["member"]) == {"no", "yes"}


def test_column_shares_sum_to_the_nll(table_file):
    t = read_table(table_file)
    net = _trained(t, steps=10)
    shares = tables.column_nll(net, t.test, batch_size=3)
    assert shares.shape == (7,) and bool(torch.isfinite(shares).all())
    assert float(shares.sum()) == pytest.approx(float(-net().log_prob(t.test).detach().double().mean()), rel=1e-5)
    ensemble = pyro_ar.MADE(t.event_size, [8], num_masks=2, conditional=t.conditional())
    assert tables.column_nll(ensemble, t.test) is None  # a mixture of orders has no per-column factors


def test_conditioning_on_one_column():
    """p(other columns | island): with island first in the order, the marginal of island is
    exact (it sums to one over the islands) and completions keep the island given."""
    t = read_table("penguins", max_train=120)
    net = _trained(t, steps=30, order=t.order_first("island"))
    d = net()
    j = t.index("island")
    mask = torch.zeros(3, t.event_size, dtype=torch.bool)
    mask[:, j] = True
    observed = torch.zeros(3, t.event_size)
    observed[:, j] = torch.arange(3.0)
    completions = d.expand((3,)).condition(observed, mask)
    assert float(completions.observed_log_prob.detach().exp().sum()) == pytest.approx(1.0, abs=1e-5)
    rows = completions.sample((50,))
    assert rows.shape == (50, 3, t.event_size) and bool((rows[..., j] == torch.arange(3.0)).all())
    torch.manual_seed(0)
    given = t.decode(rows[:, t.code("island", "Torgersen")])
    assert set(given["island"]) == {"Torgersen"}
    with pytest.raises(ValueError):  # species is not first in this order: no exact conditional
        d.condition(observed[0], torch.arange(t.event_size) == t.index("species"))


# ---- bad tables --------------------------------------------------------------------------------------


def _test_row_index() -> int:
    return int(_split_rows(np.arange(N))["test"][0])


BAD = {
    "empty": ("", r"table '.*bad.csv' is empty"),
    "blank": ("\n\n# only a comment\n", r"is empty"),
    "no-header": ("1,2,3\n4,5,6\n7,8,9\n1,1,1\n", r"has no header row: line 1 holds numbers"),
    "ragged": ("a,b,c\n1,2,3\n4,5\n7,8,9\n", r"line 3 has 2 entries, expected 3 like the header \(a, b, c\)"),
    "duplicate-names": ("a,b,a\n1,2,3\n4,5,6\n7,8,9\n", r"the header names columns \['a'\] more than once"),
    "unnamed-column": ("a,,c\n1,2,3\n4,5,6\n7,8,9\n", r"column 2 of the header \(line 1\) has no name"),
    "too-few-rows": ("a,b\nx,1\ny,2\n", r"has 2 data row\(s\); at least 3 are needed"),
    "all-missing": ("a,b\n" + "".join(f"{i % 2},NA\n" for i in range(10)), r"column 'b' is missing in every row"),
    "mixed-entries": ("a,b\n" + "".join(f"{i % 2},{i if i != 4 else 'lots'}\n" for i in range(12)),
                      r"column 'b': the column mixes numbers and labels \('lots'\)"),
    "constant": ("a,b\n" + "".join(f"{i % 2},same\n" for i in range(10)),
                 r"column 'b': every training row holds 'same'; a constant column"),
    "not-finite": ("a,b\n" + "".join(f"{i % 2},{1.5 * i if i != 2 else 'inf'}\n" for i in range(12)),
                   r"column 'b': 'inf' is not a finite number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_tables_are_named(tmp_path, case):
    text, message = BAD[case]
    path = _write(tmp_path / "bad.csv", text=text)
    with pytest.raises(ValueError, match=message):
        read_table(path)


def test_a_label_seen_only_outside_training_is_named(tmp_path):
    rows = _rows()
    k = _test_row_index()
    rows[k][0] = "purple"
    path = _write(tmp_path / "t.csv", rows=rows)
    with pytest.raises(ValueError, match=rf"line {k + 2} \(test split\), column 'colour': the label 'purple' does not "
                                         r"occur in the training rows \(labels \['blue', 'green', 'red'\]\)"):
        read_table(path)
    rows[k][0], rows[k][4] = "red", "high"  # a real column's test entry that is not a number
    with pytest.raises(ValueError, match=rf"line {k + 2} \(test split\), column 'score': 'high' is not a number"):
        read_table(_write(tmp_path / "t.csv", rows=rows))


def test_mixed_head_needs_a_table_and_a_table_needs_it(tmp_path, table_file):
    numeric = tmp_path / "n.csv"
    numeric.write_text("1,0\n0,1\n1,1\n0,0\n")
    assert not is_table(str(numeric)) and is_table(str(table_file))
    with pytest.raises(ValueError, match=r"the mixed head needs a table .* is not one"):
        load_dataset("digits", "mixed")
    with pytest.raises(ValueError, match=r"has no header row"):
        load_dataset(str(numeric), "mixed")
    with pytest.raises(ValueError, match=r"penguins is a table of named columns: model it with the mixed head"):
        load_dataset("penguins", "bernoulli")
    with pytest.raises(ValueError, match="levels and threshold do not apply to tables"):
        load_dataset(str(table_file), "mixed", levels=3)


def test_count_files_are_prepared(tmp_path):
    np.save(tmp_path / "c.npy", np.random.default_rng(0).poisson(3.0, (30, 4)))
    data = load_dataset(str(tmp_path / "c.npy"), "count")
    assert data.train.dtype == torch.float32 and data.value_kind == "count" and float(data.train.min()) >= 0
    np.save(tmp_path / "neg.npy", np.full((30, 2), -1.0))
    with pytest.raises(ValueError, match="values do not fit the count conditional: found -1"):
        load_dataset(str(tmp_path / "neg.npy"), "count")


# ---- the program ---------------------------------------------------------------------------------------


def test_program_on_penguins(tmp_path, capsys):
    """fit with no flag but the budget -> samples.csv of the original columns; sample --out .csv;
    evaluate reports each column's share of the NLL."""
    out = tmp_path / "run"
    code = cli.main(["fit", "--data", "penguins", "--epochs", "1", "--hidden-sizes", "8", "--num-samples", "20",
                     "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "made x mixed on penguins" in text and "note: dropped 11 of 344 rows of penguins" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["conditional"] == "mixed" and math.isfinite(metrics["test_nll_data_units"])
    truth = read_table("penguins")
    with open(out / "samples.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and list(rows[0]) == truth.column_names
    for c in truth.columns:
        values = [r[c.name] for r in rows]
        if c.labels is not None:
            assert set(values) <= set(c.labels)
        else:
            numbers = np.array([float(v) for v in values])
            assert abs(numbers.mean() - c.mean) < 3 * c.std  # in the data's own units
            if c.decimals == 0:
                assert all(re.fullmatch(r"-?\d+", v) for v in values)

    synth = tmp_path / "synth.csv"
    assert cli.main(["sample", "--checkpoint", str(out / "model.pt"), "-n", "7", "--out", str(synth)]) == 0
    assert synth.read_text().splitlines()[0] == ",".join(truth.column_names) and len(synth.read_text().splitlines()) == 8
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["column_nll"]) == truth.column_names
    assert sum(report["column_nll"].values()) == pytest.approx(report["test_nll"], rel=1e-5)
    assert report["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-5)
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt")]) == 0
    assert re.search(r"body_mass_g\s+-?\d+\.\d+ nats\s+\(\s*-?\d+\.\d% of the NLL\)", capsys.readouterr().out)


def test_program_reads_a_csv_table_with_overrides(tmp_path, table_file, capsys):
    out = tmp_path / "run"
    code = cli.main(["fit", "--data", str(table_file), "--model", "fvsbn", "--epochs", "1", "--no-progress",
                     "--column-types", "visits=real,height_cm=ignore", "--components", "2", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    ckpt = load_checkpoint(out / "model.pt")
    assert [c["kind"] for c in ckpt.extra["preprocessing"]["table"]["columns"]][3] == "real"
    assert ckpt.model.conditional.heads[3] == MixtureOfGaussians(2) and ckpt.model.event_size == 6
    header = (out / "samples.csv").read_text().splitlines()[0]
    assert header == "colour,flag,year,visits,score,member"


@pytest.mark.parametrize("argv, message", [
    (["--column-types", "score=fancy"], r"unknown kind 'fancy'"),
    (["--column-types", "nope=real"], r"column_types names \['nope'\]"),
    (["--conditional", "bernoulli", "--column-types", "score=real"], r"apply to tables \(--conditional mixed\) only"),
])
def test_program_refuses_bad_table_flags(tmp_path, table_file, capsys, argv, message):
    out = tmp_path / "run"
    try:
        code = cli.main(["fit", "--data", str(table_file), "--epochs", "1", "--no-progress", "--out", str(out), *argv])
    except SystemExit as exit_info:  # argparse's refusals
        code = exit_info.code
    err = capsys.readouterr().err
    assert code not in (0, None) and err.startswith("pyro-ar: error:") and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()


def test_program_bad_table_is_one_line(tmp_path, capsys):
    rows = _rows()
    rows[_test_row_index()][0] = "purple"
    path = _write(tmp_path / "t.csv", rows=rows)
    assert cli.main(["fit", "--data", str(path), "--epochs", "1", "--no-progress", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the label 'purple' does not occur in the training rows" in err


def test_a_numeric_csv_with_a_header_is_a_table_by_default(tmp_path, capsys):
    """No flag: a header row makes a table (the mixed head, here all Bernoulli and one real
    column); without a header the numeric file keeps the bernoulli default."""
    rng = np.random.default_rng(0)
    body = "".join(f"{a},{b},{c:.3f}\n" for a, b, c in zip(rng.integers(0, 2, 30), rng.integers(0, 2, 30), rng.normal(size=30)))
    (tmp_path / "h.csv").write_text("a,b,c\n" + body)
    assert cli.main(["fit", "--data", str(tmp_path / "h.csv"), "--model", "fvsbn", "--epochs", "1", "--no-progress",
                     "--out", str(tmp_path / "h")]) == 0
    ckpt = load_checkpoint(tmp_path / "h" / "model.pt")
    assert ckpt.extra["conditional"] == "mixed"
    assert ckpt.model.conditional.heads == [Bernoulli(), Bernoulli(), MixtureOfGaussians(3)]
    (tmp_path / "plain.csv").write_text("".join(f"{a},{b}\n" for a, b in zip(rng.integers(0, 2, 30), rng.integers(0, 2, 30))))
    assert cli.main(["fit", "--data", str(tmp_path / "plain.csv"), "--model", "fvsbn", "--epochs", "1", "--no-progress",
                     "--out", str(tmp_path / "p")]) == 0
    assert load_checkpoint(tmp_path / "p" / "model.pt").extra["conditional"] == "bernoulli"
    assert "samples.csv" not in [p.name for p in (tmp_path / "p").iterdir()]
