"""What one Lloyd iteration costs on a cluster of separate worker processes:
bytes through the network and tasks through the scheduler, counted by the
loopback interface and the scheduler's own task counters."""

import os
import sys

import cloudpickle
import dask
import dask.array as da
import numpy as np
import pytest
from distributed import Client

from dkmeans.algorithms.lloyd import lloyd
from dkmeans.data.dataset import as_dataset, row_blocks
from dkmeans.kernels import exact
from dkmeans.passes import FAR_CANDIDATES, LLOYD
from dkmeans.runner import notes, run_pass
from dkmeans.runner.fold import RUNS_PER_THREAD

pytestmark = pytest.mark.slow

# the scheduler cannot import this file: send its functions whole
cloudpickle.register_pickle_by_value(sys.modules[__name__])

N_WORKERS, N_CHUNKS, ROWS, K, D = 4, 64, 400, 256, 64


def _loopback_bytes() -> int:
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                return int(counters.split()[0])  # received: each byte counted once
    pytest.skip("no loopback interface counters")


def _tasks_done(dask_scheduler) -> int:
    return sum(p.state_counts["memory"] for p in dask_scheduler.task_prefixes.values())


def _prefixes(dask_scheduler) -> list:
    return sorted(dask_scheduler.task_prefixes)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from conftest import start_dask_processes

    folder = tmp_path_factory.mktemp("scale-cluster")
    # direct_to_workers: the client scatters and gathers without the
    # scheduler relaying the bytes (by default it does, and they cross twice).
    # No work stealing: on a loaded machine dask may move tiny blocks to
    # idle workers to balance load, which is dask's choice, not what a pass
    # ships (benchmarks/bench_scale.py measures with it on)
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False"}
    with start_dask_processes(folder, N_WORKERS, env=env) as address, \
            Client(address, direct_to_workers=True) as client:
        client.wait_for_workers(N_WORKERS)
        yield client


@pytest.fixture(scope="module")
def structureless():
    # no structure, centers from the data: every cluster keeps rows
    return np.random.default_rng(0).normal(size=(N_CHUNKS * ROWS, D))


def test_lloyd_iteration_moves_one_partial_per_worker(cluster, structureless):
    X = structureless
    blocks = as_dataset(row_blocks(X, ROWS, scatter=True)).blocks()  # 64 chunks on the workers
    assert len(blocks) == N_CHUNKS
    centers = X[:: len(X) // K][:K].copy()
    quanta = exact.grid(len(X), 1.0, np.abs(X).max(axis=0))
    run_pass(LLOYD, blocks, centers, quanta)  # warm-up: functions reach the workers
    # the least of three passes: loopback also carries whatever else runs on
    # the machine (heartbeats, other tests' servers), which only adds bytes
    measured = []
    for _ in range(3):
        tasks0, bytes0 = cluster.run_on_scheduler(_tasks_done), _loopback_bytes()
        stats = run_pass(LLOYD, blocks, centers, quanta)
        measured.append((_loopback_bytes() - bytes0,
                         cluster.run_on_scheduler(_tasks_done) - tasks0))
    moved, tasks = min(measured)
    payload = 2 * N_WORKERS * (K * D * 8 + K * 8)
    # beside the payload: each task's message to its worker and report back
    # (one task per worker thread folds the chunks that worker holds, and
    # after the first pass names only which of the workers' folds it is)
    print(f"one Lloyd pass: {moved} bytes on loopback (payload bound {payload}), {tasks} tasks")
    assert moved <= payload + 6_000 * 3 * N_WORKERS, (moved, payload)
    assert tasks <= 2 * N_WORKERS, tasks  # 1 thread each: a fold each, a combine
    # the same totals, bit for bit, as the threaded scheduler's index-ordered tree
    with dask.config.set(scheduler="threads"):
        threaded = run_pass(LLOYD, as_dataset(da.from_array(X, chunks=(ROWS, D))).blocks(),
                            centers, quanta)
    np.testing.assert_array_equal(stats.sums, threaded.sums)
    np.testing.assert_array_equal(stats.weights, threaded.weights)
    assert stats.inertia == threaded.inertia


def _pass_bytes(client, blocks, *shared):
    run_pass(LLOYD, blocks, *shared)  # the first pass over these blocks names them
    bytes0 = _loopback_bytes()
    stats = run_pass(LLOYD, blocks, *shared)
    return _loopback_bytes() - bytes0, stats


def test_bytes_a_pass_moves_do_not_grow_with_the_chunks(cluster, structureless):
    X = structureless
    centers = X[:: len(X) // K][:K].copy()
    quanta = exact.grid(len(X), 1.0, np.abs(X).max(axis=0))
    few = as_dataset(row_blocks(X, ROWS, scatter=True)).blocks()
    many = as_dataset(row_blocks(X, ROWS // 10, scatter=True)).blocks()
    assert (len(few), len(many)) == (N_CHUNKS, 10 * N_CHUNKS)
    for blocks in (few, many):  # functions reach the workers, the blocks are named
        run_pass(LLOYD, blocks, centers, quanta)
    # loopback counts every process's traffic: other work on the machine only
    # adds to it, so the least of alternating repeats bounds the pass's own
    measured = [(_pass_bytes(cluster, few, centers, quanta),
                 _pass_bytes(cluster, many, centers, quanta)) for _ in range(3)]
    moved_few = min(f[0] for f, _ in measured)
    moved_many = min(m[0] for _, m in measured)
    few_stats, many_stats = measured[0][0][1], measured[0][1][1]
    print(f"a Lloyd pass over {len(few)} chunks: {moved_few} bytes; over {len(many)}: "
          f"{moved_many}")
    # 576 more chunks: less than a tenth of what naming each would take
    # (about 360 bytes a chunk)
    assert moved_many - moved_few <= 20_000, (moved_few, moved_many)
    # each chunking's totals those of the threaded scheduler, bit for bit
    for stats, rows in ((few_stats, ROWS), (many_stats, ROWS // 10)):
        with dask.config.set(scheduler="threads"):
            threaded = run_pass(LLOYD, as_dataset(da.from_array(X, chunks=(rows, D))).blocks(),
                                centers, quanta)
        np.testing.assert_array_equal(stats.sums, threaded.sums)
        assert stats.inertia == threaded.inertia


def test_a_pass_whose_blocks_moved_names_them_again(dask_processes, tmp_path, structureless):
    """A worker retired between passes: its blocks move to the others, the
    folds noted on it find nothing, and the pass names its blocks again; a
    worker restarted: the runs of streamed chunks noted on it are gone, and
    the pass names them again. The totals are the threaded scheduler's, bit
    for bit, before and after."""
    X = structureless[: 24 * ROWS]
    centers, quanta = X[:7].copy(), exact.grid(len(X), 1.0, np.abs(X).max(axis=0))
    with dask.config.set(scheduler="threads"):
        threaded = run_pass(LLOYD, as_dataset(da.from_array(X, chunks=(ROWS, D))).blocks(),
                            centers, quanta)
    with dask_processes(tmp_path, 3) as address, Client(address) as client:
        client.wait_for_workers(3)
        held = as_dataset(row_blocks(X, ROWS, scatter=True)).blocks()
        streamed = _zarr_blocks(X, tmp_path, ROWS)
        passes = [run_pass(LLOYD, blocks, centers, quanta)  # named, then noted
                  for blocks in (held, held, streamed)]
        client.retire_workers([sorted(client.nthreads())[0]])
        passes += [run_pass(LLOYD, blocks, centers, quanta)  # noted ones missing
                   for blocks in (held, held, streamed, streamed)]
        client.restart_workers([sorted(client.nthreads())[0]])  # its notes gone
        passes += [run_pass(LLOYD, streamed, centers, quanta) for _ in range(2)]
    # the latest plans of each kind: these datasets'
    held_plan, streamed_plan = ([p for p in notes._PLANS.values() if (p.sources is None) == h][-1]
                                for h in (True, False))
    assert (held_plan.misses, held_plan.registered, len(held_plan.groups)) == (1, True, 2)
    assert (streamed_plan.misses, streamed_plan.registered) == (1, True)
    for stats in passes:
        np.testing.assert_array_equal(stats.sums, threaded.sums)
        assert stats.inertia == threaded.inertia


def test_empty_clusters_move_without_another_pass_up_to_the_rows_kept(cluster, structureless):
    X = structureless
    data = as_dataset(row_blocks(X, ROWS, scatter=True))
    far_prefix = "dkmeans-far-rows"

    def oracle(centers, n):  # numpy: the rows farthest from their nearest center
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1).min(1)
        return X[np.argsort(-d2, kind="stable")[:n]]

    # a center far from every row empties its cluster: the Lloyd pass kept
    # the farthest rows (FAR_CANDIDATES of them), so no other pass runs
    centers = X[:8].copy()
    centers[3] += 1e6
    result = lloyd(data.blocks(), centers, max_iter=1, tol=-1.0)
    assert far_prefix not in cluster.run_on_scheduler(_prefixes)
    assert (result.n_relocated, result.n_iter) == (1, 1)
    np.testing.assert_array_equal(result.centers[3], oracle(centers, 1)[0])
    # more clusters empty than rows kept: one more pass finds as many rows
    centers = X[:8].copy()
    centers[:FAR_CANDIDATES + 1] += 1e6
    result = lloyd(data.blocks(), centers, max_iter=1, tol=-1.0)
    assert far_prefix in cluster.run_on_scheduler(_prefixes)
    assert result.n_relocated == FAR_CANDIDATES + 1
    np.testing.assert_array_equal(result.centers[:FAR_CANDIDATES + 1],
                                  oracle(centers, FAR_CANDIDATES + 1))


def _zarr_blocks(X, folder, rows):
    import zarr

    path = str(folder / f"x{rows}.zarr")
    z = zarr.create_array(path, shape=X.shape, dtype="f8", chunks=(rows, X.shape[1]))
    z[:] = X
    return as_dataset(da.from_zarr(path)).blocks()


def test_streamed_chunks_are_folded_by_a_few_tasks(cluster, structureless, tmp_path):
    """Zarr read from its source each pass: each chunk's read (and decode)
    tasks run inside the task folding its run of chunks, and the totals are
    those of the threaded scheduler, bit for bit."""
    X = structureless[: 40 * ROWS, :8]
    blocks = _zarr_blocks(X, tmp_path, ROWS)
    assert len(blocks) == 40
    centers, quanta = X[:5].copy(), exact.grid(len(X), 1.0, np.abs(X).max(axis=0))
    run_pass(LLOYD, blocks, centers, quanta)
    tasks0 = cluster.run_on_scheduler(_tasks_done)
    stats = run_pass(LLOYD, blocks, centers, quanta)
    tasks = cluster.run_on_scheduler(_tasks_done) - tasks0
    # runs of chunks folded by a few tasks a thread, not a task a chunk; each
    # worker's folds combined on it, then the workers' partials; the nodes
    # the runs share (the array's handle)
    assert tasks <= RUNS_PER_THREAD * N_WORKERS + N_WORKERS + 3, tasks
    with dask.config.set(scheduler="threads"):
        threaded = run_pass(LLOYD, as_dataset(da.from_array(X, chunks=(ROWS, 8))).blocks(),
                            centers, quanta)
    np.testing.assert_array_equal(stats.sums, threaded.sums)
    assert stats.inertia == threaded.inertia


def test_streamed_chunks_are_named_on_the_first_pass_only(cluster, structureless, tmp_path):
    """A run's read tasks are noted where it ran: later passes send the
    same bytes over 40 chunks as over 400."""
    X = structureless[: 40 * ROWS, :8]
    centers, quanta = X[:5].copy(), exact.grid(len(X), 1.0, np.abs(X).max(axis=0))
    moved = {}
    for rows in (ROWS, ROWS // 10):
        blocks = _zarr_blocks(X, tmp_path, rows)
        moved[len(blocks)], stats = _pass_bytes(cluster, blocks, centers, quanta)
        with dask.config.set(scheduler="threads"):
            threaded = run_pass(LLOYD, as_dataset(da.from_array(X, chunks=(rows, 8))).blocks(),
                                centers, quanta)
        np.testing.assert_array_equal(stats.sums, threaded.sums)
        assert stats.inertia == threaded.inertia
    print(f"a streamed Lloyd pass, bytes by chunks: {moved}")
    # 360 more chunks: less than what naming each (~200 bytes) would take
    assert moved[400] - moved[40] <= 20_000, moved
