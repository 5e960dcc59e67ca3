"""The CSR kernels (dkmeans.kernels.sparse) against a dense numpy oracle:
the same nearest centers, distances, sums and farthest rows as the rows
made dense, without ever making them dense."""

import numpy as np
import pytest
import scipy.sparse as sp

from dkmeans.kernels import sparse


def _text_like(rng, n, d, per_row, dtype):
    """Rows of a few non-zeros in many columns, some rows empty, a column
    shared by many rows (as a common term is)."""
    X = sp.random(n, d, density=per_row / d, format="csr", dtype=np.float64,
                  random_state=np.random.RandomState(int(rng.integers(1 << 30))))
    X = X.tolil()
    X[::7, 0] = 1.5
    X[min(3, n - 1)] = 0  # an empty row
    return X.tocsr().astype(dtype)


def _oracle(X, C, w=None):
    dense = X.toarray().astype(np.float64)
    d2 = ((dense[:, None, :] - C[None, :, :].astype(np.float64)) ** 2).sum(-1)
    labels = d2.argmin(1)
    w = np.ones(len(dense)) if w is None else w
    sums = np.zeros_like(C, dtype=np.float64)
    np.add.at(sums, labels, w[:, None] * dense)
    wsums = np.bincount(labels, weights=w, minlength=len(C))
    return labels, d2.min(1), sums, wsums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,d,k,per_row", [(1, 1, 1, 1), (50, 30, 4, 3), (600, 2_000, 17, 20)])
def test_nearest_and_partials_equal_the_dense_rows(rng, dtype, n, d, k, per_row):
    X = _text_like(rng, n, d, per_row, dtype)
    C = (X[rng.integers(0, n, k)].toarray() + rng.normal(scale=0.01, size=(k, d))).astype(dtype)
    labels, d2 = sparse.csr_nearest(X, C)
    want_labels, want_d2, want_sums, want_wsums = _oracle(X, C)
    assert labels.dtype == np.int32 and d2.dtype == np.float64
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(d2, want_d2, rtol=1e-9, atol=1e-9)
    sums, wsums, inertia, _ = sparse.csr_lloyd_partials_far(X, np.empty(0), C, 0)
    np.testing.assert_allclose(sums, want_sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(wsums, want_wsums)
    assert inertia == pytest.approx(want_d2.sum(), rel=1e-9)


def test_weights_ties_and_the_farthest_rows(rng):
    X = _text_like(rng, 400, 300, 6, np.float64)
    X = sp.vstack([X, X[:5]]).tocsr()  # equal rows: ties in the farthest rows
    w = rng.random(X.shape[0]) + 0.1
    w[10] = 0.0  # never among the farthest
    C = np.vstack([X[0].toarray(), X[0].toarray()])  # equal centers: ties to the first
    C = np.vstack([C, rng.normal(size=(3, 300))])
    labels, d2, sums, wsums = _oracle(X, C, w)
    got_sums, got_wsums, inertia, (pos, keys, lab) = sparse.csr_lloyd_partials_far(X, w, C, 6)
    assert not (labels == 1).any()  # the second of two equal centers gets nothing
    np.testing.assert_allclose(got_sums, sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_wsums, wsums, rtol=1e-12)
    assert inertia == pytest.approx(w @ d2, rel=1e-9)
    ranked = [i for i in np.lexsort((np.arange(len(d2)), -d2)) if w[i] > 0][:6]
    np.testing.assert_array_equal(pos, ranked)
    np.testing.assert_allclose(keys, d2[ranked], rtol=1e-9)
    np.testing.assert_array_equal(lab, labels[ranked])


def test_csc_coo_and_unsorted_indices_are_read_as_csr(rng):
    X = _text_like(rng, 80, 40, 5, np.float64)
    C = rng.normal(size=(3, 40))
    want = sparse.csr_nearest(X, C)
    coo = X.tocoo()
    # duplicate entries (summed by CSR's canonical form) and reversed order
    dup = sp.coo_matrix((np.r_[coo.data / 2, coo.data / 2][::-1],
                         (np.r_[coo.row, coo.row][::-1], np.r_[coo.col, coo.col][::-1])),
                        shape=X.shape)
    for other in (X.tocsc(), coo, dup):
        got = sparse.csr_nearest(other, C)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_row_sqnorms(rng):
    X = _text_like(rng, 100, 50, 4, np.float32)
    np.testing.assert_allclose(sparse.csr_row_sqnorms(X),
                               (X.toarray().astype(np.float64) ** 2).sum(1), rtol=1e-12)
    assert sparse.is_sparse(X) and not sparse.is_sparse(X.toarray())


def test_plusplus_starts_on_csr_rows_are_the_dense_kernels_draws(rng):
    from dkmeans.kernels import local, sparse_local

    X = _text_like(rng, 400, 300, 6, np.float64)
    w = rng.random(400) + 0.5
    k, n_trials = 9, 3
    # a row of uniforms per start, as the dense kernel draws them from a generator
    u = np.array([np.random.default_rng(s).random(1 + (k - 1) * n_trials) for s in range(4)])
    dense = X.toarray()
    potentials = []
    for s, row in enumerate(u):
        chosen = sparse_local.csr_plusplus(X, w, k, n_trials, row)
        expected = local.kmeans_plusplus(dense, w, k, np.random.default_rng(s), n_trials)
        np.testing.assert_array_equal(dense[chosen], expected)
        potentials.append(w @ _oracle(X, dense[chosen])[1])
    centers, potential = sparse_local.csr_plusplus_starts(X, w, k, u)
    assert potential == pytest.approx(min(potentials), rel=1e-12)
    best = int(np.argmin(potentials))
    np.testing.assert_array_equal(centers, dense[sparse_local.csr_plusplus(X, w, k, n_trials,
                                                                           u[best])])


@pytest.mark.parametrize("weighted", [False, True])
def test_minibatch_steps_on_csr_rows_equal_the_dense_update(rng, weighted):
    """CsrSteps (centers as a scale times a column) against the dense update
    of each touched center to (c n + s) / (n + m), step after step; set_centers
    and a fold of a small scale change nothing but the representation."""
    from dkmeans.kernels import sparse_steps

    X = _text_like(rng, 900, 400, 8, np.float64)
    w = rng.random(900) + 0.5 if weighted else None
    C = X[:6].toarray() + 0.01
    steps, counts = sparse_steps.CsrSteps(C), np.zeros(6)
    dense, n = C.copy(), np.zeros(6)
    for b in range(0, 900, 150):
        x = X[b : b + 150]
        wb = np.ones(150) if w is None else w[b : b + 150]
        _, d2, sums, wsums = _oracle(x, dense, wb)
        inertia, got_wsums, counts, shift = steps.step(x, None if w is None else wb, counts)
        new = dense.copy()
        touched = wsums > 0
        new[touched] = (dense[touched] * n[touched, None] + sums[touched]) / (
            n[touched, None] + wsums[touched, None])
        assert inertia == pytest.approx(wb @ d2, rel=1e-10)
        np.testing.assert_allclose(got_wsums, wsums, rtol=1e-12)
        assert shift == pytest.approx(((new - dense) ** 2).sum(), rel=1e-8, abs=1e-12)
        dense, n = new, n + wsums
        np.testing.assert_allclose(steps.centers(np.float64), dense, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(counts, n, rtol=1e-12)
        np.testing.assert_allclose(steps.sqnorm, (dense ** 2).sum(1), rtol=1e-9)
    row = X[7].toarray()
    moved = steps.set_centers(np.array([2]), row)
    assert moved == pytest.approx(((dense[2] - row[0]) ** 2).sum(), rel=1e-10)
    dense[2] = row[0]
    np.testing.assert_allclose(steps.centers(np.float64), dense, rtol=1e-10, atol=1e-13)
    # the same centers at scales of 1e-95, then a step that takes them below
    # MIN_SCALE: folded into their columns, the centers as the dense update's
    steps.V *= 1e95
    steps.scale /= 1e95
    n = np.full(6, 1e-8)
    _, _, sums, wsums = _oracle(X[:150], dense)
    steps.step(X[:150], None, n)
    touched = wsums > 0
    dense[touched] = (dense[touched] * n[touched, None] + sums[touched]) / (
        n[touched, None] + wsums[touched, None])
    assert (steps.scale[touched] == 1.0).all()
    np.testing.assert_allclose(steps.centers(np.float64), dense, rtol=1e-10, atol=1e-13)
