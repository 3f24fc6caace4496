"""Progress feedback for slow steps (venv builds, image builds, data generation).

On a terminal a rich spinner with elapsed time; elsewhere (CI logs, pipes) one plain line at the
start and one at the end, so logs stay free of control codes. rich (42 modules) is imported only where it
could take stderr for a terminal: a `submit --detach` from a script or a batch job never loads it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@contextmanager
def spinner(what: str) -> Iterator[None]:
    start = time.monotonic()
    console = _terminal_console()
    if console is not None:
        with console.status(f"{what} ..."):
            yield
    else:
        print(f"[ptybatch] {what} ...", file=sys.stderr, flush=True)
        yield
    print(f"[ptybatch] {what}: done in {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)


def _terminal_console() -> Console | None:
    """rich's console on stderr when rich takes it for a terminal, else None. rich is asked only where it
    could say yes: a tty, or an environment it reads as one (TTY_COMPATIBLE=1, FORCE_COLOR)."""
    if not (sys.stderr.isatty() or os.environ.get("TTY_COMPATIBLE") == "1" or "FORCE_COLOR" in os.environ):
        return None
    from rich.console import Console  # here, not above: every command imports this module, few spin

    console = Console(stderr=True)
    return console if console.is_terminal else None
