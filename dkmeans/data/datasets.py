"""Synthetic data generated chunk by chunk, where it will be used.

Each block is made from its own random stream (seeded by the dataset's seed
and the block's first row), so a dataset much larger than memory can be
written to Zarr by the workers without ever existing in one place.
"""

from __future__ import annotations

import dask.array as da
import numpy as np


def _blob_block(centers: np.ndarray, std: float, seed: int, dtype: str,
                block_info: dict | None = None) -> np.ndarray:
    (start, stop), _ = block_info[None]["array-location"]
    rng = np.random.default_rng([seed, start])
    which = rng.integers(len(centers), size=stop - start)
    noise = rng.standard_normal((stop - start, centers.shape[1]), dtype=np.float32)
    return (centers[which] + std * noise).astype(dtype, copy=False)


def make_blobs(n_samples: int, n_features: int, n_centers: int, *, chunk_rows: int = 250_000,
               std: float = 1.0, box: float = 10.0, seed: int = 0,
               dtype: str = "float32") -> tuple[da.Array, np.ndarray]:
    """Isotropic Gaussian blobs as a lazy, row-chunked dask array.

    Parameters
    ----------
    n_samples, n_features, n_centers : int
    chunk_rows : int
        Rows per block.
    std : float
        Standard deviation of every blob.
    box : float
        Centers are uniform in ``[-box, box]`` along each feature.
    seed : int
    dtype : str

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
    centers : ndarray of shape (n_centers, n_features)
        The true blob centers.
    """
    centers = np.random.default_rng(seed).uniform(-box, box, size=(n_centers, n_features))
    centers = centers.astype(np.float32)
    X = da.map_blocks(_blob_block, centers, std, seed, dtype, dtype=dtype,
                      chunks=(da.core.normalize_chunks(chunk_rows, (n_samples,))[0],
                              (n_features,)),
                      token="dkmeans-blobs")
    return X, centers
