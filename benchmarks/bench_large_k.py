"""Large k on embedding-like data: dkmeans against faiss, superkmeans and sklearnex.

The data: ``n`` float32 rows of dimension ``d`` around 4,096 overlapping latent
topics (a topic's center plus Gaussian noise of about its spacing), like text
or image embeddings; with ``--metric cosine`` the rows have unit length.
Every peer runs with its default settings:

- ``dkmeans``: ``KMeans(k)``; ``dkmeans-fast``: ``KMeans(k, train_size=0.5,
  init="random", n_init=1, max_iter=5)`` (the approximate setting for index
  training: five iterations on half the rows from k random ones, then every
  row assigned; ``--fast SIZE:ITERS ...`` runs other settings, a row each);
  ``minibatch``: ``MiniBatchKMeans(k, batch_size=8192)``;
- ``faiss``: ``faiss.Kmeans(d, k, niter=20)`` (``spherical=True`` for cosine);
- ``superkmeans``: ``SuperKMeans(k, d).train(X)`` (``angular=True`` for cosine);
- ``sklearnex``: scikit-learn-intelex's ``KMeans(k, n_init=1)``.

Each (peer, repeat) runs in a fresh subprocess, peers alternating within each
repeat; the first fit in a subprocess is a small warm-up (compilation, thread
pools), the second one is timed. The inertia of every peer's centers is
recomputed by one float64 code (:func:`inertia_of`; for cosine, unit centers,
so it is the sum of ``2 - 2 cos``) and shown relative to faiss's. dkmeans'
rows also show the seeding share of the fit (``timings_``) and iterations.

Usage::

    python benchmarks/bench_large_k.py                      # 100,000 x 128, k = 1,024
    python benchmarks/bench_large_k.py --k 1024 4096 --metric cosine --dim 96
    python benchmarks/bench_large_k.py --rows 1000000 --k 4096 --repeat 1
    python benchmarks/bench_large_k.py --peers dkmeans-fast superkmeans --repeat 2 \
        --fast 0.3:10 0.5:5 0.5:6 1.0:3       # fast settings against superkmeans
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

PEERS = ["dkmeans", "dkmeans-fast", "faiss", "superkmeans", "sklearnex", "minibatch"]
#: The documented fast setting, train_size:max_iter (``--fast`` compares others)
FAST = "0.5:5"
TOPICS = 4096


def embeddings(n: int, d: int, cosine: bool, seed: int = 0) -> np.ndarray:
    """Rows around ``TOPICS`` overlapping topics (noise ~ the topics' spacing)."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(TOPICS, d)).astype(np.float32)
    X = topics[rng.integers(TOPICS, size=n)]
    X += rng.normal(scale=0.9, size=(n, d)).astype(np.float32)
    if cosine:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def inertia_of(X: np.ndarray, centers: np.ndarray, cosine: bool,
               block: int = 65_536) -> float:
    """Sum of squared distances to the nearest center, float64, one code for all."""
    c = np.asarray(centers, dtype=np.float64)
    if cosine:
        c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-300)
    cc = (c**2).sum(1)
    total = 0.0
    for s in range(0, len(X), block):
        x = np.asarray(X[s : s + block], dtype=np.float64)
        d2 = (x**2).sum(1)[:, None] - 2 * x @ c.T + cc[None]
        total += np.maximum(d2.min(1), 0).sum()
    return float(total)


# Each runner: (X, k, cosine, seed) -> (centers, extra facts).
def run_dkmeans(X, k, cosine, seed, **params):
    from dkmeans import KMeans

    km = KMeans(k, random_state=seed, metric="cosine" if cosine else "euclidean",
                **params).fit(X)
    t = km.timings_
    return km.cluster_centers_, {"iters": int(km.n_iter_),
                                 "seed_share": t.get("seeding", 0.0) / max(sum(t.values()), 1e-9)}


def run_fast(X, k, cosine, seed, setting=FAST):
    size, iters = setting.split(":")
    return run_dkmeans(X, k, cosine, seed, train_size=float(size), init="random", n_init=1,
                       max_iter=int(iters))


def run_minibatch(X, k, cosine, seed):
    from dkmeans import MiniBatchKMeans

    # (no metric parameter: on cosine data the rows already have unit length)
    mb = MiniBatchKMeans(k, batch_size=8192, random_state=seed).fit(X)
    return mb.cluster_centers_, {"iters": int(mb.n_iter_)}


def run_faiss(X, k, cosine, seed):
    import faiss

    km = faiss.Kmeans(X.shape[1], k, niter=20, seed=seed + 1, spherical=cosine)
    km.train(X)
    return km.centroids, {"iters": 20}


def run_superkmeans(X, k, cosine, seed):
    from superkmeans import SuperKMeans

    return SuperKMeans(k, X.shape[1], seed=seed + 1, angular=cosine).train(X), {}


def run_sklearnex(X, k, cosine, seed):
    from sklearnex.cluster import KMeans

    km = KMeans(k, n_init=1, random_state=seed).fit(X)
    return km.cluster_centers_, {"iters": int(km.n_iter_)}


RUNNERS = {"dkmeans": run_dkmeans, "dkmeans-fast": run_fast, "faiss": run_faiss,
           "superkmeans": run_superkmeans, "sklearnex": run_sklearnex,
           "minibatch": run_minibatch}
MODULES = {"faiss": "faiss", "superkmeans": "superkmeans", "sklearnex": "sklearnex"}


def cell(peer: str, path: str, k: int, cosine: bool, seed: int) -> dict:
    """One timed fit (inside its own subprocess), after a small warm-up fit."""
    X = np.load(path)
    name, _, setting = peer.partition(":")  # dkmeans-fast:SIZE:ITERS
    run = partial(RUNNERS[name], setting=setting) if setting else RUNNERS[name]
    run(np.ascontiguousarray(X[: min(len(X), 8 * k)]), k, cosine, seed)
    t = time.perf_counter()
    centers, facts = run(X, k, cosine, seed)
    seconds = time.perf_counter() - t
    return {"peer": peer, "s": seconds, "inertia": inertia_of(X, centers, cosine),
            "load": os.getloadavg()[0], **facts}


def available(peer: str) -> bool:
    import importlib.util

    return peer not in MODULES or importlib.util.find_spec(MODULES[peer]) is not None


def report(rows: list[dict], n: int, d: int, k: int, metric: str) -> str:
    by = {}
    for r in rows:
        by.setdefault(r["peer"], []).append(r)
    ref = by.get("faiss")
    ref_s = np.median([r["s"] for r in ref]) if ref else None
    ref_i = np.median([r["inertia"] for r in ref]) if ref else None
    loads = [r["load"] for r in rows]
    lines = [f"### {n:,} x {d}, k = {k:,}, {metric} (load {min(loads):.1f}-{max(loads):.1f})",
             "", "| peer | time s (median) | time / faiss | inertia / faiss | iterations "
             "| seeding share |", "|---|---|---|---|---|---|"]
    for peer, rs in by.items():
        s = float(np.median([r["s"] for r in rs]))
        inertia = float(np.median([r["inertia"] for r in rs]))
        iters = rs[0].get("iters", "-")
        share = (f"{np.median([r['seed_share'] for r in rs]):.0%}" if "seed_share" in rs[0]
                 else "-")
        lines.append(f"| {peer} | {s:.2f} | {s / ref_s:.2f} | {inertia / ref_i:.4f} | "
                     f"{iters} | {share} |" if ref else
                     f"| {peer} | {s:.2f} | - | - | {iters} | {share} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, nargs="+", default=[1024])
    parser.add_argument("--metric", choices=["euclidean", "cosine"], default="euclidean")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    parser.add_argument("--fast", nargs="+", default=[FAST], metavar="SIZE:ITERS",
                        help="dkmeans-fast's train_size:max_iter, one row each "
                             f"(default {FAST})")
    parser.add_argument("--cell", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell:
        peer, path, k, cosine, seed = args.cell
        print(json.dumps(cell(peer, path, int(k), cosine == "1", int(seed))))
        return 0
    cosine = args.metric == "cosine"
    peers = [p for p in args.peers if available(p)]
    missing = sorted(set(args.peers) - set(peers))
    if missing:
        print(f"not installed, left out: {', '.join(missing)} (pip install -e '.[bench]')")
    if "dkmeans-fast" in peers:
        at = peers.index("dkmeans-fast")
        peers[at:at + 1] = [f"dkmeans-fast:{setting}" for setting in args.fast]
    with tempfile.TemporaryDirectory(prefix="dkmeans-bench-") as tmp:
        path = str(Path(tmp) / "X.npy")
        np.save(path, embeddings(args.rows, args.dim, cosine))
        for k in args.k:
            rows = []
            for r in range(args.repeat):
                for peer in peers:
                    proc = subprocess.run(
                        [sys.executable, __file__, "--cell", peer, path, str(k),
                         "1" if cosine else "0", str(r)], capture_output=True, text=True)
                    if proc.returncode:
                        sys.exit(f"{peer} failed:\n{proc.stderr}")
                    rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    print(f"  {peer} k={k} repeat {r}: {rows[-1]['s']:.2f} s", flush=True)
            print(report(rows, args.rows, args.dim, k, args.metric), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
