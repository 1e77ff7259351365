"""Writing a file so that it is never seen half-written: the result files, checkpoints and downloads of the package.

A write goes to a temporary file in the destination's folder, is flushed to disk, and then replaces the destination
in one ``os.replace`` (atomic on POSIX and Windows). An interrupted write leaves the old file, or none, and no
temporary behind. Nothing changes process-wide state (such as the umask), so threads may write at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "write_json_atomically"]


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (``"w"`` or ``"wb"``); on success it replaces ``path``.

    The temporary is created like an ordinary file, so it gets ``0o666`` less the umask (not ``mkstemp``'s private
    ``0o600``: these files are shipped and shared). After the replacement the folder itself is synced where the
    system allows it, so that the new name survives a crash too.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file ``NAME.RANDOM.tmp`` beside ``path``, opened for writing with the umask's permissions."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def _sync_folder(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder; NTFS journals the rename itself
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomically(document: Any, path: str | Path) -> Path:
    """Write ``document`` as indented JSON to ``path`` with :func:`radam.atomic.atomic_open`; non-finite floats are
    refused."""
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"  # serialise first: a bad value writes nothing
    with atomic_open(path, "w") as file:
        file.write(text)
    return Path(path)
