"""The package's shape: a cheap ``import dkmeans``, every public name
reachable, and modules that import each other without cycles."""

import ast
import pathlib
import subprocess
import sys

import dkmeans

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
    code = ("import dkmeans.choosing, dkmeans.resampling, dkmeans.lloyd, dkmeans.minibatch\n"
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
    assert dkmeans.KMeans.__module__ == "dkmeans.estimator"


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
