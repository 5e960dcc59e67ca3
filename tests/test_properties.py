"""Properties of Lloyd's algorithm on random small problems (hypothesis)."""

import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dkmeans import KMeans

# Random data often has fewer distinct rows than k: the warning for that is
# expected (and tested in test_kmeans.py), not a failure here.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# derandomize: CI tries the same examples on every run
SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, distinct=False):
    """Random data (n x d, values in a modest range) and k initial centers;
    with ``distinct``, no value repeats (so no two rows are equal)."""
    n = draw(st.integers(4, 60))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, min(n, 6)))
    X = draw(arrays(np.float64, (n, d), elements=st.floats(-100, 100, width=32),
                    unique=distinct))
    rows = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True))
    return X, X[rows].copy()


@SETTINGS
@given(problems())
def test_inertia_never_increases(problem):
    X, init = problem
    km = KMeans(len(init), init=init, tol=0, max_iter=50).fit(X)
    h = km.inertia_history_
    assert np.all(np.diff(h) <= 1e-9 * max(h[0], 1.0))


@SETTINGS
@given(problems())
def test_every_label_is_a_nearest_center(problem):
    X, init = problem
    km = KMeans(len(init), init=init, max_iter=20).fit(X)
    d2 = ((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    chosen = d2[np.arange(len(X)), km.labels_]
    np.testing.assert_allclose(chosen, d2.min(axis=1), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(km.labels_, km.predict(X))


@SETTINGS
@given(problems(distinct=True), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(problem, random):
    # Distinct rows: with duplicates, an empty cluster's relocation can tie
    # between rows, and ties go to the lower row index, by design.
    X, init = problem
    perm = np.array(random.sample(range(len(X)), len(X)))
    a = KMeans(len(init), init=init, tol=0, max_iter=30).fit(X)
    b = KMeans(len(init), init=init, tol=0, max_iter=30).fit(X[perm])
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-7, atol=1e-7)


@SETTINGS
@given(problems(), st.integers(1, 20))
def test_chunking_does_not_matter(problem, rows):
    X, init = problem
    a = KMeans(len(init), init=init, tol=0, max_iter=30).fit(X)
    b = KMeans(len(init), init=init, tol=0, max_iter=30).fit(
        da.from_array(X, chunks=(rows, X.shape[1])))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9, atol=1e-9)
    assert a.n_iter_ == b.n_iter_


@SETTINGS
@given(st.integers(2, 6), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_float32_and_float64_agree_on_separated_data(k, d, seed):
    rng = np.random.default_rng(seed)
    centers = rng.permutation(k)[:, None] * 100.0 + rng.uniform(-1, 1, (k, d))
    X = centers[rng.integers(k, size=200)] + rng.normal(scale=1.0, size=(200, d))
    init = centers + 0.5
    a = KMeans(k, init=init).fit(X)
    b = KMeans(k, init=init.astype(np.float32)).fit(X.astype(np.float32))
    np.testing.assert_array_equal(a.labels_, b.labels_)
