"""Sparse input (issue 32): scipy.sparse matrices in memory and dask arrays
of CSR blocks, clustered without being made dense; against scikit-learn on
the same CSR and dkmeans on the same rows made dense."""

import os
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import zarr
from sklearn.cluster import KMeans as SKKMeans
from sklearn.preprocessing import normalize

import dkmeans
from dkmeans import KMeans, MiniBatchKMeans


@pytest.fixture(scope="module")
def text():
    """3,000 documents in 500 terms, ~12 terms each, around 4 topics (each
    topic favours its own terms), TF-IDF-like weights; a few empty rows."""
    rng = np.random.default_rng(0)
    topic = rng.integers(0, 4, 3_000)
    rows, cols = [], []
    for i, t in enumerate(topic):
        own = rng.integers(t * 100, t * 100 + 100, 8)
        common = rng.integers(0, 500, 4)
        cols.append(np.unique(np.r_[own, common]))
        rows.append(np.full(len(cols[-1]), i))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((rng.random(len(rows)) + 0.1, (rows, cols)), shape=(3_000, 500))
    X = X.tolil()
    X[[5, 900]] = 0
    return X.tocsr()


def _blocks(X, rows):
    return da.from_array(X, chunks=(rows, X.shape[1]), asarray=False)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_centers_as_scikit_learn_and_the_dense_fit_from_the_same_init(text, dtype,
                                                                            weighted):
    X = text.astype(dtype)
    init = X[[0, 1, 2, 3, 4, 6]].toarray()
    w = np.random.default_rng(1).random(X.shape[0]) + 0.5 if weighted else None
    kw = dict(init=init, n_init=1, tol=0, max_iter=30)
    sk = SKKMeans(6, **kw).fit(X, sample_weight=w)
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    for data in (X, _blocks(X, 700), X.toarray()):
        ours = KMeans(6, **kw).fit(data, sample_weight=w)
        np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=rtol,
                                   atol=rtol)
        assert ours.inertia_ == pytest.approx(sk.inertia_, rel=rtol)
        np.testing.assert_array_equal(np.asarray(ours.labels_), sk.labels_)
    km = KMeans(6, **kw).fit(X, sample_weight=w)
    np.testing.assert_array_equal(km.predict(X), sk.predict(X))
    np.testing.assert_allclose(km.transform(X), sk.transform(X), rtol=rtol, atol=rtol)
    assert km.score(X, sample_weight=w) == pytest.approx(sk.score(X, sample_weight=w),
                                                         rel=rtol)


def test_spherical_k_means_on_sparse_rows_equals_it_on_the_dense_rows(text):
    """metric='cosine' scales each row's non-zeros to unit length (never a
    dense row) and keeps unit centers: the same fit as on dense rows."""
    # dense starting directions: rows of X as centers leave many rows
    # orthogonal to several centers, exact ties that the oracle breaks otherwise
    init = normalize(np.vstack([np.asarray(text[t::4].mean(axis=0)) + 0.01 * t for t in range(4)]))
    dense = KMeans(4, init=init, n_init=1, metric="cosine").fit(text.toarray())
    for data in (text, _blocks(text, 500)):
        got = KMeans(4, init=init, n_init=1, metric="cosine").fit(data)
        np.testing.assert_allclose(got.cluster_centers_, dense.cluster_centers_, rtol=1e-9,
                                   atol=1e-12)
        assert got.n_iter_ == dense.n_iter_
    # the oracle: unit rows, Lloyd with centers renormalised every step
    U = normalize(text).toarray()
    C = init
    for _ in range(dense.n_iter_):
        labels = ((U[:, None] - C[None]) ** 2).sum(-1).argmin(1)
        C = normalize(np.array([U[labels == c].mean(0) for c in range(4)]))
    np.testing.assert_allclose(dense.cluster_centers_, C, atol=1e-9)


@pytest.mark.parametrize("init", ["k-means||", "k-means++", "random"])
def test_seeded_fits_do_not_depend_on_the_blocks(text, init):
    fits = [KMeans(4, init=init, random_state=5).fit(data)
            for data in (text, _blocks(text, 400), _blocks(text, 1_100))]
    for other in fits[1:]:
        np.testing.assert_allclose(other.cluster_centers_, fits[0].cluster_centers_,
                                   rtol=1e-12, atol=1e-14)
        assert other.n_iter_ == fits[0].n_iter_
    # and as good as scikit-learn's on the same CSR
    sk = SKKMeans(4, random_state=5, n_init=1).fit(text)
    assert fits[0].inertia_ <= sk.inertia_ * 1.01


def test_every_sparse_format_and_integer_values(text):
    want = KMeans(4, random_state=0).fit(text).cluster_centers_
    for other in (text.tocsc(), text.tocoo(), sp.csr_array(text), text.tolil()):
        np.testing.assert_allclose(KMeans(4, random_state=0).fit(other).cluster_centers_, want,
                                   rtol=1e-12)
    counts = sp.csr_matrix((np.ones(text.nnz, dtype=np.int64), text.indices, text.indptr),
                           shape=text.shape)
    assert KMeans(3, random_state=0).fit(counts).cluster_centers_.dtype == np.float64


def test_non_finite_values_are_named(text):
    bad = text.copy()
    bad.data[bad.indptr[17]] = np.nan
    with pytest.raises(dkmeans.InvalidInputError, match="row 17"):
        KMeans(3).fit(bad)


def test_minibatch_on_sparse_rows_equals_it_on_the_dense_rows(text):
    a = MiniBatchKMeans(4, random_state=2, batch_size=256).fit(text)
    b = MiniBatchKMeans(4, random_state=2, batch_size=256).fit(text.toarray())
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12)
    p, q = MiniBatchKMeans(4, random_state=2), MiniBatchKMeans(4, random_state=2)
    for start in range(0, 3_000, 1_000):
        p.partial_fit(text[start : start + 1_000])
        q.partial_fit(text[start : start + 1_000].toarray())
    np.testing.assert_allclose(p.cluster_centers_, q.cluster_centers_, rtol=1e-12)
    assert p.n_steps_ == 3


def _topics_tfidf(n, d, topics, per_row, seed=0):
    """TF-IDF of documents whose terms follow a Zipf law over their topic's
    own ordering of the vocabulary, a third drawn from a shared one."""
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((topics, d)), axis=1)
    rank = np.minimum(rng.zipf(1.5, (n, per_row)), d) - 1
    terms = order[rng.integers(0, topics, n)[:, None], rank]
    shared = rng.random((n, per_row)) < 0.3
    terms[shared] = np.minimum(rng.zipf(1.3, shared.sum()), d) - 1
    counts = sp.coo_matrix((np.ones(terms.size), (np.arange(n).repeat(per_row), terms.ravel())),
                           shape=(n, d)).tocsr()
    return TfidfTransformer().fit_transform(counts).tocsr()


def test_minibatch_on_many_terms_ends_near_the_full_fit():
    # Lloyd on the 3,072-row init sample fit the sample, not the corpus: the
    # mini-batch fits from it ended 3-4% above k-means (scikit-learn's
    # MiniBatchKMeans ~1%); plain k-means++ starts end within 1%
    X = _topics_tfidf(50_000, 5_000, 200, 20)
    full = SKKMeans(50, random_state=0).fit(X).inertia_
    for seed in (0, 1):
        model = MiniBatchKMeans(50, random_state=seed, compute_labels=True).fit(X)
        assert model.inertia_ < 1.015 * full


def test_labels_to_zarr_and_the_metrics_with_a_sparse_meaning(text, tmp_path):
    from sklearn import metrics

    km = KMeans(4, random_state=0).fit(text)
    km.predict_to_zarr(text, tmp_path / "labels.zarr")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "labels.zarr"))[:],
                                  km.predict(text))
    from dkmeans.evaluate import metrics as ours

    dense = text.toarray()
    assert ours.calinski_harabasz_score(text, km.labels_) == pytest.approx(
        metrics.calinski_harabasz_score(dense, km.labels_), rel=1e-9)
    assert ours.davies_bouldin_score(text, km.labels_) == pytest.approx(
        metrics.davies_bouldin_score(dense, km.labels_), rel=1e-9)
    assert ours.silhouette_score(text, km.labels_, sample_size=3_000) == pytest.approx(
        metrics.silhouette_score(dense, km.labels_), rel=1e-9)
    # a sweep and stability: the same draws and fits as on the dense rows
    got, want = (dkmeans.sweep(data, [2, 4, 6], random_state=0) for data in (text, dense))
    for name in ("inertia", "calinski_harabasz", "davies_bouldin", "silhouette"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-9)
    got, want = (dkmeans.stability(data, 4, random_state=0) for data in (text, dense))
    np.testing.assert_allclose(got.ari, want.ari, rtol=1e-9)


def test_a_large_tfidf_like_matrix_takes_a_fraction_of_its_dense_size(tmp_path):
    """200,000 x 20,000 with ~20 non-zeros a row: 32 GB dense (float64),
    48 MB sparse. Spherical KMeans(50) in a fresh process: its peak memory
    stays far under a quarter of the dense size (and under 2 GB)."""
    script = textwrap.dedent("""
        import resource, numpy as np, scipy.sparse as sp, dkmeans
        rng = np.random.default_rng(0)
        n, d = 200_000, 20_000
        cols = np.sort(rng.zipf(1.2, size=(n, 20)) % d, axis=1).astype(np.int32)
        X = sp.csr_matrix((rng.random(n * 20), cols.ravel(), np.arange(0, n * 20 + 1, 20)),
                          shape=(n, d))
        X.sum_duplicates()
        km = dkmeans.KMeans(50, metric="cosine", random_state=0, max_iter=20).fit(X)
        assert km.cluster_centers_.shape == (50, d)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, X.data.nbytes)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak, _ = map(int, proc.stdout.split())
    dense = 200_000 * 20_000 * 8
    assert peak < 2 * 2**30 < dense / 4, peak


def test_a_sparse_zarr_group_is_input_like_a_zarr_array(text, tmp_path, monkeypatch):
    """save_sparse_zarr writes AnnData's CSR layout; a path to it is read as
    CSR blocks (here of ~4,000 non-zeros), persisted or streamed, the same
    fit as the matrix in memory; nothing at the target is replaced."""
    from dkmeans.data import sparse_zarr

    monkeypatch.setattr(sparse_zarr, "BLOCK_NONZEROS", 4_000)
    monkeypatch.setattr(sparse_zarr, "CHUNK_NONZEROS", 3_000)
    path = tmp_path / "X.zarr"
    dkmeans.save_sparse_zarr(text, path)
    group = zarr.open_group(str(path), mode="r")
    assert dict(group.attrs) == {"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                                 "shape": [3_000, 500]}
    arr = dkmeans.open_array(path)
    assert arr.numblocks[0] > 5 and sp.issparse(arr._meta)
    assert abs(arr.compute() - text).max() == 0
    want = KMeans(4, random_state=0).fit(text)
    for persist in (True, False):
        got = KMeans(4, random_state=0, persist=persist).fit(str(path))
        np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12)
        np.testing.assert_array_equal(np.asarray(got.labels_), want.labels_)
    # written from a dask array of CSR blocks, one block at a time
    dkmeans.save_sparse_zarr(_blocks(text, 700), tmp_path / "Y.zarr")
    assert abs(dkmeans.open_array(tmp_path / "Y.zarr").compute() - text).max() == 0
    with pytest.raises(dkmeans.InvalidInputError, match="already exists"):
        dkmeans.save_sparse_zarr(text, path)
    # a group whose arrays disagree with its shape is named, not misread
    zarr.open_group(str(path), mode="r+").attrs["shape"] = [2_999, 500]
    with pytest.raises(dkmeans.InvalidInputError, match="not a CSR matrix of shape"):
        dkmeans.open_array(path)


@pytest.mark.cluster
def test_sparse_blocks_on_worker_processes_equal_the_threaded_fit(text, tmp_path):
    import distributed

    dkmeans.save_sparse_zarr(text, tmp_path / "X.zarr")
    want = KMeans(4, random_state=0).fit(text)
    # mini-batches are drawn within groups of blocks: the same blocks (the
    # group's), threaded
    batches = MiniBatchKMeans(4, random_state=0).fit(str(tmp_path / "X.zarr"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster):
        for data in (text, str(tmp_path / "X.zarr")):
            got = KMeans(4, random_state=0).fit(data)
            np.testing.assert_allclose(got.cluster_centers_, want.cluster_centers_, rtol=1e-12)
            assert got.n_iter_ == want.n_iter_
        mb = MiniBatchKMeans(4, random_state=0).fit(str(tmp_path / "X.zarr"))
        np.testing.assert_allclose(mb.cluster_centers_, batches.cluster_centers_, rtol=1e-12)


def test_sparse_data_is_sized_by_its_non_zeros_when_choosing_to_persist(text):
    """dask counts a CSR block as dense: a dask array of CSR blocks would be
    streamed (recomputed every pass) for data that takes kilobytes."""
    from dkmeans.algorithms.fit import should_persist
    from dkmeans.data import as_dataset

    data = as_dataset(_blocks(text, 700))
    assert data.memory_bytes() == pytest.approx(text.nnz * 12, rel=0.2)  # first block's rate
    assert data.memory_bytes() < data.X.nbytes / 20
    assert should_persist(data, "auto")
    assert as_dataset(text.toarray()).memory_bytes() == text.shape[0] * text.shape[1] * 8
