"""The artifact inventory: what a person used to write by hand at the end of a phase, from the journal.

`<out>/<report_dir>/analysis/artifact_inventory.md` and its JSON twin: per backend, per job the command,
log, status, blocker link, key observations, artifacts with digests; the dataset note, the policy
decision and the next steps.
"""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.journal.layout import ReportDir
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run
from ptycho_batch.reports import plots
from ptycho_batch.reports.parity import evaluate_all, required_failures
from ptycho_batch.util.fsio import write_atomic, write_json

STATUS_ICON = {State.COMPLETED: "✅", State.FAILED: "❌", State.SKIPPED: "⏭️", State.CANCELLED: "🚫", State.LOST: "❓",
               State.RUNNING: "⏳", State.PENDING: "⏸️"}
DIGEST_LABEL = {"sha1": "SHA-1", "sha256": "SHA-256", "md5": "MD5"}


@dataclass(frozen=True)
class PolicyDecision:
    passed: bool
    text: str


def status_text(state: JobState) -> str:
    icon = STATUS_ICON.get(state.state, "")
    if state.state == State.FAILED:
        return f"{icon} FAILED ({state.failure_class})"
    if state.state in (State.SKIPPED, State.CANCELLED) and state.reason:
        return f"{icon} {state.state} ({state.reason})"
    if state.warning_text:
        return f"⚠️ {state.state} ({state.warning_text})"
    if state.state == State.COMPLETED and state.fallback:
        return f"{icon} COMPLETED via fallback ({state.fallback})"
    if state.state == State.COMPLETED and state.cached_from:
        return f"{icon} COMPLETED (cached from run {state.cached_from})"
    return f"{icon} {state.state}"


def detail_text(state: JobState) -> str:
    """What a person needs beside the state: the failure and its line, the fallback that resolved one, or why."""
    if state.failure_class:
        return f"{state.failure_class}: {state.failure_line or ''}"
    if state.warning_text:
        return state.warning_text
    if state.fallback:
        failed = [a for a in state.attempts if a.state == State.FAILED]
        cause = f" after attempt {failed[-1].number} failed ({failed[-1].failure_class})" if failed else ""
        return f"via fallback: {state.fallback}{cause}"
    return state.reason or ""


def summary_lines(plan: Plan, states: dict[str, JobState]) -> list[str]:
    """The closing lines of a run: every failure with its class, every fallback, every failed parity check."""
    lines = [f"{s.name}: {s.state} ({detail_text(s)})" for s in states.values()
             if s.state not in (State.COMPLETED, State.PENDING, State.RUNNING) and not s.cached_from]
    lines += [f"{s.name}: COMPLETED {detail_text(s)}" for s in states.values()
              if s.state == State.COMPLETED and s.fallback and not s.cached_from]
    lines += [f"parity {row.check}: {row.metric} {'out of tolerance' if row.ok is False else 'not evaluated'}"
              + (" (required)" if row.required else "")
              for row in evaluate_all(plan.parity, states) if row.ok is not True]
    return lines


POLICY_LISTS_AT_MOST = 6  # jobs named in a verdict; the job tables list them all


def _listed(problems: list[str]) -> str:
    """`a; b; c`, or the first few and how many more: a 10,000-job verdict stays one readable line."""
    shown = "; ".join(problems[:POLICY_LISTS_AT_MOST])
    more = len(problems) - POLICY_LISTS_AT_MOST
    return shown + (f"; and {more} more" if more > 0 else "")


def policy_decision(plan: Plan, states: dict[str, JobState]) -> PolicyDecision:
    """Required backends decide; optional failures are reported, never fatal."""

    def problems(backends: list[str]) -> list[str]:
        return [f"{s.name} {s.state}" + (f" ({s.failure_class})" if s.failure_class else "")
                for s in states.values() if s.backend in backends and s.state != State.COMPLETED]

    required, optional = problems(plan.required_backends), problems(plan.optional_backends)
    required += [f"required parity {row.check}: {row.metric} "
                 f"{'out of tolerance' if row.ok is False else 'not evaluated'}"
                 for row in required_failures(evaluate_all(plan.parity, states))]
    req = "[" + ", ".join(plan.required_backends) + "]"
    if required:
        return PolicyDecision(False, f"{plan.policy_id}: required backends {req} did not pass "
                                     f"({_listed(required)}); phase blocked.")
    if not optional:
        every = req + "".join(f" + {b}" for b in plan.optional_backends)
        return PolicyDecision(True, f"{plan.policy_id}: all backends passed {every}; proceeding with full evidence.")
    deferred = sorted({s.backend for s in states.values()
                       if s.backend in plan.optional_backends and s.state != State.COMPLETED})
    evidence = "+".join(plan.required_backends)
    return PolicyDecision(True, f"{plan.policy_id}: required backends {req} passed; proceeding with {evidence}-only "
                                f"evidence; {', '.join(deferred)} deferred ({_listed(optional)}).")


def _link(target: str, base: Path) -> str:
    return os.path.relpath(target, base)


def inventory_path(plan: Plan) -> Path:
    return Path(plan.summary_dir) / "analysis" / "artifact_inventory.md"


def write_report(plan: Plan, run: Run, states: dict[str, JobState]) -> Path:
    """Write the markdown inventory and its JSON twin; return the markdown path."""
    md_path = inventory_path(plan)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    decision = policy_decision(plan, states)
    info = run.info()
    base = md_path.parent
    lines = [f"# {plan.title}", "",
             f"- **Campaign:** `{plan.campaign}` · **Run:** `{run.id}` · **Executor:** {info.get('executor', '?')}",
             f"- **Campaign file:** `{plan.source}`",
             f"- **Overrides:** {_overrides(info)}",
             f"- **ptybatch:** {_version(info)}",
             f"- **Generated:** {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}", "",
             "## Summary", "", "| Job | Backend | Stage | Status | Duration |", "|---|---|---|---|---|"]
    for name, job in plan.jobs.items():
        state = states[name]
        duration = f"{state.duration:.1f} s" if state.duration is not None else ""
        lines.append(f"| `{name}` | {job.backend} | {job.stage} | {status_text(state)} | {duration} |")
    for backend in [*plan.required_backends, *plan.optional_backends]:
        names = [n for n, j in plan.jobs.items() if j.backend == backend]
        if not names:
            continue
        role = "required" if backend in plan.required_backends else "optional"
        lines += ["", f"## Backend `{backend}` ({role}, runtime {plan.runtimes.get(backend, '?')})"]
        for name in names:
            lines += _job_section(plan, name, states[name], base)
    lines += _blockers_section(plan, states, base)
    lines += _parity_section(plan, states)
    lines += _quality_section(plan, states)
    lines += _loss_section(plan, run, states, base)
    notes = dict(plan.notes)
    lines += ["", "## Dataset", "", notes.pop("dataset", None) or "(no dataset note)"]
    if plan.data:
        lines += [""] + [f"- `{k}`: `{v}`" + (f" (SHA-1 `{plan.data_digests[k]}`)" if k in plan.data_digests else "")
                         for k, v in plan.data.items()]
    lines += ["", "## Policy decision", "", decision.text]
    next_steps = notes.pop("next_steps", []) or []
    lines += ["", "## Next steps", ""] + ([f"- {s}" for s in next_steps] or ["(none recorded)"])
    for key, value in notes.items():
        lines += ["", f"## {key.replace('_', ' ').capitalize()}", "", str(value)]
    write_atomic(md_path, "\n".join(lines) + "\n")
    write_json(md_path.with_suffix(".json"), report_data(plan, run, states, decision))
    return md_path


def _job_section(plan: Plan, name: str, state: JobState, base: Path) -> list[str]:
    job = plan.jobs[name]
    lines = ["", f"### `{name}` ({job.stage})", "",
             f"- **Command:** `{shlex.join(result_argv(job, state))}`",
             f"- **Log:** [`{_link(state.log or job.log, base)}`]({_link(state.log or job.log, base)})",
             f"- **Status:** {status_text(state)}"]
    if state.failure_line:
        lines.append(f"- **Failure:** `{state.failure_line[:300]}`")
    notes = [a.red_note for a in state.attempts if a.red_note] or ([state.red_note] if state.red_note else [])
    for note in notes:
        lines.append(f"- **Blocker:** [{Path(note).name}]({_link(note, base)})")
    for green in state.green:
        lines.append(f"- **Evidence:** [{Path(green).name}]({_link(green, base)})")
    records = [(kind, ReportDir(Path(job.report_dir)).record(job.slug, kind)) for kind in ("provenance", "env")]
    shown = [f"[{kind}]({_link(str(path), base)})" for kind, path in records if path.exists()]
    if shown:
        lines.append("- **Records:** " + " · ".join(shown))
    if len(state.attempts) > 1:
        lines.append("- **Attempts:**")
        lines += [f"  - #{a.number} {a.state}" + (f" ({a.failure_class or a.reason})" if a.failure_class or a.reason
                                                   else "") + (f", fallback: {a.fallback}" if a.fallback else "")
                  + (f": `{shlex.join(a.argv)}`" if a.argv else "") for a in state.attempts]
    if state.metrics:
        lines.append("- **Key Observations:**")
        lines += [f"  - `{k}` = {_fmt(v)}" for k, v in state.metrics.items()]
    if state.artifacts:
        lines.append("- **Artifacts:**")
        for art_name, record in state.artifacts.items():
            declared = job.artifacts[art_name].digest if art_name in job.artifacts else None
            digest = f" — {DIGEST_LABEL[declared]} `{record.digest}`" if declared and record.digest else ""
            link = _link(record.path, base)
            lines.append(f"  - {art_name}: [`{link}`]({link}){digest}")
            if record.path.endswith(".png"):
                lines.append(f"\n    ![{art_name}]({link})\n")
    return lines


def result_argv(job: PlannedJob, state: JobState) -> list[str]:
    """The command that produced the job's result: its last attempt's (a fallback's), else the planned one."""
    last = state.last_attempt
    return last.argv if last is not None and last.argv else job.argv


def _blockers_section(plan: Plan, states: dict[str, JobState], base: Path) -> list[str]:
    """Failed attempts grouped by signature (or class and line): one blocker, N occurrences."""
    groups: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    for name in plan.jobs:
        state = states[name]
        attempts = state.attempts or []
        for attempt in attempts:
            if attempt.state != State.FAILED:
                continue
            key = (state.signature or attempt.failure_class or "?",
                   "" if state.signature else (attempt.failure_line or ""))
            groups.setdefault(key, []).append((f"{name}#{attempt.number}", attempt.red_note))
    if not groups:
        return []
    lines = ["", "## Blockers", ""]
    for (label, line), occurrences in groups.items():
        shown = f": `{line[:200]}`" if line else ""
        lines.append(f"- **{label}** ({len(occurrences)} occurrence{'s' if len(occurrences) > 1 else ''}){shown}")
        lines += [f"  - `{who}`" + (f" — [{Path(note).name}]({_link(note, base)})" if note else "")
                  for who, note in occurrences]
    return lines


def _parity_section(plan: Plan, states: dict[str, JobState]) -> list[str]:
    rows = evaluate_all(plan.parity, states)
    if not rows and not _forward_parity_rows(plan, states):
        return []
    lines = ["", "## Parity", "", "| Check | Metric | Left | Right | Abs diff | Rel diff | Tolerance | Result |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        check = next(c for c in plan.parity if c.name == row.check)
        result = {True: "✅", False: "❌", None: "⏸️ not evaluated"}[row.ok] + (" (required)" if row.required else "")
        abs_diff = _fmt(row.diff.absolute) if row.diff else ""
        rel_diff = _fmt(row.diff.relative) if row.diff and row.diff.relative is not None else ""
        lines.append(f"| {row.check} ({' vs '.join(check.between)}) | `{row.metric}` | {_fmt(row.left)} | "
                     f"{_fmt(row.right)} | {abs_diff} | {rel_diff} | {row.tolerance} | {result} |")
    return lines + _forward_parity_rows(plan, states)


def _forward_parity_rows(plan: Plan, states: dict[str, JobState]) -> list[str]:
    """Jobs that compare the two frameworks' forward passes themselves report a `max_rel`: shown here too."""
    lines = []
    for name, job in plan.jobs.items():
        for metric, value in states[name].metrics.items():
            if not metric.endswith("max_rel"):
                continue
            bound = job.expect.get(metric)
            limit = bound.max if bound is not None else None
            ok = "" if limit is None else ("✅" if value <= limit else "❌")
            lines.append(f"| forward pass (`{name}`) | `{metric}` | | | | {_fmt(value)} | "
                         f"{'≤ ' + _fmt(limit) if limit is not None else ''} | {ok} |")
    return lines


def _overrides(info: dict[str, Any]) -> str:
    overrides = info.get("overrides") or {}
    return " ".join(f"`--set {k}={v}`" for k, v in overrides.items()) or "none (the campaign as written)"


def _version(info: dict[str, Any]) -> str:
    made_by = info.get("ptybatch") or {}
    return f"{made_by.get('version', '?')} (commit `{made_by.get('commit', 'unknown')}`)"


QUALITY = ("psnr", "ssim")


def _quality_section(plan: Plan, states: dict[str, JobState]) -> list[str]:
    """Reconstruction quality side by side per backend: every observed PSNR and SSIM, by metric."""
    backends = [*plan.required_backends, *plan.optional_backends]
    table: dict[str, dict[str, list[str]]] = {}
    for name, state in states.items():
        for metric, value in state.metrics.items():
            if metric.rsplit(".", 1)[-1].lower() in QUALITY and isinstance(value, (int, float)):
                table.setdefault(metric, {}).setdefault(state.backend, []).append(f"{_fmt(value)} (`{name}`)")
    if not table:
        return []
    lines = ["", "## Reconstruction quality", "", "| Metric | " + " | ".join(backends) + " |",
             "|---|" + "---|" * len(backends)]
    for metric, by_backend in sorted(table.items()):
        lines.append(f"| `{metric}` | " + " | ".join("<br>".join(by_backend.get(b, ["—"])) for b in backends) + " |")
    return lines


def _loss_section(plan: Plan, run: Run, states: dict[str, JobState], base: Path) -> list[str]:
    """Loss against epoch when every curve's pattern has an `epoch` group, else against match index; the
    series come from the journal (the report dir may hold a later run's files)."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    by_epoch = True
    for name, job in plan.jobs.items():
        if job.stage != "train" or states[name].state != State.COMPLETED:
            continue
        recorded = run.read_series(job.slug, states[name])
        series, epochs_of = recorded.get("series", {}), recorded.get("epochs", {})
        key = next((k for k in series if k == "loss" or k.endswith(".loss")), None)
        if key is None:
            continue
        epochs = epochs_of.get(key)
        by_epoch = by_epoch and epochs is not None
        points = [(x, y) for x, y in zip(epochs or range(1, len(series[key]) + 1), series[key])
                  if isinstance(y, float) and isinstance(x, (int, float))]
        curves[f"{name} ({job.backend})"] = ([x for x, _ in points], [y for _, y in points])
    axis = "epoch" if by_epoch else "match (one per log line that matched)"
    drawn = plots.loss_curves(curves, base / "loss_curves.png", f"{plan.title}: training loss", axis)
    if drawn is None:
        return []
    return ["", "## Training loss", "", f"![training loss per {axis.split(' ')[0]}]({_link(str(drawn), base)})"]


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def report_data(plan: Plan, run: Run, states: dict[str, JobState], decision: PolicyDecision) -> dict[str, Any]:
    return {
        "campaign": plan.campaign, "title": plan.title, "run_id": run.id, "run_dir": str(run.dir),
        "executor": run.info().get("executor"), "source": plan.source,
        "policy": {"id": plan.policy_id, "required": plan.required_backends, "optional": plan.optional_backends,
                   "passed": decision.passed, "decision": decision.text},
        "jobs": [{"name": name, "backend": job.backend, "stage": job.stage, "command": result_argv(job, states[name]),
                  "status": status_text(states[name]), "params": job.params,
                  **states[name].model_dump(exclude={"cache_parts"})}
                 for name, job in plan.jobs.items()],
        "parity": [{"check": r.check, "metric": r.metric, "left": r.left, "right": r.right,
                    "abs_diff": r.diff.absolute if r.diff else None, "rel_diff": r.diff.relative if r.diff else None,
                    "tolerance": r.tolerance, "ok": r.ok, "required": r.required}
                   for r in evaluate_all(plan.parity, states)],
        "dataset": plan.notes.get("dataset"), "data": plan.data, "data_sha1": plan.data_digests,
        "next_steps": plan.notes.get("next_steps", []),
    }
