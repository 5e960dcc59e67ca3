"""Every estimator parameter as a ``dkmeans fit`` option, from one table.

Each row names the parameter, its type and help, and the modes (``lloyd``:
:class:`~dkmeans.KMeans`; ``minibatch``: :class:`~dkmeans.MiniBatchKMeans`;
``gmm``: :class:`~dkmeans.GaussianMixture`) it applies to. An option left
out keeps the estimator's own default, except where the table gives the
command line's own (a fixed ``--random-state`` so a rerun job is
reproducible; larger mini-batches for data on disk). An option given for
another mode is an error naming it.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from dkmeans.errors import InvalidParameterError

LLOYD, MINIBATCH, GMM = "lloyd", "minibatch", "gmm"
BOTH = (LLOYD, MINIBATCH)
ALL = (LLOYD, MINIBATCH, GMM)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _auto_or_positive_int(text: str) -> int | str:
    return text if text == "auto" else positive_int(text)


def _persist(text: str) -> bool | str:
    choices = {"auto": "auto", "true": True, "false": False}
    if text.lower() not in choices:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text}")
    return choices[text.lower()]


def _optional_int(text: str) -> int | str:
    """An integer, or "none" (None to the estimator: an option's None means
    "not given")."""
    return "none" if text.lower() == "none" else int(text)


def _init_size(text: str) -> int | str:
    return text.lower() if text.lower() in ("auto", "none") else positive_int(text)


def _train_size(text: str) -> int | float:
    """Rows (an integer) or a fraction of them (a number with a point)."""
    if "." not in text and "e" not in text.lower():
        return positive_int(text)
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction must be in (0, 1], got {text}")
    return value


#: parameter -> (argparse keywords, modes, command-line default or None)
OPTIONS: dict[str, tuple[dict, tuple[str, ...], Any]] = {
    "init": (dict(metavar="NAME|CENTERS.npy",
                  help="k-means||, k-means++, random, or a .npy file of initial centers "
                       "(default: k-means||; k-means++ on a sample with --mode minibatch)"),
             BOTH, None),
    "n_init": (dict(type=_auto_or_positive_int, metavar="auto|N",
                    help="seedings tried, best kept (default auto; 1 with --mode gmm)"),
               ALL, None),
    "max_iter": (dict(type=positive_int, metavar="N",
                      help="Lloyd iterations (default 300), epochs with --mode minibatch "
                           "(default 100), EM iterations with --mode gmm (default 100)"),
                 ALL, None),
    "tol": (dict(type=float, help="tolerance relative to the mean feature variance "
                                  "(default 1e-4; 0 with --mode minibatch); with --mode gmm "
                                  "of the mean log-likelihood's change (default 1e-3)"),
            ALL, None),
    "random_state": (dict(type=int, metavar="SEED",
                          help="seed of every random choice (default 0, so a job rerun "
                               "gives the same model)"), ALL, 0),
    "oversampling_factor": (dict(type=float, help="k-means|| candidates per round, "
                                                  "times k (default 2)"), (LLOYD,), None),
    "init_rounds": (dict(type=_auto_or_positive_int, metavar="auto|N",
                         help="k-means|| rounds (default auto: 5, 3 from k = 1,024 up)"),
                    (LLOYD,), None),
    "persist": (dict(type=_persist, metavar="auto|true|false",
                     help="keep the data in the workers' memory (default auto: when it "
                          "takes at most half of it)"), (LLOYD, GMM), None),
    "algorithm": (dict(choices=["lloyd", "elkan", "hamerly"],
                       help="hamerly (or elkan): per-row bounds skip rows whose center "
                            "cannot change; same iterations (default lloyd)"), (LLOYD,), None),
    "scale": (dict(action="store_true", default=None,
                   help="standardize every feature first (centers reported in the data's "
                        "units)"), ALL, None),
    "missing": (dict(choices=["error", "impute"],
                     help="NaN: an error naming its row, or the feature's mean "
                          "(default error)"), ALL, None),
    "metric": (dict(choices=["euclidean", "cosine", "manhattan"],
                    help="cosine: spherical k-means on unit rows; manhattan: k-medians "
                         "(L1 distance, medians) (default euclidean)"),
               (LLOYD,), None),
    "min_cluster_size": (dict(type=float, metavar="W",
                              help="smallest cluster weight (below 1: a fraction of the "
                                   "total), by splitting the largest (default off)"),
                         (LLOYD,), None),
    "batch_size": (dict(type=positive_int, metavar="N",
                        help="rows per mini-batch (default 65536 here; 1024 in Python)"),
                   (MINIBATCH,), 65536),
    "init_size": (dict(type=_init_size, metavar="auto|none|N",
                       help="rows sampled in the first pass to seed on (default auto: "
                            "128 x k, at least 131,072, on data of 8 x as many rows or "
                            "more; 3 x batch size with --mode minibatch); none: all rows"),
                  (LLOYD, MINIBATCH), None),
    "train_size": (dict(type=_train_size, metavar="N|FRACTION",
                        help="approximate, for large k: seed and iterate on a sample of N "
                             "rows (or a fraction, e.g. 0.3), then assign every row in one "
                             "pass (default: every row, every iteration)"), (LLOYD,), None),
    "max_no_improvement": (dict(type=_optional_int, metavar="N|none",
                                help="stop after N batches without a lower smoothed "
                                     "inertia; none: never (default 10)"), (MINIBATCH,), None),
    "reassignment_ratio": (dict(type=float, help="move centers that absorbed less than "
                                                 "this share of the largest (default 0.01)"),
                           (MINIBATCH,), None),
    "compute_labels": (dict(action=argparse.BooleanOptionalAction, default=None,
                            help="a last pass for the inertia over all rows (default on)"),
                       (MINIBATCH,), None),
    "covariance_type": (dict(choices=["full", "diag", "spherical"],
                             help="each component's covariance (default full)"), (GMM,), None),
    "reg_covar": (dict(type=float, help="added to the covariances' diagonals (default "
                                        "1e-6)"), (GMM,), None),
    "init_params": (dict(choices=["kmeans", "k-means||"],
                         help="start from k-means (k-means|| seeding; default kmeans)"),
                    (GMM,), None),
    "weights_init": (dict(metavar="WEIGHTS.npy", help="initial weights, shape (k,)"),
                     (GMM,), None),
    "means_init": (dict(metavar="MEANS.npy", help="initial means, shape (k, d)"),
                   (GMM,), None),
    "precisions_init": (dict(metavar="PRECISIONS.npy",
                             help="initial precisions, shape (k, d, d), (k, d) or (k,) by "
                                  "covariance type"), (GMM,), None),
}

#: Parameters with no meaning on the command line: verbose and progress (the
#: command prints its own progress on stderr, see --quiet) and copy_x
#: (dkmeans never modifies its input).
NOT_OPTIONS = ("verbose", "progress", "copy_x", "init_max_iter")


def add_estimator_options(parser: argparse.ArgumentParser) -> None:
    """One option per estimator parameter (``--n-clusters`` is added apart)."""
    group = parser.add_argument_group(
        "estimator parameters (see KMeans / MiniBatchKMeans / GaussianMixture)")
    for name, (kwargs, modes, _) in OPTIONS.items():
        extra = "" if modes == ALL else f" [--mode {' or '.join(modes)}]"
        kw = {"default": None, **kwargs}
        kw["help"] = kw["help"] + extra
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, **kw)


def estimator_params(args: argparse.Namespace) -> dict[str, Any]:
    """The estimator's keyword arguments the options give for ``args.mode``.

    Raises
    ------
    InvalidParameterError
        An option of the other mode was given.
    """
    import numpy as np

    params: dict[str, Any] = {"n_components" if args.mode == GMM else "n_clusters":
                              args.n_clusters}
    for name, (_, modes, default) in OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            if args.mode in modes and default is not None:
                params[name] = default
            continue
        if args.mode not in modes:
            raise InvalidParameterError(f"--{name.replace('_', '-')} applies to --mode "
                                        f"{' or '.join(modes)} only.")
        params[name] = None if value == "none" else value
    for name in ("init", "weights_init", "means_init", "precisions_init"):
        value = params.get(name)
        if isinstance(value, str) and (value.endswith(".npy") or name != "init"):
            try:
                params[name] = np.load(value, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise InvalidParameterError(f"--{name.replace('_', '-')} {value}: not a "
                                            f"readable .npy array: {err}") from err
    return params


# ------------------------------------------------------------ where data lives


#: Where ``--storage-options`` may also come from, kept out of ``ps`` and job logs.
STORAGE_OPTIONS_ENV = "DKMEANS_STORAGE_OPTIONS"


def _given_storage_options(args: argparse.Namespace) -> dict:
    """``--storage-options``: JSON, ``@FILE`` holding JSON, or (when the
    option is not given) the :data:`STORAGE_OPTIONS_ENV` variable. Errors
    never repeat the text, which may hold a secret."""
    text = getattr(args, "storage_options", None)
    where = "--storage-options"
    if text is None:
        text, where = os.environ.get(STORAGE_OPTIONS_ENV), STORAGE_OPTIONS_ENV
    if not text:
        return {}
    if text.startswith("@"):
        where = f"--storage-options file {text[1:]!r}"
        try:
            with open(text[1:]) as f:
                text = f.read()
        except OSError as err:
            raise InvalidParameterError(f"Cannot read {where}: {err.strerror}.") from err
    try:
        given = json.loads(text)
    except json.JSONDecodeError as err:
        raise InvalidParameterError(f"{where} is not valid JSON: {err.msg} at line "
                                    f"{err.lineno} column {err.colno}.") from None
    if not isinstance(given, dict):
        raise InvalidParameterError(f"{where} must be a JSON object, e.g. "
                                    "'{\"endpoint_url\": \"http://127.0.0.1:9000\"}'.")
    return given


def storage_options(args: argparse.Namespace) -> dict:
    """Storage options: the cluster file's ``storage:`` section, then
    ``--storage-options`` (or its file or environment variable). The
    client's own AWS credentials are added for s3:// paths only when asked
    (``--pass-credentials``, or ``pass_credentials: true`` under
    ``storage:``): by default the workers use their own credential chain."""
    from dkmeans.cli.cluster import load_config

    options = {**(load_config(args.cluster).get("storage") or {}),
               **_given_storage_options(args)}  # the later source wins
    passing = bool(options.pop("pass_credentials", False)) or \
        bool(getattr(args, "pass_credentials", False))
    paths = [getattr(args, name, None) or "" for name in ("input", "output", "model")]
    if passing and any(str(p).startswith(("s3://", "s3a://")) for p in paths):
        options = _with_aws_credentials(options)
    return options


def _with_aws_credentials(options: dict) -> dict:
    """``options`` with the key, secret and token botocore resolves here,
    unless they name their own credentials (or anonymous access)."""
    if {"key", "secret", "anon", "profile"} & set(options):
        return options
    try:
        import botocore.session
    except ImportError:
        return options
    found = botocore.session.Session().get_credentials()
    if found is None:
        return options
    frozen = found.get_frozen_credentials()
    options = {**options, "key": frozen.access_key, "secret": frozen.secret_key}
    if frozen.token:
        options["token"] = frozen.token
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_url" not in options:
        options["endpoint_url"] = endpoint
    return options


def storage_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage-options", default=None, metavar="JSON|@FILE",
                   help="fsspec storage options for every path and URL, as a JSON object "
                        "(e.g. '{\"endpoint_url\": \"http://minio:9000\"}'), or @FILE "
                        f"holding it; default: ${STORAGE_OPTIONS_ENV}. Secrets belong in "
                        "the file or variable: a command line shows in ps and job logs")
    p.add_argument("--pass-credentials", action="store_true",
                   help="send this machine's AWS credentials (environment, ~/.aws) to the "
                        "workers with the tasks; by default workers use their own")


def cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--columns", default=None, metavar="A,B,...",
                   help="table input: the feature columns, in order, by name or by position "
                        "(0,1,2); predict and evaluate default to the model's own")
    p.add_argument("--sep", default=None, metavar="SEP",
                   help="text table input: the field separator (default ',' for .csv, a "
                        "tab for .tsv and .txt)")
    p.add_argument("--no-header", dest="header", action="store_false",
                   help="text table input: the first line is data, not column names")
    storage_option(p)
    p.add_argument("--cluster", metavar="CONFIG.yaml", default=None,
                   help="cluster configuration (cluster_configs/), with an optional "
                        "'storage:' section of storage options; default: a local cluster")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes of the local cluster")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="more detail on stderr: where the job computes, the dashboard's "
                        "address (--log-level DEBUG)")
    p.add_argument("--log-level", default="INFO",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="progress detail")
