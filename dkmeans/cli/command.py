"""The ``dkmeans`` command line, for people and for schedulers (cron, Airflow, SLURM).

Exit codes: 0 success; 2 bad usage or bad input, with a one-line reason on
stderr; 1 anything else. Progress goes to stderr; ``--json`` prints one
machine-readable summary line on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import Any

import numpy as np

from dkmeans.cli.demo import add_parser as add_demo_parser
from dkmeans.cli.evaluate import add_options as add_evaluate_options
from dkmeans.cli.evaluate import extras as evaluate_extras
from dkmeans.cli.evaluate import lines as evaluate_lines
from dkmeans.cli.jobs import (
    fit_and_save,
    job_cluster,
    open_input,
    printable_stdout,
    report,
    start_job,
    table_options,
)
from dkmeans.cli.mixture import describe_mixture, evaluate_mixture
from dkmeans.cli.mixture import fit_job as fit_mixture_job
from dkmeans.cli.options import (
    add_estimator_options,
    cluster_options,
    estimator_params,
    positive_int,
    storage_option,
    storage_options,
)
from dkmeans.cli.signals import (
    EXIT_NO_CLUSTER,
    IterationCheckpoints,
    Stopped,
    WorkersLost,
    handle_signals,
)

log = logging.getLogger("dkmeans")


# ---------------------------------------------------------------- commands


class _Progress(IterationCheckpoints):
    """Per-iteration lines on stderr, and checkpoints every N iterations."""

    def __init__(self, args: argparse.Namespace, out: Any, params: dict, fingerprint: dict):
        super().__init__(args, out)
        self.params, self.fingerprint = params, fingerprint
        self.previous: float | None = None

    def __call__(self, p: Any) -> None:
        change = ("" if self.previous is None
                  else f"  change {(p.inertia - self.previous) / self.previous:+.2e}")
        self.previous = p.inertia
        # the same number as inertia_history_[n_iter - 1]
        log.info("iteration %d  inertia %.6g%s  shift %.3g  %.3f s",
                 p.n_iter, p.inertia, change, p.shift, p.seconds)
        self.finished(p)

    def write(self, p: Any) -> None:
        from dkmeans.estimators.io import save_checkpoint

        save_checkpoint(self.out, self.params, p, self.fingerprint)


def _fit(args: argparse.Namespace) -> int:
    from dkmeans import KMeans
    from dkmeans.errors import InvalidInputError
    from dkmeans.estimators.io import read_checkpoint, read_meta

    if args.mode == "minibatch":
        return _fit_minibatch(args)
    if args.mode == "gmm":
        return fit_mixture_job(args)
    if args.checkpoint_every and args.train_size:
        raise InvalidInputError("--checkpoint-every: a --train-size fit keeps no "
                                "checkpoints; it reads the data twice.")
    model = KMeans(**estimator_params(args))
    params = model._params_for_file()[0]
    start, resumed_from = None, None
    storage, out, table, fp, meta = start_job(args, model, "KMeans")
    if meta is not None and meta.get("state") == "complete":
        log.info("%s already holds this finished model: nothing to do", out)
        return _summary(args, meta, resumed_from=None, seconds=0.0)
    if meta is not None:
        _, start, _ = read_checkpoint(out)
        resumed_from = start.n_iter
        log.info("resuming from iteration %d", start.n_iter)
    progress = _Progress(args, out, params, fp)
    seconds = fit_and_save(args, model, (storage, out, table, fp),
                           lambda X: model._fit(X, start=start, on_iteration=progress),
                           progress.on_stop)
    return _summary(args, read_meta(out), resumed_from=resumed_from, seconds=seconds)


def _fit_minibatch(args: argparse.Namespace) -> int:
    from dkmeans import MiniBatchKMeans
    from dkmeans.errors import InvalidInputError
    from dkmeans.estimators.io import read_meta

    if args.checkpoint_every:
        raise InvalidInputError("--checkpoint-every: checkpoints are written by --mode lloyd "
                                "or gmm only; a mini-batch fit reads at most a few passes.")
    model = MiniBatchKMeans(**estimator_params(args))
    storage, out, table, fp, meta = start_job(args, model, "MiniBatchKMeans")
    if meta is not None:  # a mini-batch job has no checkpoints: it is finished
        log.info("%s already holds this finished model: nothing to do", out)
        return _summary(args, meta, resumed_from=None, seconds=0.0)
    def fit(X: Any) -> None:
        model.fit(X)
        log.info("%d epochs, %d batches, %.2f passes read, inertia %.6g", model.n_iter_,
                 model.n_steps_, model.n_passes_read_, model.inertia_)

    seconds = fit_and_save(args, model, (storage, out, table, fp), fit,
                           lambda: "; a mini-batch fit keeps no checkpoints: rerun it")
    return _summary(args, read_meta(out), resumed_from=None, seconds=seconds,
                    n_passes_read=model.n_passes_read_)


def _summary(args: argparse.Namespace, meta: dict, **extra: Any) -> int:
    fitted, params = meta["fitted"], meta["params"]
    # the command line's own defaults, said (random_state 0: a rerun job gives
    # the same model; larger mini-batches for data on disk)
    chosen = {k: params[k] for k in ("random_state", "batch_size") if k in params}
    summary = {"model": str(args.output), "state": meta.get("state"),
               "n_clusters": params["n_clusters"], "n_iter": fitted["n_iter"],
               "inertia": fitted["inertia"], **chosen, **extra}
    said = ", ".join(f"{k} {v}" for k, v in chosen.items())
    return report(args, summary, f"{summary['model']}: k={summary['n_clusters']}, "
                                 f"{summary['n_iter']} iterations, inertia "
                                 f"{summary['inertia']:.6g} ({said})")


def _predict(args: argparse.Namespace) -> int:
    from dkmeans import load
    from dkmeans.data.labels_table import table_format, table_target
    from dkmeans.data.outputs import labels_target
    from dkmeans.data.storage import locate
    from dkmeans.errors import InvalidParameterError

    storage = storage_options(args)
    model = load(args.model, storage)
    out = locate(args.output, storage)
    source = locate(args.input, storage)
    fmt = table_format(out)  # by the suffix: .zarr, .csv, .tsv, .parquet
    if fmt is None and (args.key or args.with_distance):
        raise InvalidParameterError("--key and --with-distance add columns to a table "
                                    "output (-o labels.csv, .tsv or .parquet), not to Zarr.")
    if fmt is None:  # refused before a cluster starts
        labels_target(out, [source], args.force)
    else:
        table_target(out, fmt, [source], args.force)
    table = table_options(args, args.model)
    X = open_input(args, storage, table)
    with job_cluster(args, X.nbytes):
        X = open_input(args, storage, table)
        if fmt is None:  # chunk by chunk, on the workers
            model.predict_to_zarr(X, out, overwrite=args.force)
        else:
            read = {k: table[k] for k in ("columns", "sep", "header")}
            model.predict_to_table(args.input, out, keys=args.key and args.key.split(","),
                                   with_distance=args.with_distance, storage_options=storage,
                                   overwrite=args.force, **read)
    summary = {"labels": out.url, "n_samples": int(X.shape[0])}
    print(json.dumps(summary) if args.json else f"{out}: {X.shape[0]:,} labels")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from dkmeans import load

    storage = storage_options(args)
    model = load(args.model, storage)
    table = table_options(args, args.model)
    X = open_input(args, storage, table)
    if not hasattr(model, "cluster_centers_"):  # a Gaussian mixture
        return evaluate_mixture(args, model, storage, table, X.nbytes)
    with job_cluster(args, X.nbytes):
        X = open_input(args, storage, table)
        inertia = -model.score(X)
        more = evaluate_extras(args, model, X)
    n = X.shape[0]
    summary = {"inertia": inertia, "n_samples": int(n), "mean_sq_distance": inertia / n,
               **more}
    if args.json:
        print(json.dumps(summary))
        return 0
    print("\n".join([f"inertia {inertia:.6g} over {n:,} rows ({inertia / n:.6g} per row)",
                     *evaluate_lines(more)]))
    return 0


def _info(args: argparse.Namespace) -> int:
    from dkmeans.data.storage import locate
    from dkmeans.estimators.io import read_meta

    loc = locate(args.model, storage_options(args))
    with printable_stdout():  # a model file's strings never reach the terminal raw
        return _describe(args, loc, read_meta(loc))


def _describe(args: argparse.Namespace, loc: Any, meta: dict) -> int:
    from dkmeans.estimators.io import read_array

    if meta["estimator"] == "GaussianMixture":
        return describe_mixture(args, loc, meta)
    centers = read_array(loc, meta, "cluster_centers")
    if args.json:
        print(json.dumps({**meta, "cluster_centers": centers.tolist()}))
        return 0
    fitted, params = meta["fitted"], meta["params"]
    print(f"{loc}: {meta.get('state', 'complete')} {meta['estimator']}, dkmeans "
          f"{meta['dkmeans_version']}, format {meta['format_version']}")
    print(f"  k={params['n_clusters']}, {fitted['n_features_in']} features "
          f"({fitted['dtype']}), {fitted['n_iter']} iterations, inertia {fitted['inertia']:.6g}")
    fp = meta.get("input_fingerprint") or {}
    if fp:
        print(f"  trained on shape {tuple(fp['shape'])} {fp['dtype']}, sample sha256 "
              f"{fp['sample_sha256'][:16]}")
    with np.printoptions(precision=4, suppress=True, linewidth=120):
        print(f"  centers ({centers.shape[0]} x {centers.shape[1]}):")
        for i, row in enumerate(centers):
            print(f"    {i:>3}  {np.array2string(row)}")
    return 0


# ------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    from dkmeans import __version__

    parser = argparse.ArgumentParser(
        prog="dkmeans", description="k-means on Dask, for data larger than memory.")
    parser.add_argument("--version", action="version", version=f"dkmeans {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    add_demo_parser(sub)

    fit = sub.add_parser("fit", help="fit k-means (or a Gaussian mixture) on a Zarr array, "
                                     ".npy file or table")
    fit.add_argument("input", help="Zarr path or URL, a .npy file, or Parquet / CSV "
                                   "(a file or a folder of files; see --columns)")
    fit.add_argument("--output", "-o", required=True, metavar="MODEL_DIR",
                     help="the model directory: a local path or a URL")
    fit.add_argument("--n-clusters", "-k", type=positive_int, required=True,
                     help="number of clusters (components with --mode gmm)")
    fit.add_argument("--mode", choices=["lloyd", "minibatch", "gmm"], default="lloyd",
                     help="lloyd: KMeans (full passes, checkpoints); minibatch: "
                          "MiniBatchKMeans (a few streamed epochs); gmm: GaussianMixture "
                          "(-k components; EM passes, checkpoints)")
    add_estimator_options(fit)
    fit.add_argument("--checkpoint-every", type=positive_int, default=None, metavar="N",
                     help="write the state to MODEL_DIR every N iterations (atomically)")
    fit.add_argument("--resume", action="store_true",
                     help="continue from the checkpoint in MODEL_DIR, if any (a finished "
                          "model of the same input and parameters is kept as it is)")
    fit.add_argument("--force", action="store_true",
                     help="replace whatever model or checkpoint MODEL_DIR holds")
    cluster_options(fit)
    fit.set_defaults(run=_fit)

    predict = sub.add_parser("predict", help="write the label of every row to Zarr or a "
                                             "table")
    predict.add_argument("model", metavar="MODEL_DIR")
    predict.add_argument("input")
    predict.add_argument("--output", "-o", required=True, metavar="LABELS",
                         help="where the labels go, as its suffix says: .zarr (an array), "
                              ".csv, .tsv or .parquet (a table: row, label); nothing may "
                              "be there, or labels dkmeans wrote (with --force)")
    predict.add_argument("--key", default=None, metavar="COL,...",
                         help="table output: the input table's columns to copy beside each "
                              "label (ids, names)")
    predict.add_argument("--with-distance", action="store_true",
                         help="table output: each row's distance to its center")
    predict.add_argument("--force", action="store_true",
                         help="replace labels dkmeans wrote at the output before")
    cluster_options(predict)
    predict.set_defaults(run=_predict)

    evaluate = sub.add_parser("evaluate", help="inertia of a model on an input (a "
                                               "mixture's log-likelihood, BIC and AIC)")
    evaluate.add_argument("model", metavar="MODEL_DIR")
    evaluate.add_argument("input")
    add_evaluate_options(evaluate)
    cluster_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    info = sub.add_parser("info", help="describe a model directory or checkpoint")
    info.add_argument("model", metavar="MODEL_DIR")
    info.add_argument("--json", action="store_true")
    storage_option(info)
    info.set_defaults(run=_info, quiet=False, log_level="INFO", cluster=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``dkmeans`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``dkmeans``; by default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status (:doc:`/user-guide/scheduled-jobs` has the table).
    """
    args = build_parser().parse_args(argv)  # bad usage: argparse exits with 2
    # our own logger only: the cluster's chatter stays out of the job's log
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet
                 else logging.DEBUG if getattr(args, "verbose", False) else args.log_level)
    log.propagate = False
    from dkmeans.errors import ClusterUnavailableError, DKMeansError

    try:
        with handle_signals():
            code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except Stopped as stop:  # cleaned up on the way here: cluster, scratch, leases
        print(f"dkmeans: stopped by {signal.Signals(stop.signum).name}"
              f"{getattr(stop, 'note', '')}", file=sys.stderr)
        return 128 + stop.signum
    except WorkersLost as err:
        print(f"dkmeans: error: {err}", file=sys.stderr)
        return EXIT_NO_CLUSTER
    except BrokenPipeError:
        # the reader went away (`dkmeans info m | head`): a normal end; point
        # stdout at /dev/null so the interpreter's last flush does not fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ClusterUnavailableError as err:  # not the caller's input: exit 3
        print(f"dkmeans: error: {err}", file=sys.stderr)
        return EXIT_NO_CLUSTER
    except (DKMeansError, FileNotFoundError) as err:
        print(f"dkmeans: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # anything else: one line, traceback at DEBUG
        log.debug("traceback", exc_info=True)
        print(f"dkmeans: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    finally:  # called again in one process (a test, a notebook): one handler
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
