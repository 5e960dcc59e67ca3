"""KMeans behaviour: hand-computed toys, scikit-learn parity and invariances."""

import pickle

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import ConvergenceWarning

from dkmeans import INIT_METHODS, InvalidParameterError, KMeans


def as_kind(X, kind, tmp_path, rows=None):
    """X as numpy, a dask array with ``rows`` per chunk, or a Zarr array on disk."""
    if kind == "numpy":
        return X
    if kind == "dask":
        return da.from_array(X, chunks=(rows or 250, X.shape[1]))
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(rows or 250, X.shape[1]))
    z[:] = X
    return z


# -------------------------------------------------------------- hand-computed


def test_weighted_toy_by_hand():
    # Two iterations: the second finds the same labels (shift exactly 0).
    X = np.array([[0, 0], [0.5, 0], [0.5, 1], [1, 1]])
    km = KMeans(2, init=np.array([[0, 0], [1, 1]]), tol=0).fit(X, sample_weight=[3, 1, 1, 3])
    np.testing.assert_array_equal(km.labels_, [0, 0, 1, 1])
    np.testing.assert_allclose(km.cluster_centers_, [[0.125, 0], [0.875, 1]])
    assert km.inertia_ == pytest.approx(0.375)
    assert km.n_iter_ == 2
    # each iteration's inertia, before its update: the seeding's 0.5, then 0.375
    np.testing.assert_allclose(km.inertia_history_, [0.5, 0.375])


def test_empty_clusters_move_to_farthest_points():
    # All three centers start on -10: everything joins cluster 0, clusters 1
    # and 2 are empty and move to the two farthest points, 10 then 9.5.
    X = np.array([-10.0, -9.5, -9, -8.5, -8, -1, 1, 9, 9.5, 10]).reshape(-1, 1)
    km = KMeans(3, init=np.full((3, 1), -10.0), tol=0, max_iter=1).fit(X)
    np.testing.assert_allclose(km.cluster_centers_.ravel(), [-36 / 8, 10, 9.5])
    np.testing.assert_array_equal(km.labels_, [0, 0, 0, 0, 0, 0, 0, 2, 2, 1])
    np.testing.assert_array_equal(km.labels_, km.predict(X))

    km = KMeans(3, init=np.full((3, 1), -10.0), tol=0).fit(X)
    np.testing.assert_allclose(km.cluster_centers_.ravel(), [-45 / 7, 10, 9.25])
    np.testing.assert_array_equal(km.labels_, [0, 0, 0, 0, 0, 0, 0, 2, 2, 1])
    assert km.n_iter_ == 3
    assert km.inertia_ == pytest.approx(409.625 - 2025 / 7)
    np.testing.assert_array_equal(km.labels_, km.predict(X))


def test_relocation_matches_sklearn_sums():
    X = np.array([-10.0, -9.5, -9, -8.5, -8, -1, 1, 9, 9.5, 10]).reshape(-1, 1)
    init = np.full((3, 1), -10.0)
    ours = KMeans(3, init=init, tol=0).fit(X)
    ref = SKKMeans(3, init=init, n_init=1, tol=0).fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_)
    assert ours.n_iter_ == ref.n_iter_


# ------------------------------------------------------- parity with sklearn


@pytest.fixture(scope="module")
def overlapping():
    """Blobs that overlap, so Lloyd takes many iterations."""
    X, _ = make_blobs(3000, centers=8, n_features=4, cluster_std=2.5, random_state=3)
    return X


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-6), (np.float32, 1e-4)])
@pytest.mark.parametrize("kind,rows", [("numpy", None), ("dask", 3000), ("dask", 333),
                                       ("dask", 100), ("zarr", 256), ("zarr", 1000)])
def test_parity_with_sklearn_from_same_centers(overlapping, tmp_path, dtype, rtol, kind, rows):
    X = overlapping.astype(dtype)
    init = X[[0, 10, 20, 30, 40, 50, 60, 70]]
    ref = SKKMeans(8, init=init, n_init=1).fit(X)
    km = KMeans(8, init=init).fit(as_kind(X, kind, tmp_path, rows))
    assert ref.n_iter_ > 5
    assert km.n_iter_ == ref.n_iter_
    labels = np.asarray(km.labels_) if kind == "numpy" else km.labels_.compute()
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=rtol)
    assert km.inertia_ == pytest.approx(ref.inertia_, rel=rtol)
    assert km.cluster_centers_.dtype == dtype


def test_tol_is_relative_to_the_data_scale(overlapping):
    init = overlapping[:8]
    a = KMeans(8, init=init, tol=1e-2).fit(overlapping)
    b = KMeans(8, init=init * 1000, tol=1e-2).fit(overlapping * 1000)
    ref = SKKMeans(8, init=init, n_init=1, tol=1e-2).fit(overlapping)
    assert a.n_iter_ == b.n_iter_ == ref.n_iter_
    assert a.n_iter_ < KMeans(8, init=init, tol=0).fit(overlapping).n_iter_


# --------------------------------------------------------------- invariances


def test_weighted_equals_repeated_rows(overlapping, rng):
    w = rng.integers(1, 4, size=len(overlapping))
    init = overlapping[:8]
    weighted = KMeans(8, init=init, tol=0).fit(overlapping, sample_weight=w)
    repeated = KMeans(8, init=init, tol=0).fit(np.repeat(overlapping, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_,
                               rtol=1e-10)
    assert weighted.n_iter_ == repeated.n_iter_
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-10)


@pytest.mark.parametrize("init", sorted(INIT_METHODS))
def test_unit_weights_equal_no_weights(blobs, init):
    X, _ = blobs
    a = KMeans(6, init=init, random_state=1).fit(X)
    b = KMeans(6, init=init, random_state=1).fit(X, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_


def test_float32_agrees_with_float64(blobs):
    X, _ = blobs
    a = KMeans(6, random_state=0).fit(X)
    b = KMeans(6, random_state=0).fit(X.astype(np.float32))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert b.cluster_centers_.dtype == np.float32
    assert b.transform(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-4)


def test_integers_become_float64():
    X = np.array([[0, 0], [0, 1], [10, 10], [10, 11]])
    km = KMeans(2, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float64


def test_inputs_are_never_mutated(overlapping, rng):
    X = overlapping.astype(np.float32)
    w = rng.uniform(0.5, 2, size=len(X))
    init = X[:8].copy()
    X0, w0, init0 = X.copy(), w.copy(), init.copy()
    KMeans(8, init=init).fit(X, sample_weight=w).predict(X)
    KMeans(8, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(init, init0)


@pytest.mark.parametrize("init", sorted(INIT_METHODS))
def test_seeded_result_does_not_depend_on_chunking(overlapping, init):
    # Random draws are keyed by the global row, not the chunk.
    fits = [KMeans(8, init=init, random_state=5, n_init=1).fit(
        da.from_array(overlapping, chunks=(rows, 4))) for rows in (3000, 700, 128)]
    for km in fits[1:]:
        np.testing.assert_allclose(km.cluster_centers_, fits[0].cluster_centers_,
                                   rtol=1e-10)
        assert km.n_iter_ == fits[0].n_iter_


def test_same_seed_same_result_other_seed_differs(overlapping):
    a = KMeans(8, random_state=3).fit(overlapping)
    b = KMeans(8, random_state=3).fit(overlapping)
    c = KMeans(8, random_state=4).fit(overlapping)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_same_result_on_every_local_scheduler(overlapping):
    X = da.from_array(overlapping, chunks=(500, 4))
    results = []
    for scheduler in ("threads", "sync"):
        with dask.config.set(scheduler=scheduler):
            results.append(KMeans(8, random_state=0).fit(X).cluster_centers_)
    np.testing.assert_array_equal(results[0], results[1])


def test_streaming_equals_persisted(overlapping, tmp_path):
    z = as_kind(overlapping, "zarr", tmp_path, 400)
    a = KMeans(8, random_state=0, persist=True).fit(z)
    b = KMeans(8, random_state=0, persist=False).fit(z)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_.compute(), b.labels_.compute())


def test_inertia_history_never_increases(overlapping):
    km = KMeans(8, init="random", n_init=1, random_state=0, tol=0).fit(overlapping)
    h = km.inertia_history_
    assert len(h) == km.n_iter_
    # tol=0: the last iteration changed nothing, so the final assignment's
    # inertia is the last iteration's (summed by another kernel: to rounding)
    assert km.inertia_ == pytest.approx(h[-1], rel=1e-12)
    assert np.all(np.diff(h) <= 1e-9 * h[0])


# ------------------------------------------------------------------- quality


def _median_inertia_ratio(X, k, seeds):
    ours = [KMeans(k, random_state=s).fit(X).inertia_ for s in seeds]
    ref = [SKKMeans(k, n_init=1, random_state=s).fit(X).inertia_ for s in seeds]
    return np.median(ours) / np.median(ref)


def test_kmeans_parallel_quality_on_blobs():
    X, _ = make_blobs(6000, centers=20, n_features=8, cluster_std=1.5, random_state=0)
    assert _median_inertia_ratio(X, 20, range(5)) <= 1.01


def test_kmeans_parallel_quality_on_digits():
    X = load_digits().data
    assert _median_inertia_ratio(X, 10, range(7)) <= 1.01


@pytest.mark.parametrize("init", sorted(INIT_METHODS))
def test_every_init_method_finds_the_blobs(blobs, init):
    X, _ = blobs
    km = KMeans(6, init=init, random_state=0).fit(X)
    best = SKKMeans(6, n_init=10, random_state=0).fit(X).inertia_
    assert km.inertia_ <= 1.05 * best
    assert km.cluster_centers_.shape == (6, 5)


def test_n_init_auto():
    assert KMeans()._resolve_n_init() == 1
    assert KMeans(init="k-means++")._resolve_n_init() == 1
    assert KMeans(init="random")._resolve_n_init() == 10
    assert KMeans(init=lambda X, k, rs: X[:k])._resolve_n_init() == 10
    assert KMeans(init="random", n_init=3)._resolve_n_init() == 3


def test_more_runs_never_worse(overlapping):
    one = KMeans(8, init="random", n_init=1, random_state=0).fit(overlapping)
    many = KMeans(8, init="random", n_init=6, random_state=0).fit(overlapping)
    assert many.inertia_ <= one.inertia_


def test_callable_init_gets_data_and_random_state(overlapping):
    seen = {}

    def init(X, k, random_state):
        seen["type"], seen["rs"] = type(X), random_state
        return X[:k]

    km = KMeans(8, init=init, n_init=1).fit(overlapping)
    ref = KMeans(8, init=overlapping[:8]).fit(overlapping)
    np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    assert seen["type"] is np.ndarray
    assert isinstance(seen["rs"], np.random.RandomState)


def test_fewer_distinct_points_than_clusters_warns():
    X = np.array([[0.0, 0], [0, 0], [1, 1], [1, 1], [1, 1]])
    with pytest.warns(ConvergenceWarning, match="Number of distinct clusters"):
        km = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    assert km.inertia_ == 0
    assert np.isfinite(km.cluster_centers_).all()


# ------------------------------------------------------------ fitted model


@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr"])
def test_methods_return_numpy_or_lazy_dask(blobs, tmp_path, kind):
    X, _ = blobs
    Xk = as_kind(X, kind, tmp_path)
    km = KMeans(6, random_state=0).fit(Xk)
    lazy = kind != "numpy"
    for out in (km.labels_, km.predict(Xk), km.transform(Xk), km.fit_predict(Xk),
                km.fit_transform(Xk)):
        assert isinstance(out, da.Array) == lazy
        assert isinstance(out, np.ndarray) != lazy
    assert km.labels_.dtype == np.int32
    labels = np.asarray(km.labels_) if not lazy else km.labels_.compute()
    np.testing.assert_array_equal(labels, np.asarray(km.predict(X)))
    assert isinstance(km.score(Xk), float)


def test_score_is_negative_weighted_inertia(blobs, rng):
    X, _ = blobs
    w = rng.uniform(0, 3, size=len(X))
    km = KMeans(6, random_state=0).fit(X, sample_weight=w)
    assert km.score(X, sample_weight=w) == pytest.approx(-km.inertia_, rel=1e-10)
    d = km.transform(X).min(axis=1)
    assert km.score(X) == pytest.approx(-(d**2).sum(), rel=1e-9)


def test_fit_from_zarr_path(blobs, tmp_path):
    X, _ = blobs
    z = as_kind(X, "zarr", tmp_path)
    a = KMeans(6, random_state=0).fit(str(tmp_path / "X.zarr"))
    b = KMeans(6, random_state=0).fit(z)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_pickle_size_does_not_grow_with_n(rng):
    sizes = {}
    for n in (1_000, 100_000):
        X = rng.normal(size=(n, 4))
        km = KMeans(5, random_state=0).fit(X)
        blob = pickle.dumps(km)
        # k x d centers plus one float per iteration; labels_ (n ints) stays out
        sizes[n] = len(blob) - 8 * km.n_iter_
        assert len(blob) < 2048 + 8 * km.n_iter_
        again = pickle.loads(blob)
        assert not hasattr(again, "labels_")
        np.testing.assert_array_equal(again.cluster_centers_, km.cluster_centers_)
        np.testing.assert_array_equal(again.predict(X[:100]), km.predict(X[:100]))
    assert abs(sizes[100_000] - sizes[1_000]) < 64, sizes


def test_pickle_of_chunked_fit_holds_no_graph(blobs):
    X, _ = blobs
    km = KMeans(6, random_state=0).fit(da.from_array(X, chunks=200))
    assert len(pickle.dumps(km)) < 4096


@pytest.mark.parametrize("seed", range(5))
def test_bounds_change_nothing(seed):
    # Lloyd keeping per-row bounds (persisted data) against searching every
    # row each iteration (streamed data): the very same run.
    from dkmeans.algorithms.lloyd import lloyd
    from dkmeans.data import as_dataset

    rng = np.random.default_rng(seed)
    X, _ = make_blobs(3000, centers=int(rng.integers(2, 12)), n_features=int(rng.integers(1, 9)),
                      cluster_std=float(rng.uniform(0.5, 4)), random_state=seed)
    X = X.astype(rng.choice([np.float32, np.float64]))
    blocks = as_dataset(da.from_array(X, chunks=(700, -1))).persist().blocks()
    init = X[rng.choice(3000, 8, replace=False)]
    plain = lloyd(blocks, init, tol=0)
    bounded = lloyd(blocks, init, tol=0, keep_bounds=True)
    assert bounded.n_iter == plain.n_iter
    np.testing.assert_array_equal(bounded.centers, plain.centers)
    np.testing.assert_array_equal(bounded.inertia_history, plain.inertia_history)


def test_hamerly_gives_the_same_fit(overlapping):
    init = overlapping[:8]
    plain = KMeans(8, init=init, tol=0).fit(overlapping)
    hamerly = KMeans(8, init=init, tol=0, algorithm="hamerly").fit(overlapping)
    assert hamerly.n_iter_ == plain.n_iter_ > 10
    np.testing.assert_array_equal(hamerly.cluster_centers_, plain.cluster_centers_)
    np.testing.assert_array_equal(hamerly.labels_, plain.labels_)


@pytest.mark.parametrize("stop_after", [1, 4, 9])
def test_resume_from_any_iteration_equals_uninterrupted(overlapping, stop_after):
    from dkmeans.algorithms.fit import fit_kmeans
    from dkmeans.data import as_dataset

    seen = []
    whole = fit_kmeans(as_dataset(overlapping), 8, init="k-means||", seed=3, tol=0,
                       on_iteration=seen.append)
    assert whole.n_iter > 9 and [p.n_iter for p in seen] == list(range(1, whole.n_iter + 1))
    resumed = fit_kmeans(as_dataset(overlapping), 8, init="k-means||", seed=3, tol=0,
                         start=seen[stop_after - 1])
    np.testing.assert_array_equal(resumed.centers, whole.centers)
    assert resumed.n_iter == whole.n_iter
    np.testing.assert_array_equal(resumed.inertia_history, whole.inertia_history)


def _with_a_tiny_cluster():
    """Three blobs of 1,000 rows and 6 rows far away: k-means with k=4 gives
    the 6 rows a cluster of their own."""
    rng = np.random.default_rng(0)
    blobs = [rng.normal(c, 1.0, size=(1000, 2)) for c in ((0, 0), (12, 0), (0, 12))]
    return np.vstack([*blobs, rng.normal((60, 60), 0.5, size=(6, 2))])


def test_min_cluster_size_splits_the_largest_cluster():
    X = _with_a_tiny_cluster()
    plain = KMeans(4, random_state=0).fit(X)
    assert np.bincount(plain.labels_).min() == 6  # the problem
    # off by default: the same fit, bit for bit
    off = KMeans(4, random_state=0, min_cluster_size=None).fit(X)
    np.testing.assert_array_equal(off.cluster_centers_, plain.cluster_centers_)
    for size in (100, 100 / len(X)):  # a weight, or a fraction of the total
        fixed = KMeans(4, random_state=0, min_cluster_size=size, tol=0).fit(X)
        counts = np.bincount(fixed.labels_, minlength=4)
        assert counts.min() >= 100, counts
        np.testing.assert_array_equal(fixed.labels_, fixed.predict(X))
        # a k-means fixed point (tol=0): every center is the mean of its rows
        for j in range(4):
            np.testing.assert_allclose(fixed.cluster_centers_[j],
                                       X[fixed.labels_ == j].mean(axis=0), rtol=1e-9)
    # the split draws by global row: chunked data gives the same fit
    chunked = KMeans(4, random_state=0, min_cluster_size=100, tol=0).fit(
        da.from_array(X, chunks=(700, 2)))
    np.testing.assert_allclose(chunked.cluster_centers_, fixed.cluster_centers_, rtol=1e-12)
    # weights count, not rows: the 6 rows weigh 100 each
    w = np.r_[np.ones(3000), np.full(6, 100.0)]
    weighted = KMeans(4, random_state=0, min_cluster_size=100).fit(X, sample_weight=w)
    assert np.bincount(weighted.labels_).min() == 6


def test_min_cluster_size_the_data_cannot_allow_warns():
    X = _with_a_tiny_cluster()
    with pytest.warns(ConvergenceWarning) as caught:
        km = KMeans(4, random_state=0, min_cluster_size=1000).fit(X)
    messages = " ".join(str(w.message) for w in caught)
    assert "more than the data's total weight" in messages
    assert "1 clusters weigh less than min_cluster_size (1000)" in messages
    assert np.bincount(km.labels_).min() < 1000
    with pytest.raises(InvalidParameterError, match="min_cluster_size"):
        KMeans(4, min_cluster_size=-1).fit(X)
