"""Sparse text features: dkmeans against scikit-learn on the same CSR matrix.

The data: ``--rows`` documents (default 200,000) in ``--terms`` terms
(20,000), about 20 distinct terms each, drawn around 200 latent topics
(each topic's terms Zipf-distributed over its own shuffled vocabulary,
mixed with common terms), as TF-IDF with unit rows (scikit-learn's
``TfidfTransformer``): what a ``TfidfVectorizer`` makes of a corpus.

Each library fits in a fresh process that loads the matrix from an ``.npz``
file and fits 5,000 of its rows once (a warm-up: imports, compiled code
loaded), in turn, ``--repeat`` times alternating: the fit's time (not the
load), its inertia on the same rows, and the fit's peak memory (resident
memory sampled every 5 ms during the fit, over what the process held before
it: the matrix). Peers:
scikit-learn's ``KMeans`` (its defaults: greedy k-means++, one init) and
``MiniBatchKMeans``; dkmeans' ``KMeans`` (euclidean and ``metric="cosine"``,
spherical) and ``MiniBatchKMeans``, with their defaults, and
``dkmeans-streamed``: ``KMeans(persist=False)`` on the same matrix stored by
``save_sparse_zarr``, read from the Zarr group on every pass. Ratios are to
scikit-learn's ``KMeans`` of the same k.

    python benchmarks/bench_sparse.py --k 50 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

FIT = """
import json, os, sys, threading, time, warnings
import numpy as np, scipy.sparse as sp
warnings.simplefilter("ignore")

class PeakRSS(threading.Thread):  # resident memory, sampled every 5 ms: its highest
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.running = self.rss(), True
    @staticmethod
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    def run(self):
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.005)

lib, k, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
X = sp.load_npz(path).tocsr()
zarr_path = path.replace(".npz", ".zarr")
if lib.startswith("sklearn"):
    from sklearn.cluster import KMeans, MiniBatchKMeans
else:
    from dkmeans import KMeans, MiniBatchKMeans
model = {"sklearn": lambda: KMeans(k, random_state=0),
         "sklearn-minibatch": lambda: MiniBatchKMeans(k, random_state=0),
         "dkmeans": lambda: KMeans(k, random_state=0),
         "dkmeans-cosine": lambda: KMeans(k, random_state=0, metric="cosine"),
         "dkmeans-minibatch": lambda: MiniBatchKMeans(k, random_state=0),
         "dkmeans-streamed": lambda: KMeans(k, random_state=0, persist=False)}[lib]()
# a warm-up fit first, as a notebook's second fit: compiled code loaded
from sklearn.base import clone
clone(model).set_params(n_clusters=min(k, 20)).fit(X[:5_000])
# the fit's own memory: its peak over what the process held before it (the
# matrix loaded; loading it took more, and so does the inertia below)
sampler = PeakRSS()
before = sampler.peak
sampler.start()
t = time.perf_counter()
model.fit(zarr_path if lib == "dkmeans-streamed" else X)
seconds = time.perf_counter() - t
sampler.running = False
sampler.join()
peak_mb = (max(sampler.peak, sampler.rss()) - before) / 2**20
C = np.asarray(model.cluster_centers_, dtype=np.float64)
# one inertia code for every library: rows to their nearest center
sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
d2 = sq[:, None] - 2 * (X @ C.T) + (C ** 2).sum(1)[None, :]
inertia = float(np.maximum(d2.min(axis=1), 0).sum())
print(json.dumps({"seconds": seconds, "inertia": inertia,
                  "peak_mb": peak_mb,
                  "n_iter": int(getattr(model, "n_iter_", 0))}))
"""


def make_corpus(n: int, d: int, topics: int, per_row: int, seed: int = 0):
    """TF-IDF rows around latent topics (see the module's docstring)."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    vocab = np.array([rng.permutation(d) for _ in range(topics)])
    topic = rng.integers(0, topics, n)
    ranks = np.minimum(rng.zipf(1.5, size=(n, per_row)) - 1, d - 1)
    cols = vocab[topic[:, None], ranks]
    common = rng.random((n, per_row)) < 0.3  # a third of a document: any topic's terms
    cols[common] = np.minimum(rng.zipf(1.3, size=common.sum()) - 1, d - 1)
    rows = np.repeat(np.arange(n), per_row)
    counts = sp.csr_matrix((np.ones(n * per_row), (rows, cols.ravel())), shape=(n, d))
    counts.sum_duplicates()
    return TfidfTransformer().fit_transform(counts).astype(np.float64).tocsr()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--terms", type=int, default=20_000)
    parser.add_argument("--k", type=int, nargs="+", default=[50])
    parser.add_argument("--peers", nargs="+", default=["sklearn", "dkmeans", "dkmeans-cosine",
                                                        "sklearn-minibatch",
                                                        "dkmeans-minibatch"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import scipy.sparse as sp

    with tempfile.TemporaryDirectory(prefix="dkmeans-bench-sparse-") as folder:
        X = make_corpus(args.rows, args.terms, topics=200, per_row=25)
        path = os.path.join(folder, "X.npz")
        sp.save_npz(path, X)
        if "dkmeans-streamed" in args.peers:
            from dkmeans import save_sparse_zarr

            save_sparse_zarr(X, path.replace(".npz", ".zarr"))
        dense_gb = X.shape[0] * X.shape[1] * 8 / 1e9
        print(f"# {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz / X.shape[0]:.1f} non-zeros a row, "
              f"{X.data.nbytes / 1e6:.0f} MB of values ({dense_gb:.0f} GB dense); "
              f"{os.cpu_count()} cores")
        for k in args.k:
            runs: dict[str, list[dict]] = {p: [] for p in args.peers}
            for _ in range(args.repeat):
                for peer in args.peers:
                    out = subprocess.run([sys.executable, "-c", FIT, peer, str(k), path],
                                         capture_output=True, text=True, check=True).stdout
                    runs[peer].append({**json.loads(out), "load": os.getloadavg()[0]})
            base = runs.get("sklearn")
            t0 = statistics.median(r["seconds"] for r in base) if base else None
            i0 = statistics.median(r["inertia"] for r in base) if base else None
            print(f"\n| k = {k:,} | fit s (median) | / scikit-learn | inertia / "
                  "scikit-learn's | iterations | fit's peak MB | load |")
            print("|---|---|---|---|---|---|---|")
            for peer, rs in runs.items():
                t = statistics.median(r["seconds"] for r in rs)
                inertia = statistics.median(r["inertia"] for r in rs)
                ratio = f"{t / t0:.2f}" if t0 else "-"
                iratio = f"{inertia / i0:.4f}" if i0 else "-"
                print(f"| {peer} | {t:.2f} | {ratio} | {iratio} | "
                      f"{statistics.median(r['n_iter'] for r in rs):.0f} | "
                      f"{max(r['peak_mb'] for r in rs):,.0f} | "
                      f"{min(r['load'] for r in rs):.1f}-{max(r['load'] for r in rs):.1f} |",
                      flush=True)


if __name__ == "__main__":
    main()
