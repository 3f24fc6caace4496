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


def _dense_bar(width: int, steps: int, colour: bool = True) -> str:
    """A progress bar redrawn `steps` times on one line, each drawing `width` visible columns or fewer."""
    def code(text: str) -> str:
        return f"\x1b[32m{text}\x1b[0m" if colour else text
    return "".join(f"\r{code(f'{s}/{steps}')} [{'=' * (s * 20 // steps):<20}] loss: 0.{s:04d}"[:width + 10]
                   for s in range(steps))


@pytest.mark.parametrize("chunk", [64, 777, 1 << 22])
@pytest.mark.parametrize("window", [100, logscan.DRAWING_BYTES])
def test_dense_bars_render_as_the_whole_read(tmp_path: Path, chunk: int, window: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropping overdrawn drawings changes nothing a terminal shows: coloured and plain bars, trailing
    carriage returns, a last drawing longer than the window, CRLF lines, a bar with no newline at the end."""
    path = tmp_path / "job.log"
    text = "".join([
        "Epoch 1\n", _dense_bar(60, 400), "\n", "loss: 0.1\n",
        _dense_bar(60, 300, colour=False), "\r\r\n",
        "\rstart" + "\r" + "x" * 3000 + " loss: 0.7\n",     # the last drawing alone is longer than the window
        "windows line\r\n", "a\rb\rcc\n",
        "Traceback (most recent call last):\n", "\x1b[31mRuntimeError: red\x1b[0m\n",
        _dense_bar(60, 200)])
    path.write_bytes(text.encode())
    monkeypatch.setattr(logscan, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(logscan, "DRAWING_BYTES", window)
    scan = logscan.scan_log(path, OBSERVE, LINE_PATTERNS, TAIL_LINES, KEYWORDS)
    lines = clean_text(text).splitlines()
    assert scan.metrics == extract_metrics("\n".join(lines), OBSERVE)[0]
    assert scan.series["loss"][-1] == 0.0199 and 0.7 in scan.series["loss"]
    assert scan.tail == lines[-TAIL_LINES:]
    assert "RuntimeError: red" in scan.lines


def test_overdrawn_cut_keeps_what_a_terminal_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logscan, "DRAWING_BYTES", 50)
    bar = _dense_bar(40, 100).encode()
    cut = logscan._drop_overdrawn(b"head\n" + bar + b"\ntail\n")
    assert len(cut) < len(bar) // 10 and cut.startswith(b"head\n\r") and cut.endswith(b"\ntail\n")
    assert clean_text(cut.decode()) == clean_text("head\n" + bar.decode() + "\ntail\n")
    # an OSC sequence (title) may hold a carriage return: such a chunk is left whole
    osc = b"\x1b]0;a\rb\x07" + bar + b"\n"
    assert logscan._drop_overdrawn(osc) == osc
    # a bar that shrank: the terminal would show the end of the longer early drawing; documented loss
    shrank = ("\r" + "L" * 80 + "".join(f"\rshort {i}" for i in range(40))).encode()
    assert clean_text(logscan._drop_overdrawn(shrank).decode()) == "short 39"
