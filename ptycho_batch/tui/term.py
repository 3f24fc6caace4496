"""Keys from a terminal without Enter: cbreak mode, restored on every way out (q, Ctrl-C, exceptions).

cbreak (not raw) keeps ISIG, so Ctrl-C still raises KeyboardInterrupt in the main thread and the
`finally` below puts the terminal back. Keys are read with select(), so waiting for one costs no CPU.
"""

from __future__ import annotations

import os
import select
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager

ESCAPES = {"\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down", "\x1b[5~": "pgup",
           "\x1b[6~": "pgdn", "\x1b[H": "home", "\x1b[1~": "home", "\x1b[F": "end", "\x1b[4~": "end",
           "\x1b": "esc"}
NAMED = {"\r": "enter", "\n": "enter", " ": "space", "\x7f": "backspace"}


class KeyReader:
    """Decoded key presses from a file descriptor in cbreak mode (`None` from fd means: no keyboard)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self._pending: list[str] = []

    def read(self, timeout: float) -> str | None:
        """The next key, waiting at most `timeout` seconds; None when none came."""
        if self._pending:
            return self._pending.pop(0)
        if self.fd is None or not select.select([self.fd], [], [], max(0.0, timeout))[0]:
            return None
        data = os.read(self.fd, 256)
        if data == b"\x1b":  # a lone ESC, or the first byte of a sequence still on its way
            if select.select([self.fd], [], [], 0.05)[0]:
                data += os.read(self.fd, 256)
        self._pending = split_keys(data.decode(errors="replace"))
        return self._pending.pop(0) if self._pending else None


def split_keys(chunk: str) -> list[str]:
    """`'j\\x1b[Bq'` -> `['j', 'down', 'q']`: escape sequences become names, other characters stay."""
    keys: list[str] = []
    index = 0
    while index < len(chunk):
        if chunk[index] == "\x1b":
            match = next((seq for seq in sorted(ESCAPES, key=len, reverse=True) if chunk.startswith(seq, index)),
                         "\x1b")
            keys.append(ESCAPES[match])
            index += len(match)
            continue
        keys.append(NAMED.get(chunk[index], chunk[index]))
        index += 1
    return keys


@contextmanager
def cbreak(fd: int | None) -> Iterator[KeyReader]:
    """Put terminal `fd` in cbreak mode (no echo, no line buffering) for the block; no-op without a tty."""
    if fd is None or not os.isatty(fd):
        yield KeyReader(None)
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield KeyReader(fd)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
