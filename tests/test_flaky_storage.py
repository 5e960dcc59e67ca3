"""Jobs against an object store that fails: a fault-injecting proxy
(tests/_faulty_proxy.py) in front of the S3 test server answers a share of
requests with 503 SlowDown, 500 InternalError or a reset connection,
deterministically by seed. Retries (botocore's standard mode, which dkmeans
asks for unless the storage options say otherwise; s3fs's own) carry the
jobs to the fault-free results (the same fit, in process, without the
proxy); a store that always fails ends a job within a bounded time, naming
the error, with nothing written."""

import json
import time
from functools import partial

import dask
import numpy as np
import pytest
import zarr
from _cli import run
from _faulty_proxy import faulty_proxy
from sklearn.datasets import make_blobs

import dkmeans

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
s3fs = pytest.importorskip("s3fs")


_cli = partial(run, check=False)


@pytest.fixture(scope="module")
def data(s3):
    X, _ = make_blobs(20_000, centers=6, n_features=5, cluster_std=1.5, random_state=2)
    z = zarr.create_array("s3://dkmeans/flaky/X.zarr", shape=X.shape, chunks=(2000, 5),
                          dtype="f8", storage_options=s3, overwrite=True)
    z[:] = X
    return X


def _port(s3):
    return int(s3["endpoint_url"].rsplit(":", 1)[1])


def test_jobs_through_a_flaky_store_equal_the_fault_free_run(s3, data, tmp_path):
    fit = ["fit", "s3://dkmeans/flaky/X.zarr", "-k", 6, "--random-state", 1, "--tol", 0,
           "--max-iter", 5, "--checkpoint-every", 1, "--workers", 1, "-q"]
    with dask.config.set(scheduler="threads"):  # the same fit on any scheduler
        want = dkmeans.KMeans(6, random_state=1, tol=0, max_iter=5).fit(
            "s3://dkmeans/flaky/X.zarr", storage_options=s3)
    with faulty_proxy(_port(s3), rate=0.08, seed=7) as (url, proxy):
        flaky = {**s3, "endpoint_url": url}
        opts = ["--storage-options", json.dumps(flaky)]
        proc = _cli(*fit, "-o", "s3://dkmeans/flaky/faulty", *opts)
        assert proc.returncode == 0, proc.stderr[-3000:]
        model = dkmeans.load("s3://dkmeans/flaky/faulty", storage_options=flaky)
        with dask.config.set(scheduler="threads"):  # the workers' reads and writes, here
            model.predict_to_zarr("s3://dkmeans/flaky/X.zarr", "s3://dkmeans/flaky/labels.zarr",
                                  storage_options=flaky)
        model.save("s3://dkmeans/flaky/saved", storage_options=flaky)
        faults = proxy.counts[503] + proxy.counts[500] + proxy.counts["reset"]
    print(f"proxy: {proxy.counts}")
    assert faults >= 5 and proxy.counts["forwarded"] > 50
    for name in ("faulty", "saved"):
        got = dkmeans.load(f"s3://dkmeans/flaky/{name}", storage_options=s3)
        np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12)
        np.testing.assert_allclose(got.inertia_history_, want.inertia_history_, rtol=1e-12)
    labels = zarr.open_array("s3://dkmeans/flaky/labels.zarr", mode="r", storage_options=s3)
    np.testing.assert_array_equal(labels[:], want.predict(data))


def test_a_store_that_always_fails_ends_the_job_naming_the_error(s3, data):
    # the storage options' own retries win over dkmeans' (10 attempts, ~40 s
    # of backoff before an operation fails)
    retries = {"config_kwargs": {"retries": {"max_attempts": 2, "mode": "standard"}}}
    with faulty_proxy(_port(s3), rate=1.0, seed=3) as (url, _):
        t0 = time.monotonic()
        proc = _cli("fit", "s3://dkmeans/flaky/X.zarr", "-k", 3, "-o",
                    "s3://dkmeans/flaky/never", "--workers", 1, "--storage-options",
                    json.dumps({**s3, "endpoint_url": url, **retries}), timeout=240)
        seconds = time.monotonic() - t0
    assert proc.returncode not in (0, 2), proc.stderr
    said = proc.stderr.lower()
    assert "dkmeans: error: oserror" in said and any(
        m in said for m in ("service unavailable", "internal error", "reset")), said[-2000:]
    assert "nothing is there" not in proc.stderr  # a failing store is not a missing array
    assert seconds < 120
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    assert not fs.exists("dkmeans/flaky/never")
