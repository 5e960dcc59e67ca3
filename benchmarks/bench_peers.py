"""dkmeans against its peers on the same data, in one run, with ratios.

Each (peer, dataset, storage) cell runs in a fresh subprocess, so its peak
resident memory (``ru_maxrss``) is its own. Every peer is timed the same way:

- seconds per Lloyd iteration: from the same fixed initial centers with tol=0,
  ``(t(max_iter=M) - t(max_iter=1)) / (n_iter(M) - n_iter(1))``, the median of
  ``--repeat`` runs, so fixed per-fit costs (validation, final labels) cancel;
- seeding: the peer's default seeding alone (k-means++ for scikit-learn,
  k-means|| for dkmeans and dask-ml; dkmeans' on over a million rows runs
  on the sample its first pass draws, and that pass is included);
- whole fit: the peer's default fit to convergence;
- final inertia: recomputed from the returned centers by :func:`inertia_of`,
  the same float64 code for everyone (dask-ml's own ``inertia_`` is wrong).

Usage::

    python benchmarks/bench_peers.py --datasets D1 D2 --storage numpy zarr
    python benchmarks/bench_peers.py --datasets D1 --peers sklearn dkmeans --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATASETS = {
    # name: (n, d, k); the floors are from shared/MEASURED.md (GEMM at 2 threads)
    "D1": (2_000_000, 32, 16),
    "D2": (500_000, 256, 64),
    "D3": (10_000_000, 4, 8),  # low d, large n
    "D4": (200_000, 32, 1_000),  # high k
    "tiny": (200_000, 16, 8),
}
FLOOR_GFLOPS = 130.0  # float32 GEMM over both cores at k-means shapes
PEERS = ["floor", "dkmeans", "dkmeans-dist", "sklearn", "sklearnex", "minibatch", "daskml",
         "faiss"]


def floor_seconds(n: int, d: int, k: int) -> float:
    """Lower bound of one Lloyd iteration: the distance GEMM at the machine's rate."""
    return 2.0 * n * d * k / (FLOOR_GFLOPS * 1e9)


def make_data(name: str, workdir: Path) -> dict:
    """Generate the dataset once (numpy file and Zarr copy) and fixed init centers."""
    import dask.array as da

    from dkmeans.data.datasets import make_blobs

    n, d, k = DATASETS[name]
    npy, zpath = workdir / f"{name}.npy", workdir / f"{name}.zarr"
    if not npy.exists():
        # std 4 in a box of +-10: blobs overlap, so Lloyd keeps iterating
        X, _ = make_blobs(n, d, k, std=4.0, seed=1, chunk_rows=min(n, 131_072))
        X = X.compute()
        np.save(npy, X)
        da.to_zarr(da.from_array(X, chunks=(131_072, d)), str(zpath), overwrite=True)
        rng = np.random.default_rng(2)
        np.save(workdir / f"{name}-init.npy", X[rng.choice(n, k, replace=False)])
    return {"npy": str(npy), "zarr": str(zpath), "init": str(workdir / f"{name}-init.npy"),
            "n": n, "d": d, "k": k}


def inertia_of(X: np.ndarray, centers: np.ndarray, block: int = 65_536) -> float:
    """Sum of squared distances to the nearest center, float64, one code for all peers."""
    c = centers.astype(np.float64)
    cc = (c**2).sum(1)
    total = 0.0
    for s in range(0, len(X), block):
        x = X[s : s + block].astype(np.float64)
        d2 = (x**2).sum(1)[:, None] - 2 * x @ c.T + cc[None]
        total += np.maximum(d2.min(1), 0).sum()
    return float(total)


# ----------------------------------------------------------------- peers
# Each adapter: load(spec, storage) -> X; lloyd(X, init, max_iter) -> n_iter;
# seed(X, k) -> None; fit(X, k) -> centers.


class Sklearn:
    def load(self, spec, storage):
        return np.load(spec["npy"])

    def lloyd(self, X, init, max_iter):
        from sklearn.cluster import KMeans

        return KMeans(len(init), init=init, n_init=1, max_iter=max_iter, tol=0).fit(X).n_iter_

    def seed(self, X, k):
        from sklearn.cluster import kmeans_plusplus

        kmeans_plusplus(X, k, random_state=0)

    def fit(self, X, k):
        from sklearn.cluster import KMeans

        return KMeans(k, n_init=1, random_state=0).fit(X).cluster_centers_


class Sklearnex(Sklearn):
    """scikit-learn-intelex (oneDAL): the same calls on its KMeans."""

    def lloyd(self, X, init, max_iter):
        from sklearnex.cluster import KMeans

        return KMeans(len(init), init=init, n_init=1, max_iter=max_iter, tol=0).fit(X).n_iter_

    seed = None  # its k-means++ runs inside fit; see fit

    def fit(self, X, k):
        from sklearnex.cluster import KMeans

        return KMeans(k, n_init=1, random_state=0).fit(X).cluster_centers_


class MiniBatch(Sklearn):
    lloyd = None  # not a Lloyd iteration
    seed = None

    def fit(self, X, k):
        from sklearn.cluster import MiniBatchKMeans

        return MiniBatchKMeans(k, n_init=1, random_state=0,
                               batch_size=4096).fit(X).cluster_centers_


class Dkmeans:
    #: its first seeding in a process loads compiled kernels (their first
    #: call there) that the warmed-up Lloyd iterations did not use
    warm_seed = True

    def __init__(self, distributed: bool = False):
        self.distributed = distributed
        self.client = None

    def load(self, spec, storage):
        import dask.array as da

        from dkmeans.data import as_dataset

        if self.distributed:
            from distributed import Client, LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=50)
            self.client = Client(cluster)
        X = np.load(spec["npy"]) if storage == "numpy" else spec["zarr"]
        if self.distributed and storage == "numpy":
            X = da.from_array(X, chunks=(131_072, X.shape[1]))
        self.data = as_dataset(X).persist()
        self.blocks = self.data.blocks()
        return X

    def lloyd(self, X, init, max_iter):
        from dkmeans.algorithms.lloyd import lloyd

        return lloyd(self.blocks, init.astype(self.data.dtype), max_iter=max_iter,
                     tol=0).n_iter

    def seed(self, X, k):
        from dkmeans.algorithms.fit import first_pass, seeding_sample_size
        from dkmeans.algorithms.seeding import init_kmeans_parallel

        # as a default fit seeds: on large data, on the sample its first pass
        # draws (that pass included), else over every row
        size = seeding_sample_size("auto", self.data, k)
        blocks = first_pass(self.data, self.blocks, 0, size)[1] if size else self.blocks
        init_kmeans_parallel(blocks, k, 0, 0)

    def fit(self, X, k):
        from dkmeans import KMeans

        # numpy as a user passes it (the other peers get it so too); the
        # distributed peer and Zarr fit what load() put on the workers
        data = X if isinstance(X, np.ndarray) and not self.distributed else self.data.X
        return KMeans(k, random_state=0).fit(data).cluster_centers_


class DaskML:
    def load(self, spec, storage):
        import dask.array as da

        X = np.load(spec["npy"]) if storage == "numpy" else None
        X = da.from_array(X, chunks=(131_072, spec["d"])) if X is not None else \
            da.from_zarr(spec["zarr"])
        return X.persist()

    def lloyd(self, X, init, max_iter):
        from dask_ml.cluster import KMeans

        return KMeans(len(init), init=init, max_iter=max_iter, tol=0).fit(X).n_iter_

    def seed(self, X, k):
        from dask_ml.cluster.k_means import k_init
        from dask_ml.utils import check_random_state

        k_init(X, k, init="k-means||", random_state=check_random_state(0))

    def fit(self, X, k):
        from dask_ml.cluster import KMeans

        return KMeans(k, random_state=0).fit(X).cluster_centers_


class Faiss:
    seed = None

    def load(self, spec, storage):
        return np.ascontiguousarray(np.load(spec["npy"]))

    def lloyd(self, X, init, max_iter):
        import faiss

        km = faiss.Kmeans(X.shape[1], len(init), niter=max_iter, max_points_per_centroid=10**9)
        km.train(X, init_centroids=init.astype(np.float32))
        return max_iter  # faiss always runs niter iterations

    def fit(self, X, k):
        import faiss

        km = faiss.Kmeans(X.shape[1], k, niter=25, seed=0, max_points_per_centroid=10**9)
        km.train(X)
        return km.centroids


ADAPTERS = {"dkmeans": Dkmeans, "dkmeans-dist": lambda: Dkmeans(True), "sklearn": Sklearn,
            "sklearnex": Sklearnex, "minibatch": MiniBatch, "daskml": DaskML,
            "faiss": Faiss}


def measured_floor(spec: dict, repeat: int) -> dict:
    """This machine's floors for one Lloyd iteration on the data, measured in
    the same run as the peers: the distance GEMM (``X @ C.T`` in 65,536-row
    blocks, BLAS on both cores) and a read of every value (two threads each
    summing half the rows). Least of ``repeat``; an iteration needs at least
    the larger of the two."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    X = np.load(spec["npy"])
    ct = np.ascontiguousarray(np.load(spec["init"]).astype(X.dtype).T)
    out = np.empty((65_536, ct.shape[1]), dtype=X.dtype)

    def gemm():
        for s in range(0, len(X), 65_536):
            x = X[s : s + 65_536]
            np.dot(x, ct, out[: len(x)])

    half = len(X) // 2
    best = {"gemm_s": float("inf"), "read_s": float("inf")}
    with threadpool_limits(2, user_api="blas"), ThreadPoolExecutor(2) as pool:
        for _ in range(repeat + 1):  # the first warms BLAS's threads and the pages
            t = time.perf_counter()
            gemm()
            best["gemm_s"] = min(best["gemm_s"], time.perf_counter() - t)
            t = time.perf_counter()
            # a flat float32 sum streams at memory speed (a per-column float64
            # sum converts every value and ran at a sixth of it)
            list(pool.map(lambda part: part.sum(), (X[:half], X[half:])))
            best["read_s"] = min(best["read_s"], time.perf_counter() - t)
    return {"peer": "floor", "storage": "numpy", **best,
            "iter_s": max(best["gemm_s"], best["read_s"])}


def run_cell(peer: str, spec: dict, storage: str, iters: int, repeat: int) -> dict:
    """Measure one peer on one dataset (runs inside its own subprocess)."""
    if peer == "floor":
        return measured_floor(spec, repeat)
    adapter = ADAPTERS[peer]()
    out: dict = {"peer": peer, "storage": storage}
    t0 = time.perf_counter()
    X = adapter.load(spec, storage)
    out["load_s"] = time.perf_counter() - t0
    init = np.load(spec["init"])
    if getattr(adapter, "lloyd", None):
        adapter.lloyd(X, init, 1)  # warm up (compilation, worker start-up)
        per = []
        for _ in range(repeat):
            t = time.perf_counter()
            n1 = adapter.lloyd(X, init, 1)
            t1 = time.perf_counter() - t
            t = time.perf_counter()
            nm = adapter.lloyd(X, init, iters)
            tm = time.perf_counter() - t
            if nm > n1:
                per.append((tm - t1) / (nm - n1))
        out["iter_s"] = float(np.median(per)) if per else None
    if getattr(adapter, "seed", None):
        if getattr(adapter, "warm_seed", False):
            adapter.seed(X, spec["k"])  # compiled kernels loaded, threads started
        t = time.perf_counter()
        adapter.seed(X, spec["k"])
        out["seed_s"] = time.perf_counter() - t
    t = time.perf_counter()
    centers = np.asarray(adapter.fit(X, spec["k"]))
    out["fit_s"] = time.perf_counter() - t
    out["inertia"] = inertia_of(np.load(spec["npy"], mmap_mode="r"), centers)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def available(peer: str) -> bool:
    module = {"daskml": "dask_ml", "faiss": "faiss", "sklearnex": "sklearnex"}.get(peer)
    if module is None:
        return True
    import importlib.util

    return importlib.util.find_spec(module) is not None


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.3f}{unit}" if v < 100 else f"{v:,.0f}{unit}"


def report(name: str, spec: dict, rows: list[dict]) -> str:
    measured = next((r for r in rows if r["peer"] == "floor"), None)
    if measured:
        floor = measured["iter_s"]
        what = (f"measured floor {floor * 1e3:.0f} ms: GEMM {measured['gemm_s'] * 1e3:.0f} "
                f"ms, read {measured['read_s'] * 1e3:.0f} ms")
    else:
        floor = floor_seconds(spec["n"], spec["d"], spec["k"])
        what = f"iteration floor {floor * 1e3:.0f} ms at {FLOOR_GFLOPS:.0f} GFLOP/s"
    rows = [r for r in rows if r["peer"] != "floor"]
    ref = {r["storage"]: r for r in rows if r["peer"] == "sklearn"}
    lines = [f"### {name}: {spec['n']:,} x {spec['d']} float32, k={spec['k']} ({what})", "",
             "| peer | data | s/iter | x floor | iter / sklearn | iter / sklearnex | seeding s "
             "| seed / sklearn | fit s | fit / sklearn | inertia / sklearn | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    intelex = next((r for r in rows if r["peer"] == "sklearnex"), {})
    for r in rows:
        s = ref.get("numpy", {})

        def ratio(key, r=r, s=s):
            return None if r.get(key) is None or not s.get(key) else r[key] / s[key]

        lines.append(
            f"| {r['peer']} | {r['storage']} | {fmt(r.get('iter_s'))} | "
            f"{fmt(r['iter_s'] / floor if r.get('iter_s') else None)} | "
            f"{fmt(ratio('iter_s'))} | {fmt(ratio('iter_s', r, intelex))} | "
            f"{fmt(r.get('seed_s'))} | {fmt(ratio('seed_s'))} | "
            f"{fmt(r['fit_s'])} | {fmt(ratio('fit_s'))} | {fmt(ratio('inertia'))} | "
            f"{r['peak_rss_mb']:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["D1", "D2"], choices=list(DATASETS))
    p.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    p.add_argument("--storage", nargs="+", default=["numpy", "zarr"],
                   choices=["numpy", "zarr"])
    p.add_argument("--iters", type=int, default=6, help="M in the per-iteration timing")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dkmeans-bench"))
    p.add_argument("--cell", help=argparse.SUPPRESS)  # internal: run one cell, print JSON
    args = p.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.cell:
        peer, name, storage = args.cell.split(":")
        spec = make_data(name, workdir)
        print(json.dumps(run_cell(peer, spec, storage, args.iters, args.repeat)))
        return 0
    print(f"# dkmeans vs peers — {platform.node()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}\n")
    for name in args.datasets:
        spec = make_data(name, workdir)
        rows = []
        for peer in args.peers:
            if not available(peer):
                print(f"({peer} not installed: skipped)", file=sys.stderr)
                continue
            # scikit-learn and faiss take numpy only
            storages = (["numpy"] if peer in ("floor", "sklearn", "sklearnex", "minibatch",
                                              "faiss")
                        else args.storage)
            for storage in storages:
                cmd = [sys.executable, __file__, "--cell", f"{peer}:{name}:{storage}",
                       "--iters", str(args.iters), "--repeat", str(args.repeat),
                       "--workdir", str(workdir)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode:
                    print(f"{peer} {storage} failed:\n{res.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
                print(f"  {rows[-1]}", file=sys.stderr)
        print(report(name, spec, rows) + "\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
