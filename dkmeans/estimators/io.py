"""Loading models and writing checkpoints, at a local path or any fsspec URL.

The format and its atomic writes are :mod:`dkmeans.estimators.modelfile`; this module
sits above the estimators (it picks the class a model directory names), so
the estimators never import it. A checkpoint is a model directory in state
``"checkpoint"``: the Lloyd run's centers and history, written every N
iterations by ``dkmeans fit --checkpoint-every N``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dkmeans.algorithms.lloyd import LloydProgress
from dkmeans.data.storage import Location, locate
from dkmeans.errors import InvalidInputError
from dkmeans.estimators.kmeans import KMeans
from dkmeans.estimators.minibatch import MiniBatchKMeans
from dkmeans.estimators.mixture import GaussianMixture
from dkmeans.estimators.modelfile import (
    ESTIMATORS,
    FORMAT,
    FORMAT_VERSION,
    META,
    fingerprint,
    read_array,
    read_meta,
    v1_array_names,
    write_model_dir,
)

__all__ = ["ESTIMATORS", "FORMAT", "FORMAT_VERSION", "fingerprint", "load", "read_checkpoint",
           "read_meta", "save_checkpoint", "save_model"]

_CLASSES = {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans,
            "GaussianMixture": GaussianMixture}


def save_model(model: Any, path: Any, fingerprint: dict | None = None,
               storage_options: dict | None = None, overwrite: bool = False) -> Location:
    """``model.save(path, ...)``: a fitted KMeans or MiniBatchKMeans to a model directory."""
    return model.save(path, storage_options=storage_options, fingerprint=fingerprint,
                      overwrite=overwrite)


def load(path: Any, storage_options: dict | None = None,
         ) -> KMeans | MiniBatchKMeans | GaussianMixture:
    """Load a model saved by :meth:`KMeans.save`, without unpickling anything.

    Parameters
    ----------
    path : str, os.PathLike or fsspec URL
        The model directory, or its ``model.json``.
    storage_options : dict, optional
        Passed to fsspec for a URL.

    Returns
    -------
    KMeans, MiniBatchKMeans or GaussianMixture
        Fitted: ``cluster_centers_``, ``inertia_``, ``n_iter_``,
        ``inertia_history_`` (KMeans), the mini-batch state (so
        ``partial_fit`` continues), ``n_features_in_`` (``labels_``, one per
        training row, is not part of a model file).

    Raises
    ------
    InputNotFoundError
        No model directory, or no metadata in it.
    InvalidInputError
        Not a dkmeans model, a newer format version, a checkpoint, or arrays
        that do not match the metadata.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import dkmeans
    >>> km = dkmeans.KMeans(2, random_state=0).fit(np.array([[0.0], [0.1], [5.0], [5.1]]))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     where = km.save(f"{folder}/model")
    ...     dkmeans.load(f"{folder}/model").predict(np.array([[0.05], [4.9]])).tolist()
    [0, 1]
    """
    loc = locate(path, storage_options)
    if loc.name == META and loc.fs.isfile(loc.path):  # the model's file: its folder
        loc = loc.parent
    meta = read_meta(loc)
    if meta.get("state", "complete") != "complete":
        raise InvalidInputError(
            f"{loc.url!r} is a checkpoint at iteration {meta['fitted']['n_iter']}, "
            "not a finished model: finish it with `dkmeans fit ... --resume`.")
    names = list(meta["arrays"]) if meta.get("format_version", 1) >= 2 \
        else v1_array_names(meta)
    try:
        return _CLASSES[meta["estimator"]]._from_file(
            meta, lambda name: read_array(loc, meta, name), names)
    except InvalidInputError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInputError(f"{loc.child(META).url!r} lacks or mistypes a field: "
                                f"{err!r}.") from err


def save_checkpoint(path: Any, params: dict, progress: LloydProgress, fingerprint: dict,
                    storage_options: dict | None = None) -> Location:
    """Write a Lloyd run's progress as a model directory in state "checkpoint".

    Parameters
    ----------
    path : str, os.PathLike or fsspec URL
    params : dict
        The estimator's parameters (JSON-serialisable values).
    progress : dkmeans.algorithms.lloyd.LloydProgress
    fingerprint : dict
        The input's :func:`fingerprint`, checked when resuming.
    storage_options : dict, optional
    """
    from dkmeans import __version__

    centers = np.asarray(progress.centers)
    meta = {
        "dkmeans_version": __version__, "estimator": "KMeans", "state": "checkpoint",
        "input_fingerprint": fingerprint, "params": params,
        "fitted": {"n_features_in": int(centers.shape[1]), "inertia": float(progress.inertia),
                   "n_iter": int(progress.n_iter), "dtype": str(centers.dtype),
                   "inertia_history": [float(v) for v in progress.history], "timings": {}},
    }
    # a job's own model directory, checked before it started (dkmeans fit)
    return write_model_dir(path, meta, {"cluster_centers": centers}, storage_options,
                           overwrite=True)


def read_checkpoint(path: Any, storage_options: dict | None = None,
                    ) -> tuple[dict, LloydProgress, dict]:
    """The parameters, :class:`~dkmeans.algorithms.lloyd.LloydProgress` and input
    fingerprint of a checkpoint written by :func:`save_checkpoint`."""
    loc = locate(path, storage_options)
    meta = read_meta(loc)
    if meta.get("state") != "checkpoint":
        raise InvalidInputError(f"{loc.url!r} holds a finished model, not a checkpoint: "
                                "nothing to resume.")
    centers = read_array(loc, meta, "cluster_centers")
    try:
        progress = LloydProgress(int(meta["fitted"]["n_iter"]), centers,
                                 tuple(float(v) for v in meta["fitted"]["inertia_history"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInputError(f"{loc.child(META).url!r} lacks or mistypes a field: "
                                f"{err!r}.") from err
    return dict(meta["params"]), progress, dict(meta.get("input_fingerprint") or {})
