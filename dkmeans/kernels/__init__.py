"""Layer 1: numpy and numba functions on one in-memory block; no dask.

- :mod:`~dkmeans.kernels.assign`: the fused GEMM + argmin + sums of a Lloyd
  step (:func:`lloyd_partials`) and the nearest center (:func:`nearest`);
- :mod:`~dkmeans.kernels.bounds`: the same step keeping Hamerly's per-row
  bounds (:func:`lloyd_partials_bounded`);
- :mod:`~dkmeans.kernels.sampling`: counter-based random draws and the fused
  seeding round;
- :mod:`~dkmeans.kernels.local`: compiled weighted k-means++ and Lloyd
  on one in-memory block (k-means|| candidates, small fits);
- :mod:`~dkmeans.kernels.small`: moments, validity, top-m;
- :mod:`~dkmeans.kernels.sparse`: the nearest centers and a Lloyd step's
  partial results on a CSR block (:func:`csr_lloyd_partials_far`);
- :mod:`~dkmeans.kernels.blocks`: what the passes call, on a dense or a
  sparse block alike (:func:`nearest`, :func:`lloyd_partials_far`, ...).

Every function takes plain arrays and returns plain arrays or small value
objects, each tested against a numpy oracle (``tests/test_kernels.py``).
"""

from dkmeans.kernels.assign import (
    BLOCK_BYTES,
    block_rows,
    nearest_two,
    rows_first,
)
from dkmeans.kernels.blocks import (
    column_scan,
    compact,
    dense,
    first_nonfinite_row,
    lloyd_partials,
    lloyd_partials_far,
    nearest,
    pairwise_distances,
    row_sqdist_to,
    rows,
    seed_round_partials,
    sqdist,
    stack,
    take,
)
from dkmeans.kernels.bounds import center_bounds, lloyd_partials_bounded
from dkmeans.kernels.local import (
    kmeans_plusplus,
    lloyd_local,
    plusplus_trials,
    recluster_starts,
)
from dkmeans.kernels.small import (
    merge_moments,
    moments,
    top_m,
    unit_length,
)
from dkmeans.kernels.sparse import (
    as_csr,
    csr_group_moments,
    csr_lloyd_partials_far,
    csr_nearest,
    csr_row_sqdist_to,
    csr_row_sqnorms,
    is_sparse,
)
from dkmeans.kernels.sparse_local import csr_plusplus_starts, csr_recluster_starts
from dkmeans.kernels.sparse_steps import CsrSteps

__all__ = [
    "CsrSteps",
    "BLOCK_BYTES",
    "block_rows",
    "as_csr",
    "center_bounds",
    "column_scan",
    "compact",
    "dense",
    "csr_group_moments",
    "csr_lloyd_partials_far",
    "csr_nearest",
    "csr_plusplus_starts",
    "csr_recluster_starts",
    "csr_row_sqdist_to",
    "csr_row_sqnorms",
    "first_nonfinite_row",
    "is_sparse",
    "kmeans_plusplus",
    "lloyd_partials",
    "lloyd_partials_far",
    "lloyd_local",
    "lloyd_partials_bounded",
    "merge_moments",
    "moments",
    "nearest",
    "nearest_two",
    "pairwise_distances",
    "plusplus_trials",
    "recluster_starts",
    "row_sqdist_to",
    "rows",
    "rows_first",
    "seed_round_partials",
    "sqdist",
    "stack",
    "take",
    "top_m",
    "unit_length",
]
