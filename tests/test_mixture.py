"""GaussianMixture against scikit-learn's from the same initial parameters
(numpy, dask, Zarr, a 2-process cluster), and its invariants and errors."""

import warnings

import dask.array as da
import numpy as np
import pytest
import zarr
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SKGaussianMixture

from dkmeans import GaussianMixture, InvalidInputError, InvalidParameterError, load

K = 4
COVARIANCE_TYPES = ["full", "diag", "spherical"]


@pytest.fixture(scope="module")
def X():
    X, _ = make_blobs(2400, n_features=3, centers=K, cluster_std=[1.0, 2.0, 0.5, 1.5],
                      random_state=0)
    return X


def _inits(X, cov):
    """Initial parameters from 2 iterations of scikit-learn's own fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = SKGaussianMixture(K, covariance_type=cov, random_state=1, max_iter=2).fit(X)
    return {"weights_init": sk.weights_, "means_init": sk.means_,
            "precisions_init": sk.precisions_}


def _fit_both(X, data, cov, **kwargs):
    options = {"covariance_type": cov, "max_iter": 40, "tol": 1e-6, **_inits(X, cov),
               **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return (SKGaussianMixture(K, **options).fit(X),
                GaussianMixture(K, **options).fit(data))


def _assert_same(ref, got, rtol=1e-6):
    assert got.n_iter_ == ref.n_iter_
    assert got.converged_ == ref.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "precisions_"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=rtol,
                                   atol=1e-9, err_msg=name)
    assert got.lower_bound_ == pytest.approx(ref.lower_bound_, rel=rtol)
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=rtol)


def _zarr(X, folder, chunks=500):
    z = zarr.create_array(str(folder / "x.zarr"), shape=X.shape, dtype="f8",
                          chunks=(chunks, X.shape[1]))
    z[:] = X
    return str(folder / "x.zarr")


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
@pytest.mark.parametrize("source", ["numpy", "dask", "zarr"])
def test_same_parameters_as_scikit_learn(X, cov, source, tmp_path):
    data = {"numpy": X, "dask": da.from_array(X, chunks=(333, 3)),
            "zarr": _zarr(X, tmp_path)}[source]
    ref, got = _fit_both(X, data, cov)
    assert ref.n_iter_ > 3  # the comparison covers several iterations
    _assert_same(ref, got)
    # what a fitted model returns, lazy for chunked input
    for method in ("predict_proba", "score_samples", "predict"):
        out = getattr(got, method)(data if source != "zarr" else da.from_zarr(data))
        assert isinstance(out, np.ndarray) == (source == "numpy")
        np.testing.assert_allclose(np.asarray(out), getattr(ref, method)(X), rtol=1e-6,
                                   atol=1e-9, err_msg=method)
    assert got.score(X) == pytest.approx(ref.score(X), rel=1e-9)
    assert got.bic(X) == pytest.approx(ref.bic(X), rel=1e-9)
    assert got.aic(X) == pytest.approx(ref.aic(X), rel=1e-9)


@pytest.mark.cluster
def test_same_parameters_on_a_two_process_cluster(X):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=50) as cluster, \
            distributed.Client(cluster):
        for cov in COVARIANCE_TYPES:
            ref, got = _fit_both(X, da.from_array(X, chunks=(400, 3)), cov)
            _assert_same(ref, got)


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_log_likelihood_never_decreases(X, cov):
    gm = GaussianMixture(K, covariance_type=cov, random_state=0, tol=1e-8,
                         max_iter=200).fit(X)
    steps = np.diff(gm.lower_bounds_)
    assert (steps >= -1e-10).all()
    assert gm.converged_


def test_default_fit_is_as_good_as_scikit_learn(X):
    """From dkmeans' own k-means start (not scikit-learn's): the same optimum
    on well separated blobs."""
    ours = GaussianMixture(K, random_state=0).fit(X)
    theirs = SKGaussianMixture(K, random_state=0).fit(X)
    assert ours.lower_bound_ >= theirs.lower_bound_ - 1e-3
    order = np.lexsort(ours.means_.T)
    np.testing.assert_allclose(ours.means_[order], theirs.means_[np.lexsort(theirs.means_.T)],
                               atol=0.05)


def test_weights_equal_repeated_rows(X):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, size=len(X))
    inits = _inits(X, "diag")
    weighted = GaussianMixture(K, covariance_type="diag", **inits).fit(
        X, sample_weight=counts)
    repeated = GaussianMixture(K, covariance_type="diag", **inits).fit(
        np.repeat(X, counts, axis=0))
    _assert_same(repeated, weighted, rtol=1e-9)


def test_streamed_equals_persisted(X, tmp_path):
    path = _zarr(X, tmp_path, chunks=300)
    inits = _inits(X, "full")
    persisted = GaussianMixture(K, persist=True, **inits).fit(path)
    streamed = GaussianMixture(K, persist=False, **inits).fit(path)
    _assert_same(persisted, streamed, rtol=1e-12)


def test_save_and_load_round_trip(X, tmp_path):
    gm = GaussianMixture(K, covariance_type="full", random_state=0, n_init=2,
                         means_init=X[:K]).fit(X)
    gm.save(tmp_path / "gm")
    back = load(tmp_path / "gm")
    assert isinstance(back, GaussianMixture)
    params = back.get_params()
    np.testing.assert_array_equal(params.pop("means_init"), X[:K])
    assert params == {k: v for k, v in gm.get_params().items() if k != "means_init"}
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "lower_bounds_"):
        np.testing.assert_allclose(getattr(back, name), getattr(gm, name), rtol=1e-12)
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))
    assert not list((tmp_path / "gm").glob("*.pkl"))


@pytest.mark.parametrize("cov", COVARIANCE_TYPES)
def test_sample_draws_as_scikit_learn(X, cov):
    ref, got = _fit_both(X, X, cov, random_state=3)
    a, la = ref.sample(500)
    b, lb = got.sample(500)
    np.testing.assert_array_equal(la, lb)
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-8)


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(InvalidInputError, match="n_samples >= n_components"):
        GaussianMixture(25).fit(X)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(InvalidInputError, match=r"NaN or infinity.*row 7"):
        GaussianMixture(2, means_init=X[:2]).fit(bad)
    with pytest.raises(InvalidInputError, match=r"NaN or infinity.*row 7"):
        GaussianMixture(2).fit(bad)
    # a component on a single repeated point is singular without reg_covar
    collapsed = np.vstack([np.ones((10, 2)), X])
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*reg_covar=0"):
        GaussianMixture(2, reg_covar=0, means_init=[[1, 1], [0, 0]],
                        covariance_type="diag").fit(collapsed)
    fitted = GaussianMixture(2, reg_covar=1e-6, means_init=[[1, 1], [0, 0]],
                             covariance_type="diag").fit(collapsed)
    assert np.isfinite(fitted.lower_bound_)
    with pytest.raises(InvalidParameterError, match="'covariance_type'"):
        GaussianMixture(2, covariance_type="tied").fit(X)
    with pytest.raises(InvalidParameterError, match="'reg_covar'"):
        GaussianMixture(2, reg_covar=-1.0).fit(X)
    with pytest.raises(InvalidParameterError, match="'means_init' should have the shape"):
        GaussianMixture(2, means_init=np.zeros((3, 2))).fit(X)
    with pytest.raises(InvalidParameterError, match="weights_init must be non-negative"):
        GaussianMixture(2, weights_init=[0.9, 0.3]).fit(X)
    with pytest.raises(InvalidParameterError, match="positive definite"):
        GaussianMixture(2, precisions_init=np.array([np.eye(2), -np.eye(2)])).fit(X)
    with pytest.raises(InvalidParameterError, match="covariance_type='full' with"):
        GaussianMixture(64, covariance_type="full").fit(np.zeros((100, 1000)))
    with pytest.raises(InvalidInputError, match="3 features, but GaussianMixture"):
        GaussianMixture(2, random_state=0).fit(X).predict(np.zeros((4, 3)))


@pytest.mark.parametrize("cov", ["diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_em_step_equals_numpy(X, cov, dtype):
    from dkmeans.kernels import mixture

    rng = np.random.default_rng(1)
    x = X.astype(dtype)
    w = rng.uniform(0, 2, size=len(x))
    means = X[rng.choice(len(X), K, replace=False)]
    prec_chol = rng.uniform(0.3, 1.0, size=(K, 3) if cov == "diag" else K)
    log_weights = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    loglik, *sums = mixture.em_sums_diagonal(x, w, log_weights, means, prec_chol, cov)
    log_norm, resp = mixture.responsibilities(x, log_weights, means, prec_chol, cov)
    expected = mixture.moment_sums(x, resp * w[:, None], means, "diag")
    assert loglik == pytest.approx(w @ log_norm, rel=1e-12)
    for got, want in zip(sums, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
