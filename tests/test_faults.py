"""Faults on a real cluster: a separate scheduler and worker processes on
loopback, one worker killed (SIGKILL) in the middle of a fit."""

import os
import signal
import threading

import numpy as np
import pytest

from dkmeans import KMeans, MiniBatchKMeans
from dkmeans.data.datasets import make_blobs

distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def zarr_path(tmp_path_factory):
    # overlapping blobs, so Lloyd runs many iterations
    path = str(tmp_path_factory.mktemp("faults") / "X.zarr")
    X, _ = make_blobs(600_000, 16, 12, chunk_rows=30_000, std=4.0, seed=5)
    X.to_zarr(path)
    return path


def kill_a_worker_later(client, delay: float) -> dict:
    """SIGKILL the process of one worker ``delay`` seconds from now (mid-pass)."""
    address, pid = sorted(client.run(os.getpid).items())[0]
    done = threading.Event()

    def kill():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # too late: the assertion on `done` says so
            return
        done.set()

    threading.Timer(delay, kill).start()
    return {"address": address, "pid": pid, "done": done}


def fit(estimator, path, kill_at=None):
    """Fit; with ``kill_at``, kill a worker 50 ms into the pass after that
    Lloyd iteration (KMeans) or into the window after that many windows of
    batch groups (MiniBatchKMeans)."""
    client = distributed.default_client()
    killed = {}
    seen = []

    def kill_after(n):
        if n == kill_at and not killed:
            killed.update(kill_a_worker_later(client, 0.05))

    if isinstance(estimator, KMeans):
        estimator._fit(path, on_iteration=lambda p: kill_after(p.n_iter))
    else:
        estimator._fit(path, on_window=lambda state, epoch: (seen.append(epoch),
                                                             kill_after(len(seen))))
    if killed:
        assert killed["done"].is_set(), "the fit ended before the worker was killed"
    return estimator, killed


@pytest.mark.parametrize("make", [
    pytest.param(lambda: KMeans(12, random_state=0, tol=0, max_iter=12, persist=True),
                 id="kmeans-persisted"),
    # (seeded on a sample drawn in the scan: the kill comes in the Lloyd
    # passes, and k-means|| rounds over the stream only took time)
    pytest.param(lambda: KMeans(12, random_state=0, tol=0, max_iter=12, persist=False,
                                init_size=60_000),
                 id="kmeans-streaming"),
    pytest.param(lambda: MiniBatchKMeans(12, random_state=0, batch_size=1024, max_iter=5,
                                         max_no_improvement=None, compute_labels=False),
                 id="minibatch-streaming"),
])
def test_a_killed_worker_does_not_change_the_result(zarr_path, tmp_path, dask_processes,
                                                    make):
    with dask_processes(tmp_path, 2) as address, \
            distributed.Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        undisturbed, _ = fit(make(), zarr_path)
        disturbed, killed = fit(make(), zarr_path, kill_at=4)
        # the worker really died mid-fit (its nanny starts a new process)
        assert killed
        pids = client.run(os.getpid)
        assert killed["pid"] not in pids.values()
    np.testing.assert_allclose(disturbed.cluster_centers_, undisturbed.cluster_centers_,
                               rtol=1e-6)
    if isinstance(disturbed, KMeans):
        # the kill came during the pass after iteration 4, before convergence
        assert disturbed.n_iter_ == undisturbed.n_iter_ > 4
        assert disturbed.inertia_ == pytest.approx(undisturbed.inertia_, rel=1e-9)
    else:
        assert disturbed.n_steps_ == undisturbed.n_steps_
