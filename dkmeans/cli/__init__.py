"""Layer 6, the command line: ``dkmeans fit|predict|evaluate|demo``, and clusters.

May import every layer; nothing imports it.

- :mod:`~dkmeans.cli.command`: the command (:func:`main`, as in 0.1);
  :mod:`~dkmeans.cli.options`: its options; :mod:`~dkmeans.cli.jobs`: a job's
  cluster, input and model; :mod:`~dkmeans.cli.mixture` and
  :mod:`~dkmeans.cli.evaluate`: ``--mode gmm`` and ``dkmeans evaluate``;
  :mod:`~dkmeans.cli.signals`: SIGTERM, SIGINT and lost workers;
  :mod:`~dkmeans.cli.demo`: ``dkmeans demo``;
- :mod:`~dkmeans.cli.cluster`: cluster files and :func:`connect` (local,
  scheduler address, SLURM through :mod:`~dkmeans.cli.cluster_slurm`,
  Kubernetes through :mod:`~dkmeans.cli.cluster_kubernetes`).
"""

import importlib
from typing import Any

from dkmeans.compat import submodules_on_demand

__all__ = ["main"]

_submodule = submodules_on_demand(__name__)


def __getattr__(name: str) -> Any:
    # main on first use: `import dkmeans.cli.cluster` loads no command line
    if name == "main":
        return importlib.import_module("dkmeans.cli.command").main
    return _submodule(name)
