"""Many streamed chunks: what a Lloyd iteration costs the client and the
scheduler, against dask's own floor for the same chunks.

Starts a scheduler and ``--workers`` single-threaded workers each in its own
process (distributed's ``SubprocessCluster``) (so the client's resident memory is the
client's alone), makes rows of ``--rows`` x ``--features`` float32 per chunk
afresh in each pass's tasks (as rows read from storage are: nothing is
persisted), and for each number of chunks runs, alternating:

- ``plain dask``: a dask computation over the same chunks (make and sum
  each row, dask's own graph: two tasks per chunk), for scale;
- ``dkmeans``: one Lloyd iteration's pass (``run_pass(LLOYD, ...)``, what
  :func:`dkmeans.algorithms.lloyd.lloyd` runs each iteration), repeated ``--iters``
  times, with the client's RSS after each (after ``gc``) and the tasks the
  scheduler ran (its own per-prefix counters).

    python benchmarks/bench_streamed_chunks.py --chunks 2000 5000 --workers 16
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time

import numpy as np
import psutil


def tasks_done(dask_scheduler) -> int:
    """Tasks the scheduler has computed (its counters of transitions to memory)."""
    return sum(p.state_counts["memory"] for p in dask_scheduler.task_prefixes.values())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, nargs="+", default=[2000, 5000, 10000, 20000])
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--features", type=int, default=16)
    p.add_argument("--k", type=int, default=32)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--message-log", action="store_true",
                   help="leave distributed's log of recent messages on (the command line "
                        "turns it off: it holds pass graphs)")
    p.add_argument("--no-plain", action="store_true",
                   help="skip the plain dask passes (their graphs share the client's memory)")
    p.add_argument("--persisted", action="store_true",
                   help="hold the chunks in the workers' memory instead (as made: not "
                        "merged, as a fit's persist would)")
    args = p.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, wait
    from distributed.deploy.subprocess import SubprocessCluster

    from dkmeans.data import as_dataset
    from dkmeans.kernels import exact
    from dkmeans.passes import LLOYD
    from dkmeans.runner import run_pass

    folder = tempfile.mkdtemp(prefix="dkmeans-bench-chunks-")
    me = psutil.Process()
    if not args.message_log:  # as dkmeans.cli.cluster.connect does
        dask.config.set({"distributed.admin.low-level-log-length": 0})
    # the scheduler and workers are other processes: they read the environment
    os.environ["DASK_TEMPORARY_DIRECTORY"] = folder
    os.environ["DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING"] = "False"
    try:
        with SubprocessCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                               silence_logs=50, scheduler_kwargs={
                                   "scheduler_file": os.path.join(folder, "scheduler.json")},
                               worker_kwargs={"memory_limit": "1GiB"}) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(args.workers)
            print(f"{'persisted' if args.persisted else 'streamed'}, "
                  f"{args.workers} workers, {args.rows} x {args.features} float32 a chunk, "
                  f"k={args.k}, dkmeans from {os.path.dirname(exact.__file__)}")
            print("| chunks | plain dask s | dkmeans s/iter | / plain dask | tasks/iter | "
                  "client RSS MB per iteration | load |")
            print("|---|---|---|---|---|---|---|")
            for chunks in args.chunks:
                X = da.random.default_rng(0).standard_normal(
                    (chunks * args.rows, args.features), chunks=(args.rows, args.features),
                    dtype=np.float32)
                if args.persisted:
                    X = X.persist()
                    wait(X)
                blocks = as_dataset(X).blocks()
                C = X[: args.k].compute()
                quanta = exact.grid(chunks * args.rows, 1.0, np.full(args.features, 8.0))
                floors, seconds, rss, tasks = [], [], [], []
                for _ in range(args.iters):
                    if not args.no_plain:
                        t = time.perf_counter()
                        futures = client.compute(list(X.sum(axis=1).to_delayed().ravel()))
                        wait(futures)
                        floors.append(time.perf_counter() - t)
                        del futures
                    t0 = client.run_on_scheduler(tasks_done)
                    t = time.perf_counter()
                    run_pass(LLOYD, blocks, C, quanta)
                    seconds.append(time.perf_counter() - t)
                    tasks.append(client.run_on_scheduler(tasks_done) - t0)
                    gc.collect()
                    rss.append(me.memory_info().rss / 1e6)
                floor = float(np.median(floors)) if floors else float("nan")
                s = float(np.median(seconds))
                print(f"| {chunks:,} | {floor:.2f} | {s:.2f} | {s / floor:.2f} | "
                      f"{np.median(tasks):.0f} | {' '.join(f'{r:.1f}' for r in rss)} | "
                      f"{os.getloadavg()[0]:.2f} |", flush=True)
                del blocks, X
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
