"""The streaming log pass finds what a whole-log read finds: metrics, triage verdicts, fallback matches, tail."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ptycho_batch.node import logscan
from ptycho_batch.node.observe import clean_text, extract_metrics
from ptycho_batch.node.triage import EXCEPTION_LINE, KEYWORDS, LINE_PATTERNS, TAIL_LINES, classify

OBSERVE = {"loss": r"loss: ([0-9.]+)$", "stats": r"mean=(?P<mean>[0-9.]+) std=(?P<std>[0-9.]+)"}


def _log(path: Path) -> None:
    with open(path, "w") as log:
        for epoch in range(300):
            bar = "".join(f"\r\x1b[32m{s}/50\x1b[0m [{'=' * (s // 5):<10}] loss: 0.{s:02d}" for s in range(0, 50, 7))
            log.write(f"Epoch {epoch}\n{bar}\nloss: 0.{epoch:03d}\nmean=1.{epoch} std=0.{epoch}\n")
            if epoch == 17:
                log.write("ModuleNotFoundError: No module named 'early'\n")
            if epoch == 200:
                log.write("ValueError: a middle exception\n")
        log.write("Traceback (most recent call last):\nRuntimeError: the last exception\n\n")


@pytest.mark.parametrize("chunk", [64, 1000, 1 << 22])
def test_stream_matches_whole_read(tmp_path: Path, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "job.log"
    _log(path)
    monkeypatch.setattr(logscan, "CHUNK_BYTES", chunk)
    fallback = re.compile(r"No module named")
    patterns = [*LINE_PATTERNS, fallback]
    scan = logscan.scan_log(path, OBSERVE, patterns, TAIL_LINES, KEYWORDS)  # keyword skips change nothing
    lines = clean_text(path.read_bytes().decode()).splitlines()
    metrics, series, epochs = extract_metrics("\n".join(lines), OBSERVE)
    assert scan.metrics == metrics and scan.series == series and scan.epochs == epochs
    assert scan.tail == lines[-TAIL_LINES:][: len(scan.tail)] and scan.tail[-1] == "RuntimeError: the last exception"
    for exceptions_only in (False, True):   # with and without a higher-priority class in the log
        picked = [line for line in lines if not exceptions_only or "early" not in line]
        kept = [line for line in scan.lines if not exceptions_only or "early" not in line]
        verdicts = [classify(seen, exit_code=1, signal=None, timed_out=False, cancelled=False, unmet=[], missing=[])
                    for seen in (picked, kept)]
        assert verdicts[0] == verdicts[1]
    assert any(fallback.search(line) for line in scan.lines)
    assert len(scan.lines) < 100


def test_missing_log_scans_empty(tmp_path: Path) -> None:
    scan = logscan.scan_log(tmp_path / "none.log", OBSERVE, [EXCEPTION_LINE], TAIL_LINES)
    assert scan.lines == [] and scan.metrics == {}


def test_strip_ansi_equals_the_regex_on_any_mix_of_escapes() -> None:
    """The str.replace fast path must give exactly what the regex gives, including unterminated OSCs."""
    import random

    from ptycho_batch.node.observe import _ANSI, strip_ansi

    rng = random.Random(7)
    pieces = ["\x1b[32m", "\x1b[0m", "\x1b]0;t\x07", "\x1bM", "\x1b[1;31m", "x", "\x1b", "[", "\x07", "\\",
              "\x1b\\", "\x1b]", "\n", "\r", "m", "3"]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        assert strip_ansi(text) == _ANSI.sub("", text), repr(text)
    bar = "\r\x1b[32m10/100\x1b[0m [==] loss: 0.5" * 1000
    assert strip_ansi(bar) == _ANSI.sub("", bar)
