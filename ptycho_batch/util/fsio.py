"""Atomic writes and advisory locks: the only ways ptybatch writes a record or serialises writers.

A record is written to a temporary file beside it and renamed over it, so readers see the old file or the
new one, never half of one; on any failure (a full disk) the temporary file is removed and the error is
raised as a `RecordError` naming the path. Records that many jobs write alike (the same environment, the
same provenance) are hard links to one content-addressed copy: allocating an inode is most of what a small
file costs (about 0.1-1 ms on ext4), a link is a directory entry. Locks are `fcntl.flock` on a file,
released by the kernel on any death of the holder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ptycho_batch.util.errors import RecordError


def io_error(path: Path | str, error: OSError) -> RecordError:
    """One line naming the path and what the system said (`No space left on device`)."""
    return RecordError(f"{path}: cannot write: {error.strerror or error}")


def _tmp_name(path: Path) -> str:
    return f"{path.parent}/.{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of `data` to `fd`: `os.write` may write less than asked (a disk filling up); the loop goes
    on, and the next write raises the reason (ENOSPC) instead of the rest being dropped silently."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(path: Path, text: str | bytes | Iterable[bytes]) -> None:
    """Write via a temporary file and rename; the temporary file never outlives a failure. Chunks (an
    iterable of bytes) are written as they come: a big record need not be held whole."""
    tmp = _tmp_name(path)
    chunks = [text.encode()] if isinstance(text, str) else [text] if isinstance(text, bytes) else text
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for data in chunks:
                write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as error:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise io_error(path, error) from None


_stored: set[Path] = set()   # content-addressed copies this process knows exist


def write_linked(path: Path, text: str, store: Path) -> None:
    """`write_atomic(path, text)`, as a hard link to the copy of `text` kept in `store` (written once per
    content); where a link cannot be made (another file system) the record is written in full."""
    data = text.encode()
    shared = store / f"{hashlib.sha256(data).hexdigest()[:32]}{path.suffix}"
    if shared not in _stored:
        ensure_dirs(store)
        if not shared.exists():
            write_atomic(shared, data)
        _stored.add(shared)
    try:
        link_atomic(shared, path)
    except OSError:
        write_atomic(path, data)


def link_atomic(source: Path, path: Path) -> None:
    """Make `path` another name of `source`, replacing what `path` was; raises OSError (no link left)."""
    tmp = _tmp_name(path)
    os.link(source, tmp)
    try:
        os.replace(tmp, path)
    except OSError:
        os.unlink(tmp)
        raise


_made_dirs: set[Path] = set()


def ensure_dirs(*folders: Path) -> None:
    """mkdir -p, remembered per process: hundreds of jobs share a few report directories."""
    for folder in folders:
        if folder not in _made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            _made_dirs.add(folder)


def json_text(data: Any) -> str:
    """A JSON record as ptybatch writes them: indented, keys in their order."""
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json_text(data))


@contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[IO[str] | None]:
    """Hold an exclusive flock on `path` for the block; yields None (and holds nothing) when `wait` is
    false and another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        yield handle
    finally:
        handle.close()


def is_locked(path: Path) -> bool:
    """Whether some live process holds the flock on `path` (tested without keeping it)."""
    if not path.exists():
        return False
    with locked(path, wait=False) as handle:
        return handle is None
