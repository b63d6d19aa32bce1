"""The verified download, end to end against a local HTTP server (loopback only; no internet): a
missing release is fetched, its size and sha256 checked, unpacked and loaded; a bad archive leaves
nothing behind."""

import functools
import hashlib
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from metarec.core.errors import ChecksumError, DatasetNotFoundError, DownloadError
from metarec.data import download, load_dataset
from metarec.data.download import Release, download_release
from tests.fixtures import write_ml100k


@pytest.fixture()
def server(tmp_path, monkeypatch):
    """(folder served at the URL, the URL, the list of paths requested so far)."""
    served = tmp_path / "served"
    served.mkdir()
    hits: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/", hits
    httpd.shutdown()
    httpd.server_close()


def _release(tmp_path: Path, served: Path, url: str, **override) -> Release:
    """The tiny ML-100K fixture zipped under `served` as ml-100k.zip, with its true size and sha256
    (or the `override`s)."""
    src = write_ml100k(tmp_path / "src" / "ml-100k")
    archive = served / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(src.iterdir()):
            zf.write(f, f"ml-100k/{f.name}")
    blob = archive.read_bytes()
    fields = {"url": url + "ml-100k.zip", "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob),
              "folder": "ml-100k", **override}
    return Release(**fields)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_missing_release_is_downloaded_verified_and_loaded_once(tmp_path, server, monkeypatch):
    served, url, hits = server
    monkeypatch.setitem(download.RELEASES, "ml-100k", _release(tmp_path, served, url))
    data_root = tmp_path / "data"
    monkeypatch.setenv("METAREC_DATA_DIR", str(data_root))
    d = load_dataset("ml-100k")
    assert (d.n_users, d.n_items, d.n_interactions) == (30, 40, 240)  # the fixture, as loaded from its folder
    assert hits == ["/ml-100k.zip"]
    assert _leftovers(data_root) == ["ml-100k"]  # no temporary folder or archive left beside it
    assert (data_root / "ml-100k" / "u.data").read_bytes() == (tmp_path / "src" / "ml-100k" / "u.data").read_bytes()
    load_dataset("ml-100k")  # found locally: no second download
    assert hits == ["/ml-100k.zip"]
    # fetching again replaces a folder that is there (a stale file in it does not survive)
    (data_root / "ml-100k" / "stale.txt").write_text("x")
    assert download_release("ml-100k") == data_root / "ml-100k"
    assert not (data_root / "ml-100k" / "stale.txt").exists() and len(hits) == 2


@pytest.mark.parametrize("override, message", [({"sha256": "0" * 64}, "sha256"), ({"size": 1}, "bytes")])
def test_an_archive_that_does_not_match_is_refused_and_leaves_nothing(tmp_path, server, monkeypatch,
                                                                      override, message):
    served, url, hits = server
    monkeypatch.setitem(download.RELEASES, "ml-100k", _release(tmp_path, served, url, **override))
    data_root = tmp_path / "data"
    monkeypatch.setenv("METAREC_DATA_DIR", str(data_root))
    with pytest.raises(ChecksumError, match=message):
        load_dataset("ml-100k")
    assert hits == ["/ml-100k.zip"] and _leftovers(data_root) == []


def test_unknown_release_and_missing_file(tmp_path, server, monkeypatch):
    served, url, _ = server
    with pytest.raises(DatasetNotFoundError, match="no verified download"):
        download_release("nope", tmp_path)
    rel = _release(tmp_path, served, url)
    monkeypatch.setitem(download.RELEASES, "ml-100k", Release(url + "gone.zip", rel.sha256, rel.size, rel.folder))
    with pytest.raises(DownloadError, match="download failed .*404"):
        download_release("ml-100k", tmp_path / "data")
    assert _leftovers(tmp_path / "data") == []


def test_data_download_command(tmp_path, server, monkeypatch):
    from typer.testing import CliRunner

    from metarec.cli.app import app

    served, url, hits = server
    monkeypatch.setitem(download.RELEASES, "ml-100k", _release(tmp_path, served, url))
    run = lambda *args: CliRunner().invoke(app, ["--no-progress", "data", "download", *args])  # noqa: E731
    to = tmp_path / "data"
    r = run("--dataset", "ml-100k", "--to", str(to))
    assert r.exit_code == 0 and "verified and unpacked at" in r.output and hits == ["/ml-100k.zip"]
    assert load_dataset("ml-100k", to).n_items == 40
    r = run("--dataset", "ml-100k", "--to", str(to))
    assert r.exit_code == 0 and "already at" in r.output and len(hits) == 1
    assert run("--dataset", "ml-100k", "--to", str(to), "--force").exit_code == 0 and len(hits) == 2
    r = run("--dataset", "nope", "--to", str(to))
    assert r.exit_code == 2 and "no verified download is known for 'nope'" in r.output
    monkeypatch.setitem(download.RELEASES, "ml-1m", Release(url + "gone.zip", "0" * 64, 1, "ml-1m"))
    r = run("--dataset", "ml-1m", "--to", str(to))
    assert r.exit_code == 2 and "download failed" in r.output and _leftovers(to) == ["ml-100k"]
