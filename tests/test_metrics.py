"""dkmeans.evaluate.metrics against sklearn.metrics on data that fits in memory."""

import dask.array as da
import numpy as np
import pytest
import sklearn.metrics as skm

from dkmeans import KMeans, metrics
from dkmeans.errors import InvalidInputError


@pytest.fixture(scope="module")
def clustered(blobs):
    X, y = blobs
    labels = KMeans(6, random_state=0).fit(X).labels_
    return X, y, labels


def chunked(a, rows=333):
    return da.from_array(a, chunks=(rows, *a.shape[1:]))


@pytest.mark.parametrize("as_dask", [False, True])
@pytest.mark.parametrize("name", ["calinski_harabasz_score", "davies_bouldin_score"])
def test_cluster_scores_match_scikit_learn(clustered, name, as_dask):
    X, _y, labels = clustered
    # arbitrary integer label values, not only 0..k-1
    odd = np.array([7, -3, 12, 40, 5, 0])[labels]
    ref = getattr(skm, name)(X, odd)
    ours = getattr(metrics, name)(chunked(X) if as_dask else X,
                                  chunked(odd) if as_dask else odd)
    assert ours == pytest.approx(ref, rel=1e-6)


def test_calinski_harabasz_is_stable_far_from_the_origin(clustered):
    # the per-cluster moments are merged pairwise, not from raw sums of squares
    X, _, labels = clustered
    shifted = X + 1e7
    assert metrics.calinski_harabasz_score(chunked(shifted, 100), labels) == pytest.approx(
        skm.calinski_harabasz_score(X, labels), rel=1e-6)


def test_silhouette_is_exact_on_the_whole_data_and_estimated_on_a_sample(clustered):
    X, _, labels = clustered
    score = metrics.silhouette_score(chunked(X), labels, sample_size=len(X))
    assert type(score) is float  # as scikit-learn's
    assert score == pytest.approx(skm.silhouette_score(X, labels), rel=1e-6)
    full = metrics.silhouette_estimate(chunked(X), labels, sample_size=len(X))
    assert full.score == score and full.sample_size == len(X)
    est = metrics.silhouette_estimate(chunked(X), labels, sample_size=300, random_state=1)
    assert est.sample_size == 300
    assert abs(est.score - full.score) < 4 * est.stderr
    # the sample is uniform: the same seed gives the same estimate on any chunking
    again = metrics.silhouette_estimate(chunked(X, 700), labels, sample_size=300,
                                        random_state=1)
    assert again.score == est.score
    # random_state=None draws a new sample each call (scikit-learn's meaning), not seed 0
    draws = {metrics.silhouette_score(chunked(X), labels, sample_size=50) for _ in range(4)}
    assert len(draws) > 1


@pytest.mark.parametrize("name", ["adjusted_rand_score", "normalized_mutual_info_score",
                                  "v_measure_score"])
def test_label_agreement_matches_scikit_learn(clustered, name):
    _X, y, labels = clustered
    rng = np.random.default_rng(0)
    noisy = np.where(rng.random(len(y)) < 0.2, rng.integers(0, 9, len(y)), labels)
    for true, pred in [(y, labels), (y, noisy), (noisy, y + 100), (y, np.zeros_like(y))]:
        ref = getattr(skm, name)(true, pred)
        assert getattr(metrics, name)(chunked(true, 150), chunked(pred, 150)) == \
            pytest.approx(ref, rel=1e-6, abs=1e-12)


def test_contingency_matrix_matches_scikit_learn(clustered):
    _, y, labels = clustered
    classes, _clusters, table = metrics.contingency_matrix(chunked(y, 77), labels)
    np.testing.assert_array_equal(table, skm.cluster.contingency_matrix(y, labels))
    np.testing.assert_array_equal(classes, np.unique(y))


def test_inertia_matches_the_estimator(clustered):
    X, _, _ = clustered
    km = KMeans(6, random_state=0).fit(X)
    assert metrics.inertia(chunked(X), km.cluster_centers_) == pytest.approx(km.inertia_,
                                                                             rel=1e-9)
    w = np.random.default_rng(0).uniform(0, 2, len(X))
    assert metrics.inertia(X, km.cluster_centers_, sample_weight=w) == pytest.approx(
        -km.score(X, sample_weight=w), rel=1e-9)


def test_bad_labels_are_named(clustered):
    X, _, labels = clustered
    with pytest.raises(InvalidInputError, match=r"labels has shape \(10,\); expected"):
        metrics.calinski_harabasz_score(X, labels[:10])
    with pytest.raises(InvalidInputError, match="Number of labels is 1"):
        metrics.davies_bouldin_score(X, np.zeros(len(X), int))
    with pytest.raises(InvalidInputError, match="integer labels"):
        metrics.calinski_harabasz_score(X, labels.astype(float))
