"""Scheduled jobs on a real single-node SLURM (started here, stopped at the end).

Measures, on one run of this machine, with the load average beside each
figure:

1. time to the first worker: ``connect()`` of a ``type: slurm`` cluster
   file (two 1-core worker jobs) until a worker has joined;
2. a fit on those SLURM worker jobs against the same fit on a LocalCluster
   of as many worker processes (alternating, medians; the ratio);
3. what a preemption costs: the shipped ``cluster_configs/slurm_job.sh``
   submitted with ``--checkpoint-every`` 1, 5 and 20, requeued
   (``scontrol requeue``, as preemption does) mid-fit and released: the
   seconds from the requeue until the job resumed, and the iterations
   redone (those finished after the last checkpoint), with their seconds.

    python benchmarks/bench_scheduled.py [--rows 4000000] [--features 16]

Needs root, ``slurm-wlm`` and ``munge`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import _slurm  # noqa: E402  (the tests' single-node SLURM)


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def dkmeans(args: list, env: dict, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dkmeans", *map(str, args)], env=env, cwd=cwd,
                   check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def cluster_file(folder: Path) -> Path:
    config = {"type": "slurm", "jobs": 2, "cores": 1, "memory": "2GiB", "processes": 1,
              "queue": "debug", "walltime": "01:00:00", "interface": "lo",
              "log_directory": str(folder / "logs"), "timeout": "120s"}
    path = folder / "slurm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def first_worker(config: Path, env: dict) -> float:
    code = ("import time, sys; from dkmeans.cli.cluster import load_config;"
            "from dkmeans.cli.cluster_slurm import slurm_kwargs, start_jobs;"
            "from dask_jobqueue import SLURMCluster; from distributed import Client;"
            f"c = load_config({str(config)!r}); t = time.perf_counter();"
            "cl = SLURMCluster(**slurm_kwargs(c)); start_jobs(cl, c); cli = Client(cl);"
            "cli.wait_for_workers(1, timeout=120); print(time.perf_counter() - t);"
            "cli.close(); cl.close()")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(out.split()[-1])


def preemption(folder: Path, env: dict, every: int, fit_args: str, at: int,
               hard: bool) -> dict:
    """Requeue the job at iteration ``at``: by SIGTERM (``hard`` False:
    dkmeans checkpoints the iteration it finished), or after SIGKILL of the
    job's dkmeans (``hard``: a node lost; the last periodic checkpoint is all
    there is)."""
    model = folder / f"m-every-{every}-{'kill' if hard else 'term'}"
    job_env = {**env, "DKMEANS": f"{sys.executable} -m dkmeans",
               "DKMEANS_INPUT": str(folder / "X.npy"), "DKMEANS_MODEL": str(model),
               "DKMEANS_ARGS": f"{fit_args} --checkpoint-every {every} --workers 2"}
    log = folder / f"{model.name}.out"
    job = subprocess.run(["sbatch", "--parsable", "--chdir", str(folder), "--output", str(log),
                          "--mem", "6G", str(ROOT / "cluster_configs" / "slurm_job.sh")],
                         env=job_env, check=True, capture_output=True,
                         text=True).stdout.strip().split(";")[0]
    pattern = re.compile(r"^iteration (\d+) .* ([\d.]+) s$", re.M)
    while True:  # until the fit passes iteration `at`
        done = pattern.findall(log.read_text()) if log.exists() else []
        if done and int(done[-1][0]) >= at:
            break
        time.sleep(0.05)
    if hard:
        subprocess.run(["pkill", "-KILL", "-f", f"dkmeans fit .*{model}"], check=True)
        while subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True,
                             text=True).stdout.strip():
            time.sleep(0.05)
    stopped = int(pattern.findall(log.read_text())[-1][0])
    requeued = time.perf_counter()
    subprocess.run(["scontrol", "requeue", job], env=env, check=True)
    time.sleep(3)  # SLURM holds a requeued job ~120 s unless released
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env,
                   check=True)
    while "resuming from iteration" not in log.read_text():
        time.sleep(0.05)
    resumed = time.perf_counter() - requeued
    text = log.read_text()
    if not hard:
        stopped = int(re.search(r"stopped by SIGTERM after iteration (\d+)", text).group(1))
    start = int(re.search(r"resuming from iteration (\d+)", text).group(1))
    seconds = [float(s) for _, s in pattern.findall(text)]
    while subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.5)
    return {"every": every, "how": "SIGKILL" if hard else "SIGTERM",
            "stopped_after": stopped, "resumed_from": start,
            "seconds_to_resume": resumed, "redone": stopped - start,
            "redone_seconds": (stopped - start) * float(np.median(seconds)),
            "load": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5, 20])
    args = parser.parse_args()
    why = _slurm.available()
    if why:
        sys.exit(why)
    with tempfile.TemporaryDirectory(prefix="dkmeans-bench-scheduled-") as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        np.save(folder / "X.npy", rng.random((args.rows, args.features), dtype=np.float32))
        with _slurm.single_node(folder / "slurm") as env:
            config = cluster_file(folder)
            firsts = [first_worker(config, env) for _ in range(args.repeats)]
            print(f"time to the first worker: median {np.median(firsts):.2f} s "
                  f"({', '.join(f'{t:.2f}' for t in firsts)}; {load()})")
            fit = ["fit", folder / "X.npy", "-k", args.k, "--tol", 0, "--max-iter", 20,
                   "--random-state", 0, "--force", "-q"]
            slurm_t, local_t = [], []
            for _ in range(args.repeats):  # alternating
                slurm_t.append(dkmeans([*fit, "-o", folder / "s", "--cluster", config], env,
                                       folder))
                local_t.append(dkmeans([*fit, "-o", folder / "l", "--workers", 2], env,
                                       folder))
            print(f"fit (20 iterations, {args.rows:,} x {args.features}, k={args.k}): SLURM "
                  f"{np.median(slurm_t):.2f} s, LocalCluster {np.median(local_t):.2f} s, "
                  f"ratio {np.median(slurm_t) / np.median(local_t):.2f} ({load()})")
            fit_args = f"-k {args.k} --tol 0 --max-iter 60 --random-state 0"
            rows = [preemption(folder, env, every, fit_args, at=33, hard=hard)
                    for every in args.every for hard in (False, True)]
            print("| --checkpoint-every | stopped by | stopped after | resumed from | requeue "
                  "to resumed (s) | iterations redone | redone (s) | load |")
            print("|---|---|---|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['every']} | {r['how']} | {r['stopped_after']} | "
                      f"{r['resumed_from']} | "
                      f"{r['seconds_to_resume']:.1f} | {r['redone']} | "
                      f"{r['redone_seconds']:.2f} | {r['load']} |")
            print(json.dumps(rows))


if __name__ == "__main__":
    main()
