"""The module paths of dkmeans 0.1, kept importable for one release.

0.2 put the modules into folders that are the layers (see the package
docstring). Importing an old path, ``import dkmeans.estimator`` or
``from dkmeans.cluster import connect``, still works: a finder at the end of
:data:`sys.meta_path` answers for exactly the names in :data:`MOVED` with a
module that forwards every attribute to the new home, and warns once with a
:class:`DeprecationWarning` naming that home. Names imported from the top,
``from dkmeans import KMeans, metrics``, are not moved and do not warn.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

#: Old module path -> its home since 0.2. Removed in 0.3.
MOVED = {
    f"dkmeans.{old}": f"dkmeans.{new}"
    for old, new in {
        "validation": "data.validation", "sources": "data.sources",
        "storage": "data.storage", "preprocessing": "data.preprocessing",
        "batches": "data.batches", "datasets": "data.datasets",
        "workers": "data.workers", "outputs": "data.outputs", "leases": "data.leases",
        "labels_table": "data.labels_table",
        "lloyd": "algorithms.lloyd", "seeding": "algorithms.seeding",
        "minibatch": "algorithms.minibatch", "kmedians": "algorithms.kmedians",
        "mixture": "algorithms.mixture", "fit": "algorithms.fit",
        "fit_minibatch": "algorithms.fit_minibatch", "apply": "algorithms.apply",
        "estimator": "estimators.kmeans", "estimator_base": "estimators.base",
        "estimator_minibatch": "estimators.minibatch",
        "estimator_mixture": "estimators.mixture",
        "estimator_outputs": "estimators.outputs", "io": "estimators.io",
        "modelfile": "estimators.modelfile", "mixture_file": "estimators.mixture_file",
        "params": "estimators.params",
        "metrics": "evaluate.metrics", "scoring": "evaluate.scoring",
        "choosing": "evaluate.choosing", "gap": "evaluate.gap",
        "resampling": "evaluate.resampling", "plots": "evaluate.plots",
        "cli_options": "cli.options", "cli_jobs": "cli.jobs", "cli_mixture": "cli.mixture",
        "cli_evaluate": "cli.evaluate", "cli_signals": "cli.signals", "demo": "cli.demo",
        "cluster": "cli.cluster", "cluster_slurm": "cli.cluster_slurm",
        "cluster_kubernetes": "cli.cluster_kubernetes",
    }.items()
}


class MovedModule(types.ModuleType):
    """An old path: every attribute is read from (and written to) the new home."""

    def __init__(self, name: str, home: str) -> None:
        super().__init__(name, f"Moved to :mod:`{home}`.")
        self.__dict__["_home"] = importlib.import_module(home)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_home"], name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__"):  # the import system's own attributes
            super().__setattr__(name, value)
        else:
            setattr(self.__dict__["_home"], name, value)

    def __dir__(self) -> list[str]:
        return dir(self.__dict__["_home"])


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the paths in :data:`MOVED`, after every ordinary finder failed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return MovedModule(spec.name, MOVED[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(
            f"{module.__name__} moved to {MOVED[module.__name__]} in dkmeans 0.2; the old "
            "path stops working in 0.3 (names imported from dkmeans itself stay)",
            # warnings skips the import system's own frames: the warning names the
            # line that imported the old path.
            DeprecationWarning, stacklevel=2)


def install_moved_paths() -> None:
    """Put one :class:`MovedFinder` at the end of :data:`sys.meta_path`."""
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())


def submodules_on_demand(package: str) -> Callable[[str], types.ModuleType]:
    """A package's module ``__getattr__`` (PEP 562) importing its submodules
    when first read, as SciPy's are: ``dkmeans.evaluate.metrics`` works after
    ``import dkmeans`` alone, and nothing loads before it is used."""

    def __getattr__(name: str) -> types.ModuleType:
        if not name.startswith("_"):
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise  # the submodule exists and failed to import
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
