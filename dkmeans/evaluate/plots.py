"""Plots of a fitted model (matplotlib, an optional extra: ``dkmeans[plot]``).

Every function returns its matplotlib Axes or Figure and leaves the backend
alone: Jupyter shows the figures inline, a script with no screen gets
matplotlib's own non-interactive default, and files are written with
``savefig``. Rows and centers are drawn in the space the model clusters in
(standardized features for ``scale=True``, unit rows for cosine), where the
labels are decided.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        from dkmeans.errors import InputTypeError

        raise InputTypeError("Plots need matplotlib: pip install 'dkmeans[plot]'.") from err
    return plt


def principal_axes(X: Any, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and leading principal axes of chunked data, through dask.

    The covariance is one tree-reduced dask matrix product over the chunks
    (d x d reaches the client), then a local eigendecomposition.

    Returns
    -------
    mean : ndarray of shape (d,)
    axes : ndarray of shape (d, n_components)
    """
    import dask

    from dkmeans.data import as_chunked

    arr, _ = as_chunked(X)
    arr = arr.astype(np.float64)
    mean = arr.mean(axis=0)
    centred = arr - mean
    mean, cov = dask.compute(mean, centred.T @ centred)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1][:n_components]
    axes = vectors[:, order]
    if axes.shape[1] < n_components:  # fewer features than components
        axes = np.eye(arr.shape[1], n_components)
    return mean, axes


def _sample_axes(rows: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and leading principal axes of in-memory rows."""
    rows = rows.astype(np.float64)
    mean = rows.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(rows - mean, rowvar=False).reshape(
        rows.shape[1], rows.shape[1]))
    axes = vectors[:, np.argsort(values)[::-1][:n_components]]
    if axes.shape[1] < n_components:  # fewer features than components
        axes = np.eye(rows.shape[1], n_components)
    return mean, axes


def labelled_sample(model: Any, X: Any, size: int, random_state: int = 0,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """A uniform sample of ``size`` rows of X, as the model compares them
    (preprocessed), and their predicted labels (one pass)."""
    from dkmeans import kernels
    from dkmeans.algorithms.apply import predict_labels
    from dkmeans.algorithms.seeding import stream_key
    from dkmeans.evaluate.metrics import paired_blocks
    from dkmeans.evaluate.scoring import LABELLED_SAMPLE
    from dkmeans.runner import run_pass

    arr, _ = model._chunked(X)
    pairs = paired_blocks(arr, predict_labels(arr, model._model_centers()))
    sample = run_pass(LABELLED_SAMPLE, pairs, stream_key(random_state, 8), size)
    return kernels.dense(sample.rows), sample.labels


def plot_inertia(history: Any, ax: Any = None) -> Any:
    """The inertia of each Lloyd iteration (``model.inertia_history_``: that
    of the centers the iteration assigned to, the seeding's first), and the
    final inertia after the last update.

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4))[1]
    final = getattr(history, "inertia_", None)
    history = np.asarray(getattr(history, "inertia_history_", history), dtype=np.float64)
    ax.plot(np.arange(1, len(history) + 1), history, marker="o")
    if final is not None:
        ax.plot([len(history) + 1], [final], marker="s", linestyle="none",
                label=f"after the last update: {final:.6g}")
        ax.legend(loc="best")
        history = np.append(history, final)
    ax.set(xlabel="Lloyd iteration", ylabel="inertia", title="Inertia per iteration")
    ax.ticklabel_format(axis="y", useOffset=False, style="sci", scilimits=(-3, 4))
    low, high = float(history.min()), float(history.max())
    if high - low <= 1e-6 * abs(high):  # converged at once: show a flat line, not noise
        pad = 0.01 * abs(high) or 1.0
        ax.set_ylim(low - pad, high + pad)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    return ax


def plot_projection(model: Any, X: Any, sample_size: int = 5_000, random_state: int = 0,
                    ax: Any = None) -> Any:
    """A uniform sample of X on the sample's first two principal components,
    coloured by cluster, with the centers marked.

    One pass over X draws the sample; the axes come from the sample itself (a
    uniform sample of thousands of rows gives the data's leading axes closely,
    and computing them over all of X cost two more passes: 13 of the demo's 22
    seconds). :func:`principal_axes` computes them over all of X.

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4.5))[1]
    rows, labels = labelled_sample(model, X, sample_size, random_state)
    n = _n_rows(X)
    shown = f"all {n:,} rows" if len(rows) == n else f"{len(rows):,} sampled rows"
    mean, axes = _sample_axes(rows)
    xy = (rows - mean) @ axes
    cxy = (model._model_centers() - mean) @ axes
    ax.scatter(xy[:, 0], xy[:, 1], c=labels, s=2, cmap="tab20", alpha=0.5)
    ax.scatter(cxy[:, 0], cxy[:, 1], c="black", marker="x", s=60, label="centers")
    ax.set(xlabel="PC 1", ylabel="PC 2",
           title=f"{shown}, k={model.n_clusters}")
    ax.legend(loc="best")
    return ax


def _n_rows(X: Any) -> int:
    """The number of rows of X (an array, or a path opened lazily)."""
    from dkmeans.data import as_chunked

    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else int(as_chunked(X)[0].shape[0])


def plot_sweep(result: Any, path: str | os.PathLike | None = None) -> Any:
    """The curves of a :func:`dkmeans.evaluate.choosing.sweep`: inertia (knee marked),
    Calinski-Harabasz, Davies-Bouldin and the sampled silhouette (+- 2 s.e.),
    and when computed the gap statistic (+- s_k, its choice marked) and the
    stability (mean ARI over subsamples).

    Returns
    -------
    matplotlib Figure
    """
    plt = _pyplot()
    extra = [n for n in ("gap", "stability") if getattr(result, n, None) is not None]
    # two rows of at most three panels: readable inline (one row of six was
    # 2400 x 380 pixels)
    n_panels = 4 + len(extra)
    columns = 2 if n_panels == 4 else 3
    rows = -(-n_panels // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False)
    axes = grid.ravel()
    for ax in axes[n_panels:]:
        fig.delaxes(ax)
    ks = result.ks
    panels = [("inertia", result.inertia), ("Calinski-Harabasz (higher is better)",
                                            result.calinski_harabasz),
              ("Davies-Bouldin (lower is better)", result.davies_bouldin)]
    for ax, (title, values) in zip(axes, panels, strict=False):
        ax.plot(ks, values, marker="o")
        ax.set(xlabel="k", title=title)
    axes[0].axvline(result.knee, color="gray", linestyle="--", label=f"knee: k={result.knee}")
    axes[0].legend(loc="best")
    axes[3].errorbar(ks, result.silhouette, yerr=2 * result.silhouette_stderr, marker="o")
    axes[3].set(xlabel="k", title="silhouette (sampled, higher is better)")
    for ax, name in zip(axes[4:n_panels], extra, strict=True):
        if name == "gap":
            ax.errorbar(ks, result.gap, yerr=result.gap_stderr, marker="o", capsize=3)
            ax.axvline(result.gap_k, color="gray", linestyle="--",
                       label=f"gap rule: k={result.gap_k}")
            ax.legend(loc="best")
            ax.set(xlabel="k", title="gap statistic (+- s_k)")
        else:
            ax.plot(ks, result.stability, marker="o")
            ax.set(xlabel="k", ylim=(0, 1.05), title="stability (mean ARI, subsamples)")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig


def plot_fit(model: Any, X: Any, path: str | os.PathLike, sample_size: int = 20_000) -> str:
    """Inertia per iteration beside :func:`plot_projection` of X, to a file.

    Parameters
    ----------
    model : KMeans
        Fitted.
    X : array-like, dask array, zarr.Array or Zarr path
    path : str or PathLike
        The image file to write (PNG by its suffix).
    sample_size : int

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    plot_inertia(model, left)
    plot_projection(model, X, sample_size, ax=right)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)


def plot_stability(result: Any, ax: Any = None) -> Any:
    """Pairwise ARIs of a :class:`~dkmeans.evaluate.resampling.StabilityResult` (left)
    and each cluster's mean Jaccard with Hennig's 0.6 / 0.75 marks (right);
    returns the Figure."""
    plt = _pyplot()
    if ax is None:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    else:
        left, right = ax
        fig = left.figure
    left.hist(result.ari, bins=min(20, max(5, len(result.ari))), color="tab:blue")
    # ARIs close together (0.9991-0.9999) would print as an offset ("+9.99e-1")
    # drawn over the axis label: plain values instead
    left.ticklabel_format(axis="x", useOffset=False, style="plain")
    left.set(xlabel="adjusted Rand index, pairs of runs", ylabel="pairs",
             title=f"k={result.k}: ARI {result.ari_mean:.3f} ± {result.ari_std:.3f}")
    right.bar(np.arange(result.k), result.jaccard, color="tab:blue")
    for level in (0.6, 0.75):
        right.axhline(level, color="grey", lw=0.8, ls="--")
    right.set(xlabel="cluster", ylabel="mean Jaccard", ylim=(0, 1.05),
              title="cluster stability")
    return fig
