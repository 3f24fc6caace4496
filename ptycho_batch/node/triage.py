"""Why a job failed: failure classes from exit status and log lines, and the red blocker notes.

Classes: timeout, cancelled, oom, xla, import, killed, expectation, missing-artifact, exception, exit.
Log-based classes are checked in that order, so an XLA error that ends in a Python exception is `xla`.
"""

from __future__ import annotations

import re
import signal as signals
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.campaign.spec import Signature
from ptycho_batch.journal.layout import ReportDir
from ptycho_batch.journal.records import JobState
from ptycho_batch.node.envfirewall import job_secrets, mask
from ptycho_batch.util.fsio import write_atomic

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


def write_red_note(job: PlannedJob, state: JobState, *, runtime: str, argv: list[str], env_names: list[str],
                   tail: list[str]) -> None:
    """The blocker note a person used to write by hand, `red/blocked_<stamp>_<slug>[_attemptN].md`; whoever
    records a failure (the job runner, the SLURM poller, a reader that finds a dead supervisor) calls this."""
    hint = state.hint
    secrets = job_secrets(job.pass_env)   # a log read before the runner masked it (a lost or killed job)
    tail = [mask(line, secrets) for line in tail]
    state.failure_line = mask(state.failure_line, secrets) if state.failure_line else state.failure_line
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
    suffix = f"_attempt{state.attempt}" if state.attempt > 1 else ""
    path = ReportDir(Path(job.report_dir)).red_note(job.slug + suffix, state.ended or time.time())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines))
    state.red_note = str(path)


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w@%+=:,./{}\[\]-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
