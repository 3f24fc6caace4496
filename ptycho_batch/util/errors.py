"""The one error tree: every failure a user can cause or meet is a `PtybatchError` with its exit code.

The CLI catches `PtybatchError` once and prints `error: <message>` (one line per problem) and exits with the
class's code; anything else that escapes is a bug in ptybatch and is printed with its traceback and a line
saying so. Exit codes (documented in README): 0 passed, 1 a required job or parity check failed, 2 invalid
input, 3 busy (another process holds the campaign or report directory), 4 a runtime or the scheduler is
unavailable, 5 the journal or output tree cannot be read or written, 70 internal error, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class PtybatchError(Exception):
    """Base class: an expected failure, reported as one line per problem, never as a traceback."""

    exit_code = 1

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class SpecError(PtybatchError):
    """Invalid input: a campaign file, a `--set` value, a run or job name that does not exist."""

    exit_code = 2


class CampaignBusy(PtybatchError):
    """Another live process holds the lock this command needs (a campaign's submit lock, a report dir)."""

    exit_code = 3


class RuntimeUnavailable(PtybatchError):
    """A runtime cannot be prepared or used (missing image or tool, failed venv build)."""

    exit_code = 4


class ContainerError(RuntimeUnavailable):
    """A container tool is missing or one of its steps failed (handled like a missing image)."""


class SlurmCommandError(PtybatchError):
    """A SLURM client command failed, timed out, or is not installed (the scheduler is unavailable)."""

    exit_code = 4

    def __init__(self, argv: Sequence[str], reason: str) -> None:
        super().__init__(f"{' '.join(argv)}: {reason}")
        self.argv = list(argv)
        self.reason = reason


class SchedulerUnreachable(PtybatchError):
    """A run's scheduler did not answer the last refresh, so its recorded states may be stale."""

    exit_code = 4


class RecordError(PtybatchError):
    """A journal record or output file could not be read or written (damaged record, disk full, permissions)."""

    exit_code = 5
