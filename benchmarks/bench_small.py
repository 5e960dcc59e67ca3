"""Fits of small numpy arrays, dkmeans against scikit-learn, and import times.

Small in-memory data takes dkmeans' shortest path (no task graph: the
kernels, then the compiled Lloyd loop, called directly). Each shape is fitted
with default settings by both libraries in turn, ``--repeats`` times
alternating, on the same data; medians and their ratio are printed with the
machine's load. Import times are of a fresh interpreter each.

    python benchmarks/bench_small.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

#: (rows, features, k): a 200-row table (the Mall customers' size), small
#: blobs, and a 245,057 x 3 table with k=2 (the skin-segmentation shape)
SHAPES = [(200, 4, 5), (500, 4, 8), (5_000, 8, 8), (50_000, 8, 8), (245_057, 3, 2)]


def import_seconds(statement: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(np.median([float(subprocess.run([sys.executable, "-c", code],
                                                 capture_output=True, text=True,
                                                 check=True).stdout)
                            for _ in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    from sklearn.cluster import KMeans as SKKMeans

    from dkmeans import KMeans

    print(f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| rows x features, k | dkmeans ms | scikit-learn ms | ratio |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n, d, k in SHAPES:
        X = (rng.normal(size=(n, d)) + 6 * rng.integers(0, k, size=(n, 1))).astype(np.float64)
        times: dict[str, list[float]] = {"dkmeans": [], "sklearn": []}
        for lib in (KMeans, SKKMeans):  # warm-up: compilation, caches
            lib(k, random_state=0).fit(X)
        for r in range(args.repeats):
            for name, lib in (("dkmeans", KMeans), ("sklearn", SKKMeans)):
                t = time.perf_counter()
                lib(k, random_state=r).fit(X)
                times[name].append(time.perf_counter() - t)
        ours, theirs = (1e3 * np.median(times[m]) for m in ("dkmeans", "sklearn"))
        print(f"| {n:,} x {d}, k={k} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |",
              flush=True)
    print(f"\nimport dkmeans: {import_seconds('import dkmeans'):.3f} s; "
          f"from dkmeans import KMeans: {import_seconds('from dkmeans import KMeans'):.2f} s; "
          f"from sklearn.cluster import KMeans: "
          f"{import_seconds('from sklearn.cluster import KMeans'):.2f} s "
          f"(load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
