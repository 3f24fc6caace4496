"""Progress feedback for slow steps (venv builds, image builds, data generation).

On a terminal a rich spinner with elapsed time; elsewhere (CI logs, pipes) one plain line at the
start and one at the end, so logs stay free of control codes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def spinner(what: str) -> Iterator[None]:
    from rich.console import Console  # here, not above: every command imports this module, few spin

    console = Console(stderr=True)
    start = time.monotonic()
    if console.is_terminal:
        with console.status(f"{what} ..."):
            yield
    else:
        print(f"[ptybatch] {what} ...", file=sys.stderr, flush=True)
        yield
    print(f"[ptybatch] {what}: done in {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)
