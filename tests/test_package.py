"""The package's shape: a cheap ``import dkmeans``, every public name
reachable, the 0.1 module paths kept (with a warning), layers that import only
downward, no private name crossing a module, no cycles."""

import ast
import importlib
import json
import pathlib
import shutil
import subprocess
import sys
import warnings

import dkmeans
from dkmeans.compat import MOVED

PACKAGE = pathlib.Path(dkmeans.__file__).parent


def test_import_dkmeans_loads_neither_dask_array_nor_sklearn():
    code = ("import sys, dkmeans; "
            "print(sorted(m for m in ('dask.array', 'sklearn', 'numba', 'distributed') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_functions_are_functions_even_after_their_modules_load():
    """A submodule named like a function would shadow it once imported (the
    import system binds the module on the package): ``sweep`` and
    ``stability`` live in modules of other names; ``metrics``, ``lloyd`` and
    ``minibatch`` are the modules themselves."""
    code = ("import dkmeans.evaluate.choosing, dkmeans.evaluate.resampling\n"
            "import dkmeans.algorithms.lloyd, dkmeans.algorithms.minibatch\n"
            "import dkmeans, types\n"
            "assert callable(dkmeans.sweep) and callable(dkmeans.stability)\n"
            "for m in ('metrics', 'lloyd', 'minibatch'):\n"
            "    assert isinstance(getattr(dkmeans, m), types.ModuleType), m\n"
            "from dkmeans import sweep, stability\n"
            "assert callable(sweep) and callable(stability)\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_resolves():
    for name in dkmeans.__all__:
        assert getattr(dkmeans, name) is not None, name
    assert set(dkmeans.__all__) <= set(dir(dkmeans))
    assert dkmeans.KMeans.__module__ == "dkmeans.estimators.kmeans"


def _imports(path: pathlib.Path) -> set[str]:
    """dkmeans modules a file imports, at module level or inside functions
    (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    found = set()
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dkmeans"):
            base = node.module
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if _module_file(full) else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dkmeans")}
    return {m for m in found if _module_file(m)}


def _module_file(name: str) -> pathlib.Path | None:
    rel = pathlib.Path(*name.split(".")[1:])
    if not rel.parts:
        return PACKAGE / "__init__.py"
    for candidate in (PACKAGE / rel.with_suffix(".py"), PACKAGE / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles():
    graph = {_name(p): _imports(p) - {_name(p)} for p in PACKAGE.rglob("*.py")}
    # a package imports its own submodules to re-export them: not a cycle
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    done, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            cycle = [*path[path.index(module):], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        path.append(module)
        for dep in sorted(graph.get(module, ())):
            visit(dep)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_no_module_over_400_lines():
    long = {_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_the_layers_hold():
    """import-linter's contracts in pyproject.toml: each layer imports only
    those below it, estimators and evaluate never each other."""
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is in the test extra"
    run = subprocess.run([lint, "--no-cache"], cwd=PACKAGE.parent, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_at_the_top_only_the_entry_points_and_three_helpers():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "compat.py", "errors.py", "progress.py"]
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert folders == ["algorithms", "cli", "data", "estimators", "evaluate", "kernels",
                       "passes", "runner"]
    for folder in folders:  # each says what it holds
        assert len(importlib.import_module(f"dkmeans.{folder}").__doc__) > 200, folder


def test_every_old_module_path_still_imports_and_names_its_new_home():
    # a fresh interpreter: a module's warning comes with its first import only
    code = ("import importlib, json, sys, warnings\n"
            "from dkmeans.compat import MOVED\n"
            "seen = {}\n"
            "for old, home in MOVED.items():\n"
            "    with warnings.catch_warnings(record=True) as w:\n"
            "        warnings.simplefilter('always')\n"
            "        exec(f'import {old}')  # an import statement, as users write\n"
            "    module = sys.modules[old]\n"
            "    new = importlib.import_module(home)\n"
            "    names = [n for n in vars(new) if not n.startswith('_')]\n"
            "    same = bool(names) and all(getattr(module, n) is getattr(new, n)\n"
            "                               for n in names)\n"
            "    seen[old] = [same, [(str(x.message), x.filename) for x in w\n"
            "                        if x.category is DeprecationWarning]]\n"
            "print(json.dumps(seen))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    seen = json.loads(out)
    assert sorted(seen) == sorted(MOVED)
    for old, (same, warned) in seen.items():
        assert same, f"{old} does not forward to {MOVED[old]}"
        assert len(warned) == 1 and f"{old} moved to {MOVED[old]}" in warned[0][0], warned
        assert warned[0][1] == "<string>", "the warning names the importing line"


def test_the_old_paths_users_wrote_keep_their_objects():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from dkmeans.cluster import connect, watch_worker_memory
        from dkmeans.estimator import KMeans
        from dkmeans.io import load
        from dkmeans.metrics import silhouette_score
    from dkmeans.cli.cluster import connect as new_connect
    from dkmeans.data.workers import watch_worker_memory as new_watch
    assert KMeans is dkmeans.KMeans and load is dkmeans.load
    assert silhouette_score is dkmeans.metrics.silhouette_score
    assert connect is new_connect and watch_worker_memory is new_watch
    from dkmeans.cli import main  # 0.1's entry point: the function, as then
    assert callable(main) and main.__module__ == "dkmeans.cli.command"


def _private_imports(path: pathlib.Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            found += [f"{path.name}:{node.lineno} {node.module}.{a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_private_name_is_imported_from_another_module():
    files = [*PACKAGE.rglob("*.py"), *(PACKAGE.parent / "tests").glob("*.py")]
    crossing = [x for p in files for x in _private_imports(p)]
    assert not crossing, crossing


def test_folders_and_their_modules_are_attributes_after_import_dkmeans():
    code = ("import dkmeans\n"
            "assert dkmeans.evaluate.metrics.inertia is dkmeans.metrics.inertia\n"
            "assert dkmeans.data.storage.locate and dkmeans.data.as_dataset\n"
            "assert dkmeans.cli.cluster.connect and dkmeans.estimators.io.load is dkmeans.load\n"
            "try:\n"
            "    dkmeans.evaluate.no_such_module\n"
            "except AttributeError as err:\n"
            "    assert 'no_such_module' in str(err)\n"
            "else:\n"
            "    raise AssertionError('an unknown name must raise AttributeError')\n")
    subprocess.run([sys.executable, "-c", code], check=True)
