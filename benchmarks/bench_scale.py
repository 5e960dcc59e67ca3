"""What one Lloyd iteration costs on a cluster, against the number of chunks,
k x d and the number of workers: bytes through the network (the loopback
interface), tasks through the scheduler (its own task counters) and seconds.

Runs dkmeans as installed or on ``PYTHONPATH``, so the same script measures
two versions side by side (``--label`` names the rows)::

    python benchmarks/bench_scale.py --label after
    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before python benchmarks/bench_scale.py --label before

Per iteration is the difference between a 3-iteration and a 1-iteration run
from the same centers on the same persisted data, halved, so fixed costs
(the final assignment, any set-up pass) cancel. Data: structureless normal
rows made on the workers, persisted, ``--rows`` a chunk; the client sends
them nothing. Also: the k-means|| seeding time at k=1,000, d=128 (threads).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time

import dask
import dask.array as da
import numpy as np
import psutil


def loopback_bytes() -> int:
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                return int(counters.split()[0])
    raise RuntimeError("no loopback counters")


def tasks_done(dask_scheduler) -> int:
    return sum(p.state_counts["memory"] for p in dask_scheduler.task_prefixes.values())


def measure(client, blocks, centers, iters):
    from dkmeans.algorithms.lloyd import lloyd

    b0, t0 = loopback_bytes(), client.run_on_scheduler(tasks_done)
    s0 = time.perf_counter()
    lloyd(blocks, centers, max_iter=iters, tol=-1.0, keep_labels=False)
    return (loopback_bytes() - b0, client.run_on_scheduler(tasks_done) - t0,
            time.perf_counter() - s0)


def per_iteration(workers, chunks, k, d, rows, streamed=False, zarr_dir=None):
    from distributed import Client, LocalCluster

    from dkmeans.data import as_dataset

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=50, memory_limit="1GiB") as cluster, \
            Client(cluster, direct_to_workers=True) as client:
        client.wait_for_workers(workers)
        X = da.random.default_rng(0).standard_normal((chunks * rows, d), chunks=(rows, d),
                                                        dtype=np.float32)
        # persisted as chunked (a fit would merge them to about two per worker
        # thread first: here the chunks are the variable), or made afresh by
        # each pass's tasks, as rows streamed from storage are read (or read
        # from a Zarr store on this machine's disk: each chunk's read task a
        # path and a slice, where the random rows' carry a generator state)
        stack = contextlib.ExitStack()
        if zarr_dir is not None:
            path = os.path.join(stack.enter_context(tempfile.TemporaryDirectory(dir=zarr_dir)),
                                "x.zarr")
            X.to_zarr(path)
            X = da.from_zarr(path)
        with stack:
            return _measured(client, as_dataset(X if streamed else X.persist()).blocks(),
                             X[:k].compute())


def _measured(client, blocks, centers):
    """Per-iteration bytes, tasks and seconds of Lloyd over ``blocks``."""
    measure(client, blocks, centers, 1)  # warm-up
    rss0 = psutil.Process().memory_info().rss
    one = measure(client, blocks, centers, 1)
    three = measure(client, blocks, centers, 3)
    rss = psutil.Process().memory_info().rss - rss0
    return {f: (b - a) / 2 for f, a, b in zip(("bytes", "tasks", "seconds"), one, three,
                                                 strict=True)} | {"client_rss_growth": rss}


def seeding_seconds(k=1000, d=128, n=100_000):
    from dkmeans.algorithms.seeding import init_kmeans_parallel
    from dkmeans.data import as_dataset

    X = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    with dask.config.set(scheduler="threads"):
        blocks = as_dataset(da.from_array(X, chunks=(n // 8, d))).blocks()
        t = time.perf_counter()
        init_kmeans_parallel(blocks, k, 0, 0)
        return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after")
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="the smaller sizes only")
    parser.add_argument("--configs", default=None,
                        help="workers:chunks:k:d,... instead of the default grid")
    parser.add_argument("--no-seeding", action="store_true")
    parser.add_argument("--streamed", action="store_true",
                        help="rows made by each pass's own tasks instead of persisted")
    parser.add_argument("--zarr", default=None, metavar="DIR",
                        help="with --streamed: rows written once to a Zarr store in a "
                             "temporary folder under DIR and read from it by each pass")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    parser.add_argument("--stealing", action="store_true",
                        help="leave dask's work stealing on (it may move small blocks to "
                             "idle workers on a loaded machine)")
    parser.add_argument("--message-log", action="store_true",
                        help="leave distributed's log of recent messages on (the command "
                             "line turns it off: it holds pass graphs)")
    args = parser.parse_args()
    if not args.message_log:  # as dkmeans.cli.cluster.connect does
        dask.config.set({"distributed.admin.low-level-log-length": 0})
    configs = [(8, c, 256, 64) for c in (100, 1000, 10000)]
    configs += [(16, c, 256, 64) for c in (100, 1000, 10000)]
    configs += [(8, 1000, k, d) for k, d in ((16, 32), (1000, 128))]
    if args.quick:
        configs = [c for c in configs if c[1] <= 1000 and c[2] <= 256]
    if args.configs:
        configs = [tuple(int(v) for v in c.split(":")) for c in args.configs.split(",")]
    print(f"# {args.label}: load {os.getloadavg()[0]:.1f}, python {sys.version.split()[0]}, "
          f"work stealing {'on' if args.stealing else 'off'}, "
          f"message log {'on' if args.message_log else 'off'}, "
          f"{'streamed' if args.streamed else 'persisted'}"
          f"{' from Zarr' if args.streamed and args.zarr else ''}")
    print("| version | workers | chunks | k x d | MB/iter | bound MB | tasks/iter | "
          "s/iter | client RSS growth MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows_out = []
    dask.config.set({"distributed.scheduler.work-stealing": args.stealing})
    for workers, chunks, k, d in configs:
        r = per_iteration(workers, chunks, k, d, args.rows, args.streamed, args.zarr)
        bound = 2 * workers * (k * d * 8 + k * 8)
        print(f"| {args.label} | {workers} | {chunks} | {k} x {d} | {r['bytes'] / 1e6:.2f} | "
              f"{bound / 1e6:.2f} | {r['tasks']:.0f} | {r['seconds']:.3f} | "
              f"{r['client_rss_growth'] / 1e6:.0f} |", flush=True)
        rows_out.append({"label": args.label, "workers": workers, "chunks": chunks, "k": k,
                         "d": d, "bound": bound, **r, "load": os.getloadavg()[0]})
    if args.no_seeding:
        return
    seconds = seeding_seconds()
    print(f"\nk-means|| seeding, k=1,000, d=128, 100,000 rows (threads): {seconds:.1f} s "
          f"({args.label}, load {os.getloadavg()[0]:.1f})")
    if args.out:
        with open(args.out, "a") as f:
            for r in rows_out:
                f.write(json.dumps(r) + "\n")
            f.write(json.dumps({"label": args.label, "seeding_seconds": seconds}) + "\n")


if __name__ == "__main__":
    main()
