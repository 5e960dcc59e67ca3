"""Choosing k (dkmeans.sweep, in dkmeans.evaluate.choosing) and the plot helpers."""

import dask.array as da
import numpy as np
import pytest
import sklearn.metrics as skm

from dkmeans import KMeans
from dkmeans.evaluate.choosing import knee, sweep


def test_knee_of_a_hand_made_elbow():
    # steep drop to k=4, then flat: the elbow is at 4
    assert knee([1, 2, 3, 4, 5, 6, 7], [100, 60, 30, 10, 9, 8, 7]) == 4
    assert knee([2, 3], [5, 4]) == 2  # too few points: the first k


def _separated_blobs(k, d, seed, n=1500):
    """k Gaussian blobs (std 1) whose centers are at least 8 apart."""
    from sklearn.datasets import make_blobs

    rng = np.random.default_rng(seed)
    centers = []
    while len(centers) < k:
        c = rng.uniform(-18 * k**0.5, 18 * k**0.5, d)
        if all(np.linalg.norm(c - o) >= 8 for o in centers):
            centers.append(c)
    return make_blobs(n, centers=np.array(centers), cluster_std=1.0, random_state=seed)[0]


@pytest.mark.slow
@pytest.mark.parametrize("true_k,d,ks", [(3, 2, range(2, 13)), (5, 2, range(1, 16)),
                                         (7, 5, range(2, 13)), (7, 2, range(2, 21)),
                                         (9, 16, range(2, 13)), (11, 5, range(2, 15)),
                                         (4, 16, range(2, 8))])
def test_the_knee_finds_well_separated_blobs(true_k, d, ks):
    X = _separated_blobs(true_k, d, seed=true_k)
    result = sweep(X, ks, random_state=0, silhouette_sample=500)
    assert result.knee == true_k, result.inertia


def test_sweep_scores_every_k_and_finds_the_true_k(blobs):
    X, _ = blobs  # 6 well-separated blobs
    result = sweep(da.from_array(X, chunks=(400, 5)), range(2, 10), random_state=0,
                   silhouette_sample=len(X))
    assert list(result.ks) == list(range(2, 10))
    assert result.knee == 6
    assert int(result.ks[np.argmax(result.calinski_harabasz)]) == 6
    assert int(result.ks[np.argmin(result.davies_bouldin)]) == 6
    assert int(result.ks[np.argmax(result.silhouette)]) == 6
    assert result.suggestions == {"inertia": 6, "calinski_harabasz": 6,
                                  "davies_bouldin": 6, "silhouette": 6}
    # each row's scores are those of its centers, as scikit-learn computes them
    i = list(result.ks).index(6)
    centers = result.centers[i]
    labels = np.argmin(((X[:, None] - centers[None]) ** 2).sum(axis=2), axis=1)
    assert result.calinski_harabasz[i] == pytest.approx(
        skm.calinski_harabasz_score(X, labels), rel=1e-6)
    assert result.davies_bouldin[i] == pytest.approx(skm.davies_bouldin_score(X, labels),
                                                     rel=1e-6)
    assert result.silhouette[i] == pytest.approx(skm.silhouette_score(X, labels), rel=1e-6)
    assert result.inertia[i] == pytest.approx(
        ((X - centers[labels]) ** 2).sum(), rel=1e-9)
    assert np.all(np.diff(result.inertia) < 0)
    assert len(result.records()) == 8 and result.records()[i]["k"] == 6
    frame = result.table()  # a DataFrame, as cv_results_ users read it
    assert list(frame["k"]) == list(result.ks) and frame["inertia"].is_monotonic_decreasing


def test_sweep_matches_separate_fits(blobs):
    # the shared seeding gives models as good as fitting each k alone
    X, _ = blobs
    result = sweep(X, [3, 6], random_state=1)
    for k, inertia in zip(result.ks, result.inertia, strict=True):
        alone = KMeans(int(k), random_state=1).fit(X).inertia_
        assert inertia <= 1.01 * alone


def test_plots_draw_every_panel(blobs, tmp_path):
    pytest.importorskip("matplotlib")
    from dkmeans.evaluate.plots import plot_fit, plot_sweep, principal_axes

    X, _ = blobs
    km = KMeans(6, random_state=0).fit(X)
    out = plot_fit(km, da.from_array(X, chunks=(500, 5)), tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 10_000 and out.endswith("fit.png")
    fig = plot_sweep(sweep(X, [2, 4, 6, 8]), tmp_path / "sweep.png")
    assert len(fig.axes) == 4 and (tmp_path / "sweep.png").exists()
    # the principal axes are numpy's on the whole data
    mean, axes = principal_axes(da.from_array(X, chunks=(300, 5)))
    _, _, vt = np.linalg.svd(X - X.mean(axis=0), full_matrices=False)
    np.testing.assert_allclose(np.abs(axes.T @ vt[:2].T), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(mean, X.mean(axis=0))
