"""The README's main job and the cluster configuration."""

import subprocess
import sys

import pytest

from dkmeans.cluster import load_config
from dkmeans.errors import InvalidParameterError


@pytest.mark.cluster
def test_demo_runs_and_recovers_the_blobs(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "dkmeans", "demo", "--rows", "60000", "--features", "4",
         "--clusters", "5", "--workers", "1", "--path", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=True).stdout
    assert "fitted KMeans(n_clusters=5" in out
    gap = float(out.split("farthest true blob center from a found center:")[1].split()[0])
    assert gap < 0.1  # every true center was found
    assert (tmp_path / "X.zarr").is_dir()


def test_config_defaults_and_file(tmp_path):
    assert load_config()["n_workers"] == 2
    f = tmp_path / "c.yaml"
    f.write_text("type: local\nn_workers: 3\n")
    assert load_config(f)["n_workers"] == 3
    assert load_config(f, n_workers=1)["n_workers"] == 1


@pytest.mark.parametrize("text,match", [
    ("n_wrkers: 2\n", "Unknown key 'n_wrkers'"),
    ("n_workers: two\n", "'n_workers' has the wrong type"),
    ("type: slurm\n", "'slurm' is not supported"),
    ("- 1\n", "expected a mapping"),
])
def test_bad_config_names_the_key(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(InvalidParameterError, match=match):
        load_config(f)


def test_shipped_local_config_is_valid():
    from pathlib import Path

    assert load_config(Path(__file__).parents[1] / "cluster_configs" / "local.yaml")
