"""Fetch an official dataset release, verify its sha256, unpack it into the cache.

Only `load_dataset(..., download=True)` calls this; its tests fetch from a loopback server, never the internet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_cache_dir

from metarec.core.errors import ChecksumError, DatasetNotFoundError, DownloadError

log = logging.getLogger(__name__)

_GL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Release:
    url: str
    sha256: str
    size: int
    folder: str  # top-level folder inside the archive


# Published sizes and sha256 of the GroupLens archives (the same values TensorFlow Datasets pins).
RELEASES: dict[str, Release] = {
    "ml-100k": Release(_GL + "ml-100k.zip", "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029, "ml-100k"),
    "ml-1m": Release(_GL + "ml-1m.zip", "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549, "ml-1m"),
    "ml-20m": Release(_GL + "ml-20m.zip", "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198702078, "ml-20m"),
    "ml-25m": Release(_GL + "ml-25m.zip", "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa", 261978986, "ml-25m"),
    "ml-latest-small": Release(_GL + "ml-latest-small.zip", "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", 978202, "ml-latest-small"),
}


def default_data_root() -> Path:
    """$METAREC_DATA_DIR, else the user cache directory's `data/`."""
    env = os.environ.get("METAREC_DATA_DIR")
    return Path(env) if env else Path(user_cache_dir("metarec")) / "data"


def release_dir(name: str, root: Path | None = None) -> Path:
    """Where `download_release(name, root)` unpacks `name`: `root/name`, `root` defaulting to
    `default_data_root()`."""
    return (Path(root) if root else default_data_root()) / name


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_release(name: str, root: Path | None = None) -> Path:
    """Download `name`'s archive, check its size and sha256, extract to `root/name`; return that folder.

    The archive is written and unpacked in a hidden folder under `root` and moved into place only
    once verified, so an interrupted or corrupt download leaves nothing that looks like a dataset."""
    if name not in RELEASES:
        raise DatasetNotFoundError(
            f"no verified download is known for {name!r}; download it yourself and pass --data-dir"
        )
    import requests

    from metarec.core.progress import progress

    rel = RELEASES[name]
    target = release_dir(name, root)
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        log.info("downloading %s (%d bytes) from %s", name, rel.size, rel.url)
        try:
            with requests.get(rel.url, stream=True, timeout=60) as resp, open(archive, "wb") as fh, \
                    progress(total=rel.size, desc=f"download {name}", unit="B", unit_scale=True) as bar:
                resp.raise_for_status()
                for block in resp.iter_content(1 << 20):
                    fh.write(block)
                    bar.update(len(block))
        except requests.RequestException as e:
            raise DownloadError(f"{rel.url}: download failed ({e}); fetch it yourself and pass --data-dir") from e
        size = archive.stat().st_size
        if size != rel.size:
            raise ChecksumError(f"{rel.url}: got {size} bytes, the published archive has {rel.size} "
                                "(an interrupted or altered download); not using it")
        got = sha256_file(archive)
        if got != rel.sha256:
            raise ChecksumError(f"{rel.url}: sha256 {got} != published {rel.sha256}; not using it")
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        extracted = Path(tmp) / rel.folder
        if not extracted.is_dir():
            raise DatasetNotFoundError(f"{rel.url}: the archive has no {rel.folder}/ folder")
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)  # atomic within one filesystem: no half-unpacked dataset
    return target
