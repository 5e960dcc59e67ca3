"""The ``dkmeans`` command line."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    import dask.array as da

    from dkmeans import KMeans
    from dkmeans.cluster import connect
    from dkmeans.datasets import make_blobs

    workdir = Path(args.path or tempfile.mkdtemp(prefix="dkmeans-demo-"))
    path = str(workdir / "X.zarr")
    X, true_centers = make_blobs(args.rows, args.features, args.clusters, seed=args.seed)
    print(f"dkmeans demo: {args.rows:,} x {args.features} float32 "
          f"({X.nbytes / 1e6:,.0f} MB) from {args.clusters} Gaussian blobs")
    with connect(args.cluster, n_workers=args.workers) as client:
        info = client.scheduler_info(n_workers=-1)["workers"].values()
        print(f"cluster: {len(info)} worker processes, "
              f"{sum(w['nthreads'] for w in info)} threads, dashboard {client.dashboard_link}")
        t0 = time.perf_counter()
        da.to_zarr(X, path, overwrite=True)
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s (by the workers, chunk by "
              "chunk)")
        t0 = time.perf_counter()
        km = KMeans(args.clusters, random_state=args.seed, verbose=args.verbose).fit(path)
        total = time.perf_counter() - t0
    t = km.timings_
    print(f"\nfitted KMeans(n_clusters={args.clusters}, init='k-means||') in {total:.2f} s:"
          f" scan {t['scan']:.2f} s, seeding {t['seeding']:.2f} s, Lloyd {t['lloyd']:.2f} s "
          f"for {km.n_iter_} iterations ({t['lloyd'] / km.n_iter_:.3f} s each)")
    print(f"inertia: {km.inertia_:,.1f} ({km.inertia_ / args.rows:.3f} per row; "
          f"{args.features:.3f} expected for unit-variance blobs)")
    print(f"inertia per iteration: {np.array2string(km.inertia_history_, precision=4)}")
    found = km.cluster_centers_
    gap = np.sqrt(((true_centers[:, None, :] - found[None]) ** 2).sum(-1)).min(1)
    print(f"farthest true blob center from a found center: {gap.max():.3f}")
    with np.printoptions(precision=2, suppress=True, linewidth=120):
        print(f"centers (first {min(6, args.features)} features):")
        print(found[:, :6])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dkmeans", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="generate a Zarr dataset, cluster it on an embedded local Dask cluster")
    demo.add_argument("--rows", type=int, default=4_000_000, help="rows (default 4,000,000)")
    demo.add_argument("--features", type=int, default=16, help="features (default 16)")
    demo.add_argument("--clusters", type=int, default=12, help="blobs and k (default 12)")
    demo.add_argument("--workers", type=int, default=None, help="worker processes")
    demo.add_argument("--cluster", default=None, help="cluster YAML (cluster_configs/)")
    demo.add_argument("--path", default=None, help="folder for the Zarr data (default: temp)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--verbose", "-v", action="count", default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dkmeans.errors import DKMeansError

    try:
        return args.run(args)
    except DKMeansError as err:
        print(f"dkmeans: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
