"""The command line as a scheduler runs it: subprocesses, exit codes, kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from _cli import run
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning

import dkmeans

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs")
    X, _ = make_blobs(150_000, centers=30, n_features=8, cluster_std=6.0, random_state=1)
    np.save(d / "X.npy", X.astype(np.float32))
    return d


def test_fit_info_predict_evaluate(data, tmp_path):
    out = json.loads(run("fit", data / "X.npy", "-k", 5, "-o", tmp_path / "m", "--workers", 1,
                         "--json", "-q").stdout)
    assert out["state"] == "complete" and out["n_clusters"] == 5
    assert out["random_state"] == 0  # the command line's default, said in its summary
    model = dkmeans.load(tmp_path / "m")
    info = json.loads(run("info", tmp_path / "m", "--json").stdout)
    assert info["input_fingerprint"]["shape"] == [150_000, 8]
    run("predict", tmp_path / "m", data / "X.npy", "-o", tmp_path / "labels.zarr",
        "-q")
    X = np.load(data / "X.npy")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "labels.zarr"))[:],
                                  model.predict(X))
    ev = json.loads(run("evaluate", tmp_path / "m", data / "X.npy", "-q",
                        "--json").stdout)
    assert ev["inertia"] == pytest.approx(-model.score(X), rel=1e-9)


def test_evaluate_with_stability_and_a_sweep(data, tmp_path):
    small = tmp_path / "small.npy"
    np.save(small, np.load(data / "X.npy")[:5_000])
    run("fit", small, "-k", 5, "-o", tmp_path / "m", "-q")  # small: in process
    ev = json.loads(run("evaluate", tmp_path / "m", small, "--stability", "--runs", 2,
                        "--sweep", "4:5", "--gap-refs", 2, "-q", "--json").stdout)
    same = dkmeans.stability(np.load(small), 5, n_runs=2)
    assert ev["stability"]["k"] == 5
    assert ev["stability"]["ari_mean"] == pytest.approx(same.ari_mean, rel=1e-9)
    assert [row["k"] for row in ev["sweep"]["table"]] == [4, 5]
    assert {"gap", "gap_stderr", "stability"} <= set(ev["sweep"]["table"][0])
    assert "gap" in ev["sweep"]["suggestions"]
    proc = run("evaluate", tmp_path / "m", small, "--sweep", "6:2", check=False)
    assert proc.returncode == 2 and "KMIN <= KMAX" in proc.stderr


def test_minibatch_fit_from_the_command_line(data, tmp_path):
    out = json.loads(run("fit", data / "X.npy", "-k", 5, "-o", tmp_path / "m", "--mode",
                         "minibatch", "--batch-size", 4096, "--max-iter", 2, "--workers", 1,
                         "--json", "-q").stdout)
    model = dkmeans.load(tmp_path / "m")
    assert isinstance(model, dkmeans.MiniBatchKMeans)
    # the scan, at most 2 epochs and the labels pass
    assert 2 < out["n_passes_read"] <= 4
    X = np.load(data / "X.npy")
    assert out["inertia"] == pytest.approx(-model.score(X), rel=1e-6)
    full = dkmeans.KMeans(5, random_state=0).fit(X)
    assert model.inertia_ <= 1.01 * full.inertia_


def test_killed_fit_resumes_to_the_same_centers(data, tmp_path):
    args = ["fit", data / "X.npy", "-k", 30, "--tol", 0, "--max-iter", 60, "--workers", 1]
    run(*args[:-2], "-o", tmp_path / "whole", "-q")  # in process: the same centers
    whole = dkmeans.load(tmp_path / "whole")

    job = subprocess.Popen([sys.executable, "-m", "dkmeans", *map(str, args), "-o",
                            str(tmp_path / "m"), "--checkpoint-every", "1", "-q"],
                           start_new_session=True)
    meta, deadline = {}, time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        try:
            meta = json.loads((tmp_path / "m" / "model.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            meta = {}
        if meta.get("state") == "checkpoint" and meta["fitted"]["n_iter"] >= 3:
            break
        time.sleep(0.02)
    assert job.poll() is None, "the fit ended before it could be killed"
    os.killpg(job.pid, signal.SIGKILL)  # the job and its cluster, at once
    job.wait()
    killed_at = json.loads((tmp_path / "m" / "model.json").read_text())
    assert killed_at["state"] == "checkpoint"
    with pytest.raises(dkmeans.InvalidInputError, match="is a checkpoint at iteration"):
        dkmeans.load(tmp_path / "m")

    out = json.loads(run(*args, "-o", tmp_path / "m", "--resume", "--json", "-q").stdout)
    assert out["resumed_from"] >= 3
    resumed = dkmeans.load(tmp_path / "m")
    np.testing.assert_array_equal(resumed.cluster_centers_, whole.cluster_centers_)
    assert resumed.n_iter_ == whole.n_iter_
    np.testing.assert_array_equal(resumed.inertia_history_, whole.inertia_history_)
    # rerunning a finished job is a no-op
    again = json.loads(run(*args, "-o", tmp_path / "m", "--resume", "--json", "-q").stdout)
    assert again["state"] == "complete" and again["resumed_from"] is None
    # ... but not with other parameters: refused, naming what changed
    other_k = ["fit", data / "X.npy", "-k", 2, *args[4:]]
    proc = run(*other_k, "-o", tmp_path / "m", "--resume", check=False)
    assert proc.returncode == 2 and "--n-clusters is 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    # and a fit onto an existing model needs --resume or --force
    proc = run(*other_k, "-o", tmp_path / "m", check=False)
    assert proc.returncode == 2 and "already holds a complete model" in proc.stderr
    assert dkmeans.load(tmp_path / "m").n_clusters == 30  # untouched
    run(*other_k[:-2], "-o", tmp_path / "m", "--force", "-q")
    assert dkmeans.load(tmp_path / "m").n_clusters == 2


def _kill_at_checkpoint(args, out, at=3):
    """Start the job with a checkpoint every iteration; SIGKILL it (and its
    cluster) once a checkpoint of iteration ``at`` or later is written."""
    job = subprocess.Popen([sys.executable, "-m", "dkmeans", *map(str, args), "-o", str(out),
                            "--checkpoint-every", "1", "-q"], start_new_session=True)
    meta, deadline = {}, time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None:
        try:
            meta = json.loads((out / "model.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            meta = {}
        if meta.get("state") == "checkpoint" and meta["fitted"]["n_iter"] >= at:
            break
        time.sleep(0.01)
    assert job.poll() is None, "the fit ended before it could be killed"
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()


def test_gaussian_mixture_job_killed_resumes_to_the_same_parameters(data, tmp_path):
    args = ["fit", data / "X.npy", "-k", 12, "--mode", "gmm", "--covariance-type", "diag",
            "--tol", 0, "--max-iter", 40, "--workers", 1]
    out = json.loads(run(*args[:-2], "-o", tmp_path / "whole", "--json", "-q").stdout)
    assert out["n_components"] == 12 and out["n_iter"] == 40  # in process, then on a cluster
    whole = dkmeans.load(tmp_path / "whole")
    X = np.load(data / "X.npy")
    # the same model as the Python API's (the command line's seed is 0)
    with pytest.warns(ConvergenceWarning):  # tol=0: it runs all 40 iterations
        api = dkmeans.GaussianMixture(12, covariance_type="diag", tol=0, max_iter=40,
                                      random_state=0).fit(X)
    np.testing.assert_allclose(whole.means_, api.means_, rtol=1e-6, atol=1e-6)

    _kill_at_checkpoint(args, tmp_path / "m")
    killed_at = json.loads((tmp_path / "m" / "model.json").read_text())
    assert killed_at["state"] == "checkpoint" and killed_at["estimator"] == "GaussianMixture"
    with pytest.raises(dkmeans.InvalidInputError, match="is a checkpoint at iteration"):
        dkmeans.load(tmp_path / "m")
    out = json.loads(run(*args, "-o", tmp_path / "m", "--resume", "--json", "-q").stdout)
    assert out["resumed_from"] >= 3
    resumed = dkmeans.load(tmp_path / "m")
    for name in ("weights_", "means_", "covariances_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))
    proc = run("fit", data / "X.npy", "-k", 12, "--mode", "gmm", "--covariance-type", "full",
               *args[8:], "-o", tmp_path / "m", "--resume", check=False)
    assert proc.returncode == 2 and "--covariance-type is 'full'" in proc.stderr
    # info, predict and evaluate read a mixture too
    info = run("info", tmp_path / "m").stdout
    assert "12 components (diag covariances)" in info
    run("predict", tmp_path / "m", data / "X.npy", "-o", tmp_path / "labels.zarr",
        "-q")
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "labels.zarr"))[:],
                                  resumed.predict(X))
    ev = json.loads(run("evaluate", tmp_path / "m", data / "X.npy", "-q",
                        "--json").stdout)
    assert ev["log_likelihood_per_row"] == pytest.approx(resumed.score(X), rel=1e-9)
    assert ev["bic"] == pytest.approx(resumed.bic(X), rel=1e-9)


def test_printed_iterations_are_the_recorded_history(data, tmp_path):
    import re

    proc = run("fit", data / "X.npy", "-k", 12, "--tol", 0, "--max-iter", 8,
               "-o", tmp_path / "m")
    printed = [float(v) for v in re.findall(r"iteration \d+  inertia (\S+)", proc.stderr)]
    history = dkmeans.load(tmp_path / "m").inertia_history_
    assert len(printed) == len(history) > 1
    np.testing.assert_allclose(printed, history, rtol=1e-5)  # printed with 6 digits
    assert "nan" not in proc.stderr


def test_info_prints_centers_and_a_closed_pipe_is_a_normal_end(data, tmp_path):
    run("fit", data / "X.npy", "-k", 3, "-o", tmp_path / "m", "-q")
    model = dkmeans.load(tmp_path / "m")
    info = json.loads(run("info", tmp_path / "m", "--json").stdout)
    np.testing.assert_allclose(info["cluster_centers"], model.cluster_centers_, rtol=1e-6)
    assert "centers" in run("info", tmp_path / "m").stdout
    # `dkmeans info m | head`: the reader has gone before anything is written
    proc = subprocess.Popen([sys.executable, "-m", "dkmeans", "info", str(tmp_path / "m")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "BrokenPipeError" not in err and "Traceback" not in err


def test_resume_refuses_another_input(data, tmp_path):
    from dkmeans.algorithms.lloyd import LloydProgress
    from dkmeans.estimators.io import fingerprint, save_checkpoint

    X = np.load(data / "X.npy")
    params = dkmeans.KMeans(5, random_state=0).get_params()
    table = {"columns": None, "sep": None, "header": True}  # how the job reads its input
    save_checkpoint(tmp_path / "m", params, LloydProgress(2, X[:5], (1.0,)),
                    {**fingerprint(data / "X.npy"), "table": table})
    np.save(tmp_path / "other.npy", X[:1000])
    proc = run("fit", tmp_path / "other.npy", "-k", 5, "-o", tmp_path / "m", "--resume",
               "--workers", 1, check=False)
    assert proc.returncode == 2
    assert "Refusing to resume" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("fit", data / "X.npy", "-k", 6, "-o", tmp_path / "m", "--resume",
               "--workers", 1, check=False)
    assert proc.returncode == 2 and "--n-clusters is 6" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["fit", "X.npy", "-o", "m"], "required: --n-clusters"),
    (["fit", "X.npy", "-k", "0", "-o", "m"], "expected an integer >= 1"),
    (["fit", "X.npy", "-k", "3", "-o", "m", "--checkpoint-every", "0"], "integer >= 1"),
    (["fit", "missing.npy", "-k", "3", "-o", "m"], "No .npy file"),
    (["fit", "missing.zarr", "-k", "3", "-o", "m"], "No Zarr array"),
    (["fit", "X.npy", "-k", "3", "-o", "m", "--mode", "minibatch", "--checkpoint-every", "2"],
     "checkpoints are written by --mode lloyd or gmm only"),
    (["fit", "X.npy", "-k", "3", "-o", "m", "--covariance-type", "diag"],
     "--covariance-type applies to --mode gmm only"),
    (["fit", "X.npy", "-k", "3", "-o", "m", "--mode", "gmm", "--means-init", "no.npy"],
     "--means-init no.npy: not a readable .npy array"),
    (["fit", "X.npy", "-k", "3", "-o", "m", "--cluster", "bad.yaml"], "Unknown key 'wrkers'"),
    (["info", "nowhere"], "No model directory"),
    (["predict", "nowhere", "X.npy", "-o", "l.zarr"], "No model directory"),
    (["bogus"], "invalid choice"),
])
def test_bad_usage_exits_2_with_one_line(data, tmp_path, monkeypatch, capsys, args, message):
    # in this process: each case fails before any work, and a process per
    # case cost 2 s of imports (the exit status of a real process: below)
    from dkmeans.cli import main

    (tmp_path / "bad.yaml").write_text("wrkers: 2\n")
    os.symlink(data / "X.npy", tmp_path / "X.npy")
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as usage:  # argparse's own errors
        code = usage.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1]


def test_main_called_again_in_one_process_logs_each_line_once(tmp_path, capsys):
    import logging

    from dkmeans.cli import main

    handlers = list(logging.getLogger("dkmeans").handlers)
    for _ in range(3):
        assert main(["info", str(tmp_path / "nowhere")]) == 2
    assert logging.getLogger("dkmeans").handlers == handlers
    assert capsys.readouterr().err.count("No model directory") == 3


def test_bad_input_is_exit_status_2_of_the_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dkmeans", "info", "nowhere"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"dkmeans: error: No model directory at '{tmp_path}/nowhere'."


@pytest.fixture
def dask_cluster(tmp_path, dask_processes):
    """A scheduler and two workers, all started."""
    with dask_processes(tmp_path, 2) as address:
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address


def test_fit_on_an_existing_scheduler(data, tmp_path, dask_cluster):
    config = tmp_path / "scheduler.yaml"
    config.write_text(f"type: scheduler\naddress: {dask_cluster}\ntimeout: 20s\n")
    args = ["fit", data / "X.npy", "-k", 6, "--tol", 0, "--max-iter", 20, "-q"]
    remote = json.loads(run(*args, "-o", tmp_path / "r", "--cluster", config, "--json").stdout)
    run(*args, "-o", tmp_path / "l")
    assert remote["state"] == "complete"
    np.testing.assert_allclose(dkmeans.load(tmp_path / "r").cluster_centers_,
                               dkmeans.load(tmp_path / "l").cluster_centers_, rtol=1e-6)


def test_unreachable_scheduler_fails_within_its_timeout(data, tmp_path):
    config = tmp_path / "scheduler.yaml"
    config.write_text("type: scheduler\naddress: tcp://127.0.0.1:1\ntimeout: 2s\n")
    t0 = time.monotonic()
    proc = run("fit", data / "X.npy", "-k", 3, "-o", tmp_path / "m", "--cluster", config,
               check=False, timeout=60)
    assert proc.returncode == 3  # no cluster: try again later
    assert "Could not reach the Dask scheduler at tcp://127.0.0.1:1 within 2s" in proc.stderr
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_fit_from_a_folder_of_tables(data, tmp_path, kind):
    pd = pytest.importorskip("pandas")
    X = np.load(data / "X.npy")[:6000].astype(np.float64)
    folder = tmp_path / "table"
    folder.mkdir()
    for i in range(3):
        part = pd.DataFrame(X[i * 2000:(i + 1) * 2000], columns=list("abcdefgh"))
        part["label"] = "text"
        getattr(part, f"to_{kind}")(folder / f"part{i}.{kind}", index=False)
    out = json.loads(run("fit", folder, "-k", 4, "--columns", "h,a,c", "-o", tmp_path / "m",
                         "--json", "-q").stdout)
    assert out["state"] == "complete"
    ref = dkmeans.KMeans(4, random_state=0).fit(X[:, [7, 0, 2]])
    np.testing.assert_allclose(dkmeans.load(tmp_path / "m").cluster_centers_,
                               ref.cluster_centers_, rtol=1e-6)
    proc = run("fit", folder, "-k", 4, "-o", tmp_path / "m2", check=False)
    assert proc.returncode == 2 and "Column 'label' of" in proc.stderr
    assert "holds 'text' at row 0, which is not a number" in proc.stderr


def make_certificates(folder):
    """A CA and one certificate it signed for 127.0.0.1, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("dkmeans test CA"))
          .issuer_name(name("dkmeans test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - day)
          .not_valid_after(now + day)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - day).not_valid_after(now + day)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = {"ca_file": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca_file"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return files


def test_fit_on_a_tls_scheduler(data, tmp_path, dask_processes):
    pytest.importorskip("cryptography")
    tls = make_certificates(tmp_path)
    flags = ["--tls-ca-file", str(tls["ca_file"]), "--tls-cert", str(tls["cert"]),
             "--tls-key", str(tls["key"])]
    with dask_processes(tmp_path, 1, flags, protocol="tls") as address:
        assert address.startswith("tls://")
        config = tmp_path / "scheduler.yaml"
        config.write_text(f"type: scheduler\naddress: {address}\ntimeout: 30s\ntls:\n"
                          + "".join(f"  {k}: {v}\n" for k, v in tls.items()))
        out = json.loads(run("fit", data / "X.npy", "-k", 4, "--max-iter", 5, "-o",
                             tmp_path / "m", "--cluster", config, "--json", "-q").stdout)
        assert out["state"] == "complete"
        # a tls:// address without certificates is a configuration error
        config.write_text(f"type: scheduler\naddress: {address}\ntimeout: 3s\n")
        proc = run("fit", data / "X.npy", "-k", 4, "-o", tmp_path / "m2", "--cluster", config,
                   check=False, timeout=120)
        assert proc.returncode == 2 and not (tmp_path / "m2").exists()
        assert "is tls:// but the configuration names no certificates" in proc.stderr


def test_tables_as_they_come_and_a_model_that_remembers_its_columns(tmp_path):
    X, _ = make_blobs(3000, centers=3, n_features=3, random_state=0)
    lines = [f"{a:.6f}\t{b:.6f}\tname{i}\t{c:.6f}" for i, (a, b, c) in enumerate(X)]
    (tmp_path / "rows.tsv").write_text("\n".join(lines) + "\n")  # no header line
    out = json.loads(run("fit", tmp_path / "rows.tsv", "-k", 3, "--no-header", "--columns",
                         "0,1,3", "-o", tmp_path / "m", "--json", "-q").stdout)
    assert out["state"] == "complete"
    # predict on the same table needs no --columns: the model remembers them
    run("predict", tmp_path / "m", tmp_path / "rows.tsv", "-o", tmp_path / "labels.zarr",
        "-q")
    labels = zarr.open_array(str(tmp_path / "labels.zarr"))[:]
    expected = dkmeans.load(tmp_path / "m").predict(np.round(X, 6))
    np.testing.assert_array_equal(labels, expected)
    # the same rows as a CSV with a header, columns by name
    csv = "a,b,name,c\n" + "\n".join(line.replace("\t", ",") for line in lines) + "\n"
    (tmp_path / "rows.csv").write_text(csv)
    ev = json.loads(run("evaluate", tmp_path / "m", tmp_path / "rows.csv", "--columns", "a,b,c",
                        "--json", "-q").stdout)
    assert ev["inertia"] == pytest.approx(out["inertia"], rel=1e-6)
    # a missing table: one line, exit 2
    proc = run("fit", tmp_path / "missing.csv", "-k", 2, "-o", tmp_path / "x", check=False)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_every_estimator_parameter_round_trips_through_the_command_line(data, tmp_path):
    from dkmeans.cli.options import NOT_OPTIONS, OPTIONS

    for cls in (dkmeans.KMeans, dkmeans.MiniBatchKMeans, dkmeans.GaussianMixture):
        names = set(cls().get_params()) - {"n_clusters", "n_components", *NOT_OPTIONS}
        assert names <= set(OPTIONS), names - set(OPTIONS)
    lloyd = {"init": "k-means++", "n_init": 2, "max_iter": 7, "tol": 0.001, "random_state": 3,
             "oversampling_factor": 3.0, "init_rounds": 2, "persist": False,
             "algorithm": "hamerly", "scale": True, "missing": "impute", "init_size": None}
    minibatch = {"init": "random", "n_init": 2, "max_iter": 2, "tol": 0.001,
                 "random_state": 4, "batch_size": 4096, "init_size": 5000,
                 "max_no_improvement": None, "reassignment_ratio": 0.02,
                 "compute_labels": False, "scale": True, "missing": "impute"}
    cosine = {"metric": "cosine", "persist": True, "init_size": 1000, "train_size": 0.5}
    gmm = {"covariance_type": "spherical", "reg_covar": 1e-5, "max_iter": 7, "tol": 0.01,
           "random_state": 3, "n_init": 2, "init_params": "k-means||", "persist": False,
           "missing": "impute"}
    for mode, params in (("lloyd", lloyd), ("minibatch", minibatch), ("lloyd", cosine),
                         ("gmm", gmm)):
        flags = []
        for name, value in params.items():
            flag = "--" + name.replace("_", "-")
            if name == "scale":  # a switch
                flags.append(flag)
            elif name == "compute_labels":
                flags.append("--compute-labels" if value else "--no-compute-labels")
            else:
                flags += [flag, str(value).lower() if value is None or isinstance(value, bool)
                          else value]
        run("fit", data / "X.npy", "-k", 4, "--mode", mode, *flags, "-o", tmp_path / mode,
            "-q", "--force")  # a small input: in this process
        got = dkmeans.load(tmp_path / mode).get_params()
        assert {k: got[k] for k in params} == params
    proc = run("fit", data / "X.npy", "-k", 4, "--mode", "minibatch", "--metric", "cosine",
               "-o", tmp_path / "bad", check=False)
    assert proc.returncode == 2 and "--metric applies to --mode lloyd only" in proc.stderr
