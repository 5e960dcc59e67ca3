"""A Lloyd pass over a Zarr array in object storage against a pass that only
reads and sums the same chunks, on the same cluster, in one run.

Starts an S3-protocol server (``moto_server``, from ``moto[server]``) on a
free loopback port, writes an n x d float32 Zarr array of Gaussian blobs to a
bucket (Zarr's default codec), starts a local ``distributed`` cluster whose
workers get the endpoint and credentials only through the tasks' storage
options, and then alternates, ``--repeats`` times:

- raw pass: ``da.from_zarr(url, storage_options=...).sum(axis=0)``: every
  chunk fetched from the server, decompressed and summed;
- Lloyd pass: one streamed dkmeans Lloyd pass (``run_pass(LLOYD, ...)``) over
  the same chunks from centers found first.

It prints the medians, their ratio (throughput of a Lloyd pass / a raw
pass), the bytes fetched per pass (the array's stored size) and the load
average.

Usage::

    python benchmarks/bench_object_storage.py                 # 4M x 32
    python benchmarks/bench_object_storage.py --rows 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import time

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=4_000_000)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--chunk-rows", type=int, default=125_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    return p.parse_args(argv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_s3() -> tuple[subprocess.Popen, dict]:
    import s3fs

    port = _free_port()
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "bench", "secret": "bench"}
    for _ in range(300):
        try:
            s3fs.S3FileSystem(**options, skip_instance_cache=True).mkdir("bench")
            return proc, options
        except Exception:
            time.sleep(0.1)
    raise RuntimeError("moto_server did not start")


def main(argv=None) -> None:
    args = parse_args(argv)
    import dask.array as da
    import s3fs
    from distributed import Client, LocalCluster

    from dkmeans import KMeans, open_array
    from dkmeans.data import Dataset
    from dkmeans.data.datasets import make_blobs
    from dkmeans.passes import LLOYD
    from dkmeans.runner import run_pass

    server, options = _start_s3()
    url = "s3://bench/X.zarr"
    try:
        with LocalCluster(n_workers=args.workers, threads_per_worker=1,
                          dashboard_address=None, silence_logs=50) as cluster, \
                Client(cluster) as client:
            X, _ = make_blobs(args.rows, args.features, args.clusters,
                              chunk_rows=args.chunk_rows)
            t0 = time.perf_counter()
            da.to_zarr(X, url, storage_options=options, overwrite=True)
            stored = s3fs.S3FileSystem(**options, skip_instance_cache=True).du("bench/X.zarr")
            print(f"wrote {args.rows:,} x {args.features} float32 ({X.nbytes / 1e6:,.0f} MB, "
                  f"{stored / 1e6:,.0f} MB stored) in {time.perf_counter() - t0:.1f} s")
            arr = open_array(url, storage_options=options)
            km = KMeans(args.clusters, random_state=0, persist=False, max_iter=3).fit(arr)
            centers = km.cluster_centers_
            blocks = Dataset(arr, None, "zarr").blocks()
            raw, lloyd = [], []
            for _ in range(args.repeats):  # alternate, so load hits both alike
                t0 = time.perf_counter()
                da.from_zarr(url, storage_options=options).sum(axis=0).compute()
                raw.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                run_pass(LLOYD, blocks, centers, args.clusters - 1)
                lloyd.append(time.perf_counter() - t0)
            r, ll = float(np.median(raw)), float(np.median(lloyd))
            print(f"{len(blocks)} blocks, {args.workers} workers; load average "
                  f"{os.getloadavg()[0]:.2f}")
            print(f"raw read+sum pass: {r:.2f} s ({stored / r / 1e6:,.0f} MB/s fetched)")
            print(f"Lloyd pass:        {ll:.2f} s ({stored / ll / 1e6:,.0f} MB/s fetched)")
            print(f"Lloyd throughput / raw throughput: {r / ll:.2f}  "
                  f"(bytes fetched per pass: {stored:,})")
            del client
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


if __name__ == "__main__":
    main()
