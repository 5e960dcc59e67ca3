"""A :class:`~dkmeans.GaussianMixture` as a model folder: what
:meth:`~dkmeans.GaussianMixture.save` writes and ``dkmeans.load`` reads
(the folder itself: :mod:`dkmeans.estimators.modelfile`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dkmeans.algorithms.mixture import MixtureParameters, covariances_from_cholesky
from dkmeans.errors import InvalidInputError

_INITS = ("weights", "means", "precisions")


def params_for_file(model: Any, array_parameters: Sequence[str]) -> tuple[dict, dict]:
    """The parameters as JSON values, and the initial arrays apart."""
    params = {k: (v.item() if isinstance(v, np.generic) else v)
              for k, v in model.get_params().items() if k not in array_parameters}
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None
    arrays = {f"init_{n}": np.asarray(v) for n in _INITS
              if (v := getattr(model, f"{n}_init")) is not None}
    params["inits"] = sorted(arrays)
    return params, arrays


def meta_and_arrays(model: Any, fingerprint: dict | None, state: str,
                    array_parameters: Sequence[str],
                    fill: np.ndarray | None) -> tuple[dict, dict[str, np.ndarray]]:
    """The model.json contents and the arrays beside it.

    Parameters
    ----------
    model : GaussianMixture
        Fitted.
    fingerprint : dict, optional
        The input's (command-line jobs resume only on the same input).
    state : {"complete", "checkpoint"}
    array_parameters : sequence of str
        Parameters saved as arrays (``means_init``, ...).
    fill : ndarray of shape (n_features,), optional
        What NaN becomes (``missing="impute"``).
    """
    from dkmeans import __version__

    params, arrays = params_for_file(model, array_parameters)
    arrays.update({name.rstrip("_"): np.asarray(getattr(model, name))
                   for name in ("weights_", "means_", "precisions_cholesky_")})
    if fill is not None:
        arrays["fill"] = np.asarray(fill, dtype=np.float64)
    fitted = {"n_features_in": int(model.n_features_in_), "n_iter": int(model.n_iter_),
              "converged": bool(model.converged_), "lower_bound": float(model.lower_bound_),
              "lower_bounds": [float(v) for v in model.lower_bounds_],
              "imputed": fill is not None}
    if hasattr(model, "feature_names_in_"):
        fitted["feature_names_in"] = [str(v) for v in model.feature_names_in_]
    meta = {"dkmeans_version": __version__, "estimator": "GaussianMixture",
            "state": state, "input_fingerprint": fingerprint, "params": params,
            "fitted": fitted}
    return meta, arrays


def read_fitted(meta: dict, read: Callable[[str], np.ndarray]
                ) -> tuple[dict, MixtureParameters, np.ndarray | None]:
    """The constructor's parameters, the fitted mixture and the imputation
    fill (or None) of a model folder, every array's shape checked against
    the metadata."""
    params, fitted = dict(meta["params"]), meta["fitted"]
    inits = params.pop("inits", [])
    for n in _INITS:
        params[f"{n}_init"] = read(f"init_{n}") if f"init_{n}" in inits else None
    k, d = params["n_components"], fitted["n_features_in"]
    shapes = {"weights": (k,), "means": (k, d), "precisions_cholesky": {
        "full": (k, d, d), "diag": (k, d), "spherical": (k,)}[params["covariance_type"]]}
    if fitted.get("imputed"):
        shapes["fill"] = (d,)
    arrays = {}
    for name, shape in shapes.items():
        arrays[name] = read(name)
        if arrays[name].shape != shape:
            raise InvalidInputError(f"{name} has shape {arrays[name].shape}; the "
                                    f"metadata says {shape}.")
    chol = arrays["precisions_cholesky"]
    mixture = MixtureParameters(arrays["weights"], arrays["means"],
                                covariances_from_cholesky(chol, params["covariance_type"]),
                                chol)
    return params, mixture, arrays.get("fill")
