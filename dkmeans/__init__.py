"""dkmeans: k-means clustering for data too big for one machine's memory.

Where things live, one layer calling only the ones above it in this list:

- :mod:`dkmeans.kernels`: numpy/numba functions on one in-memory block;
- :mod:`dkmeans.passes`: each distributed pass as a chunk/combine triple, run
  by :func:`dkmeans.runner.run_pass`;
- :mod:`dkmeans.lloyd` (the Lloyd step: :func:`lloyd`), :mod:`dkmeans.seeding`
  (k-means||, k-means++, random) and :mod:`dkmeans.fit` (the whole fit);
- :mod:`dkmeans.estimator`: the scikit-learn compatible :class:`KMeans`;
- :mod:`dkmeans.data` (input handling), :mod:`dkmeans.io` (model files
  without pickle), :mod:`dkmeans.cli` (the ``dkmeans`` command).
"""

from dkmeans.errors import (
    DKMeansError,
    InputNotFoundError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
)
from dkmeans.estimator import KMeans
from dkmeans.fit import KMeansResult, fit_kmeans
from dkmeans.io import load
from dkmeans.lloyd import LloydResult, lloyd
from dkmeans.seeding import INIT_METHODS

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
    "fit_kmeans",
    "lloyd",
    "load",
]
