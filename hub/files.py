"""Files that other people and programs pick up (exports, reports): whole or not at all.

A file is written under a hidden temporary name in its final folder, flushed to disk
(fsync), then renamed over the final name, and the folder's entry is synced too. A reader
therefore sees the previous complete file or the new complete one, never a part; a process
killed half-way leaves only a hidden ``.NAME.*.part`` file, which :func:`remove_stale_parts`
clears on the next run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PART_SUFFIX = ".part"
CHUNK = 1024 * 1024


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder (not possible on every platform, e.g. Windows)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write; it appears at ``path`` only if the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PART_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def write_atomically(path: Path, content: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(content)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale_parts(folder: Path, name: str | None = None) -> int:
    """Delete the temporary files a killed writer left in ``folder`` and below (only those of
    the file ``name`` when given); how many."""
    if not folder.is_dir():
        return 0
    pattern = f".{name}.*{PART_SUFFIX}" if name else f".*{PART_SUFFIX}"
    stale = [p for p in folder.rglob(pattern) if p.is_file()]
    for part in stale:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return len(stale)
