"""The tutorials in ``tutorials/`` run, are stored with their outputs, and stay in sync.

* Every notebook is executed top to bottom in a fresh kernel in quick mode
  (``PYRO_AR_TUTORIAL_QUICK=1`` shrinks epochs and data), so a change to the library that
  breaks a tutorial fails here.
* The stored notebooks must come from a full run of their current source, the percent-format
  ``tutorials/NN_name.py`` (``python tutorials/build.py``): executed in order, without errors,
  with plots. Every source is valid Python, and every notebook has a source.
* README.md links every tutorial.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("jupytext")  # tutorials/build.py reads the percent-format sources with it

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
MAX_NOTEBOOK_BYTES = 1_500_000
CELL_TIMEOUT_S = 300


def _load_builder():
    spec = importlib.util.spec_from_file_location("_tutorials_build", TUTORIALS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_builder()
NAMES = build.NOTEBOOKS


def _read(name: str):
    path = TUTORIALS / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `python tutorials/build.py`")
    return nbformat.read(path, as_version=4)


def _text_outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_tutorial_runs_in_quick_mode(name, tmp_path, monkeypatch):
    nb = copy.deepcopy(_read(name))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    monkeypatch.setenv(build.QUICK_ENV, "1")
    # Tiny models: one thread each; several threads on a shared, busy machine can be far slower.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name=build.KERNEL, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "quick mode" in _text_outputs(first), "the notebook did not see PYRO_AR_TUTORIAL_QUICK=1"


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_is_a_full_run_with_outputs(name):
    path = TUTORIALS / f"{name}.ipynb"
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    # Executed once, top to bottom, in a single fresh kernel: counts 1, 2, ..., N.
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{name}: execution counts {counts}; rebuild it"
    outputs = [o for c in code for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{name}: stored error output {errors[0].get('ename')}: {errors[0].get('evalue')}"
    stderr = [o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not stderr, f"{name}: stored warnings/stderr output: {stderr[0][:300]}"
    assert sum(1 for c in code if c.get("outputs")) >= len(code) // 2, f"{name}: most code cells have no output"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{name}: no plots stored"
    assert "full mode" in _text_outputs(code[0]), f"{name}: the stored outputs are not from the full mode"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES, f"{name}: {path.stat().st_size} bytes; shrink the figures"


def test_every_notebook_has_a_source():
    assert NAMES, "no tutorials/NN_name.py sources found"
    stored = sorted(p.stem for p in TUTORIALS.glob("*.ipynb"))
    assert stored == NAMES, f"notebooks {stored} but sources {NAMES}: each tutorials/NN_name.ipynb is built from NN_name.py"


@pytest.mark.parametrize("name", NAMES)
def test_source_is_valid_python(name):
    path = build.source_path(name)
    ast.parse(path.read_text(encoding="utf-8"), filename=str(path))  # magics must be commented: `# %matplotlib inline`


@pytest.mark.parametrize("name", NAMES)
def test_stored_notebook_matches_its_source(name):
    nb = _read(name)
    stored = [(c.cell_type, c.source) for c in nb.cells]
    assert stored == build.load_cells(name), (
        f"tutorials/{name}.ipynb differs from tutorials/{name}.py: "
        f"edit the source and run `python tutorials/build.py {name[:2]}`"
    )
    fresh = build.build_notebook(name)
    assert [c.get("id") for c in nb.cells] == [c.id for c in fresh.cells], f"{name}: cell ids are not the build's; rebuild it"
    assert nb.metadata.get("kernelspec") == fresh.metadata["kernelspec"], f"{name}: kernelspec {nb.metadata.get('kernelspec')}"


@pytest.mark.parametrize("name", NAMES)
def test_quick_mode_is_read_in_the_first_code_cell(name):
    first = next(src for kind, src in build.load_cells(name) if kind == "code")
    assert re.search(r'QUICK = os\.environ\.get\("PYRO_AR_TUTORIAL_QUICK"\) == "1"', first)


def test_readme_links_tutorials():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in NAMES if f"tutorials/{name}.ipynb" not in readme]
    assert not missing, f"README.md does not link {missing}"
