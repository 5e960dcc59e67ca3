"""Data, models, labels and checkpoints in object storage, on workers that
share no files with the client.

Real parts only: an S3-protocol server (``moto_server``) on loopback, and a
``dask scheduler`` with ``dask worker`` processes each in its own mount
namespace with a private tmpfs over the tests' temp folder and no cloud
credentials in their environment (``conftest.py``).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import zarr
from _cli import run
from sklearn.datasets import make_blobs

import dkmeans
from dkmeans import KMeans, MiniBatchKMeans
from dkmeans.data.storage import NotSharedError

distributed = pytest.importorskip("distributed")
s3fs = pytest.importorskip("s3fs")

pytestmark = pytest.mark.cluster

N, D, K = 20_000, 6, 8


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(N, centers=K, n_features=D, cluster_std=1.5, random_state=3)
    return X


@pytest.fixture(scope="module")
def s3_data(s3, X):
    """X as a Zarr array in the bucket, and as a .npy object."""
    z = zarr.create_array("s3://dkmeans/X.zarr", shape=X.shape, chunks=(2500, D), dtype="f8",
                          storage_options=s3, overwrite=True)
    z[:] = X
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    with fs.open("dkmeans/X.npy", "wb") as f:
        np.save(f, X)
    return "s3://dkmeans/X.zarr"


@pytest.fixture(scope="module")
def client(isolated_cluster):
    with distributed.Client(isolated_cluster, timeout="60s") as c:
        c.wait_for_workers(2, timeout=120)
        yield c


@pytest.fixture(scope="module")
def reference(X):
    with dask.config.set(scheduler="threads"):
        return KMeans(K, random_state=5).fit(X)


def _fs(s3):
    return s3fs.S3FileSystem(**s3, skip_instance_cache=True)


def test_workers_see_neither_client_files_nor_credentials(client, tmp_path):
    (tmp_path / "here").write_text("client only")
    seen = client.run(os.path.exists, str(tmp_path / "here"))
    assert list(seen.values()) == [False, False]
    envs = client.run(lambda: sorted(k for k in os.environ if k.startswith("AWS_")))
    assert all(v == [] for v in envs.values())


def test_fit_from_s3_equals_local_fit(client, s3, s3_data, reference):
    km = KMeans(K, random_state=5).fit(s3_data, storage_options=s3)
    np.testing.assert_allclose(km.cluster_centers_, reference.cluster_centers_, rtol=1e-12)
    assert km.n_iter_ == reference.n_iter_
    assert km.inertia_ == pytest.approx(reference.inertia_, rel=1e-12)
    streamed = KMeans(K, random_state=5, persist=False).fit(
        dkmeans.open_array(s3_data, storage_options=s3))
    np.testing.assert_allclose(streamed.cluster_centers_, reference.cluster_centers_,
                               rtol=1e-12)
    from_npy = KMeans(K, random_state=5).fit("s3://dkmeans/X.npy", storage_options=s3)
    np.testing.assert_allclose(from_npy.cluster_centers_, reference.cluster_centers_,
                               rtol=1e-12)


def test_gaussian_mixture_from_s3_equals_local_fit(client, s3, s3_data, X, tmp_path):
    local = dkmeans.GaussianMixture(K, covariance_type="diag", random_state=5)
    with dask.config.set(scheduler="threads"):
        local.fit(X)
    remote = dkmeans.GaussianMixture(K, covariance_type="diag", random_state=5).fit(
        s3_data, storage_options=s3)
    assert remote.n_iter_ == local.n_iter_
    np.testing.assert_allclose(remote.means_, local.means_, rtol=1e-9)
    np.testing.assert_allclose(remote.covariances_, local.covariances_, rtol=1e-9)
    remote.save("s3://dkmeans/models/gm", storage_options=s3)
    back = dkmeans.load("s3://dkmeans/models/gm", storage_options=s3)
    np.testing.assert_allclose(back.predict_proba(X), local.predict_proba(X), rtol=1e-9,
                               atol=1e-12)


def test_predict_to_zarr_on_s3_equals_predict(client, s3, s3_data, X, reference):
    out = reference.predict_to_zarr(s3_data, "s3://dkmeans/out/labels.zarr",
                                    storage_options=s3)
    assert out.url == "s3://dkmeans/out/labels.zarr"
    labels = zarr.open_array("s3://dkmeans/out/labels.zarr", mode="r", storage_options=s3)[:]
    np.testing.assert_array_equal(labels, reference.predict(X))
    # no staging prefix is left once the write succeeded
    assert _fs(s3).ls("dkmeans/out", detail=False) == ["dkmeans/out/labels.zarr"]


def test_save_and_load_round_trip_at_an_s3_url(client, s3, X, reference):
    reference.save("s3://dkmeans/models/km", storage_options=s3)
    back = dkmeans.load("s3://dkmeans/models/km", storage_options=s3)
    np.testing.assert_array_equal(back.cluster_centers_, reference.cluster_centers_)
    np.testing.assert_array_equal(back.predict(X), reference.predict(X))
    # a mini-batch model continues where it was saved
    mb = MiniBatchKMeans(K, random_state=0, batch_size=500)
    never_saved = MiniBatchKMeans(K, random_state=0, batch_size=500)
    for m in (mb, never_saved):
        m.partial_fit(X[:5000])
    mb.save("s3://dkmeans/models/mb", storage_options=s3)
    loaded = dkmeans.load("s3://dkmeans/models/mb", storage_options=s3)
    for m in (loaded, never_saved):
        m.partial_fit(X[5000:10000])
    np.testing.assert_array_equal(loaded.cluster_centers_, never_saved.cluster_centers_)
    assert loaded.n_steps_ == never_saved.n_steps_


def test_paths_the_workers_cannot_see_fail_before_any_work(client, X, reference, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotSharedError, match="not visible to 2 of the cluster's 2 workers"):
        reference.predict_to_zarr(X, "labels.zarr")
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, no probe left
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(NotSharedError, match=r"X\.npy"):
        KMeans(K).fit("X.npy")
    zarr.create_array(str(tmp_path / "local.zarr"), shape=X.shape, chunks=(5000, D),
                      dtype="f8")[:] = X
    with pytest.raises(NotSharedError, match=r"local\.zarr"):
        KMeans(K).fit(str(tmp_path / "local.zarr"))
    with pytest.raises(NotSharedError, match="memory://"):
        reference.predict_to_zarr(X, "memory://labels.zarr")


def test_a_failed_write_leaves_the_previous_output_whole(client, s3, s3_data, X, reference,
                                                         monkeypatch):
    from dkmeans.data import outputs, storage

    target = "s3://dkmeans/keep/labels.zarr"
    reference.predict_to_zarr(s3_data, target, storage_options=s3)
    other = KMeans(3, random_state=0).fit(X)

    def broken_swap(stage, loc):
        raise OSError("connection reset")

    monkeypatch.setattr(outputs, "_swap_in", broken_swap)
    with pytest.raises(OSError, match="connection reset"):
        other.predict_to_zarr(s3_data, target, storage_options=s3, overwrite=True)
    monkeypatch.undo()
    labels = zarr.open_array(target, mode="r", storage_options=s3)[:]
    np.testing.assert_array_equal(labels, reference.predict(X))
    assert _fs(s3).ls("dkmeans/keep", detail=False) == ["dkmeans/keep/labels.zarr"]

    # a model save that fails before model.json is written keeps the old model
    reference.save("s3://dkmeans/keep/model", storage_options=s3)
    real_put = storage.put_atomic

    def fail_on_meta(loc, data, mode=None):
        if loc.name == "model.json":
            raise OSError("killed")
        real_put(loc, data, mode)

    monkeypatch.setattr("dkmeans.estimators.modelfile.put_atomic", fail_on_meta)
    with pytest.raises(OSError, match="killed"):
        other.save("s3://dkmeans/keep/model", storage_options=s3, overwrite=True)
    monkeypatch.undo()
    back = dkmeans.load("s3://dkmeans/keep/model", storage_options=s3)
    np.testing.assert_array_equal(back.cluster_centers_, reference.cluster_centers_)
    # the next successful save removes the old model's arrays
    other.save("s3://dkmeans/keep/model", storage_options=s3, overwrite=True)
    files = _fs(s3).ls("dkmeans/keep/model", detail=False)
    assert len(files) == 2 and dkmeans.load("s3://dkmeans/keep/model",
                                            storage_options=s3).n_clusters == 3


def test_numpy_input_is_scattered_once_not_embedded_in_graphs(client):
    X = np.random.default_rng(0).normal(size=(400_000, 16)).astype(np.float32)
    # filterwarnings=error: distributed's "Sending large graph" warning would fail this
    km = KMeans(4, random_state=0, max_iter=3).fit(X)
    assert km.cluster_centers_.shape == (4, 16)
    assert km.predict(X[:10]).shape == (10,)


def test_xarray_dataarrays_are_accepted(client, s3, s3_data, reference):
    xr = pytest.importorskip("xarray")
    arr = dkmeans.open_array(s3_data, storage_options=s3)
    da_ = xr.DataArray(arr, dims=("sample", "feature"))
    km = KMeans(K, random_state=5).fit(da_)
    np.testing.assert_allclose(km.cluster_centers_, reference.cluster_centers_, rtol=1e-12)


# ------------------------------------------------------------ command line


_cli = run


@pytest.fixture
def cluster_file(isolated_cluster, tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text(f"type: scheduler\naddress: {isolated_cluster}\ntimeout: 60s\n")
    return path


def test_command_line_on_s3_killed_and_resumed(s3, s3_data, cluster_file, tmp_path,
                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    # large enough to kill mid-run: 36 iterations of an ill-separated problem
    X, _ = make_blobs(60_000, centers=40, n_features=8, cluster_std=8.0, random_state=1)
    z = zarr.create_array("s3://dkmeans/jobs/X.zarr", shape=X.shape, chunks=(7500, 8),
                          dtype="f4", storage_options=s3, overwrite=True)
    z[:] = X.astype(np.float32)
    opts = ["--cluster", cluster_file, "--storage-options", json.dumps(s3)]
    job = ["fit", "s3://dkmeans/jobs/X.zarr", "-k", 40, "--random-state", 2, "--tol", 0,
           "--max-iter", 36, "--checkpoint-every", 2, *opts]
    whole = json.loads(_cli(*job, "-o", "s3://dkmeans/jobs/whole", "--json", "-q").stdout)
    assert whole["state"] == "complete" and whole["model"] == "s3://dkmeans/jobs/whole"

    proc = subprocess.Popen([sys.executable, "-m", "dkmeans", *map(str, job), "-o",
                             "s3://dkmeans/jobs/killed", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fs = _fs(s3)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        fs.invalidate_cache()
        if fs.exists("dkmeans/jobs/killed/model.json"):
            meta = json.loads(fs.cat_file("dkmeans/jobs/killed/model.json"))
            if meta["state"] == "checkpoint" and meta["fitted"]["n_iter"] >= 4:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    info = json.loads(_cli("info", "s3://dkmeans/jobs/killed", "--json", "--storage-options",
                           json.dumps(s3)).stdout)
    assert info["state"] == "checkpoint"
    resumed = json.loads(_cli(*job, "-o", "s3://dkmeans/jobs/killed", "--resume", "--json",
                              "-q").stdout)
    assert resumed["resumed_from"] >= 4
    a = dkmeans.load("s3://dkmeans/jobs/whole", storage_options=s3)
    b = dkmeans.load("s3://dkmeans/jobs/killed", storage_options=s3)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.inertia_history_, b.inertia_history_)

    # credentials from the client's AWS environment reach the workers, which
    # have none, when the job asks for it (--pass-credentials)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": s3["key"], "AWS_SECRET_ACCESS_KEY": s3["secret"],
           "AWS_ENDPOINT_URL": s3["endpoint_url"]}
    _cli("predict", "s3://dkmeans/jobs/whole", "s3://dkmeans/jobs/X.zarr", "-o",
         "s3://dkmeans/jobs/labels.zarr", "--cluster", cluster_file, "-q",
         "--pass-credentials", env=env)
    labels = zarr.open_array("s3://dkmeans/jobs/labels.zarr", mode="r", storage_options=s3)[:]
    np.testing.assert_array_equal(labels, a.predict(X.astype(np.float32)))
    # a changed input is refused on --resume, naming what changed
    bad = _cli(*job[:1], "s3://dkmeans/X.zarr", *job[2:], "-o", "s3://dkmeans/jobs/whole",
               "--resume", check=False)
    assert bad.returncode == 2 and "Refusing to resume" in bad.stderr
    # no local folder named like a URL ever appears
    assert not any(p.name.startswith("s3:") for p in Path(tmp_path).rglob("*"))
    assert not Path("s3:").exists()


def test_labels_write_killed_midway_leaves_old_or_new_never_a_mixture(
        s3, cluster_file, tmp_path, reference, X):
    """``dkmeans predict`` killed with SIGKILL while it writes labels to S3."""
    opts = ["--cluster", cluster_file, "--storage-options", json.dumps(s3)]
    big = np.tile(X, (20, 1)).astype(np.float32)  # 400,000 rows: many chunks to write
    z = zarr.create_array("s3://dkmeans/kill/X.zarr", shape=big.shape, chunks=(10_000, D),
                          dtype="f4", storage_options=s3, overwrite=True)
    z[:] = big
    reference.save("s3://dkmeans/kill/old", storage_options=s3)
    KMeans(3, random_state=0).fit(X).save("s3://dkmeans/kill/new", storage_options=s3)
    target = "s3://dkmeans/kill/labels.zarr"
    _cli("predict", "s3://dkmeans/kill/old", "s3://dkmeans/kill/X.zarr", "-o", target, *opts,
         "-q")
    old = zarr.open_array(target, mode="r", storage_options=s3)[:]
    proc = subprocess.Popen([sys.executable, "-m", "dkmeans", "predict", "s3://dkmeans/kill/new",
                             "s3://dkmeans/kill/X.zarr", "-o", target, *map(str, opts), "-q",
                             "--force"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fs = _fs(s3)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        fs.invalidate_cache()
        if any(".labels.zarr.tmp-" in p for p in fs.ls("dkmeans/kill", detail=False)):
            break
        time.sleep(0.01)
    killed_while_writing = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    print(f"killed while writing: {killed_while_writing}")
    now = zarr.open_array(target, mode="r", storage_options=s3)[:]
    new = dkmeans.load("s3://dkmeans/kill/new", storage_options=s3).predict(big)
    assert np.array_equal(now, old) or np.array_equal(now, new)  # whole, one or the other
    # the next write removes what the killed one left, and succeeds
    _cli("predict", "s3://dkmeans/kill/new", "s3://dkmeans/kill/X.zarr", "-o", target, *opts,
         "-q", "--force")
    np.testing.assert_array_equal(zarr.open_array(target, mode="r", storage_options=s3)[:],
                                  new)
    fs.invalidate_cache()
    assert [p for p in fs.ls("dkmeans/kill", detail=False) if ".tmp-" in p] == []


def test_no_client_secret_on_the_workers_during_or_after_a_job(s3, dask_processes, tmp_path):
    """A second client of the scheduler looks for the job's AWS secret in every
    object of the scheduler and the workers, while a command-line job runs and
    after it ended: by default the secret never leaves the job's process; with
    --pass-credentials it travels with the tasks but is forgotten at the end."""
    from conftest import without_cloud_credentials

    secret = "job-secret-" + os.urandom(8).hex()
    halves = (secret[:10], secret[10:])  # the whole never travels in the probe

    def holds(a, b):
        import gc

        needle = a + b
        raw = needle.encode()
        for o in gc.get_objects():
            values = o.values() if isinstance(o, dict) else o \
                if isinstance(o, (list, tuple)) else ()
            try:
                if any((type(v) is str and needle in v) or (type(v) is bytes and raw in v)
                       for v in values):
                    return True
            except Exception:
                continue
        return False

    X, _ = make_blobs(30_000, centers=20, n_features=8, cluster_std=8.0, random_state=1)
    z = zarr.create_array("s3://dkmeans/secret/X.zarr", shape=X.shape, chunks=(5000, 8),
                          dtype="f4", storage_options=s3, overwrite=True)
    z[:] = X.astype(np.float32)
    workers_env = {**without_cloud_credentials(os.environ),
                   "AWS_ACCESS_KEY_ID": "workers-own-key",
                   "AWS_SECRET_ACCESS_KEY": "workers-own-secret"}
    job_env = {**os.environ, "AWS_ACCESS_KEY_ID": "job-key", "AWS_SECRET_ACCESS_KEY": secret}
    with dask_processes(tmp_path, 2, env=workers_env) as address, \
            distributed.Client(address, timeout="60s") as probe:
        probe.wait_for_workers(2, timeout=120)
        cluster = tmp_path / "cluster.yaml"
        cluster.write_text(f"type: scheduler\naddress: {address}\ntimeout: 60s\n")

        def found(wait=0.0):
            """Whether the secret is anywhere, still there after ``wait`` s."""
            deadline = time.monotonic() + wait
            while True:
                seen = any(probe.run(holds, *halves).values()) or \
                    probe.run_on_scheduler(holds, *halves)
                if not seen or time.monotonic() > deadline:
                    return seen
                time.sleep(0.5)

        job = ["fit", "s3://dkmeans/secret/X.zarr", "-k", 20, "--tol", 0, "--max-iter", 25,
               "--cluster", cluster, "--storage-options",
               json.dumps({"endpoint_url": s3["endpoint_url"]}), "-q"]
        proc = subprocess.Popen([sys.executable, "-m", "dkmeans", *map(str, job), "-o",
                                 "s3://dkmeans/secret/m"], env=job_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        scans_during = 0
        while proc.poll() is None:
            assert not found(), "the job's secret is on the scheduler or a worker"
            scans_during += proc.poll() is None
            time.sleep(1.0)  # a scan takes the cores the job runs on
        assert proc.returncode == 0, proc.stderr.read()[-2000:]
        assert scans_during >= 1
        assert not found(wait=10)
        # asked to pass the credentials: the workers use them, then forget them
        _cli(*job, "-o", "s3://dkmeans/secret/m2", "--pass-credentials", env=job_env)
        # the job's teardown and the scheduler's release of its tasks take a moment
        assert not found(wait=10), "the passed secret outlived the job on the cluster"
        np.testing.assert_array_equal(
            dkmeans.load("s3://dkmeans/secret/m", storage_options=s3).cluster_centers_,
            dkmeans.load("s3://dkmeans/secret/m2", storage_options=s3).cluster_centers_)
