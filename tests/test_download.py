"""`data download` against an HTTP server this test starts on 127.0.0.1, serving archives it builds.

No test here reaches the real hosts: the catalogue's entries are swapped for ones that point at
the local server, and `--mirror` is exercised the same way.
"""

import hashlib
import io
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

import pix2pix.data.download as dl
from pix2pix.cli import main
from pix2pix.data.download import CATALOGUE, DatasetEntry, download_dataset


def tar_bytes(files: dict[str, bytes], *, link: tuple[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tf.addfile(info)
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


PAIRS = {"facades/train/1.jpg": b"a" * 5000, "facades/train/2.jpg": b"b" * 3000, "facades/test/1.jpg": b"c" * 100}
ARCHIVES = {
    "good.tar.gz": tar_bytes(PAIRS),
    "drop.tar.gz": tar_bytes({f"drop/train/{i}.jpg": bytes([i]) * 20000 for i in range(5)}),
    "norange.tar.gz": tar_bytes({"norange/train/1.jpg": b"n" * 20000}),
    "corrupt.tar.gz": b"this is not an archive at all" * 100,
    "escape.tar.gz": tar_bytes({"escape/train/ok.jpg": b"x", "escape/../../evil.txt": b"boom"}),
    "absolute.tar.gz": tar_bytes({"/tmp/pix2pix-evil.txt": b"boom"}),
    "link.tar.gz": tar_bytes({"link/train/ok.jpg": b"x"}, link=("link/train/passwd", "/etc/passwd")),
    "unpaired.zip": zip_bytes(
        {"unpaired/trainA/1.jpg": b"h", "unpaired/trainB/1.jpg": b"z", "unpaired/testA/2.jpg": b"h"}
    ),
    "zipescape.zip": zip_bytes({"zipescape/trainA/1.jpg": b"h", "../outside.txt": b"boom"}),
}


class Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []  # (path, Range header) of every request

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        rng = self.headers.get("Range")
        Handler.seen.append((name, rng))
        data = ARCHIVES.get(name)
        if data is None:
            self.send_error(404, "Not Found")
            return
        start = int(rng.split("=")[1].split("-")[0]) if rng and name != "norange.tar.gz" else 0
        if start >= len(data) and start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name == "drop.tar.gz" and not start:
            self.wfile.write(body[: len(body) // 3])  # then the connection drops
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/datasets"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def entry(
    name: str,
    archive: str,
    *,
    kind: str = "paired",
    size: int | None = None,
    sha256: str | None = None,
    base: str = "http://127.0.0.1:9/unused",
) -> DatasetEntry:
    return DatasetEntry(
        name=name,
        kind=kind,
        description="test set",
        archive=archive,
        base=base,
        approx_size="1 kB",
        layout="train/",
        direction="AtoB",
        task="a -> b",
        licence="test",
        citation="test",
        size=size,
        sha256=sha256,
    )


def catalogue(server: str) -> dict[str, DatasetEntry]:
    cat = {
        "facades": entry(
            "facades",
            "good.tar.gz",
            base=server,
            size=len(ARCHIVES["good.tar.gz"]),
            sha256=hashlib.sha256(ARCHIVES["good.tar.gz"]).hexdigest(),
        ),
        "drop": entry("drop", "drop.tar.gz", base=server),
        "norange": entry("norange", "norange.tar.gz", base=server),
        "corrupt": entry("corrupt", "corrupt.tar.gz", base=server),
        "wrongsize": entry("wrongsize", "good.tar.gz", base=server, size=123),
        "wronghash": entry("wronghash", "good.tar.gz", base=server, sha256="0" * 64),
        "missing": entry("missing", "missing.tar.gz", base=server),
        "escape": entry("escape", "escape.tar.gz", base=server),
        "absolute": entry("absolute", "absolute.tar.gz", base=server),
        "link": entry("link", "link.tar.gz", base=server),
        "unpaired": entry("unpaired", "unpaired.zip", kind="unpaired", base=server),
        "zipescape": entry("zipescape", "zipescape.zip", kind="unpaired", base=server),
    }
    return cat


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_full_download_verifies_and_extracts(server: str, tmp_path: Path) -> None:
    dest = download_dataset("facades", tmp_path, catalogue=catalogue(server))
    assert dest == tmp_path / "facades"
    assert (dest / "train" / "1.jpg").read_bytes() == PAIRS["facades/train/1.jpg"]
    assert sorted(p.name for p in (dest / "train").iterdir()) == ["1.jpg", "2.jpg"]
    assert leftovers(tmp_path) == ["facades"]  # no archive, no temporary folder
    with pytest.raises(ValueError, match="already exists"):
        download_dataset("facades", tmp_path, catalogue=catalogue(server))


def test_unpaired_zip_keeps_the_reference_layout(server: str, tmp_path: Path) -> None:
    dest = download_dataset("unpaired", tmp_path, catalogue=catalogue(server), keep_archive=True)
    assert sorted(p.name for p in dest.iterdir()) == ["testA", "trainA", "trainB"]
    assert leftovers(tmp_path) == ["unpaired", "unpaired.zip"]


def test_a_dropped_connection_resumes_with_a_range_request(server: str, tmp_path: Path) -> None:
    cat = catalogue(server)
    Handler.seen.clear()
    with pytest.raises(
        ValueError, match=r"drop.tar.gz: download interrupted after \d+ of \d+ bytes.*run the same command again"
    ):
        download_dataset("drop", tmp_path, catalogue=cat)
    part = tmp_path / ".drop.tar.gz.part"
    assert 0 < part.stat().st_size < len(ARCHIVES["drop.tar.gz"])
    assert not (tmp_path / "drop").exists()  # no half dataset
    have = part.stat().st_size
    dest = download_dataset("drop", tmp_path, catalogue=cat)
    assert Handler.seen[-1] == ("drop.tar.gz", f"bytes={have}-")  # resumed, not restarted
    assert len(list((dest / "train").iterdir())) == 5
    assert leftovers(tmp_path) == ["drop"]


def test_a_server_that_ignores_range_starts_over(server: str, tmp_path: Path) -> None:
    part = tmp_path / ".norange.tar.gz.part"
    part.write_bytes(ARCHIVES["norange.tar.gz"][:100] + b"garbage")  # a stale partial file
    dest = download_dataset("norange", tmp_path, catalogue=catalogue(server))
    assert (dest / "train" / "1.jpg").read_bytes() == b"n" * 20000


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("corrupt", "corrupt.tar.gz: not a readable archive"),
        ("wrongsize", "the server's file is .* bytes, the catalogue expects 123; not downloaded"),
        ("wronghash", "good.tar.gz: SHA-256 [0-9a-f]{64} does not match the catalogue's 0{64}; the file was deleted"),
        ("missing", "missing.tar.gz: HTTP 404"),
        ("escape", "member 'escape/../../evil.txt' would land outside the dataset folder"),
        ("absolute", "member '/tmp/pix2pix-evil.txt' has an absolute path"),
        ("link", "member 'link/train/passwd' is a link"),
        ("zipescape", "member '../outside.txt' would land outside the dataset folder"),
    ],
)
def test_failures_are_one_line_and_leave_nothing_behind(server: str, tmp_path: Path, name: str, message: str) -> None:
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=message):
        download_dataset(name, root, catalogue=catalogue(server))
    assert leftovers(root) == []  # no dataset, no archive, no temporary folder
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside.txt").exists()
    assert not Path("/tmp/pix2pix-evil.txt").exists()


def test_cli_lists_the_catalogue_and_downloads_from_a_mirror(server: str, tmp_path: Path, monkeypatch) -> None:
    r = CliRunner().invoke(main, ["data", "download", "--list"])
    assert r.exit_code == 0
    for name in (
        "facades",
        "cityscapes",
        "maps",
        "edges2shoes",
        "edges2handbags",
        "night2day",
        "horse2zebra",
        "apple2orange",
        "summer2winter_yosemite",
        "monet2photo",
    ):
        assert name in r.output
    assert "facades" in r.output and "--direction BtoA" in r.output
    r = CliRunner().invoke(main, ["data", "download", "--list", "facades"])
    assert "cite:" in r.output and "licence:" in r.output
    assert set(CATALOGUE) >= {"facades", "horse2zebra"} and CATALOGUE["facades"].direction == "BtoA"
    # The real facades entry, fetched from a mirror (our local server, which holds a test archive
    # under the real archive name): --mirror replaces the authors' base URL.
    ARCHIVES["facades.tar.gz"] = ARCHIVES["good.tar.gz"]
    try:
        r = CliRunner().invoke(
            main, ["--no-progress", "data", "download", "facades", "--root", str(tmp_path), "--mirror", server]
        )
    finally:
        del ARCHIVES["facades.tar.gz"]
    assert r.exit_code == 0, r.output
    assert (tmp_path / "facades" / "train" / "1.jpg").is_file() and "--direction BtoA" in r.output
    r = CliRunner().invoke(main, ["data", "download", "cityscapes"])
    assert r.exit_code != 0 and "cityscapes-dataset.com" in r.output
    monkeypatch.setattr(dl, "CATALOGUE", catalogue(server))
    r = CliRunner().invoke(main, ["--no-progress", "data", "download", "corrupt", "--root", str(tmp_path / "x")])
    assert r.exit_code != 0 and r.output.strip().splitlines()[-1].startswith(
        "Error: corrupt.tar.gz: not a readable archive"
    )
