"""Output locations (pyro_ar.program.run_dir): refused before any work, locked, written aside, and
never a file removed or replaced that the run does not itself write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from pyro_ar.program.run_dir import (
    LOCK_NAME,
    STAGING_PREFIX,
    RunDir,
    UsageError,
    check_output_file,
    check_run_dir,
    prepare_run_dir,
    write_file_atomically,
)

OUTPUTS = ("model.pt", "metrics.json", "samples.png")


def names(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir())


def stage_all(run: RunDir, text: str = "new") -> None:
    for name in OUTPUTS:
        (run.staging / name).write_text(text)


def permissions_bind(tmp_path: Path) -> bool:
    """Whether a read-only folder blocks writes here (not for root, as the tests usually run)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        (probe / "x").touch()
    except PermissionError:
        return True
    finally:
        probe.chmod(0o755)
    (probe / "x").unlink()
    probe.rmdir()
    return False


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- refused before any work ---------------------------------------------------------------------------


def test_empty_out_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="empty"):
        prepare_run_dir("", False, OUTPUTS)
    with pytest.raises(UsageError, match="empty"):
        check_output_file("", True)
    with pytest.raises(UsageError, match="empty"):
        write_file_atomically("", lambda p: p.write_text("x"))
    assert names(tmp_path) == []


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("keep")
    for overwrite in (False, True):
        with pytest.raises(UsageError, match="not a folder"):
            prepare_run_dir(tmp_path / "run", overwrite, OUTPUTS)
    assert (tmp_path / "run").read_text() == "keep"


@pytest.mark.parametrize("below", ["run", "a/b/run"])
def test_out_under_a_file_is_refused(tmp_path, below):
    (tmp_path / "file").write_text("keep")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_run_dir(tmp_path / "file" / below, True, OUTPUTS)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        prepare_run_dir(tmp_path / "file" / below, True, OUTPUTS)
    assert names(tmp_path) == ["file"]


def test_unwritable_parent_or_out_is_refused(tmp_path):
    if not permissions_bind(tmp_path):
        pytest.skip("running as root: a read-only folder does not block writes")
    parent = tmp_path / "ro"
    (parent / "existing").mkdir(parents=True)
    parent.chmod(0o555)
    (parent / "existing").chmod(0o555)
    try:
        with pytest.raises(UsageError, match="not writable"):
            prepare_run_dir(parent / "new" / "run", False, OUTPUTS)
        with pytest.raises(UsageError, match="not writable"):
            prepare_run_dir(parent / "existing", True, OUTPUTS)
        with pytest.raises(UsageError, match="not writable"):
            check_output_file(parent / "samples.png", True)
    finally:
        (parent / "existing").chmod(0o755)
        parent.chmod(0o755)
    assert names(parent) == ["existing"] and names(parent / "existing") == []


def test_non_empty_out_needs_overwrite(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty; pass --overwrite"):
        prepare_run_dir(tmp_path / "run", False, OUTPUTS)
    assert names(tmp_path / "run") == ["notes.txt"]


def test_an_output_that_is_a_folder_is_refused_with_overwrite(tmp_path):
    (tmp_path / "run" / "model.pt").mkdir(parents=True)
    with pytest.raises(UsageError, match="'model.pt' there is a folder"):
        prepare_run_dir(tmp_path / "run", True, OUTPUTS)
    assert names(tmp_path / "run") == ["model.pt"]


# ---- what a run writes, and only that -------------------------------------------------------------------


def test_a_run_writes_its_outputs_and_leaves_nothing_else(tmp_path):
    out = tmp_path / "runs" / "a"
    with prepare_run_dir(out, False, OUTPUTS) as run:
        assert run.staging.parent == out and run.staging.is_dir() and (out / LOCK_NAME).is_file()
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        stage_all(run)
        assert names(out) == sorted([LOCK_NAME, run.staging.name])  # nothing in out before commit
        run.commit()
    assert names(out) == sorted(OUTPUTS)
    assert (out / "model.pt").read_text() == "new"


def test_a_subset_of_the_outputs_may_be_written(tmp_path):
    with prepare_run_dir(tmp_path / "run", False, OUTPUTS) as run:
        (run.staging / "model.pt").write_text("new")
        run.commit()
    assert names(tmp_path / "run") == ["model.pt"]


def test_an_undeclared_staged_file_is_a_programming_error(tmp_path):
    with prepare_run_dir(tmp_path / "run", False, OUTPUTS) as run:
        (run.staging / "extra.txt").write_text("x")
        with pytest.raises(ValueError, match="declared outputs"):
            run.commit()
    assert not (tmp_path / "run").exists()


def test_overwrite_replaces_only_the_outputs(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "mydata.csv").write_text("1,2,3\n")
    (proj / "sub").mkdir()
    (proj / "sub" / "more.csv").write_text("4\n")
    for name in OUTPUTS:
        (proj / name).write_text("old")
    with prepare_run_dir(proj, True, OUTPUTS) as run:
        stage_all(run)
        run.commit()
    assert names(proj) == sorted([*OUTPUTS, "mydata.csv", "sub"])
    assert (proj / "mydata.csv").read_text() == "1,2,3\n" and (proj / "sub" / "more.csv").read_text() == "4\n"
    assert all((proj / name).read_text() == "new" for name in OUTPUTS)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_written_into_out_during_the_run_survives(tmp_path, overwrite):
    out = tmp_path / "run"
    with prepare_run_dir(out, overwrite, OUTPUTS) as run:
        (out / "written-meanwhile.txt").write_text("mine")
        stage_all(run)
        run.commit()
    assert names(out) == sorted([*OUTPUTS, "written-meanwhile.txt"])
    assert (out / "written-meanwhile.txt").read_text() == "mine"


def test_without_overwrite_a_target_that_appeared_is_not_replaced(tmp_path):
    out = tmp_path / "run"
    with prepare_run_dir(out, False, OUTPUTS) as run:
        stage_all(run)
        (out / "samples.png").write_text("mine")
        with pytest.raises(UsageError, match="'samples.png' appeared there during the run"):
            run.commit()
    assert names(out) == ["samples.png"] and (out / "samples.png").read_text() == "mine"


def test_a_commit_that_loses_the_race_takes_back_what_it_moved(tmp_path, monkeypatch):
    """The target appears after the check, just before its file is moved in: the files already
    moved in are taken back out, the newcomer is kept."""
    from pyro_ar.program import run_dir

    out = tmp_path / "run"
    real_link = os.link

    def link(src, dst, *args, **kwargs):
        if Path(dst).name == "samples.png":
            Path(dst).write_text("mine")
        return real_link(src, dst, *args, **kwargs)

    with prepare_run_dir(out, False, OUTPUTS) as run:
        stage_all(run)
        monkeypatch.setattr(run_dir.os, "link", link)
        with pytest.raises(UsageError, match="'samples.png' appeared"):
            run.commit()
    assert names(out) == ["samples.png"] and (out / "samples.png").read_text() == "mine"


# ---- one run at a time, and nothing left behind ---------------------------------------------------------


def test_a_second_concurrent_run_into_the_same_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    with prepare_run_dir(out, False, OUTPUTS) as first:
        for overwrite in (False, True):
            with pytest.raises(UsageError, match=f"in use by another pyro-ar run \\(pid {os.getpid()}\\)"):
                prepare_run_dir(out, overwrite, OUTPUTS)
        assert first.staging.is_dir() and (out / LOCK_NAME).is_file()
        stage_all(first, "first")
        first.commit()
    assert names(out) == sorted(OUTPUTS)
    with prepare_run_dir(out, True, OUTPUTS) as second:  # free again once the first is done
        stage_all(second, "second")
        second.commit()
    assert (out / "model.pt").read_text() == "second" and names(out) == sorted(OUTPUTS)


def test_a_run_in_another_process_holds_the_lock(tmp_path):
    out = tmp_path / "run"
    code = (
        "import sys; from pyro_ar.program.run_dir import prepare_run_dir\n"
        "run = prepare_run_dir(sys.argv[1], False, ['model.pt'])\n"
        "print('ready', flush=True); sys.stdin.readline(); run.close()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(UsageError, match=f"pid {proc.pid}"):
            prepare_run_dir(out, True, OUTPUTS)
    finally:
        proc.communicate("\n", timeout=60)
    assert proc.returncode == 0
    with prepare_run_dir(out, False, OUTPUTS):
        pass


def test_nothing_is_left_after_an_exception_in_the_run(tmp_path):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mydata.csv").write_text("x")
    with pytest.raises(RuntimeError):
        with prepare_run_dir(existing, True, OUTPUTS) as run:
            stage_all(run)
            raise RuntimeError("training failed")
    assert names(existing) == ["mydata.csv"]
    with pytest.raises(KeyboardInterrupt):
        with prepare_run_dir(tmp_path / "new" / "run", False, OUTPUTS) as run:
            stage_all(run)
            raise KeyboardInterrupt
    assert names(tmp_path / "new") == []  # the run's own empty folder is gone too


def test_close_is_safe_twice_and_commit_after_close_is_refused(tmp_path):
    run = prepare_run_dir(tmp_path / "run", False, OUTPUTS)
    run.close()
    run.close()
    with pytest.raises(ValueError, match="closed"):
        run.commit()


def test_a_stale_lock_and_staging_of_a_dead_process_are_cleaned(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    pid = dead_pid()
    (out / LOCK_NAME).write_text(f"{pid}\n")
    stale = out / f"{STAGING_PREFIX}{pid}"
    stale.mkdir()
    (stale / "model.pt").write_text("half-written")
    check_run_dir(out, False, OUTPUTS)  # only bookkeeping: still an empty folder
    with prepare_run_dir(out, False, OUTPUTS) as run:
        assert not stale.exists()
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        stage_all(run)
        run.commit()
    assert names(out) == sorted(OUTPUTS)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_run_killed_while_writing_does_not_block_the_next(tmp_path):
    out = tmp_path / "run"
    code = (
        "import os, signal, sys; from pyro_ar.program.run_dir import prepare_run_dir\n"
        "run = prepare_run_dir(sys.argv[1], False, ['model.pt'])\n"
        "(run.staging / 'model.pt').write_text('half')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code, str(out)]).returncode == -signal.SIGKILL
    assert LOCK_NAME in names(out) and any(n.startswith(STAGING_PREFIX) for n in names(out))
    with prepare_run_dir(out, False, OUTPUTS) as run:
        assert names(out) == sorted([LOCK_NAME, run.staging.name])
        stage_all(run)
        run.commit()
    assert names(out) == sorted(OUTPUTS)


# ---- --out . ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out", [".", "./"])
def test_the_current_folder_works_and_keeps_other_files(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mydata.csv").write_text("1\n")
    (tmp_path / "model.pt").write_text("old")
    with pytest.raises(UsageError, match="not empty"):
        prepare_run_dir(out, False, OUTPUTS)
    with prepare_run_dir(out, True, OUTPUTS) as run:
        stage_all(run)
        run.commit()
    assert names(tmp_path) == sorted([*OUTPUTS, "mydata.csv"])
    assert (tmp_path / "model.pt").read_text() == "new" and (tmp_path / "mydata.csv").read_text() == "1\n"


def test_the_current_folder_when_empty_needs_no_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with prepare_run_dir(".", False, OUTPUTS) as run:
        stage_all(run)
        run.commit()
    assert names(tmp_path) == sorted(OUTPUTS)


# ---- single output files ---------------------------------------------------------------------------------


def test_check_output_file(tmp_path):
    target = tmp_path / "samples.npy"
    assert check_output_file(target, False) == target
    target.write_text("old")
    with pytest.raises(UsageError, match="exists; pass --overwrite"):
        check_output_file(target, False)
    assert check_output_file(str(target), True) == target
    with pytest.raises(UsageError, match="is a folder"):
        check_output_file(tmp_path, True)
    with pytest.raises(UsageError, match="does not exist"):
        check_output_file(tmp_path / "missing" / "samples.npy", True)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_file(target / "samples.npy", True)
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_file(target / "deeper" / "samples.npy", True)
    assert target.read_text() == "old"


def test_write_file_atomically_keeps_the_suffix_and_replaces_in_one_step(tmp_path):
    target = tmp_path / "samples.npy"
    target.write_text("old")
    seen: List[Path] = []

    def write(tmp: Path) -> None:
        seen.append(tmp)
        assert target.read_text() == "old"  # the old file stays until the new one is whole
        tmp.write_text("new")

    write_file_atomically(target, write, overwrite=True)
    assert seen[0].suffix == ".npy" and seen[0].parent == tmp_path and seen[0] != target
    assert names(tmp_path) == ["samples.npy"] and target.read_text() == "new"


def test_write_file_atomically_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "grid.png"
    target.write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_file_atomically(target, write, overwrite=True)
    assert names(tmp_path) == ["grid.png"] and target.read_text() == "old"


def test_write_file_atomically_without_overwrite_keeps_a_file_that_appeared(tmp_path):
    target = tmp_path / "grid.png"
    check_output_file(target, False)

    def write(tmp: Path) -> None:
        target.write_text("mine")  # someone else wrote it meanwhile
        tmp.write_text("new")

    with pytest.raises(UsageError, match="appeared meanwhile"):
        write_file_atomically(target, write)
    assert names(tmp_path) == ["grid.png"] and target.read_text() == "mine"
    write_file_atomically(tmp_path / "new.png", lambda p: p.write_text("x"))
    assert (tmp_path / "new.png").read_text() == "x" and names(tmp_path) == ["grid.png", "new.png"]
