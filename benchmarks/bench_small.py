"""Fits of small numpy arrays, dkmeans against scikit-learn, import times,
and a small table fitted from the command line against the same fit in Python.

Small in-memory data takes dkmeans' shortest path (no task graph: the
kernels, then the compiled Lloyd loop, called directly). Each shape is fitted
with default settings by both libraries in turn, ``--repeats`` times
alternating, on the same data; medians and their ratio are printed with the
machine's load. Import times are of a fresh interpreter each. The command
line: ``dkmeans fit customers.csv`` (1,000 and 100,000 rows) against a
Python script reading the same table with pandas and fitting ``KMeans``,
each a fresh process, wall time, alternating.

    python benchmarks/bench_small.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

#: (rows, features, k): a 200-row table (the Mall customers' size), small
#: blobs, and a 245,057 x 3 table with k=2 (the skin-segmentation shape)
SHAPES = [(200, 4, 5), (500, 4, 8), (5_000, 8, 8), (50_000, 8, 8), (245_057, 3, 2)]


def import_seconds(statement: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    return float(np.median([float(subprocess.run([sys.executable, "-c", code],
                                                 capture_output=True, text=True,
                                                 check=True).stdout)
                            for _ in range(repeats)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--cli-repeats", type=int, default=5)
    parser.add_argument("--only-cli", action="store_true")
    args = parser.parse_args()
    if args.only_cli:
        command_line(args.cli_repeats)
        return
    from sklearn.cluster import KMeans as SKKMeans

    from dkmeans import KMeans

    print(f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| rows x features, k | dkmeans ms | scikit-learn ms | ratio |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n, d, k in SHAPES:
        X = (rng.normal(size=(n, d)) + 6 * rng.integers(0, k, size=(n, 1))).astype(np.float64)
        times: dict[str, list[float]] = {"dkmeans": [], "sklearn": []}
        for lib in (KMeans, SKKMeans):  # warm-up: compilation, caches
            lib(k, random_state=0).fit(X)
        for r in range(args.repeats):
            for name, lib in (("dkmeans", KMeans), ("sklearn", SKKMeans)):
                t = time.perf_counter()
                lib(k, random_state=r).fit(X)
                times[name].append(time.perf_counter() - t)
        ours, theirs = (1e3 * np.median(times[m]) for m in ("dkmeans", "sklearn"))
        print(f"| {n:,} x {d}, k={k} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |",
              flush=True)
    print(f"\nimport dkmeans: {import_seconds('import dkmeans'):.3f} s; "
          f"from dkmeans import KMeans: {import_seconds('from dkmeans import KMeans'):.2f} s; "
          f"from sklearn.cluster import KMeans: "
          f"{import_seconds('from sklearn.cluster import KMeans'):.2f} s "
          f"(load {os.getloadavg()[0]:.2f})")
    command_line(args.cli_repeats)


CLI_ROWS = (1_000, 100_000)

PYTHON_FIT = ("import sys, pandas, dkmeans; X = pandas.read_csv(sys.argv[1])"
              "[['age', 'income', 'spend']].to_numpy(); "
              "dkmeans.KMeans(5, random_state=0).fit(X)")


def command_line(repeats: int) -> None:
    """``dkmeans fit`` on a small table against the same fit as a Python script."""
    import tempfile

    import pandas as pd

    print("\n| table rows | dkmeans fit s | Python script s | ratio | with --workers 2 s |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="dkmeans-bench-") as tmp:
        for n in CLI_ROWS:
            path = os.path.join(tmp, f"customers{n}.csv")
            pd.DataFrame({"age": rng.integers(18, 80, n), "income": rng.normal(5e4, 2e4, n),
                          "spend": rng.normal(50, 20, n),
                          "name": [f"c{i}" for i in range(n)]}).to_csv(path, index=False)
            commands = {
                "cli": [sys.executable, "-m", "dkmeans", "fit", path, "-k", "5", "--columns",
                        "age,income,spend", "-o", os.path.join(tmp, "m"), "--force", "-q"],
                "python": [sys.executable, "-c", PYTHON_FIT, path]}
            # the same job on a process cluster (what every job started before)
            commands["cluster"] = [*commands["cli"], "--workers", "2"]
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(repeats):
                for name, cmd in commands.items():
                    t = time.perf_counter()
                    subprocess.run(cmd, check=True, capture_output=True)
                    times[name].append(time.perf_counter() - t)
            cli, py, cl = (float(np.median(times[m])) for m in ("cli", "python", "cluster"))
            print(f"| {n:,} | {cli:.2f} | {py:.2f} | {cli / py:.2f} | {cl:.2f} |", flush=True)
    print(f"(load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
