"""Build the tutorial notebooks from their sources and execute them.

Each notebook is written as a Python list of cells in ``tutorials/sources/<name>.py``
(``CELLS = [(MARKDOWN, "..."), (CODE, "..."), ...]``), so that the text is easy to review
and edit. This script turns a source into ``tutorials/<name>.ipynb``, runs it top to bottom
in a fresh ``python3`` kernel with nbclient, and saves it *with* its outputs (plots inline).

    python tutorials/build.py                 # build and execute every notebook (full mode)
    python tutorials/build.py 01 03           # only the notebooks whose name starts so
    python tutorials/build.py --quick         # shrunken run (PYRO_AR_TUTORIAL_QUICK=1), not saved
    python tutorials/build.py --no-execute    # write the notebooks without outputs

The committed notebooks must come from the full mode; ``tests/test_tutorials.py`` checks
that they match their sources, that their stored outputs are clean (no error, no stderr), and
re-runs each in quick mode. Install ``ipywidgets`` before building: without it, importing Pyro
in a Jupyter kernel prints tqdm's "IProgress not found" warning into the stored outputs.
A full build takes about 4-5 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import List, Tuple

import nbformat

__all__ = ["NOTEBOOKS", "TUTORIALS_DIR", "load_cells", "build_notebook", "execute_notebook"]

TUTORIALS_DIR = Path(__file__).resolve().parent
SOURCES_DIR = TUTORIALS_DIR / "sources"
NOTEBOOKS = [
    "01_binary_ar_models",
    "02_categorical_conditionals",
    "03_continuous_conditionals",
    "04_pyro_integration",
]
QUICK_ENV = "PYRO_AR_TUTORIAL_QUICK"
KERNEL = "python3"


def load_cells(name: str) -> List[Tuple[str, str]]:
    """The ``(cell_type, source)`` list of one notebook, read from its source module."""
    path = SOURCES_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_tutorial_source_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no tutorial source at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cells = []
    for kind, text in module.CELLS:
        if kind not in ("markdown", "code"):
            raise ValueError(f"{name}: cell type must be 'markdown' or 'code', got {kind!r}")
        cells.append((kind, text.strip("\n").rstrip()))
    return cells


def build_notebook(name: str) -> nbformat.NotebookNode:
    """A fresh notebook (no outputs) from its source."""
    nb = nbformat.v4.new_notebook()
    for kind, text in load_cells(name):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        nb.cells.append(cell)
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
    from datetime import datetime

    times = []
    for i, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in stamps and "shell.execute_reply" in stamps:
            start, end = (datetime.fromisoformat(stamps[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply"))
            times.append((i, (end - start).total_seconds()))
    return times


def main(argv: List[str] | None = None) -> int:
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
