"""Fetch registry datasets: resumable, checksummed and atomic, reporting progress through a callback.

Uses only urllib (no extra dependency; it follows Dataverse's redirects to S3 and keeps the Range header).
Nothing appears under a final file name until it has been verified: bytes go to `<name>.part`, which a
rerun resumes with an HTTP Range request, and zips are unpacked into a temporary folder then renamed.
The library never prints; the CLI turns `progress(done, total)` into a bar.

A mirror (the `base_url` argument or `$SKINPAMPER_MIRROR`) replaces every URL by `<mirror>/<filename>`;
tests use it to point the registry at a local server.
"""

from __future__ import annotations

import hashlib
import http.client
import inspect
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from skinpamper import __version__, paths
from skinpamper.data import registry
from skinpamper.data.registry import DatasetSource, RemoteFile
from skinpamper.errors import DownloadError

Progress = Callable[[int, int | None], None]

MIRROR_ENV = "SKINPAMPER_MIRROR"
CHUNK = 1 << 20
TIMEOUT_S = 60
_USER_AGENT = f"skinpamper/{__version__} (+python urllib)"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(\d+|\*)")


class _TransferError(Exception):
    """A failure of one transfer; `_fetch_file` adds the URL and the manual instructions."""


def fetch_dataset(
    name: str,
    home: Path | None = None,
    progress: Progress | None = None,
    base_url: str | None = None,
) -> Path:
    """Make dataset `name` ready under `home/name` (default `paths.datasets_dir()/name`) and return it.

    `progress(done, total)` is called per file as bytes arrive (total None when unknown); it restarts
    for each file. Files already present and verified are not fetched again.
    """
    source = registry.get(name)
    folder = Path(home if home is not None else paths.datasets_dir()) / source.name
    if source.expected and all((folder / rel).exists() for rel in source.expected):
        return folder
    if source.kaggle_handle is not None:
        return _fetch_kaggle(source, source.kaggle_handle, folder)
    mirror = base_url or os.environ.get(MIRROR_ENV) or None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"{folder}: cannot create the dataset folder ({exc.strerror}); set SKINPAMPER_HOME"
        ) from exc
    for file in source.files:
        url = f"{mirror.rstrip('/')}/{file.filename}" if mirror else file.url
        _fetch_file(source, file, url, folder, progress)
    return folder


def _fetch_file(
    source: DatasetSource, file: RemoteFile, url: str, folder: Path, progress: Progress | None
) -> None:
    """Download, verify and (for zips) unpack one file, turning any fault into a DownloadError."""
    dest = folder / file.filename
    target = folder / file.extract_to if file.extract_to else None
    if target is not None and target.is_dir():
        return
    try:
        if dest.is_file():
            _check_present(dest, file)
        else:
            _download(url, dest, file, progress)
        if target is not None:
            _extract(dest, target)
            dest.unlink()
    except _TransferError as exc:
        raise DownloadError(
            f"{url}: {exc}. To fetch it by hand, download {file.url} and save it as {dest} ({source.manual})"
        ) from exc


def _check_present(dest: Path, file: RemoteFile) -> None:
    """A file already under its final name was verified when it got there, unless a person put it there."""
    if file.md5 is not None and (actual := md5sum(dest)) != file.md5:
        raise _TransferError(
            f"{dest} is present but its checksum is wrong (expected md5 {file.md5}, got {actual}); "
            "delete it and rerun"
        )
    if file.md5 is None and file.size is not None and dest.stat().st_size != file.size:
        raise _TransferError(
            f"{dest} is present but has {dest.stat().st_size} bytes, not {file.size}; delete it and rerun"
        )


def _download(url: str, dest: Path, file: RemoteFile, progress: Progress | None) -> None:
    """Fetch into `<dest>.part` (resuming what is there), verify it, then rename it to `dest`."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if file.size is not None and have > file.size:
        part.unlink()
        have = 0
    if file.size is None or have < file.size:
        _transfer(url, part, have, progress)
    _verify(part, file)
    part.replace(dest)


def _transfer(url: str, part: Path, have: int, progress: Progress | None) -> None:
    """Append the rest of `url` to `part`; a server that ignores Range (200) makes it start over."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing left to send: the .part is complete, and the checksum decides
        raise _TransferError(f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _TransferError(f"cannot connect ({_squash(getattr(exc, 'reason', exc))})") from exc
    with response:
        start, total = _offsets(response, have)
        if start is None:  # 206 for a range we did not ask for: drop the prefix and ask for everything
            part.unlink()
            _transfer(url, part, 0, progress)
            return
        length = response.headers.get("Content-Length")
        expected = start + int(length) if length is not None else None
        done = _copy(response, part, start, total if total is not None else expected, progress)
    if expected is not None and done < expected:
        raise _TransferError(f"connection dropped after {done} of {expected} bytes; rerun to resume")


def _offsets(response: http.client.HTTPResponse, have: int) -> tuple[int | None, int | None]:
    """Where the body starts in the file (None: unusable range) and the file's total size if known."""
    if response.status != 206:
        return 0, None
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None or int(match.group(1)) != have:
        return None, None
    return have, int(match.group(2)) if match.group(2) != "*" else None


def _copy(
    response: http.client.HTTPResponse, part: Path, start: int, total: int | None, progress: Progress | None
) -> int:
    """Stream the body onto `part` from byte `start`; return the bytes the file then holds."""
    done = start
    try:
        out = part.open("ab" if start else "wb")
    except OSError as exc:
        raise _TransferError(f"cannot write {part} ({exc.strerror})") from exc
    with out:
        while True:
            try:
                chunk = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _TransferError(
                    f"connection dropped after {done} bytes ({_squash(exc)}); rerun to resume"
                ) from exc
            if not chunk:
                return done
            try:
                out.write(chunk)
            except OSError as exc:
                raise _TransferError(f"cannot write {part} ({exc.strerror})") from exc
            done += len(chunk)
            if progress is not None:
                progress(done, total)


def _verify(part: Path, file: RemoteFile) -> None:
    """Check size and MD5; a wrong file is deleted so the next run starts clean."""
    size = part.stat().st_size
    if file.size is not None and size < file.size:
        raise _TransferError(f"transfer ended after {size} of {file.size} bytes; rerun to resume")
    if file.size is not None and size > file.size:
        part.unlink()
        raise _TransferError(
            f"size mismatch: expected {file.size} bytes, got {size}; the partial file was deleted"
        )
    if file.md5 is not None and (actual := md5sum(part)) != file.md5:
        part.unlink()
        raise _TransferError(
            f"checksum mismatch: expected md5 {file.md5}, got {actual}; the partial file was deleted"
        )


def md5sum(path: Path) -> str:
    """MD5 of a file, read in chunks so multi-GB archives need no memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _extract(archive: Path, target: Path) -> None:
    """Unpack into a temp folder beside `target`, then rename: `target` exists only when complete.

    A zip holding a single top folder is unwrapped, so both layouts end up as `target/<files>`.
    """
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        entries = [p for p in tmp.iterdir() if p.name != "__MACOSX"]
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        source.replace(target)
    except zipfile.BadZipFile as exc:
        raise _TransferError(f"{archive} is not a readable zip ({exc}); delete it and rerun") from exc
    except OSError as exc:
        raise _TransferError(f"cannot unpack {archive} into {target} ({exc})") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def kaggle_credentials_present() -> bool:
    """Whether kagglehub will find credentials: env vars, or kaggle.json / access_token in the config dir."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    return (config / "kaggle.json").is_file() or (config / "access_token").is_file()


def _fetch_kaggle(source: DatasetSource, handle: str, folder: Path) -> Path:
    """Fetch the Kaggle archive with the optional kagglehub package into a temp folder, then rename it."""
    by_hand = (
        f"To fetch it by hand, {source.manual} into {folder} (it must hold {', '.join(source.expected)})"
    )
    if not kaggle_credentials_present():
        raise DownloadError(
            f"kaggle dataset {handle}: no Kaggle credentials found. Create an API token at "
            "https://www.kaggle.com/settings and save it as ~/.kaggle/kaggle.json, or set KAGGLE_USERNAME "
            f"and KAGGLE_KEY. {by_hand}"
        )
    if folder.exists():
        raise DownloadError(f"{folder} exists but is incomplete; remove it and rerun. {by_hand}")
    try:
        import kagglehub  # optional dependency, imported only when used
    except ImportError as exc:
        raise DownloadError(
            f"kaggle dataset {handle}: the kagglehub package is not installed; "
            f"run `pip install 'skinpamper[kaggle]'`. {by_hand}"
        ) from exc
    if "output_dir" not in inspect.signature(kagglehub.dataset_download).parameters:
        # kagglehub before output_dir existed: the files stay in kagglehub's own cache.
        return Path(_call_kagglehub(kagglehub.dataset_download, handle, by_hand))
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        _call_kagglehub(kagglehub.dataset_download, handle, by_hand, output_dir=str(tmp))
        missing = [rel for rel in source.expected if not (tmp / rel).exists()]
        if missing:
            raise DownloadError(f"kaggle dataset {handle}: the archive lacks {', '.join(missing)}. {by_hand}")
        tmp.replace(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _call_kagglehub(download: Callable[..., str], handle: str, by_hand: str, **kwargs: str) -> str:
    """kagglehub raises many exception types (HTTP, auth, IO); each becomes one actionable DownloadError."""
    try:
        return download(handle, **kwargs)
    except Exception as exc:  # third-party code: any failure is reported, none is swallowed
        raise DownloadError(
            f"kaggle dataset {handle}: kagglehub failed ({type(exc).__name__}: {_squash(exc)}). {by_hand}"
        ) from exc


def _squash(text: object) -> str:
    """Third-party messages may span lines; errors here are one line."""
    return " ".join(str(text).split()) or type(text).__name__
