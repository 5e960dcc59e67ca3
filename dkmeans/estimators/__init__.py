"""Layer 5, estimators: scikit-learn compatible classes and their model files.

May import :mod:`dkmeans.algorithms` and everything below it; never
:mod:`dkmeans.evaluate` (its sibling) or the command line.

- :mod:`~dkmeans.estimators.kmeans`, :mod:`~dkmeans.estimators.minibatch`
  and :mod:`~dkmeans.estimators.mixture`: :class:`KMeans`,
  :class:`MiniBatchKMeans`, :class:`GaussianMixture`, on what they share
  (:mod:`~dkmeans.estimators.base`, :mod:`~dkmeans.estimators.params`,
  :mod:`~dkmeans.estimators.outputs`);
- :mod:`~dkmeans.estimators.io`, :mod:`~dkmeans.estimators.modelfile` and
  :mod:`~dkmeans.estimators.mixture_file`: model folders without pickle,
  checkpoints and :func:`load`.
"""

from dkmeans.compat import submodules_on_demand

__getattr__ = submodules_on_demand(__name__)
