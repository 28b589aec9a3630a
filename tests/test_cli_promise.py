"""The command line's promise, over a table of bad inputs: a non-zero exit, exactly one line
starting ``pyro-ar: error:``, no traceback, nothing half-written, and no existing file
outside the run's own outputs removed or replaced."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
import torch

import pyro_ar
from pyro_ar.program import cli

pytestmark = pytest.mark.usefixtures("restore_torch_state")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with a checkpoint, data files, a finished run and a user's file."""
    root = tmp_path_factory.mktemp("promise")
    pyro_ar.save(pyro_ar.FVSBN(64), root / "model.pt", conditional="bernoulli", data="digits",
                 preprocessing={"kind": "bernoulli", "value_kind": "binary", "threshold": 8.0})
    (root / "corrupt.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    torch.save({"format": "pyro_ar.checkpoint", "evil": object()}, root / "unsafe.pt")
    np.savetxt(root / "good.csv", np.random.default_rng(0).integers(0, 2, (40, 4)), delimiter=",", fmt="%d")
    (root / "ragged.csv").write_text("1,0,1\n0,1\n1,1,1\n")
    (root / "words.csv").write_text("a,b\nc,d\n")
    (root / "proj").mkdir()
    (root / "proj" / "mydata.csv").write_text("0,1\n1,0\n")
    (root / "afile").write_text("not a folder")
    (root / "existing.npy").write_bytes(b"keep me")
    return root


def _snapshot(root: Path) -> Dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


FIT = ["fit", "--epochs", "1", "--max-train", "50", "--no-progress"]
BAD = {
    "fit-unknown-model": FIT + ["--model", "rnn-of-doom", "--out", "{r}/o"],
    "fit-epochs-zero": FIT + ["--epochs", "0", "--out", "{r}/o"],
    "fit-huge-width": FIT + ["--hidden-sizes", "999999999999", "--out", "{r}/o"],
    "fit-huge-model": FIT + ["--hidden-sizes", "900000,900000", "--out", "{r}/o"],
    "fit-flag-of-another-model": FIT + ["--model", "fvsbn", "--num-masks", "2", "--out", "{r}/o"],
    "fit-threshold-nan": FIT + ["--threshold", "nan", "--out", "{r}/o"],
    "fit-seed-overflow": FIT + ["--seed", str(2**70), "--out", "{r}/o"],
    "fit-missing-data": FIT + ["--data", "{r}/nope.csv", "--out", "{r}/o"],
    "fit-ragged-csv": FIT + ["--data", "{r}/ragged.csv", "--out", "{r}/o"],
    "fit-words-csv": FIT + ["--data", "{r}/words.csv", "--out", "{r}/o"],
    "fit-labels-without-labels": FIT + ["--data", "{r}/good.csv", "--context", "labels", "--out", "{r}/o"],
    "fit-empty-out": FIT + ["--out", ""],
    "fit-out-is-a-file": FIT + ["--out", "{r}/afile"],
    "fit-out-under-a-file": FIT + ["--out", "{r}/afile/run"],
    "fit-out-not-empty": FIT + ["--data", "{r}/proj/mydata.csv", "--out", "{r}/proj"],
    "fit-min-scale-negative": FIT + ["--conditional", "mog", "--min-scale", "-1", "--out", "{r}/o"],
    "sample-corrupt": ["sample", "--checkpoint", "{r}/corrupt.pt", "--out", "{r}/s.npy"],
    "sample-unsafe": ["sample", "--checkpoint", "{r}/unsafe.pt", "--out", "{r}/s.npy"],
    "sample-existing-out": ["sample", "--checkpoint", "{r}/model.pt", "--out", "{r}/existing.npy"],
    "sample-out-is-a-folder": ["sample", "--checkpoint", "{r}/model.pt", "--out", "{r}/proj.npy/"],
    "sample-out-folder-missing": ["sample", "--checkpoint", "{r}/model.pt", "--out", "{r}/none/s.npy"],
    "sample-bad-suffix": ["sample", "--checkpoint", "{r}/model.pt", "--out", "{r}/s.jpg"],
    "sample-too-many": ["sample", "--checkpoint", "{r}/model.pt", "-n", str(10**12), "--out", "{r}/s.npy"],
    "sample-temperature-zero": ["sample", "--checkpoint", "{r}/model.pt", "--temperature", "0", "--out", "{r}/s.npy"],
    "sample-label-unconditional": ["sample", "--checkpoint", "{r}/model.pt", "--label", "1", "--out", "{r}/s.npy"],
    "evaluate-missing": ["evaluate", "--checkpoint", "{r}/missing.pt"],
    "evaluate-other-size": ["evaluate", "--checkpoint", "{r}/model.pt", "--data", "{r}/good.csv"],
    "no-command": [],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_keeps_the_promise(workspace, capsys, name):
    (workspace / "proj.npy").mkdir(exist_ok=True)
    argv = [a.replace("{r}", str(workspace)) for a in BAD[name]]
    before = _snapshot(workspace)
    try:
        code = cli.main(argv)
    except SystemExit as exit_info:  # argparse's refusals
        code = exit_info.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code not in (0, None), err
    assert len(lines) == 1 and lines[0].startswith("pyro-ar: error:"), err
    assert "Traceback" not in err
    assert _snapshot(workspace) == before  # nothing written, removed or replaced


def test_the_real_program_keeps_the_promise(workspace):
    """The console entry point too (a subprocess: a traceback would reach stderr here)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    before = _snapshot(workspace)
    for name in ("fit-out-under-a-file", "sample-unsafe", "fit-seed-overflow"):
        argv = [a.replace("{r}", str(workspace)) for a in BAD[name]]
        result = subprocess.run([sys.executable, "-m", "pyro_ar", *argv], capture_output=True, text=True, env=env,
                                timeout=120)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("pyro-ar: error:"), result.stderr
    assert _snapshot(workspace) == before


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, capsys):
    from pyro_ar.program.run_dir import prepare_run_dir

    out = tmp_path / "run"
    with prepare_run_dir(out, False, cli.OUTPUT_FILES):  # a run in progress holds the folder
        assert cli.main([*FIT, "--out", str(out)]) == 1
        assert "in use by another pyro-ar run" in capsys.readouterr().err
    assert cli.main([*FIT, "--out", str(out)]) == 0  # once it is done, the folder is free
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.OUTPUT_FILES)


def test_sample_overwrites_only_when_asked(tmp_path, capsys):
    pyro_ar.save(pyro_ar.FVSBN(4), tmp_path / "m.pt")
    out = tmp_path / "s.npy"
    assert cli.main(["sample", "--checkpoint", str(tmp_path / "m.pt"), "-n", "3", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert cli.main(["sample", "--checkpoint", str(tmp_path / "m.pt"), "-n", "5", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == first
    assert cli.main(["sample", "--checkpoint", str(tmp_path / "m.pt"), "-n", "5", "--out", str(out),
                     "--overwrite"]) == 0
    assert np.load(out).shape == (5, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "s.npy"]  # no temporary left
