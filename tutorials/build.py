"""Build the tutorial notebooks from their percent-format sources and execute them.

Each tutorial is written as plain Python in jupytext's percent format,
``tutorials/NN_name.py``: ``# %%`` starts a code cell and ``# %% [markdown]`` a Markdown
cell (its lines commented with ``# ``); IPython magics are commented too
(``# %matplotlib inline``), so the file is valid Python that linters can check. To change a
tutorial, edit its ``.py`` file (in any editor, or in Jupyter with the jupytext extension) and
rebuild. This script reads the source with jupytext, runs it top to bottom in a fresh
``python3`` kernel with nbclient, and saves ``tutorials/NN_name.ipynb`` *with* its outputs
(plots inline):

    python tutorials/build.py                 # build and execute every notebook (full mode)
    python tutorials/build.py 01 03           # only the notebooks whose name starts so
    python tutorials/build.py --quick         # shrunken run (PYRO_AR_TUTORIAL_QUICK=1), not saved
    python tutorials/build.py --no-execute    # write the notebooks without outputs

The committed notebooks must come from the full mode; ``tests/test_tutorials.py`` checks
that their cells equal their sources', that their stored outputs are clean (no error, no
stderr), and re-runs each in quick mode. Install ``ipywidgets`` before building: without it,
importing Pyro in a Jupyter kernel prints tqdm's "IProgress not found" warning into the stored
outputs. A full build takes about 5 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import List, Optional, Tuple

import jupytext
import nbformat

__all__ = ["NOTEBOOKS", "TUTORIALS_DIR", "source_path", "load_cells", "build_notebook", "execute_notebook"]

TUTORIALS_DIR = Path(__file__).resolve().parent
#: The tutorials, in order: every ``NN_name.py`` next to this script.
NOTEBOOKS = sorted(p.stem for p in TUTORIALS_DIR.glob("[0-9][0-9]_*.py"))
QUICK_ENV = "PYRO_AR_TUTORIAL_QUICK"
KERNEL = "python3"
CELL_TYPES = ("markdown", "code")


def source_path(name: str) -> Path:
    """The percent-format source of notebook ``name``."""
    return TUTORIALS_DIR / f"{name}.py"


def load_cells(name: str) -> List[Tuple[str, str]]:
    """The ``(cell_type, source)`` list of one notebook, read from its percent-format source."""
    path = source_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no tutorial source at {path}")
    cells = []
    for cell in jupytext.read(path).cells:
        if cell.cell_type not in CELL_TYPES:
            raise ValueError(f"{path.name}: cell type must be 'markdown' or 'code', got {cell.cell_type!r}")
        cells.append((cell.cell_type, cell.source.strip("\n").rstrip()))
    return cells


def build_notebook(name: str) -> nbformat.NotebookNode:
    """A fresh notebook (no outputs) from its source, with stable cell ids."""
    nb = nbformat.v4.new_notebook()
    for kind, text in load_cells(name):
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text))
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Stable ids keep the diffs of rebuilt notebooks readable.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:2]}-{i:03d}"
    return nb


def execute_notebook(nb: nbformat.NotebookNode, workdir: Path, quick: bool, timeout: int = 1200) -> float:
    """Run ``nb`` in place in a fresh kernel; return the wall time in seconds.

    Raises ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    from nbclient import NotebookClient

    previous = os.environ.get(QUICK_ENV)
    # The models are tiny: one thread is as fast, and several threads on a busy machine can be
    # many times slower (spinning OpenMP workers). The kernel inherits this environment.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if quick:
        os.environ[QUICK_ENV] = "1"
    else:
        os.environ.pop(QUICK_ENV, None)
    try:
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(workdir)}}).execute()
        return time.perf_counter() - start
    finally:
        if previous is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = previous


def cell_times(nb: nbformat.NotebookNode) -> List[Tuple[int, float]]:
    """``(cell index, seconds)`` of each executed code cell, from nbclient's timing metadata."""
    times = []
    for i, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append((i, (end - start).total_seconds()))
    return times


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--quick", action="store_true", help="execute in quick mode and do not save")
    parser.add_argument("--no-execute", action="store_true", help="save the notebooks without running them")
    args = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not args.names or any(n.startswith(p) for p in args.names)]
    if not names:
        parser.error(f"no notebook matches {args.names}; choose from {NOTEBOOKS}")
    for name in names:
        nb = build_notebook(name)
        if not args.no_execute:
            seconds = execute_notebook(nb, TUTORIALS_DIR, quick=args.quick)
            print(f"{name}: executed in {seconds:.1f} s ({'quick' if args.quick else 'full'} mode)", flush=True)
            slow = sorted(cell_times(nb), key=lambda t: -t[1])[:5]
            print("  slowest cells: " + ", ".join(f"#{i} {t:.1f} s" for i, t in slow), flush=True)
        if args.quick:
            continue
        path = TUTORIALS_DIR / f"{name}.ipynb"
        nbformat.write(nb, path)
        print(f"{name}: wrote {path.relative_to(TUTORIALS_DIR.parent)} ({path.stat().st_size / 1e6:.2f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
