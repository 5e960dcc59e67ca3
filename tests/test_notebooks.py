"""Every notebook runs top to bottom, at a small size, and is stored without outputs."""

import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_six_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name
    # the size is a parameter the tests can set
    assert "DKMEANS_NOTEBOOK_ROWS" in nb.cells[1].source
    assert "parameters" in nb.cells[1].metadata.get("tags", [])


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("DKMEANS_NOTEBOOK_ROWS", "300000")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own (inline) backend
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where the notebook puts its data
    nb = nbformat.read(path, as_version=4)
    shutil.copytree(path.parent / "data", tmp_path / "data")  # the tables they read
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert os.environ["DKMEANS_NOTEBOOK_ROWS"] == "300000"
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
