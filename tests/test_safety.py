"""Unattended runs never destroy, mix up or leak what is not theirs (issue 26).

Each numbered case of the issue has a test here that failed before the fix,
through the public API or the ``dkmeans`` command.
"""

import json
import os
import stat
import subprocess
import sys
import threading
import warnings
from functools import partial

import numpy as np
import pytest
import zarr
from _cli import run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dkmeans
from dkmeans import InvalidInputError, KMeans, sweep
from dkmeans.data.storage import locate
from dkmeans.errors import InvalidParameterError, OutputExistsError, WriteConflictError

_cli = partial(run, check=False)


def _tree(root):
    """Every file under ``root`` with its bytes (folders as None)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = None
        for f in filenames:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(-3, 0.5, (150, 2)), rng.normal(3, 0.5, (150, 2))])


@pytest.fixture(scope="module")
def km(X):
    return KMeans(2, random_state=0).fit(X)


# ---------------------------------------------------------------- 1. models


def test_save_refuses_a_folder_of_other_files(km, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    np.save(folder / "X.npy", np.ones((3, 2)))
    (folder / "notes.tmp-keep.txt").write_text("mine")
    before = _tree(tmp_path)
    with pytest.raises(OutputExistsError, match="not a dkmeans model's"):
        km.save(folder)
    with pytest.raises(OutputExistsError, match="not a dkmeans model's"):
        km.save(folder, overwrite=True)  # not even when asked to overwrite
    assert _tree(tmp_path) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        km.save(tmp_path / "file")


def test_cli_fit_into_the_data_folder_is_refused(X, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "X.npy", X)
    np.save(data / "other_features.npy", X[:, :1])
    before = _tree(tmp_path)
    proc = _cli("fit", data / "X.npy", "-k", "3", "-o", data, "-q")
    assert proc.returncode == 2, proc.stderr
    assert "not a dkmeans model's" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("fit", data / "X.npy", "-k", "3", "-o", data, "-q", "--force")
    assert proc.returncode == 2
    assert _tree(tmp_path) == before


def test_resave_removes_only_what_the_old_model_named(km, X, tmp_path):
    km.save(tmp_path / "m")
    old = {p.name for p in (tmp_path / "m").iterdir()}
    # an orphan of a save killed before its model.json: of the writer's form,
    # so the folder is still a model's, but no model.json names it
    orphan = tmp_path / "m" / "cluster_centers-0123456789ab.npy"
    orphan.write_bytes(b"left by a killed save")
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m", overwrite=True)
    now = {p.name for p in (tmp_path / "m").iterdir()}
    assert orphan.exists()
    assert not (old - {"model.json"}) & now  # the old model's arrays are gone
    assert dkmeans.load(tmp_path / "m").n_clusters == 3


# ---------------------------------------------------------------- 2. labels


def test_labels_never_replace_what_is_not_dkmeans_labels(km, X, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "thesis.tex").write_text("years of work")
    np.save(tmp_path / "data.npy", X)
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, chunks=(100, 2),
                          dtype="f8")
    z[:] = X
    before = _tree(tmp_path)
    for target in (project, tmp_path / "data.npy", tmp_path / "X.zarr"):
        with pytest.raises(OutputExistsError):
            km.predict_to_zarr(X, target, overwrite=True)
    with pytest.raises(OutputExistsError, match="is the input"):
        km.predict_to_zarr(str(tmp_path / "X.zarr"), tmp_path / "X.zarr", overwrite=True)
    with pytest.raises(OutputExistsError, match="is the input"):
        km.predict_to_zarr(zarr.open_array(str(tmp_path / "X.zarr")), tmp_path / "X.zarr")
    assert _tree(tmp_path) == before

    # dkmeans' own labels: replaced only when asked
    out = tmp_path / "labels.zarr"
    km.predict_to_zarr(X, out)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        km.predict_to_zarr(X, out)
    other = KMeans(3, random_state=0).fit(X)
    other.predict_to_zarr(X, out, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(out))[:], other.predict(X))
    # a labels array with a user's file inside it is not replaced either
    (out / "README").write_text("mine")
    with pytest.raises(OutputExistsError):
        km.predict_to_zarr(X, out, overwrite=True)


def test_cli_predict_refuses_the_input_and_foreign_targets(km, X, tmp_path):
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, chunks=(100, 2),
                          dtype="f8")
    z[:] = X
    km.save(tmp_path / "m")
    before = _tree(tmp_path)
    proc = _cli("predict", tmp_path / "m", tmp_path / "X.zarr", "-o", tmp_path / "X.zarr",
                "-q", "--force")
    assert proc.returncode == 2 and "is the input" in proc.stderr, proc.stderr
    assert _tree(tmp_path) == before
    proc = _cli("predict", tmp_path / "m", tmp_path / "X.zarr", "-o", tmp_path / "l.zarr",
                "-q")
    assert proc.returncode == 0, proc.stderr
    proc = _cli("predict", tmp_path / "m", tmp_path / "X.zarr", "-o", tmp_path / "l.zarr",
                "-q")
    assert proc.returncode == 2 and "--force" in proc.stderr  # refused before any cluster
    # (--force replacing dkmeans' labels: tests/test_object_storage.py, on S3)


def test_memory_filesystem_follows_the_same_rules(km, X):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/safety/project/thesis.tex", b"years of work")
    with pytest.raises(OutputExistsError):
        km.predict_to_zarr(X, "memory://safety/project", overwrite=True)
    assert fs.cat_file("/safety/project/thesis.tex") == b"years of work"
    km.predict_to_zarr(X, "memory://safety/labels.zarr")
    fs.pipe_file("/safety/labels.zarr/extra", b"x")
    with pytest.raises(OutputExistsError):
        km.predict_to_zarr(X, "memory://safety/labels.zarr", overwrite=True)
    fs.rm_file("/safety/labels.zarr/extra")
    other = KMeans(3, random_state=0).fit(X)
    other.predict_to_zarr(X, "memory://safety/labels.zarr", overwrite=True)
    assert {p.rsplit("/", 1)[-1] for p in fs.ls("/safety/labels.zarr", detail=False)} \
        == {"zarr.json", "c"}
    np.testing.assert_array_equal(
        zarr.open_array("memory://safety/labels.zarr", mode="r")[:], other.predict(X))
    fs.rm("/safety", recursive=True)


# ------------------------------------------------------- 3. concurrent writers


def test_threads_saving_one_model_leave_one_whole_model(X, tmp_path):
    models = [KMeans(k, random_state=0).fit(X) for k in (2, 3, 4, 5)]
    models[0].save(tmp_path / "m")
    errors = []

    def save(model):
        try:
            for _ in range(5):
                model.save(tmp_path / "m", overwrite=True)
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=save, args=(m,)) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    back = dkmeans.load(tmp_path / "m")
    assert back.n_clusters in (2, 3, 4, 5)
    named = {e["file"] for e in json.loads((tmp_path / "m" / "model.json").read_text())
             ["arrays"].values()}
    assert named <= {p.name for p in (tmp_path / "m").iterdir()}
    assert not (tmp_path / ".m.lock").exists()


_WRITER = """
import sys, numpy as np, zarr
from dkmeans import KMeans
X = np.load(sys.argv[1])
k = int(sys.argv[3])
km = KMeans(k, random_state=0).fit(X)
for _ in range(3):
    km.predict_to_zarr(X, sys.argv[2], overwrite=True)
    km.save(sys.argv[4], overwrite=True)
print(k)
"""


def test_processes_writing_one_target_leave_one_whole_result(X, tmp_path):
    big = np.tile(X, (200, 1))
    np.save(tmp_path / "X.npy", big)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "X.npy"),
                               str(tmp_path / "labels.zarr"), str(k), str(tmp_path / "m")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in (2, 3, 4)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    labels = zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")[:]
    model = dkmeans.load(tmp_path / "m")
    assert labels.shape == (len(big),) and (labels >= 0).all()
    # one writer's labels, whole (each is the same fit as in its process)
    assert any(np.array_equal(labels, KMeans(k, random_state=0).fit(big).predict(big))
               for k in (2, 3, 4))
    assert model.n_clusters in (2, 3, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "X.npy", "labels.zarr", "m", "writer.py"]


def test_a_writer_that_loses_its_lease_says_so(km, X, tmp_path, monkeypatch):
    from dkmeans.data import leases

    target = locate(tmp_path / "labels.zarr")
    with leases.lease(target) as held:
        # another writer (whose clock says this lease expired) takes it over
        lock = leases.lock_location(target)
        record = json.loads(lock.read_bytes())
        lock.fs.pipe_file(lock.path, json.dumps({**record, "owner": "other"}).encode())
        with pytest.raises(WriteConflictError, match="Lost the lease"):
            held.check()
    assert lock.exists()  # the other writer's lease is left alone
    lock.fs.rm_file(lock.path)


def test_a_live_writer_holding_the_lease_makes_the_next_one_fail_clearly(km, X, tmp_path):
    from dkmeans.data import leases

    target = locate(tmp_path / "m")
    with leases.lease(target), pytest.raises(WriteConflictError,
                                             match="Another writer is writing"):
        leases.lease(target, wait=0.3).__enter__()
    assert not (tmp_path / "m").exists()


def test_a_dead_writers_lease_is_broken(km, tmp_path):
    """A job killed while writing leaves its lease; the next run on this host
    sees its process is gone and takes it."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    dead = int(proc.stdout)
    lock = tmp_path / ".m.lock"
    import socket
    import time

    lock.write_text(json.dumps({"owner": "x", "host": socket.gethostname(), "pid": dead,
                                "renewed": time.time()}))
    km.save(tmp_path / "m")
    assert dkmeans.load(tmp_path / "m").n_clusters == 2 and not lock.exists()


# ------------------------------------------------ 4. a kill inside the swap


def test_the_next_write_removes_what_a_killed_swap_left(km, X, tmp_path):
    km.predict_to_zarr(X, tmp_path / "labels.zarr")
    # a kill between the two renames: the old array aside, the new in staging
    os.rename(tmp_path / "labels.zarr", tmp_path / ".labels.zarr.old-deadbeef")
    km.predict_to_zarr(X, tmp_path / ".labels.zarr.tmp-cafe")
    km.predict_to_zarr(X, tmp_path / "labels.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr"]


# -------------------------------------------------------- 5. stale plans


def test_same_named_arrays_of_different_data_get_their_own_sums():
    import dask.array as da
    from distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    first = rng.normal(0, 0.3, (4000, 2))
    second = np.vstack([rng.normal(-3, 0.3, (2000, 2)), rng.normal(3, 0.3, (2000, 2))])
    init = np.array([[-1.0, -1.0], [1.0, 1.0]])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        a = da.from_array(first, chunks=500, name="nightly-batch")
        KMeans(2, init=init, n_init=1, persist=False).fit(a)
        b = da.from_array(second, chunks=500, name="nightly-batch")
        got = KMeans(2, init=init, n_init=1, persist=False).fit(b)
    want = KMeans(2, init=init, n_init=1).fit(second)
    np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, atol=1e-9)
    np.testing.assert_allclose(np.sort(got.cluster_centers_[:, 0]), [-3, 3], atol=0.1)


# ------------------------------------------------- 6, 7, 8. wrong results


def test_gap_rule_over_non_consecutive_ks_is_not_the_largest_k():
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(400, centers=4, cluster_std=0.3, random_state=0)
    with pytest.warns(UserWarning, match="gap_k is None"):
        result = sweep(X, [2, 4, 6, 8], gap=True, n_refs=3)
    assert result.gap_k is None
    assert sweep(X, range(2, 7), gap=True, n_refs=3).gap_k == 4


def test_kmedians_refuses_min_cluster_size(X):
    with pytest.raises(InvalidParameterError, match="min_cluster_size"):
        KMeans(2, metric="manhattan", min_cluster_size=10).fit(X)


def test_mixture_component_without_weight_goes_to_zero_as_scikit_learns():
    from dkmeans.kernels.mixture import gaussian_parameters

    nk = np.array([5.0, 0.0])
    about = np.array([[1.0, 2.0], [7.0, 9.0]])
    first = np.array([[0.5, -0.5], [0.0, 0.0]])
    second = np.ones((2, 2))
    _, means, _ = gaussian_parameters(nk, first, second, about, "diag", 1e-6)
    eps = 10 * np.finfo(np.float64).eps
    # scikit-learn: resp.T @ X / (nk + 10 eps), with resp.T @ X = first + nk * about
    np.testing.assert_allclose(means[0], (first[0] + 5 * about[0]) / (5 + eps))
    np.testing.assert_array_equal(means[1], [0.0, 0.0])


def test_stability_sizes_are_weights(X):
    st = dkmeans.stability(X, 2, n_runs=2, sample_weight=np.full(len(X), 2.0),
                           random_state=0)
    assert st.sizes.sum() == pytest.approx(2.0 * len(X))


# ---------------------------------------------------- 10. untrusted models


def _edit_meta(path, edit):
    meta = json.loads((path / "model.json").read_text())
    edit(meta)
    (path / "model.json").write_text(json.dumps(meta))


def test_model_files_outside_the_folder_are_refused(km, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    np.save(outside / "secret.npy", np.arange(4.0).reshape(2, 2))
    km.save(tmp_path / "m")

    def point_outside(meta):
        meta["arrays"]["cluster_centers"]["file"] = "../outside/secret.npy"
        del meta["arrays"]["cluster_centers"]["sha256"]

    _edit_meta(tmp_path / "m", point_outside)
    with pytest.raises(InvalidInputError, match="Refusing to read it"):
        dkmeans.load(tmp_path / "m")
    proc = _cli("info", tmp_path / "m")
    assert proc.returncode == 2 and "Refusing" in proc.stderr


@pytest.mark.parametrize("kind", ["symlink", "devzero", "fifo", "huge"])
def test_model_arrays_must_be_small_regular_files(km, tmp_path, kind):
    km.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    centers = tmp_path / "m" / meta["arrays"]["cluster_centers"]["file"]
    data = centers.read_bytes()
    centers.unlink()
    if kind == "symlink":
        (tmp_path / "real.npy").write_bytes(data)
        centers.symlink_to(tmp_path / "real.npy")
    elif kind == "devzero":
        centers.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(centers)
    else:
        with open(centers, "wb") as f:
            f.truncate(10**9)  # sparse: takes no disk
    with pytest.raises(InvalidInputError, match=r"regular file|more than"):
        dkmeans.load(tmp_path / "m")
    proc = _cli("info", tmp_path / "m", timeout=60)  # a FIFO must not hang it
    assert proc.returncode == 2


def test_info_never_sends_a_model_files_escapes_to_the_terminal(km, tmp_path):
    km.save(tmp_path / "m")
    _edit_meta(tmp_path / "m", lambda m: m.update(dkmeans_version="1\x1b[2J\x1b]0;pwn\x07"))
    proc = _cli("info", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b[2J" in proc.stdout


# -------------------------------------------- 11. the model and table parsing


def test_a_model_files_separator_is_one_character(X, tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n" + "\n".join(f"{x:.3f},{y:.3f}" for x, y in X))
    assert _cli("fit", csv, "-k", "2", "-o", tmp_path / "m", "-q").returncode == 0
    _edit_meta(tmp_path / "m", lambda m: m["input_fingerprint"]["table"].update(
        sep="(\\d+)+!"))
    proc = _cli("predict", tmp_path / "m", csv, "-o", tmp_path / "l.zarr", "-q", timeout=60)
    assert proc.returncode == 2 and "one character" in proc.stderr, proc.stderr


# ------------------------------------------- 12. a .npy that lies about its size


def test_npy_header_claiming_more_rows_than_the_file_holds(tmp_path):
    from numpy.lib import format as npy

    path = tmp_path / "lie.npy"
    with open(path, "wb") as f:
        npy.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                       "shape": (10**12, 8)})
        f.write(b"\0" * 64)
    with pytest.raises(InvalidInputError, match="header says shape"):
        KMeans(2).fit(str(path))
    proc = _cli("fit", path, "-k", "2", "-o", tmp_path / "m", "-q", timeout=60)
    assert proc.returncode == 2 and "header says" in proc.stderr


# ------------------------------------------------------ 13. network defaults


def test_the_embedded_clusters_dashboard_listens_on_loopback(tmp_path):
    from dkmeans.cli.cluster import connect

    with connect(None, n_workers=1) as client:
        info = client.run_on_scheduler(
            lambda dask_scheduler: [str(s.getsockname()[0])
                                    for s in dask_scheduler.http_server._sockets.values()])
        assert info and all(h in ("127.0.0.1", "::1") for h in info)
        assert client.scheduler.address.startswith("tcp://127.0.0.1")


def test_security_temporary_for_a_local_cluster(tmp_path):
    from dkmeans.cli.cluster import connect

    config = tmp_path / "c.yaml"
    config.write_text("type: local\nn_workers: 1\nsecurity: temporary\n")
    with connect(config) as client:
        assert client.scheduler.address.startswith("tls://")
        assert client.submit(sum, [1, 2]).result() == 3
    config.write_text("type: local\nsecurity: yes-please\n")
    with pytest.raises(InvalidParameterError, match="'temporary'"), connect(config):
        pass


def test_a_tls_key_readable_by_others_is_warned_about(tmp_path):
    from dkmeans.cli.cluster import security

    for name in ("ca", "cert", "key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "key").chmod(0o644)
    tls = {"ca_file": str(tmp_path / "ca"), "cert": str(tmp_path / "cert"),
           "key": str(tmp_path / "key")}
    with pytest.warns(UserWarning, match="readable by other users"):
        security(tls)
    (tmp_path / "key").chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        security(tls)


# ------------------------------------------------------------- 14. secrets


def test_location_repr_hides_the_storage_options():
    loc = locate("memory://x/y", {"key": "AKIA-SECRET", "secret": "hunter2"})
    assert "hunter2" not in repr(loc) and "AKIA" not in repr(loc) and "x/y" in repr(loc)


def test_storage_options_from_a_file_or_the_environment_never_echoed(km, tmp_path):
    km.save(tmp_path / "m")
    opts = tmp_path / "opts.json"
    opts.write_text(json.dumps({"auto_mkdir": True}))
    shown = _cli("info", tmp_path / "m", "--json", "--storage-options", f"@{opts}")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["params"]["n_clusters"] == 2
    env = {**os.environ, "DKMEANS_STORAGE_OPTIONS": json.dumps({"auto_mkdir": True})}
    assert _cli("info", tmp_path / "m", env=env).returncode == 0
    for bad in ('{"secret": "hunter2"', f"@{tmp_path / 'absent.json'}"):
        proc = _cli("info", tmp_path / "m", "--storage-options", bad)
        assert proc.returncode == 2 and "--storage-options" in proc.stderr, proc.stderr
        assert "hunter2" not in proc.stderr + proc.stdout
    env = {**os.environ, "DKMEANS_STORAGE_OPTIONS": '["hunter2"]'}
    proc = _cli("info", tmp_path / "m", env=env)
    assert proc.returncode == 2 and "DKMEANS_STORAGE_OPTIONS must be a JSON object" in \
        proc.stderr and "hunter2" not in proc.stderr


def test_saving_over_a_private_model_keeps_it_private(km, X, tmp_path):
    km.save(tmp_path / "m")
    for p in (tmp_path / "m").iterdir():
        p.chmod(0o600)
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m", overwrite=True)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "m").iterdir()}
    assert set(modes.values()) == {0o600}, modes


# ------------------------------------------------------------ property test

_CONTENTS = st.sampled_from(["nothing", "empty", "file", "folder", "zarr", "labels",
                             "labels+file", "model", "model+file", "input"])


def _make(kind, path, X, km):
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_bytes(b"precious")
    elif kind == "folder":
        path.mkdir()
        (path / "a.txt").write_text("precious")
        (path / "b.npy").write_bytes(b"precious")
    elif kind == "zarr":
        zarr.create_array(str(path), shape=(4,), chunks=(2,), dtype="i4")[:] = 7
    elif kind.startswith("labels"):
        km.predict_to_zarr(X, path)
    elif kind.startswith("model"):
        km.save(path)
    if kind.endswith("+file"):
        (path / "notes.txt").write_text("precious")


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=_CONTENTS, writer=st.sampled_from(["save", "labels"]), overwrite=st.booleans())
def test_every_writer_refuses_or_replaces_only_dkmeans_output(X, km, tmp_path_factory, kind,
                                                             writer, overwrite):
    root = tmp_path_factory.mktemp("prop")
    src = root / "X.zarr"
    zarr.create_array(str(src), shape=X.shape, chunks=(100, 2), dtype="f8")[:] = X
    target = src if kind == "input" else root / "out"
    _make(kind, target, X, km)
    before = _tree(root)
    ours = {"save": ("nothing", "empty", "model"), "labels": ("nothing", "labels")}[writer]
    try:
        if writer == "save":
            km.save(target, overwrite=overwrite)
        else:
            km.predict_to_zarr(str(src), target, overwrite=overwrite)
    except OutputExistsError:
        assert _tree(root) == before
        assert kind not in ours or (not overwrite and kind in ("model", "labels"))
        return
    assert kind in ours
    assert {k: v for k, v in _tree(root).items() if not k.startswith("out")} == \
        {k: v for k, v in before.items() if not k.startswith("out")}


def test_secrets_over_plain_tcp_off_this_machine_are_warned_about():
    from types import SimpleNamespace

    from dkmeans.data.storage import warn_if_secrets_in_clear

    def client(address):  # what the rule reads of a distributed.Client
        return SimpleNamespace(scheduler=SimpleNamespace(address=address))

    secret = locate("memory://x/y", {"key": "k", "secret": "s"})
    with pytest.warns(UserWarning, match="plain tcp://"):
        warn_if_secrets_in_clear(secret, client("tcp://10.1.2.3:8786"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_secrets_in_clear(secret, client("tcp://127.0.0.1:8786"))  # loopback
        warn_if_secrets_in_clear(secret, client("tls://10.1.2.3:8786"))  # encrypted
        warn_if_secrets_in_clear(locate("memory://x/y"), client("tcp://10.1.2.3:8786"))
