"""What the gap statistic and stability add to a sweep over k: seconds and
passes, on a Zarr array on a local cluster, in one run.

Generates (once, chunk by chunk on the workers) a ``--rows`` x
``--features`` float32 Zarr array of ``--centers`` Gaussian blobs, starts a
local ``distributed`` cluster of ``--workers`` single-threaded processes,
and runs ``sweep(X, range(KMIN, KMAX + 1))`` the ``--modes`` ways: plain;
with ``gap=True, n_refs=--refs``; with ``stability=True,
stability_runs=--runs``; with both.
Passes are counted through ``dkmeans.runner.report_progress`` (one per
completed pass over all blocks).

    python benchmarks/bench_choosing.py                       # the issue's size
    python benchmarks/bench_choosing.py --rows 1000000 --kmax 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def _counter(passes: list[str]):
    """A progress callback appending each pass's name once it completes."""
    def count(name: str, done: int, total: int) -> None:
        if done == total:
            passes.append(name)
    return count


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--centers", type=int, default=6)
    p.add_argument("--chunk-rows", type=int, default=500_000)
    p.add_argument("--kmin", type=int, default=2)
    p.add_argument("--kmax", type=int, default=20)
    p.add_argument("--refs", type=int, default=5)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--modes", nargs="+", default=["plain", "gap", "stability"],
                   choices=["plain", "gap", "stability", "both"],
                   help="which sweeps to run; added seconds and passes are against "
                        "the first")
    args = p.parse_args()

    import distributed

    from dkmeans import sweep
    from dkmeans.data.datasets import make_blobs
    from dkmeans.runner import report_progress

    folder = tempfile.mkdtemp(prefix="dkmeans-bench-choosing-")
    path = os.path.join(folder, "X.zarr")
    ks = range(args.kmin, args.kmax + 1)
    try:
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                      dashboard_address=None, local_directory=folder,
                                      silence_logs=50) as cluster, \
                distributed.Client(cluster):
            X, _ = make_blobs(args.rows, args.features, args.centers,
                              chunk_rows=args.chunk_rows, std=1.5, seed=0)
            X.to_zarr(path)
            print(f"{args.rows:,} x {args.features} float32 Zarr, {args.centers} blobs, "
                  f"{args.workers} workers, k = {args.kmin}..{args.kmax}")
            print("| sweep | seconds | passes | seconds added | passes added | k chosen | load |")
            print("|---|---|---|---|---|---|---|")
            base = None
            modes = {"plain": ("plain", {}),
                     "gap": (f"gap, {args.refs} refs", {"gap": True, "n_refs": args.refs}),
                     "stability": (f"stability, {args.runs} runs",
                                   {"stability": True, "stability_runs": args.runs}),
                     "both": (f"gap, {args.refs} refs, and stability, {args.runs} runs",
                              {"gap": True, "n_refs": args.refs, "stability": True,
                               "stability_runs": args.runs})}
            for label, options in (modes[m] for m in args.modes):
                passes: list[str] = []
                with report_progress(_counter(passes)):
                    t = time.perf_counter()
                    result = sweep(path, ks, **options)
                    seconds = time.perf_counter() - t
                base = base or (seconds, len(passes))
                chosen = result.suggestions
                print(f"| {label} | {seconds:.1f} | {len(passes)} | "
                      f"{seconds - base[0]:.1f} | {len(passes) - base[1]} | "
                      f"knee {chosen['inertia']}, gap {chosen.get('gap', '-')} | "
                      f"{os.getloadavg()[0]:.2f} |", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
