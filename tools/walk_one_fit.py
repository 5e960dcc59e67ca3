"""Walk one ``KMeans.fit(X)`` through the code: the files it enters and its climbs.

A *climb* is a call from module A into module B where B imports A, directly or
through other modules: the lower layer running code of a higher one (a
callback, or a method of an object the higher layer made). Calls are traced
with :func:`sys.setprofile` in every thread during a second fit (the first one
imports and compiles), so import-time code is not counted.

Usage: ``python tools/walk_one_fit.py [--rows N] [--list]``.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import sys
import threading

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1] / "dkmeans"


def module_of(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def static_imports() -> dict[str, set[str]]:
    """Each module's dkmeans imports, outside ``if TYPE_CHECKING:`` blocks."""
    modules = {module_of(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    found.add(full if full in modules else base)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def above(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """For each module, the modules that import it, directly or not."""
    reach: dict[str, set[str]] = {}

    def down(m: str, seen: set[str]) -> set[str]:
        for d in graph.get(m, ()):
            if d not in seen:
                seen.add(d)
                down(d, seen)
        return seen

    for m in graph:
        for d in down(m, set()):
            reach.setdefault(d, set()).add(m)
    return reach


def trace_fit(rows: int) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    from dkmeans import KMeans

    X = np.random.default_rng(0).normal(size=(rows, 8))
    KMeans(n_clusters=4, random_state=0, n_init=1).fit(X)
    edges: set[tuple[str, str]] = set()
    files: set[str] = set()
    calls: dict[tuple[str, str], str] = {}
    root = str(ROOT)

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = frame.f_code.co_filename
        if not callee.startswith(root):
            return
        files.add(callee)
        back = frame.f_back
        if back is not None and back.f_code.co_filename.startswith(root):
            edges.add((back.f_code.co_filename, callee))
            calls.setdefault((back.f_code.co_filename, callee),
                             f"{back.f_code.co_name} -> {frame.f_code.co_name}")

    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        KMeans(n_clusters=4, random_state=0, n_init=1).fit(X)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    edges.update((f, f) for f in files)
    return edges, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--list", action="store_true", help="print each file and climb")
    args = parser.parse_args()
    edges, calls = trace_fit(args.rows)
    name = {str(p): module_of(p) for p in ROOT.rglob("*.py")}
    importers = above(static_imports())
    files = sorted({name[a] for a, _ in edges} | {name[b] for _, b in edges})
    climbs = sorted((name[a], name[b], calls[a, b]) for a, b in edges
                    if a != b and name[b] in importers.get(name[a], ()))
    if args.list:
        print("files entered:", *files, sep="\n  ")
        print("climbs (caller -> callee that imports it):",
              *(f"{a} -> {b} ({how})" for a, b, how in climbs), sep="\n  ")
    print(f"files entered: {len(files)}, climbs back up: {len(climbs)}")


if __name__ == "__main__":
    main()
