"""Stability over subsamples and seeds: the distributed ARI and Jaccard
against scikit-learn and numpy on the shared rows, and its invariants."""

from dataclasses import replace

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dkmeans import InvalidParameterError, stability
from dkmeans.kernels import nearest


@pytest.fixture(scope="module")
def blobs4():
    return make_blobs(4000, centers=4, n_features=3, random_state=0)[0]


def test_identical_runs_agree_completely(blobs4):
    r = stability(blobs4, 4, n_runs=3, subsample=1.0, resample_seeds=False)
    np.testing.assert_array_equal(r.ari, 1.0)
    np.testing.assert_array_equal(r.jaccard, 1.0)
    assert r.ari.shape == (3,) and r.records()[0]["jaccard"] == 1.0
    assert r.table()["jaccard"].iloc[0] == 1.0


def test_blobs_are_stable_and_noise_is_not(blobs4):
    blobs = stability(blobs4, 4, n_runs=5)
    noise = stability(np.random.default_rng(0).uniform(size=(4000, 3)), 4, n_runs=5)
    assert blobs.ari_mean > 0.95 and blobs.jaccard.min() > 0.95
    assert noise.ari_mean < 0.8 and noise.ari_mean < blobs.ari_mean - 0.2


def test_ari_and_jaccard_equal_brute_force_on_the_shared_rows(blobs4):
    """Overlapping blobs, so the runs disagree somewhat."""
    X = make_blobs(3000, centers=5, n_features=2, cluster_std=2.5, random_state=1)[0]
    r = stability(X, 5, n_runs=4, subsample=0.7)
    members = r.members(len(X))
    assert 0.6 < members.mean() < 0.8
    labels = [nearest(X, c)[0] for c in r.centers]
    pairs = [(a, b) for a in range(4) for b in range(a + 1, 4)]
    expected = [adjusted_rand_score(labels[a][members[a] & members[b]],
                                    labels[b][members[a] & members[b]]) for a, b in pairs]
    np.testing.assert_allclose(r.ari, expected, rtol=1e-12)
    assert r.ari.min() < 0.999  # the comparison is not trivial
    ref = nearest(X, r.reference)[0]
    jac = np.zeros((4, 5))
    for run in range(4):
        rows = members[run]
        for c in range(5):
            a = rows & (ref == c)
            jac[run, c] = max((a & (labels[run] == j)).sum()
                              / (a | (rows & (labels[run] == j))).sum() for j in range(5))
    np.testing.assert_allclose(r.jaccard, jac.mean(axis=0), rtol=1e-12)


def test_independent_of_chunking(blobs4):
    whole = stability(blobs4, 4, n_runs=3)
    chunked = stability(da.from_array(blobs4, chunks=(700, 3)), 4, n_runs=3)
    np.testing.assert_allclose(chunked.ari, whole.ari, rtol=1e-12)
    np.testing.assert_allclose(chunked.jaccard, whole.jaccard, rtol=1e-12)


def test_bad_parameters(blobs4):
    with pytest.raises(InvalidParameterError, match="n_runs"):
        stability(blobs4, 4, n_runs=1)
    with pytest.raises(InvalidParameterError, match="subsample"):
        stability(blobs4, 4, subsample=0)


def test_plot_returns_a_figure(blobs4):
    pytest.importorskip("matplotlib")
    fig = stability(blobs4, 4, n_runs=3).plot()
    assert len(fig.axes) == 2
    close = replace(stability(blobs4, 4, n_runs=3), ari=np.array([0.99991, 0.99993, 0.99999]))
    fig = close.plot()
    fig.canvas.draw()  # the offset text is set when the ticks are drawn
    assert fig.axes[0].xaxis.get_offset_text().get_text() == ""
