"""The cluster configuration (the demo, the README's main job, runs from the
wheel in tests/test_release.py)."""

import subprocess
import sys

import pytest

from dkmeans.cli.cluster import load_config
from dkmeans.errors import InvalidParameterError


def test_config_defaults_file_env_and_flags(tmp_path, monkeypatch):
    assert load_config()["n_workers"] == 2
    f = tmp_path / "c.yaml"
    f.write_text("type: local\nn_workers: 3\n")
    assert load_config(f)["n_workers"] == 3
    monkeypatch.setenv("DKMEANS_CLUSTER__N_WORKERS", "5")
    assert load_config(f)["n_workers"] == 5  # environment over file
    assert load_config(f, n_workers=1)["n_workers"] == 1  # flags over environment


@pytest.mark.parametrize("text,match", [
    ("n_wrkers: 2\n", "Unknown key 'n_wrkers'"),
    ("n_workers: two\n", "'n_workers' has the wrong type"),
    ("n_workers: true\n", "'n_workers' has the wrong type"),
    ("type: yarn\n", "Unknown cluster type 'yarn'"),
    ("type: scheduler\n", "needs the key 'address'"),
    ("type: scheduler\naddress: tcp://x:1\ntls: {ca: a}\n", "under 'tls'"),
    ("type: slurm\ncores: 4\n", "needs the key 'memory'"),
    ("- 1\n", "expected a mapping"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_config_names_the_key(tmp_path, text, match):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(InvalidParameterError, match=match):
        load_config(f)


@pytest.mark.parametrize("name", ["local", "scheduler", "slurm", "kubernetes"])
def test_shipped_configs_are_valid(name):
    from pathlib import Path

    config = load_config(Path(__file__).parents[1] / "cluster_configs" / f"{name}.yaml")
    assert config["type"] == name


@pytest.mark.parametrize("name,package", [("slurm", "dask-jobqueue"),
                                          ("kubernetes", "dask-kubernetes")])
def test_missing_cluster_package_is_named(name, package):
    import importlib.util
    from pathlib import Path

    from dkmeans.cli.cluster import connect

    module = {"slurm": "dask_jobqueue", "kubernetes": "dask_kubernetes"}[name]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(InvalidParameterError, match=f"pip install {package}"), \
            connect(Path(__file__).parents[1] / "cluster_configs" / f"{name}.yaml"):
        pass


def test_progress_reports_every_block_of_every_pass():
    import io

    import dask.array as da
    import numpy as np

    from dkmeans import KMeans
    from dkmeans.progress import PassBars
    from dkmeans.runner import report_progress

    X = da.from_array(np.random.default_rng(0).normal(size=(4000, 3)), chunks=(500, 3))
    seen = []
    with report_progress(lambda name, done, total: seen.append((name, done, total))):
        km = KMeans(3, random_state=0, max_iter=3).fit(X)
    per_pass = {}
    for name, done, total in seen:
        per_pass.setdefault(name, []).append(done)
        assert total == 8
    assert set(per_pass) >= {"dkmeans-scan", "dkmeans-seed-round", "dkmeans-lloyd",
                             "dkmeans-assign"}
    # every pass counted 1..8, once per block
    lloyd = per_pass["dkmeans-lloyd"]
    assert lloyd == list(range(1, 9)) * km.n_iter_
    out = io.StringIO()
    bar = PassBars(out, mininterval=0)  # tqdm's text bar off a notebook, every update
    bar("dkmeans-lloyd", 4, 8)
    bar("dkmeans-lloyd", 8, 8)
    bar.close()
    assert "lloyd" in out.getvalue() and "4/8" in out.getvalue() and "8/8" in out.getvalue()


@pytest.mark.cluster
def test_progress_on_a_cluster():
    import dask.array as da
    import distributed
    import numpy as np

    from dkmeans import KMeans
    from dkmeans.runner import report_progress

    X = da.from_array(np.random.default_rng(0).normal(size=(4000, 3)), chunks=(1000, 3))
    seen = []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster), \
            report_progress(lambda name, done, total: seen.append((name, done, total))):
        KMeans(3, random_state=0, max_iter=2).fit(X)
    lloyd = [(d, t) for n, d, t in seen if n == "dkmeans-lloyd"]
    (blocks,) = {t for _, t in lloyd}
    dones = [d for d, _ in lloyd]
    assert len(dones) == 2 * blocks  # two iterations, every block reported once each
    assert dones == list(range(1, blocks + 1)) * 2


def test_connect_keeps_no_message_log_and_restores_the_config():
    import dask

    from dkmeans.cli.cluster import connect

    key = "distributed.admin.low-level-log-length"
    before = dask.config.get(key)
    with connect(n_workers=1) as client:
        # distributed's log of each connection's recent messages would keep a
        # job's pass graphs in this process (up to 1,000 of them)
        assert client.scheduler_comm.recent_message_log.maxlen == 0
        assert client.submit(sum, [1, 2]).result() == 3
    assert dask.config.get(key) == before


def test_version_and_demo_help_say_what_they_are():

    from dkmeans import __version__

    out = subprocess.run([sys.executable, "-m", "dkmeans", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == f"dkmeans {__version__}"
    text = subprocess.run([sys.executable, "-m", "dkmeans", "demo", "--help"],
                          capture_output=True, text=True, check=True).stdout
    for option in ("--rows", "--features", "--clusters", "--seed", "--path", "--plot"):
        line = next(part for part in text.split("\n  -") if part.lstrip("-").startswith(
            option.lstrip("-")))
        assert "default" in line, line


def test_a_typo_in_columns_names_every_missing_one_and_unknown_files_are_named(tmp_path):
    import numpy as np

    from dkmeans import InputTypeError, InvalidInputError, KMeans

    csv = tmp_path / "customers.csv"
    csv.write_text("age,income,spend\n" + "\n".join(f"{i},{2 * i},{3 * i}" for i in range(50)))
    with pytest.raises(InvalidInputError, match=r"\['agee', 'spnd'\] are not in"):
        KMeans(2).fit(dkmeans_open(csv, ["agee", "income", "spnd"]))
    data = tmp_path / "customers.data"
    data.write_text(csv.read_text())
    with pytest.raises(InputTypeError, match="cannot tell the kind"):
        KMeans(2).fit(str(data))
    assert np.isfinite(KMeans(2).fit(dkmeans_open(csv, ["age", "spend"])).inertia_)


def dkmeans_open(path, columns):
    import dkmeans

    return dkmeans.open_array(str(path), columns=columns)
