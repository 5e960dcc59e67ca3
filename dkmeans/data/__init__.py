"""Layer 3, data: what comes in and what goes out, as row-chunked arrays.

May import :mod:`dkmeans.passes`, :mod:`dkmeans.runner`,
:mod:`dkmeans.kernels` and the top-level modules; never an algorithm, an
estimator or the command line.

- :mod:`~dkmeans.data.dataset`: :func:`as_dataset`, the one entry the layers
  above call, turning numpy, dask, xarray, Zarr or a path into a
  :class:`Dataset`; :func:`open_array`;
- :mod:`~dkmeans.data.validation`: shape, dtype and weights checks on
  metadata; :mod:`~dkmeans.data.sources`: opening ``.npy``, Zarr and tables
  (CSV, TSV, Parquet) behind an fsspec path; :mod:`~dkmeans.data.storage`:
  fsspec locations, shared-storage checks, atomic writes;
- :mod:`~dkmeans.data.preprocessing`: streaming scaling, imputation, unit
  rows; :mod:`~dkmeans.data.batches`: mini-batch draws;
  :mod:`~dkmeans.data.datasets`: generated data;
- :mod:`~dkmeans.data.outputs`, :mod:`~dkmeans.data.labels_table` and
  :mod:`~dkmeans.data.leases`: writing labels without destroying what was
  at the target, one writer at a time;
- :mod:`~dkmeans.data.workers`: waiting for workers, their memory budget.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dkmeans.compat import submodules_on_demand

__all__ = ["Dataset", "as_chunked", "as_dataset", "open_array"]

if TYPE_CHECKING:
    from dkmeans.data.dataset import Dataset, as_chunked, as_dataset, open_array


_submodule = submodules_on_demand(__name__)


def __getattr__(name: str) -> Any:
    # Lazily, so that importing dkmeans.data.storage (the command line's
    # first step) does not load dask.array.
    if name in __all__:
        return getattr(importlib.import_module("dkmeans.data.dataset"), name)
    return _submodule(name)
