"""Connecting to a Dask cluster from a YAML file in ``cluster_configs/``.

One function, :func:`connect`, turns a configuration into a
:class:`distributed.Client`, so the same job runs on a laptop or a cluster by
changing one argument. Types:

- ``local``: an embedded :class:`distributed.LocalCluster` (the default);
- ``scheduler``: an existing scheduler's address, optionally over TLS;
- ``slurm``: a ``dask_jobqueue.SLURMCluster`` (package imported only then);
- ``kubernetes``: a ``dask_kubernetes`` ``KubeCluster`` (likewise).

Values come from the defaults, then the file, then environment variables
``DKMEANS_CLUSTER__<KEY>`` (parsed as YAML, as dask parses its own), then
explicit overrides (command-line flags). Unknown keys and wrong types are
errors naming the key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import dask
import yaml

from dkmeans.cli.signals import watch_workers
from dkmeans.data.workers import wait_for_workers, watch_worker_memory  # noqa: F401 (its home was here)
from dkmeans.errors import ClusterUnavailableError, InvalidParameterError

ENV_PREFIX = "DKMEANS_CLUSTER__"

_ANY_NUMBER = (int, float)
# type -> key -> (accepted types, default); "required" marks a key with no default
_SCHEMAS: dict[str, dict[str, tuple[Any, Any]]] = {
    "local": {
        "n_workers": (int, 2),
        "threads_per_worker": (int, 1),
        "memory_limit": ((str, int), "auto"),
        # loopback: the dashboard shows the data's shape and the job's code;
        # ":8787" opens it on every interface
        "dashboard_address": ((str, type(None)), "127.0.0.1:8787"),
        "security": ((str, type(None)), None),
    },
    "scheduler": {
        "address": (str, "required"),
        "timeout": ((str, *_ANY_NUMBER), "10s"),
        "tls": ((dict, type(None)), None),
    },
    "slurm": {
        "jobs": (int, 1),
        "cores": (int, "required"),
        "memory": (str, "required"),
        "processes": (int, 1),
        "queue": ((str, type(None)), None),
        "account": ((str, type(None)), None),
        "walltime": ((str, type(None)), None),
        "job_extra_directives": (list, []),
        "job_script_prologue": (list, []),
        "worker_extra_args": (list, []),
        # "lo" keeps the scheduler and the workers on loopback (one machine)
        "interface": ((str, type(None)), None),
        "scheduler_options": ((dict, type(None)), None),
        "dashboard_address": ((str, type(None)), "127.0.0.1:8787"),
        "local_directory": ((str, type(None)), None),
        "log_directory": ((str, type(None)), None),
        "shared_temp_directory": ((str, type(None)), None),
        "python": ((str, type(None)), None),
        # how long to wait for the worker jobs (pending in the queue)
        "timeout": ((str, *_ANY_NUMBER), "600s"),
        "adapt": ((dict, type(None)), None),
        "security": ((str, type(None)), None),
    },
    "kubernetes": {
        "name": (str, "dkmeans"),
        "image": (str, "required"),  # pinned: a version tag or a digest
        "n_workers": (int, 2),
        "resources": ((dict, type(None)), None),
        "env": ((dict, type(None)), None),
        # a Kubernetes Secret whose keys become the pods' environment
        "storage_secret": ((str, type(None)), None),
        "security": ((str, type(None)), None),
    },
}
# every type may name storage options (fsspec) for the job's paths and URLs
for _schema in _SCHEMAS.values():
    _schema["storage"] = ((dict, type(None)), None)
_TLS_KEYS = {"ca_file", "cert", "key"}


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> dict[str, Any]:
    """Read a cluster configuration, apply environment overrides, check every key.

    Parameters
    ----------
    path : str or PathLike, optional
        A YAML file; none means ``type: local`` with its defaults.
    **overrides
        Values that win over the file and the environment; None is ignored.

    Returns
    -------
    dict
        Every key of the configuration's type, with its value.
    """
    loaded: dict[str, Any] = {}
    where = "the cluster configuration"
    if path is not None:
        where = os.fspath(path)
        try:
            with open(path) as f:
                loaded = yaml.safe_load(f) or {}
        except FileNotFoundError as err:
            raise InvalidParameterError(f"No cluster configuration file at {where!r}.") from err
        except yaml.YAMLError as err:
            raise InvalidParameterError(f"{where} is not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise InvalidParameterError(f"{where}: expected a mapping of keys.")
    for name, text in os.environ.items():
        if name.startswith(ENV_PREFIX):
            loaded[name[len(ENV_PREFIX):].lower()] = yaml.safe_load(text)
    loaded.update({k: v for k, v in overrides.items() if v is not None})
    kind = loaded.pop("type", "local")
    if kind not in _SCHEMAS:
        raise InvalidParameterError(
            f"Unknown cluster type {kind!r} in {where}; expected one of {sorted(_SCHEMAS)}.")
    schema = _SCHEMAS[kind]
    config: dict[str, Any] = {"type": kind}
    for key in loaded:
        if key not in schema:
            raise InvalidParameterError(
                f"Unknown key {key!r} for a {kind!r} cluster in {where}; known keys: "
                f"{sorted(schema)}.")
    if kind == "scheduler" and "address" not in loaded and \
            dask.config.get("scheduler-address", None):
        # dask's own convention (DASK_SCHEDULER_ADDRESS), as a DaskJob's pod has it
        loaded["address"] = dask.config.get("scheduler-address")
    for key, (types, default) in schema.items():
        if key not in loaded:
            if default == "required":
                raise InvalidParameterError(f"A {kind!r} cluster needs the key {key!r} "
                                            f"({where}).")
            config[key] = default
            continue
        value = loaded[key]
        if not isinstance(value, types) or isinstance(value, bool):
            raise InvalidParameterError(
                f"Cluster configuration key {key!r} has the wrong type: {value!r} "
                f"({where}).")
        config[key] = value
    if config.get("security") not in (None, "temporary"):
        raise InvalidParameterError(
            f"Cluster configuration key 'security' is {config['security']!r} ({where}); "
            "expected 'temporary' (self-signed TLS certificates made for this job).")
    if kind == "slurm":
        from dkmeans.cli.cluster_slurm import check_adapt, check_security

        check_adapt(config["adapt"], where)
        check_security(config, where)
    if kind == "kubernetes":
        from dkmeans.cli.cluster_kubernetes import check_kubernetes

        check_kubernetes(config, where)
    if config.get("tls"):
        unknown = set(config["tls"]) - _TLS_KEYS
        if unknown:
            raise InvalidParameterError(f"Unknown key(s) {sorted(unknown)} under 'tls' in "
                                        f"{where}; known keys: {sorted(_TLS_KEYS)}.")
    return config


def security(tls: dict[str, str] | None) -> Any:
    if not tls:
        return None
    from distributed.security import Security

    for key in _TLS_KEYS & set(tls):
        if not os.path.isfile(tls[key]):
            raise InvalidParameterError(f"TLS file for {key!r} not found: {tls[key]!r}.")
    if "key" in tls and os.stat(tls["key"]).st_mode & 0o077:
        import warnings

        warnings.warn(f"The TLS key file {tls['key']!r} is readable by other users of this "
                      "machine: chmod 600 it.", UserWarning, stacklevel=3)
    return Security(tls_ca_file=tls.get("ca_file"), tls_client_cert=tls.get("cert"),
                    tls_client_key=tls.get("key"), require_encryption=True)


def _security_kwargs(config: dict) -> dict:
    """``security=`` for a cluster this job starts: with ``security:
    temporary``, self-signed certificates made now (every connection TLS)."""
    if not config.get("security"):
        return {}
    from distributed.security import Security

    return {"security": Security.temporary()}


def _import(module: str, package: str, kind: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise InvalidParameterError(
            f"A {kind!r} cluster needs the {package} package: pip install {package}") from err


@contextlib.contextmanager
def connect(path: str | os.PathLike | None = None, **overrides: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for the configured cluster, closed on exit.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A cluster file (``cluster_configs/*.yaml``); by default an embedded
        local cluster (``cluster_configs/local.yaml``).
    **overrides
        Keys that replace the file's (after ``DKMEANS_CLUSTER__*``).

    Yields
    ------
    distributed.Client

    Raises
    ------
    InvalidParameterError
        A bad configuration, or a missing optional package (named).
    ClusterUnavailableError
        A scheduler that cannot be reached within the configured timeout.
    """
    from distributed import Client

    config = load_config(path, **overrides)
    with contextlib.ExitStack() as stack:
        # distributed keeps every connection's last 1,000 messages under 1 MB
        # for debugging, a job's pass graphs among them: the client grew by
        # 1.3 KB per chunk per pass, flat with the log off (benchmarks/README.md)
        stack.enter_context(dask.config.set({"distributed.admin.low-level-log-length": 0}))
        if config["type"] == "scheduler":
            client = _scheduler_client(config)
            with client:
                wait_for_workers(client, 1, config["timeout"])
                with _in_use(client, config):
                    yield client
            return
        cluster = stack.enter_context(_new_cluster(config, stack))
        client = stack.enter_context(Client(cluster, security=_temporary(config, cluster)))
        if config["type"] == "local":
            stack.callback(_quiet_shutdown, client)
            wait_for_workers(client, config["n_workers"], "60s")
        elif config["type"] == "slurm":
            from dkmeans.cli.cluster_slurm import start_jobs, wait_for_slurm_workers

            wait_for_slurm_workers(client, cluster, start_jobs(cluster, config),
                                   config["timeout"])
        with _in_use(client, config):
            yield client


def _lost_after(config: dict) -> float:
    """Seconds a job goes on waiting once its cluster has no worker left."""
    from dask.utils import parse_timedelta

    return float(parse_timedelta(config.get("timeout") or "60s"))


@contextlib.contextmanager
def _in_use(client: Any, config: dict) -> Iterator[None]:
    """While a job uses ``client``: the cluster watched for lost workers; at
    the end, what the job sent forgotten."""
    with _forgetting(client), watch_workers(client, _lost_after(config)):
        yield


@contextlib.contextmanager
def _forgetting(client: Any) -> Iterator[None]:
    """At the end of a job, nothing it sent stays on the workers or here:
    the folding passes' notes, cached filesystems (storage credentials)."""
    from dkmeans.runner.janitor import forget_on_workers
    from dkmeans.runner.notes import forget_plans

    try:
        yield
    finally:
        forget_on_workers(client)
        forget_plans()


def _quiet_shutdown(client: Any, seconds: float = 5.0) -> None:
    """Before a local cluster closes, its workers stop logging errors: a
    heartbeat in flight while the cluster shuts down (a stopped job's above
    all) fails and would print a traceback that reports nothing wrong. A
    worker that does not answer within ``seconds`` is not waited for: the
    job's end never hangs on it."""
    import threading

    def run() -> None:
        with contextlib.suppress(Exception):
            client.run(_silence_distributed, wait=True, on_error="ignore")

    quieting = threading.Thread(target=run, daemon=True, name="dkmeans-quiet-shutdown")
    quieting.start()
    quieting.join(seconds)


def _silence_distributed() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _temporary(config: dict, cluster: Any) -> Any:
    """The security a client of a ``security: temporary`` cluster needs."""
    return getattr(cluster, "security", None) if config.get("security") else None


def _scheduler_client(config: dict) -> Any:
    """A client of the configured scheduler's address."""
    from distributed import Client

    if config["address"].startswith("tls://") and not config["tls"]:
        raise InvalidParameterError(
            f"The scheduler address {config['address']} is tls:// but the configuration "
            "names no certificates: add a 'tls' section (ca_file, cert, key).")
    try:
        return Client(config["address"], timeout=config["timeout"],
                      security=security(config["tls"]))
    except (OSError, TimeoutError) as err:
        raise ClusterUnavailableError(
            f"Could not reach the Dask scheduler at {config['address']} within "
            f"{config['timeout']}: {err}") from err


def _new_cluster(config: dict, stack: contextlib.ExitStack) -> Any:
    """The cluster a local, SLURM or Kubernetes configuration starts."""
    from distributed import LocalCluster

    kind = config["type"]
    if kind == "local":
        # the workers' scratch space in a folder of ours, removed with the
        # cluster (dask's default leaves dask-scratch-space in the temp dir)
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="dkmeans-scratch-"))
        stack.enter_context(dask.config.set({"temporary-directory": scratch}))
        from dkmeans.cli.signals import ignoring_sigint

        with ignoring_sigint(), warnings.catch_warnings(record=True) as said:
            # Ctrl-C stops the job, which stops its workers; distributed's
            # "Port 8787 is already in use" goes to the job's log (not past -q)
            warnings.filterwarnings("always", message="Port .* is already in use")
            cluster = LocalCluster(
                n_workers=config["n_workers"], threads_per_worker=config["threads_per_worker"],
                memory_limit=config["memory_limit"],
                dashboard_address=config["dashboard_address"], processes=True,
                silence_logs=logging.ERROR, local_directory=scratch,
                **_security_kwargs(config))
        for w in said:
            if "already in use" in str(w.message):
                logging.getLogger("dkmeans").info("%s", str(w.message).splitlines()[0])
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return cluster
    if kind == "slurm":
        from dkmeans.cli.cluster_slurm import slurm_kwargs

        jobqueue = _import("dask_jobqueue", "dask-jobqueue", kind)
        return jobqueue.SLURMCluster(**slurm_kwargs(config), **_security_kwargs(config))
    if config.get("security"):
        raise InvalidParameterError(
            "security: temporary is not available for a 'kubernetes' cluster: dask-kubernetes' "
            "KubeCluster takes no TLS settings. Give the operator's DaskCluster TLS "
            "certificates from a Kubernetes Secret and connect with type: scheduler and tls.")
    _import("dask_kubernetes.operator", "dask-kubernetes", kind)
    from dkmeans.cli.cluster_kubernetes import kube_cluster

    return kube_cluster(config)
