"""Layer 2: distributed passes, each one a named chunk / combine pair.

A pass runs ``chunk`` once per block of rows, where the block lives, turning
it into a small intermediate (a frozen dataclass); ``combine`` merges a list of
intermediates into one (it is associative, so they are tree-reduced with a
fan-in of ``split_every``); the client then calls the pass's aggregate on the
single result. Only those small intermediates ever leave the workers.

:func:`dkmeans.runner.run_pass` builds and runs the graph of any pass.
Some passes keep per-block state between passes (the running minimum distance
of k-means||, the labels of the final assignment): their chunk function takes
the block's previous state and returns ``(new_state, intermediate)``. The new
states are persisted where they were computed; only the intermediate is
gathered.

- :mod:`~dkmeans.passes.common`: the intermediates, and the streaming form
  of a stateful pass;
- :mod:`~dkmeans.passes.scan`: pass 0 (:data:`SCAN`) and :data:`DRAW`;
- :mod:`~dkmeans.passes.seeding`: k-means|| rounds and k-means++ steps;
- :mod:`~dkmeans.passes.lloyd`: the Lloyd step (:data:`LLOYD`), its
  aggregate (:func:`lloyd_aggregate`), and the final assignment.
"""

from dkmeans.passes.common import (
    Assignment,
    LloydStats,
    ScanStats,
    SeedRound,
    TopRows,
    Totals,
    streaming,
)
from dkmeans.passes.lloyd import (
    ASSIGN,
    ASSIGN_STREAM,
    DRAW_IN_CLUSTER,
    FAR_CANDIDATES,
    FAR_ROWS,
    LLOYD,
    LLOYD_BOUNDED,
    assign_chunk,
    empty_clusters,
    lloyd_aggregate,
    lloyd_chunk,
    split_largest,
)
from dkmeans.passes.scan import DRAW, MAGNITUDE, SCAN, scan_chunk
from dkmeans.passes.seeding import (
    CANDIDATE_MASS,
    CANDIDATE_MASS_STREAM,
    POTENTIAL,
    POTENTIAL_STREAM,
    SEED_ROUND,
    SEED_ROUND_STREAM,
)

__all__ = [
    "ASSIGN",
    "ASSIGN_STREAM",
    "CANDIDATE_MASS",
    "CANDIDATE_MASS_STREAM",
    "DRAW",
    "DRAW_IN_CLUSTER",
    "FAR_CANDIDATES",
    "FAR_ROWS",
    "LLOYD",
    "LLOYD_BOUNDED",
    "MAGNITUDE",
    "POTENTIAL",
    "POTENTIAL_STREAM",
    "SCAN",
    "SEED_ROUND",
    "SEED_ROUND_STREAM",
    "Assignment",
    "LloydStats",
    "ScanStats",
    "SeedRound",
    "Totals",
    "TopRows",
    "assign_chunk",
    "empty_clusters",
    "lloyd_aggregate",
    "lloyd_chunk",
    "split_largest",
    "scan_chunk",
    "streaming",
]
