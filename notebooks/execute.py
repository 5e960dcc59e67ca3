"""Run the notebooks top to bottom and store them with their outputs.

The notebooks are committed with the outputs of a full-size run, so they
read on a repository page; this script makes those outputs and strips what
changes from run to run without meaning (execution timestamps, widget
state). ``tests/test_notebooks.py`` runs them again at a small size.

    python notebooks/execute.py                 # every notebook, full size
    python notebooks/execute.py 04 --rows 100   # one, smaller (not for commits)
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

#: The parameters cell (the first code cell, tagged "parameters") sets N_ROWS
_ROWS = re.compile(r"^N_ROWS = ([0-9_]+)", re.MULTILINE)


def default_rows(nb: nbformat.NotebookNode) -> int:
    """The notebook's own size: N_ROWS of its parameters cell."""
    return int(_ROWS.search(nb.cells[1].source).group(1).replace("_", ""))


def with_rows(nb: nbformat.NotebookNode, rows: int) -> nbformat.NotebookNode:
    """The notebook with N_ROWS set to ``rows`` (as papermill injects parameters)."""
    nb = nbformat.from_dict(nb)
    nb.cells[1].source = _ROWS.sub(f"N_ROWS = {rows:_}", nb.cells[1].source)
    return nb


def strip_volatile(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop what changes from run to run without meaning: per-cell execution
    timestamps, the widgets' saved state."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 1800,
            ) -> nbformat.NotebookNode:
    """Run ``nb`` in a fresh Python kernel with ``workdir`` (holding a copy of
    notebooks/data) as its working directory."""
    import nbclient

    shutil.copytree(HERE / "data", workdir / "data", dirs_exist_ok=True)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--rows", type=int, default=None,
                        help="run at this size instead of the notebook's own")
    args = parser.parse_args()
    for path in sorted(HERE.glob("*.ipynb")):
        if args.which and not any(path.name.startswith(w) for w in args.which):
            continue
        nb = nbformat.read(path, as_version=4)
        rows = args.rows or default_rows(nb)
        run = with_rows(nb, rows)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="dkmeans-notebooks-") as tmp:
            execute(run, Path(tmp))
        # the stored notebook keeps its own parameters cell
        run.cells[1].source = nb.cells[1].source
        nbformat.write(strip_volatile(run), path)
        print(f"{path.name}: {rows:,} rows, {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
