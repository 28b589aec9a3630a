"""Run directories of ``pyro-ar fit``: checked before training, assembled aside, moved in whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["UsageError", "check_out_dir", "StagedDir"]


class UsageError(ValueError):
    """A bad command-line value, reported like any other input error."""



def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a file, or a non-empty directory without ``overwrite``, before any training."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--out {str(out)!r} exists and is not empty; pass --overwrite to replace it")


class StagedDir:
    """A temporary sibling of ``out`` that replaces it only on :meth:`commit`."""

    def __init__(self, out: Path):
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))

    def commit(self) -> None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp made it private; give it the usual mode
        old = None
        if self.out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
            os.rename(self.out, old / "dir")
        os.rename(self.path, self.out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


