"""Scaling, imputation, cosine k-means and anomaly scores."""

import dask.array as da
import numpy as np
import pytest
import sklearn.preprocessing

import dkmeans
from dkmeans import KMeans
from dkmeans.data.preprocessing import StandardScaler
from dkmeans.errors import InvalidInputError, InvalidParameterError


@pytest.fixture(scope="module")
def skewed(blobs):
    X, _ = blobs
    return X * np.array([1, 1, 1, 1, 1000.0]) + np.array([0, 0, 0, 0, 1e6])


def test_scaler_matches_scikit_learn_in_one_pass(skewed):
    X = np.c_[skewed, np.full(len(skewed), 3.0)]  # plus a constant feature
    ours = StandardScaler().fit(da.from_array(X, chunks=(170, 6)))
    ref = sklearn.preprocessing.StandardScaler().fit(X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.var_, ref.var_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.scale_, ref.scale_, rtol=1e-9)
    assert ours.scale_[-1] == 1.0  # constant: centred, not divided by zero
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)), X, rtol=1e-12)


def test_scaler_ignores_nan_when_learning(rng):
    X = rng.normal(size=(500, 3))
    X[rng.random(X.shape) < 0.1] = np.nan
    s = StandardScaler().fit(da.from_array(X, chunks=(70, 3)))
    np.testing.assert_allclose(s.mean_, np.nanmean(X, axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.var_, np.nanvar(X, axis=0), rtol=1e-10)
    np.testing.assert_array_equal(s.n_samples_seen_, (~np.isnan(X)).sum(axis=0))


def test_scale_clusters_standardized_rows_and_reports_original_units(skewed):
    km = KMeans(6, random_state=0, scale=True).fit(skewed)
    ref_scaler = sklearn.preprocessing.StandardScaler().fit(skewed)
    Z = ref_scaler.transform(skewed)
    on_z = KMeans(6, random_state=0).fit(Z)
    np.testing.assert_allclose(ref_scaler.transform(km.cluster_centers_),
                               on_z.cluster_centers_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(km.labels_, on_z.labels_)
    np.testing.assert_array_equal(km.predict(skewed), on_z.predict(Z))
    # centers are in X's units: the mean of each cluster's rows
    for c in range(6):
        np.testing.assert_allclose(km.cluster_centers_[c],
                                   skewed[km.labels_ == c].mean(axis=0), rtol=1e-6)


def test_missing_values_error_by_default_and_are_imputed_on_request(blobs):
    X, _ = blobs
    holes = X.copy()
    holes[[3, 50, 700], [0, 2, 4]] = np.nan
    with pytest.raises(InvalidInputError, match="row 3"):
        KMeans(6, random_state=0).fit(holes)
    km = KMeans(6, random_state=0, missing="impute").fit(da.from_array(holes, chunks=300))
    filled = np.where(np.isnan(holes), np.nanmean(holes, axis=0), holes)
    ref = KMeans(6, random_state=0).fit(filled)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-9)
    # new rows with NaN get the training means too
    np.testing.assert_array_equal(km.predict(holes), ref.predict(filled))


def spherical_reference(X, centers, n_iter):
    """Brute-force spherical k-means: unit rows, argmax cosine, unit means."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    C = centers / np.linalg.norm(centers, axis=1, keepdims=True)
    for _ in range(n_iter):
        labels = np.argmax(U @ C.T, axis=1)
        sums = np.array([U[labels == j].sum(axis=0) for j in range(len(C))])
        C = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return C, labels


def test_cosine_matches_brute_force_spherical_kmeans(rng):
    directions = rng.normal(size=(5, 8))
    X = np.repeat(directions, 200, axis=0) * rng.uniform(0.1, 50, size=(1000, 1))
    X += rng.normal(scale=0.3, size=X.shape)
    init = X[rng.choice(len(X), 5, replace=False)]
    km = KMeans(5, init=init, metric="cosine", tol=0, max_iter=30).fit(
        da.from_array(X, chunks=(130, 8)))
    C, labels = spherical_reference(X, init, km.n_iter_)
    np.testing.assert_allclose(km.cluster_centers_, C, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(km.labels_.compute(), labels)
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_, axis=1), 1.0)
    # scale does not matter to cosine: every row times 10 gives the same model
    again = KMeans(5, init=init, metric="cosine", tol=0, max_iter=30).fit(10 * X)
    np.testing.assert_allclose(again.cluster_centers_, km.cluster_centers_, rtol=1e-9)


def test_scale_and_cosine_together_are_refused(blobs):
    with pytest.raises(InvalidParameterError, match="choose one"):
        KMeans(2, scale=True, metric="cosine").fit(blobs[0])


def test_anomaly_scores_and_farthest_rows(blobs):
    X, _ = blobs
    X = X.copy()
    X[[17, 1234]] += 40  # two planted outliers
    km = KMeans(6, random_state=0).fit(X)
    score = km.anomaly_score(X)
    ref = np.sqrt(((X[:, None] - km.cluster_centers_[None]) ** 2).sum(axis=2)).min(axis=1)
    np.testing.assert_allclose(score, ref, rtol=1e-9)
    far = km.farthest(da.from_array(X, chunks=(300, 5)), n=5)
    np.testing.assert_array_equal(far.index, np.argsort(-ref, kind="stable")[:5])
    assert set(far.index[:2]) == {17, 1234}
    np.testing.assert_array_equal(far.rows, X[far.index])
    np.testing.assert_allclose(far.distance, ref[far.index], rtol=1e-9)
    np.testing.assert_array_equal(far.labels, km.predict(X)[far.index])
    # with scaling, rows come back as given and distances in the scaled space
    scaled = KMeans(6, random_state=0, scale=True).fit(X)
    top = scaled.farthest(X, n=3)
    np.testing.assert_array_equal(top.rows, X[top.index])


def test_a_scaled_cosine_or_imputing_model_saves_and_loads(blobs, tmp_path):
    X, _ = blobs
    for i, km in enumerate([KMeans(4, random_state=0, scale=True, missing="impute"),
                            KMeans(4, random_state=0, metric="cosine")]):
        km.fit(X)
        km.save(tmp_path / f"m{i}")
        loaded = dkmeans.load(tmp_path / f"m{i}")
        np.testing.assert_array_equal(loaded.predict(X), km.predict(X))
        np.testing.assert_array_equal(loaded.cluster_centers_, km.cluster_centers_)
