"""The EM step of a Gaussian mixture as one pass: the E step on each block,
the M step's sums and the log-likelihood reduced over all of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dkmeans import kernels
from dkmeans.kernels import mixture
from dkmeans.passes.common import weights_or_ones
from dkmeans.runner import Pass


@dataclass(frozen=True)
class EMStats:
    """One EM pass's sums (float64), about the means the pass was given.

    Attributes
    ----------
    bad_row : int
        Global index of the first row holding NaN or infinity, or -1.
    weight : float
        Total sample weight.
    log_likelihood : float
        Weighted sum of the rows' log densities under the mixture.
    nk, first, second : ndarray
        :func:`dkmeans.kernels.mixture.moment_sums`.
    """

    bad_row: int
    weight: float
    log_likelihood: float
    nk: np.ndarray
    first: np.ndarray
    second: np.ndarray


def _empty(bad_row: int, k: int, d: int, covariance_type: str) -> EMStats:
    second = np.zeros((k, d, d) if covariance_type == "full" else (k, d))
    return EMStats(bad_row, 0.0, 0.0, np.zeros(k), np.zeros((k, d)), second)


def em_chunk(x, w, offset: int, log_weights: np.ndarray, means: np.ndarray,
             prec_chol: np.ndarray | None, covariance_type: str) -> EMStats:
    """E step and M-step sums on a block.

    With ``prec_chol`` None the responsibilities are hard: each row belongs
    to its nearest mean (how a mixture starts from k-means' centers), and
    the log-likelihood is 0.
    """
    k, d = means.shape
    bad = kernels.first_nonfinite_row(x)
    if bad >= 0 or not len(x):
        return _empty(bad + offset if bad >= 0 else -1, k, d, covariance_type)
    if prec_chol is not None and covariance_type != "full":
        loglik, *sums = mixture.em_sums_diagonal(x, w, log_weights, means, prec_chol,
                                                 covariance_type)
        weight = float(len(x) if w is None else w.sum())
        return EMStats(-1, weight, loglik, *sums)
    weights = weights_or_ones(w, len(x))
    if prec_chol is None:
        resp = np.zeros((len(x), k))
        resp[np.arange(len(x)), kernels.nearest(x, means.astype(x.dtype))[0]] = 1.0
        loglik = 0.0
    else:
        log_norm, resp = mixture.responsibilities(x, log_weights, means, prec_chol,
                                                  covariance_type)
        loglik = float(weights @ log_norm)
    sums = mixture.moment_sums(x, resp * weights[:, None], means, covariance_type)
    return EMStats(-1, float(weights.sum()), loglik, *sums)


def em_combine(parts: Sequence[EMStats]) -> EMStats:
    bad = [p.bad_row for p in parts if p.bad_row >= 0]
    return EMStats(min(bad) if bad else -1, sum(p.weight for p in parts),
                   sum(p.log_likelihood for p in parts), sum(p.nk for p in parts),
                   sum(p.first for p in parts), sum(p.second for p in parts))


EM = Pass("dkmeans-em", em_chunk, em_combine)
"""One EM iteration: the sums of :class:`EMStats` over all rows."""
