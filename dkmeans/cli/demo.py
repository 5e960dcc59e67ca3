"""``dkmeans demo``: the main job, on an embedded local cluster.

Generates Gaussian blobs into a Zarr array (written chunk by chunk by the
workers), fits :class:`~dkmeans.KMeans`, reports what it found and how long
each phase took, and writes a plot. The generated data goes to a temporary
folder that is removed at the end, unless ``--path`` names one to keep.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dkmeans.cli.options import positive_int


def add_parser(sub: Any) -> None:
    """The ``demo`` subcommand and its options, on the command's subparsers."""
    demo = sub.add_parser(
        "demo", help="generate a Zarr dataset, cluster it on an embedded local Dask cluster")
    demo.add_argument("--rows", type=positive_int, default=4_000_000,
                      help="rows to generate (default 4,000,000)")
    demo.add_argument("--features", type=positive_int, default=16,
                      help="features (columns) per row (default 16)")
    demo.add_argument("--clusters", type=positive_int, default=12,
                      help="Gaussian blobs to generate, and k (default 12)")
    demo.add_argument("--workers", type=positive_int, default=None,
                      help="worker processes of the local cluster (default 2, or the "
                           "cluster file's)")
    demo.add_argument("--cluster", default=None,
                      help="cluster YAML (cluster_configs/; default: a local cluster)")
    demo.add_argument("--path", default=None,
                      help="folder to keep the Zarr data in (default: a temporary folder, "
                           "removed at the end)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the data and the fit (default 0)")
    demo.add_argument("--plot", default=None, metavar="FILE.png",
                      help="where to write the plot (default: dkmeans-demo.png in --path, "
                           "or here; -2, -3, ... added when the name is taken)")
    demo.add_argument("--verbose", "-v", action="count", default=0,
                      help="print the fit's progress (-vv: more)")
    demo.set_defaults(run=run, quiet=False, log_level="INFO")


def run(args: argparse.Namespace) -> int:
    """The demo; its generated data goes to a temporary folder removed at the
    end, unless ``--path`` names a folder to keep it in."""
    if args.path is not None:
        return _run_demo(args, Path(args.path))
    with tempfile.TemporaryDirectory(prefix="dkmeans-demo-") as workdir:
        return _run_demo(args, Path(workdir))


def _run_demo(args: argparse.Namespace, workdir: Path) -> int:
    import dask.array as da

    from dkmeans import KMeans
    from dkmeans.cli.cluster import connect
    from dkmeans.data.datasets import make_blobs

    started = time.perf_counter()
    path = str(workdir / "X.zarr")
    X, true_centers = make_blobs(args.rows, args.features, args.clusters, seed=args.seed)
    print(f"dkmeans demo: {args.rows:,} x {args.features} float32 "
          f"({X.nbytes / 1e6:,.0f} MB) from {args.clusters} Gaussian blobs")
    t0 = time.perf_counter()
    with connect(args.cluster, n_workers=args.workers) as client:
        info = client.scheduler_info(n_workers=-1)["workers"].values()
        print(f"cluster: {len(info)} worker processes, "
              f"{sum(w['nthreads'] for w in info)} threads, dashboard {client.dashboard_link} "
              f"(started in {time.perf_counter() - t0:.1f} s)")
        t0 = time.perf_counter()
        da.to_zarr(X, path, overwrite=True)
        print(f"wrote {path} in {time.perf_counter() - t0:.1f} s (by the workers, chunk by "
              "chunk)")
        t0 = time.perf_counter()
        km = KMeans(args.clusters, random_state=args.seed, verbose=args.verbose).fit(path)
        total = time.perf_counter() - t0
        _report_demo(args, km, total, true_centers)
        _demo_plot(km, path, args.plot or str(_free_name(workdir if args.path else Path())))
    print(f"demo wall time {time.perf_counter() - started:.1f} s"
          + ("" if args.path else "; the generated data was removed"))
    return 0


def _report_demo(args: argparse.Namespace, km: Any, total: float, true_centers: Any) -> None:
    t = km.timings_
    print(f"\nfitted KMeans(n_clusters={args.clusters}, init='k-means||') in {total:.2f} s:"
          f" scan {t['scan']:.2f} s, seeding {t['seeding']:.2f} s, Lloyd {t['lloyd']:.2f} s "
          f"for {km.n_iter_} iterations ({t['lloyd'] / km.n_iter_:.3f} s each)")
    print(f"inertia: {km.inertia_:,.1f} ({km.inertia_ / args.rows:.3f} per row; "
          f"{args.features:.3f} expected for unit-variance blobs)")
    print(f"inertia per iteration: {np.array2string(km.inertia_history_, precision=6)}")
    found = km.cluster_centers_
    gap = np.sqrt(((true_centers[:, None, :] - found[None]) ** 2).sum(-1)).min(1)
    print(f"farthest true blob center from a found center: {gap.max():.3f}")
    with np.printoptions(precision=2, suppress=True, linewidth=120):
        print(f"centers (first {min(6, args.features)} features):")
        print(found[:, :6])


def _demo_plot(model: Any, data_path: str, out: str) -> None:
    from dkmeans.errors import InputTypeError
    from dkmeans.evaluate.plots import plot_fit

    try:
        written = plot_fit(model, data_path, out)
    except InputTypeError as err:  # matplotlib missing: the demo still succeeds
        print(f"no plot: {err}")
        return
    print(f"plot: {written}")




def _free_name(folder: Path) -> Path:
    """``dkmeans-demo.png`` in ``folder``, or the first ``dkmeans-demo-N.png``
    not taken: the demo never replaces a file it was not told to."""
    path, n = folder / "dkmeans-demo.png", 1
    while path.exists():
        n += 1
        path = folder / f"dkmeans-demo-{n}.png"
    return path
