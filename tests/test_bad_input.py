"""Bad input: a specific error type and a message naming the problem."""

import dask.array as da
import numpy as np
import pytest
import zarr

from dkmeans import (
    DKMeansError,
    InputNotFoundError,
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
    KMeans,
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
     r"shape of the initial centers \(2, 2\).*\(3, 2\)"),
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
    ("algorithm", KMeans(2, algorithm="elkan"), GOOD, None, InvalidParameterError,
     "'algorithm' parameter of KMeans must be 'lloyd' or 'hamerly'; got 'elkan'"),
]


@pytest.mark.parametrize("est,X,w,error,match", [c[1:] for c in FIT_CASES],
                         ids=[c[0] for c in FIT_CASES])
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


def test_sparse_input_is_named():
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(InputTypeError, match="sparse"):
        KMeans(2).fit(sparse.csr_matrix(GOOD))


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
