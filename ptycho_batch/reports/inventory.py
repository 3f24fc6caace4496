"""The artifact inventory: what a person used to write by hand at the end of a phase, from the journal.

`<out>/<report_dir>/analysis/artifact_inventory.md`, its JSON twin and report.html (the same content as one
self-contained page): per backend, per job the command, log, status, blocker link, key observations,
artifacts with digests; parity with seed-aware verdicts, loss curves (SVG), the dataset note, the policy
decision and the next steps.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ptycho_batch.campaign.plan import Plan, PlannedJob
from ptycho_batch.journal.layout import ReportDir, attempt_log
from ptycho_batch.journal.records import JobState, State
from ptycho_batch.journal.store import Run
from ptycho_batch.node.logtail import tail_lines
from ptycho_batch.reports import inventory_html, plots
from ptycho_batch.reports.detail import detail_text
from ptycho_batch.reports.html import without_icon
from ptycho_batch.reports.inventory_html import Blocker, InventoryView, JobView, Occurrence
from ptycho_batch.reports.parity import ParityRow, evaluate_all, required_failures
from ptycho_batch.reports.stats import METHOD
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


def summary_lines(plan: Plan, states: dict[str, JobState]) -> list[str]:
    """The closing lines of a run: every failure with its class, every fallback, every failed parity check."""
    lines = [f"{s.name}: {s.state} ({detail_text(s)})" for s in states.values()
             if s.state not in (State.COMPLETED, State.PENDING, State.RUNNING) and not s.cached_from]
    lines += [f"{s.name}: COMPLETED {detail_text(s)}" for s in states.values()
              if s.state == State.COMPLETED and s.fallback and not s.cached_from]
    lines += [f"parity {row.check}: {row.metric} {row.outcome}" + (" (required)" if row.required else "")
              for row in evaluate_all(plan.parity, states, plan.jobs) if row.ok is not True]
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
    required += [f"required parity {row.check}: {row.metric} {row.outcome}"
                 for row in required_failures(evaluate_all(plan.parity, states, plan.jobs))]
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


def html_path(plan: Plan) -> Path:
    return Path(plan.summary_dir) / "analysis" / "report.html"


def write_report(plan: Plan, run: Run, states: dict[str, JobState]) -> Path:
    """Write the markdown inventory, its JSON twin and report.html; return the markdown path."""
    md_path = inventory_path(plan)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    decision = policy_decision(plan, states)
    parity = evaluate_all(plan.parity, states, plan.jobs)
    blockers = blocker_groups(plan, states)
    quality = quality_table(states)
    loss_svg, loss_axis = _loss_chart(plan, run, states)
    if loss_svg:
        write_atomic(md_path.parent / "loss_curves.svg", loss_svg)
    info = run.info()
    base = md_path.parent
    facts = [("Campaign", plan.campaign), ("Run", run.id), ("Executor", str(info.get("executor", "?"))),
             ("Campaign file", plan.source), ("Overrides", _overrides(info, "")), ("ptybatch", _version(info, "")),
             ("Generated", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))]
    lines = [f"# {plan.title}", "",
             f"- **Campaign:** `{plan.campaign}` · **Run:** `{run.id}` · **Executor:** {info.get('executor', '?')}",
             f"- **Campaign file:** `{plan.source}`",
             f"- **Overrides:** {_overrides(info)}",
             f"- **ptybatch:** {_version(info)}",
             f"- **Generated:** {facts[-1][1]}", "",
             "## Summary", "", "| Job | Backend | Stage | Status | Duration |", "|---|---|---|---|---|"]
    for name, job in plan.jobs.items():
        state = states[name]
        lines.append(f"| `{name}` | {job.backend} | {job.stage} | {status_text(state)} | {_duration(state)} |")
    for backend, role in _backend_roles(plan):
        lines += ["", f"## Backend `{backend}` ({role})"]
        for name in [n for n, j in plan.jobs.items() if j.backend == backend]:
            lines += _job_section(plan, name, states[name], base)
    lines += _blockers_section(blockers, base)
    lines += _parity_section(plan, parity, states)
    lines += _quality_section(plan, quality)
    if loss_svg:
        lines += ["", "## Training loss", "", f"![training loss per {loss_axis.split(' ')[0]}](loss_curves.svg)"]
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
    lines += ["", f"Also as one self-contained page: [report.html]({html_path(plan).name})"]
    write_atomic(md_path, "\n".join(lines) + "\n")
    write_json(md_path.with_suffix(".json"), report_data(plan, run, states, decision))
    view = InventoryView(
        title=plan.title, facts=facts, passed=decision.passed, decision=decision.text,
        backends=_backend_roles(plan), jobs=[_job_view(plan, name, states[name]) for name in plan.jobs],
        parity=[(_check_label(plan, row), row) for row in parity], forward=_forward_rows(plan, states),
        blockers=blockers, quality=quality, loss_svg=loss_svg, provenance=provenance(plan, states),
        dataset=plan.notes.get("dataset") or "(no dataset note)", data=_data_entries(plan),
        next_steps=list(plan.notes.get("next_steps") or []),
        notes={k: str(v) for k, v in plan.notes.items() if k not in ("dataset", "next_steps")})
    write_atomic(html_path(plan), inventory_html.render(view))
    return md_path


def _duration(state: JobState) -> str:
    return f"{state.duration:.1f} s" if state.duration is not None else ""


def _backend_roles(plan: Plan) -> list[tuple[str, str]]:
    return [(backend, f"{'required' if backend in plan.required_backends else 'optional'}, runtime "
                      f"{plan.runtimes.get(backend, '?')}")
            for backend in [*plan.required_backends, *plan.optional_backends]
            if any(j.backend == backend for j in plan.jobs.values())]


def _data_entries(plan: Plan) -> list[str]:
    return [f"{k}: {v}" + (f" (SHA-1 {plan.data_digests[k]})" if k in plan.data_digests else "")
            for k, v in plan.data.items()]


KIND = {State.COMPLETED: "ok", State.FAILED: "bad", State.LOST: "bad", State.CANCELLED: "warn"}


def _job_view(plan: Plan, name: str, state: JobState) -> JobView:
    job = plan.jobs[name]
    pictures = [(art, Path(record.path)) for art, record in state.artifacts.items()
                if Path(record.path).suffix.lower() in (".png", ".jpg", ".jpeg", ".svg")]
    return JobView(name, job.backend, job.stage, without_icon(status_text(state)),
                   "warn" if state.warning_text or state.fallback else KIND.get(state.state, "muted"),
                   _duration(state), detail_text(state), shlex.join(result_argv(job, state)),
                   {k: _fmt(v) for k, v in state.metrics.items()}, pictures)


PROBE_FIELDS = (("runtime", ("runtime",)), ("identity", ("identity",)), ("python", ("probe", "python", "version")),
                ("platform", ("probe", "platform", "system")), ("libc", ("probe", "platform", "libc")),
                ("container", ("probe", "container")))


def _framework_fields(framework: dict[str, Any]) -> dict[str, str]:
    xla = framework.get("xla") or {}
    return {"framework": f"{framework.get('name')} {framework.get('version')}",
            "CUDA": str(framework.get("cuda") or ("built with CUDA" if framework.get("cuda_build") else "none")),
            "cuDNN": str(framework.get("cudnn") or "none"),
            "XLA": ", ".join(f"{k}={v}" for k, v in sorted(xla.items())) or "n/a",
            "devices": ", ".join(map(str, framework.get("devices") or []))}


def provenance(plan: Plan, states: dict[str, JobState]) -> dict[str, dict[str, str]]:
    """Per backend, what ran its jobs (from its first train job's provenance record, else any job's): runtime
    identity, Python, each framework's version, CUDA/cuDNN, XLA, devices."""
    found: dict[str, dict[str, str]] = {}
    for name, job in sorted(plan.jobs.items(), key=lambda item: item[1].stage != "train"):
        if job.backend in found or states[name].state != State.COMPLETED:
            continue
        try:
            record = json.loads(ReportDir(Path(job.report_dir)).record(job.slug, "provenance").read_text())
        except (OSError, ValueError):
            continue
        fields: dict[str, str] = {}
        for label, keys in PROBE_FIELDS:
            value: object = record
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                fields[label] = str(value)
        described = [_framework_fields(f) for f in (record.get("probe") or {}).get("frameworks") or []]
        for label in dict.fromkeys(k for d in described for k in d):
            fields[label] = "; ".join(d.get(label, "?") for d in described)
        found[job.backend] = fields
    return found


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


def blocker_groups(plan: Plan, states: dict[str, JobState], tail: int = 30) -> list[Blocker]:
    """Failed attempts grouped by signature (or class and line): one blocker, N occurrences. A failure recorded
    from outside the runner (no attempt: sbatch refused it) is one occurrence per red note: a refused array's
    tasks share one note, so the array is listed once, not once a task."""
    groups: dict[tuple[str, str], list[Occurrence]] = {}
    unattempted: dict[str, list[str]] = {}   # red note -> the jobs that failed without an attempt
    for name, job in plan.jobs.items():
        state = states[name]
        if state.state == State.FAILED and not state.attempts and state.red_note:
            unattempted.setdefault(state.red_note, []).append(name)
        for attempt in state.attempts or []:
            if attempt.state != State.FAILED:
                continue
            key = (state.signature or attempt.failure_class or "?",
                   "" if state.signature else (attempt.failure_line or ""))
            log = attempt_log(Path(state.log or job.log), attempt.number)
            groups.setdefault(key, []).append(Occurrence(f"{name}#{attempt.number}", attempt.red_note,
                                                         tail_lines(log, tail)))
    for note, names in unattempted.items():
        first = states[names[0]]
        who = names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} jobs)"
        groups.setdefault((first.failure_class or "?", first.failure_line or ""), []).append(Occurrence(who, note, []))
    return [Blocker(label, line, occurrences) for (label, line), occurrences in groups.items()]


def _blockers_section(blockers: list[Blocker], base: Path) -> list[str]:
    if not blockers:
        return []
    lines = ["", "## Blockers", ""]
    for blocker in blockers:
        count = len(blocker.occurrences)
        shown = f": `{blocker.line[:200]}`" if blocker.line else ""
        lines.append(f"- **{blocker.label}** ({count} occurrence{'s' if count > 1 else ''}){shown}")
        lines += [f"  - `{o.who}`" + (f" — [{Path(o.note).name}]({_link(o.note, base)})" if o.note else "")
                  for o in blocker.occurrences]
    return lines


def _check_label(plan: Plan, row: ParityRow) -> str:
    check = next(c for c in plan.parity if c.name == row.check)
    return f"{row.check} ({' vs '.join(check.between)})"


def _side(row: ParityRow, index: int) -> str:
    summary = None if row.interval is None else row.interval.right if index else row.interval.left
    value = row.right if index else row.left
    if summary is None or summary.n < 2:
        return _fmt(value)
    return f"{summary.mean:.6g} ± {summary.sd:.3g} (n={summary.n})"


def _parity_section(plan: Plan, rows: list[ParityRow], states: dict[str, JobState]) -> list[str]:
    forward = _forward_rows(plan, states)
    if not rows and not forward:
        return []
    lines = ["", "## Parity", "", f"Sides with several runs (seeds): mean ± sd, and the 95 % interval of the "
             f"difference of means (right − left) by {METHOD}; one run per side: *single run*.", "",
             "| Check | Metric | Left | Right | Abs diff | Rel diff | Tolerance | 95 % interval | Result |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        icon = {True: "✅", False: "❌", None: "⏸️"}[row.ok]
        verdict = row.interval.text() if row.interval else "not evaluated"
        interval = row.interval.range_text() if row.interval else ""
        abs_diff = _fmt(row.diff.absolute) if row.diff else ""
        rel_diff = _fmt(row.diff.relative) if row.diff and row.diff.relative is not None else ""
        lines.append(f"| {_check_label(plan, row)} | `{row.metric}` | {_side(row, 0)} | {_side(row, 1)} | "
                     f"{abs_diff} | {rel_diff} | {row.tolerance} | {interval} | {icon} {verdict}"
                     + (" (required)" if row.required else "") + " |")
    lines += [f"| forward pass (`{job}`) | `{metric}` | | | | {value} | {'≤ ' + bound if bound else ''} | | "
              f"{'' if ok is None else '✅' if ok else '❌'} |" for job, metric, value, bound, ok in forward]
    return lines


def _forward_rows(plan: Plan, states: dict[str, JobState]) -> list[tuple[str, str, str, str, bool | None]]:
    """Jobs that compare the two frameworks' forward passes themselves report a `max_rel`: shown here too."""
    rows = []
    for name, job in plan.jobs.items():
        for metric, value in states[name].metrics.items():
            if not metric.endswith("max_rel"):
                continue
            bound = job.expect.get(metric)
            limit = bound.max if bound is not None else None
            rows.append((name, metric, _fmt(value), _fmt(limit) if limit is not None else "",
                         None if limit is None else value <= limit))
    return rows


def _overrides(info: dict[str, Any], quote: str = "`") -> str:
    overrides = info.get("overrides") or {}
    return " ".join(f"{quote}--set {k}={v}{quote}" for k, v in overrides.items()) or "none (the campaign as written)"


def _version(info: dict[str, Any], quote: str = "`") -> str:
    made_by = info.get("ptybatch") or {}
    return f"{made_by.get('version', '?')} (commit {quote}{made_by.get('commit', 'unknown')}{quote})"


QUALITY = ("psnr", "ssim")


def quality_table(states: dict[str, JobState]) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """Reconstruction quality per backend: every observed PSNR and SSIM, by metric, as (value, job)."""
    table: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for name, state in states.items():
        for metric, value in state.metrics.items():
            if metric.rsplit(".", 1)[-1].lower() in QUALITY and isinstance(value, (int, float)):
                table.setdefault(metric, {}).setdefault(state.backend, []).append((_fmt(value), name))
    return table


def _quality_section(plan: Plan, table: dict[str, dict[str, list[tuple[str, str]]]]) -> list[str]:
    if not table:
        return []
    backends = [*plan.required_backends, *plan.optional_backends]
    lines = ["", "## Reconstruction quality", "", "| Metric | " + " | ".join(backends) + " |",
             "|---|" + "---|" * len(backends)]
    for metric, by_backend in sorted(table.items()):
        cells = ["<br>".join(f"{value} (`{job}`)" for value, job in by_backend[b]) if b in by_backend else "—"
                 for b in backends]
        lines.append(f"| `{metric}` | " + " | ".join(cells) + " |")
    return lines


def _loss_chart(plan: Plan, run: Run, states: dict[str, JobState]) -> tuple[str | None, str]:
    """Loss against epoch when every curve's pattern has an `epoch` group, else against match index; the
    series come from the journal (the report dir may hold a later run's files). Torch and TF overlaid, one
    colour per backend, one line style per seed."""
    curves: dict[str, tuple[list[float], list[float]]] = {}
    groups: dict[str, str] = {}
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
        label = f"{name} ({job.backend})"
        curves[label] = ([x for x, _ in points], [y for _, y in points])
        groups[label] = job.backend
    axis = "epoch" if by_epoch else "match (one per log line that matched)"
    return plots.loss_curves(curves, f"{plan.title}: training loss", axis, groups), axis


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def report_data(plan: Plan, run: Run, states: dict[str, JobState], decision: PolicyDecision) -> dict[str, Any]:
    return {
        "campaign": plan.campaign, "title": plan.title, "run_id": run.id, "run_dir": str(run.dir),
        "executor": run.info().get("executor"), "source": plan.source,
        "policy": {"id": plan.policy_id, "required": plan.required_backends, "optional": plan.optional_backends,
                   "passed": decision.passed, "decision": decision.text},
        "jobs": [{"name": name, "backend": job.backend, "stage": job.stage, "command": result_argv(job, states[name]),
                  "status": status_text(states[name]), "params": job.params, "base": job.base,
                  **states[name].model_dump(exclude={"cache_parts"})}
                 for name, job in plan.jobs.items()],
        "parity": [{"check": r.check, "metric": r.metric, "left": r.left, "right": r.right,
                    "abs_diff": r.diff.absolute if r.diff else None, "rel_diff": r.diff.relative if r.diff else None,
                    "tolerance": r.tolerance, "ok": r.ok, "required": r.required,
                    "verdict": str(r.interval.verdict) if r.interval else None,
                    "interval": asdict(r.interval) if r.interval else None}
                   for r in evaluate_all(plan.parity, states, plan.jobs)],
        "dataset": plan.notes.get("dataset"), "data": plan.data, "data_sha1": plan.data_digests,
        "next_steps": plan.notes.get("next_steps", []),
    }
