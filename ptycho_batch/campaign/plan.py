"""From a validated campaign to a plan: matrix expansion, the DAG, resolved argv and paths, cache keys.

The plan is plain data (`Plan`, `PlannedJob`), frozen into the run directory and handed to an executor;
executors and the job runner never look at the campaign file again.
"""

from __future__ import annotations

import functools
import graphlib
import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from pydantic_core import to_json
from typing_extensions import TypedDict

from ptycho_batch.campaign.data import digest_data
from ptycho_batch.campaign.spec import (
    Backend,
    Campaign,
    Expect,
    Fallback,
    FallbackWhen,
    Job,
    LocatedYaml,
    ParityCheck,
    Resources,
    Scalar,
    Signature,
    _plain_name,
    _relative_inside,
)
from ptycho_batch.campaign.templates import placeholders, render
from ptycho_batch.util.errors import SpecError


class PlannedArtifact(BaseModel):
    name: str
    source: str          # relative to the job's workdir
    dest: str            # absolute path under <report_dir>/analysis/
    digest: str | None = None
    required: bool = False
    kind: str = "file"   # or "dir": a directory tree


class PlannedFallback(BaseModel):
    """A fallback rule with its command already resolved under the overridden params."""

    when: FallbackWhen
    note: str
    params: dict[str, Scalar]
    argv: list[str]
    env: dict[str, str]


class PlannedJob(BaseModel):
    name: str            # `sweep[seed=1]` for a matrix cell
    slug: str            # file-system safe name
    base: str            # the key in the campaign file
    backend: str
    stage: str
    runtime: str
    argv: list[str]
    params: dict[str, Scalar]
    env: dict[str, str]
    pass_env: list[str]
    needs: list[str]
    log: str             # absolute path under <report_dir>/cli/
    report_dir: str      # absolute <out>/<report_dir>
    workdir: str
    observe: dict[str, str]
    artifacts: dict[str, PlannedArtifact]
    observe_required: list[str] = Field(default_factory=list)   # observe names whose absence fails the job
    used_params: list[str] | None = None   # the params its command, env and paths name (None: all, old plans)
    data_digests: dict[str, str] = Field(default_factory=dict)   # SHA-1 of the `data:` entries it uses
    expect: dict[str, Expect]
    timeout_min: float | None
    resources: Resources
    required: bool       # its backend decides the campaign's success
    binds: list[str] = Field(default_factory=list)   # what a container must mount: data and upstream artifacts
    fallbacks: list[PlannedFallback] = Field(default_factory=list)
    signatures: list[Signature] = Field(default_factory=list)
    requeue: int = 0
    array_parallelism: int | None = None

    @property
    def gpus(self) -> int:
        return self.resources.gpus or 0


_PLANNED_FIELDS = set(PlannedJob.model_fields)   # every field is given: one set shared by every planned job


class Plan(BaseModel):
    campaign: str
    title: str
    source: str
    out: str
    summary_dir: str
    run_dir: str
    policy_id: str
    required_backends: list[str]
    optional_backends: list[str]
    runtimes: dict[str, str]
    jobs: dict[str, PlannedJob]   # in a topological order
    notes: dict[str, Any]
    data: dict[str, str]
    data_digests: dict[str, str] = Field(default_factory=dict)
    parity: list[ParityCheck] = Field(default_factory=list)
    backends: dict[str, Backend] = Field(default_factory=dict)   # to rebuild runtimes on a cluster node


CELL_OF = "cell_of"   # plan.json: a matrix cell stored as what differs from the first cell of its job


def plan_json(plan: Plan) -> bytes:
    """plan.json's text: a matrix cell after its job's first is `{"cell_of": <first>, <the fields that differ>}`.

    Why: a 10,000-cell job is then one full job and 10,000 small records, written, read and validated
    several times faster than 10,000 full copies; `load_plan` expands it back to the same Plan."""
    data = plan.model_dump(mode="json", exclude={"jobs"})
    jobs: dict[str, dict[str, Any]] = {}
    heads: dict[str, tuple[PlannedJob, dict[str, Any]]] = {}
    for name, job in plan.jobs.items():
        dumped = job.model_dump(mode="json")
        if job.base not in heads:
            heads[job.base] = (job, dumped)
            jobs[name] = dumped
            continue
        head, head_dumped = heads[job.base]
        cell: dict[str, Any] = {CELL_OF: head.name}
        for field, value in dumped.items():   # shared objects (build_plan's) are equal without encoding them
            if getattr(job, field) is not getattr(head, field) and to_json(value) != to_json(head_dumped[field]):
                cell[field] = value
        jobs[name] = cell
    return to_json({**data, "jobs": jobs}, indent=1)


def load_plan(text: bytes) -> Plan:
    """The Plan in a plan.json text, compact (`plan_json`) or one full record a job (older runs).

    A cell is a copy of its job's first cell with its own fields replaced: it shares the rest with it (as
    build_plan's cells do), and its own fields are validated together with every other cell's in one call,
    so neither time nor memory grows with what a matrix job's cells have in common. Raises ValueError
    (pydantic's ValidationError is one) for anything that is not such a plan."""
    if CELL_OF.encode() not in text:
        return Plan.model_validate_json(text)   # one full record a job: pydantic's JSON path is the fast one
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        return Plan.model_validate(data)   # the validation error that says what is wrong
    plan = Plan.model_validate({**data, "jobs": {}})
    heads: dict[str, PlannedJob] = {}
    cells: dict[frozenset[str], list[tuple[str, Any, dict[str, Any]]]] = {}   # by the fields they have
    for name, entry in data["jobs"].items():
        if isinstance(entry, dict) and CELL_OF in entry:
            head_name = entry.pop(CELL_OF)   # what is left are the cell's own fields
            cells.setdefault(frozenset(entry), []).append((name, head_name, entry))
        else:
            heads[name] = PlannedJob.model_validate(entry)
    built: dict[str, PlannedJob] = {}
    for fields, group in cells.items():
        if not fields <= _PLANNED_FIELDS:
            raise ValueError(f"jobs.{group[0][0]}: unknown fields {sorted(fields - _PLANNED_FIELDS)}")
        values = _cells_adapter(fields).validate_python([own for _, _, own in group])
        for (name, head_name, _), own in zip(group, values):
            head = heads.get(head_name) if isinstance(head_name, str) else None
            if head is None:
                raise ValueError(f"jobs.{name}: {CELL_OF} {head_name!r} is not a job of this plan")
            built[name] = head.model_copy(update=own)   # shallow: the rest is the first cell's
    plan.jobs = {name: heads.get(name) or built[name] for name in data["jobs"]}
    return plan


@functools.cache
def _cells_adapter(fields: frozenset[str]) -> TypeAdapter[list[Any]]:
    """Validates a list of cells that have just these PlannedJob fields of their own (a typed dict each)."""
    cell = TypedDict("PlannedCell", {name: PlannedJob.model_fields[name].annotation   # type: ignore[misc]
                                     for name in sorted(fields)})
    return TypeAdapter(list[cell])


def slugify(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "job"


def _matrix_cells(matrix: dict[str, list[Scalar]]) -> list[dict[str, Scalar]]:
    if not matrix:
        return [{}]
    keys = list(matrix)
    return [dict(zip(keys, values)) for values in itertools.product(*(matrix[k] for k in keys))]


def _cell_name(base: str, cell: dict[str, Scalar]) -> str:
    if not cell:
        return base
    return base + "[" + ",".join(f"{k}={v}" for k, v in cell.items()) + "]"


def topological_order(graph: dict[str, list[str]]) -> list[str]:
    """An order of `graph` (node -> its needs) with every need first; a cycle raises ValueError naming it.

    graphlib's sorter is iterative, so a chain of any length plans (a recursive walk hit Python's limit).
    """
    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = list(reversed(error.args[1]))
        raise ValueError(" -> ".join(cycle)) from None


def build_plan(campaign: Campaign, located: LocatedYaml, *, out: Path, run_dir: Path,
               runtimes: dict[str, str], only: list[str] | None = None) -> Plan:
    """Expand and resolve every job; raise SpecError for problems only visible once expanded."""
    source = located.path.resolve()
    base_dir = source.parent
    out = out.resolve()
    try:
        base_order = topological_order({name: job.needs for name, job in campaign.jobs.items()})
    except ValueError as cycle:
        first = str(cycle).split(" -> ")[0]
        raise SpecError([f"{located.where(('jobs', first, 'needs'))}: jobs.{first}.needs: dependency cycle: {cycle}"]) \
            from None
    selected = _select(campaign, only, located)
    data = {k: str((base_dir / v).resolve()) for k, v in campaign.data.items()}
    data_digests = digest_data(data, located)
    required = set(campaign.required_backends())
    expanded: dict[str, list[str]] = {}
    jobs: dict[str, PlannedJob] = {}
    problems: list[str] = []
    claimed: dict[str, str] = {}
    broken: set[str] = set()

    def claim(path: str, owner: str, what: str, loc: tuple[Any, ...]) -> None:
        if path in claimed and claimed[path] != owner:
            problems.append(f"{located.where(loc)}: {'.'.join(map(str, loc))}: {owner} and {claimed[path]} "
                            f"would both write {what} {path}; make the name unique (e.g. with a {{param}})")
        claimed.setdefault(path, owner)

    for base in base_order:
        if base not in selected:
            continue
        job = campaign.jobs[base]
        if broken.intersection(job.needs):  # its upstream is already reported: no second, confusing problem
            broken.add(base)
            continue
        backend = campaign.backends[job.backend]
        report_dir = out / (backend.report_dir or campaign.summary_dir)
        expanded[base] = []
        declared_env = {**campaign.defaults.env, **backend.env, **job.env}
        used = _names_used(job, declared_env, job.fallback + backend.fallback)
        needs = [n for need in job.needs for n in expanded[need]]
        param_names = {**campaign.defaults.params, **job.params, **dict.fromkeys(job.matrix)}
        # what every cell of this job shares is built once: a 65,536-cell matrix holds one copy, not 65,536
        shared: dict[str, Any] = dict(
            base=base, needs=needs, used_params=sorted(used & set(param_names)),
            binds=sorted({str(Path(p).parent) for p in data.values()} |
                         {str(Path(a.dest).parent) for n in needs for a in jobs[n].artifacts.values()}),
            backend=job.backend, stage=job.stage, runtime=runtimes[job.backend],
            pass_env=list(dict.fromkeys(backend.pass_env + job.pass_env)), report_dir=str(report_dir),
            observe={k: v if isinstance(v, str) else v.pattern for k, v in job.observe.items()},
            observe_required=[k for k, v in job.observe.items() if not isinstance(v, str) and v.required],
            data_digests={k: data_digests[k] for k in sorted(data) if f"data.{k}" in used},
            expect=job.expect, timeout_min=job.timeout_min or campaign.defaults.timeout_min,
            resources=job.resources or campaign.defaults.resources, required=job.backend in required,
            signatures=campaign.signatures, requeue=job.requeue, array_parallelism=job.array_parallelism)
        envs: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}   # equal rendered envs: one dict
        for cell in _matrix_cells(job.matrix):
            name = _cell_name(base, cell)
            slug = slugify(name)
            params = {**campaign.defaults.params, **job.params, **cell}
            workdir = run_dir / "work" / slug
            values: dict[str, Any] = {**params, "workdir": workdir}
            values |= {f"data.{k}": v for k, v in data.items()}
            for need in job.needs:
                upstream_cells = expanded[need]
                if len(upstream_cells) == 1:
                    for art_name, art in jobs[upstream_cells[0]].artifacts.items():
                        values[f"jobs.{need}.artifacts.{art_name}"] = art.dest
            def path(template: str, loc: tuple[Any, ...], check: Callable[[str], str] = _relative_inside,
                     values: dict[str, Any] = values, name: str = name, base: str = base) -> str:
                return _rendered_path(template, values, check, located, ("jobs", base, *loc), name)

            try:
                argv = _argv(job.command, job.shell, values)
                log_name = path(job.log, ("log",)) if job.log else f"{slug}.log"
                env = {k: render(v, values) for k, v in declared_env.items()}
                fallbacks = [
                    PlannedFallback(when=rule.when, note=rule.note, params={**params, **rule.params},
                                    argv=_argv(job.command, job.shell, {**values, **rule.params}),
                                    env={k: render(v, {**values, **rule.params})
                                         for k, v in {**declared_env, **rule.env}.items()})
                    for rule in job.fallback + backend.fallback]
                artifacts = {
                    art_name: PlannedArtifact(
                        name=art_name, source=path(art.path, ("artifacts", art_name, "path")),
                        dest=str(report_dir / "analysis" / path(art.as_ or Path(art.path).name,
                                                                ("artifacts", art_name, "as"), _plain_name)),
                        digest=art.digest, required=art.required, kind=art.kind)
                    for art_name, art in job.artifacts.items()}
            except _BadPath as bad:
                problems.append(str(bad))
                broken.add(base)
                continue
            except KeyError as missing:
                problems.append(f"{located.where(('jobs', base))}: jobs.{base}: template {{{missing.args[0]}}} has no "
                                "single value here (a matrix job's artifacts cannot be named by a downstream job)")
                continue
            log_path = str(report_dir / "cli" / log_name)
            claim(log_path, name, "log", ("jobs", base, "log"))
            for art_name, art in artifacts.items():
                claim(art.dest, name, "artifact", ("jobs", base, "artifacts", art_name))
            jobs[name] = PlannedJob.model_construct(  # built from validated parts: no second validation
                _PLANNED_FIELDS, **shared, name=name, slug=slug, argv=argv, params=params,
                env=envs.setdefault(tuple(env.items()), env), log=log_path, workdir=str(workdir), artifacts=artifacts,
                fallbacks=fallbacks)
            expanded[base].append(name)
    if problems:
        raise SpecError(problems)
    return Plan(
        campaign=campaign.campaign, title=campaign.title or campaign.campaign, source=str(source), out=str(out),
        summary_dir=str(out / campaign.summary_dir), run_dir=str(run_dir), policy_id=campaign.policy.id,
        required_backends=sorted(required), optional_backends=sorted(set(campaign.backends) - required),
        runtimes=runtimes, jobs=jobs, notes=campaign.notes.model_dump(), data=data, data_digests=data_digests,
        parity=[check for check in campaign.parity if all(b in expanded for b in check.between)],
        backends=campaign.backends)


def _names_used(job: Job, env: dict[str, str], rules: list[Fallback]) -> set[str]:
    """The template names a job's command, log, env and artifact paths use (its cache key's params)."""
    texts = [job.command] if isinstance(job.command, str) else list(job.command)
    texts += [job.log or "", *env.values()]
    texts += [t for art in job.artifacts.values() for t in (art.path, art.as_ or "")]
    for rule in rules:
        texts += list(rule.env.values())
    return {name for text in texts for name in placeholders(text)} | {name for rule in rules for name in rule.params}


class _BadPath(Exception):
    """A templated path that leaves its directory once rendered (one problem line)."""


def _rendered_path(template: str, values: dict[str, Any], check: Callable[[str], str], located: LocatedYaml,
                   loc: tuple[Any, ...], name: str) -> str:
    """A path rendered from a template, checked after rendering (a param value must not escape)."""
    rendered = render(template, values)
    try:
        return check(rendered)
    except ValueError as error:
        raise _BadPath(f"{located.where(loc)}: {'.'.join(map(str, loc))}: {error} "
                       f"(rendered as {rendered!r} for {name})") from None


def _argv(command: list[str] | str, shell: bool, values: dict[str, Any]) -> list[str]:
    """The job's argv; with `shell: true` every substituted value is shell-quoted (data, never code)."""
    if not shell:
        return [render(arg, values) for arg in command]
    text = command if isinstance(command, str) else " ".join(command)
    return ["/bin/sh", "-c", render(text, values, shlex.quote)]


def _select(campaign: Campaign, only: list[str] | None, located: LocatedYaml) -> set[str]:
    """`--only JOB|BACKEND`: those jobs and everything upstream of them."""
    if not only:
        return set(campaign.jobs)
    wanted: set[str] = set()
    for token in only:
        matches = {n for n, j in campaign.jobs.items() if n == token or j.backend == token}
        if not matches:
            raise SpecError([f"--only {token}: no job or backend of that name in {located.path} "
                             f"(jobs: {', '.join(campaign.jobs)}; backends: {', '.join(campaign.backends)})"])
        wanted |= matches
    closure: set[str] = set()
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name not in closure:
            closure.add(name)
            pending.extend(campaign.jobs[name].needs)
    return closure


# ------------------------------------------------------------------------------------------ cache keys


def cache_parts(job: PlannedJob, runtime_identity: str, upstream_digests: dict[str, str]) -> dict[str, str]:
    """What a job's outputs depend on, each part hashed separately so a rerun can say which changed."""
    workdir_free = [arg.replace(job.workdir, "{workdir}") for arg in job.argv]

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]

    return {
        "argv": digest(workdir_free),
        "env": digest(job.env),
        "params": digest(job.params if job.used_params is None else {k: job.params[k] for k in job.used_params}),
        "runtime": runtime_identity,
        "upstream": digest(upstream_digests),
        "checks": digest([job.observe, {k: v.model_dump() for k, v in job.expect.items()},
                          {k: v.model_dump() for k, v in job.artifacts.items()}]
                         + ([job.observe_required] if job.observe_required else [])),
    } | ({"data": digest(job.data_digests)} if job.data_digests else {})   # absent: keys of data-free jobs stay


def cache_key(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def why_rerun(parts: dict[str, str], previous: dict[str, str]) -> str:
    changed = [name for name in {**parts, **previous} if parts.get(name) != previous.get(name)]
    labels = {"argv": "command changed", "env": "environment changed", "params": "params changed",
              "runtime": f"runtime changed ({previous.get('runtime', '?')} -> {parts.get('runtime')})",
              "upstream": "upstream artifacts changed", "data": "data changed",
              "checks": "observe/expect/artifact rules changed"}
    return ", ".join(labels.get(c, f"{c} changed") for c in changed) or "no change"
