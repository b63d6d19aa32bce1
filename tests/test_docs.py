"""The documentation builds strictly (a broken link or reference fails), every public name and module
has a docstring, and the README stays a front page."""

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import metarec

REPO = Path(__file__).resolve().parent.parent


def test_the_docs_site_builds_strictly(tmp_path):
    exe = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    r = subprocess.run([exe, "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                       capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "meta_train" in api and "MetaRecommender" in api and "ServeLimits" in api


def test_every_public_name_and_module_has_a_docstring():
    missing = [n for n in metarec.__all__ if n != "__version__" and not inspect.getdoc(getattr(metarec, n))]
    assert not missing, f"front-door names without a docstring: {missing}"
    bare = []
    for info in pkgutil.walk_packages(metarec.__path__, "metarec."):
        if info.name.endswith("__main__"):  # running it is its whole point
            continue
        mod = importlib.import_module(info.name)
        if not (mod.__doc__ or "").strip():
            bare.append(info.name)
        for name, obj in vars(mod).items():
            if (not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
                    and obj.__module__ == info.name and not inspect.getdoc(obj)):
                bare.append(f"{info.name}.{name}")
    assert not bare, f"without a docstring: {bare}"


def test_the_front_door_imports_the_five_names():
    from metarec import MetaRecommender, load_dataset, meta_train, run_benchmark, split

    assert callable(load_dataset) and callable(split) and callable(meta_train) and callable(run_benchmark)
    assert hasattr(MetaRecommender, "load")
    assert set(metarec.__all__) == {"__version__", *metarec._EXPORTS}


def test_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text) <= 12_000, len(text)
    assert "make install" in text and "make test" in text
