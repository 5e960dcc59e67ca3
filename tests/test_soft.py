"""Ambiguity and soft assignments of a fitted KMeans, against numpy brute
force on the same centers, for numpy, dask and Zarr input."""

import dask.array as da
import numpy as np
import pytest
import zarr

from dkmeans import InvalidParameterError, KMeans, load


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 3)) + 4 * rng.integers(0, 4, size=(3000, 1))
    return X, KMeans(4, random_state=0).fit(X)


def _brute(X, C):
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


@pytest.fixture(params=["numpy", "dask", "zarr"])
def as_input(request, tmp_path):
    def convert(X):
        if request.param == "numpy":
            return X
        if request.param == "dask":
            return da.from_array(X, chunks=(700, X.shape[1]))
        z = zarr.create_array(str(tmp_path / "x.zarr"), shape=X.shape, dtype="f8",
                              chunks=(700, X.shape[1]))
        z[:] = X
        return str(tmp_path / "x.zarr")
    return convert


def _value(out):
    return out.compute() if isinstance(out, da.Array) else out


def test_ambiguity_matches_brute_force(fitted, as_input):
    X, km = fitted
    d = np.sqrt(np.sort(_brute(X, km.cluster_centers_), axis=1))
    expected = d[:, 0] / d[:, 1]
    got = _value(km.ambiguity(as_input(X)))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert got.min() >= 0 and got.max() <= 1
    # a row on a center is certain; a row halfway between two is not
    c = km.cluster_centers_
    nearest_other = np.argsort(((c - c[0]) ** 2).sum(axis=1))[1]
    mid = (c[0] + c[nearest_other]) / 2
    assert km.ambiguity(mid[None])[0] > 0.9
    assert km.ambiguity(c[:1])[0] == pytest.approx(0, abs=1e-12)


def test_predict_proba_matches_brute_force(fitted, as_input):
    X, km = fitted
    T = 0.7
    logits = -_brute(X, km.cluster_centers_) / (2 * T)
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = _value(km.predict_proba(as_input(X), temperature=T))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(got.argmax(axis=1), km.predict(X))


def test_default_temperature_is_the_pooled_within_cluster_variance(fitted, tmp_path):
    X, km = fitted
    assert km.within_variance_ == pytest.approx(km.inertia_ / (len(X) * X.shape[1]))
    np.testing.assert_allclose(km.predict_proba(X),
                               km.predict_proba(X, temperature=km.within_variance_))
    # softer with a higher temperature, harder with a lower one
    hard, soft = km.predict_proba(X, temperature=1e-3), km.predict_proba(X, temperature=1e3)
    assert hard.max(axis=1).mean() > km.predict_proba(X).max(axis=1).mean()
    assert soft.max(axis=1).max() < 0.3
    km.save(tmp_path / "model")
    assert load(tmp_path / "model").within_variance_ == km.within_variance_


@pytest.mark.parametrize("bad", [0, -1.0, np.inf, np.nan, "1"])
def test_bad_temperature_is_named(fitted, bad):
    X, km = fitted
    with pytest.raises(InvalidParameterError, match="temperature"):
        km.predict_proba(X, temperature=bad)


def test_one_cluster_is_certain():
    X = np.random.default_rng(0).normal(size=(50, 2))
    km = KMeans(1, random_state=0).fit(X)
    np.testing.assert_array_equal(km.ambiguity(X), 0.0)
    np.testing.assert_array_equal(km.predict_proba(X), 1.0)
