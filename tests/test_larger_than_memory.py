"""Data larger than the workers' memory: streamed passes in bounded memory,
labels written to Zarr chunk by chunk."""

import dask.array as da
import numpy as np
import pytest
import zarr

from dkmeans import KMeans, MiniBatchKMeans
from dkmeans.cli.cluster import watch_worker_memory
from dkmeans.data.datasets import make_blobs

distributed = pytest.importorskip("distributed")

WORKER_LIMIT = 600 * 2**20


@pytest.mark.cluster
@pytest.mark.slow
def test_streaming_fit_stays_under_a_small_worker_memory_limit(tmp_path):
    # 1.28 GB of data on 2 workers of 600 MiB each: persisting is impossible,
    # so every pass reads the chunks from the Zarr array on disk.
    path = str(tmp_path / "X.zarr")
    X, true_centers = make_blobs(5_000_000, 64, 8, chunk_rows=62_500, seed=3)
    # uncompressed: the test is about memory, not decompression speed
    X.to_zarr(path, compressors=None)
    # the passes' kernels compiled here first, on the same Zarr chunks, into
    # numba's cache, which the workers then load: in a fresh checkout each
    # worker would otherwise compile them itself and keep LLVM's memory
    KMeans(8, random_state=0, max_iter=2, persist=False).fit(da.from_zarr(path)[:250_000])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  memory_limit=WORKER_LIMIT, dashboard_address=None,
                                  silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        assert X.nbytes > 2 * WORKER_LIMIT
        with watch_worker_memory(client) as memory:
            km = KMeans(8, random_state=0, max_iter=10).fit(path)
        assert len(memory) == 2
        for report in memory.values():
            # under the 70% of its limit where a worker starts spilling to disk
            # (an idle worker with dkmeans loaded takes ~310 MiB of the 600)
            assert report["peak_rss"] < 0.7 * report["memory_limit"], memory
            assert report["spilled_bytes"] == 0
        # the model is right: every true blob center has a found center nearby
        gaps = np.linalg.norm(true_centers[:, None] - km.cluster_centers_[None], axis=2)
        assert gaps.min(axis=1).max() < 0.05
        assert isinstance(km.labels_, da.Array)  # computed from the source when asked


@pytest.mark.parametrize("estimator", [KMeans(5, random_state=0),
                                       MiniBatchKMeans(5, random_state=0, batch_size=200)])
def test_labels_written_to_zarr_equal_predict_in_memory(blobs, tmp_path, estimator):
    X, _ = blobs
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(300, 5))
    z[:] = X
    model = estimator.fit(str(tmp_path / "X.zarr"))
    out = model.predict_to_zarr(str(tmp_path / "X.zarr"), tmp_path / "labels.zarr")
    labels = zarr.open_array(str(out), mode="r")
    np.testing.assert_array_equal(labels[:], model.predict(X))
    assert labels.dtype == np.int32
    # aligned with the input: every labels chunk covers whole input chunks
    assert labels.chunks[0] % 300 == 0 or labels.chunks[0] >= len(X)


def test_a_failed_write_leaves_the_previous_labels_whole(blobs, tmp_path):
    X, _ = blobs
    model = KMeans(5, random_state=0).fit(X)
    out = tmp_path / "labels.zarr"
    model.predict_to_zarr(da.from_array(X, chunks=(500, 5)), out)
    before = zarr.open_array(str(out), mode="r")[:]
    bad = X.copy()
    bad[1700, 2] = np.nan  # found in the last block, after others were written
    with pytest.raises(ValueError, match="row 1700"):
        model.predict_to_zarr(da.from_array(bad, chunks=(500, 5)), out, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(out), mode="r")[:], before)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.zarr"]  # no debris
