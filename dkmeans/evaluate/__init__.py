"""Layer 5, evaluation: metrics, choosing k, stability and plots.

May import :mod:`dkmeans.algorithms` and everything below it; never
:mod:`dkmeans.estimators` (its sibling) or the command line: it fits through
the algorithms' functions and scores with its own passes.

- :mod:`~dkmeans.evaluate.metrics`: inertia, Calinski-Harabasz,
  Davies-Bouldin, silhouette (exact on a sample), adjusted Rand; their
  passes in :mod:`~dkmeans.evaluate.scoring`;
- :mod:`~dkmeans.evaluate.choosing`: :func:`sweep` over k, with
  :mod:`~dkmeans.evaluate.gap` (the gap statistic's references);
- :mod:`~dkmeans.evaluate.resampling`: :func:`stability`;
- :mod:`~dkmeans.evaluate.plots`: figures, on the caller's matplotlib backend.
"""

from dkmeans.compat import submodules_on_demand

__getattr__ = submodules_on_demand(__name__)
