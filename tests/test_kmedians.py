"""k-medians (metric="manhattan") against a brute-force numpy k-medians from
the same initial centers, and its median rounds against numpy on blocks."""

import dask.array as da
import numpy as np
import pytest
import zarr

from dkmeans import InvalidParameterError, KMeans
from dkmeans.algorithms.kmedians import SHIP_ROWS, weighted_medians
from dkmeans.data import as_dataset
from dkmeans.kernels import medians as kernels
from dkmeans.passes.medians import MEDIAN_START
from dkmeans.runner import run_pass


def lower_weighted_median(values, weights):
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return values[order][np.searchsorted(cum, cum[-1] / 2)]


def brute_kmedians(X, w, centers, max_iter=100):
    """Plain numpy k-medians: L1 labels (ties to the lower index), then each
    center to its cluster's lower weighted median, until nothing moves."""
    centers = centers.astype(np.float64)
    for _ in range(max_iter):
        labels = np.abs(X[:, None, :] - centers[None]).sum(axis=2).argmin(axis=1)
        new = centers.copy()
        for j in range(len(centers)):
            rows = (labels == j) & (w > 0)
            if rows.any():
                new[j] = [lower_weighted_median(X[rows, f], w[rows]) for f in
                          range(X.shape[1])]
        if np.array_equal(new, centers):
            break
        centers = new
    labels = np.abs(X[:, None, :] - centers[None]).sum(axis=2).argmin(axis=1)
    return centers, labels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.laplace(c, 1.5, size=(1500, 3)) for c in ((0, 0, 0), (8, 0, 4),
                                                                   (0, 9, -3))])
    X[::7, 1] = np.round(X[::7, 1])  # ties: repeated values
    return X, rng.choice(len(X), 3, replace=False)


def test_nearest_l1_matches_brute_force(rng):
    X, C = rng.normal(size=(500, 4)), rng.normal(size=(7, 4))
    labels, dist = kernels.nearest_l1(X, C)
    full = np.abs(X[:, None, :] - C[None]).sum(axis=2)
    np.testing.assert_array_equal(labels, full.argmin(axis=1))
    np.testing.assert_allclose(dist, full.min(axis=1), rtol=1e-12)
    np.testing.assert_allclose(kernels.l1_distances(X, C), full, rtol=1e-12)


@pytest.mark.parametrize("n", [50, 3 * SHIP_ROWS, 70_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_weighted_medians_are_exact_in_any_chunking(rng, n, weighted):
    """Small clusters ship their values at once; large ones are narrowed by
    histograms first (heavy Cauchy tails take the most rounds); a feature of
    a few repeated values ends when a bin holds only one of them."""
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 5, size=n).astype(float),
                         rng.standard_cauchy(size=n)]).astype(np.float64)
    w = rng.uniform(0, 3, size=n) if weighted else np.ones(n)
    w[::11] = 0.0 if weighted else 1.0
    centers = np.array([[-1.0, 1.0, 0.0], [1.0, 3.0, 0.0]])
    labels = kernels.nearest_l1(X, centers)[0]
    for chunks in (n, 997):
        ds = as_dataset(da.from_array(X, chunks=(chunks, 3)),
                        da.from_array(w, chunks=chunks) if weighted else None)
        blocks = ds.blocks()
        start = run_pass(MEDIAN_START, blocks, centers)
        got, rounds = weighted_medians(blocks, centers, start)
        for j in range(2):
            rows = (labels == j) & (w > 0)
            expected = [lower_weighted_median(X[rows, f], w[rows]) for f in range(3)]
            np.testing.assert_array_equal(got[j], expected)
        # a round narrows each interval to one bin's values, or ends it
        assert rounds == 1 if n <= SHIP_ROWS else 2 <= rounds <= 6


@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr"])
def test_same_as_brute_force_kmedians_from_the_same_centers(data, kind, tmp_path):
    X, start = data
    w = np.ones(len(X))
    expected_centers, expected_labels = brute_kmedians(X, w, X[start])
    Xin = {"numpy": X, "dask": da.from_array(X, chunks=(1000, 3))}.get(kind)
    if kind == "zarr":
        Xin = zarr.create_array(str(tmp_path / "x.zarr"), shape=X.shape, dtype="f8",
                                chunks=(700, 3))
        Xin[:] = X
    km = KMeans(3, metric="manhattan", init=X[start], tol=0).fit(Xin)
    np.testing.assert_allclose(km.cluster_centers_, expected_centers, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(km.labels_), expected_labels)
    objective = np.abs(X - expected_centers[expected_labels]).sum()
    assert km.inertia_ == pytest.approx(objective, rel=1e-12)
    assert km.score(X) == pytest.approx(-objective, rel=1e-12)
    np.testing.assert_allclose(km.transform(X[:5]),
                               np.abs(X[:5, None] - expected_centers[None]).sum(2), rtol=1e-6)


def test_weights_equal_repeated_rows(data):
    X, start = data
    counts = np.random.default_rng(1).integers(0, 3, size=len(X))
    weighted = KMeans(3, metric="manhattan", init=X[start], tol=0).fit(X, sample_weight=counts)
    repeated = KMeans(3, metric="manhattan", init=X[start], tol=0).fit(np.repeat(X, counts, 0))
    np.testing.assert_array_equal(weighted.cluster_centers_, repeated.cluster_centers_)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-12)


def test_robust_to_an_outlier():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(0, 1, size=(200, 2)), rng.normal(10, 1, size=(200, 2)),
                   [[1e4, 1e4]]])
    init = np.array([[0.0, 0.0], [10.0, 10.0]])
    means = KMeans(2, init=init).fit(X).cluster_centers_
    medians = KMeans(2, metric="manhattan", init=init).fit(X).cluster_centers_
    assert np.abs(means[1] - 10).max() > 20  # the mean is dragged off by one row
    assert np.abs(medians[1] - 10).max() < 0.5
    assert np.abs(medians[0]).max() < 0.5


def test_default_seeding_and_what_is_not_defined(data):
    X, _ = data
    km = KMeans(3, metric="manhattan", random_state=0).fit(X)
    assert sorted(np.bincount(km.labels_)) == pytest.approx([1500] * 3, abs=30)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    for call in (lambda: km.ambiguity(X), lambda: km.predict_proba(X),
                 lambda: km.farthest(X)):
        with pytest.raises(InvalidParameterError, match="not 'manhattan'"):
            call()


@pytest.mark.cluster
def test_same_on_a_two_process_cluster(data):
    distributed = pytest.importorskip("distributed")
    X, start = data
    local = KMeans(3, metric="manhattan", init=X[start], tol=0).fit(X)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster):
        remote = KMeans(3, metric="manhattan", init=X[start], tol=0).fit(
            da.from_array(X, chunks=(800, 3)))
        np.testing.assert_array_equal(remote.cluster_centers_, local.cluster_centers_)
        assert remote.inertia_ == pytest.approx(local.inertia_, rel=1e-12)
