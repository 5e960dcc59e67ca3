"""The small checks every estimator's parameters share: numbers that are
integers or reals (not booleans), JSON values, initial centers (given, or
from a callable), seeds."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from dkmeans.algorithms.seeding import INIT_METHODS
from dkmeans.errors import InvalidInputError, InvalidParameterError


def is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def plain(value: Any) -> Any:
    """A parameter as a JSON value (numpy scalars become Python numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_centers(centers: Any, n_clusters: int, n_features: int,
                  dtype: np.dtype) -> np.ndarray:
    """Validate initial centers given as an array; return them in X's dtype."""
    centers = np.asarray(centers)
    if centers.dtype.kind not in "biuf":
        raise InvalidInputError(f"init has dtype {centers.dtype}; expected real numbers.")
    if centers.ndim != 2 or centers.shape[0] != n_clusters:
        raise InvalidInputError(
            f"The shape of the initial centers {centers.shape} does not match the number "
            f"of clusters {n_clusters}.")
    if centers.shape[1] != n_features:
        raise InvalidInputError(
            f"The shape of the initial centers {centers.shape} does not match the number "
            f"of features of the data {n_features}.")
    if not np.isfinite(centers).all():
        raise InvalidInputError("init contains NaN or infinity; initial centers must be "
                                "finite.")
    return centers.astype(dtype)


def fit_seed(random_state: Any) -> int:
    """A fit's seed: ``random_state`` itself when it is an integer (no
    RandomState to build), else a draw from it (None: from numpy's global one)."""
    rs = random_state
    if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) and 0 <= rs < 2**32:
        return int(rs)
    return int(check_random_state(rs).randint(np.iinfo(np.int32).max))


def wrap_init_callable(user_init: Callable, X: Any, in_memory: bool, prep: Any,
                   n_features: int, dtype: np.dtype, seed: int):
    """Adapt a scikit-learn style ``init(X, n_clusters, random_state)``.

    The callable sees the data as the user knows it: in its units, missing
    values imputed, numpy for in-memory input, dask for chunked input (never
    a path). Its centers are mapped into the space the clustering runs in.
    """

    def init(blocks, k, run):
        from dkmeans.runner import compute

        data = compute(X)[0] if in_memory else X
        centers = user_init(data, k, np.random.RandomState(seed + run))
        return prep.to_model(check_centers(centers, k, n_features, dtype))

    return init


def check_parameters(estimator: Any, table: dict[str, tuple[Callable[[Any], bool], str]],
                     ) -> None:
    """Each parameter named in ``table`` (name -> (test, what is expected))
    passes its test, else an error naming it, what it must be and its value."""
    for name, (test, expected) in table.items():
        value = getattr(estimator, name)
        if not test(value):
            raise InvalidParameterError(
                f"The {name!r} parameter of {type(estimator).__name__} must be {expected}; "
                f"got {value!r}.")


#: The preprocessing parameters every estimator takes (see
#: :func:`dkmeans.data.preprocessing.prepare`): name -> (test, what is expected)
PREPROCESSING = {
    "scale": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "missing": (lambda v: v in ("error", "impute"), "'error' or 'impute'"),
}


#: KMeans's parameters (MiniBatchKMeans's start from them): name -> (test,
#: what is expected), checked at fit time, in this order.
KMEANS_PARAMETERS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_clusters": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "init": (lambda v: (isinstance(v, str) and v in INIT_METHODS) or callable(v)
             or (not isinstance(v, str) and hasattr(v, "__len__")),
             f"one of {sorted(INIT_METHODS)}, an array of shape (n_clusters, "
             "n_features) or a callable"),
    "n_init": (lambda v: v == "auto" if isinstance(v, str) else is_int(v) and v >= 1,
               "'auto' or an integer >= 1"),
    "max_iter": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "tol": (lambda v: is_real(v) and 0 <= v < np.inf, "a finite number >= 0"),
    "oversampling_factor": (lambda v: is_real(v) and 0 < v < np.inf,
                            "a finite number > 0"),
    "init_rounds": (lambda v: v == "auto" if isinstance(v, str) else is_int(v) and v >= 1,
                    "'auto' or an integer >= 1"),
    "init_size": (lambda v: v is None or v == "auto" if not is_int(v) else v >= 1,
                  "'auto', None or an integer >= 1"),
    "random_state": (lambda v: v is None or is_int(v)
                     or isinstance(v, np.random.RandomState),
                     "None, an integer or a numpy RandomState"),
    "verbose": (lambda v: (is_int(v) and v >= 0) or isinstance(v, bool),
                "an integer >= 0"),
    "persist": (lambda v: isinstance(v, bool) or v == "auto", "True, False or 'auto'"),
    "init_max_iter": (lambda v: v is None or (is_int(v) and v >= 1),
                      "None or an integer >= 1"),
    "algorithm": (lambda v: v in ("lloyd", "elkan", "hamerly", "full"),
                  "'lloyd', 'elkan' or 'hamerly'"),
    "copy_x": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    "progress": (lambda v: isinstance(v, (bool, np.bool_)), "True or False"),
    **PREPROCESSING,
    "metric": (lambda v: v in ("euclidean", "cosine", "manhattan"),
               "'euclidean', 'cosine' or 'manhattan'"),
    "train_size": (lambda v: v is None or (is_int(v) and v >= 1)
                   or (is_real(v) and not is_int(v) and 0 < v <= 1),
                   "None, a number of rows >= 1 or a fraction in (0, 1]"),
    "min_cluster_size": (lambda v: v is None or (is_real(v) and 0 < v < np.inf),
                         "None or a number > 0 (below 1: a fraction of the total weight)"),
}
