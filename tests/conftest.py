import contextlib
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
from sklearn.datasets import make_blobs


def pytest_configure(config):
    """Everything the tests write in a temporary folder (pytest's tmp_path,
    and through TMPDIR the subprocesses': workers' scratch space, notebook
    kernels, the demo) goes under one root, removed when the run ends."""
    import tempfile

    if config.option.basetemp is not None:
        return
    root = tempfile.mkdtemp(prefix="dkmeans-tests-")
    config._dkmeans_tmp = root
    config.option.basetemp = os.path.join(root, "pytest")
    os.environ["TMPDIR"] = root
    tempfile.tempdir = root


def pytest_unconfigure(config):
    import shutil

    root = getattr(config, "_dkmeans_tmp", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


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
def start_dask_processes(folder, n_workers, flags=(), protocol="tcp", worker_argv=None, env=None):
    """A real `dask scheduler` and `dask worker` processes on loopback; yields
    the scheduler's address and stops them all on exit. ``worker_argv(address)``
    gives another command line for each worker; ``env`` their environment."""
    sched_file = folder / "scheduler.json"
    procs = [subprocess.Popen(["dask", "scheduler", "--protocol", protocol, "--host",
                               "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
                               "--scheduler-file", str(sched_file), *flags],
                              stderr=subprocess.DEVNULL, start_new_session=True, env=env)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        argv = (worker_argv(address) if worker_argv is not None else
                ["dask", "worker", address, "--nthreads", "1", "--host", "127.0.0.1", *flags])
        procs += [subprocess.Popen(argv, stderr=subprocess.DEVNULL, start_new_session=True,
                                   env=env) for _ in range(n_workers)]
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
    return start_dask_processes


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Credentials the S3 test server accepts (any do); never in the workers' environment.
S3_CREDENTIALS = {"key": "dkmeans-test-key", "secret": "dkmeans-test-secret"}


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3-protocol server (moto's standalone ``moto_server``) on
    loopback, with a bucket ``dkmeans``; yields the storage options that
    reach it (endpoint and credentials)."""
    pytest.importorskip("s3fs")
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    options = {"endpoint_url": endpoint, **S3_CREDENTIALS}
    try:
        import s3fs

        deadline = time.monotonic() + 60
        while True:
            try:
                fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
                fs.mkdir("dkmeans")
                break
            except Exception as err:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}"
                                       ) from err
                time.sleep(0.2)
        yield options
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def without_cloud_credentials(env):
    return {k: v for k, v in env.items()
            if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "DKMEANS_"))}


def _isolated_dask(folder, n_workers, hidden):
    """A real scheduler, and workers that share no files with the client:
    each runs in its own mount namespace with a fresh tmpfs over ``hidden``
    (where the tests' local files live) and its working directory in it,
    and with no cloud credentials in its environment."""
    import shutil

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("isolated workers need root and unshare (CI runs as root)")

    def worker_argv(address):
        script = (f"mount -t tmpfs tmpfs {hidden} && mkdir -p {hidden}/worker && "
                  f"cd {hidden}/worker && exec dask worker {address} --nthreads 1 "
                  "--host 127.0.0.1 --no-dashboard")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]

    return start_dask_processes(folder, n_workers, worker_argv=worker_argv,
                                 env=without_cloud_credentials(os.environ))


@pytest.fixture(scope="module")
def isolated_cluster(tmp_path_factory):
    """The address of a 2-worker cluster whose workers see none of the
    client's local test files (see :func:`_isolated_dask`)."""
    hidden = tmp_path_factory.getbasetemp()
    with _isolated_dask(tmp_path_factory.mktemp("sched"), 2, hidden) as address:
        yield address


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A real single-node SLURM (munged, slurmctld, slurmd from Debian's
    packages) for the session: yields the environment its commands need
    (``SLURM_CONF``) and stops every job and daemon at the end."""
    import _slurm

    why = _slurm.available()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM tests: {why}")
        pytest.skip(why)
    with _slurm.single_node(tmp_path_factory.mktemp("slurm")) as env:
        yield env
