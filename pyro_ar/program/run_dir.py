"""Output locations of ``pyro-ar``: checked before any work, written aside, moved in file by file.

A run directory (``pyro-ar fit --out DIR``) is prepared by :func:`prepare_run_dir` before training:
every problem with DIR is reported then, DIR is created and locked against a second concurrent run,
and the run writes into a private staging folder inside DIR. :meth:`RunDir.commit` moves each
staged file into DIR with :func:`os.replace` (each appears whole); nothing else in DIR is touched.
A single output file (``pyro-ar sample --out FILE``) is checked by :func:`check_output_file` and
written by :func:`write_file_atomically`.

Paths are taken as given (``str`` or path-like) so that an empty ``--out ""`` can be told from
``.``: ``Path("")`` is ``Path(".")``.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple, Union

try:
    import fcntl
except ImportError:  # not POSIX: a plain O_EXCL lock file, which a killed run leaves behind
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "UsageError",
    "RunDir",
    "check_run_dir",
    "prepare_run_dir",
    "check_output_file",
    "write_file_atomically",
    "LOCK_NAME",
    "STAGING_PREFIX",
]

LOCK_NAME = ".pyro-ar.lock"
STAGING_PREFIX = ".pyro-ar.staging-"

PathArg = Union[str, "os.PathLike[str]"]


class UsageError(ValueError):
    """A bad command-line value, reported like any other input error."""


# ---- checks ----------------------------------------------------------------------------------------


def _as_path(out: PathArg) -> Path:
    if os.fspath(out) == "":
        raise UsageError("--out is empty; give a path")
    return Path(out)


def _is_bookkeeping(name: str) -> bool:
    """The lock file and staging folders of this module, which do not make a folder non-empty."""
    return name == LOCK_NAME or name.startswith(STAGING_PREFIX)


def _output_names(outputs: Sequence[str]) -> Tuple[str, ...]:
    names = tuple(outputs)
    for name in names:
        if not name or os.path.basename(name) != name or name in (".", "..") or _is_bookkeeping(name):
            raise ValueError(f"an output must be a plain file name, got {name!r}")
    return names


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a path under a file does not exist)."""
    here = Path(os.path.abspath(path))
    while not os.path.lexists(here):
        here = here.parent
    return here


def _check_folder(path: Path) -> None:
    """Refuse ``path`` when the nearest existing folder on its way is a file or cannot be written."""
    here = _nearest_existing(path)
    if not here.is_dir():
        raise UsageError(f"--out {str(path)!r}: {str(here)!r} is a file, not a folder")
    if not os.access(here, os.R_OK | os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(path)!r}: the folder {str(here)!r} is not writable")


def check_run_dir(out: PathArg, overwrite: bool, outputs: Sequence[str]) -> Path:
    """Refuse, before any work, a run directory that :func:`prepare_run_dir` would refuse: an empty
    path, a file, a path under a file, an unwritable location, a non-empty folder without
    ``overwrite``, or an output to be replaced that is a folder. Creates nothing; returns the path."""
    path, names = _as_path(out), _output_names(outputs)
    if os.path.lexists(path) and not path.is_dir():
        raise UsageError(f"--out {str(path)!r} exists and is not a folder")
    _check_folder(path)
    if not path.is_dir():
        return path
    if not overwrite and any(not _is_bookkeeping(p.name) for p in path.iterdir()):
        raise UsageError(
            f"--out {str(path)!r} is not empty; pass --overwrite to replace the files a run writes there "
            f"({', '.join(names)}); other files are kept"
        )
    for name in names:
        if (path / name).is_dir():
            raise UsageError(f"--out {str(path)!r}: {name!r} there is a folder, which a run does not replace")
    return path


# ---- the lock ----------------------------------------------------------------------------------------


def _busy(out: Path, lock: Path) -> UsageError:
    try:
        pid = lock.read_text().strip() or "unknown"
    except OSError:
        pid = "unknown"
    hint = "" if fcntl is not None else f", or delete {str(lock)!r} if that run has died"
    return UsageError(f"--out {str(out)!r} is in use by another pyro-ar run (pid {pid}); wait for it or choose "
                      f"another --out{hint}")


def _acquire_lock(out: Path) -> int:
    """Lock ``out`` for this process: an ``flock`` on ``out/LOCK_NAME`` holding the pid. The kernel
    drops the lock of a killed process, so a stale lock file is simply taken over."""
    lock = out / LOCK_NAME
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | (os.O_EXCL if fcntl is None else 0), 0o644)
        except FileExistsError:
            raise _busy(out, lock) from None
        except OSError as e:
            raise UsageError(f"--out {str(out)!r}: cannot create the lock file {LOCK_NAME} ({e.strerror})") from None
        if fcntl is None:
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if isinstance(e, BlockingIOError):
                raise _busy(out, lock) from None
            raise UsageError(f"--out {str(out)!r}: cannot lock {LOCK_NAME} ({e.strerror})") from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the previous holder removed the file between our open and lock: again
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _release_lock(out: Path, fd: int) -> None:
    """Remove the lock file and unlock; with ``flock`` the file goes first, while still locked."""
    if fcntl is None:
        os.close(fd)
    try:
        os.unlink(out / LOCK_NAME)
    except FileNotFoundError:
        pass
    finally:
        if fcntl is not None:
            os.close(fd)


# ---- moving files in ---------------------------------------------------------------------------------


def _place(src: Path, dst: Path, overwrite: bool) -> None:
    """Move the file ``src`` to ``dst`` in one step; without ``overwrite`` an existing ``dst`` is
    never replaced (:class:`FileExistsError`): a hard link cannot clobber."""
    if not overwrite:
        try:
            os.link(src, dst)
        except FileExistsError:
            raise
        except OSError:  # no hard links on this file system: check, then replace
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
        else:
            os.unlink(src)
            return
    os.replace(src, dst)


class RunDir:
    """A locked run directory: write into :attr:`staging`, then :meth:`commit`; :meth:`close`
    (or leaving the ``with`` block) removes the staging folder and the lock whatever happened."""

    def __init__(self, out: Path, staging: Path, overwrite: bool, outputs: Tuple[str, ...], lock_fd: int,
                 created: bool):
        self.out = out
        self.staging = staging
        self.overwrite = overwrite
        self.outputs = outputs
        self._lock_fd: Optional[int] = lock_fd
        self._created = created
        self._committed = False

    def commit(self) -> None:
        """Move each staged file into :attr:`out` (only those). Without ``overwrite``, a target that
        appeared meanwhile is refused (:class:`UsageError`) and none of this run's files stay."""
        if self._lock_fd is None:
            raise ValueError("the run directory is closed")
        files = sorted(self.staging.iterdir())
        for f in files:
            if f.name not in self.outputs or f.is_symlink() or not f.is_file():
                raise ValueError(f"{str(f)!r} is not a file among the declared outputs {self.outputs}")
        for f in files:
            target = self.out / f.name
            if target.is_dir():
                raise UsageError(f"--out {str(self.out)!r}: {f.name!r} there is a folder, which a run does not replace")
            if not self.overwrite and os.path.lexists(target):
                raise self._appeared(f.name)
        placed = []
        try:
            for f in files:
                _place(f, self.out / f.name, self.overwrite)
                placed.append(self.out / f.name)
        except FileExistsError as e:  # without overwrite only: take back what was moved in
            for target in placed:
                target.unlink()
            raise self._appeared(Path(e.filename or "?").name) from None
        self._committed = True

    def _appeared(self, name: str) -> UsageError:
        return UsageError(f"--out {str(self.out)!r}: {name!r} appeared there during the run; nothing was "
                          f"written (pass --overwrite to replace it)")

    def close(self) -> None:
        """Remove the staging folder and the lock (and ``out`` itself if this run created it and
        committed nothing, when it is empty). Safe to call twice."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        _release_lock(self.out, self._lock_fd)
        self._lock_fd = None
        if self._created and not self._committed:
            try:
                os.rmdir(self.out)
            except OSError:
                pass

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_stale_staging(out: Path) -> None:
    """Staging folders of runs that were killed; only the lock holder calls this."""
    for p in out.iterdir():
        if p.name.startswith(STAGING_PREFIX):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()


def prepare_run_dir(out: PathArg, overwrite: bool, outputs: Sequence[str]) -> RunDir:
    """Check ``out`` as :func:`check_run_dir` does, create it (and its parents), lock it (a second
    concurrent run is refused), remove staging folders of killed runs, check again under the lock,
    and return a :class:`RunDir` with a fresh staging folder. Every refusal is a :class:`UsageError`."""
    names = _output_names(outputs)
    path = check_run_dir(out, overwrite, names)
    created = not path.is_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out {str(path)!r}: cannot create the folder ({e.strerror})") from None
    fd: Optional[int] = None
    try:
        fd = _acquire_lock(path)
        _remove_stale_staging(path)
        check_run_dir(path, overwrite, names)  # again: nothing can change it behind the lock now
        staging = path / f"{STAGING_PREFIX}{os.getpid()}"
        staging.mkdir()
    except BaseException:
        if fd is not None:
            _release_lock(path, fd)
        if created:
            try:
                os.rmdir(path)
            except OSError:
                pass
        raise
    return RunDir(path, staging, overwrite, names, fd, created)


# ---- single files --------------------------------------------------------------------------------------


def check_output_file(path: PathArg, overwrite: bool) -> Path:
    """Refuse, before any work, an output file that is empty, a folder, exists (without
    ``overwrite``), or whose folder is missing, a file, or not writable. Returns the path."""
    p = _as_path(path)
    if p.is_dir():
        raise UsageError(f"--out {str(p)!r} is a folder; give a file name")
    if os.path.lexists(p) and not overwrite:
        raise UsageError(f"--out {str(p)!r} exists; pass --overwrite to replace it")
    folder = Path(os.path.abspath(p)).parent
    if not folder.is_dir():
        here = _nearest_existing(folder)
        if not here.is_dir():
            raise UsageError(f"--out {str(p)!r}: {str(here)!r} is a file, not a folder")
        raise UsageError(f"--out {str(p)!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(p)!r}: the folder {str(folder)!r} is not writable")
    return p


def write_file_atomically(path: PathArg, write: Callable[[Path], None], *, overwrite: bool = False) -> None:
    """Call ``write(tmp)`` on a hidden temporary name in the same folder that keeps the suffix of
    ``path`` (writers choose formats by suffix), then move it to ``path`` in one step. Without
    ``overwrite`` a ``path`` that appeared meanwhile is refused (:class:`UsageError`) and kept.
    On any failure the temporary file is removed and ``path`` is untouched."""
    target = _as_path(path)
    tmp = target.with_name(f".{target.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{target.suffix}")
    try:
        write(tmp)
        try:
            _place(tmp, target, overwrite)
        except FileExistsError:
            raise UsageError(f"--out {str(target)!r} appeared meanwhile; pass --overwrite to replace it") from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
