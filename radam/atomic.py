"""Writing a file so that it is never seen half-written: the result files, checkpoints and downloads of the package.

A write goes to a temporary file in the destination's folder, is flushed to disk, and then replaces the destination
in one ``os.replace`` (atomic on POSIX and Windows). An interrupted write leaves the old file, or none, and no
temporary behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

__all__ = ["atomic_open", "write_json_atomically"]


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (``"w"`` or ``"wb"``); on success it replaces ``path``.

    The file gets the permissions of an ordinarily created one (``0o666`` less the umask), not ``mkstemp``'s private
    ``0o600``, since these files are shipped and shared.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomically(document: Any, path: str | Path) -> Path:
    """Write ``document`` as indented JSON to ``path`` with :func:`radam.atomic.atomic_open`; non-finite floats are refused."""
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"  # serialise first: a bad value writes nothing
    with atomic_open(path, "w") as file:
        file.write(text)
    return Path(path)
