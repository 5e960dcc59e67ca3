"""Data twice the cluster's memory: streaming KMeans and MiniBatchKMeans
against a raw read of the same Zarr array, on the same cluster, in one run.

Generates (once, chunk by chunk on the workers) an n x d float32 Zarr array
of Gaussian blobs with Zarr's default codec, starts a local ``distributed``
cluster of ``--workers`` processes with ``--worker-memory`` each, and
measures, with each worker's peak resident memory and bytes spilled:

- raw pass: read, decompress and sum every chunk (``da.from_zarr(...).sum``),
  before and after the fits; its throughput is the bar for a Lloyd pass;
- streaming ``KMeans`` (k-means|| seeding, Lloyd to convergence, then
  ``--lloyd-passes`` more Lloyd passes from its centers): seconds per pass,
  bytes read per second, Lloyd pass throughput / raw pass throughput;
- ``MiniBatchKMeans`` (k-means++ on a sample, ``--mb-epochs`` epochs):
  passes read, time, final inertia relative to streaming KMeans;
- dask-ml ``KMeans`` in a subprocess on the same cluster, stopped after
  ``--dask-ml-limit`` seconds if it has not finished.

Final inertias are computed by one shared pass (:func:`inertia_of`) from the
returned centers.

Usage::

    python benchmarks/bench_larger_than_memory.py            # 60M x 32, 2 x 2 GB
    python benchmarks/bench_larger_than_memory.py --rows 4000000 --worker-memory 300MB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=60_000_000)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--clusters", type=int, default=32)
    p.add_argument("--chunk-rows", type=int, default=500_000)
    p.add_argument("--path", default=None, help="Zarr path (default: in the temp folder)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-memory", default="2GB", help="memory limit of each worker")
    p.add_argument("--batch-size", type=int, default=65_536)
    p.add_argument("--mb-epochs", type=int, default=2)
    p.add_argument("--lloyd-passes", type=int, default=4,
                   help="extra Lloyd passes timed after the fit converged")
    p.add_argument("--dask-ml-limit", type=float, default=600.0,
                   help="seconds before dask-ml is stopped (0: skip it)")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--init-size", default="auto",
                   help="KMeans init_size: auto, none (k-means|| over every row) or N")
    p.add_argument("--no-minibatch", action="store_true", help="skip MiniBatchKMeans")
    return p.parse_args(argv)


def generate(client, args) -> str:
    import zarr

    from dkmeans.data.datasets import make_blobs

    path = args.path or os.path.join(tempfile.gettempdir(),
                                     f"dkmeans-big-{args.rows}x{args.features}.zarr")
    shape = (args.rows, args.features)
    try:
        if zarr.open_array(path, mode="r").shape == shape:
            return path
    except Exception:  # missing or partial: write it again
        pass
    X, _ = make_blobs(args.rows, args.features, args.clusters, chunk_rows=args.chunk_rows,
                      std=1.0, seed=0)
    t0 = time.perf_counter()
    X.to_zarr(path, overwrite=True)  # each worker writes its own chunks
    print(f"generated {path}: {X.nbytes / 1e9:.1f} GB in {time.perf_counter() - t0:.1f} s",
          flush=True)
    return path


def memory_summary(report: dict) -> dict:
    return {"peak_rss_gb": [round(r["peak_rss"] / 1e9, 3) for r in report.values()],
            "limit_gb": [round(r["memory_limit"] / 1e9, 3) for r in report.values()],
            "spilled_bytes": sum(r["spilled_bytes"] for r in report.values())}


def raw_pass(client, path: str) -> dict:
    import dask.array as da

    from dkmeans.cli.cluster import watch_worker_memory

    X = da.from_zarr(path)
    with watch_worker_memory(client) as mem:
        t0 = time.perf_counter()
        X.sum(axis=0, dtype=np.float64).compute()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "gb_per_s": X.nbytes / 1e9 / seconds, **memory_summary(mem)}


def inertia_of(path: str, centers: np.ndarray) -> float:
    """The same streamed pass for every model: sum of squared distances of
    every row to its nearest center, in float64."""
    import dask.array as da

    from dkmeans.algorithms.apply import nearest_cost

    return float(nearest_cost(da.from_zarr(path), centers).sum().compute())


def streaming_kmeans(client, path: str, k: int, extra_passes: int, init_size) -> dict:
    from dkmeans import fit_kmeans
    from dkmeans.algorithms.lloyd import lloyd
    from dkmeans.cli.cluster import watch_worker_memory
    from dkmeans.data import as_dataset
    from dkmeans.data.workers import memory_budget
    from dkmeans.runner import report_progress

    data = as_dataset(path)
    n_blocks = len(data.X.chunks[0])
    passes, reads = [], []

    def count(name: str, done: int, total: int) -> None:
        if done == total == n_blocks:  # a pass over the data, not over a sample
            reads.append(name)

    with watch_worker_memory(client) as mem, report_progress(count):
        t0 = time.perf_counter()
        result = fit_kmeans(data, k, init="k-means||", seed=0, persist="auto",
                            init_size=init_size,
                            on_iteration=lambda p: passes.append(p.seconds))
        seconds = time.perf_counter() - t0
    # the fit converges in a few iterations: time more Lloyd passes from its
    # centers (tol=0), as one run of lloyd() on the same streamed blocks
    extra = []
    with watch_worker_memory(client) as mem_extra:
        lloyd(data.blocks(), result.centers, max_iter=extra_passes, tol=-1.0, keep_labels=False,
              on_iteration=lambda p: extra.append(p.seconds))
    timed = passes + extra
    median = float(np.median(timed))
    peak = [max(a, b) for a, b in zip(memory_summary(mem)["peak_rss_gb"],
                                      memory_summary(mem_extra)["peak_rss_gb"], strict=True)]
    return {"seconds": seconds, "n_iter": result.n_iter, "timings": result.timings,
            "streamed": data.X.nbytes > 0.5 * memory_budget(),
            "seeding_passes": result.n_seeding_passes, "passes_read": reads,
            "lloyd_pass_s": median, "lloyd_gb_per_s": data.X.nbytes / 1e9 / median,
            "lloyd_pass_all_s": timed, "centers": result.centers,
            **memory_summary(mem), "peak_rss_gb": peak,
            "spilled_bytes": memory_summary(mem)["spilled_bytes"]
            + memory_summary(mem_extra)["spilled_bytes"]}


def minibatch(client, path: str, k: int, batch_size: int, epochs: int) -> dict:
    from dkmeans import MiniBatchKMeans
    from dkmeans.cli.cluster import watch_worker_memory

    km = MiniBatchKMeans(k, batch_size=batch_size, max_iter=epochs, random_state=0,
                         compute_labels=False)
    with watch_worker_memory(client) as mem:
        t0 = time.perf_counter()
        km.fit(path)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "n_passes_read": km.n_passes_read_, "n_steps": km.n_steps_,
            "n_epochs": km.n_iter_, "timings": km.timings_, "centers": km.cluster_centers_,
            **memory_summary(mem)}


DASK_ML = """
import logging, sys, time, numpy as np, dask.array as da
logging.basicConfig(level=logging.INFO, format="%(relativeCreated)d ms %(name)s %(message)s")
from distributed import Client
from dask_ml.cluster import KMeans
client = Client(sys.argv[1])
X = da.from_zarr(sys.argv[2])
t0 = time.perf_counter()
km = KMeans(n_clusters=int(sys.argv[3]), random_state=0).fit(X)
np.save(sys.argv[4], km.cluster_centers_)
print("DONE", time.perf_counter() - t0, km.n_iter_, flush=True)
"""


def dask_ml(client, path: str, k: int, limit: float) -> dict:
    from dkmeans.cli.cluster import watch_worker_memory

    out = Path(tempfile.mkdtemp()) / "centers.npy"
    with watch_worker_memory(client) as mem:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", DASK_ML, client.scheduler.address,
                                 path, str(k), str(out)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            log, _ = proc.communicate(timeout=limit)
            finished = proc.returncode == 0 and out.exists()
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()
            finished = False
        seconds = time.perf_counter() - t0
    result = {"finished": finished, "seconds": seconds, "log_tail": log[-600:],
              **memory_summary(mem)}
    if finished:
        result["centers"] = np.load(out)
    # whatever it left running on the cluster goes with its client
    time.sleep(2)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    import dask
    import distributed

    # workers do not spill: any spilling would show in the report, not hide
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  memory_limit=args.worker_memory, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        path = generate(client, args)
        nbytes = args.rows * args.features * 4
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        print(f"data {nbytes / 1e9:.2f} GB; cluster memory "
              f"{sum(w['memory_limit'] for w in workers) / 1e9:.2f} GB", flush=True)
        res: dict = {"machine": platform.processor() or platform.machine(),
                     "cpus": os.cpu_count(), "rows": args.rows, "features": args.features,
                     "clusters": args.clusters, "gb": nbytes / 1e9,
                     "workers": args.workers, "worker_memory": args.worker_memory,
                     "dask": dask.__version__}
        res["raw_before"] = raw_pass(client, path)
        print("raw pass", json.dumps(res["raw_before"]), flush=True)
        init_size = {"none": None, "auto": "auto"}.get(args.init_size.lower(), args.init_size)
        res["init_size"] = init_size
        res["kmeans"] = streaming_kmeans(client, path, args.clusters, args.lloyd_passes,
                                         init_size if isinstance(init_size, str | None)
                                         else int(init_size))
        print("streaming KMeans done", flush=True)
        if not args.no_minibatch:
            res["minibatch"] = minibatch(client, path, args.clusters, args.batch_size,
                                         args.mb_epochs)
            print("MiniBatchKMeans done", flush=True)
        res["raw_after"] = raw_pass(client, path)
        for name in ("kmeans", "minibatch")[:1 if args.no_minibatch else 2]:
            res[name]["inertia"] = inertia_of(path, res[name].pop("centers"))
        if args.dask_ml_limit > 0:
            res["dask_ml"] = dask_ml(client, path, args.clusters, args.dask_ml_limit)
            if res["dask_ml"].get("finished"):
                res["dask_ml"]["inertia"] = inertia_of(path, res["dask_ml"].pop("centers"))
    report(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


def report(res: dict) -> None:
    # the faster raw pass is the bar (a slow one, e.g. a cold page cache,
    # would flatter the ratios)
    raw = max(res["raw_before"]["gb_per_s"], res["raw_after"]["gb_per_s"])
    km, mb = res["kmeans"], res.get("minibatch")
    raw_s = min(res["raw_before"]["seconds"], res["raw_after"]["seconds"])
    print(f"\n{res['rows']:,} x {res['features']} float32 ({res['gb']:.1f} GB), "
          f"k={res['clusters']}, {res['workers']} workers x {res['worker_memory']}\n")
    print("| | seconds | GB/s read | vs raw pass | peak RSS per worker (GB) | spilled |")
    print("|---|---|---|---|---|---|")
    for name in ("raw_before", "raw_after"):
        r = res[name]
        print(f"| raw pass ({name[4:]}) | {r['seconds']:.1f} | {r['gb_per_s']:.2f} | "
              f"{r['gb_per_s'] / raw:.2f} | "
              f"{r['peak_rss_gb']} | {r['spilled_bytes']:.0f} |")
    print(f"| KMeans Lloyd pass (median of {len(km['lloyd_pass_all_s'])}) | "
          f"{km['lloyd_pass_s']:.1f} | "
          f"{km['lloyd_gb_per_s']:.2f} | {km['lloyd_gb_per_s'] / raw:.2f} | "
          f"{km['peak_rss_gb']} | {km['spilled_bytes']:.0f} |")
    n_passes = len(km["passes_read"])
    print(f"| KMeans whole fit, init_size={res['init_size']} ({n_passes} passes read, "
          f"{km['n_iter']} Lloyd) | {km['seconds']:.1f} | "
          f"{res['gb'] * n_passes / km['seconds']:.2f} | {km['seconds'] / raw_s:.2f} raw passes'"
          " time | | |")
    print(f"\npasses read by the fit: {km['passes_read']}")
    print(f"KMeans final inertia {km['inertia']:.6g}")
    print(f"KMeans timings: {json.dumps({k: round(v, 1) for k, v in km['timings'].items()})}; "
          f"Lloyd passes: {[round(s, 2) for s in km['lloyd_pass_all_s']]}")
    if mb is None:
        return
    print(f"| MiniBatchKMeans ({mb['n_passes_read']:.2f} passes read, {mb['n_steps']} "
          f"batches) | {mb['seconds']:.1f} | {res['gb'] * mb['n_passes_read'] / mb['seconds']:.2f}"
          f" | | {mb['peak_rss_gb']} | {mb['spilled_bytes']:.0f} |")
    print(f"\nfinal inertia: KMeans {km['inertia']:.6g}; MiniBatchKMeans {mb['inertia']:.6g} "
          f"({mb['inertia'] / km['inertia']:.4f} x KMeans)")
    if "dask_ml" in res:
        d = res["dask_ml"]
        state = (f"finished in {d['seconds']:.0f} s, inertia {d['inertia'] / km['inertia']:.4f}"
                 " x KMeans" if d["finished"] else f"stopped after {d['seconds']:.0f} s")
        print(f"dask-ml KMeans: {state}; peak RSS per worker {d['peak_rss_gb']} GB, spilled "
              f"{d['spilled_bytes']:.0f} bytes; last output: {d['log_tail'][-300:]!r}")


if __name__ == "__main__":
    sys.exit(main())
