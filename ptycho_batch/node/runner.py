"""Node-side: run one job end to end. The same code runs under the local executor and on SLURM nodes.

The child writes straight into `cli/<log>` (no pipe through this process), so a crash of the runner
loses nothing already printed and a killed submitter does not kill the log. After the child ends the
log is read once: metrics, artifacts and digests, expectations, the verdict, the red or green note.
`run_job` never raises: any internal error becomes a FAILED record that says what happened.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import traceback
from pathlib import Path
from weakref import WeakKeyDictionary

from ptycho_batch.campaign.plan import PlannedFallback, PlannedJob, cache_key, cache_parts
from ptycho_batch.campaign.spec import FallbackWhen
from ptycho_batch.journal.layout import ReportDir, attempt_log
from ptycho_batch.journal.records import ArtifactRecord, Attempt, JobState, State
from ptycho_batch.journal.store import Run
from ptycho_batch.node import provenance
from ptycho_batch.node.envfirewall import build_env, mask_file, redact, secret_values
from ptycho_batch.node.evidence import preserve_evidence, record_evidence
from ptycho_batch.node.gpus import visible_gpus
from ptycho_batch.node.logscan import LogScan, scan_log
from ptycho_batch.node.observe import check_expectations, observed
from ptycho_batch.node.process import (
    JOB_TOKEN_VAR,
    ProcessRegistry,
    become_subreaper,
    end_leftovers,
    new_job_token,
    stop_group,
)
from ptycho_batch.node.triage import KEYWORDS, LINE_PATTERNS, TAIL_LINES, classify, warnings_of, write_red_note
from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.util.digests import path_digest
from ptycho_batch.util.errors import RuntimeUnavailable
from ptycho_batch.util.fsio import ensure_dirs, json_text, write_atomic, write_json, write_linked
from ptycho_batch.util.procs import process_start_time

HOSTNAME = socket.gethostname()


_identities: WeakKeyDictionary[Runtime, str] = WeakKeyDictionary()


def runtime_identity(runtime: Runtime) -> str:
    """A runtime's identity, asked once per process (it is fixed for a run: an interpreter's is cached
    already, and asking costs PATH lookups or a container inspect per job otherwise)."""
    if runtime not in _identities:
        _identities[runtime] = runtime.identity()
    return _identities[runtime]


def upstream_digests(job: PlannedJob, states: dict[str, JobState]) -> dict[str, str]:
    """The digests of the artifacts a job consumes, by `<need>.<artifact>` (part of its cache key)."""
    return {f"{need}.{name}": record.digest or "" for need in job.needs
            for name, record in sorted(states[need].artifacts.items())} if job.needs else {}


def stamp_cache_key(job: PlannedJob, runtime: Runtime, state: JobState, upstream: dict[str, JobState]) -> None:
    """Record what this run of the job depends on (the one place a job's cache key is stamped)."""
    state.cache_parts = cache_parts(job, runtime_identity(runtime), upstream_digests(job, upstream))
    state.cache_key = cache_key(state.cache_parts)


def run_job(job: PlannedJob, run: Run, runtime: Runtime, state: JobState, upstream: dict[str, JobState], *,
            pinned_env: dict[str, str] | None = None, registry: ProcessRegistry | None = None) -> JobState:
    """Run `job` to a final state, with its fallback rules; return (and journal) that state.

    `upstream` holds (at least) the final states of the job's needs. A failed attempt whose failure
    matches a fallback rule not used yet is followed by a new attempt with the rule's overrides, in the
    same process (on SLURM: in the same allocation).
    """
    registry = registry or ProcessRegistry()
    become_subreaper()
    stamp_cache_key(job, runtime, state, upstream)
    variant: PlannedFallback | None = None
    used: set[int] = set()
    while True:
        lines = _attempt(job, run, runtime, state, variant, pinned_env or {}, registry)
        if state.state != State.FAILED:
            return state
        rule = next((i for i, r in enumerate(job.fallbacks) if i not in used and rule_matches(r.when, state, lines)),
                    None)
        if rule is None:
            return state
        used.add(rule)
        variant = job.fallbacks[rule]


def triage_patterns(job: PlannedJob) -> list[re.Pattern[str]]:
    """Every pattern triage and the fallback rules look for in a failed job's log."""
    return [*LINE_PATTERNS] + [re.compile(s.regex) for s in job.signatures] + \
        [re.compile(f.when.pattern) for f in job.fallbacks if f.when.pattern is not None]


def rule_matches(when: FallbackWhen, state: JobState, lines: list[str]) -> bool:
    """Every condition of a fallback rule holds for this failed attempt."""
    if when.class_ is not None and when.class_ != state.failure_class:
        return False
    if when.exit_code is not None and when.exit_code != state.exit_code:
        return False
    if when.pattern is not None:
        pattern = re.compile(when.pattern)
        return any(pattern.search(line) for line in lines)
    return True


def _attempt(job: PlannedJob, run: Run, runtime: Runtime, state: JobState, variant: PlannedFallback | None,
             pinned_env: dict[str, str], registry: ProcessRegistry) -> list[str]:
    """One attempt as number `state.attempt + 1`; returns the cleaned log lines."""
    state.attempt += 1
    state.state = State.RUNNING
    state.started = time.time()
    state.ended = state.exit_code = state.signal = state.failure_class = state.failure_line = None
    state.red_note = state.hint = state.reason = None
    state.warnings = []
    state.fallback = variant.note if variant else None
    state.host = HOSTNAME
    state.log = str(attempt_log(Path(job.log), state.attempt))
    lines: list[str] = []
    try:
        lines = _execute(job, run, runtime, state, variant, pinned_env, registry)
    except Exception as exc:  # the runner must always leave a final record behind
        state.state = State.FAILED
        state.failure_class = "runtime" if isinstance(exc, RuntimeUnavailable) else "exception"
        state.failure_line = str(exc).splitlines()[0] if isinstance(exc, RuntimeUnavailable) else \
            f"ptybatch internal error: {exc!r}"
        Path(state.log).parent.mkdir(parents=True, exist_ok=True)
        with open(state.log, "a") as log:
            log.write(f"\n[ptybatch] {job.name} could not run:\n{traceback.format_exc()}")
    state.ended = state.ended or time.time()
    state.attempts.append(Attempt(
        number=state.attempt, state=state.state, log=state.log, exit_code=state.exit_code, signal=state.signal,
        failure_class=state.failure_class, failure_line=state.failure_line, red_note=state.red_note,
        started=state.started, ended=state.ended, fallback=state.fallback,
        argv=variant.argv if variant else job.argv, params=variant.params if variant else job.params,
        reason=state.reason if state.state == State.PENDING else None))
    if state.state == State.COMPLETED and variant is not None:
        _note_resolution(state)
    run.write_state(job.slug, state)
    record_evidence(job, run.dir, state)
    return lines


def _note_resolution(state: JobState) -> None:
    """The red notes of the attempts a fallback resolved say so, and point at the attempt that passed."""
    resolving = state.attempts[-1]
    for attempt in state.attempts[:-1]:
        if attempt.red_note and Path(attempt.red_note).exists():
            text = Path(attempt.red_note).read_text().rstrip("\n")
            write_atomic(Path(attempt.red_note), text + "\n\n## Resolved by a fallback\n\n"
                         f"Attempt {resolving.number} ({resolving.fallback}) completed: log `{resolving.log}`, "
                         f"command `{' '.join(resolving.argv)}`.\n")


def job_env(job: PlannedJob, variant: PlannedFallback | None, pinned_env: dict[str, str], token: str) -> dict[str, str]:
    return build_env(os.environ, variant.env if variant else job.env, job.pass_env,
                     {**pinned_env, JOB_TOKEN_VAR: token})


def job_launch(job: PlannedJob, argv: list[str], env: dict[str, str], workdir: Path) -> Launch:
    # a job's `gpus` is what it asks of a node; GPU flags for a runtime only where GPUs exist
    return Launch(argv=argv, env=env, workdir=workdir, binds=[Path(job.report_dir), workdir, *map(Path, job.binds)],
                  gpus=job.gpus if visible_gpus() else 0)


def probe_ahead(job: PlannedJob, run: Run, runtime: Runtime, pinned_env: dict[str, str]) -> None:
    """Start the provenance probe for `job` now, beside its runtime's identity probe (two interpreter starts
    side by side cost one): the backend's first jobs start without waiting for it and take its answer once
    they have run (`_execute`); anything that goes wrong here, the job's own probe meets again and records."""
    try:
        runtime.prepare()
        provenance.start_ahead(runtime, job_launch(job, job.argv, job_env(job, None, pinned_env, new_job_token()),
                                                   run.dir))
    except Exception:  # only a head start: the job's own probe meets the failure again and records it
        pass


def _execute(job: PlannedJob, run: Run, runtime: Runtime, state: JobState, variant: PlannedFallback | None,
             pinned_env: dict[str, str], registry: ProcessRegistry) -> list[str]:
    report = ReportDir(Path(job.report_dir))
    log_path = Path(state.log or job.log)
    if state.attempt == 1:  # another run's evidence under the same names goes to history/ first
        preserve_evidence(job, run.dir, state.cache_key)
    workdir = Path(job.workdir)
    ensure_dirs(report.analysis, log_path.parent, workdir.parent)
    try:
        workdir.mkdir()
    except FileExistsError:  # a rerun starts from an empty scratch directory
        shutil.rmtree(workdir)
        workdir.mkdir()

    argv = variant.argv if variant else job.argv
    token = new_job_token()
    env = job_env(job, variant, pinned_env, token)
    # jobs with the same environment share one copy (the file's name says which job it is)
    write_linked(report.record(job.slug, "env"), json_text({"runtime": runtime.name, "env": redact(env, job.pass_env)}),
                 run.shared_records)
    launch = job_launch(job, argv, env, workdir)

    runtime.prepare()

    def record_provenance() -> None:
        """Which image / venv / interpreter, framework and CUDA build produced this job's results."""
        write_linked(report.record(job.slug, "provenance"),
                     json_text(provenance.collect_once(run.dir / "provenance", runtime, launch,
                                                       runtime_identity(runtime))), run.shared_records)

    # A probe the local scheduler started beside the backend's first jobs is collected once they have run
    # (a TensorFlow probe takes seconds, which they would wait out); otherwise before the job, so that on
    # a node the answer never waits past the end of the allocation's time.
    after = provenance.pending(runtime)
    if not after:
        record_provenance()
    timed_out = False
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(runtime.argv(launch), cwd=workdir, env=runtime.env(launch), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            log.write(f"[ptybatch] cannot start {argv[0]!r}: {exc}\n".encode())
            state.exit_code = 127
            proc = None
        if proc is not None:
            registry.add(proc)
            state.pid, state.pid_start = proc.pid, process_start_time(proc.pid)
            run.write_state(job.slug, state)
            try:
                proc.wait(timeout=job.timeout_min * 60 if job.timeout_min else None)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop_group(proc)
            finally:
                registry.remove(proc)
                end_leftovers(token, proc.pid, registry.pids())
            state.exit_code = proc.returncode if proc.returncode >= 0 else None
            state.signal = -proc.returncode if proc.returncode < 0 else None
    if after:
        record_provenance()
    # before anything reads or copies the log (the job token is ptybatch's own marker, not a secret)
    mask_file(log_path, secret_values({k: v for k, v in env.items() if k != JOB_TOKEN_VAR}, job.pass_env))
    state.ended = time.time()
    if registry.interrupted:  # whoever sees the scheduler's verdict (requeue or cancel) records it
        state.state, state.reason = State.PENDING, "interrupted by the scheduler (SIGTERM: preempted or cancelled)"
        return []
    return _conclude(job, run, runtime, state, argv, env, timed_out=timed_out or registry.timed_out,
                     cancelled=registry.cancelled or run.cancel_requested(job.slug))


def _conclude(job: PlannedJob, run: Run, runtime: Runtime, state: JobState, argv: list[str], env: dict[str, str], *,
              timed_out: bool, cancelled: bool) -> list[str]:
    ran_ok = state.exit_code == 0 and not timed_out and not cancelled
    # the log is read only when something needs it (hundreds of tiny jobs should not pay for it), in one pass
    needs_log = job.observe or not ran_ok or job.fallbacks or job.expect or job.signatures
    scan = scan_log(Path(state.log or job.log), job.observe, triage_patterns(job), TAIL_LINES, KEYWORDS) \
        if needs_log else LogScan()
    lines, metrics = scan.lines, scan.metrics
    missing = _collect_artifacts(job, state, metrics) if ran_ok else []
    unmet = check_expectations(metrics, job.expect) if ran_ok else []
    state.metrics = metrics
    if job.observe:
        run.write_series(job.slug, {"series": scan.series, "epochs": scan.epochs})
    if job.observe or job.artifacts:
        write_json(ReportDir(Path(job.report_dir)).record(job.slug, "metrics"),
                   {"job": job.name, "attempt": state.attempt, "metrics": metrics, "series": scan.series,
                    "epochs": scan.epochs})
    absent = [f"{name}: required metric never matched in the log" for name in job.observe_required
              if not observed(name, metrics)] if ran_ok else []
    verdict = classify(lines, exit_code=state.exit_code, signal=state.signal, timed_out=timed_out,
                       cancelled=cancelled, unmet=unmet, missing=missing, signatures=job.signatures, absent=absent)
    if verdict is None:
        state.state = State.COMPLETED
        state.warnings = warnings_of(lines, list(job.observe), metrics, job.signatures)
        _write_green(job, state)
        return lines
    state.state = State.CANCELLED if verdict.failure_class == "cancelled" else State.FAILED
    state.failure_class, state.failure_line = verdict.failure_class, verdict.line
    state.signature, state.hint = verdict.signature, verdict.hint
    if state.state == State.FAILED:
        write_red_note(job, state, runtime=runtime.name, argv=argv, env_names=list(env), tail=scan.tail)
    return lines


def _collect_artifacts(job: PlannedJob, state: JobState, metrics: dict[str, object]) -> list[str]:
    """Copy artifacts into analysis/, write digests; return what required ones are missing.

    The resolved source must lie inside the job's workdir (a link pointing out is refused); files are opened
    without following links, directories copied with their links as links (a digest never follows one).
    """
    missing: list[str] = []
    state.artifacts = {}
    if not job.artifacts:
        return missing
    workdir = Path(job.workdir).resolve()
    for name, artifact in job.artifacts.items():
        source = (workdir / artifact.source).resolve()
        if not source.is_relative_to(workdir):
            missing.append(f"artifact {name!r} refused: {artifact.source} is a link to {source}, outside the job's "
                           "workdir (artifacts are only ever copied from inside it)")
            continue
        is_dir = artifact.kind == "dir"
        if not (source.is_dir() if is_dir else source.is_file()):
            if artifact.required:
                missing.append(f"required artifact {name!r} not found at {artifact.source}"
                               + (" (a directory)" if is_dir else ""))
            continue
        dest = Path(artifact.dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if is_dir:
            _copy_dir(source, dest)
        else:
            try:  # O_NOFOLLOW: a file swapped for a link after it was resolved is refused, not read
                fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError as error:
                missing.append(f"artifact {name!r} refused: {artifact.source}: {error.strerror or error}")
                continue
            _copy_fd(fd, source, dest)
        algorithm = artifact.digest or "sha1"  # always recorded: downstream cache keys depend on it
        record = ArtifactRecord(name=name, path=str(dest), digest=path_digest(dest, algorithm), algorithm=algorithm)
        if artifact.digest:
            write_atomic(dest.parent / f"{name}_digest_{job.slug}.txt", f"{record.digest}  {dest.name}\n")
            metrics[f"{name}.{artifact.digest}"] = record.digest
        state.artifacts[name] = record
    return missing


def _copy_dir(source: Path, dest: Path) -> None:
    """Copy a directory artifact through a temporary directory beside `dest` (links stay links)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(source, tmp, symlinks=True)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy_fd(fd: int, source: Path, dest: Path) -> None:
    """Copy an open file to `dest` through a temporary file beside it (removed on any failure)."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with os.fdopen(fd, "rb") as reader, open(tmp, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)
        shutil.copystat(source, tmp, follow_symlinks=False)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_green(job: PlannedJob, state: JobState) -> None:
    """Passing test logs go to green/; a pass after a blocker gets a `blocker_resolved_` note."""
    report = ReportDir(Path(job.report_dir))
    state.green = []
    if job.stage == "test":
        report.green.mkdir(parents=True, exist_ok=True)
        copy = report.green / Path(state.log or job.log).name
        shutil.copy2(state.log or job.log, copy)
        state.green.append(str(copy))
    blockers = report.blocker_notes(job.slug)
    if blockers:
        report.green.mkdir(parents=True, exist_ok=True)
        resolved = report.blocker_resolved(job.slug)
        write_atomic(resolved, "\n".join([
            f"# Blocker resolved: {job.name}", "",
            f"- **Blocker note:** `{blockers[-1]}`",
            f"- **Resolved by attempt {state.attempt}**, log `{state.log}`",
            f"- **Resolved at:** {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(state.ended or time.time()))}",
            ""]))
        state.green.append(str(resolved))
