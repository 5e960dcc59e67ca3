"""dkmeans: k-means clustering for data too big for one machine's memory.

Where things live, one layer calling only the ones above it in this list:

- :mod:`dkmeans.kernels` (a folder): numpy/numba functions on one in-memory
  block;
- :mod:`dkmeans.passes` (a folder): each distributed pass as a chunk/combine
  pair, run by :func:`dkmeans.runner.run_pass`;
- :mod:`dkmeans.lloyd` (the Lloyd step: :func:`lloyd`), :mod:`dkmeans.seeding`
  (k-means||, k-means++, random), :mod:`dkmeans.minibatch` (mini-batch
  steps: :func:`minibatch`) and :mod:`dkmeans.fit` (whole fits);
- :mod:`dkmeans.estimator` and :mod:`dkmeans.estimator_minibatch`: the
  scikit-learn compatible :class:`KMeans` and :class:`MiniBatchKMeans`, on
  what they share (:mod:`dkmeans.estimator_base`);
- :mod:`dkmeans.validation` and :mod:`dkmeans.data` (input handling), :mod:`dkmeans.preprocessing`
  (streaming scaler, imputation, unit rows), :mod:`dkmeans.io` (model files
  without pickle), :mod:`dkmeans.cli` (the ``dkmeans`` command),
  :mod:`dkmeans.metrics` and :mod:`dkmeans.choosing` (evaluating and choosing k;
  their passes are in :mod:`dkmeans.scoring`), :mod:`dkmeans.plots`.
"""

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use (PEP 562), as scikit-image and SciPy do:
# ``import dkmeans`` costs milliseconds, and dask.array and scikit-learn
# (most of a first import's second) load with the first estimator or
# function used.
_LAZY = {
    "metrics": "dkmeans.metrics",
    "open_array": "dkmeans.data",
    "DKMeansError": "dkmeans.errors",
    "InputNotFoundError": "dkmeans.errors",
    "InputTypeError": "dkmeans.errors",
    "InvalidInputError": "dkmeans.errors",
    "InvalidParameterError": "dkmeans.errors",
    "KMeans": "dkmeans.estimator",
    "MiniBatchKMeans": "dkmeans.estimator_minibatch",
    "GaussianMixture": "dkmeans.estimator_mixture",
    "KMeansResult": "dkmeans.fit",
    "fit_kmeans": "dkmeans.fit",
    "fit_minibatch_kmeans": "dkmeans.fit_minibatch",
    "load": "dkmeans.io",
    "LloydResult": "dkmeans.lloyd",
    "lloyd": "dkmeans.lloyd",
    "minibatch": "dkmeans.minibatch",
    "INIT_METHODS": "dkmeans.seeding",
    "sweep": "dkmeans.choosing",
    "stability": "dkmeans.resampling",
}

if TYPE_CHECKING:  # for type checkers and IDEs, the eager imports
    from dkmeans import lloyd, metrics, minibatch
    from dkmeans.choosing import sweep
    from dkmeans.data import open_array
    from dkmeans.errors import (
        DKMeansError,
        InputNotFoundError,
        InputTypeError,
        InvalidInputError,
        InvalidParameterError,
    )
    from dkmeans.estimator import KMeans
    from dkmeans.estimator_minibatch import MiniBatchKMeans
    from dkmeans.estimator_mixture import GaussianMixture
    from dkmeans.fit import KMeansResult, fit_kmeans
    from dkmeans.fit_minibatch import fit_minibatch_kmeans
    from dkmeans.io import load
    from dkmeans.lloyd import LloydResult
    from dkmeans.resampling import stability
    from dkmeans.seeding import INIT_METHODS


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'dkmeans' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"dkmeans.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__version__ = "0.1.0"

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
    "stability",
    "sweep",
]
