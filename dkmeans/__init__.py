"""dkmeans: k-means clustering for data too big for one machine's memory.

Where things live: folders that are the layers, each importing only the ones
below it (``lint-imports`` checks it, ``[tool.importlinter]`` in
pyproject.toml):

- :mod:`dkmeans.cli`: the ``dkmeans`` command, its options and jobs, the
  demo, cluster files and connections (:mod:`dkmeans.cli.cluster`);
- :mod:`dkmeans.estimators` (scikit-learn compatible :class:`KMeans`,
  :class:`MiniBatchKMeans`, :class:`GaussianMixture`; model files) and
  :mod:`dkmeans.evaluate` (metrics, sweeps over k, the gap statistic,
  stability, plots), side by side and independent;
- :mod:`dkmeans.algorithms`: Lloyd, seeding, mini-batch steps, k-medians,
  EM and whole fits, on a dataset; they never gather X;
- :mod:`dkmeans.data`: inputs (numpy, dask, Zarr, tables, fsspec paths) as a
  row-chunked :class:`~dkmeans.data.Dataset`, preprocessing, outputs;
- :mod:`dkmeans.passes` and :mod:`dkmeans.runner`: named chunk/combine passes
  and the runner that runs them where the chunks live;
- :mod:`dkmeans.kernels`: numba functions on one in-memory block, no dask.

Beside them: :mod:`dkmeans.errors` (every exception), :mod:`dkmeans.progress`
(progress bars) and the 0.1 module paths, kept for one release
(:mod:`dkmeans.compat`). ``docs/where-things-live.md`` follows one fit
through them.
"""

import importlib
from typing import TYPE_CHECKING

from dkmeans.compat import install_moved_paths

install_moved_paths()

# Names are imported on first use (PEP 562), as scikit-image and SciPy do:
# ``import dkmeans`` costs milliseconds, and dask.array and scikit-learn
# (most of a first import's second) load with the first estimator or
# function used.
_LAZY = {
    "open_array": "dkmeans.data.dataset",
    "save_sparse_zarr": "dkmeans.data.sparse_zarr",
    "DKMeansError": "dkmeans.errors",
    "InputNotFoundError": "dkmeans.errors",
    "InputTypeError": "dkmeans.errors",
    "InvalidInputError": "dkmeans.errors",
    "InvalidParameterError": "dkmeans.errors",
    "KMeans": "dkmeans.estimators.kmeans",
    "MiniBatchKMeans": "dkmeans.estimators.minibatch",
    "GaussianMixture": "dkmeans.estimators.mixture",
    "KMeansResult": "dkmeans.algorithms.fit",
    "fit_kmeans": "dkmeans.algorithms.fit",
    "fit_minibatch_kmeans": "dkmeans.algorithms.fit_minibatch",
    "load": "dkmeans.estimators.io",
    "LloydResult": "dkmeans.algorithms.lloyd",
    "INIT_METHODS": "dkmeans.algorithms.seeding",
    "sweep": "dkmeans.evaluate.choosing",
    "stability": "dkmeans.evaluate.resampling",
}
#: The layers, reachable as attributes (``dkmeans.evaluate.metrics``) once
#: ``dkmeans`` is imported, as SciPy's submodules are.
_FOLDERS = ("algorithms", "cli", "data", "estimators", "evaluate", "kernels", "passes",
            "runner")
#: Public names that are modules.
_MODULES = {**{name: f"dkmeans.{name}" for name in _FOLDERS},
    "lloyd": "dkmeans.algorithms.lloyd",
    "minibatch": "dkmeans.algorithms.minibatch",
    "metrics": "dkmeans.evaluate.metrics",
}

if TYPE_CHECKING:  # for type checkers and IDEs, the eager imports
    from dkmeans.algorithms import lloyd, minibatch
    from dkmeans.algorithms.fit import KMeansResult, fit_kmeans
    from dkmeans.algorithms.fit_minibatch import fit_minibatch_kmeans
    from dkmeans.algorithms.lloyd import LloydResult
    from dkmeans.algorithms.seeding import INIT_METHODS
    from dkmeans.data import open_array
    from dkmeans.errors import (
        DKMeansError,
        InputNotFoundError,
        InputTypeError,
        InvalidInputError,
        InvalidParameterError,
    )
    from dkmeans.estimators.io import load
    from dkmeans.estimators.kmeans import KMeans
    from dkmeans.estimators.minibatch import MiniBatchKMeans
    from dkmeans.estimators.mixture import GaussianMixture
    from dkmeans.evaluate import metrics
    from dkmeans.evaluate.choosing import sweep
    from dkmeans.evaluate.resampling import stability


def __getattr__(name: str) -> object:
    if name == "__version__":
        value = _installed_version()
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'dkmeans' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_MODULES, "__version__"})


def _installed_version() -> str:
    # The installed metadata's, set from the git tag at install time by
    # setuptools-scm; read on first use (importlib.metadata costs ms).
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dkmeans")
    except PackageNotFoundError:  # a source tree on sys.path, never installed
        return "0+unknown"

__all__ = [
    "INIT_METHODS",
    "DKMeansError",
    "GaussianMixture",
    "InputNotFoundError",
    "InputTypeError",
    "InvalidInputError",
    "InvalidParameterError",
    "KMeans",
    "KMeansResult",
    "LloydResult",
    "MiniBatchKMeans",
    "fit_kmeans",
    "fit_minibatch_kmeans",
    "lloyd",
    "load",
    "metrics",
    "minibatch",
    "open_array",
    "save_sparse_zarr",
    "stability",
    "sweep",
]
