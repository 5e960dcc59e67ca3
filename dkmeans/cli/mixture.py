"""``dkmeans fit --mode gmm``: a GaussianMixture as a scheduled job, with
checkpoints every N EM iterations and an exact ``--resume``.

A checkpoint is the model directory in state ``"checkpoint"``: the
parameters after the last finished iteration and every lower bound so far.
Resuming runs the next iteration from those parameters, as the interrupted
fit would have (same passes over the same input), and refuses another input
or other parameters.
"""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from dkmeans.cli.evaluate import extras as evaluate_extras
from dkmeans.cli.evaluate import lines as evaluate_lines
from dkmeans.cli.jobs import (
    fit_and_save,
    job_cluster,
    open_input,
    report,
    start_job,
)
from dkmeans.cli.options import estimator_params
from dkmeans.cli.signals import IterationCheckpoints

log = logging.getLogger("dkmeans")

ESTIMATOR = "GaussianMixture"


class _Checkpoints(IterationCheckpoints):
    """Per-iteration lines on stderr, and a checkpoint every N iterations."""

    def __init__(self, args: argparse.Namespace, model: Any, out: Any, fp: dict):
        super().__init__(args, out)
        self.model, self.fp = model, fp

    def __call__(self, result: Any) -> None:
        log.info("iteration %d  lower bound %.8g", result.n_iter, result.lower_bound)
        self.finished(result)

    def write(self, result: Any) -> None:
        state = self.model.__class__(**self.model.get_params())
        state._set_state(result, self.model.n_features_in_)
        state.save(self.out, fingerprint=self.fp, state="checkpoint", overwrite=True)


def read_model(out: Any, meta: dict) -> Any:
    """The GaussianMixture (finished or a checkpoint) in a model directory."""
    from dkmeans.estimators.io import read_array
    from dkmeans.estimators.mixture import GaussianMixture

    return GaussianMixture._from_file(meta, lambda name: read_array(out, meta, name),
                                      list(meta["arrays"]))


def fit_job(args: argparse.Namespace) -> int:
    """Fit (or resume, or keep) a GaussianMixture job; returns the exit code."""
    from dkmeans.estimators.io import read_meta
    from dkmeans.estimators.mixture import GaussianMixture

    model = GaussianMixture(**estimator_params(args))
    storage, out, table, fp, meta = start_job(args, model, ESTIMATOR)
    if meta is not None and meta.get("state") == "complete":
        log.info("%s already holds this finished model: nothing to do", out)
        return summary(args, meta, resumed_from=None, seconds=0.0)
    start = None if meta is None else read_model(out, meta)._state()
    if start is not None:
        log.info("resuming from iteration %d", start.n_iter)
    checkpoints = _Checkpoints(args, model, out, fp)

    def fit(X: Any) -> None:
        model.n_features_in_ = X.shape[1]  # a checkpoint of the first iteration needs it
        model._fit(X, start=start, on_iteration=checkpoints)

    seconds = fit_and_save(args, model, (storage, out, table, fp), fit, checkpoints.on_stop)
    return summary(args, read_meta(out), seconds=seconds,
                   resumed_from=None if start is None else start.n_iter)


def summary(args: argparse.Namespace, meta: dict, **extra: Any) -> int:
    fitted = meta["fitted"]
    out = {"model": str(args.output), "state": meta.get("state"),
           "n_components": meta["params"]["n_components"], "n_iter": fitted["n_iter"],
           "converged": fitted["converged"], "lower_bound": fitted["lower_bound"], **extra}
    return report(args, out, f"{out['model']}: {out['n_components']} components, "
                             f"{out['n_iter']} iterations, lower bound {out['lower_bound']:.8g}")


def evaluate_mixture(args: argparse.Namespace, model: Any, storage: dict, table: dict,
                     nbytes: int) -> int:
    """``dkmeans evaluate`` for a mixture: mean log-likelihood, BIC, AIC."""

    with job_cluster(args, nbytes):
        X = open_input(args, storage, table)
        out = {"log_likelihood_per_row": model.score(X), "bic": model.bic(X),
               "aic": model.aic(X), "n_samples": int(X.shape[0]),
               **evaluate_extras(args, model, X)}
    return report(args, out, "\n".join([
        f"log-likelihood {out['log_likelihood_per_row']:.8g} per row over "
        f"{out['n_samples']:,} rows; BIC {out['bic']:.8g}, AIC {out['aic']:.8g}",
        *evaluate_lines(out)]))


def describe_mixture(args: argparse.Namespace, loc: Any, meta: dict) -> int:
    """``dkmeans info`` for a mixture: its parameters, weights and means."""
    import numpy as np

    model = read_model(loc, meta)
    if args.json:
        print(json.dumps({**meta, "weights": model.weights_.tolist(),
                          "means": model.means_.tolist()}))
        return 0
    fitted, params = meta["fitted"], meta["params"]
    print(f"{loc}: {meta.get('state', 'complete')} GaussianMixture, dkmeans "
          f"{meta['dkmeans_version']}, format {meta['format_version']}")
    print(f"  {params['n_components']} components ({params['covariance_type']} "
          f"covariances), {fitted['n_features_in']} features, {fitted['n_iter']} "
          f"iterations, lower bound {fitted['lower_bound']:.8g}")
    with np.printoptions(precision=4, suppress=True, linewidth=120):
        print("  weight  mean")
        for w, row in zip(model.weights_, model.means_, strict=True):
            print(f"  {w:.4f}  {np.array2string(row)}")
    return 0
