"""k-means|| rounds at large k: seeding share, iterations and final inertia.

Fits ``KMeans(k, init_rounds=r, oversampling_factor=o)`` on bench_large_k.py's
embedding-like data (100,000 x 128 around 4,096 topics) for each seed, rounds
and oversampling factor, in one process after a small warm-up fit; prints the
time, the seeding's share of it (``timings_``), the iterations and the inertia
(bench_large_k.py's one float64 code), with the load average before and after.

Usage::

    python benchmarks/bench_init_rounds.py 1024 5,3,2 2.0 0,1
    python benchmarks/bench_init_rounds.py 4096 5,3 2.0 0
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_large_k import embeddings, inertia_of

from dkmeans import KMeans


def main(argv: list[str]) -> None:
    k = int(argv[0])
    rounds, factors = ([float(v) for v in a.split(",")] for a in argv[1:3])
    seeds = [int(s) for s in (argv[3] if len(argv) > 3 else "0,1").split(",")]
    X = embeddings(100_000, 128, False)
    KMeans(16, random_state=0).fit(X[:20_000])  # compilation, thread pools
    print("load", os.getloadavg(), flush=True)
    for seed in seeds:
        for r in rounds:
            for factor in factors:
                t = time.perf_counter()
                km = KMeans(k, random_state=seed, init_rounds=int(r),
                            oversampling_factor=factor).fit(X)
                elapsed = time.perf_counter() - t
                seeding = km.timings_.get("seeding", 0.0)
                print(f"seed {seed}, {int(r)} rounds x {factor:g}k: {elapsed:.2f} s, seeding "
                      f"{seeding:.2f} s ({seeding / elapsed:.0%}), {km.n_iter_} iterations, "
                      f"inertia {inertia_of(X, km.cluster_centers_, False):.6e}", flush=True)
    print("load", os.getloadavg())


if __name__ == "__main__":
    main(sys.argv[1:])
