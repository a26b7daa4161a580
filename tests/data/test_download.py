"""The download layer against a local HTTP server: success, resume, checksum, 404, zips, Kaggle, registry."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import io
import sys
import threading
import types
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from skinpamper import classes
from skinpamper.data import download, registry
from skinpamper.data.download import fetch_dataset
from skinpamper.data.registry import DatasetSource, RemoteFile
from skinpamper.errors import DownloadError

# --------------------------------------------------------------------------- local server


@dataclass
class Served:
    """One request the server answered."""

    name: str
    range: str | None
    status: int
    sent: int


@dataclass
class Server:
    """What the test server holds and how it misbehaves; `log` records every request."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)  # one-shot: cut the body after N bytes
    honour_range: bool = True
    log: list[Served] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        name = self.path.lstrip("/").split("?", 1)[0]
        asked = self.headers.get("Range")
        data = state.files.get(name)
        if data is None:
            state.log.append(Served(name, asked, 404, 0))  # logged first: the client may finish before us
            self.send_error(404, "Not Found")
            return
        start = int(asked.removeprefix("bytes=").rstrip("-")) if asked and state.honour_range else 0
        status = 206 if asked and state.honour_range else 200
        self.send_response(status)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = state.drop_after.pop(name, None)
        if limit is not None:
            body = body[:limit]
            self.close_connection = True
        state.log.append(Served(name, asked, status, len(body)))
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_proxy_no_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def register(
    monkeypatch: pytest.MonkeyPatch, name: str, *files: RemoteFile, **extra: object
) -> DatasetSource:
    """Add a throw-away registry entry (its real URLs are never used: tests pass a mirror)."""
    source = DatasetSource(
        name=name,
        description="test entry",
        files=files,
        licence="CC0",
        citation="none",
        manual="ask the test author for a copy",
        homepage="https://example.invalid/",
        **extra,  # type: ignore[arg-type]
    )
    monkeypatch.setitem(registry.DATASETS, name, source)
    return source


def remote(filename: str, data: bytes | None, *, md5sum: str | None = None) -> RemoteFile:
    digest = md5sum if md5sum is not None else (md5(data) if data is not None else None)
    return RemoteFile(f"https://example.invalid/files/{filename}", filename, digest)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".part", ".tmp")))


# --------------------------------------------------------------------------- HTTP entries

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes


def test_success_lands_file_and_reports_progress(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "CHUNK", 16_384)
    server.files["tiny.npz"] = PAYLOAD
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    calls: list[tuple[int, int | None]] = []

    folder = fetch_dataset(
        "tiny", home=tmp_path, progress=lambda d, t: calls.append((d, t)), base_url=server.url
    )

    assert folder == tmp_path / "tiny"
    assert (folder / "tiny.npz").read_bytes() == PAYLOAD
    assert leftovers(folder) == []
    done = [d for d, _ in calls]
    assert len(calls) > 1
    assert done == sorted(done)
    assert done[-1] == len(PAYLOAD)
    assert {t for _, t in calls} == {len(PAYLOAD)}


def test_present_verified_file_is_not_fetched_again(server, tmp_path, monkeypatch):
    server.files["tiny.npz"] = PAYLOAD
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    fetch_dataset("tiny", home=tmp_path, base_url=server.url)
    fetch_dataset("tiny", home=tmp_path, base_url=server.url)
    assert len(server.log) == 1


def test_mirror_env_and_default_home(server, tmp_path, monkeypatch):
    server.files["tiny.npz"] = PAYLOAD
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    monkeypatch.setenv(download.MIRROR_ENV, server.url + "/")
    monkeypatch.setenv("SKINPAMPER_HOME", str(tmp_path / "home"))
    folder = fetch_dataset("tiny")
    assert folder == tmp_path / "home" / "datasets" / "tiny"
    assert (folder / "tiny.npz").read_bytes() == PAYLOAD


def test_wrong_checksum_leaves_nothing(server, tmp_path, monkeypatch):
    server.files["tiny.npz"] = PAYLOAD
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD, md5sum="0" * 32))

    with pytest.raises(DownloadError) as info:
        fetch_dataset("tiny", home=tmp_path, base_url=server.url)

    message = str(info.value)
    assert f"{server.url}/tiny.npz" in message
    assert "checksum mismatch" in message
    assert "0" * 32 in message and md5(PAYLOAD) in message
    assert "\n" not in message
    folder = tmp_path / "tiny"
    assert not (folder / "tiny.npz").exists()
    assert leftovers(folder) == []


def test_interrupted_transfer_resumes_with_range(server, tmp_path, monkeypatch):
    cut = 100_000
    server.files["tiny.npz"] = PAYLOAD
    server.drop_after["tiny.npz"] = cut
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    folder = tmp_path / "tiny"

    with pytest.raises(DownloadError, match="connection dropped"):
        fetch_dataset("tiny", home=tmp_path, base_url=server.url)
    assert not (folder / "tiny.npz").exists()
    assert (folder / "tiny.npz.part").read_bytes() == PAYLOAD[:cut]

    fetch_dataset("tiny", home=tmp_path, base_url=server.url)

    assert (folder / "tiny.npz").read_bytes() == PAYLOAD
    assert leftovers(folder) == []
    first, second = server.log
    assert first.range is None and first.sent == cut
    assert second.range == f"bytes={cut}-"
    assert second.status == 206
    assert second.sent == len(PAYLOAD) - cut
    assert second.sent < len(PAYLOAD)


def test_server_ignoring_range_restarts_cleanly(server, tmp_path, monkeypatch):
    server.files["tiny.npz"] = PAYLOAD
    server.honour_range = False
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "tiny.npz.part").write_bytes(b"stale bytes from another file")

    fetch_dataset("tiny", home=tmp_path, base_url=server.url)

    assert (folder / "tiny.npz").read_bytes() == PAYLOAD
    assert server.log[0].range is not None and server.log[0].status == 200
    assert leftovers(folder) == []


def test_404_names_url_and_manual_route(server, tmp_path, monkeypatch):
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))

    with pytest.raises(DownloadError) as info:
        fetch_dataset("tiny", home=tmp_path, base_url=server.url)

    message = str(info.value)
    assert f"{server.url}/tiny.npz" in message
    assert "HTTP 404" in message
    assert "https://example.invalid/files/tiny.npz" in message  # the real URL to fetch by hand
    assert str(tmp_path / "tiny" / "tiny.npz") in message  # where to put it
    assert "ask the test author for a copy" in message
    assert "\n" not in message


def test_unreachable_server_is_a_download_error(tmp_path, monkeypatch):
    register(monkeypatch, "tiny", remote("tiny.npz", PAYLOAD))
    with pytest.raises(DownloadError, match="cannot connect"):
        fetch_dataset("tiny", home=tmp_path, base_url="http://127.0.0.1:9")


def test_unknown_name_lists_known_ones():
    with pytest.raises(DownloadError, match="ham10000"):
        fetch_dataset("nope")


# --------------------------------------------------------------------------- zips (HAM10000-like)


def make_zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_ham10000_like_zips_are_extracted_into_kaggle_layout(server, tmp_path, monkeypatch):
    fixtures = {
        # part 1 flat (as on Dataverse), part 2 wrapped in a folder: both end up the same way
        "HAM10000_images_part_1.zip": make_zip({"ISIC_0000001.jpg": b"jpg1", "ISIC_0000002.jpg": b"jpg2"}),
        "HAM10000_images_part_2.zip": make_zip({"HAM10000_images_part_2/ISIC_0000003.jpg": b"jpg3"}),
        "HAM10000_metadata.csv": b"lesion_id,image_id,dx\nHAM_1,ISIC_0000001,nv\n",
    }
    server.files.update(fixtures)
    real = registry.get("ham10000")
    files = tuple(
        dataclasses.replace(f, md5=md5(fixtures[f.filename]), size=len(fixtures[f.filename]))
        for f in real.files
    )
    monkeypatch.setitem(registry.DATASETS, "hamlike", dataclasses.replace(real, name="hamlike", files=files))

    folder = fetch_dataset("hamlike", home=tmp_path, base_url=server.url)

    assert sorted(p.name for p in folder.iterdir()) == [
        "HAM10000_images_part_1",
        "HAM10000_images_part_2",
        "HAM10000_metadata.csv",
    ]
    assert (folder / "HAM10000_images_part_1" / "ISIC_0000002.jpg").read_bytes() == b"jpg2"
    assert (folder / "HAM10000_images_part_2" / "ISIC_0000003.jpg").read_bytes() == b"jpg3"
    assert (folder / "HAM10000_metadata.csv").read_bytes() == fixtures["HAM10000_metadata.csv"]
    requests = len(server.log)
    fetch_dataset("hamlike", home=tmp_path, base_url=server.url)
    assert len(server.log) == requests


def test_unreadable_zip_is_reported_and_not_extracted(server, tmp_path, monkeypatch):
    server.files["broken.zip"] = b"not a zip at all"
    file = dataclasses.replace(remote("broken.zip", None), extract_to="broken")
    register(monkeypatch, "tiny", file)
    with pytest.raises(DownloadError, match="not a readable zip"):
        fetch_dataset("tiny", home=tmp_path, base_url=server.url)
    folder = tmp_path / "tiny"
    assert not (folder / "broken").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- Kaggle


@pytest.fixture
def no_kaggle_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    fake_home = tmp_path / "user"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    monkeypatch.setenv("USERPROFILE", str(fake_home))
    return fake_home


def test_kaggle_without_credentials_explains_what_to_do(no_kaggle_credentials, tmp_path):
    with pytest.raises(DownloadError) as info:
        fetch_dataset("kaggle", home=tmp_path / "datasets")
    message = str(info.value)
    assert "kaggle.json" in message and "KAGGLE_USERNAME" in message
    assert "https://www.kaggle.com/datasets/kmader/skin-cancer-mnist-ham10000" in message
    assert str(tmp_path / "datasets" / "kaggle") in message
    assert not (tmp_path / "datasets").exists()


def test_kaggle_without_kagglehub_says_how_to_install(no_kaggle_credentials, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    monkeypatch.setitem(sys.modules, "kagglehub", None)  # makes `import kagglehub` fail
    with pytest.raises(DownloadError, match=r"skinpamper\[kaggle\]"):
        fetch_dataset("kaggle", home=tmp_path)


def test_kaggle_with_fake_kagglehub_lands_atomically(no_kaggle_credentials, tmp_path, monkeypatch):
    (no_kaggle_credentials / ".kaggle").mkdir()
    (no_kaggle_credentials / ".kaggle" / "kaggle.json").write_text('{"username": "u", "key": "k"}')
    seen: list[str] = []

    def dataset_download(handle: str, path: str | None = None, *, output_dir: str | None = None) -> str:
        seen.append(handle)
        out = Path(output_dir or ".")
        for sub in ("HAM10000_images_part_1", "HAM10000_images_part_2"):
            (out / sub).mkdir(parents=True)
        (out / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\n")
        return str(out)

    monkeypatch.setitem(sys.modules, "kagglehub", types.SimpleNamespace(dataset_download=dataset_download))
    home = tmp_path / "datasets"
    folder = fetch_dataset("kaggle", home=home)
    assert folder == home / "kaggle"
    assert (folder / "HAM10000_metadata.csv").is_file()
    assert seen == ["kmader/skin-cancer-mnist-ham10000"]
    assert [p.name for p in home.iterdir()] == ["kaggle"]
    fetch_dataset("kaggle", home=home)
    assert len(seen) == 1


# --------------------------------------------------------------------------- registry vs medmnist


def medmnist_dermamnist_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """INFO["dermamnist"] from the installed medmnist, read from info.py alone so torch is not needed."""
    try:
        dist = importlib.metadata.distribution("medmnist")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("medmnist is not installed (pip install --no-deps medmnist==3.0.2)")
    info_py = Path(str(dist.locate_file("medmnist/info.py")))
    monkeypatch.setenv("HOME", str(tmp_path))  # info.py creates ~/.medmnist when imported
    spec = importlib.util.spec_from_file_location("_medmnist_info_under_test", info_py)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.INFO["dermamnist"]


def test_dermamnist_entries_match_medmnist(tmp_path, monkeypatch):
    info = medmnist_dermamnist_info(tmp_path, monkeypatch)
    for suffix in ("", "_64", "_128", "_224"):
        (file,) = registry.get(f"dermamnist{suffix}").files
        assert file.url == info[f"url{suffix}"]
        assert file.md5 == info[f"MD5{suffix}"]
        assert file.filename == f"dermamnist{suffix}.npz"
        assert registry.get(f"dermamnist{suffix}").licence == info["license"]


def test_dermamnist_label_order_matches_medmnist(tmp_path, monkeypatch):
    info = medmnist_dermamnist_info(tmp_path, monkeypatch)
    labels = info["label"]
    assert tuple(labels[str(i)] for i in range(len(labels))) == classes.DERMAMNIST_NAMES


def test_registry_entries_are_complete():
    for name, source in registry.DATASETS.items():
        assert source.name == name
        assert source.licence and source.citation and source.manual and source.description
        assert source.files or source.kaggle_handle
        for file in source.files:
            assert file.url.startswith("https://")
            assert file.md5 is None or len(file.md5) == 32
