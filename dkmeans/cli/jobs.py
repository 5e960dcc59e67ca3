"""What every ``dkmeans`` job shares: reading its input, its fingerprint,
progress bars, and checking what its model directory already holds."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from typing import Any

from dkmeans.cli.options import storage_options


def table_options(args: argparse.Namespace, model: Any = None) -> dict:
    """How to read a table input: ``--columns``, ``--sep``, ``--no-header``;
    for predict and evaluate, by default what the model was fitted with."""
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    given = {"columns": columns, "sep": args.sep, "header": args.header}
    if getattr(args, "missing", None) == "impute":  # "12,5" in a number column: missing
        given["non_numeric"] = "missing"
    if model is not None and columns is None and args.sep is None and args.header:
        from dkmeans.estimators.io import read_meta

        saved = (read_meta(model, storage_options(args)).get("input_fingerprint") or {})
        return saved_table(saved.get("table"), model) or given
    return given


def saved_table(table: Any, model: Any) -> dict | None:
    """How a model's input table was read, from its (untrusted) file: a
    single-character separator (pandas reads a longer one as a regular
    expression), column names or positions, a header flag."""
    from dkmeans.errors import InvalidInputError

    if table is None:
        return None
    sep, columns, header = (table.get(k) for k in ("sep", "columns", "header")) \
        if isinstance(table, dict) else (None, None, None)
    ok = isinstance(table, dict) and set(table) <= {"sep", "columns", "header", "non_numeric"} \
        and table.get("non_numeric", "missing") == "missing" and \
        (sep is None or (isinstance(sep, str) and len(sep) == 1)) and \
        isinstance(header, bool) and (columns is None or (
            isinstance(columns, list) and all(isinstance(c, (str, int)) and
                                              not isinstance(c, bool) for c in columns)))
    if not ok:
        raise InvalidInputError(
            f"The model in {model} records how its table was read in a form dkmeans does not "
            "write (a separator must be one character; columns names or positions): "
            "refusing to use it. Give --sep, --columns and --no-header yourself.")
    return {"columns": columns, "sep": sep, "header": header,
            **({"non_numeric": "missing"} if "non_numeric" in table else {})}


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                      "\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with control characters (terminal escapes, bidirectional
    overrides) shown as escapes, never sent to the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                        else f"\\u{ord(m.group()):04x}", text)


@contextlib.contextmanager
def printable_stdout() -> Any:
    """Everything printed in the block passes through :func:`printable`
    (what a model file says is not the terminal's to interpret)."""
    real = sys.stdout

    class _Out:
        def write(self, text: str) -> int:
            return real.write(printable(text))

        def flush(self) -> None:
            real.flush()

    sys.stdout = _Out()
    try:
        yield
    finally:
        sys.stdout = real


def open_input(args: argparse.Namespace, storage_options: dict, table: dict) -> Any:
    """The INPUT argument as a chunked array (Zarr, .npy or a table)."""
    from dkmeans.data import as_chunked

    return as_chunked(args.input, storage_options=storage_options, **table)[0]


def input_fingerprint(X: Any, table: dict) -> dict:
    """The input's fingerprint, with how a table was read (so the model
    remembers its columns, and a resume with other columns is refused)."""
    from dkmeans.estimators.io import fingerprint

    return {**fingerprint(X), "table": table}


@contextlib.contextmanager
def progress_bar(args: argparse.Namespace) -> Any:
    """Bars per pass on stderr (tqdm) when it is a terminal and progress is
    wanted; meanwhile the job's log lines go through ``tqdm.write``, which
    prints each above the bar instead of on its line. Piped, plain lines."""
    from tqdm import tqdm

    from dkmeans.progress import PassBars
    from dkmeans.runner import report_progress

    if args.quiet or not sys.stderr.isatty():
        yield
        return
    log = logging.getLogger("dkmeans")
    plain = list(log.handlers)
    through_bars = _TqdmHandler(tqdm)
    through_bars.setFormatter(logging.Formatter("%(message)s"))
    bars = PassBars(sys.stderr)
    log.handlers = [through_bars]
    try:
        with report_progress(bars):
            yield
    finally:
        bars.close()
        log.handlers = plain


class _TqdmHandler(logging.Handler):
    """Log records written with ``tqdm.write`` (above any bar on stderr)."""

    def __init__(self, tqdm: Any):
        super().__init__()
        self._tqdm = tqdm

    def emit(self, record: logging.LogRecord) -> None:
        self._tqdm.write(self.format(record), file=sys.stderr)


def existing_model(out: Any) -> dict | None:
    """The metadata of the model or checkpoint at ``out``, if there is one;
    an error if ``out`` holds anything but a dkmeans model (nothing there is
    touched, and the job has not started)."""
    from dkmeans.estimators.modelfile import model_target

    return model_target(out)


def check_same_job(meta: dict, out: Any, estimator: str, params: dict, fp: dict) -> None:
    """Refuse to resume (or call finished) a job whose input or parameters differ."""
    from dkmeans.errors import InvalidInputError

    if meta.get("estimator") != estimator:
        raise InvalidInputError(f"Refusing to resume: {out} holds a {meta.get('estimator')} "
                                f"model, and this job fits a {estimator} (--mode).")
    if (meta.get("input_fingerprint") or {}) != fp:
        raise InvalidInputError(
            f"Refusing to resume: the input is not the one the model in {out} was made from "
            "(shape, dtype or content differ). Use --force to fit it afresh.")
    saved = meta.get("params", {})
    for key, value in params.items():
        if key != "verbose" and saved.get(key) != value:
            raise InvalidInputError(
                f"Refusing to resume: --{key.replace('_', '-')} is {value!r} but the model in "
                f"{out} was made with {saved.get(key)!r}. Use --force to fit it afresh.")


def prepare_output(args: argparse.Namespace, out: Any, estimator: str, params: dict,
                    fp: dict) -> dict | None:
    """What is already at the model directory, checked against this job.

    Returns its metadata when resuming, None for a fresh fit.
    """
    from dkmeans.errors import InvalidInputError

    meta = existing_model(out)
    if meta is None or args.force:
        return None
    if not args.resume:
        raise InvalidInputError(
            f"{out} already holds a {meta.get('state', 'complete')} model; pass --resume to "
            "continue (or keep) it, or --force to replace it.")
    check_same_job(meta, out, estimator, params, fp)
    return meta


def start_job(args: argparse.Namespace, model: Any, estimator: str,
              ) -> tuple[dict, Any, dict, dict, dict | None]:
    """What a fit job checks before a cluster starts: where its model goes,
    its input (read and fingerprinted), and what the model directory holds.

    Returns
    -------
    storage : dict
        The storage options.
    out : Location
        The model directory.
    table : dict
        How the input table is read.
    fingerprint : dict
    meta : dict or None
        The model directory's metadata when resuming (see :func:`prepare_output`).
    """
    from dkmeans.data.storage import locate

    storage = storage_options(args)
    out = locate(args.output, storage)
    table = table_options(args)
    fp = input_fingerprint(open_input(args, storage, table), table)
    return storage, out, table, fp, prepare_output(args, out, estimator,
                                                   model._params_for_file()[0], fp)


def report(args: argparse.Namespace, summary: dict, text: str) -> int:
    """Print a command's summary: one JSON line with ``--json``, else ``text``;
    returns the exit code 0."""
    print(json.dumps(summary) if args.json else text)
    return 0


#: Inputs up to this size run in the command's own process (dask's threads)
#: when no cluster is asked for: a process cluster costs seconds to start
#: (5.6 s against 2.0 s for a 1,000-row fit, benchmarks/README.md), and
#: threads serve data this size as fast on one machine.
IN_PROCESS_MAX_BYTES = 256 * 2**20


def in_process(args: argparse.Namespace, nbytes: int) -> bool:
    """Whether a job runs without a cluster: no ``--cluster``, no
    ``--workers``, no ``DKMEANS_CLUSTER__*`` setting, and a small input."""
    import os

    from dkmeans.cli.cluster import ENV_PREFIX

    configured = args.cluster is not None or args.workers is not None or any(
        name.startswith(ENV_PREFIX) for name in os.environ)
    return not configured and nbytes <= IN_PROCESS_MAX_BYTES


def input_nbytes(fp: dict) -> int:
    """The size of a job's input from its fingerprint (shape and dtype)."""
    import math

    import numpy as np

    return math.prod(fp["shape"]) * np.dtype(fp["dtype"]).itemsize


@contextlib.contextmanager
def job_cluster(args: argparse.Namespace, nbytes: int) -> Any:
    """Where a job on an input of ``nbytes`` computes: the configured cluster
    (:func:`dkmeans.cli.cluster.connect`), or, for a small input with none
    configured, this process's threads."""
    import dask

    from dkmeans.cli.cluster import connect

    log = logging.getLogger("dkmeans")
    if in_process(args, nbytes):
        log.debug("%s is %.3g MB: computing in this process (--workers N or --cluster "
                  "FILE starts a cluster)", args.input, nbytes / 1e6)
        with dask.config.set(scheduler="threads"):
            yield None
        return
    with connect(args.cluster, n_workers=args.workers) as client:
        log.debug("dashboard: %s", client.dashboard_link)
        yield client


def name_features(model: Any, args: argparse.Namespace, storage: dict, table: dict) -> None:
    """Give a model fitted from a table its columns' names
    (``feature_names_in_``), as a fit from Python on the same path would."""
    from dkmeans.data.sources import table_columns

    names = table_columns(args.input, storage, table["columns"], table["sep"],
                          table["header"])
    if names:
        import numpy as np

        model.feature_names_in_ = np.asarray(names, dtype=object)


def fit_and_save(args: argparse.Namespace, model: Any, job: tuple, fit: Any,
                 on_stop: Any) -> float:
    """A fit job's work: on its cluster, ``fit(X)`` with the progress bars and
    SIGTERM's last checkpoint (``on_stop``, as
    :func:`~dkmeans.cli.signals.checkpoint_on_stop`), then the model written
    to the job's directory. ``job`` is ``(storage, out, table, fingerprint)``
    from :func:`start_job`. Returns the seconds the fit took."""
    import time

    from dkmeans.cli.signals import checkpoint_on_stop

    storage, out, table, fp = job
    with job_cluster(args, input_nbytes(fp)):
        X = open_input(args, storage, table)  # now checked against the cluster's workers
        t0 = time.perf_counter()
        with progress_bar(args), checkpoint_on_stop(on_stop):
            fit(X)
        seconds = time.perf_counter() - t0
    name_features(model, args, storage, table)
    model.save(out, fingerprint=fp, overwrite=True)  # checked by start_job
    logging.getLogger("dkmeans").info("model written to %s", out)
    return seconds
