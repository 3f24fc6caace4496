"""Why a job failed: failure classes from exit status and log lines, and the red blocker notes.

Classes: timeout, cancelled, oom, xla, import, killed, expectation, missing-artifact, exception, exit.
Log-based classes are checked in that order, so an XLA error that ends in a Python exception is `xla`.
"""

from __future__ import annotations

import re
import signal as signals
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ptycho_batch.campaign.spec import Signature
from ptycho_batch.journal.store import JobState, utc_stamp, write_atomic

LOG_SIGNATURES: list[tuple[str, re.Pattern[str]]] = [
    ("oom", re.compile(r"CUDA out of memory|OutOfMemoryError|ResourceExhaustedError|OOM when allocating|"
                       r"\bMemoryError\b|std::bad_alloc|Cannot allocate memory|oom-kill|out of memory", re.I)),
    ("xla", re.compile(r"ImageProjectiveTransformV3|Detected unsupported operations when trying to compile|"
                       r"XlaRuntimeError|No registered '[^']+' OpKernel for XLA|XLA compilation .*(fail|error)|"
                       r"(?:Error|error).*\bXLA\b|\bXLA\b.*(?:not supported|unsupported|could not)")),
    ("import", re.compile(r"\b(ModuleNotFoundError|ImportError)\b")),
]
TAIL_LINES = 40   # log lines a red note quotes
EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)\b(?::.*)?$")


@dataclass(frozen=True)
class Verdict:
    failure_class: str
    line: str
    signature: str | None = None
    hint: str | None = None


def classify(lines: list[str], *, exit_code: int | None, signal: int | None, timed_out: bool, cancelled: bool,
             unmet: list[str], missing: list[str], signatures: Sequence[Signature] = ()) -> Verdict | None:
    """None when the job passed; else its failure class and the line that shows it.

    The campaign's own `signatures` are tried before the built-in classes.
    """
    if cancelled:
        return Verdict("cancelled", "cancelled by request")
    if timed_out:
        return Verdict("timeout", "killed after reaching its timeout")
    failed_run = exit_code not in (0, None) or signal is not None
    if failed_run:
        for signature in signatures:
            pattern = re.compile(signature.regex)
            for line in lines:
                if pattern.search(line):
                    return Verdict(signature.class_, line.strip(), signature.name, signature.hint)
        for name, pattern in LOG_SIGNATURES:
            for line in lines:
                if pattern.search(line):
                    return Verdict(name, line.strip())
        if signal is not None or exit_code == 137:
            name = signals.Signals(signal).name if signal else "SIGKILL (exit 137)"
            return Verdict("killed", f"terminated by {name}")
        for line in reversed(lines):
            if EXCEPTION_LINE.match(line):
                return Verdict("exception", line.strip())
        return Verdict("exit", f"exit code {exit_code}")
    if missing:
        return Verdict("missing-artifact", "; ".join(missing))
    if unmet:
        return Verdict("expectation", "; ".join(unmet))
    return None


def red_note_path(report_dir: Path, slug: str, when: float) -> Path:
    return report_dir / "red" / f"blocked_{utc_stamp(when)}_{slug}.md"


def write_red_note(path: Path, *, state: JobState, runtime: str, argv: list[str], env_names: list[str],
                   tail: list[str], hint: str | None = None) -> None:
    """The blocker note a person used to write by hand."""
    status = f"signal {state.signal}" if state.signal is not None else f"exit code {state.exit_code}"
    duration = f"{state.duration:.1f} s" if state.duration is not None else "n/a"
    lines = [
        f"# Blocked: {state.name} ({state.failure_class})",
        "",
        f"- **Job:** `{state.name}`",
        f"- **Backend:** {state.backend}",
        f"- **Runtime:** {runtime}",
        f"- **Stage:** {state.stage}",
        f"- **Attempt:** {state.attempt}",
        f"- **Status:** {status}",
        f"- **Duration:** {duration}",
        f"- **Failure class:** `{state.failure_class}`",
        f"- **Log:** `{state.log}`",
        "",
        "## Command",
        "",
        "```",
        " ".join(_quote(a) for a in argv),
        "```",
        "",
        "## The line that shows it",
        "",
        "```",
        state.failure_line or "",
        "```",
    ]
    if hint:
        lines += ["", f"**Hint:** {hint}"]
    lines += ["", f"## Last {len(tail)} log lines", "", "```", *tail, "```", "",
              "## Environment variables set", "", ", ".join(f"`{n}`" for n in sorted(env_names)), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines))


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w@%+=:,./{}\[\]-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
