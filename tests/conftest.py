import contextlib
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from sklearn.datasets import make_blobs


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def blobs():
    """2,000 x 5 float64 rows around 6 well-separated centers."""
    X, y = make_blobs(n_samples=2000, centers=6, n_features=5, cluster_std=1.0,
                      random_state=42)
    return X, y


@contextlib.contextmanager
def _dask_processes(folder, n_workers, flags=(), protocol="tcp"):
    """A real `dask scheduler` and `dask worker` processes on loopback; yields
    the scheduler's address and stops them all on exit."""
    sched_file = folder / "scheduler.json"
    procs = [subprocess.Popen(["dask", "scheduler", "--protocol", protocol, "--host",
                               "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(sched_file), *flags],
                              stderr=subprocess.DEVNULL, start_new_session=True)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        procs += [subprocess.Popen(["dask", "worker", address, "--nthreads", "1", "--host",
                                    "127.0.0.1", *flags], stderr=subprocess.DEVNULL,
                                   start_new_session=True) for _ in range(n_workers)]
        yield address
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # a nanny whose worker was killed by a test can hang on close
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=15)


@pytest.fixture
def dask_processes():
    """``dask_processes(folder, n_workers, flags=(), protocol="tcp")``: a context
    manager running a separate scheduler and worker processes on loopback."""
    return _dask_processes
