"""Which rows each mini-batch step sees: an epoch's blocks in a random
order, grouped, and each group's rows shuffled together and cut into
batches. Pure functions of the block sizes and the seed, so a fit can be
replayed batch by batch (``partial_fit``) and is the same on any scheduler."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Rows a group of blocks should hold, in batches: a group is shuffled as one,
#: so batches mix rows from different blocks.
GROUP_BATCHES = 8

#: Bytes of blocks one group may hold (its blocks are in memory together).
MAX_GROUP_BYTES = 256 * 2**20


def group_batches(sizes: Sequence[int], batch_size: int, key: Sequence[int],
                  ) -> list[list[tuple[int, np.ndarray]]]:
    """Cut a group of blocks into shuffled batches.

    Parameters
    ----------
    sizes : sequence of int
        Rows of each block of the group, in group order.
    batch_size : int
    key : sequence of int
        Seeds the shuffle (the run's seed, the epoch and the group).

    Returns
    -------
    list of batches; each a list of ``(block position, row indices)``
        The rows of every block, each exactly once, in random batches of
        ``batch_size`` (the last may be smaller).
    """
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    order = np.random.default_rng(list(key)).permutation(int(bounds[-1]))
    batches = []
    for start in range(0, order.size, batch_size):
        idx = order[start : start + batch_size]
        block = np.searchsorted(bounds, idx, side="right") - 1
        batches.append([(int(b), np.sort(idx[block == b] - bounds[b]))
                        for b in np.unique(block)])
    return batches


def epoch_groups(sizes: Sequence[int], batch_size: int, row_bytes: int, seed: int,
                 epoch: int) -> list[list[int]]:
    """The blocks of one epoch, shuffled and grouped.

    Blocks are visited in a random order (keyed by the seed and the epoch)
    and grouped consecutively to hold about :data:`GROUP_BATCHES` batches,
    within :data:`MAX_GROUP_BYTES`.

    Returns
    -------
    list of lists of block indices
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(sizes))
    groups: list[list[int]] = []
    current: list[int] = []
    rows = 0
    for i in order:
        if current and (rows >= GROUP_BATCHES * batch_size
                        or (rows + sizes[i]) * row_bytes > MAX_GROUP_BYTES):
            groups.append(current)
            current, rows = [], 0
        current.append(int(i))
        rows += sizes[i]
    if current:
        groups.append(current)
    return groups


def epoch_batches(sizes: Sequence[int], batch_size: int, row_bytes: int, seed: int,
                  epoch: int) -> list[np.ndarray]:
    """Global row indices of every batch of one epoch, in the order
    :func:`minibatch` processes them (to replay a fit with ``partial_fit``)."""
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for g, group in enumerate(epoch_groups(sizes, batch_size, row_bytes, seed, epoch)):
        for parts in group_batches([sizes[i] for i in group], batch_size, (seed, epoch, g)):
            out.append(np.concatenate([rows + starts[group[b]] for b, rows in parts]))
    return out
