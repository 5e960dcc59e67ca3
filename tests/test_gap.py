"""The gap statistic of sweep(..., gap=True) against a plain numpy
implementation of the paper on the same reference draws, its choice of k,
and references made block by block (never on the client)."""

import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from dkmeans import sweep
from dkmeans.data import as_dataset
from dkmeans.evaluate.gap import bounding_box, reference_data

KS = list(range(1, 8))


def _inertia(X, centers):
    return float(((X[:, None, :] - centers[None]) ** 2).sum(axis=2).min(axis=1).sum())


def paper_gap(log_w, ref_log_w):
    """Tibshirani, Walther & Hastie (2001), steps 2-3, in numpy."""
    B = ref_log_w.shape[1]
    lbar = ref_log_w.mean(axis=1)
    sd = np.sqrt(((ref_log_w - lbar[:, None]) ** 2).mean(axis=1))
    gap, s = lbar - log_w, sd * np.sqrt(1 + 1 / B)
    k_hat = next((KS[i] for i in range(len(KS) - 1) if gap[i] >= gap[i + 1] - s[i + 1]),
                 KS[-1])
    return gap, s, k_hat


@pytest.mark.parametrize("reference", ["box", "pca"])
def test_gap_equals_the_papers_on_the_same_references(reference):
    X = make_blobs(1500, centers=3, n_features=2, cluster_std=0.8, random_state=4)[0]
    result = sweep(X, KS, gap=True, n_refs=4, gap_reference=reference, random_state=3)
    # the same reference rows, materialised here for the oracle
    data = as_dataset(X)
    box = bounding_box(data, reference)
    refs = [reference_data(data, box, 3, b).local for b in range(4)]
    for ref in refs:  # uniform in the (rotated) box
        u = (ref - box.mean) @ box.axes
        assert (u >= box.low - 1e-9).all() and (u <= box.high + 1e-9).all()
    # W of every fit recomputed in numpy from its centers: the same clusterings
    log_w = np.log([_inertia(X, c) for c in result.centers])
    ref_log_w = np.column_stack([np.log([_inertia(ref, c) for c in sweep(ref, KS,
                                                                        random_state=3).centers])
                                 for ref in refs])
    np.testing.assert_allclose(result.ref_log_w, ref_log_w, rtol=1e-12)
    gap, s, k_hat = paper_gap(log_w, ref_log_w)
    np.testing.assert_allclose(result.gap, gap, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.gap_stderr, s, rtol=1e-10, atol=1e-12)
    assert result.gap_k == k_hat == 3
    row = result.records()[2]
    assert row["k"] == 3 and row["gap"] == result.gap[2]
    assert row["gap_stderr"] == result.gap_stderr[2]
    assert result.suggestions["gap"] == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_four_blobs_give_four(seed):
    X = make_blobs(3000, centers=4, n_features=3, random_state=seed)[0]
    assert sweep(X, KS, gap=True, n_refs=5, random_state=seed).gap_k == 4


def test_references_are_made_on_the_workers_block_by_block():
    X = make_blobs(6000, centers=4, n_features=3, random_state=0)[0]
    data = as_dataset(da.from_array(X, chunks=(1000, 3)))
    ref = reference_data(data, bounding_box(data, "pca"), 0, 0)
    graph = dict(ref.X.__dask_graph__())
    assert len(graph) == 6  # one task per block, depending on no data block
    embedded = sum(v.nbytes for task in graph.values()
                   for v in getattr(task, "args", ()) if isinstance(v, np.ndarray))
    assert embedded < 1000  # the box and a key, never rows
    # and the same rows as generated whole (the box from another summation order)
    whole = reference_data(as_dataset(X), bounding_box(as_dataset(X), "pca"), 0, 0).local
    np.testing.assert_allclose(ref.X.compute(), whole, rtol=1e-9, atol=1e-12)
    chunked = sweep(data.X, KS, gap=True, n_refs=3)
    in_memory = sweep(X, KS, gap=True, n_refs=3)
    np.testing.assert_allclose(chunked.gap, in_memory.gap, rtol=1e-9)
    assert chunked.gap_k == in_memory.gap_k == 4


def test_sweep_with_stability_and_the_plot():
    X = make_blobs(2000, centers=3, n_features=2, cluster_std=0.6, random_state=5)[0]
    result = sweep(X, [2, 3, 4, 5], stability=True, stability_runs=3, gap=True, n_refs=3)
    assert result.stability.shape == (4,)
    assert result.stability[1] > 0.95  # the true k is stable
    assert {"stability", "gap", "gap_stderr"} <= set(result.table().columns)
    pytest.importorskip("matplotlib")
    from dkmeans.evaluate.plots import plot_sweep

    assert len(plot_sweep(result).axes) == 6
