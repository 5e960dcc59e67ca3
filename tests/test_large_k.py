"""Large k: ``train_size`` (seed and iterate on a sample, then assign every
row), against numpy brute force and the full fit."""

import dask.array as da
import numpy as np
import pytest

from dkmeans import InvalidParameterError, KMeans
from dkmeans.algorithms import seeding
from dkmeans.data.datasets import make_blobs


def brute_force(X, centers):
    d2 = ((X[:, None, :].astype(np.float64) - centers[None].astype(np.float64)) ** 2).sum(-1)
    return d2.argmin(1), d2.min(1).sum()


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(12_000, 6, 40, std=0.5, seed=3, chunk_rows=12_000)
    return np.asarray(X.compute(), dtype=np.float64)


@pytest.mark.parametrize("train_size", [0.25, 3_000])
def test_trained_on_a_sample_labels_and_inertia_are_over_every_row(blobs, train_size):
    km = KMeans(40, random_state=0, train_size=train_size).fit(blobs)
    labels, inertia = brute_force(blobs, km.cluster_centers_)
    np.testing.assert_array_equal(km.labels_, labels)
    assert km.inertia_ == pytest.approx(inertia, rel=1e-9)
    assert km.n_iter_ >= 1 and len(km.inertia_history_) == km.n_iter_
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)


def test_a_sample_of_well_separated_blobs_finds_the_full_fits_inertia(blobs):
    full = KMeans(40, random_state=0).fit(blobs)
    sampled = KMeans(40, random_state=0, train_size=0.25).fit(blobs)
    assert full.inertia_ <= sampled.inertia_ <= 1.02 * full.inertia_


def test_train_size_not_smaller_than_the_data_is_the_full_fit(blobs):
    full = KMeans(40, random_state=0).fit(blobs)
    same = KMeans(40, random_state=0, train_size=len(blobs)).fit(blobs)
    np.testing.assert_array_equal(full.cluster_centers_, same.cluster_centers_)
    assert full.n_iter_ == same.n_iter_


def test_the_sample_does_not_depend_on_chunking(blobs):
    one = KMeans(40, random_state=1, train_size=0.3).fit(blobs)
    chunked = KMeans(40, random_state=1, train_size=0.3).fit(da.from_array(blobs, chunks=1_700))
    np.testing.assert_allclose(chunked.cluster_centers_, one.cluster_centers_, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(chunked.labels_), one.labels_)


def test_cosine_on_a_sample_gives_unit_centers(blobs):
    km = KMeans(10, metric="cosine", random_state=0, train_size=0.3).fit(blobs)
    np.testing.assert_allclose(np.linalg.norm(km.cluster_centers_, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -5, 0.0, 1.5, True, "half"])
def test_a_bad_train_size_is_named(blobs, bad):
    with pytest.raises(InvalidParameterError, match="train_size"):
        KMeans(4, train_size=bad).fit(blobs[:100])


def test_a_sample_split_over_the_cores_gives_the_same_fit(blobs, monkeypatch):
    """Above SAMPLE_THREADED_VALUES the sample runs as blocks on threads;
    the passes' results do not depend on the blocks."""
    from dkmeans.algorithms import fit

    one = KMeans(40, random_state=2, train_size=0.3).fit(blobs)
    monkeypatch.setattr(fit, "SAMPLE_THREADED_VALUES", 1_000)
    monkeypatch.setattr(fit.os, "cpu_count", lambda: 3)
    assert len(fit.sample_blocks(blobs[:3_600])) == 6
    split = KMeans(40, random_state=2, train_size=0.3).fit(blobs)
    np.testing.assert_array_equal(split.cluster_centers_, one.cluster_centers_)
    np.testing.assert_array_equal(split.labels_, one.labels_)
    assert split.n_iter_ == one.n_iter_


def test_what_a_sampled_fit_cannot_do_is_refused_by_name(blobs, tmp_path):
    with pytest.raises(InvalidParameterError, match="train_size applies to"):
        KMeans(4, train_size=0.5, metric="manhattan").fit(blobs)
    from dkmeans.algorithms.fit import fit_kmeans
    from dkmeans.algorithms.lloyd import LloydProgress
    from dkmeans.data import as_dataset

    start = LloydProgress(2, blobs[:4].copy(), (1.0, 0.5), 0.5, 0.1, 0.0, False)
    with pytest.raises(InvalidParameterError, match="no checkpoints"):
        fit_kmeans(as_dataset(blobs), 4, init="k-means||", start=start, train_size=100)
    from _cli import run

    np.save(tmp_path / "X.npy", blobs)
    proc = run("fit", tmp_path / "X.npy", "-k", 4, "--train-size", "0.5", "--checkpoint-every",
               2, "-o", tmp_path / "m", check=False)
    assert proc.returncode == 2 and "--train-size fit keeps no checkpoints" in proc.stderr
    proc = run("fit", tmp_path / "X.npy", "-k", 4, "--train-size", "1.5", "-o", tmp_path / "m",
               check=False)
    assert proc.returncode == 2 and "(0, 1]" in proc.stderr


def test_a_minimum_cluster_size_holds_over_every_row_when_trained_on_a_sample():
    """min_cluster_size is a share of the data's weight: on the sample it is
    the same share of the sample's rows. In the data's units no cluster of
    the sample ever reached twice it, so small clusters were never split."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (5_000, 2)), rng.normal(12, 1, (5_000, 2)),
                        rng.normal((0, 12), 1, (1_900, 2)), rng.uniform(200, 300, (100, 2))])
    plain = KMeans(6, random_state=0, train_size=0.2).fit(X)
    assert (np.bincount(plain.labels_, minlength=6) < 0.05 * len(X)).sum() == 3
    # only the 100 far rows stay a cluster below 600 rows: they cannot be merged
    with pytest.warns(ConvergenceWarning, match="1 clusters weigh less"):
        km = KMeans(6, random_state=0, train_size=0.2, min_cluster_size=0.05).fit(X)
    counts = np.bincount(km.labels_, minlength=6)
    assert (counts < 0.05 * len(X)).sum() == 1 and counts.min() == 100, counts


def test_auto_rounds_are_three_from_1024_centers_and_five_below(monkeypatch):
    """``init_rounds="auto"``: 3 k-means|| rounds from k = 1,024 up, 5 below;
    a fit with it is the fit of those rounds (the threshold lowered here, so
    the fits stay small), not of the other count."""
    assert (seeding.init_rounds_for(1023), seeding.init_rounds_for(1024)) == (5, 3)
    monkeypatch.setattr(seeding, "LARGE_K", 30)
    X = np.random.default_rng(0).normal(size=(5_000, 3))
    for k, rounds, other in ((30, 3, 5), (29, 5, 3)):
        fits = [KMeans(k, random_state=0, max_iter=2, init_rounds=r).fit(X).cluster_centers_
                for r in ("auto", rounds, other)]
        np.testing.assert_array_equal(fits[0], fits[1])
        assert not np.array_equal(fits[0], fits[2])
