"""Layer 4, algorithms: whole fits and their steps, on a :class:`~dkmeans.data.Dataset`.

May import :mod:`dkmeans.data` and everything below it; never an estimator,
the evaluation tools or the command line. No algorithm gathers X: each step
is one or more passes (:mod:`dkmeans.passes`) whose small results come back.

- :mod:`~dkmeans.algorithms.seeding`: k-means||, k-means++ and random starts;
- :mod:`~dkmeans.algorithms.lloyd`: the Lloyd iterations (:func:`lloyd`),
  with Hamerly's bounds;
- :mod:`~dkmeans.algorithms.minibatch`: mini-batch steps;
  :mod:`~dkmeans.algorithms.kmedians`: k-medians;
  :mod:`~dkmeans.algorithms.mixture`: EM for Gaussian mixtures;
- :mod:`~dkmeans.algorithms.fit` and :mod:`~dkmeans.algorithms.fit_minibatch`:
  whole fits (seeding, restarts, iterations, the final assignment);
- :mod:`~dkmeans.algorithms.apply`: labels and distances for new data.
"""

from dkmeans.compat import submodules_on_demand

__getattr__ = submodules_on_demand(__name__)
