"""Plots of a fitted model (matplotlib, an optional extra: ``dkmeans[plot]``)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files, not windows: jobs and tests have no screen
        import matplotlib.pyplot as plt
    except ImportError as err:
        from dkmeans.errors import InputTypeError

        raise InputTypeError("Plots need matplotlib: pip install 'dkmeans[plot]'.") from err
    return plt


def plot_fit(model: Any, sample: np.ndarray, path: str | os.PathLike) -> str:
    """Inertia per iteration, and a sample of rows projected on its first two
    principal components, coloured by cluster, with the centers marked.

    Parameters
    ----------
    model : KMeans
        Fitted.
    sample : ndarray of shape (m, d)
        Rows to draw (a few thousand).
    path : str or PathLike
        The image file to write (PNG by its suffix).

    Returns
    -------
    str
        The path written.
    """
    plt = _pyplot()
    labels = np.asarray(model.predict(sample))
    mean = sample.mean(axis=0)
    # principal axes of the sample (a few thousand rows: numpy is enough)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    axes = vt[:2].T if vt.shape[0] >= 2 else np.eye(sample.shape[1], 2)
    xy = (sample - mean) @ axes
    cxy = (model.cluster_centers_ - mean) @ axes
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    history = np.asarray(model.inertia_history_)
    left.plot(np.arange(1, len(history) + 1), history, marker="o")
    left.set(xlabel="Lloyd iteration", ylabel="inertia", title="Inertia per iteration")
    left.ticklabel_format(axis="y", useOffset=False, style="sci", scilimits=(-3, 4))
    low, high = float(history.min()), float(history.max())
    if high - low <= 1e-6 * abs(high):  # converged at once: show a flat line, not noise
        pad = 0.01 * abs(high) or 1.0
        left.set_ylim(low - pad, high + pad)
    left.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    right.scatter(xy[:, 0], xy[:, 1], c=labels, s=2, cmap="tab20", alpha=0.5)
    right.scatter(cxy[:, 0], cxy[:, 1], c="black", marker="x", s=60, label="centers")
    right.set(xlabel="PC 1", ylabel="PC 2",
              title=f"{len(sample):,} rows, k={model.n_clusters}")
    right.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.fspath(path)
