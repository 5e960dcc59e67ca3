"""Model files: a directory of JSON metadata and ``.npy`` arrays, never pickle.

Layout of a model directory::

    model.json                 format name and version, dkmeans version, state
                               ("complete" or "checkpoint"), input fingerprint,
                               parameters, iteration, inertia and its history
    cluster_centers.npy        (n_clusters, n_features), X's dtype
    init.npy                   only when ``init`` was an array

(JSON floats round-trip exactly: Python writes the shortest repr.)

Loading reads the JSON and the arrays with ``allow_pickle=False``: nothing in
a model file can run code. A save writes a temporary sibling directory and
renames it into place, so a failed or interrupted save never leaves a
half-written model, and an existing model is replaced only by a complete one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dkmeans.errors import InputNotFoundError, InvalidInputError

FORMAT = "dkmeans-model"
#: Version of the model directory layout this dkmeans writes and reads.
FORMAT_VERSION = 1
_META = "model.json"
#: The estimators a model directory may hold.
ESTIMATORS = ("KMeans", "MiniBatchKMeans")


def save_model(model: Any, path: str | os.PathLike, fingerprint: dict | None = None) -> Path:
    """Write a fitted :class:`~dkmeans.KMeans` or
    :class:`~dkmeans.MiniBatchKMeans` to the directory ``path``.

    Parameters
    ----------
    model : KMeans or MiniBatchKMeans
        Fitted.
    path : str or PathLike
        The model directory; an existing one is replaced only once the new
        one is complete.
    fingerprint : dict, optional
        The training input's :func:`fingerprint`, kept in the metadata.

    Returns
    -------
    Path
    """
    from sklearn.utils.validation import check_is_fitted

    from dkmeans import __version__

    check_is_fitted(model)
    path = Path(path)
    params = model.get_params()
    arrays = {"cluster_centers": model.cluster_centers_}
    prep = getattr(model, "_preprocessing", None)
    for part in ("fill", "mean", "scale"):  # what predict applies to new rows
        if prep is not None and getattr(prep, part) is not None:
            arrays[f"feature_{part}"] = getattr(prep, part)
    init = params["init"]
    if callable(init):
        name = f"{getattr(init, '__module__', '?')}.{getattr(init, '__qualname__', '?')}"
        warnings.warn(f"init={name} is a callable: saved by name only; a loaded model "
                      "refits with init='k-means||'.", UserWarning, stacklevel=2)
        params["init"] = {"callable": name}
    elif not isinstance(init, str):
        arrays["init"] = np.asarray(init)
        params["init"] = {"array": "init.npy"}
    if isinstance(params["random_state"], np.random.RandomState):
        warnings.warn("random_state is a RandomState instance: saved as None.", UserWarning,
                      stacklevel=2)
        params["random_state"] = None
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dkmeans_version": __version__,
        "estimator": type(model).__name__,
        "params": params,
        "fitted": {"n_features_in": int(model.n_features_in_), "inertia": float(model.inertia_),
                   "n_iter": int(model.n_iter_), "dtype": str(model.cluster_centers_.dtype),
                   "timings": {k: float(v) for k, v in getattr(model, "timings_", {}).items()}},
    }
    if hasattr(model, "inertia_history_"):
        meta["fitted"]["inertia_history"] = [float(v) for v in model.inertia_history_]
    if hasattr(model, "n_steps_"):
        meta["fitted"]["n_steps"] = int(model.n_steps_)
    meta["state"] = "complete"
    meta["input_fingerprint"] = fingerprint
    return _write_dir(path, meta, arrays)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to fill; on success it replaces
    ``path`` whole, on failure it is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_labels(labels: Any, path: str | os.PathLike) -> Path:
    """Store lazy labels as a Zarr array at ``path``, chunk by chunk.

    Each block is computed and written by a worker; nothing is gathered. The
    array is written beside ``path`` and renamed in when complete
    (:func:`atomic_dir`), so a failure leaves any earlier array untouched.

    Parameters
    ----------
    labels : dask.array.Array of shape (n,)
    path : str or path-like

    Returns
    -------
    pathlib.Path
    """
    import zarr
    from dask.delayed import delayed

    from dkmeans.runner import compute_all

    sizes = labels.chunks[0]
    if len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]:  # Zarr chunks are regular
        labels = labels.rechunk(max(sizes))
        sizes = labels.chunks[0]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    with atomic_dir(path) as tmp:
        z = zarr.create_array(str(tmp), shape=labels.shape, chunks=(sizes[0],),
                              dtype=labels.dtype)
        compute_all([delayed(_write_block, pure=False)(z, int(start), block)
                     for start, block in zip(starts, labels.to_delayed(), strict=True)])
    return Path(path)


def _write_block(z: Any, start: int, block: np.ndarray) -> None:
    z[start : start + len(block)] = block


def _write_dir(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write a model directory completely beside ``path``, then rename it in."""
    with atomic_dir(path) as tmp:
        tmp.mkdir(parents=True)
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
        with open(tmp / _META, "w") as f:
            json.dump(meta, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
    return path


def save_checkpoint(path: str | os.PathLike, params: dict, progress: Any,
                    fingerprint: dict) -> Path:
    """Write a Lloyd run's progress as a model directory in state "checkpoint".

    Parameters
    ----------
    path : str or PathLike
    params : dict
        The estimator's parameters (JSON-serialisable values).
    progress : dkmeans.lloyd.LloydProgress
    fingerprint : dict
        The input's :func:`fingerprint`, checked when resuming.
    """
    from dkmeans import __version__

    centers = np.asarray(progress.centers)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "dkmeans_version": __version__,
        "estimator": "KMeans", "state": "checkpoint", "input_fingerprint": fingerprint,
        "params": params,
        "fitted": {"n_features_in": int(centers.shape[1]), "inertia": float(progress.inertia),
                   "n_iter": int(progress.n_iter), "dtype": str(centers.dtype),
                   "inertia_history": [float(v) for v in progress.history], "timings": {}},
    }
    return _write_dir(Path(path), meta, {"cluster_centers": centers})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, Any, dict]:
    """The parameters, :class:`~dkmeans.lloyd.LloydProgress` and input
    fingerprint of a checkpoint written by :func:`save_checkpoint`."""
    from dkmeans.lloyd import LloydProgress

    path = Path(path)
    meta = _read_meta(path)
    if meta.get("state") != "checkpoint":
        raise InvalidInputError(f"{os.fspath(path)!r} holds a finished model, not a "
                                "checkpoint: nothing to resume.")
    centers = _load_array(path, "cluster_centers")
    try:
        progress = LloydProgress(int(meta["fitted"]["n_iter"]), centers,
                                 tuple(float(v) for v in meta["fitted"]["inertia_history"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInputError(f"{os.fspath(path / _META)!r} lacks or mistypes a field: "
                                f"{err!r}.") from err
    return dict(meta["params"]), progress, dict(meta.get("input_fingerprint") or {})


def fingerprint(X: Any) -> dict:
    """What identifies an input, so a resumed job refuses different data:
    shape, dtype and a hash of its first and last 1,024 rows."""
    import hashlib

    from dkmeans.data import as_chunked
    from dkmeans.runner import compute

    arr, _ = as_chunked(X)
    head, tail = compute(arr[:1024], arr[-1024:])
    digest = hashlib.sha256(np.ascontiguousarray(head).tobytes()
                            + np.ascontiguousarray(tail).tobytes()).hexdigest()
    return {"shape": [int(v) for v in arr.shape], "dtype": str(arr.dtype),
            "sample_sha256": digest}


def replace_dir(new: Path, target: Path) -> None:
    """Put the complete directory ``new`` at ``target``: the old one is moved
    aside first and removed only once the new one is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load(path: str | os.PathLike) -> Any:
    """Load a model saved by :meth:`KMeans.save`, without unpickling anything.

    Parameters
    ----------
    path : str or PathLike
        The model directory.

    Returns
    -------
    KMeans or MiniBatchKMeans
        Fitted: ``cluster_centers_``, ``inertia_``, ``n_iter_``,
        ``inertia_history_`` (``n_steps_`` for MiniBatchKMeans) and
        ``n_features_in_`` (``labels_``, one per training row, is not part
        of a model file).

    Raises
    ------
    InputNotFoundError
        No model directory, or no metadata in it.
    InvalidInputError
        Not a dkmeans model, a newer format version, or arrays that do not
        match the metadata.
    """
    from dkmeans.estimator import KMeans
    from dkmeans.estimator_minibatch import MiniBatchKMeans

    estimators = {"KMeans": KMeans, "MiniBatchKMeans": MiniBatchKMeans}  # ESTIMATORS
    path = Path(path)
    meta = _read_meta(path)
    if meta.get("state", "complete") != "complete":
        raise InvalidInputError(
            f"{os.fspath(path)!r} is a checkpoint at iteration {meta['fitted']['n_iter']}, "
            "not a finished model: finish it with `dkmeans fit ... --resume`.")
    try:
        params, fitted = dict(meta["params"]), meta["fitted"]
        name = meta["estimator"]
        centers = _load_array(path, "cluster_centers")
        init = params["init"]
        if isinstance(init, dict) and "array" in init:
            params["init"] = _load_array(path, "init")
        elif isinstance(init, dict):
            params["init"] = "k-means||"
        model = estimators[name](**params)
        expected = (params["n_clusters"], fitted["n_features_in"])
        if centers.shape != expected or str(centers.dtype) != fitted["dtype"]:
            raise InvalidInputError(
                f"cluster_centers.npy has shape {centers.shape} and dtype {centers.dtype}; "
                f"{_META} says {expected} and {fitted['dtype']}.")
        if name == "KMeans":
            history = np.asarray(fitted["inertia_history"], dtype=np.float64)
            if history.shape != (fitted["n_iter"],):
                raise InvalidInputError(f"inertia_history has {history.size} values in "
                                        f"{_META}, for {fitted['n_iter']} iterations.")
            model.inertia_history_ = history
        else:
            model.n_steps_ = int(fitted["n_steps"])
        model.cluster_centers_ = centers
        if params.get("scale") or params.get("missing") == "impute" or \
                params.get("metric") == "cosine":
            from dkmeans.preprocessing import Preprocessing

            model._preprocessing = Preprocessing(
                fill=_load_array(path, "feature_fill") if params.get("missing") == "impute"
                else None,
                mean=_load_array(path, "feature_mean") if params.get("scale") else None,
                scale=_load_array(path, "feature_scale") if params.get("scale") else None,
                unit=params.get("metric") == "cosine")
        model.inertia_ = float(fitted["inertia"])
        model.n_iter_ = int(fitted["n_iter"])
        model.n_features_in_ = int(fitted["n_features_in"])
        model.timings_ = dict(fitted.get("timings", {}))
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, InvalidInputError):
            raise
        raise InvalidInputError(f"{os.fspath(path / _META)!r} lacks or mistypes a field: "
                                f"{err!r}.") from err
    return model


def _read_meta(path: Path) -> dict:
    """The checked metadata of a model directory."""
    if not path.is_dir():
        raise InputNotFoundError(f"No model directory at {os.fspath(path)!r}.")
    if not (path / _META).is_file():
        raise InputNotFoundError(f"{os.fspath(path)!r} has no {_META}: not a dkmeans model "
                                 "directory.")
    try:
        meta = json.loads((path / _META).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{os.fspath(path / _META)!r} is not valid JSON (truncated or "
                                f"corrupt?): {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        named = meta.get("format") if isinstance(meta, dict) else None
        raise InvalidInputError(f"{os.fspath(path)!r} is not a dkmeans model: its {_META} "
                                f"names format {named!r}, expected {FORMAT!r}.")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InvalidInputError(
            f"{os.fspath(path)!r} has model format version {version!r}; this dkmeans reads "
            f"versions up to {FORMAT_VERSION}. Upgrade dkmeans to load it.")
    if meta.get("estimator") not in ESTIMATORS:
        raise InvalidInputError(f"{os.fspath(path)!r} holds a {meta.get('estimator')!r}; "
                                f"this dkmeans loads {' and '.join(ESTIMATORS)} models.")
    return meta


def read_meta(path: str | os.PathLike) -> dict:
    """The metadata of a model directory or checkpoint (``dkmeans info``)."""
    return _read_meta(Path(path))


def _load_array(path: Path, name: str) -> np.ndarray:
    file = path / f"{name}.npy"
    if not file.is_file():
        raise InvalidInputError(f"Model directory {os.fspath(path)!r} lacks {name}.npy.")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:  # ValueError too for pickled objects
        raise InvalidInputError(f"{os.fspath(file)!r} is not a plain numeric array (truncated "
                                f"or holding objects): {err}") from err
