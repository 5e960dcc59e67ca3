"""Tables and the command line as people use them (issue 28): missing
values and scaling at every entry point that fits, small jobs in process.

Oracles: the same fit on rows imputed and standardized by numpy, a Gaussian
mixture's equivariance under a change of units, and the model's own
preprocessing for what ``evaluate`` refits."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _cli import run
from sklearn.datasets import make_blobs

import dkmeans
from dkmeans.errors import InputTypeError, InvalidInputError, InvalidParameterError


def _with_nan(n=3000, seed=0):
    """Blobs in very different units, 1% of one feature missing."""
    X, _ = make_blobs(n, centers=4, n_features=3, random_state=seed)
    X = X * [1.0, 100.0, 10_000.0]
    X[np.random.default_rng(seed).choice(n, n // 100, replace=False), 1] = np.nan
    return X


def _by_hand(X):
    """numpy's imputation by the column mean, then standardization by the
    observed values' mean and standard deviation (as scikit-learn's
    StandardScaler learns them from data with NaN)."""
    mean, sd = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    filled = np.where(np.isnan(X), mean, X)
    return filled, (filled - mean) / sd, mean, sd


def _same_centers(got, standardized, mean, sd):
    """Centers in the data's units equal standardized ones mapped back."""
    np.testing.assert_allclose((got - mean) / sd, standardized, rtol=1e-6, atol=1e-6)


def test_every_fitting_entry_point_takes_missing_and_scale():
    X = _with_nan()
    _, Z, mean, sd = _by_hand(X)
    km = dkmeans.KMeans(4, random_state=0, missing="impute", scale=True).fit(X)
    ref = dkmeans.KMeans(4, random_state=0).fit(Z)
    _same_centers(km.cluster_centers_, ref.cluster_centers_, mean, sd)
    mb = dkmeans.MiniBatchKMeans(4, random_state=0, missing="impute", scale=True).fit(X)
    mb_ref = dkmeans.MiniBatchKMeans(4, random_state=0).fit(Z)
    _same_centers(mb.cluster_centers_, mb_ref.cluster_centers_, mean, sd)
    assert mb.predict(X[:50]).tolist() == mb_ref.predict(Z[:50]).tolist()
    sw = dkmeans.sweep(X, [3, 4], missing="impute", scale=True, gap=True, n_refs=2)
    sw_ref = dkmeans.sweep(Z, [3, 4], gap=True, n_refs=2)
    np.testing.assert_allclose(sw.inertia, sw_ref.inertia, rtol=1e-6)
    np.testing.assert_allclose(sw.gap, sw_ref.gap, rtol=1e-6)
    _same_centers(sw.centers[1], sw_ref.centers[1], mean, sd)
    st = dkmeans.stability(X, 4, n_runs=3, missing="impute", scale=True)
    st_ref = dkmeans.stability(Z, 4, n_runs=3)
    np.testing.assert_allclose(st.ari, st_ref.ari, rtol=1e-9)
    _same_centers(st.reference, st_ref.reference, mean, sd)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_scaled_mixture_is_the_same_mixture_in_the_data_units(covariance_type):
    X = _with_nan(2000, seed=1)
    _, Z, mean, sd = _by_hand(X)
    gm = dkmeans.GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                                 missing="impute", scale=True).fit(X)
    ref = dkmeans.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(Z)
    # x = z * sd + mean: means move, covariances scale, log-densities shift
    ours, theirs = np.argsort(gm.means_[:, 0]), np.argsort(ref.means_[:, 0] * sd[0])
    _same_centers(gm.means_[ours], ref.means_[theirs], mean, sd)
    factor = np.outer(sd, sd) if covariance_type == "full" else sd**2
    np.testing.assert_allclose(gm.covariances_[ours], ref.covariances_[theirs] * factor,
                               rtol=1e-6)
    np.testing.assert_allclose(gm.lower_bound_, ref.lower_bound_ - np.log(sd).sum(),
                               rtol=1e-9)
    np.testing.assert_allclose(gm.score_samples(X), ref.score_samples(Z) - np.log(sd).sum(),
                               rtol=1e-6)
    relabel = np.empty(3, int)
    relabel[theirs] = ours
    assert gm.predict(X).tolist() == relabel[ref.predict(Z)].tolist()  # NaN imputed too
    with pytest.raises(InvalidParameterError, match="use 'diag'"):
        dkmeans.GaussianMixture(3, covariance_type="spherical", scale=True).fit(X)


def test_a_scaled_imputing_mixture_survives_a_save(tmp_path):
    X = _with_nan(1000, seed=2)
    gm = dkmeans.GaussianMixture(2, random_state=0, missing="impute", scale=True).fit(X)
    gm.save(tmp_path / "m")
    back = dkmeans.load(tmp_path / "m")
    assert (back.scale, back.missing) == (True, "impute")
    np.testing.assert_array_equal(back.score_samples(X), gm.score_samples(X))


@pytest.mark.parametrize("fit", [
    lambda X: dkmeans.KMeans(3).fit(X),
    lambda X: dkmeans.MiniBatchKMeans(3).fit(X),
    lambda X: dkmeans.GaussianMixture(3).fit(X),
    lambda X: dkmeans.sweep(X, [2, 3]),
    lambda X: dkmeans.stability(X, 3, n_runs=2),
], ids=["KMeans", "MiniBatchKMeans", "GaussianMixture", "sweep", "stability"])
def test_the_nan_error_names_its_row_and_the_way_out(fit):
    X = _with_nan(500)
    first = int(np.flatnonzero(np.isnan(X).any(axis=1))[0])
    with pytest.raises(InvalidInputError) as err:
        fit(X)
    text = str(err.value)
    assert f"first at row {first}" in text and 'missing="impute"' in text
    assert "--missing impute" in text and "k-means" not in text


def test_partial_fit_refuses_what_it_cannot_learn():
    with pytest.raises(InvalidParameterError, match="partial_fit learns no scaling"):
        dkmeans.MiniBatchKMeans(2, scale=True).partial_fit(np.ones((10, 2)))


@pytest.fixture(scope="module")
def customers(tmp_path_factory):
    """A customers table: three numeric columns in their own units, a text
    column, missing values."""
    X = _with_nan(4000, seed=3)
    names = [f"customer {i}" for i in range(len(X))]
    path = tmp_path_factory.mktemp("tables") / "customers.csv"
    pd.DataFrame({"age": X[:, 0], "income": X[:, 1], "name": names,
                  "spend": X[:, 2]}).to_csv(path, index=False)
    return path


def test_the_command_line_chooses_k_on_a_table_with_missing_values(customers, tmp_path):
    cols = ["--columns", "age,income,spend"]
    run("fit", customers, "-k", 4, *cols, "--missing", "impute", "--scale", "-o",
        tmp_path / "m", "-q")
    ev = json.loads(run("evaluate", tmp_path / "m", customers, "--sweep", "3:5",
                        "--stability", "--runs", 2, "--json", "-q").stdout)
    X = pd.read_csv(customers)[["age", "income", "spend"]].to_numpy()
    expected = dkmeans.sweep(X, [3, 4, 5], missing="impute", scale=True, stability=True,
                             stability_runs=2)
    got = [row["inertia"] for row in ev["sweep"]["table"]]
    np.testing.assert_allclose(got, expected.inertia, rtol=1e-5)  # the model's preprocessing
    for mode in ("minibatch", "gmm"):
        out = json.loads(run("fit", customers, "-k", 3, *cols, "--mode", mode, "--missing",
                             "impute", "--scale", "-o", tmp_path / mode, "--json",
                             "-q").stdout)
        assert out["state"] == "complete"
    gmm = json.loads(run("evaluate", tmp_path / "gmm", customers, "--stability", "--runs", 2,
                         "--json", "-q").stdout)
    assert 0 <= gmm["stability"]["ari_mean"] <= 1
    # refits told not to impute: the error names the way out, one line, exit 2
    proc = run("evaluate", tmp_path / "m", customers, "--stability", "--missing", "error",
               check=False)
    assert proc.returncode == 2 and "--missing impute" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run("fit", customers, "-k", 3, *cols, "--mode", "gmm", "-o", tmp_path / "x",
               check=False)
    assert proc.returncode == 2 and "k-means" not in proc.stderr


def test_a_small_job_runs_in_process_and_a_cluster_only_when_asked(customers, tmp_path):
    cols = ["--columns", "age,income,spend", "--missing", "impute"]
    small = run("fit", customers, "-k", 3, *cols, "-o", tmp_path / "a", "-v")
    assert "computing in this process" in small.stderr and "dashboard" not in small.stderr
    asked = run("fit", customers, "-k", 3, *cols, "-o", tmp_path / "b", "-v", "--workers", 1)
    assert "computing in this process" not in asked.stderr
    assert "dashboard: http://127.0.0.1:" in asked.stderr
    a, b = dkmeans.load(tmp_path / "a"), dkmeans.load(tmp_path / "b")
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-6)


@pytest.mark.parametrize("row", [5, 3500], ids=["in-the-first-rows", "far-down"])
def test_a_text_value_in_a_number_column(customers, tmp_path, row):
    df = pd.read_csv(customers).astype({"income": object, "spend": object})
    df.loc[row, "income"] = "12,5"
    df.loc[row + 1, "spend"] = "n/a"  # missing, as pandas reads it: not an error
    path = tmp_path / "typo.csv"
    df.to_csv(path, index=False)
    cols = ["--columns", "age,income,spend"]
    proc = run("fit", path, "-k", 3, *cols, "-o", tmp_path / "m", check=False)
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert f"Column 'income' of '{path}' holds '12,5' at row {row}" in line
    assert "--missing impute" in line and not (tmp_path / "m").exists()
    with pytest.raises(InputTypeError, match="'12,5' at row"):
        dkmeans.open_array(path, columns=["age", "income", "spend"])
    # read as missing, then imputed: as the same table with NaN there
    X = dkmeans.open_array(path, columns=["age", "income", "spend"],
                           non_numeric="missing").compute()
    expected = pd.read_csv(customers)[["age", "income", "spend"]].to_numpy()
    expected[row, 1], expected[row + 1, 2] = np.nan, np.nan
    np.testing.assert_array_equal(X, expected)
    out = json.loads(run("fit", path, "-k", 3, *cols, "--missing", "impute", "-o",
                         tmp_path / "m", "--json", "-q").stdout)
    ref = dkmeans.KMeans(3, random_state=0, missing="impute").fit(expected)
    assert out["inertia"] == pytest.approx(ref.inertia_, rel=1e-6)


def test_models_from_the_command_line_and_from_python_are_one(customers, tmp_path):
    cols = ["age", "income", "spend"]
    run("fit", customers, "-k", 3, "--columns", ",".join(cols), "--missing", "impute", "-o",
        tmp_path / "cli", "-q")
    cli = dkmeans.load(tmp_path / "cli" / "model.json")  # the file names its folder
    assert list(cli.feature_names_in_) == cols
    py = dkmeans.KMeans(3, random_state=0, missing="impute").fit(customers, columns=cols)
    assert list(py.feature_names_in_) == cols
    np.testing.assert_allclose(py.cluster_centers_, cli.cluster_centers_, rtol=1e-6)
    df = pd.read_csv(customers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted without feature names"
        by_frame = cli.predict(df[cols])
    # a table path is read by the model's own columns (the text column left out)
    np.testing.assert_array_equal(np.asarray(cli.predict(customers)), by_frame)
    np.testing.assert_array_equal(np.asarray(py.predict(customers)), by_frame)
    gm = dkmeans.GaussianMixture(2, random_state=0, missing="impute").fit(customers,
                                                                         columns=cols)
    gm.save(tmp_path / "gm")
    back = dkmeans.load(tmp_path / "gm")
    assert list(back.feature_names_in_) == cols
    np.testing.assert_array_equal(np.asarray(back.predict(customers)),
                                  gm.predict(df[cols].to_numpy()))
    with pytest.raises(InvalidParameterError, match="columns= picks the columns"):
        dkmeans.KMeans(2).fit(df[cols].to_numpy(), columns=cols)


def test_saving_a_model_under_a_file_name_warns_and_python_refuses_to_overwrite(tmp_path):
    km = dkmeans.KMeans(2, random_state=0).fit(np.random.default_rng(0).random((50, 2)))
    with pytest.warns(UserWarning, match="looks like a file's"):
        km.save(tmp_path / "km.pkl")
    assert (tmp_path / "km.pkl" / "model.json").is_file()
    with pytest.raises(dkmeans.errors.OutputExistsError, match="overwrite=True"), \
            pytest.warns(UserWarning):
        km.save(tmp_path / "km.pkl")


def test_dask_ml_names_mean_the_same_with_a_warning():
    X, _ = make_blobs(2000, centers=3, random_state=0)
    ref = dkmeans.KMeans(3, random_state=0, init_rounds=3).fit(X)
    with pytest.warns(FutureWarning, match="algorithm='full' is dask-ml's name"):
        full = dkmeans.KMeans(3, random_state=0, init_rounds=3, algorithm="full").fit(X)
    with pytest.warns(FutureWarning, match="init_max_iter is dask-ml's name"):
        rounds = dkmeans.KMeans(3, random_state=0, init_max_iter=3).fit(X)
    np.testing.assert_array_equal(full.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(rounds.cluster_centers_, ref.cluster_centers_)


def test_labels_back_as_a_table(customers, tmp_path):
    cols = ["age", "income", "spend"]
    run("fit", customers, "-k", 3, "--columns", ",".join(cols), "--missing", "impute",
        "--scale", "-o", tmp_path / "m", "-q")
    model = dkmeans.load(tmp_path / "m")
    df = pd.read_csv(customers)
    labels = model.predict(df[cols])
    distance = model.transform(df[cols]).min(axis=1)  # in the scaled space, as fitted
    run("predict", tmp_path / "m", customers, "-o", tmp_path / "labels.csv", "--key", "name",
        "--with-distance", "-q")
    got = pd.read_csv(tmp_path / "labels.csv")
    assert list(got.columns) == ["row", "name", "label", "distance"]
    np.testing.assert_array_equal(got["row"], np.arange(len(df)))
    assert list(got["name"]) == list(df["name"])
    np.testing.assert_array_equal(got["label"], labels)
    np.testing.assert_allclose(got["distance"], distance, rtol=1e-6)
    # Parquet and TSV the same rows; an existing table needs --force
    run("predict", tmp_path / "m", customers, "-o", tmp_path / "labels.parquet", "-q")
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "labels.parquet")["label"], labels)
    proc = run("predict", tmp_path / "m", customers, "-o", tmp_path / "labels.csv", check=False)
    assert proc.returncode == 2 and "--force" in proc.stderr
    run("predict", tmp_path / "m", customers, "-o", tmp_path / "labels.tsv", "--force", "-q")
    assert (tmp_path / "labels.tsv").read_text().splitlines()[0] == "row\tlabel"
    # never the input, never a file that is not dkmeans labels, never an unknown suffix
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    for target, message in ((customers, "is the input"), (tmp_path / "notes.csv",
                            "not a labels table dkmeans wrote"), (tmp_path / "l.txt", ".txt")):
        proc = run("predict", tmp_path / "m", customers, "-o", target, "--force", check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert (tmp_path / "notes.csv").read_text() == "a,b\n1,2\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_predict_to_table_in_python_keeps_the_row_order_of_many_blocks(tmp_path):
    import dask.array as da

    X, _ = make_blobs(5000, centers=4, n_features=3, random_state=0)
    km = dkmeans.KMeans(4, random_state=0).fit(X)
    chunked = da.from_array(X, chunks=700)  # 8 blocks, 8 parts joined in order
    km.predict_to_table(chunked, tmp_path / "l.csv")
    got = pd.read_csv(tmp_path / "l.csv")
    np.testing.assert_array_equal(got["row"], np.arange(5000))
    np.testing.assert_array_equal(got["label"], km.predict(X))
    gm = dkmeans.GaussianMixture(3, random_state=0).fit(X)
    gm.predict_to_table(chunked, tmp_path / "g.parquet")
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "g.parquet")["label"],
                                  gm.predict(X))
    with pytest.raises(InvalidParameterError, match="not distances"):
        gm.predict_to_table(X, tmp_path / "g2.csv", with_distance=True)


def test_labels_tables_on_an_object_store_filesystem():
    """memory:// takes the object-store path: the joined file copied into
    place, the Parquet parts replaced and the marker written last."""
    import fsspec

    X, _ = make_blobs(3000, centers=3, n_features=2, random_state=1)
    km = dkmeans.KMeans(3, random_state=0).fit(X)
    fs = fsspec.filesystem("memory")
    try:
        for target in ("memory://out/l.csv", "memory://out/l.parquet"):
            km.predict_to_table(X, target)
            km.predict_to_table(X[::-1].copy(), target, overwrite=True)  # replaced whole
            if target.endswith(".csv"):
                with fs.open(target, "rb") as f:
                    got = pd.read_csv(f)
            else:
                with fs.open(f"{target}/part-000000.parquet", "rb") as f:
                    got = pd.read_parquet(f)
            np.testing.assert_array_equal(got["label"], km.predict(X[::-1]))
        assert fs.exists("out/l.parquet/_dkmeans_labels.json")
        assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls("out", detail=False)) == \
            ["l.csv", "l.parquet"]  # nothing staged is left
    finally:
        fs.rm("out", recursive=True)
