"""The first-hour path of the docs' getting-started page, end to end: the
commands of its "Your first hour" block, read from the page itself (so the
two cannot drift apart) and run in a scratch copy of the notebooks' data
(the demo it starts with runs in tests/test_release.py, the notebook it
opens in tests/test_notebooks.py). The install line is the environment this
test runs in."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dkmeans

ROOT = Path(__file__).parent.parent


def first_hour_commands() -> list[list[str]]:
    page = (ROOT / "docs" / "getting-started.md").read_text()
    section = page.split("## Your first hour", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]


@pytest.mark.slow
def test_the_readme_first_hour_runs_as_written(tmp_path):
    commands = first_hour_commands()
    assert [c[:2] for c in commands] == [
        ["python3", "-m"], ["dkmeans", "demo"], ["dkmeans", "fit"], ["dkmeans", "evaluate"],
        ["dkmeans", "predict"], ["jupyter", "lab"]]
    (tmp_path / "notebooks").mkdir()
    shutil.copytree(ROOT / "notebooks" / "data", tmp_path / "notebooks" / "data")
    results = {}
    # `dkmeans demo` as written: tests/test_release.py runs it (from the
    # wheel, outside the clone); the table's three commands run here
    assert commands[1] == ["dkmeans", "demo"]
    for command in commands[2:5]:
        args = command[1:]
        proc = subprocess.run([sys.executable, "-m", "dkmeans", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
        results[args[0]] = proc
    # the model, the scores and the segments, against the same work in Python
    customers = pd.read_csv(ROOT / "notebooks" / "data" / "Mall_Customers.csv")
    features = ["Age", "Annual Income (k$)", "Spending Score (1-100)"]
    model = dkmeans.load(tmp_path / "customers-model")
    assert list(model.feature_names_in_) == features and model.scale
    ref = dkmeans.KMeans(5, random_state=0, scale=True).fit(customers[features])
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, rtol=1e-6)
    assert "suggested:" in results["evaluate"].stdout
    assert "stability of k=5" in results["evaluate"].stdout
    segments = pd.read_csv(tmp_path / "segments.csv")
    assert list(segments.columns) == ["row", "CustomerID", "label", "distance"]
    assert list(segments["CustomerID"]) == list(customers["CustomerID"])
    np.testing.assert_array_equal(segments["label"], ref.predict(customers[features]))
    # the notebook the last line opens: tests/test_notebooks.py runs every
    # notebook of notebooks/ top to bottom in a real kernel
    notebook = ROOT / commands[5][2]
    assert notebook.parent == ROOT / "notebooks" and notebook.suffix == ".ipynb"
    assert notebook.is_file()
