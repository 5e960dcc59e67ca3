"""Sphinx configuration of dkmeans' documentation site.

Build it as CI does (warnings are errors)::

    python3 -m pip install -e '.[docs]'
    python3 -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import base64
import json
from importlib.metadata import version as _version
from pathlib import Path

project = "dkmeans"
author = "the dkmeans developers"
copyright = "2026, the dkmeans developers"
release = _version("dkmeans")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_nb",  # Markdown pages (MyST) and the notebooks, as stored with their outputs
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}

# The notebooks are stored run, with their figures (notebooks/execute.py);
# tests/test_notebooks.py runs them again, so the site shows them as stored.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "deflist", "substitution"]
myst_substitutions = {"release": release}
myst_heading_anchors = 3

autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
autodoc_member_order = "groupwise"
autosummary_generate = False  # the API pages are written, not generated
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
# Every public name's docstring must document its parameters and returns:
# these checks fail the -W build where one is missing or misnamed.
numpydoc_validation_checks = {"PR01", "PR02", "PR10", "RT02"}
# Results that dkmeans builds and returns (never constructed by users)
# document their fields as Attributes, not as constructor parameters; the
# methods the estimators inherit from scikit-learn keep its docstrings.
numpydoc_validation_exclude = {r"(Result|Estimate)$",
                               r"\.(fit_predict|fit_transform|get_params|set_params)$"}

html_theme = "pydata_sphinx_theme"
html_title = "dkmeans"
html_favicon = "_static/dkmeans-icon.png"
html_logo = "_static/dkmeans-icon.png"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = ["_static"]
html_css_files = ["gallery.css"]

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _write_thumbnails(app, exception) -> None:
    """The gallery's pictures: each notebook's last figure, as stored, written
    into the built site (never into the source tree)."""
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir) / "_static" / "gallery"
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(NOTEBOOKS.glob("0*.ipynb")):
        images = [o["data"]["image/png"] for c in json.loads(path.read_text())["cells"]
                  for o in c.get("outputs", ()) if "image/png" in o.get("data", {})]
        if images:
            (out / f"{path.stem}.png").write_bytes(base64.b64decode(images[-1]))


def setup(app) -> None:
    app.connect("build-finished", _write_thumbnails)
