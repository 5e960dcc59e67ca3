"""Gaussian mixtures by EM over chunked data: one pass per iteration.

Each pass computes, on every block, the responsibilities under the current
parameters (the E step), and from them the weighted sums the M step needs,
taken about the current means (:func:`dkmeans.kernels.mixture.moment_sums`),
plus the log-likelihood; only those k x d (or k x d x d) sums are reduced.
The iteration matches scikit-learn's ``GaussianMixture``: iteration t
reports the mean log-likelihood of the parameters it started from, and stops
when that changes by less than ``tol``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from dkmeans.errors import InvalidParameterError, not_finite
from dkmeans.kernels import mixture as kernels
from dkmeans.passes.mixture import EM, EMStats
from dkmeans.runner import Block, run_pass


@dataclass(frozen=True)
class MixtureParameters:
    """weights (k,), means (k, d), covariances and their precisions' Cholesky
    factors ((k, d, d), (k, d) or (k,), by covariance type)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    prec_chol: np.ndarray


@dataclass(frozen=True)
class MixtureResult:
    """A fitted mixture.

    Attributes
    ----------
    params : MixtureParameters
    converged : bool
    n_iter : int
    lower_bound : float
        Mean log-likelihood per unit of weight, from the last iteration.
    lower_bounds : list of float
        Each iteration's.
    """

    params: MixtureParameters
    converged: bool
    n_iter: int
    lower_bound: float
    lower_bounds: list[float]


def check_initial_parameters(k: int, d: int, cov: str, weights_init, means_init,
                             precisions_init) -> list[np.ndarray | None]:
    """The user's initial weights, means and precisions as float64 arrays
    (or None), checked: shapes, finite values, weights summing to 1,
    positive (definite) precisions."""
    given = {"weights_init": (weights_init, (k,)), "means_init": (means_init, (k, d)),
             "precisions_init": (precisions_init, {"full": (k, d, d), "diag": (k, d),
                                                   "spherical": (k,)}[cov])}
    out = []
    for name, (value, shape) in given.items():
        if value is not None:
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape:
                raise InvalidParameterError(
                    f"The parameter {name!r} should have the shape {shape}, but got "
                    f"{value.shape}.")
            if not np.isfinite(value).all():
                raise InvalidParameterError(f"{name} holds NaN or infinity.")
        out.append(value)
    weights, _, precisions = out
    if weights is not None and (weights.min() < 0 or not np.isclose(weights.sum(), 1)):
        raise InvalidParameterError("weights_init must be non-negative and sum to 1; got "
                                    f"a sum of {weights.sum()!r}.")
    if precisions is not None:
        if cov == "full":
            for j, p in enumerate(precisions):
                if not (np.allclose(p, p.T) and np.all(np.linalg.eigvalsh(p) > 0)):
                    raise InvalidParameterError(
                        f"precisions_init[{j}] is not symmetric positive definite.")
        elif precisions.min() <= 0:
            raise InvalidParameterError("precisions_init must be positive.")
    return out


def em_pass(blocks: Sequence[Block], means: np.ndarray, covariance_type: str,
            log_weights: np.ndarray | None = None, prec_chol: np.ndarray | None = None,
            split_every: int = 8) -> EMStats:
    """One EM pass (hard assignment to the nearest mean without ``prec_chol``).

    Raises
    ------
    InvalidInputError
        Naming the first row holding NaN or infinity.
    """
    stats = run_pass(EM, blocks, log_weights, means, prec_chol, covariance_type,
                     split_every=split_every)
    if stats.bad_row >= 0:
        raise not_finite(stats.bad_row, "a Gaussian mixture")
    return stats


def m_step(stats: EMStats, about: np.ndarray, covariance_type: str,
           reg_covar: float) -> MixtureParameters:
    """Parameters from an EM pass's sums."""
    weights, means, cov = kernels.gaussian_parameters(stats.nk, stats.first, stats.second,
                                                      about, covariance_type, reg_covar)
    return MixtureParameters(weights, means, cov,
                             kernels.precision_cholesky(cov, covariance_type, reg_covar))


def initial_parameters(blocks: Sequence[Block], centers: np.ndarray, covariance_type: str,
                       reg_covar: float, weights: np.ndarray | None = None,
                       precisions: np.ndarray | None = None,
                       split_every: int = 8) -> MixtureParameters:
    """Start from ``centers``: every row in the component of its nearest
    center (one pass), as scikit-learn starts from k-means' labels; given
    ``weights`` and ``precisions`` replace what that pass estimates (with
    both given, no pass runs)."""
    centers = np.asarray(centers, dtype=np.float64)
    if weights is None or precisions is None:
        hard = m_step(em_pass(blocks, centers, covariance_type, split_every=split_every),
                      centers, covariance_type, reg_covar)
        weights = hard.weights if weights is None else weights
        cov = hard.covariances
    if precisions is None:
        prec_chol = kernels.precision_cholesky(cov, covariance_type, reg_covar)
    else:
        prec_chol = kernels.cholesky_from_precisions(precisions, covariance_type)
        cov = covariances_from_cholesky(prec_chol, covariance_type)
    return MixtureParameters(np.asarray(weights, dtype=np.float64), centers, cov, prec_chol)


def covariances_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    """The covariances whose precisions have these Cholesky factors."""
    precisions = kernels.precisions_from_cholesky(prec_chol, covariance_type)
    if covariance_type == "full":
        return np.linalg.inv(precisions)
    return 1.0 / precisions


def em(blocks: Sequence[Block], start: MixtureParameters, covariance_type: str, *,
       tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
       split_every: int = 8, history: Sequence[float] = (),
       on_iteration: Callable[[MixtureResult], None] | None = None) -> MixtureResult:
    """EM iterations from ``start`` until the mean log-likelihood changes by
    less than ``tol`` (or ``max_iter``).

    Parameters
    ----------
    blocks : sequence of Block
    start : MixtureParameters
    covariance_type : {"full", "diag", "spherical"}
    tol, reg_covar, max_iter, split_every
        As in :class:`dkmeans.GaussianMixture`.
    history : sequence of float
        Lower bounds of iterations already run (resuming from a checkpoint
        of them, whose parameters are ``start``): the count continues, and
        the next change is taken from the last of them.
    on_iteration : callable, optional
        Called after every iteration with the state so far.
    """
    params, history = start, list(history)
    lower_bound = history[-1] if history else -np.inf
    result = MixtureResult(params, False, len(history), float(lower_bound), history)
    for n_iter in range(len(history) + 1, max_iter + 1):
        with np.errstate(divide="ignore"):  # a component of weight 0: log 0
            log_weights = np.log(params.weights)
        stats = em_pass(blocks, params.means, covariance_type, log_weights,
                        params.prec_chol, split_every)
        previous, lower_bound = lower_bound, stats.log_likelihood / stats.weight
        params = m_step(stats, params.means, covariance_type, reg_covar)
        history.append(lower_bound)
        result = MixtureResult(params, abs(lower_bound - previous) < tol, n_iter,
                               float(lower_bound), list(history))
        if on_iteration is not None:
            on_iteration(result)
        if result.converged:
            break
    return result


def fit_mixture(blocks: Sequence[Block], n_components: int, covariance_type: str, *,
                centers: Callable[[int], np.ndarray], n_init: int = 1,
                weights_init: np.ndarray | None = None,
                precisions_init: np.ndarray | None = None, **em_options,
                ) -> MixtureResult:
    """The best (highest lower bound) of ``n_init`` EM runs.

    Parameters
    ----------
    blocks : sequence of Block
    n_components : int
    covariance_type : {"full", "diag", "spherical"}
    centers : callable
        ``centers(run)``: the initial means of run ``run`` (k-means' centers,
        or the user's ``means_init``).
    n_init : int
    weights_init, precisions_init : ndarray, optional
    **em_options
        Passed to :func:`em`.
    """
    best: MixtureResult | None = None
    reg_covar = em_options.get("reg_covar", 1e-6)
    for run in range(n_init):
        start = initial_parameters(blocks, centers(run), covariance_type, reg_covar,
                                   weights_init, precisions_init,
                                   em_options.get("split_every", 8))
        result = em(blocks, start, covariance_type, **em_options)
        if best is None or result.lower_bound > best.lower_bound:
            best = result
    assert best is not None
    return best


def affine_precisions(precisions: np.ndarray, factor: np.ndarray,
                      covariance_type: str) -> np.ndarray:
    """Precisions of ``x * factor`` (per feature) for precisions of x."""
    if covariance_type == "full":
        return precisions / factor[:, None] / factor[None, :]
    if covariance_type == "diag":
        return precisions / factor**2
    _spherical_factor(factor)
    return precisions / factor[0] ** 2


def spherical_scaling_error() -> InvalidParameterError:
    """Why ``scale=True`` and ``covariance_type="spherical"`` do not go together."""
    return InvalidParameterError(
        "covariance_type='spherical' with scale=True: a spherical component in "
        "standardized units is not spherical in the data's units; use 'diag'.")


def _spherical_factor(factor: np.ndarray) -> None:
    if not np.allclose(factor, factor[0]):
        raise spherical_scaling_error()


def affine_result(result: MixtureResult, factor: np.ndarray, offset: np.ndarray,
                  covariance_type: str) -> MixtureResult:
    """The same mixture fitted to ``x * factor + offset`` (per feature):
    means, covariances and precisions moved, log-likelihoods shifted by the
    log-determinant of the map.

    Parameters
    ----------
    result : MixtureResult
    factor, offset : ndarray of shape (n_features,)
    covariance_type : {"full", "diag", "spherical"}
    """
    p = result.params
    f = np.asarray(factor, dtype=np.float64)
    if covariance_type == "full":
        cov = p.covariances * f[None, :, None] * f[None, None, :]
        chol = p.prec_chol / f[None, :, None]
    elif covariance_type == "diag":
        cov, chol = p.covariances * f**2, p.prec_chol / f
    else:
        _spherical_factor(f)
        cov, chol = p.covariances * f[0] ** 2, p.prec_chol / f[0]
    log_det = float(np.log(np.abs(f)).sum())
    params = MixtureParameters(p.weights, p.means * f + offset, cov, chol)
    return replace(result, params=params, lower_bound=result.lower_bound - log_det,
                   lower_bounds=[v - log_det for v in result.lower_bounds])


class MixtureUnits:
    """Between the data's units and the standardized ones a ``scale=True``
    mixture is fitted in (the identity otherwise)."""

    def __init__(self, factor: np.ndarray | None, offset: np.ndarray | None,
                 covariance_type: str):
        """x = x_model * factor + offset, per feature (None: the same units)."""
        self.cov = covariance_type
        self.factor = None if factor is None else np.asarray(factor, dtype=np.float64)
        self.offset = None if offset is None else np.asarray(offset, dtype=np.float64)

    def to_data(self, result: MixtureResult) -> MixtureResult:
        if self.factor is None:
            return result
        return affine_result(result, self.factor, self.offset, self.cov)

    def to_model(self, result: MixtureResult) -> MixtureResult:
        if self.factor is None:
            return result
        return affine_result(result, 1 / self.factor, -self.offset / self.factor, self.cov)

    def initial(self, means: np.ndarray | None, precisions: np.ndarray | None) -> tuple:
        """The user's initial means and precisions in the fit's units."""
        if self.factor is None:
            return means, precisions
        return (None if means is None else (means - self.offset) / self.factor,
                None if precisions is None
                else affine_precisions(precisions, 1 / self.factor, self.cov))
