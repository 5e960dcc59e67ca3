"""A release people can install: the sdist and the wheel built from this
checkout, the wheel installed (not editable) into a fresh virtual
environment and run from a folder outside the clone."""

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

import dkmeans

ROOT = Path(__file__).parent.parent


def _run(args, tmp: Path, **kwargs) -> subprocess.CompletedProcess:
    """``args`` with every temporary file (pip's, the demo's data, dask's
    scratch space) under ``tmp``, which the test's own folder removes."""
    (tmp / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp / "tmp")}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, **kwargs)
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-3000:])
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``python -m build``: the sdist, then the wheel built from it. Without
    isolation, so that nothing is downloaded: setuptools, setuptools-scm
    and build come with the test extra."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
         out)
    (sdist,), (wheel,) = out.glob("*.tar.gz"), out.glob("*.whl")
    return sdist, wheel


def test_the_version_comes_from_the_tag_and_the_metadata(dist):
    sdist, wheel = dist
    version = wheel.name.split("-")[1]
    assert Version(version)  # PEP 440
    assert sdist.name == f"dkmeans-{version}.tar.gz"
    # calendar versions, YYYY.M.N (a dev release of the next one between
    # tags), or setuptools-scm's for a clone without tags (CI checks out none)
    tag = subprocess.run(["git", "describe", "--tags", "--abbrev=0"], cwd=ROOT,
                         capture_output=True, text=True).stdout.strip()
    if tag:
        assert re.fullmatch(r"20\d\d\.\d{1,2}\.\d+", tag), tag
        *head, patch = tag.split(".")
        assert version == tag or version.startswith(".".join([*head, str(int(patch) + 1)])
                                                     + ".dev"), (tag, version)
    else:
        assert re.match(r"0\.1\.dev\d+\+g[0-9a-f]+", version), version
    with zipfile.ZipFile(wheel) as z:
        metadata = z.read(f"dkmeans-{version}.dist-info/METADATA").decode()
    assert f"\nVersion: {version}\n" in metadata
    assert "License-Expression: BSD-3-Clause" in metadata
    assert Version(dkmeans.__version__)  # this checkout's installed metadata


def test_the_wheel_and_the_sdist_hold_what_they_must(dist):
    sdist, wheel = dist
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert {"dkmeans/py.typed", "dkmeans/cli/command.py", "dkmeans/kernels/assign.py",
            "dkmeans/__main__.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith((".nbi", ".nbc"))]
    assert not [n for n in names if n.startswith(("tests/", "docs/", "notebooks/"))]
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    assert {"tests/test_release.py", "tests/conftest.py", "docs/conf.py", "CHANGELOG.md",
            "LICENSE", "notebooks/data/Mall_Customers.csv", "pyproject.toml"} <= members
    assert not [m for m in members if "__pycache__" in m or m.startswith("docs/_build")]


@pytest.mark.slow
@pytest.mark.cluster
def test_the_wheel_works_outside_the_clone(dist, tmp_path):
    _, wheel = dist
    version = wheel.name.split("-")[1]
    venv = tmp_path / "venv"
    # the dependencies come from this environment (system site packages),
    # dkmeans from the wheel alone: --no-deps, --no-index, nothing downloaded
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path)
    python, command = venv / "bin" / "python", venv / "bin" / "dkmeans"
    _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
         tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    printed = _run([str(command), "--version"], tmp_path, cwd=work).stdout.strip()
    assert printed == f"dkmeans {version}"
    fit = _run([str(python), "-c", """
import dask.array as da, dkmeans, numpy as np
from dkmeans import KMeans
X = np.vstack([np.random.default_rng(0).normal(c, 0.1, (500, 2)) for c in (0, 5)])
# chunked: the passes' kernels compile here, into the venv's cache, which
# the demo's workers then load
km = KMeans(2, random_state=0).fit(da.from_array(X, chunks=250))
x = sorted((np.round(km.cluster_centers_[:, 0]) + 0.0).tolist())
print(dkmeans.__file__, dkmeans.__version__, x)
"""], tmp_path, cwd=work).stdout.split()
    assert Path(fit[0]).is_relative_to(venv)  # the wheel's, not the clone's
    assert fit[1] == version
    assert " ".join(fit[2:]) == "[0.0, 5.0]"
    # the main job, as a newcomer runs it (smaller): its data in the temporary
    # folder, removed at the end with dask's scratch space; the plot here
    demo = _run([str(command), "demo", "--rows", "40000", "--features", "4", "--clusters", "4",
                 "--workers", "1"], tmp_path, cwd=work).stdout
    assert "fitted KMeans(n_clusters=4" in demo and "the generated data was removed" in demo
    gap = float(demo.split("farthest true blob center from a found center:")[1].split()[0])
    assert gap < 0.1  # every true center was found
    assert not list((tmp_path / "tmp").iterdir())  # neither our data nor dask's scratch
    assert (work / "dkmeans-demo.png").stat().st_size > 10_000
    # --path keeps the data there; a picture of the user's is never replaced
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "dkmeans-demo.png").write_bytes(b"the user's picture")
    again = _run([str(command), "demo", "--rows", "20000", "--features", "2", "--clusters", "2",
                  "--workers", "1", "--path", str(keep)], tmp_path, cwd=work).stdout
    assert (keep / "X.zarr").is_dir()
    assert (keep / "dkmeans-demo.png").read_bytes() == b"the user's picture"
    assert "plot: " in again and (keep / "dkmeans-demo-2.png").stat().st_size > 10_000
