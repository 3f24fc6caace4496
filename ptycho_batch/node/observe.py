"""Reading a job's log as a person would see it, and turning `observe` patterns into metrics.

Keras and tqdm draw progress bars with carriage returns, backspaces and ANSI colours even into files;
patterns match the text as it would appear on a terminal, while the raw log stays as printed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ptycho_batch.campaign.spec import Expect

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def _render_line(line: str) -> str:
    """Resolve `\\r` (back to column 0) and `\\b` (one column back) the way a terminal would."""
    if "\r" not in line and "\b" not in line:
        return line
    if "\b" not in line:  # each segment after a carriage return overwrites the start of the line
        segments = line.split("\r")
        if max(map(len, segments)) <= len(segments[-1]):
            return segments[-1]  # a progress bar redrawn at full width: the last drawing covers the others
        shown = ""
        for segment in segments:
            shown = segment + shown[len(segment):]
        return shown
    cells: list[str] = []
    column = 0
    for char in line:
        if char == "\r":
            column = 0
        elif char == "\b":
            column = max(0, column - 1)
        else:
            if column < len(cells):
                cells[column] = char
            else:
                cells.append(char)
            column += 1
    return "".join(cells)


ANSI_SAMPLE = 65536   # a log repeats a few escape codes: those found here are removed at str.replace speed


def strip_ansi(text: str) -> str:
    """The text without ANSI escape sequences, as the regex removes them. A log repeats a few colour codes
    (CSI sequences, each holding exactly one ESC): when the codes found in its first part account for every
    ESC of the text, they are deleted with str.replace, several times faster than the regex on progress bars
    and exactly the same result; otherwise the regex does it all."""
    if "\x1b" not in text:
        return text
    codes = {code for code in _ANSI.findall(text[:ANSI_SAMPLE]) if code.startswith("\x1b[")}
    if codes and sum(text.count(code) for code in codes) == text.count("\x1b"):
        for code in codes:
            text = text.replace(code, "")
        return text
    return _ANSI.sub("", text)


def clean_text(raw: str) -> str:
    text = strip_ansi(raw)
    if "\r" not in text and "\b" not in text:
        return text
    return "\n".join(_render_line(line.rstrip("\r")) if "\r" in line or "\b" in line else line
                     for line in text.split("\n"))


def _number(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value
    return number if math.isfinite(number) or value.lower() in ("nan", "inf", "-inf") else value


Series = dict[str, list[Any]]


def extract_metrics(text: str, observe: dict[str, str]) -> tuple[dict[str, Any], Series, Series]:
    """Last value, full series and x axis of each observed quantity.

    A pattern `patch_stats` with groups mean/std gives `patch_stats.mean` and `patch_stats.std`; a group
    named like its pattern, or a single unnamed group, gives just `patch_stats`. A series is indexed by
    match (1, 2, ...: Keras prints one line per step, so that is not an epoch) unless its pattern has an
    `epoch` group: then the third result holds, per series, the epoch of each value (`epoch` is no metric).
    """
    series: Series = {}
    epochs: Series = {}
    for name, pattern in observe.items():
        regex = re.compile(pattern, re.MULTILINE)
        for match in regex.finditer(text):
            groups = match.groupdict()
            epoch = groups.pop("epoch", None) if name != "epoch" else None
            if not groups:
                values = {name: match.group(1) if regex.groups and "epoch" not in regex.groupindex else match.group(0)}
            else:
                values = {(name if group == name else f"{name}.{group}"): value
                          for group, value in groups.items() if value is not None}
            for key, value in values.items():
                series.setdefault(key, []).append(_number(value))
                if "epoch" in regex.groupindex and name != "epoch":
                    epochs.setdefault(key, []).append(_number(epoch) if epoch is not None else None)
    return {key: values[-1] for key, values in series.items()}, series, epochs


def observed(name: str, metrics: dict[str, Any]) -> bool:
    """Whether observe entry `name` matched at least once (it gives `name` or `name.<group>` metrics)."""
    return any(key == name or key.startswith(name + ".") for key in metrics)


def check_expectations(metrics: dict[str, Any], expect: dict[str, Expect]) -> list[str]:
    """One message per violated expectation, naming the metric, the bound and the value."""
    failures: list[str] = []
    for metric, rule in expect.items():
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric}: expected a value but the log never showed it")
            continue
        if not isinstance(value, float):
            failures.append(f"{metric}: expected a number, found {value!r}")
            continue
        if rule.approx is not None:
            tolerance = max(abs(rule.approx) * (rule.rel or 0.0), rule.abs or 0.0)
            if rule.rel is None and rule.abs is None:
                tolerance = abs(rule.approx) * 1e-6
            if abs(value - rule.approx) > tolerance:
                failures.append(f"{metric}: expected {rule.approx} ± {tolerance:.6g}, found {value}")
        if rule.min is not None and value < rule.min:
            failures.append(f"{metric}: expected >= {rule.min}, found {value}")
        if rule.max is not None and value > rule.max:
            failures.append(f"{metric}: expected <= {rule.max}, found {value}")
    return failures
