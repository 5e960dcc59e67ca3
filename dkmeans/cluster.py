"""Connecting to a Dask cluster from a YAML file in ``cluster_configs/``.

Only ``type: local`` (an embedded :class:`distributed.LocalCluster`) exists so
far. Unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import yaml

from dkmeans.errors import InvalidParameterError

LOCAL_DEFAULTS: dict[str, Any] = {
    "type": "local",
    "n_workers": 2,
    "threads_per_worker": 1,
    "memory_limit": "auto",
    "dashboard_address": ":8787",
}
_TYPES = {"type": str, "n_workers": int, "threads_per_worker": int,
          "memory_limit": (str, int), "dashboard_address": (str, type(None))}


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> dict[str, Any]:
    """Read a cluster configuration, fill in defaults and check every key."""
    config = dict(LOCAL_DEFAULTS)
    if path is not None:
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise InvalidParameterError(f"{os.fspath(path)}: expected a mapping of keys.")
        config.update(loaded)
    config.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in config.items():
        if key not in _TYPES:
            raise InvalidParameterError(
                f"Unknown key {key!r} in the cluster configuration; known keys: "
                f"{sorted(_TYPES)}.")
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise InvalidParameterError(
                f"Cluster configuration key {key!r} has the wrong type: {value!r}.")
    if config["type"] != "local":
        raise InvalidParameterError(
            f"Cluster type {config['type']!r} is not supported yet; use 'local'.")
    return config


@contextlib.contextmanager
def connect(path: str | os.PathLike | None = None, **overrides: Any) -> Iterator[Any]:
    """A :class:`distributed.Client` for the configured cluster, closed on exit."""
    from distributed import Client, LocalCluster

    config = load_config(path, **overrides)
    with LocalCluster(n_workers=config["n_workers"],
                      threads_per_worker=config["threads_per_worker"],
                      memory_limit=config["memory_limit"],
                      dashboard_address=config["dashboard_address"],
                      processes=True, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client
