"""dkmeans: k-means clustering for data too big for one machine's memory.

Where things live, one layer calling only the ones above it in this list:

- :mod:`dkmeans.kernels`: numpy/numba functions on one in-memory block;
- :mod:`dkmeans.passes`: each distributed pass as a chunk/combine triple, run
  by :func:`dkmeans.runner.run_pass`;
- :mod:`dkmeans.lloyd` (the Lloyd step: :func:`lloyd`), :mod:`dkmeans.seeding`
  (k-means||, k-means++, random), :mod:`dkmeans.minibatch` (mini-batch
  steps: :func:`minibatch`) and :mod:`dkmeans.fit` (whole fits);
- :mod:`dkmeans.estimator` and :mod:`dkmeans.estimator_minibatch`: the
  scikit-learn compatible :class:`KMeans` and :class:`MiniBatchKMeans`, on
  what they share (:mod:`dkmeans.estimator_base`);
- :mod:`dkmeans.data` (input handling), :mod:`dkmeans.preprocessing`
  (streaming scaler, imputation, unit rows), :mod:`dkmeans.io` (model files
  without pickle), :mod:`dkmeans.cli` (the ``dkmeans`` command),
  :mod:`dkmeans.metrics` and :mod:`dkmeans.sweep` (evaluating and choosing k;
  their passes are in :mod:`dkmeans.scoring`), :mod:`dkmeans.plots`.
"""

from dkmeans import metrics
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
from dkmeans.fit import KMeansResult, fit_kmeans, fit_minibatch_kmeans
from dkmeans.io import load
from dkmeans.lloyd import LloydResult, lloyd
from dkmeans.minibatch import minibatch
from dkmeans.seeding import INIT_METHODS
from dkmeans.sweep import sweep

__version__ = "0.1.0"

__all__ = [
    "INIT_METHODS",
    "DKMeansError",
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
    "sweep",
]
