"""Bad input: a specific error type and a message naming the problem."""

import dask.array as da
import numpy as np
import pytest
import scipy.sparse
import zarr

import dkmeans
from dkmeans import (
    DKMeansError,
    InputNotFoundError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
    KMeans,
    MiniBatchKMeans,
)

GOOD = np.arange(40, dtype=np.float64).reshape(20, 2)


def with_value(row, col, value):
    X = GOOD.copy()
    X[row, col] = value
    return X


FIT_CASES = [
    # (id, estimator, X, sample_weight, error type, message pattern)
    ("nan", KMeans(2), with_value(7, 1, np.nan), None, InvalidInputError,
     r"NaN or infinity \(first at row 7\)"),
    ("inf", KMeans(2), with_value(3, 0, -np.inf), None, InvalidInputError, "row 3"),
    ("nan-dask", KMeans(2), da.from_array(with_value(13, 0, np.nan), chunks=5), None,
     InvalidInputError, "row 13"),
    ("empty", KMeans(2), np.empty((0, 2)), None, InvalidInputError, "0 sample"),
    ("no-features", KMeans(2), np.empty((5, 0)), None, InvalidInputError, "0 feature"),
    ("1-d", KMeans(2), np.arange(5.0), None, InvalidInputError, "2-D array.*Reshape"),
    ("3-d", KMeans(2), np.zeros((4, 2, 2)), None, InvalidInputError, "3-D"),
    ("strings", KMeans(2), np.array([["a", "b"], ["c", "d"]]), None, InputTypeError,
     "strings"),
    ("object", KMeans(2), np.array([[{}, 1.0], [2.0, 3.0]], dtype=object), None,
     InputTypeError, "not numbers"),
    ("complex", KMeans(2), GOOD + 1j, None, InvalidInputError, "Complex data"),
    ("k-zero", KMeans(0), GOOD, None, InvalidParameterError, "'n_clusters'.*>= 1"),
    ("k-float", KMeans(2.5), GOOD, None, InvalidParameterError, "n_clusters"),
    ("k-too-big", KMeans(21), GOOD, None, InvalidInputError,
     "n_samples=20 should be >= n_clusters=21"),
    ("init-name", KMeans(2, init="kmeans"), GOOD, None, InvalidParameterError, "'init'"),
    ("init-shape", KMeans(3, init=np.zeros((2, 2))), GOOD, None, InvalidInputError,
     r"shape of the initial centers \(2, 2\) does not match the number of clusters 3"),
    ("init-features", KMeans(2, init=np.zeros((2, 3))), GOOD, None, InvalidInputError,
     r"initial centers \(2, 3\) does not match the number of features of the data 2"),
    ("init-nan", KMeans(2, init=np.array([[0, 0], [np.nan, 1]])), GOOD, None,
     InvalidInputError, "init contains NaN"),
    ("weights-length", KMeans(2), GOOD, np.ones(19), InvalidInputError,
     r"sample_weight has shape \(19,\); expected \(20,\)"),
    ("weights-negative", KMeans(2), GOOD, np.r_[np.ones(19), -1], InvalidInputError,
     "non-negative; found -1.0 at index 19"),
    ("weights-zero", KMeans(2), GOOD, np.zeros(20), InvalidInputError, "sums to zero"),
    ("weights-nan-dask", KMeans(2), da.from_array(GOOD, chunks=5),
     da.from_array(np.r_[np.ones(11), np.nan, np.ones(8)], chunks=5), InvalidInputError,
     "index 11"),
    ("tol", KMeans(2, tol=-1), GOOD, None, InvalidParameterError, "'tol'"),
    ("max-iter", KMeans(2, max_iter=0), GOOD, None, InvalidParameterError, "'max_iter'"),
    ("n-init", KMeans(2, n_init=0), GOOD, None, InvalidParameterError, "'n_init'"),
    ("oversampling", KMeans(2, oversampling_factor=0), GOOD, None, InvalidParameterError,
     "'oversampling_factor'"),
    ("rounds", KMeans(2, init_rounds=0), GOOD, None, InvalidParameterError,
     "'init_rounds'"),
    ("persist", KMeans(2, persist="yes"), GOOD, None, InvalidParameterError, "'persist'"),
    ("random-state", KMeans(2, random_state="x"), GOOD, None, InvalidParameterError,
     "'random_state'"),
    ("algorithm", KMeans(2, algorithm="auto"), GOOD, None, InvalidParameterError,
     "'algorithm' parameter of KMeans must be 'lloyd', 'elkan' or 'hamerly'; got 'auto'"),
]


MB = MiniBatchKMeans
MINIBATCH_CASES = [
    ("mb-nan", MB(2), with_value(9, 0, np.nan), None, InvalidInputError, "row 9"),
    ("mb-nan-dask", MB(2), da.from_array(with_value(16, 1, np.inf), chunks=5), None,
     InvalidInputError, "row 16"),
    ("mb-3-d", MB(2), np.zeros((4, 2, 2)), None, InvalidInputError, "3-D"),
    ("mb-k-too-big", MB(21), GOOD, None, InvalidInputError, "n_clusters=21"),
    ("mb-batch-size", MB(2, batch_size=0), GOOD, None, InvalidParameterError,
     "'batch_size' parameter of MiniBatchKMeans must be an integer >= 1; got 0"),
    ("mb-reassignment", MB(2, reassignment_ratio=-0.1), GOOD, None, InvalidParameterError,
     "'reassignment_ratio'"),
    ("mb-no-improvement", MB(2, max_no_improvement=-1), GOOD, None, InvalidParameterError,
     "'max_no_improvement'"),
    ("mb-init-size", MB(2, init_size=0), GOOD, None, InvalidParameterError, "'init_size'"),
    ("mb-compute-labels", MB(2, compute_labels="yes"), GOOD, None, InvalidParameterError,
     "'compute_labels'"),
    ("mb-init-shape", MB(3, init=np.zeros((3, 5))), GOOD, None, InvalidInputError,
     r"initial centers \(3, 5\) does not match the number of features of the data 2"),
    ("mb-weights-negative", MB(2), GOOD, np.r_[-1, np.ones(19)], InvalidInputError,
     "found -1.0 at index 0"),
]


@pytest.mark.parametrize("est,X,w,error,match",
                         [c[1:] for c in FIT_CASES + MINIBATCH_CASES],
                         ids=[c[0] for c in FIT_CASES + MINIBATCH_CASES])
def test_fit_rejects(est, X, w, error, match):
    with pytest.raises(error, match=match) as info:
        est.fit(X, sample_weight=w)
    assert isinstance(info.value, DKMeansError)
    assert not hasattr(est, "cluster_centers_")  # nothing half-fitted


def test_errors_are_the_builtin_types_users_catch():
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(InputTypeError, TypeError)
    assert issubclass(InputNotFoundError, FileNotFoundError)


def test_sparse_input_is_named_where_it_is_not_taken():
    X = scipy.sparse.csr_matrix(GOOD)
    with pytest.raises(InputTypeError, match="sparse matrix; GaussianMixture needs dense"):
        dkmeans.GaussianMixture(2).fit(X)
    with pytest.raises(InputTypeError, match="sparse matrix; metric='manhattan'"):
        KMeans(2, metric="manhattan").fit(X)
    with pytest.raises(InvalidParameterError, match="would make sparse X dense"):
        KMeans(2, scale=True).fit(X)
    with pytest.raises(InvalidParameterError, match=r"gap=True .* sparse X"):
        dkmeans.sweep(X, [1, 2], gap=True)


def test_missing_zarr_path(tmp_path):
    with pytest.raises(InputNotFoundError, match=r"No Zarr array at .*missing\.zarr"):
        KMeans(2).fit(str(tmp_path / "missing.zarr"))


def test_zarr_that_is_not_2d(tmp_path):
    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=(10,), dtype="f8")
    with pytest.raises(InvalidInputError, match="1-D"):
        KMeans(2).fit(z)


def test_zarr_group_is_not_an_array(tmp_path):
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    with pytest.raises(InvalidInputError, match="as a Zarr array"):
        KMeans(2).fit(str(tmp_path / "g.zarr"))


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_methods_check_features_and_values(method):
    km = KMeans(2, random_state=0).fit(GOOD)
    with pytest.raises(InvalidInputError, match="X has 3 features, but KMeans is expecting "
                                                "2 features as input"):
        getattr(km, method)(np.zeros((4, 3)))
    with pytest.raises(InvalidInputError, match="row 5"):
        getattr(km, method)(with_value(5, 0, np.nan))
    lazy = getattr(km, method)
    if method != "score":
        out = lazy(da.from_array(with_value(12, 0, np.inf), chunks=5))
        with pytest.raises(InvalidInputError, match="row 12"):
            out.compute()


def test_unfitted_model_says_so():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KMeans(2).predict(GOOD)


def test_explicit_init_with_several_runs_warns():
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        km = KMeans(2, init=GOOD[:2], n_init=3).fit(GOOD)
    assert km.n_iter_ >= 1


PARTIAL_FIT_CASES = [
    ("nan", with_value(4, 1, np.nan), None, InvalidInputError, "row 4 of this batch"),
    ("1-d", np.arange(6.0), None, InvalidInputError, "2-D"),
    ("weights", GOOD, np.ones(3), InvalidInputError, r"shape \(3,\); expected \(20,\)"),
    ("first-batch-too-small", GOOD[:1], None, InvalidInputError,
     "first batch has 1 rows; it should have at least n_clusters=2"),
]


@pytest.mark.parametrize("X,w,error,match", [c[1:] for c in PARTIAL_FIT_CASES],
                         ids=[c[0] for c in PARTIAL_FIT_CASES])
def test_partial_fit_rejects(X, w, error, match):
    est = MiniBatchKMeans(2)
    with pytest.raises(error, match=match):
        est.partial_fit(X, sample_weight=w)
    assert not hasattr(est, "cluster_centers_")


def test_partial_fit_checks_features_against_the_first_batch():
    est = MiniBatchKMeans(2, random_state=0).partial_fit(GOOD)
    before = est.cluster_centers_.copy()
    with pytest.raises(InvalidInputError, match="X has 3 features, but MiniBatchKMeans is "
                                                "expecting 2"):
        est.partial_fit(np.zeros((5, 3)))
    np.testing.assert_array_equal(est.cluster_centers_, before)  # untouched


def test_fewer_distinct_points_than_clusters_warns_and_fits():
    from sklearn.exceptions import ConvergenceWarning

    X = np.repeat([[0.0, 0.0], [5.0, 5.0], [9.0, 1.0]], 10, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(3\) found smaller "
                                                r"than n_clusters \(5\)"):
        km = KMeans(5, random_state=0).fit(X)
    assert km.inertia_ == 0.0
    np.testing.assert_array_equal(np.unique(km.cluster_centers_[km.labels_], axis=0),
                                  [[0, 0], [5, 5], [9, 1]])


def test_corrupt_zarr_chunk_is_named_and_nothing_is_written(tmp_path):
    from dkmeans.cli import main

    z = zarr.create_array(str(tmp_path / "X.zarr"), shape=(40, 2), dtype="f8",
                          chunks=(10, 2))
    z[:] = np.arange(80.0).reshape(40, 2)
    chunk = tmp_path / "X.zarr" / "c" / "2" / "0"
    chunk.write_bytes(b"not zstd" + chunk.read_bytes()[8:])  # garbage in chunk 2
    with pytest.raises(Exception, match=r"(?i)decompress|zstd|codec|corrupt|frame") as info:
        KMeans(2, random_state=0).fit(str(tmp_path / "X.zarr"))
    assert not isinstance(info.value, AssertionError)
    # the command line: exit code 1 and a message, and no model directory
    code = main(["fit", str(tmp_path / "X.zarr"), "-k", "2", "-o", str(tmp_path / "m"),
                 "--workers", "1", "-q"])
    assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.zarr"]
