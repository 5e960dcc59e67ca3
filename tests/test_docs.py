"""The documentation site: built with warnings as errors, its examples run as
doctests, and the built pages opened in a real browser (headless Chromium)."""

import doctest
import http.server
import inspect
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import dkmeans

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built by the command the README gives (``-W``: a warning,
    such as an undocumented parameter or a broken link, fails it)."""
    out = tmp_path_factory.mktemp("site") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(DOCS), str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_the_site_builds_with_every_page(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    expected = {"index.html", "getting-started.html", "benchmarks.html", "architecture.html",
                "where-things-live.html", "changelog.html", "api/index.html",
                "api/estimators.html", "api/evaluate.html", "api/errors.html",
                "user-guide/scheduled-jobs.html", "user-guide/cluster-files.html",
                "user-guide/k-medians.html", "user-guide/choosing-k.html",
                "user-guide/sparse-and-text.html",
                "examples/index.html"}
    assert expected <= pages, expected - pages
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("0*.ipynb"))
    assert len(notebooks) == 7
    for name in notebooks:  # rendered as stored: with their figures
        html = (site / "examples" / f"{name}.html").read_text()
        assert html.count("<img") >= 1 or name == "02_larger_than_memory", name
    estimators = (site / "api" / "estimators.html").read_text()
    for name in ("dkmeans.KMeans.fit", "dkmeans.KMeans.predict_to_zarr",
                 "dkmeans.MiniBatchKMeans.partial_fit", "dkmeans.GaussianMixture.bic",
                 "dkmeans.load"):
        assert f'id="{name}"' in estimators, name
    assert dkmeans.__version__ in (site / "index.html").read_text()


# ------------------------------------------------------------------ doctests

def _public_objects() -> dict[str, object]:
    """Every public class and function of the API reference."""
    from dkmeans.cli import cluster

    names = {n: getattr(dkmeans, n) for n in dkmeans.__all__}
    names.update({f"metrics.{n}": getattr(dkmeans.metrics, n) for n in (
        "inertia", "calinski_harabasz_score", "davies_bouldin_score", "silhouette_score",
        "silhouette_estimate", "adjusted_rand_score", "normalized_mutual_info_score",
        "v_measure_score", "contingency_matrix")})
    names["cli.cluster.connect"] = cluster.connect
    return {n: o for n, o in names.items()
            if inspect.isclass(o) or inspect.isfunction(o)}


def _run(tests: list[doctest.DocTest]) -> tuple[int, str]:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    return runner.failures, "".join(report)


def test_every_docstring_example_runs():
    finder = doctest.DocTestFinder(recurse=True)
    tests = [t for obj in _public_objects().values() for t in finder.find(obj)
             if t.examples]
    failures, report = _run(tests)
    assert failures == 0, report[-4000:]
    # the estimators, sweep, the metrics... each shows a call
    documented = {t.name.split(".")[-1] for t in tests}
    for name in ("KMeans", "MiniBatchKMeans", "GaussianMixture", "sweep", "stability",
                 "load", "open_array", "adjusted_rand_score", "inertia"):
        assert name in documented or any(n.endswith(f".{name}") for n in documented), name


@pytest.mark.parametrize("page", sorted(
    str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
    if "_build" not in p.parts and ">>> " in p.read_text()))
def test_the_guide_examples_run(page):
    text = (DOCS / page).read_text()
    test = doctest.DocTestParser().get_doctest(text, {}, page, str(DOCS / page), 0)
    failures, report = _run([test])
    assert failures == 0, report[-4000:]


def test_the_guide_has_examples_to_run():
    pages = [p for p in DOCS.rglob("*.md") if ">>> " in p.read_text()]
    assert {p.stem for p in pages} >= {"getting-started", "kmeans", "choosing-k",
                                       "soft-assignments"}


# ------------------------------------------------------------------ browser

class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves the site on loopback and notes every request and its status."""

    log: list[tuple[str, int]]

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code)))

    def log_message(self, *args):
        pass


@pytest.fixture
def served(site):
    handler = type("Handler", (_Recorder,), {"log": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: handler(*a, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.log
    server.shutdown()
    server.server_close()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("CI"):
        pytest.fail("CI must run the browser test: Chromium is missing (.ci/run installs it)")
    pytest.skip("Chromium is not installed")


def _browse(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium on ``url``; every name but loopback fails to resolve,
    so the browser's own background requests never leave the machine."""
    profile = tmp_path / "profile"
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--no-first-run",
         "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--user-data-dir={profile}", "--window-size=1280,900",
         "--virtual-time-budget=10000", *args, url],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("page", ["index.html", "api/estimators.html", "examples/index.html"])
def test_pages_render_in_chromium(served, tmp_path, page):
    from matplotlib.image import imread

    base, log = served
    shot = tmp_path / "shot.png"
    proc = _browse(tmp_path, f"{base}/{page}", f"--screenshot={shot}")
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.stat().st_size > 40_000  # a page of text and styles, not a blank
    pixels = imread(shot)[..., :3]
    assert pixels.std() > 0.1  # not one colour
    missing = [(path, code) for path, code in log if code >= 400]
    assert not missing
    requested = {path.split("?")[0] for path, _ in log}
    assert any(p.endswith(".css") for p in requested)
    assert any(p.endswith(".js") for p in requested)
    assert any("pydata-sphinx-theme" in p for p in requested), requested
    if page == "examples/index.html":  # the gallery's pictures, from the notebooks
        assert len([p for p in requested if p.startswith("/_static/gallery/")]) == 6


def test_the_search_finds_kmeans_methods(served, tmp_path):
    base, log = served
    proc = _browse(tmp_path, f"{base}/search.html?q=predict_to_zarr", "--dump-dom")
    assert "searchindex.js" in {p.split("?")[0].rsplit("/", 1)[-1] for p, _ in log}
    assert 'href="api/estimators.html#dkmeans.KMeans.predict_to_zarr"' in proc.stdout, \
        proc.stdout[-2000:]
    assert not [(p, c) for p, c in log if c >= 400]



def test_the_readme_gives_the_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first_block[0] == "python3 -m pip install -e '.[plot]' && dkmeans demo"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert first_block[1] == ci
    build = "python3 -m sphinx -W --keep-going -b html docs docs/_build/html"
    assert build in " ".join(readme.split())
    assert build in (DOCS / "conf.py").read_text()
