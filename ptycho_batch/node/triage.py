"""Why a job failed: failure classes from exit status and log lines, and the red blocker notes.

Classes: timeout, cancelled, oom, xla, import, killed, usage, test-failure, exception, exit, then for runs
that exited 0: missing-artifact, missing-metric, expectation. Log-based classes are checked in that order,
so an XLA error that ends in a Python exception is `xla`. A failure with no better class quotes the last
error-looking line of the log instead of "exit code N": the cause is usually printed there.
"""

from __future__ import annotations

import re
import signal as signals
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.campaign.spec import Signature
from ptycho_batch.journal.layout import ReportDir
from ptycho_batch.journal.records import FailureClass, JobState
from ptycho_batch.node.envfirewall import job_secrets, mask
from ptycho_batch.node.observe import observed
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
USAGE_LINE = re.compile(r"^\S+: error: .+")            # argparse: `prog: error: unrecognized arguments: ...`
PYTEST_FAILED = re.compile(r"^(?:FAILED|ERROR) \S+::")  # pytest's short test summary
PYTEST_DETAIL = re.compile(r"^E\s{3,}(\S.*)")   # pytest's `E   ` explanation lines
PYTEST_SUMMARY = re.compile(r"^=*\s*(?:\d+ (?:failed|passed|errors?|skipped)[, ]*)+.* in [\d.]+s")
ERROR_LOOKING = re.compile(r"\bERROR\b|\bError:|\berror:|\bFATAL\b|can't open file|No such file")
USAGE_HEADER = re.compile(r"^usage: ")                  # argparse prints it before the error line
LINE_PATTERNS = (*(pattern for _, pattern in LOG_SIGNATURES), EXCEPTION_LINE, USAGE_HEADER, USAGE_LINE,
                 PYTEST_FAILED, PYTEST_DETAIL, PYTEST_SUMMARY, ERROR_LOOKING)
"""Every line pattern `classify` looks for: a streaming log scan keeps (the first and last of) their lines."""
KEYWORDS: dict[re.Pattern[str], tuple[str, ...]] = {
    LOG_SIGNATURES[0][1]: ("out of memory", "outofmemoryerror", "resourceexhaustederror", "oom when allocating",
                           "memoryerror", "bad_alloc", "cannot allocate memory", "oom-kill"),
    LOG_SIGNATURES[1][1]: ("imageprojectivetransformv3", "detected unsupported operations", "xla"),
    LOG_SIGNATURES[2][1]: ("modulenotfounderror", "importerror"),
    EXCEPTION_LINE: ("error", "exception", "exit", "interrupt"),
    USAGE_HEADER: ("usage: ",), USAGE_LINE: (": error: ",), PYTEST_FAILED: ("failed ", "error "),
    PYTEST_SUMMARY: ("failed", "passed", "error", "skipped"),
    ERROR_LOOKING: ("error", "fatal", "can't open file", "no such file"),
}
"""Words (lower case) without one of which a pattern cannot match: a log chunk holding none of them is not
searched with it (most of a long log is progress bars, where a regex search costs far more than `in`)."""


@dataclass(frozen=True)
class Verdict:
    failure_class: str
    line: str
    signature: str | None = None
    hint: str | None = None


def classify(lines: list[str], *, exit_code: int | None, signal: int | None, timed_out: bool, cancelled: bool,
             unmet: list[str], missing: list[str], signatures: Sequence[Signature] = (),
             absent: Sequence[str] = ()) -> Verdict | None:
    """None when the job passed; else its failure class and the line that shows it.

    The campaign's own `signatures` (severity error) are tried before the built-in classes; `absent` names
    required metrics the log never showed.
    """
    if cancelled:
        return Verdict("cancelled", "cancelled by request")
    if timed_out:
        return Verdict("timeout", "killed after reaching its timeout")
    failed_run = exit_code not in (0, None) or signal is not None
    if failed_run:
        for signature in (s for s in signatures if s.severity == "error"):
            pattern = re.compile(signature.regex)
            for line in lines:
                if pattern.search(line):
                    return Verdict(signature.class_ or "", line.strip(), signature.name, signature.hint)
        for name, pattern in LOG_SIGNATURES:
            for line in lines:
                if pattern.search(line):
                    return Verdict(name, line.strip())
        if signal is not None or exit_code == 137:
            name = signals.Signals(signal).name if signal else "SIGKILL (exit 137)"
            return Verdict("killed", f"terminated by {name}")
        if any(USAGE_HEADER.match(line) for line in lines):
            usage = next((line.strip() for line in lines if USAGE_LINE.match(line)), None)
            if usage:
                return Verdict(FailureClass.USAGE, usage)
        failed_tests = [line.strip() for line in lines if PYTEST_FAILED.match(line)]
        if failed_tests:
            details = [m.group(1).strip() for m in map(PYTEST_DETAIL.match, lines) if m]
            detail = f"E {details[-1]}" if details else None   # the last one names the error
            summary = next((line.strip(" =") for line in reversed(lines) if PYTEST_SUMMARY.match(line)), None)
            return Verdict(FailureClass.TEST_FAILURE, " | ".join(p for p in (failed_tests[0], detail, summary) if p))
        for line in reversed(lines):
            if EXCEPTION_LINE.match(line):
                return Verdict(FailureClass.EXCEPTION, line.strip())
        quoted = next((line.strip() for line in reversed(lines) if ERROR_LOOKING.search(line)), None)
        return Verdict(FailureClass.EXIT, quoted or f"exit code {exit_code}")
    if missing:
        return Verdict("missing-artifact", "; ".join(missing))
    if absent:
        return Verdict(FailureClass.MISSING_METRIC, "; ".join(absent))
    if unmet:
        return Verdict("expectation", "; ".join(unmet))
    return None


def warnings_of(lines: list[str], observe: Sequence[str], metrics: dict[str, Any],
                signatures: Sequence[Signature]) -> list[str]:
    """What a COMPLETED job should still say: observe entries that matched nothing, warning signatures' lines."""
    unmatched = [f"{name}: no match" for name in observe if not observed(name, metrics)]
    flagged = []
    for signature in (s for s in signatures if s.severity == "warning"):
        pattern = re.compile(signature.regex)
        flagged += [line.strip() for line in lines if pattern.search(line)]
    return unmatched + list(dict.fromkeys(flagged))


def write_red_note(job: PlannedJob, state: JobState, *, runtime: str, argv: list[str], env_names: list[str],
                   tail: list[str], tasks: Sequence[str] = ()) -> None:
    """The blocker note a person used to write by hand, `red/blocked_<stamp>_<slug>[_attemptN].md`; whoever
    records a failure (the job runner, the SLURM poller, a reader that finds a dead supervisor) calls this.
    With `tasks` (an array submission that failed as a whole, `job` its first task) one note stands for them
    all: it names the campaign job and the task count (`ReportDir.array_red_note`)."""
    hint = state.hint
    secrets = job_secrets(job.pass_env)   # a log read before the runner masked it (a lost or killed job)
    tail = [mask(line, secrets) for line in tail]
    state.failure_line = mask(state.failure_line, secrets) if state.failure_line else state.failure_line
    status = f"signal {state.signal}" if state.signal is not None else f"exit code {state.exit_code}"
    duration = f"{state.duration:.1f} s" if state.duration is not None else "n/a"
    title, who = state.name, [f"- **Job:** `{state.name}`"]
    if tasks:
        title = f"{job.base} (an array of {len(tasks)} tasks)"
        who = [f"- **Campaign job:** `{job.base}`",
               f"- **Tasks:** {len(tasks)}, `{tasks[0]}` … `{tasks[-1]}`, each recorded FAILED with this note"]
    lines = [
        f"# Blocked: {title} ({state.failure_class})",
        "",
        *who,
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
    report, when = ReportDir(Path(job.report_dir)), state.ended or time.time()
    path = report.array_red_note(job.slug, len(tasks), when) if tasks else report.red_note(job.slug + suffix, when)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines))
    state.red_note = str(path)


def _quote(arg: str) -> str:
    return arg if arg and re.fullmatch(r"[\w@%+=:,./{}\[\]-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"
