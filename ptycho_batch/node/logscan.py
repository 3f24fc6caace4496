"""One streaming pass over a finished job's log: metrics, the lines triage needs, and the tail.

Logs can be gigabytes (a Keras progress bar per batch), so the log is read in fixed-size chunks, never
whole: `observe` patterns are matched chunk by chunk, and of every triage pattern (failure classes,
signatures, fallback patterns) only its first and last matching line is kept, plus the last lines. Triage
then runs on those few lines and finds what it would have found in the whole log. Memory stays bounded by
the chunk size (plus the observed series). The text is what a terminal shows (see `observe.clean_text`).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptycho_batch.node.observe import clean_text, extract_metrics

CHUNK_BYTES = 4 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024   # a longer line (a progress bar without a newline) keeps only its end
DRAWING_BYTES = 1024   # of a line redrawn with carriage returns, the drawings in its last 1 KB are rendered


@dataclass
class LogScan:
    metrics: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    epochs: dict[str, list[Any]] = field(default_factory=dict)   # per series, the epoch of each value (if known)
    lines: list[str] = field(default_factory=list)   # the matching lines and the tail, in log order
    tail: list[str] = field(default_factory=list)


def _drop_overdrawn(data: bytes) -> bytes:
    """`data` without the drawings that later ones cover, in lines redrawn with `\r` (a progress bar:
    thousands of drawings on one line): of such a line only what starts at its first `\r` within the last
    DRAWING_BYTES is kept (the last drawing always whole), so the overwritten bulk is never decoded,
    cleaned or rendered. What a terminal shows differs only where an earlier drawing was longer than every
    later one (a bar that shrank). An OSC escape (ended by BEL or ESC \\) may hold a `\r`: a chunk with
    one of those is left whole."""
    if b"\r" not in data or b"\x07" in data or (b"\\" in data and b"\x1b\\" in data):
        return data
    pieces: list[bytes] = []
    done = 0
    at = data.find(b"\r")
    while at >= 0:
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end
        body = end
        while body > start and data[body - 1] == 13:   # trailing carriage returns draw nothing
            body -= 1
        last = data.rfind(b"\r", start, body)
        if body - start > DRAWING_BYTES and last > start:
            cut = data.find(b"\r", body - DRAWING_BYTES, body)
            pieces += [data[done:start], data[cut if 0 <= cut < last else last:end]]
            done = end
        at = data.find(b"\r", end)
    return b"".join([*pieces, data[done:]]) if pieces else data


def _text(data: bytes) -> str:
    """Cleaned text, as a terminal shows it (a progress bar's `\r` steps overwrite each other)."""
    return clean_text(_drop_overdrawn(data).decode(errors="replace"))


def _chunks(path: Path) -> Iterable[str]:
    """The log as cleaned text, in pieces that end at a line boundary."""
    carry = b""
    with open(path, "rb") as handle:
        while True:
            data = handle.read(CHUNK_BYTES)
            if not data:
                break
            data = carry + data
            cut = data.rfind(b"\n") + 1
            carry = data[cut:][-MAX_LINE_BYTES:]
            if cut:
                yield _text(data[:cut - 1])
    if carry:
        yield _text(carry)


def scan_log(path: Path, observe: dict[str, str], patterns: Iterable[re.Pattern[str]], tail_lines: int,
             keywords: Mapping[re.Pattern[str], tuple[str, ...]] | None = None) -> LogScan:
    """Metrics of `observe`, the first and last line matching each of `patterns`, and the last lines.
    A pattern with `keywords` (lower case, one of which any match contains) skips chunks that hold none."""
    scan = LogScan()
    searched = [(re.compile(p.pattern, p.flags | re.MULTILINE), (keywords or {}).get(p)) for p in patterns]
    kept: dict[int, str] = {}
    tail: deque[tuple[int, str]] = deque(maxlen=tail_lines)
    first_line = 0
    try:
        chunks = _chunks(path)
        for text in chunks:
            _, series, epochs = extract_metrics(text, observe)
            for name, values in series.items():
                scan.series.setdefault(name, []).extend(values)
            for name, values in epochs.items():
                scan.epochs.setdefault(name, []).extend(values)
            lowered = text.lower()
            for pattern, words in searched:
                if words is not None and not any(word in lowered for word in words):
                    continue
                first = pattern.search(text)
                if first is None:
                    continue
                later = deque(pattern.finditer(text, first.end()), maxlen=1)
                for match in (first, *later):
                    start = text.rfind("\n", 0, match.start()) + 1
                    end = text.find("\n", match.start())
                    kept[first_line + text.count("\n", 0, start)] = text[start:end if end >= 0 else len(text)]
            lines = text.split("\n")
            tail.extend(enumerate(lines[-tail_lines:] if tail_lines else [],
                                  first_line + max(0, len(lines) - tail_lines)))
            first_line += len(lines)
    except OSError:
        pass   # no log (the job could not start): nothing to read
    scan.metrics = {name: values[-1] for name, values in scan.series.items()}
    kept.update(tail)
    scan.lines = [kept[number] for number in sorted(kept)]
    scan.tail = [line for _, line in tail]
    while scan.tail and not scan.tail[-1].strip():
        scan.tail.pop()
    return scan
