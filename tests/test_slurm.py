"""Scheduled jobs under a real resource manager: a single-node SLURM started
by the ``slurm`` fixture (tests/_slurm.py), dask-jobqueue worker jobs on
loopback, ``sbatch --requeue`` of the shipped job script, worker jobs
cancelled mid-fit."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import yaml
from _cli import run
from sklearn.datasets import make_blobs

import dkmeans
from dkmeans import KMeans

pytest.importorskip("dask_jobqueue")
pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slurm-data")
    X, _ = make_blobs(40_000, centers=6, n_features=5, cluster_std=2.0, random_state=0)
    np.save(folder / "X.npy", X.astype(np.float32))
    return folder


def _cluster_file(folder, **changes):
    """The shipped slurm.yaml's keys, sized for this one small node, on loopback."""
    config = yaml.safe_load((ROOT / "cluster_configs" / "slurm.yaml").read_text())
    config.update(jobs=2, cores=1, memory="1GiB", processes=1, queue="debug",
                  walltime="00:20:00", interface="lo", timeout="120s",
                  log_directory=str(folder / "logs"), job_extra_directives=[])
    config.pop("account", None)
    config.update(changes)
    path = folder / "slurm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(args, env, cwd, timeout=300, check=True):
    return run(*args, env=env, cwd=cwd, timeout=timeout, check=check)


def _threaded(model, path):
    """``model`` fitted in this process (threads): an uninterrupted run to
    compare with, without starting a cluster."""
    with dask.config.set(scheduler="threads"):
        return model.fit(str(path))


def _queue(env):
    return subprocess.run(["squeue", "-h", "-o", "%i %T %j"], env=env, capture_output=True,
                          text=True).stdout.strip()


def test_fit_on_slurm_worker_jobs_equals_a_local_fit(slurm, data, tmp_path):
    config = _cluster_file(tmp_path, storage={"auto_mkdir": True})  # storage: to dkmeans
    job = ["fit", data / "X.npy", "-k", 6, "--random-state", 3]
    got = json.loads(_run([*job, "-o", tmp_path / "slurm", "--cluster", config, "--json"],
                          slurm, tmp_path).stdout)
    assert got["state"] == "complete"
    # the same fit in process: results do not depend on the scheduler
    local = _threaded(KMeans(6, random_state=3), data / "X.npy")
    np.testing.assert_allclose(dkmeans.load(tmp_path / "slurm").cluster_centers_,
                               local.cluster_centers_, rtol=1e-6)
    assert _queue(slurm) == ""  # the worker jobs are cancelled at the end


def test_pending_jobs_are_named_and_given_up_on_with_exit_3(slurm, data, tmp_path):
    config = _cluster_file(tmp_path, timeout="6s",
                           job_extra_directives=["--begin=now+3600"])  # held in the queue
    t0 = time.monotonic()
    proc = _run(["fit", data / "X.npy", "-k", 3, "-o", tmp_path / "m", "--cluster", config],
                slurm, tmp_path, check=False)
    assert proc.returncode == 3, proc.stderr
    assert "waiting for 2 SLURM jobs: PENDING (BeginTime)" in proc.stderr
    assert "No SLURM worker joined within 6s" in proc.stderr
    assert time.monotonic() - t0 < 90
    assert not (tmp_path / "m").exists()
    deadline = time.monotonic() + 30
    while _queue(slurm) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _queue(slurm) == ""


def test_adapt_maps_to_the_clusters_adapt(slurm, data, tmp_path):
    config = _cluster_file(tmp_path, adapt={"minimum_jobs": 1, "maximum_jobs": 2})
    proc = _run(["fit", data / "X.npy", "-k", 4, "-o", tmp_path / "m", "--cluster", config,
                 "--json"], slurm, tmp_path)
    assert json.loads(proc.stdout)["state"] == "complete"
    assert _queue(slurm) == ""


def _worker_jobs(env):
    rows = [r.split() for r in _queue(env).splitlines()]
    return [i for i, state, name in rows if state == "RUNNING" and name == "dask-worker"]


def test_a_worker_job_cancelled_mid_fit_changes_nothing(slurm, tmp_path):
    X = np.random.default_rng(0).random((300_000, 8), dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    config = _cluster_file(tmp_path)
    job = ["fit", tmp_path / "X.npy", "-k", 16, "--tol", 0, "--max-iter", 150,
           "--random-state", 1, "--persist", "true", "--cluster", config]
    proc = subprocess.Popen([sys.executable, "-m", "dkmeans", *map(str, job), "-o",
                             tmp_path / "cut"], env=slurm, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    # into the iterations by what the job printed, not by a guess of how long
    # it takes (a fast run had finished 60 iterations before a 4 s sleep ended)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (
            any(s.startswith("iteration 3 ") for s in lines) and len(_worker_jobs(slurm)) == 2):
        time.sleep(0.1)
    jobs = _worker_jobs(slurm)
    assert len(jobs) == 2 and proc.poll() is None, "".join(lines)[-3000:]
    subprocess.run(["scancel", jobs[0]], env=slurm, check=True)
    while time.monotonic() < deadline and jobs[0] in _worker_jobs(slurm):
        time.sleep(0.1)
    at_cancel = sum(s.startswith("iteration ") for s in lines)
    assert proc.poll() is None, "the fit ended before the worker job was gone"
    proc.wait(timeout=300)
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 0, err[-3000:]
    assert sum(s.startswith("iteration ") for s in lines) > at_cancel  # went on without it
    whole = _threaded(KMeans(16, tol=0, max_iter=150, random_state=1, persist=True),
                      tmp_path / "X.npy")
    np.testing.assert_allclose(dkmeans.load(tmp_path / "cut").cluster_centers_,
                               whole.cluster_centers_, rtol=1e-5)


def test_every_worker_job_gone_ends_the_job_with_exit_3(slurm, tmp_path):
    X = np.random.default_rng(0).random((300_000, 8), dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    config = _cluster_file(tmp_path, timeout="4s")
    proc = subprocess.Popen([sys.executable, "-m", "dkmeans", "fit", str(tmp_path / "X.npy"),
                             "-k", "16", "--tol", "0", "--max-iter", "300", "-o",
                             str(tmp_path / "m"), "--cluster", str(config)],
                            env=slurm, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (
            any(s.startswith("iteration 3 ") for s in lines) and len(_worker_jobs(slurm)) == 2):
        time.sleep(0.1)
    assert proc.poll() is None, "".join(lines)[-3000:]
    for job in _worker_jobs(slurm):
        subprocess.run(["scancel", job], env=slurm, check=True)
    t0 = time.monotonic()
    proc.wait(timeout=120)
    reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 3, err[-3000:]
    assert "every worker of the cluster is gone" in err
    assert time.monotonic() - t0 < 60


def test_the_job_script_requeued_resumes_to_the_same_centers(slurm, tmp_path):
    """``sbatch --requeue`` of cluster_configs/slurm_job.sh; ``scontrol
    requeue`` (what preemption does) mid-fit; the job runs again, resumes
    from its checkpoint, and ends with an uninterrupted run's centers."""
    X = np.random.default_rng(0).random((400_000, 8), dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    env = {**slurm, "DKMEANS": f"{sys.executable} -m dkmeans",
           "DKMEANS_INPUT": str(tmp_path / "X.npy"),
           "DKMEANS_MODEL": str(tmp_path / "m"),
           "DKMEANS_ARGS": "-k 16 --tol 0 --max-iter 80 --random-state 4 "
                           "--checkpoint-every 2 --workers 1"}
    out = subprocess.run(["sbatch", "--parsable", "--chdir", str(tmp_path), "--output",
                          str(tmp_path / "job-%j.out"), "--mem", "2G",
                          str(ROOT / "cluster_configs" / "slurm_job.sh")], env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    job_id = out.split(";")[0]
    meta = tmp_path / "m" / "model.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if meta.exists() and json.loads(meta.read_text())["fitted"]["n_iter"] >= 6:
            break
        time.sleep(0.3)
    state = json.loads(meta.read_text())
    assert state["state"] == "checkpoint", "the job ended before it could be requeued"
    subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)
    time.sleep(5)  # SLURM holds a requeued job (~120 s) before it may start again
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=env,
                   check=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env,
                               capture_output=True, text=True).stdout.strip()
        if not state:
            break
        time.sleep(0.5)
    log = (tmp_path / f"job-{job_id}.out").read_text()
    assert "resuming from iteration" in log, log[-3000:]
    assert "stopped by SIGTERM" in log, log[-3000:]
    a = _threaded(KMeans(16, tol=0, max_iter=80, random_state=4), tmp_path / "X.npy")
    b = dkmeans.load(tmp_path / "m")
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(a.inertia_history_, b.inertia_history_, rtol=1e-12)


def test_security_temporary_makes_every_connection_tls(slurm, data, tmp_path):
    config = _cluster_file(tmp_path, jobs=1, security="temporary",
                           shared_temp_directory=str(tmp_path / "certs"))
    proc = _run(["fit", data / "X.npy", "-k", 3, "-o", tmp_path / "m", "--cluster", config,
                 "--json"], slurm, tmp_path)
    assert json.loads(proc.stdout)["state"] == "complete"
    assert "ERROR" not in proc.stderr, proc.stderr[-2000:]  # nor a noisy shutdown
    logs = "".join(p.read_text() for p in (tmp_path / "logs").iterdir())
    assert "Start worker at:      tls://127.0.0.1:" in logs
    assert "tcp://" not in logs
