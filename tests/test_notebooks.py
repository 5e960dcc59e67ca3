"""Every notebook is stored with the outputs of a full run (made by
notebooks/execute.py, volatile metadata stripped) and runs top to bottom
again here, at a small size."""

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(NOTEBOOKS[0].parent))
import execute  # noqa: E402  (notebooks/execute.py: how they are run and stored)

#: The size the tests run every notebook at (at most)
TEST_ROWS = 300_000


def test_there_are_seven_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_with_its_outputs_and_nothing_volatile(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # run top to bottom once, in order, without an error
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), path.name
    assert any(c.outputs for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not [c for c in nb.cells if "execution" in c.metadata]  # timestamps
    assert "widgets" not in nb.metadata
    # the size is a plain parameter (no test plumbing in a tutorial)
    params = nb.cells[1]
    assert "parameters" in params.metadata.get("tags", [])
    assert params.source.count("N_ROWS = ") == 1 and "environ" not in params.source
    assert execute.default_rows(nb) >= 200


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own (inline) backend
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the notebook puts its data
    stored = nbformat.read(path, as_version=4)
    nb = execute.with_rows(stored, min(TEST_ROWS, execute.default_rows(stored)))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    execute.execute(nb, tmp_path, timeout=600)  # raises CellExecutionError, naming the cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # the notebook removed the data it generated
    assert not list(tmp_path.glob("dkmeans-notebook-*"))
    # dkmeans' plots show inline: the library never chose a backend
    if "plot" in "".join(c.source for c in nb.cells if c.cell_type == "code"):
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                  if "image/png" in o.get("data", {})]
        assert images, f"{path.name} plotted but displayed no figure"


@pytest.mark.slow
def test_progress_of_a_python_fit_shows_in_a_jupyter_kernel(tmp_path):
    pytest.importorskip("ipywidgets")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(
        "import numpy as np\n"
        "from dkmeans import KMeans\n"
        "X = np.random.default_rng(0).normal(size=(20000, 4))\n"
        "km = KMeans(4, random_state=0, progress=True).fit(X)"))
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = nb.cells[0].outputs
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json"
               in o.get("data", {})]
    assert widgets, outputs  # tqdm.auto drew widgets (bars), not text on stderr
    texts = " ".join(str(o.get("data", {}).get("text/plain", "")) for o in widgets)
    assert "Lloyd iterations" in texts
