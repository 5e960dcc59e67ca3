"""Layer 6, the command line: ``dkmeans fit|predict|evaluate|demo``, and clusters.

May import every layer; nothing imports it.

- :mod:`~dkmeans.cli.main`: the command (:func:`~dkmeans.cli.main.main`);
  :mod:`~dkmeans.cli.options`: its options; :mod:`~dkmeans.cli.jobs`: a job's
  cluster, input and model; :mod:`~dkmeans.cli.mixture` and
  :mod:`~dkmeans.cli.evaluate`: ``--mode gmm`` and ``dkmeans evaluate``;
  :mod:`~dkmeans.cli.signals`: SIGTERM, SIGINT and lost workers;
  :mod:`~dkmeans.cli.demo`: ``dkmeans demo``;
- :mod:`~dkmeans.cli.cluster`: cluster files and :func:`connect` (local,
  scheduler address, SLURM through :mod:`~dkmeans.cli.cluster_slurm`,
  Kubernetes through :mod:`~dkmeans.cli.cluster_kubernetes`).
"""

from dkmeans.compat import submodules_on_demand

__getattr__ = submodules_on_demand(__name__)
