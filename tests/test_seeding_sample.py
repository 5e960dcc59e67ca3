"""Seeding on a sample drawn in the scan pass (``init_size``), and the
streamed fit's passes: what a fit reads, and that the sample changes neither
the answer on clustered data nor its independence of chunking."""

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import zarr
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dkmeans import InvalidParameterError, KMeans
from dkmeans.algorithms.fit import seeding_sample_size
from dkmeans.data import as_dataset
from dkmeans.runner import report_progress


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(40_000, n_features=6, centers=8, cluster_std=1.0, random_state=3)
    return X.astype(np.float32), y


def passes_of(fit, blocks):
    """The names of the passes ``fit()`` runs over data of ``blocks`` blocks,
    in order (passes over an in-memory sample are one block)."""
    names = []

    def count(name, done, total):
        if done == total == blocks:
            names.append(name)

    with report_progress(count):
        fit()
    return names


@pytest.mark.parametrize("shape,dtype,k,init_size,expected", [
    ((2_000_000, 32), np.float32, 16, "auto", 131_072),
    ((1_048_576, 8), np.float32, 16, "auto", 131_072),
    ((1_048_575, 8), np.float32, 16, "auto", None),      # under 8 x the sample
    ((3_000_000, 8), np.float32, 2_000, "auto", 256_000),  # 128 x k
    ((2_000_000, 4_096), np.float64, 16, "auto", 8_192),   # 256 MB of rows
    ((2_000_000, 4_096), np.float64, 1_000, "auto", None),  # too few rows per center
    ((10_000, 4), np.float64, 8, 5_000, 5_000),
    ((10_000, 4), np.float64, 8, 10_000, None),
    ((10_000_000, 4), np.float64, 8, None, None),
])
def test_sample_size_by_hand(shape, dtype, k, init_size, expected):
    X = da.zeros(shape, dtype=dtype, chunks=(min(shape[0], 65_536), shape[1]))
    assert seeding_sample_size(init_size, as_dataset(X), k) == expected


def test_sampled_seeding_reads_the_data_once_and_finds_the_blobs(blobs):
    X, y = blobs
    Xd = da.from_array(X, chunks=(2_500, 6))
    sampled = KMeans(8, init_size=4_000, random_state=0)
    names = passes_of(lambda: sampled.fit(Xd), 16)
    # the scan draws the sample; no seeding pass reads the data
    assert names[0] == "dkmeans-scan"
    assert not [n for n in names if "seed" in n or "draw" in n or "candidate" in n]
    assert names.count("dkmeans-lloyd") == sampled.n_iter_
    full = KMeans(8, init_size=None, random_state=0)
    full_names = passes_of(lambda: full.fit(Xd), 16)
    assert full_names.count("dkmeans-seed-round") == 5
    # the same clustering as seeding over all rows (blobs touch: a few rows
    # between two are the true label's neighbour's)
    labels = sampled.labels_.compute()
    assert adjusted_rand_score(full.labels_.compute(), labels) == 1.0
    assert adjusted_rand_score(y, labels) > 0.999
    assert sampled.inertia_ == pytest.approx(full.inertia_, rel=1e-9)
    best = SKKMeans(8, n_init=10, random_state=0).fit(X)
    assert sampled.inertia_ <= 1.0001 * best.inertia_


def test_sampled_seeding_does_not_depend_on_chunking_or_streaming(blobs, tmp_path):
    X, _ = blobs
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(3_333, 6))
    z[:] = X
    fits = [KMeans(8, init_size=3_000, random_state=5, **kw).fit(data) for data, kw in (
        (da.from_array(X, chunks=(1_000, 6)), {}),
        (da.from_array(X, chunks=(7_001, 6)), {}),
        (z, {"persist": False}))]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.cluster_centers_, fits[0].cluster_centers_)
    assert fits[1].n_iter_ == fits[0].n_iter_ == fits[2].n_iter_


def test_streamed_fit_ends_without_a_pass_after_unchanged_labels(blobs, tmp_path):
    X, _ = blobs
    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=X.shape, dtype=X.dtype,
                          chunks=(4_000, 6))
    z[:] = X
    km = KMeans(8, init_size=4_000, random_state=0, tol=0, persist=False)
    names = passes_of(lambda: km.fit(da.from_zarr(z)), 10)  # read each pass
    # scan + one pass per iteration: the last changed no label, so its
    # assignment is the final one
    assert names == ["dkmeans-scan"] + ["dkmeans-lloyd"] * km.n_iter_
    d2 = ((X[:, None, :].astype(np.float64) - km.cluster_centers_[None]) ** 2).sum(-1)
    assert km.inertia_ == pytest.approx(d2.min(axis=1).sum(), rel=1e-6)
    np.testing.assert_array_equal(km.labels_.compute(), d2.argmin(axis=1))
    held = KMeans(8, init_size=4_000, random_state=0, tol=0, persist=True).fit(z)
    np.testing.assert_array_equal(held.cluster_centers_, km.cluster_centers_)
    assert held.inertia_ == pytest.approx(km.inertia_, rel=1e-12)


@pytest.mark.parametrize("bad", [0, -5, 2.5, "all", True])
def test_bad_init_size_is_named(blobs, bad):
    with pytest.raises(InvalidParameterError, match="init_size"):
        KMeans(8, init_size=bad).fit(blobs[0][:100])


def _lazy_csr(n, d, per_row, block):
    """A dask array of ``n`` CSR rows with ``per_row`` non-zeros each, never
    made whole: only the blocks a computation asks for are built."""
    def make(block_info=None):
        (lo, hi), _ = block_info[None]["array-location"]
        rng = np.random.default_rng(lo)
        rows = hi - lo
        cols = np.sort(rng.integers(0, d, (rows, per_row)), axis=1).ravel()
        return sp.csr_matrix((rng.random(rows * per_row), cols,
                              np.arange(0, rows * per_row + 1, per_row)), shape=(rows, d))

    chunks = ((block,) * (n // block), (d,))
    return da.map_blocks(make, chunks=chunks, dtype=np.float64, meta=sp.csr_matrix((0, 0)))


@pytest.mark.parametrize("n,k,expected", [
    (2_000_000, 50, 131_072),   # CSR rows of 15 non-zeros: 180 bytes, not 160,000
    (1_000_000, 50, None),      # under 8 x the sample
    (4_000_000, 2_000, 256_000),
])
def test_sparse_sample_size_is_by_its_non_zeros(n, k, expected):
    X = _lazy_csr(n, 20_000, 15, 250_000)
    assert seeding_sample_size("auto", as_dataset(X), k) == expected


def test_sampled_seeding_of_sparse_rows_reads_the_data_once():
    rng = np.random.default_rng(0)
    centers = sp.random(6, 3_000, density=0.01, random_state=1, format="csr") * 20
    y = rng.integers(0, 6, 12_000)
    noise = sp.random(12_000, 3_000, density=0.002, random_state=2, format="csr")
    X = (centers[y] + noise).tocsr()
    Xd = da.from_array(X, chunks=(1_500, 3_000), asarray=False)
    sampled = KMeans(6, init_size=2_000, random_state=0)
    names = passes_of(lambda: sampled.fit(Xd), 8)
    assert names[0] == "dkmeans-scan"
    assert not [n for n in names if "seed" in n or "draw" in n or "candidate" in n]
    full = KMeans(6, init_size=None, random_state=0).fit(Xd)
    assert adjusted_rand_score(y, sampled.labels_.compute()) == 1.0
    assert sampled.inertia_ == pytest.approx(full.inertia_, rel=1e-9)
