"""MiniBatchKMeans: the update rule against scikit-learn's, partial_fit
against fit, reassignment, early stopping, quality, and streaming input."""

import dask.array as da
import numpy as np
import pytest
import sklearn.cluster
import zarr

from dkmeans import KMeans, MiniBatchKMeans, kernels
from dkmeans.algorithms.fit_minibatch import init_from_sample
from dkmeans.algorithms.minibatch import MiniBatchState, StepRules, update_centers
from dkmeans.data.batches import epoch_batches


@pytest.fixture(scope="module")
def data(blobs):
    X, _ = blobs
    init = X[[0, 1, 2, 3, 4, 5]] + 0.5
    return X, init


@pytest.mark.parametrize("weighted", [False, True])
def test_update_rule_matches_scikit_learn(data, weighted):
    # same batches, same initial centers, no random reassignment: the same
    # centers after every step
    X, init = data
    rng = np.random.default_rng(0)
    ours = MiniBatchKMeans(6, init=init, reassignment_ratio=0, random_state=0)
    ref = sklearn.cluster.MiniBatchKMeans(6, init=init, n_init=1, reassignment_ratio=0,
                                          random_state=0)
    for _ in range(12):
        idx = rng.choice(len(X), 150, replace=False)
        w = rng.uniform(0.5, 2, size=150) if weighted else None
        ours.partial_fit(X[idx], sample_weight=w)
        ref.partial_fit(X[idx], sample_weight=w)
        np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(ours._state.counts, ref._counts, rtol=1e-12)
    assert ours.n_steps_ == ref.n_steps_ == 12
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


def test_update_rule_by_hand():
    # one center has seen weight 3 at (0, 0); a batch of weight 1 at (4, 0)
    # moves it by 1/4 of the way; the untouched center stays put
    state = MiniBatchState(np.array([[0.0, 0.0], [10.0, 10.0]]), np.array([3.0, 5.0]))
    new, inertia = update_centers(state, np.array([[4.0, 0.0]]), None,
                                  StepRules(reassignment_ratio=0))
    np.testing.assert_allclose(new.centers, [[1.0, 0.0], [10.0, 10.0]])
    np.testing.assert_allclose(new.counts, [4.0, 5.0])
    assert inertia == 16.0


def test_partial_fit_over_fits_batches_equals_fit(data):
    # replay the batches fit drew, in order, through partial_fit: same centers
    X, init = data
    X = np.ascontiguousarray(X)
    chunks = (300, 500, 200, 400, 600)
    params = dict(init=init, batch_size=128, max_iter=2, max_no_improvement=None,
                  reassignment_ratio=0.05, random_state=3, compute_labels=False)
    fitted = MiniBatchKMeans(6, **params).fit(da.from_array(X, chunks=(chunks, 5)))
    replay = MiniBatchKMeans(6, **params)
    for epoch in range(2):
        for idx in epoch_batches(chunks, 128, X.shape[1] * X.itemsize,
                                 fitted._seed_, epoch):
            replay.partial_fit(X[idx])
    np.testing.assert_array_equal(replay.cluster_centers_, fitted.cluster_centers_)
    assert replay.n_steps_ == fitted.n_steps_
    # every row went through exactly one batch per epoch
    rows = np.concatenate(epoch_batches(chunks, 128, 40, fitted._seed_, 0))
    np.testing.assert_array_equal(np.sort(rows), np.arange(len(X)))


def test_a_starved_center_moves_onto_a_batch_row():
    X = np.random.default_rng(0).normal(size=(200, 2))
    state = MiniBatchState(np.array([[0.0, 0.0], [1e6, 1e6]]), np.zeros(2))
    new, _ = update_centers(state, X, None, StepRules(reassignment_ratio=0.01, seed=1))
    assert new.n_reassigned == 1
    assert any(np.array_equal(new.centers[1], row) for row in X)
    # its count restarts at the smallest count kept, not at zero
    assert new.counts[1] == new.counts[0] == 200


def test_early_stopping_on_smoothed_inertia(data):
    X, _ = data
    km = MiniBatchKMeans(6, batch_size=64, max_iter=50, max_no_improvement=3,
                         random_state=0).fit(X)
    assert km.n_steps_ < 50 * len(X) / 64  # stopped before max_iter epochs
    assert km.n_iter_ < 50
    no_stop = MiniBatchKMeans(6, batch_size=64, max_iter=2, max_no_improvement=None,
                              random_state=0).fit(X)
    assert no_stop.n_steps_ == 2 * int(np.ceil(len(X) / 64))


def test_tol_stops_on_a_small_center_shift(data):
    X, _ = data
    km = MiniBatchKMeans(6, batch_size=100, max_iter=20, tol=1e-2, max_no_improvement=None,
                         random_state=0).fit(X)
    assert km.n_iter_ < 20


def test_quality_close_to_full_batch(data):
    X, _ = data
    full = KMeans(6, random_state=0).fit(X)
    mb = MiniBatchKMeans(6, batch_size=256, random_state=0).fit(X)
    assert mb.inertia_ <= 1.01 * full.inertia_
    np.testing.assert_array_equal(mb.labels_, mb.predict(X))
    assert mb.inertia_ == pytest.approx(-mb.score(X), rel=1e-9)


def test_inertia_without_labels_is_the_smoothed_batch_inertia(data):
    X, _ = data
    km = MiniBatchKMeans(6, batch_size=256, random_state=0, compute_labels=False).fit(X)
    assert not hasattr(km, "labels_")
    assert km.inertia_ == pytest.approx(-km.score(X), rel=0.2)


def test_streams_a_zarr_array_and_counts_the_passes(data, tmp_path):
    X, _ = data
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(250, 5))
    z[:] = X
    km = MiniBatchKMeans(6, batch_size=200, max_iter=2, max_no_improvement=None,
                         random_state=0).fit(str(tmp_path / "X.zarr"))
    # scan + 2 epochs + the labels pass
    assert km.n_passes_read_ == pytest.approx(4.0)
    assert isinstance(km.labels_, da.Array)
    np.testing.assert_array_equal(km.labels_.compute(), km.predict(X))
    again = MiniBatchKMeans(6, batch_size=200, max_iter=2, max_no_improvement=None,
                            random_state=0).fit(X)
    # the same seed and batches whatever the input type (numpy is re-chunked,
    # so compare quality rather than bits)
    assert again.inertia_ == pytest.approx(km.inertia_, rel=1e-3)


@pytest.mark.parametrize("init", ["k-means++", "k-means||"])
def test_every_init_gives_a_good_model(data, init):
    X, _ = data
    full = KMeans(6, random_state=0).fit(X)
    km = MiniBatchKMeans(6, init=init, batch_size=256, random_state=1).fit(X)
    assert km.inertia_ <= 1.01 * full.inertia_


def test_random_init_keeps_the_best_of_n_init_draws_of_sample_rows(rng):
    sample = rng.normal(size=(300, 3))
    best = init_from_sample(sample, 4, "random", 5, seed=0)
    assert all(any(np.array_equal(c, row) for row in sample) for c in best)
    singles = [init_from_sample(sample, 4, "random", 1, seed=s) for s in range(5)]
    inertia = [kernels.nearest(sample, c)[1].sum() for c in singles]
    assert kernels.nearest(sample, best)[1].sum() <= np.median(inertia)


def test_random_init_finds_two_separated_blobs(rng):
    X = np.concatenate([rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 20])
    km = MiniBatchKMeans(2, init="random", batch_size=100, random_state=0).fit(X)
    assert sorted(np.bincount(km.labels_)) == [500, 500]


def test_same_seed_same_centers(data):
    X, _ = data
    a = MiniBatchKMeans(6, random_state=5, batch_size=100).fit(X)
    b = MiniBatchKMeans(6, random_state=5, batch_size=100).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
