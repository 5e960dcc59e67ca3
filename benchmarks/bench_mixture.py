"""GaussianMixture: dkmeans against scikit-learn in memory, and alone on a
Zarr array larger than its cluster's memory, in one run.

In memory (``--rows`` x ``--features`` float64 blobs, ``--components``
components): both libraries start from the same weights, means and
precisions (from a short scikit-learn fit). Seconds per EM iteration are
``(t(max_iter=11) - t(max_iter=1)) / 10`` with ``tol=0``, alternating the
libraries, median of ``--repeats``; then each fits to convergence
(``tol=1e-3``) from the same start, and the final lower bounds are compared.

Out of core (``--big-rows`` x ``--features`` float32 Zarr array generated
chunk by chunk on the workers, ``--workers`` processes of
``--worker-memory``): a raw pass (read and sum every chunk), then streamed
EM iterations (``persist=False``) from the same kind of start, with each
worker's peak resident memory (``dkmeans.cli.cluster.watch_worker_memory``).
scikit-learn cannot run this part: the data does not fit in memory.

    python benchmarks/bench_mixture.py
    python benchmarks/bench_mixture.py --big-rows 0        # in memory only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--covariance-type", default="diag")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--big-rows", type=int, default=24_000_000)
    p.add_argument("--chunk-rows", type=int, default=500_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--worker-memory", default="600MB")
    p.add_argument("--big-iterations", type=int, default=3)
    return p.parse_args(argv)


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def start(X: np.ndarray, k: int, cov: str) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = GaussianMixture(k, covariance_type=cov, max_iter=1, random_state=0).fit(X)
    return {"weights_init": sk.weights_, "means_init": sk.means_,
            "precisions_init": sk.precisions_}


def in_memory(args) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture as SK

    from dkmeans import GaussianMixture as DK
    from dkmeans.data.datasets import make_blobs

    k, cov = args.components, args.covariance_type
    X = make_blobs(args.rows, args.features, k, std=2.0, seed=1,
                   chunk_rows=args.rows)[0].compute().astype(np.float64)
    init = start(X, k, cov)
    times: dict[str, list[float]] = {"dkmeans": [], "sklearn": []}

    def fit(lib, max_iter, tol):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t = time.perf_counter()
            model = lib(k, covariance_type=cov, max_iter=max_iter, tol=tol, **init).fit(X)
            return time.perf_counter() - t, model

    for _ in range(args.repeats):
        for name, lib in (("dkmeans", DK), ("sklearn", SK)):
            t1, _ = fit(lib, 1, 0.0)
            t11, m = fit(lib, 11, 0.0)
            assert m.n_iter_ == 11
            times[name].append((t11 - t1) / 10)
    ours, theirs = (np.median(times[n]) for n in ("dkmeans", "sklearn"))
    print(f"in memory: {args.rows:,} x {args.features} float64, k={k}, {cov} ({load()})")
    print("| | dkmeans | scikit-learn | ratio |\n|---|---|---|---|")
    print(f"| s per EM iteration (median of {args.repeats}) | {ours:.4f} | {theirs:.4f} "
          f"| {ours / theirs:.2f} |")
    (ts, sk), (td, dk) = fit(SK, 100, 1e-3), fit(DK, 100, 1e-3)
    print(f"| whole fit from the same start, s | {td:.2f} | {ts:.2f} | {td / ts:.2f} |")
    print(f"| iterations | {dk.n_iter_} | {sk.n_iter_} | |")
    print(f"| final lower bound | {dk.lower_bound_:.8f} | {sk.lower_bound_:.8f} | "
          f"diff {dk.lower_bound_ - sk.lower_bound_:.2e} |", flush=True)


def out_of_core(args) -> None:
    import dask.array as da
    import distributed
    import zarr
    from bench_larger_than_memory import memory_summary, raw_pass

    from dkmeans import GaussianMixture
    from dkmeans.cli.cluster import watch_worker_memory
    from dkmeans.data.datasets import make_blobs

    k, cov, d = args.components, args.covariance_type, args.features
    folder = tempfile.mkdtemp(prefix="dkmeans-bench-mixture-")
    path = os.path.join(folder, "big.zarr")
    with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                  memory_limit=args.worker_memory, dashboard_address=None,
                                  local_directory=folder, silence_logs=50) as cluster, \
            distributed.Client(cluster) as client:
        X, _ = make_blobs(args.big_rows, d, k, chunk_rows=args.chunk_rows, std=2.0, seed=1)
        X.astype(np.float32).to_zarr(path)
        nbytes = args.big_rows * d * 4
        init = start(np.asarray(zarr.open_array(path, mode="r")[:200_000], dtype=np.float64),
                     k, cov)
        raw = raw_pass(client, path)
        seconds = []
        gm = GaussianMixture(k, covariance_type=cov, max_iter=args.big_iterations, tol=0.0,
                             persist=False, **init)
        with watch_worker_memory(client) as mem, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            gm.fit(da.from_zarr(path))
            seconds = time.perf_counter() - t0
        per_iter = seconds / gm.n_iter_
        memory = memory_summary(mem)
        print(f"\nout of core: {args.big_rows:,} x {d} float32 ({nbytes / 1e9:.2f} GB) on "
              f"{args.workers} workers of {args.worker_memory} ({load()})")
        print("| | seconds | vs raw pass | peak RSS per worker (GB) | spilled |")
        print("|---|---|---|---|---|")
        print(f"| raw pass | {raw['seconds']:.1f} | 1.00 | {raw['peak_rss_gb']} | "
              f"{raw['spilled_bytes']} |")
        print(f"| EM iteration ({gm.n_iter_} streamed) | {per_iter:.1f} | "
              f"{per_iter / raw['seconds']:.2f} | {memory['peak_rss_gb']} | "
              f"{memory['spilled_bytes']} |")
        print(f"lower bounds: {[round(v, 6) for v in gm.lower_bounds_]}", flush=True)
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    args = parse_args()
    in_memory(args)
    if args.big_rows:
        out_of_core(args)


if __name__ == "__main__":
    main()
