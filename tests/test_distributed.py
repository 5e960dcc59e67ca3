"""The same seed gives the same model on a real cluster of worker processes."""

import gc
import time

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from sklearn.datasets import make_blobs

from dkmeans import KMeans

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    X, _ = make_blobs(20_000, centers=10, n_features=6, cluster_std=2.0, random_state=1)
    path = str(tmp_path_factory.mktemp("zarr") / "X.zarr")
    z = zarr.create_array(path, shape=X.shape, dtype="f8", chunks=(1500, 6))
    z[:] = X
    return X, path


@pytest.fixture(scope="module")
def threaded_models(data):
    _, path = data
    with dask.config.set(scheduler="threads"):
        return {init: KMeans(10, init=init, random_state=7).fit(path)
                for init in ("k-means||", "random")}


# (2, 2): folding passes run a task per worker thread, and a worker's
# partials meet on it first
@pytest.mark.parametrize(("n_workers", "threads"), [(1, 1), (2, 1), (2, 2)])
def test_same_centers_on_threads_and_worker_processes(data, threaded_models, n_workers,
                                                      threads):
    X, path = data
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads,
                                  processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        for init, ref in threaded_models.items():
            km = KMeans(10, init=init, random_state=7).fit(path)
            np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_,
                                       rtol=1e-12)
            assert km.n_iter_ == ref.n_iter_
            assert km.inertia_ == pytest.approx(ref.inertia_, rel=1e-12)
            np.testing.assert_array_equal(km.labels_.compute(), ref.labels_.compute())
        # the data stayed on the workers: the client holds no chunk of it
        assert all(not isinstance(v, np.ndarray) or v.size < 1000
                   for v in vars(km).values())
        # streaming from the source gives the same model as persisting it
        streamed = KMeans(10, random_state=7, persist=False).fit(path)
        np.testing.assert_allclose(streamed.cluster_centers_,
                                   threaded_models["k-means||"].cluster_centers_, rtol=1e-12)
        # a numpy array is shipped to the workers once and clustered the same
        in_memory = KMeans(10, random_state=7).fit(da.from_array(X, chunks=(1500, 6)))
        np.testing.assert_allclose(in_memory.cluster_centers_,
                                   threaded_models["k-means||"].cluster_centers_, rtol=1e-12)
        # once the models are gone, nothing a fit made stays on the cluster
        del km, streamed, in_memory
        gc.collect()
        deadline = time.monotonic() + 10
        while client.run_on_scheduler(n_tasks) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.run_on_scheduler(n_tasks) == 0


def n_tasks(dask_scheduler):
    return len(dask_scheduler.tasks)


def test_long_run_keeps_scheduler_and_client_flat():
    # 160 Lloyd iterations with tol=0: no task, graph or future may pile up
    # from one iteration to the next, on the scheduler or in the client.
    from dkmeans.algorithms.lloyd import lloyd
    from dkmeans.data import as_dataset

    X, _ = make_blobs(20_000, centers=8, n_features=4, cluster_std=3.0, random_state=0)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        blocks = as_dataset(da.from_array(X, chunks=(2500, 4))).persist().blocks()
        counts = {}

        def settled_tasks():
            # released futures leave the scheduler asynchronously: read until
            # two readings 50 ms apart agree
            last, now = -1, client.run_on_scheduler(n_tasks)
            for _ in range(40):
                if now == last:
                    break
                time.sleep(0.05)
                last, now = now, client.run_on_scheduler(n_tasks)
            return now

        def sample(progress):
            # the same phase of the bounds' restart cycle (every 20 iterations)
            if progress.n_iter in (40, 100, 160):
                counts[progress.n_iter] = (settled_tasks(), len(client.futures))

        for keep_bounds in (False, True):
            counts.clear()
            # tol=-1: no shift meets it, so exactly 160 passes even once the
            # labels stop changing (tol=0 would stop there)
            result = lloyd(blocks, X[:8].copy(), max_iter=160, tol=-1.0,
                           keep_bounds=keep_bounds, on_iteration=sample)
            assert result.n_iter == 160
            # flat: what one pass may still hold in flight (a few tasks per
            # block) at most, where a leak of one task per iteration would
            # add 120
            slack = 4 * len(blocks)
            for n_iter in (100, 160):
                assert counts[n_iter][0] <= counts[40][0] + slack, counts
                assert counts[n_iter][1] == counts[40][1], counts


def test_auto_persist_waits_for_workers_and_says_when_none_joined(data, tmp_path,
                                                                 dask_processes):
    from dkmeans.errors import ClusterUnavailableError

    _, path = data
    with dask_processes(tmp_path, 0) as address, \
            dask.config.set({"distributed.comm.timeouts.connect": "2s"}), \
            distributed.Client(address, timeout="30s"), \
            pytest.raises(ClusterUnavailableError, match="No worker joined the Dask cluster"):
        KMeans(3, persist="auto").fit(path)
