"""Model files: exact round trips, no pickle, and clear refusals."""

import json
import pickle

import numpy as np
import pytest
from sklearn.datasets import make_blobs

import dkmeans
from dkmeans import InputNotFoundError, InvalidInputError, KMeans
from dkmeans.errors import OutputExistsError


@pytest.fixture(scope="module")
def fitted():
    X, _ = make_blobs(2000, centers=5, n_features=3, random_state=0)
    X = X.astype(np.float32)
    return X, KMeans(5, random_state=0, tol=1e-3).fit(X)


def test_round_trip_is_exact(fitted, tmp_path):
    X, km = fitted
    km.save(tmp_path / "m")
    back = dkmeans.load(tmp_path / "m")
    assert back.get_params() == km.get_params()
    np.testing.assert_array_equal(back.cluster_centers_, km.cluster_centers_)
    assert back.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(back.inertia_history_, km.inertia_history_)
    assert (back.inertia_, back.n_iter_, back.n_features_in_) == (
        km.inertia_, km.n_iter_, km.n_features_in_)
    np.testing.assert_array_equal(back.predict(X), km.predict(X))
    assert back.score(X) == km.score(X)


def test_array_init_round_trips(fitted, tmp_path):
    X, _ = fitted
    km = KMeans(5, init=X[:5]).fit(X)
    back = dkmeans.load(km.save(tmp_path / "m"))
    np.testing.assert_array_equal(back.init, X[:5])
    np.testing.assert_array_equal(back.fit(X).cluster_centers_, km.cluster_centers_)


def _centers_file(path):
    meta = json.loads((path / "model.json").read_text())
    return path / meta["arrays"]["cluster_centers"]["file"]


def _rewrite_centers(path, data):
    """Replace the centers file and its checksum, as a consistent edit would."""
    import hashlib

    meta = json.loads((path / "model.json").read_text())
    (path / meta["arrays"]["cluster_centers"]["file"]).unlink()
    digest = hashlib.sha256(data).hexdigest()
    meta["arrays"]["cluster_centers"] = {"file": f"cluster_centers-{digest[:12]}.npy",
                                         "sha256": digest}
    (path / meta["arrays"]["cluster_centers"]["file"]).write_bytes(data)
    (path / "model.json").write_text(json.dumps(meta))


def _npy(arr, allow_pickle=False):
    import io

    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_files_hold_no_pickle(fitted, tmp_path):
    _, km = fitted
    km.save(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == [_centers_file(tmp_path / "m").name, "model.json"]
    assert names[0].startswith("cluster_centers-") and names[0].endswith(".npy")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == 2
    assert meta["fitted"]["inertia_history"] == km.inertia_history_.tolist()
    for p in (tmp_path / "m").glob("*.npy"):
        np.load(p, allow_pickle=False)  # raises if any holds objects


def test_resave_replaces_and_failed_save_keeps_the_old(fitted, tmp_path, monkeypatch):
    X, km = fitted
    km.save(tmp_path / "m")
    other = KMeans(3, random_state=0).fit(X)
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        other.save(tmp_path / "m")
    other.save(tmp_path / "m", overwrite=True)
    assert dkmeans.load(tmp_path / "m").n_clusters == 3

    def broken(file, arr, allow_pickle=False):
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        km.save(tmp_path / "m", overwrite=True)
    monkeypatch.undo()
    assert dkmeans.load(tmp_path / "m").n_clusters == 3  # the old model, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporaries left
    # and the directory holds exactly the old model's files
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
        [_centers_file(tmp_path / "m").name, "model.json"])


def test_resave_leaves_only_the_new_arrays(fitted, tmp_path):
    X, km = fitted
    km.save(tmp_path / "m")
    KMeans(3, random_state=0).fit(X).save(tmp_path / "m", overwrite=True)
    back = dkmeans.load(tmp_path / "m")
    assert back.cluster_centers_.shape == (3, 3)
    assert len(list((tmp_path / "m").glob("*.npy"))) == 1


def test_unfitted_model_is_not_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KMeans(2).save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


def _corrupt(path, what):
    meta = json.loads((path / "model.json").read_text())
    if what == "truncated-json":
        (path / "model.json").write_text((path / "model.json").read_text()[:40])
    elif what == "newer":
        meta["format_version"] = 99
        (path / "model.json").write_text(json.dumps(meta))
    elif what == "other-format":
        meta["format"] = "something-else"
        (path / "model.json").write_text(json.dumps(meta))
    elif what == "missing-field":
        del meta["fitted"]
        (path / "model.json").write_text(json.dumps(meta))
    elif what == "short-history":
        meta["fitted"]["inertia_history"] = meta["fitted"]["inertia_history"][:-1]
        (path / "model.json").write_text(json.dumps(meta))
    elif what == "truncated-npy":
        data = _centers_file(path).read_bytes()
        _centers_file(path).write_bytes(data[: len(data) - 7])
    elif what == "truncated-consistent":
        data = _centers_file(path).read_bytes()
        _rewrite_centers(path, data[: len(data) - 7])
    elif what == "pickled-npy":
        _rewrite_centers(path, _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True))
    elif what == "wrong-shape":
        _rewrite_centers(path, _npy(np.zeros((2, 2), np.float32)))
    elif what == "no-centers":
        _centers_file(path).unlink()


@pytest.mark.parametrize("what,match", [
    ("truncated-json", "not valid JSON"),
    ("newer", "format version 99; this dkmeans reads versions up to 2"),
    ("other-format", "not a dkmeans model"),
    ("missing-field", "lacks or mistypes a field"),
    ("truncated-npy", "does not match its sha256"),
    ("truncated-consistent", "not a plain numeric array"),
    ("pickled-npy", "not a plain numeric array"),
    ("wrong-shape", r"shape \(2, 2\)"),
    ("short-history", "inertia_history has"),
    ("no-centers", r"lacks cluster_centers-"),
])
def test_bad_model_directories_are_refused(fitted, tmp_path, what, match):
    _, km = fitted
    km.save(tmp_path / "m")
    _corrupt(tmp_path / "m", what)
    with pytest.raises(InvalidInputError, match=match):
        dkmeans.load(tmp_path / "m")


def test_missing_model_directory(tmp_path):
    with pytest.raises(InputNotFoundError, match="No model directory"):
        dkmeans.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError, match=r"no model\.json"):
        dkmeans.load(tmp_path / "empty")


def test_loaded_model_pickles_like_a_fitted_one(fitted, tmp_path):
    X, km = fitted
    back = pickle.loads(pickle.dumps(dkmeans.load(km.save(tmp_path / "m"))))
    np.testing.assert_array_equal(back.predict(X), km.predict(X))
