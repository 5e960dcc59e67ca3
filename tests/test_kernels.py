"""Kernels against brute-force numpy oracles (no dask here)."""

import itertools

import numpy as np
import pytest

from dkmeans import kernels
from dkmeans.kernels import sampling


@pytest.fixture(params=["rows-first", "centers-first"])
def layout(request, monkeypatch):
    """Run a test with the kernels' GEMM blocks in each layout, whatever the
    shapes would choose (kernels.assign.rows_first)."""
    if request.param == "rows-first":
        monkeypatch.setattr(kernels.assign, "ROWS_FIRST_D", (0, 10**9))
        monkeypatch.setattr(kernels.assign, "ROWS_FIRST_MAX_K", 10**9)
    else:
        monkeypatch.setattr(kernels.assign, "ROWS_FIRST_D", (0, 0))
    return request.param


def test_rows_first_rule():
    assert kernels.rows_first(32, 16) and kernels.rows_first(64, 8)
    assert not kernels.rows_first(32, 32)  # k-means|| rounds on D1
    assert not kernels.rows_first(256, 64) and not kernels.rows_first(4, 2)


def brute_nearest(X, C):
    d2 = ((X[:, None, :].astype(np.float64) - C[None, :, :]) ** 2).sum(-1)
    return d2.argmin(1), d2.min(1), d2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# 5000 rows span several blocks and a partial last one
@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (7, 3, 2), (5000, 17, 9), (2049, 4, 33),
                                   (5000, 70, 9), (300, 64, 40)])
def test_nearest_matches_brute_force(rng, dtype, n, d, k, layout):
    X = rng.normal(size=(n, d)).astype(dtype)
    C = rng.normal(size=(k, d)).astype(dtype)
    labels, d2 = kernels.nearest(X, C)
    want_labels, want_d2, _ = brute_nearest(X, C)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(d2, want_d2, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_nearest_ties_go_to_lowest_index():
    X = np.array([[0.0, 0.0], [1.0, 0.0]])
    C = np.array([[1.0, 1.0], [-1.0, 0.0], [1.0, -1.0]])
    labels, d2 = kernels.nearest(X, C)
    # row 0 is at distance^2 2, 1, 2; row 1 at 1, 4, 1 -> tie between 0 and 2
    np.testing.assert_array_equal(labels, [1, 0])
    np.testing.assert_array_equal(d2, [1.0, 1.0])


def test_inertia_is_exact_despite_large_offset():
    # |x|^2 - 2x.c + |c|^2 cancels catastrophically at an offset of 1e6; the
    # kernel recomputes the chosen distance exactly.
    X = 1e6 + np.array([[0.0], [1.0], [3.0]])
    C = 1e6 + np.array([[0.5], [3.0]])
    _, _, inertia = kernels.lloyd_partials(X, np.empty(0), C)
    assert inertia == 0.5


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("d", [6, 80])
def test_lloyd_partials_match_brute_force(rng, weighted, d, layout):
    X = rng.normal(size=(3000, d)).astype(np.float32)
    C = X[:5].copy()
    w = rng.uniform(0, 2, size=3000) if weighted else np.empty(0)
    ww = w if weighted else np.ones(3000)
    sums, wsums, inertia = kernels.lloyd_partials(X, w, C)
    lab, d2, _ = brute_nearest(X, C)
    want_sums = np.zeros((5, d))
    np.add.at(want_sums, lab, ww[:, None] * X)
    np.testing.assert_allclose(sums, want_sums, rtol=1e-10)
    np.testing.assert_allclose(wsums, np.bincount(lab, weights=ww, minlength=5), rtol=1e-12)
    np.testing.assert_allclose(inertia, ww @ d2, rtol=1e-9)


def test_pairwise_distances(rng):
    X = rng.normal(size=(50, 3))
    C = rng.normal(size=(4, 3))
    _, _, d2 = brute_nearest(X, C)
    np.testing.assert_allclose(kernels.pairwise_distances(X, C), np.sqrt(d2), rtol=1e-10)
    assert kernels.pairwise_distances(X.astype(np.float32), C).dtype == np.float32


def test_first_nonfinite_row():
    X = np.zeros((5, 2))
    assert kernels.first_nonfinite_row(X) == -1
    X[3, 1] = np.inf
    X[4, 0] = np.nan
    assert kernels.first_nonfinite_row(X) == 3
    # large finite values whose sum overflows are still finite
    assert kernels.first_nonfinite_row(np.full((4, 1), 1e308)) == -1


def test_moments_merge_equals_whole(rng):
    X = rng.normal(loc=1e4, size=(1000, 3))
    parts = [kernels.moments(X[a:b]) for a, b in [(0, 1), (1, 400), (400, 400), (400, 1000)]]
    n, mean, m2 = parts[0]
    for p in parts[1:]:
        n, mean, m2 = kernels.merge_moments((n, mean, m2), p)
    assert n == 1000
    np.testing.assert_allclose(mean, X.mean(0), rtol=1e-14)
    np.testing.assert_allclose(m2 / n, X.var(0), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_scan_equals_numpy(rng, dtype):
    X = rng.normal(loc=-50.0, scale=3.0, size=(777, 5)).astype(dtype)
    bad, mean, m2, max_abs = kernels.column_scan(X)
    X64 = X.astype(np.float64)
    assert bad == -1
    np.testing.assert_allclose(mean, X64.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m2, ((X64 - X64.mean(0)) ** 2).sum(0), rtol=1e-5)
    np.testing.assert_array_equal(max_abs, np.abs(X64).max(0))
    X[400, 2], X[600, 0] = np.inf, np.nan
    assert kernels.column_scan(X)[0] == 400
    assert kernels.column_scan(np.full((4, 1), 1e308))[0] == -1


def test_row_uniforms_do_not_depend_on_chunking():
    key = np.array([7, 11], dtype=np.uint64)
    whole = sampling.row_uniforms(key, 0, 1000)
    parts = np.concatenate([sampling.row_uniforms(key, a, b - a)
                            for a, b in [(0, 3), (3, 10), (10, 513), (513, 1000)]])
    np.testing.assert_array_equal(whole, parts)
    assert whole.min() >= 0 and whole.max() < 1
    other = sampling.row_uniforms(np.array([7, 12], dtype=np.uint64), 0, 1000)
    assert not np.array_equal(whole, other)


def test_row_uniforms_are_uniform():
    u = sampling.row_uniforms(np.array([3, 5], dtype=np.uint64), 10**12, 200_000)
    # each of 20 bins holds 10,000 +- 4.5 sd (sd ~ 98)
    counts = np.bincount((u * 20).astype(int), minlength=20)
    assert np.abs(counts - 10_000).max() < 450
    # neighbouring rows are not correlated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def race_oracle(key, start, weights, m):
    """The exponential race in plain numpy: keys w / E, the m largest."""
    u = sampling.row_uniforms(key, start, len(weights))
    with np.errstate(divide="ignore", invalid="ignore"):
        keys = np.where(weights > 0, weights / -np.log1p(-u), 0.0)
    pos = kernels.top_m(keys, m)
    return pos, keys[pos]


@pytest.mark.parametrize("m", [0, 1, 5, 300])
def test_race_top_m_matches_oracle(rng, m):
    w = rng.exponential(size=2000) * (rng.random(2000) < 0.9)  # some zero weights
    key = np.array([4, 2], dtype=np.uint64)
    pos, keys = sampling.race_top_m(key, 500, w, m)
    want_pos, want_keys = race_oracle(key, 500, w, m)
    np.testing.assert_array_equal(pos, want_pos)
    np.testing.assert_allclose(keys, want_keys, rtol=1e-15)
    assert (w[pos] > 0).all()


def test_race_draws_proportional_to_weight():
    # P(row i drawn first) = w_i / sum(w): check by simulation
    w = np.array([1.0, 2.0, 0.0, 5.0])
    wins = np.zeros(4)
    for s in range(4000):
        pos, _ = sampling.race_top_m(np.array([s, 1], dtype=np.uint64), 0, w, 1)
        wins[pos[0]] += 1
    np.testing.assert_allclose(wins / wins.sum(), w / w.sum(), atol=0.03)
    assert wins[2] == 0


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("d", [3, 70])
def test_seed_round_matches_oracle(rng, weighted, d, layout):
    # one round = fold new centers into the running minimum, then race ~ w D^2
    X = rng.normal(size=(3000, d)).astype(np.float32)
    w = rng.uniform(0, 2, 3000) if weighted else np.empty(0)
    ww = w if weighted else np.ones(3000)
    key = np.array([9, 9], dtype=np.uint64)
    old = X[:2]
    state, cost, pos, keys = sampling.seed_round_partials(X, w, None, old, 0, key, 70, 0)
    assert pos.size == 0 and keys.size == 0
    assert cost == pytest.approx(ww @ brute_nearest(X, old)[1], rel=1e-6)
    new = X[[5, 6, 7]]
    state2, cost2, pos, keys = sampling.seed_round_partials(X, w, state, new, 2, key, 70, 40)
    _, d2, _ = brute_nearest(X, np.concatenate([old, new]))
    lab = brute_nearest(X, np.concatenate([old, new]))[0]
    np.testing.assert_allclose(state2[0], d2, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(state2[1], lab)
    assert state[0] is not state2[0] and (state[0] >= state2[0]).all()  # input kept
    assert cost2 == pytest.approx(ww @ state2[0], rel=1e-12)
    want_pos, want_keys = race_oracle(key, 70, ww * state2[0], 40)
    np.testing.assert_array_equal(pos, want_pos)
    np.testing.assert_allclose(keys, want_keys, rtol=1e-15)


def test_top_m_orders_by_key_then_position():
    keys = np.array([0.5, 2.0, 0.0, 2.0, 1.0])
    np.testing.assert_array_equal(kernels.top_m(keys, 3), [1, 3, 4])
    np.testing.assert_array_equal(kernels.top_m(keys, 10), [1, 3, 4, 0])
    # equal keys at the cut: the lowest positions, as on any other chunking
    np.testing.assert_array_equal(kernels.top_m(np.array([1.0, 3, 3, 1, 3, 3]), 3), [1, 2, 4])
    np.testing.assert_array_equal(kernels.top_m(np.array([2.0, 1, 2, 2]), 2), [0, 2])
    assert kernels.top_m(keys, 0).size == 0


@pytest.mark.parametrize("ties", [False, True])
def test_top_rows_merge_matches_a_global_ranking(rng, ties):
    # parts of any sizes and order, with keys equal across parts or not: the
    # merge is the m largest keys of all rows, equal keys by lower row index
    from dkmeans.passes.common import TopRows

    n, m = 900, 50
    keys = rng.integers(1, 6, n).astype(float) if ties else rng.random(n) + 0.1
    x = rng.normal(size=(n, 2))
    bounds = [0, 130, 131, 400, 900]
    parts = [TopRows.from_block(m, keys[a:b], x[a:b], None, a)
             for a, b in itertools.pairwise(bounds)]
    want = np.lexsort((np.arange(n), -keys))[:m]
    for order in (parts, parts[::-1], [parts[2], parts[0], parts[3], parts[1]]):
        got = TopRows.merge(order)
        np.testing.assert_array_equal(got.index, want)
        np.testing.assert_array_equal(got.rows, x[want])
    one = TopRows.merge([parts[0]])
    np.testing.assert_array_equal(one.index, parts[0].index)


def test_kmeans_plusplus_picks_distinct_weighted_points(rng):
    X = np.array([[0.0], [0.1], [10.0], [10.1], [20.0]])
    w = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    C = kernels.kmeans_plusplus(X, w, 2, rng)
    # never the zero-weight row, and one center in each group
    assert 20.0 not in C
    assert sorted(np.round(C[:, 0] / 10)) == [0, 1]


def _greedy_plusplus(X, w, k, n_trials, u):
    """Greedy k-means++ computing every distance (the numpy oracle): the
    same draws from ``u`` as :func:`dkmeans.kernels.kmeans_plusplus`."""
    def draw(cum, v):
        return min(np.searchsorted(cum, v * cum[-1], side="right"), len(cum) - 1)

    chosen = [draw(np.cumsum(w), u[0])]
    mind = ((X - X[chosen[0]]) ** 2).sum(axis=1)
    for step in range(1, k):
        cum = np.cumsum(w * mind)
        trials = [draw(cum, u[1 + (step - 1) * n_trials + t]) for t in range(n_trials)]
        cand = [np.minimum(mind, ((X - X[t]) ** 2).sum(axis=1)) for t in trials]
        best = int(np.argmin([w @ c for c in cand]))
        chosen.append(trials[best])
        mind = cand[best]
    return np.array(chosen)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [3, 60])
def test_kmeans_plusplus_draws_what_the_numpy_loop_draws(rng, k, dtype, threads):
    """Greedy k-means++ (its trials read every row once a step, rows outer)
    chooses the centers of the plain numpy loop in float64, at small and
    larger k; float32 rows too, their distances summed in float32; and with
    each step's row blocks shared by threads (5,000 rows: three blocks)."""
    X = rng.normal(size=(5_000, 8)) + 20 * rng.normal(size=(30, 8))[rng.integers(0, 30, 5_000)]
    w = rng.random(5_000) + 0.5
    n_trials = kernels.plusplus_trials(k)
    got = kernels.kmeans_plusplus(X.astype(dtype), w, k, np.random.default_rng(7),
                                  threads=threads)
    u = np.random.default_rng(7).random(1 + (k - 1) * n_trials)  # the draws it made
    X64 = X.astype(dtype).astype(np.float64)
    np.testing.assert_array_equal(got, X64[_greedy_plusplus(X64, w, k, n_trials, u)])


@pytest.mark.parametrize("n_trials", [1, 2, 5])
def test_kmeans_plusplus_takes_trials_two_at_a_time_and_one_left(rng, n_trials):
    """Each pass over a row measures two trials (and a last one alone when
    their number is odd): the centers of the numpy loop for 1, 2 and 5."""
    X = rng.normal(size=(3_000, 16)) + 20 * rng.normal(size=(30, 16))[rng.integers(0, 30, 3_000)]
    w = rng.random(3_000) + 0.5
    got = kernels.kmeans_plusplus(X, w, 25, np.random.default_rng(3), n_trials=n_trials,
                                  threads=2)
    u = np.random.default_rng(3).random(1 + 24 * n_trials)
    np.testing.assert_array_equal(got, X[_greedy_plusplus(X, w, 25, n_trials, u)])


def test_center_bounds_by_hand():
    C = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 10.0]])
    prev = C - np.array([[0.0, 1.0], [0.0, 0.0], [3.0, 0.0]])
    half_sep, drift = kernels.center_bounds(C, prev)
    np.testing.assert_allclose(half_sep, [2.0, 2.0, 5.0])
    # moves are 1, 0, 3: each center's rows see the largest move of another
    np.testing.assert_allclose(drift, [3.0, 3.0, 1.0])
    half_sep, drift = kernels.center_bounds(C[:1], None)
    assert np.isinf(half_sep[0]) and drift[0] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("d", [5, 40])
def test_bounded_lloyd_step_equals_full_step(dtype, seed, d, layout):
    # Several Lloyd steps: with bounds, the same labels and partial results as
    # searching every row, and fewer rows searched once centers settle.
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 9))
    X = (rng.normal(size=(4000, d)) + 4 * rng.integers(0, 3, size=(4000, 1))).astype(dtype)
    X[:50] += 1e3  # far rows and a large offset for part of the data
    w = rng.uniform(0, 2, 4000) if seed % 2 else np.empty(0)
    C = X[rng.choice(4000, k, replace=False)].copy()
    state, previous, searched = None, None, []
    for _ in range(8):
        half_sep, drift = kernels.center_bounds(C, previous)
        full = kernels.lloyd_partials(X, w, C)
        *bounded, state, n = kernels.lloyd_partials_bounded(X, w, C, state, half_sep, drift)
        np.testing.assert_array_equal(state[0], kernels.nearest(X, C)[0])  # labels
        np.testing.assert_allclose(bounded[0], full[0], rtol=1e-12)  # sums
        np.testing.assert_allclose(bounded[1], full[1], rtol=1e-12)  # weights
        assert bounded[2] == pytest.approx(full[2], rel=1e-12)  # inertia
        searched.append(n)
        previous = C
        filled = full[1] > 0
        C = C.copy()
        C[filled] = (full[0][filled] / full[1][filled, None]).astype(dtype)
    assert searched[0] == 4000
    assert min(searched[2:]) < 4000


def test_bounded_step_never_trusts_a_near_tie():
    # Two centers equidistant from a row: the bound proves nothing, so the
    # row is searched and gets the lowest index, as the full argmin does.
    X = np.array([[0.0, 0.0], [5.0, 5.0]])
    C = np.array([[-1.0, 0.0], [1.0, 0.0]])
    state = (np.array([1, 1], np.int32), np.array([1.0, 7.0]))
    half_sep, drift = kernels.center_bounds(C, C)
    *_, new_state, n = kernels.lloyd_partials_bounded(X, np.empty(0), C, state, half_sep,
                                                      drift)
    np.testing.assert_array_equal(new_state[0], kernels.nearest(X, C)[0])
    assert n >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("k", [1, 5, 40])
def test_compiled_lloyd_equals_the_pass_by_pass_loop(dtype, weighted, k, layout):
    """lloyd_local (one compiled call) gives the bits of dkmeans.algorithms.lloyd's
    loop of passes on the same block: centers, history, iterations and
    relocations; k=40 on 300 rows of 6 blobs empties clusters."""
    from dkmeans.algorithms.lloyd import lloyd
    from dkmeans.runner import Block

    rng = np.random.default_rng(k)
    X = (rng.normal(size=(300, 3)) + 8 * rng.integers(0, 6, size=(300, 1))).astype(dtype)
    w = rng.random(300) * 2 if weighted else None
    start = np.repeat(X[:1], k, axis=0) + np.arange(k, dtype=dtype)[:, None] * 1e-3
    blocks = [Block(X, w, 0, len(X))]
    compiled = lloyd(blocks, start, max_iter=50, tol=1e-6)
    passes = lloyd(blocks, start, max_iter=50, tol=1e-6, on_iteration=lambda p: None)
    np.testing.assert_array_equal(compiled.centers, passes.centers)
    np.testing.assert_array_equal(compiled.inertia_history, passes.inertia_history)
    assert (compiled.n_iter, compiled.n_relocated) == (passes.n_iter, passes.n_relocated)
    assert compiled.centers.dtype == dtype
    if k == 40:
        assert compiled.n_relocated > 0


def test_recluster_starts_returns_a_weighted_lloyd_fixed_point(rng):
    """The best start's centers are the weighted means of the rows nearest
    to them (numpy oracle), its inertia is theirs, and no single start
    does better."""
    X = rng.normal(size=(200, 4)) + 5 * rng.integers(0, 4, size=(200, 1))
    w = rng.random(200) + 0.1
    k = 6
    u = rng.random((5, 1 + (k - 1) * kernels.plusplus_trials(k)))
    centers, inertia = kernels.recluster_starts(X, w, k, u)
    labels, d2 = brute_nearest(X, centers)[:2]
    for c in range(k):
        np.testing.assert_allclose(centers[c], np.average(X[labels == c], axis=0,
                                                          weights=w[labels == c]))
    assert inertia == pytest.approx(w @ d2, rel=1e-12)
    for i in range(len(u)):
        assert inertia <= kernels.recluster_starts(X, w, k, u[i : i + 1])[1]


@pytest.mark.parametrize("threads", [1, 2])
def test_recluster_starts_stop_at_max_iter_with_the_last_assignments_inertia(rng, threads):
    """A start capped at ``max_iter`` Lloyd iterations (a mini-batch init
    at large k): the k-means++ start moved by exactly that many weighted
    Lloyd updates (numpy oracle), the inertia that of the last assignment."""
    X = rng.normal(size=(3_000, 4)) + 6 * rng.normal(size=(25, 4))[rng.integers(0, 25, 3_000)]
    w = rng.random(3_000) + 0.1
    k = 20
    u = rng.random((1, 1 + (k - 1) * kernels.plusplus_trials(k)))
    centers, inertia = kernels.recluster_starts(X, w, k, u, max_iter=3, threads=threads)
    expected = X[_greedy_plusplus(X, w, k, kernels.plusplus_trials(k), u[0])]
    for _ in range(3):
        labels, d2 = brute_nearest(X, expected)[:2]
        expected = np.array([np.average(X[labels == c], axis=0, weights=w[labels == c])
                             for c in range(k)])
    np.testing.assert_allclose(centers, expected, rtol=1e-12, atol=1e-12)
    assert inertia == pytest.approx(w @ d2, rel=1e-12)
    assert kernels.recluster_starts(X, w, k, u)[1] < inertia  # not yet the fixed point


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_recluster_starts_on_threads_equal_one_thread(rng, dtype):
    """A start's k-means++ steps on threads (one long start, as the
    recluster of a large k runs it): the centers and inertia of one thread,
    for any number of threads; float32 rows stay float32."""
    X = (rng.normal(size=(6_000, 5)) + 8 * rng.normal(size=(40, 5))[
        rng.integers(0, 40, 6_000)]).astype(dtype)
    w = rng.random(6_000) + 0.1
    k = 30
    u = rng.random((2, 1 + (k - 1) * kernels.plusplus_trials(k)))
    centers, inertia = kernels.recluster_starts(X, w, k, u)
    assert centers.dtype == dtype
    for threads in (2, 3):
        got, got_inertia = kernels.recluster_starts(X, w, k, u, threads=threads)
        np.testing.assert_array_equal(got, centers)
        assert got_inertia == inertia


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_lloyd_partials_keep_the_rows_farthest_from_their_centers(dtype, weighted):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 7)).astype(dtype)
    centers = X[rng.choice(2000, 6, replace=False)].copy()
    far = ((X[:, None] - centers[None]) ** 2).sum(-1).min(1).argmax()
    X[2999] = X[far]  # two rows at one distance: the earlier is ranked first
    w = rng.random(3000) if weighted else np.empty(0)
    if weighted:
        w[::7] = 0.0  # rows without weight are never moved onto
        w[[far, 2999]] = 0.5
    sums, wsums, inertia, (pos, keys, labels) = kernels.lloyd_partials_far(X, w, centers, 5)
    # the same step as without them
    ref = kernels.lloyd_partials(X, w, centers)
    np.testing.assert_array_equal(sums, ref[0])
    np.testing.assert_array_equal(wsums, ref[1])
    assert inertia == ref[2]
    # numpy oracle: exact float64 distances to the nearest center, ranked
    # largest first, ties to the lower position, weightless rows out
    d2 = ((X.astype(np.float64)[:, None] - centers.astype(np.float64)[None]) ** 2).sum(-1)
    near = d2.argmin(1)
    key = np.where(w > 0, d2.min(1), 0.0) if weighted else d2.min(1)
    order = np.lexsort((np.arange(3000), -key))[:5]
    np.testing.assert_array_equal(pos, order)
    np.testing.assert_allclose(keys, key[order], rtol=1e-12)
    np.testing.assert_array_equal(labels, near[order])
    assert list(pos).index(far) + 1 == list(pos).index(2999)  # both kept, in row order
