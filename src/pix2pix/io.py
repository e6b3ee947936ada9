"""Small file helpers: atomic writes, so an interrupted run never leaves a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class RunWriteError(OSError):
    """A run folder could not be written (a full disk, no permission): one line naming the path,
    the error and the last good checkpoint."""


def cache_dir() -> Path:
    """Where pix2pix keeps what it can remake (kernel timings, ONNX exports of runs read with the ONNX
    backend): $PIX2PIX_CACHE_DIR, else $XDG_CACHE_HOME/pix2pix, else ~/.cache/pix2pix."""
    root = os.environ.get("PIX2PIX_CACHE_DIR")
    return Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pix2pix"


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask would set it for
    a moment, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_mode(path: str | Path, *, directory: bool = False) -> None:
    """Give a file or folder made by mkstemp / mkdtemp (0600 / 0700, private) the mode an ordinary
    open() or mkdir() would: 0666 / 0777 less the umask, so a model written by one user (umask 022:
    -rw-r--r--) can be read by a server running as another."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; it replaces `path` only if the block succeeds.

    For writers that take a file name (an exporter, Pillow, a serialiser): on any error the
    temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        ordinary_mode(tmp)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextlib.contextmanager
def staged_files(out: Path) -> Iterator[Path]:
    """Yield a staging folder beside `out` to write a whole dataset into; when the block succeeds,
    its files move into `out` (keeping their relative paths); on any error nothing reaches `out`.
    The staging folder is removed either way."""
    import shutil

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield stage
        for path in sorted(p for p in stage.rglob("*") if p.is_file()):
            dest = out / path.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
