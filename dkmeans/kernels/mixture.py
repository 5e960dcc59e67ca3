"""A Gaussian mixture on one block: log densities, responsibilities and the
sums one EM step needs, in float64.

Covariances are given by the Cholesky factors of their precisions, as
scikit-learn keeps them: shape (k, d, d) for ``"full"``, (k, d) for
``"diag"`` and (k,) for ``"spherical"``.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.special import logsumexp

COVARIANCE_TYPES = ("full", "diag", "spherical")

_LOG_2PI = np.log(2 * np.pi)


class SingularCovarianceError(ValueError):
    """A component's covariance is not positive definite."""


def _singular(reg_covar: float) -> SingularCovarianceError:
    return SingularCovarianceError(
        "Fitting the mixture model failed because some components have ill-defined "
        "empirical covariance (for instance caused by singleton or collapsed samples); "
        f"reg_covar={reg_covar!r}. Try to decrease the number of components, increase "
        "reg_covar, or scale the input data.")


def precision_cholesky(covariances: np.ndarray, covariance_type: str,
                       reg_covar: float = 0.0) -> np.ndarray:
    """Cholesky factors of the precisions from covariances.

    Parameters
    ----------
    covariances : ndarray of shape (k, d, d), (k, d) or (k,)
    covariance_type : {"full", "diag", "spherical"}
    reg_covar : float
        Only quoted in the error message.

    Raises
    ------
    SingularCovarianceError
        A covariance is not positive definite.
    """
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type != "full":
        if not np.all(covariances > 0):
            raise _singular(reg_covar)
        return 1.0 / np.sqrt(covariances)
    d = covariances.shape[1]
    out = np.empty_like(covariances)
    for k, cov in enumerate(covariances):
        try:
            chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise _singular(reg_covar) from None
        # the inverse of the lower factor, transposed: upper, with P = U U^T
        out[k] = np.linalg.solve(chol, np.eye(d)).T
    return out


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, d: int) -> np.ndarray:
    """log det of each precision's Cholesky factor, shape (k,)."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return d * np.log(prec_chol)


def log_gaussian(x: np.ndarray, means: np.ndarray, prec_chol: np.ndarray,
                 covariance_type: str) -> np.ndarray:
    """Log density of every row under every component.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    means : ndarray of shape (k, d)
    prec_chol : ndarray
        See the module's docstring.
    covariance_type : {"full", "diag", "spherical"}

    Returns
    -------
    ndarray of shape (n, k), float64
    """
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    k = means.shape[0]
    maha = np.empty((n, k))
    for j in range(k):  # about each mean: no cancellation far from the origin
        diff = x - means[j]
        if covariance_type == "full":
            y = diff @ prec_chol[j]
            maha[:, j] = np.einsum("ij,ij->i", y, y)
        elif covariance_type == "diag":
            maha[:, j] = (diff * diff) @ (prec_chol[j] ** 2)
        else:
            maha[:, j] = np.einsum("ij,ij->i", diff, diff) * prec_chol[j] ** 2
    return -0.5 * (d * _LOG_2PI + maha) + log_det_cholesky(prec_chol, covariance_type, d)


def weighted_log_prob(x: np.ndarray, log_weights: np.ndarray, means: np.ndarray,
                      prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """``log(weight_j) + log N(x | mean_j, cov_j)``, shape (n, k)."""
    return log_gaussian(x, means, prec_chol, covariance_type) + log_weights


def responsibilities(x: np.ndarray, log_weights: np.ndarray, means: np.ndarray,
                     prec_chol: np.ndarray, covariance_type: str,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The E step on one block.

    Returns
    -------
    log_norm : ndarray of shape (n,)
        Log density of each row under the mixture.
    resp : ndarray of shape (n, k)
        Posterior probability of each component; rows sum to 1.
    """
    wlp = weighted_log_prob(x, log_weights, means, prec_chol, covariance_type)
    log_norm = logsumexp(wlp, axis=1)
    with np.errstate(under="ignore"):
        resp = np.exp(wlp - log_norm[:, None])
    return log_norm, resp


def moment_sums(x: np.ndarray, rw: np.ndarray, about: np.ndarray, covariance_type: str,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The M step's sums over one block, about given points.

    Parameters
    ----------
    x : ndarray of shape (n, d)
    rw : ndarray of shape (n, k)
        Responsibilities times sample weights.
    about : ndarray of shape (k, d)
        The current means: sums of deviations from them stay small, so the
        covariances need no difference of large numbers.
    covariance_type : {"full", "diag", "spherical"}

    Returns
    -------
    nk : ndarray of shape (k,)
        Weight of each component.
    first : ndarray of shape (k, d)
        ``sum_i rw_ij (x_i - about_j)``.
    second : ndarray of shape (k, d, d) for "full", else (k, d)
        ``sum_i rw_ij (x_i - about_j)(x_i - about_j)^T``, or its diagonal.
    """
    x = np.asarray(x, dtype=np.float64)
    k, d = about.shape
    nk = rw.sum(axis=0)
    first = np.empty((k, d))
    second = np.empty((k, d, d) if covariance_type == "full" else (k, d))
    for j in range(k):
        diff = x - about[j]
        r = rw[:, j]
        first[j] = r @ diff
        if covariance_type == "full":
            second[j] = (diff * r[:, None]).T @ diff
        else:
            second[j] = r @ (diff * diff)
    return nk, first, second


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def _em_diag(X, w, log_weights, means, prec, log_det, nk, first, second,
             lp):  # pragma: no cover - compiled
    n, d = X.shape
    k = means.shape[0]
    unweighted = w.shape[0] == 0
    half_log_2pi = 0.5 * d * np.log(2 * np.pi)
    loglik = 0.0
    for i in range(n):
        wi = 1.0 if unweighted else w[i]
        top = -np.inf
        for j in range(k):
            s = 0.0
            for f in range(d):
                t = np.float64(X[i, f]) - means[j, f]
                s += t * t * prec[j, f]
            lp[j] = log_weights[j] + log_det[j] - half_log_2pi - 0.5 * s
            top = max(top, lp[j])
        total = 0.0
        for j in range(k):
            total += np.exp(lp[j] - top)
        lse = top + np.log(total)
        loglik += wi * lse
        for j in range(k):
            r = wi * np.exp(lp[j] - lse)
            if r == 0.0:  # underflowed: adds nothing
                continue
            nk[j] += r
            for f in range(d):
                t = np.float64(X[i, f]) - means[j, f]
                first[j, f] += r * t
                second[j, f] += r * t * t
    return loglik


def em_sums_diagonal(x: np.ndarray, w: np.ndarray | None, log_weights: np.ndarray,
                     means: np.ndarray, prec_chol: np.ndarray, covariance_type: str,
                     ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The E step and the M step's sums in one compiled read of a block, for
    ``"diag"`` and ``"spherical"`` covariances (no (n, k) or (n, d)
    temporaries: a block's memory is the block).

    Returns
    -------
    log_likelihood : float
        Weighted sum of the rows' log densities.
    nk, first, second : ndarray
        As :func:`moment_sums` returns them, about ``means``.
    """
    k, d = means.shape
    prec = prec_chol**2
    if covariance_type == "spherical":
        prec = np.repeat(prec[:, None], d, axis=1)
    nk, first, second = np.zeros(k), np.zeros((k, d)), np.zeros((k, d))
    loglik = _em_diag(np.ascontiguousarray(x), np.empty(0) if w is None else w, log_weights,
                      np.ascontiguousarray(means, dtype=np.float64), prec,
                      log_det_cholesky(prec_chol, covariance_type, d), nk, first, second,
                      np.empty(k))
    return float(loglik), nk, first, second


def gaussian_parameters(nk: np.ndarray, first: np.ndarray, second: np.ndarray,
                        about: np.ndarray, covariance_type: str, reg_covar: float,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The M step from :func:`moment_sums` summed over all blocks.

    Returns
    -------
    weights : ndarray of shape (k,), summing to 1
    means : ndarray of shape (k, d)
    covariances : ndarray of shape (k, d, d), (k, d) or (k,)
        Each with ``reg_covar`` added to its diagonal.
    """
    raw, nk = nk, nk + 10 * np.finfo(np.float64).eps  # as scikit-learn: no division by 0
    shift = first / nk[:, None]
    # sum(r x) / nk, as scikit-learn: a component with no weight left goes to 0
    means = (first + raw[:, None] * about) / nk[:, None]
    if covariance_type == "full":
        cov = second / nk[:, None, None] - shift[:, :, None] * shift[:, None, :]
        d = cov.shape[1]
        cov[:, np.arange(d), np.arange(d)] += reg_covar
    else:
        cov = second / nk[:, None] - shift**2 + reg_covar
        if covariance_type == "spherical":
            cov = cov.mean(axis=1)
    return nk / nk.sum(), means, cov


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """The precisions ``P = U U^T`` (full) or ``U^2`` from their factors."""
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    return prec_chol**2


def cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """The factors :func:`precision_cholesky` gives, from precisions."""
    precisions = np.asarray(precisions, dtype=np.float64)
    if covariance_type == "full":
        return np.stack([np.linalg.cholesky(p) for p in precisions])
    return np.sqrt(precisions)
