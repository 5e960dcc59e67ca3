"""k-medians against Lloyd on the same data and initial centers: passes and
seconds per iteration, in one run.

Generates ``--rows`` x ``--features`` float32 blobs (``--clusters`` of them,
Laplace-distributed so medians and means differ), in memory as a dask array
of ``--chunk-rows`` rows per block on the threaded scheduler. From the same
initial centers (``--clusters`` rows drawn at random), each algorithm runs
``--iterations`` iterations with ``tol=0``, alternating, ``--repeats`` times:
seconds per iteration are ``(t(max_iter=N) - t(max_iter=1)) / (N - 1)``
(fixed costs cancel), and passes per iteration are counted through
``dkmeans.runner.report_progress``.

    python benchmarks/bench_kmedians.py
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--chunk-rows", type=int, default=250_000)
    p.add_argument("--iterations", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    import dask.array as da

    from dkmeans import KMeans
    from dkmeans.runner import report_progress

    rng = np.random.default_rng(0)
    k, d = args.clusters, args.features
    centers = rng.uniform(-20, 20, size=(k, d))
    X = (centers[rng.integers(0, k, size=args.rows)]
         + rng.laplace(0, 3.0, size=(args.rows, d))).astype(np.float32)
    init = X[rng.choice(args.rows, k, replace=False)]
    data = da.from_array(X, chunks=(args.chunk_rows, d)).persist()

    def fit(metric: str, max_iter: int) -> tuple[float, int]:
        passes: list[str] = []

        def count(name: str, done: int, total: int) -> None:
            if done == total:
                passes.append(name)

        with warnings.catch_warnings(), report_progress(count):
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            KMeans(k, init=init, metric=metric, max_iter=max_iter, tol=0).fit(data)
            return time.perf_counter() - t, len(passes)

    times: dict[str, list[float]] = {"euclidean": [], "manhattan": []}
    passes: dict[str, float] = {}
    n = args.iterations
    for _ in range(args.repeats):
        for metric in times:
            t1, p1 = fit(metric, 1)
            tn, pn = fit(metric, n)
            times[metric].append((tn - t1) / (n - 1))
            passes[metric] = (pn - p1) / (n - 1)
    lloyd, medians = (float(np.median(times[m])) for m in ("euclidean", "manhattan"))
    print(f"{args.rows:,} x {d} float32, k={k}, {args.chunk_rows:,}-row blocks, threads "
          f"(load {os.getloadavg()[0]:.2f})")
    print("| | passes per iteration | s per iteration | vs Lloyd |\n|---|---|---|---|")
    print(f"| Lloyd (k-means) | {passes['euclidean']:.1f} | {lloyd:.3f} | 1.00 |")
    print(f"| k-medians | {passes['manhattan']:.1f} | {medians:.3f} | "
          f"{medians / lloyd:.2f} |")


if __name__ == "__main__":
    main()
