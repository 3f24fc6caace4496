"""From a validated campaign to a plan: matrix expansion, the DAG, resolved argv and paths, cache keys.

The plan is plain data (`Plan`, `PlannedJob`), frozen into the run directory and handed to an executor;
executors and the job runner never look at the campaign file again. `Plan.jobs` is a read-only mapping
(`PlanJobs`) that keeps a matrix cell as what it has of its own and builds its PlannedJob when read, so a
65,536-cell matrix plans, and a 10,000-task run's plan loads, without a full object a cell.
"""

from __future__ import annotations

import functools
import graphlib
import hashlib
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field, GetCoreSchemaHandler, TypeAdapter, ValidationError
from pydantic_core import CoreSchema, core_schema, to_json
from typing_extensions import TypedDict

from ptycho_batch.campaign.data import digest_data
from ptycho_batch.campaign.spec import (
    Artifact,
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
from ptycho_batch.util.errors import RecordError, SpecError


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


class _Matrix:
    """A matrix job's first cell and how any other cell of it is built from what that cell has of its own."""

    __slots__ = ("head", "build")

    def __init__(self, head: PlannedJob, build: Callable[[Any], PlannedJob]) -> None:
        self.head = head
        self.build = build


class _Cell(NamedTuple):
    matrix: _Matrix
    own: Any   # its matrix values (a planned cell) or its own fields as parsed (read from plan.json, typed when built)


class PlanJobs(Mapping[str, PlannedJob]):
    """The plan's jobs by name, in a topological order: a read-only mapping whose matrix cells (after each
    matrix job's first) are kept as what they have of their own and built into a PlannedJob on each access.

    Why: a 65,536-cell matrix held as 65,536 PlannedJobs took 2.3 KB a job to plan; a cell is now its
    name and its matrix values. Whoever needs a job reads it; what all cells of a job share (its base,
    backend, stage, resources...) is read from `head`, and the jobs of each campaign job from `groups`,
    without building any."""

    __slots__ = ("_entries",)

    def __init__(self, jobs: Mapping[str, PlannedJob | _Cell] | None = None) -> None:
        self._entries: dict[str, PlannedJob | _Cell] = dict(jobs or {})

    def __getitem__(self, name: str) -> PlannedJob:
        entry = self._entries[name]
        return entry.matrix.build(entry.own) if isinstance(entry, _Cell) else entry

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"PlanJobs({len(self)} jobs)"

    def head(self, name: str) -> PlannedJob:
        """The job, or for a matrix cell its job's first cell: all but its own fields (name, slug, params,
        argv, env, log, workdir, artifacts, fallbacks) are the cell's too."""
        entry = self._entries[name]
        return entry.matrix.head if isinstance(entry, _Cell) else entry

    def slug(self, name: str) -> str:
        """The job's slug (its folders' name) without building it."""
        entry = self._entries[name]
        if not isinstance(entry, _Cell):
            return entry.slug
        if isinstance(entry.own, dict):   # read from plan.json: its own slug, if it differs from the first's
            return str(entry.own.get("slug", entry.matrix.head.slug))
        return slugify(name)   # planned: as _CellBuilder names it

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Campaign job (`base`) -> its planned jobs, in plan order."""
        groups: dict[str, list[str]] = {}
        for name in self._entries:
            groups.setdefault(self.head(name).base, []).append(name)
        return {base: tuple(names) for base, names in groups.items()}

    def _add(self, name: str, entry: PlannedJob | _Cell) -> None:
        self._entries[name] = entry

    def built(self) -> PlanJobs:
        """The same jobs, each built once and kept: for a caller that reads every job several times (a
        submit decides, freezes, records and launches each), time matters more than memory."""
        return PlanJobs(dict(self.items()))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validated from (and dumped as) a dict of full PlannedJobs: `Plan(jobs={...})`, an older plan.json."""
        as_dict = handler.generate_schema(dict[str, PlannedJob])
        return core_schema.union_schema(
            [core_schema.is_instance_schema(cls), core_schema.no_info_after_validator_function(cls, as_dict)],
            serialization=core_schema.plain_serializer_function_ser_schema(dict, return_schema=as_dict))


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
    jobs: PlanJobs   # in a topological order
    notes: dict[str, Any]
    data: dict[str, str]
    data_digests: dict[str, str] = Field(default_factory=dict)
    parity: list[ParityCheck] = Field(default_factory=list)
    backends: dict[str, Backend] = Field(default_factory=dict)   # to rebuild runtimes on a cluster node


CELL_OF = "cell_of"   # plan.json: a matrix cell stored as what differs from the first cell of its job


def plan_json(plan: Plan) -> Iterator[bytes]:
    """plan.json's text, a job at a time: a matrix cell after its job's first is `{"cell_of": <first>, <the
    fields that differ>}`.

    Why: a 10,000-cell job is then one full job and 10,000 small records, written, read and validated
    several times faster than 10,000 full copies; `load_plan` expands it back to the same Plan. A job at
    a time: writing a 65,536-cell plan never holds all its cells at once."""
    rest = to_json(plan.model_dump(mode="json", exclude={"jobs"}), indent=1)
    yield rest[:-2] + b',\n "jobs": {'   # the object without its closing "\n}", "jobs" last
    heads: dict[str, tuple[PlannedJob, dict[str, Any]]] = {}   # each campaign job's first cell, dumped
    for index, (name, job) in enumerate(plan.jobs.items()):
        record = job.model_dump(mode="json")
        if job.base not in heads:
            heads[job.base] = (job, record)
        else:
            head, head_dumped = heads[job.base]
            dumped, record = record, {CELL_OF: head.name}
            for field, value in dumped.items():   # shared objects (build_plan's) are equal without encoding them
                if getattr(job, field) is not getattr(head, field) and to_json(value) != to_json(head_dumped[field]):
                    record[field] = value
        yield b",\n  "[not index:] + to_json(name) + b": " + to_json(record, indent=1).replace(b"\n", b"\n  ")
    yield b"\n }\n}"


def load_plan(text: bytes, source: str = "plan.json") -> Plan:
    """The Plan in a plan.json text, compact (`plan_json`) or one full record a job (older runs).

    A compact one's cells are kept as parsed: each is typed when it is built, on access, as a copy of its
    job's first cell with its own fields replaced (as build_plan's cells share the rest), so loading the
    plan of a 10,000-task array costs little more than parsing it. Raises ValueError (pydantic's
    ValidationError is one) for anything that is not such a plan; a cell whose own fields are damaged
    raises RecordError naming it, and `source` (the file's path: which run), when it is read."""
    if CELL_OF.encode() not in text:
        return Plan.model_validate_json(text)   # one full record a job: pydantic's JSON path is the fast one
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        return Plan.model_validate(data)   # the validation error that says what is wrong
    plan = Plan.model_validate({**data, "jobs": {}})
    heads: dict[str, _Matrix] = {}
    for name, entry in data["jobs"].items():
        if not (isinstance(entry, dict) and CELL_OF in entry):
            head = data["jobs"][name] = PlannedJob.model_validate(entry)
            heads[name] = _Matrix(head, functools.partial(_copy_with, head, source))
    checked: set[frozenset[str]] = set()
    for name, entry in data["jobs"].items():
        if isinstance(entry, dict):
            head_name = entry.pop(CELL_OF)   # what is left are the cell's own fields
            if not isinstance(head_name, str) or head_name not in heads:
                raise ValueError(f"jobs.{name}: {CELL_OF} {head_name!r} is not a job of this plan")
            if (fields := frozenset(entry)) not in checked:
                if not fields <= _PLANNED_FIELDS:
                    raise ValueError(f"jobs.{name}: unknown fields {sorted(fields - _PLANNED_FIELDS)}")
                checked.add(fields)
            data["jobs"][name] = _Cell(heads[head_name], entry)
    plan.jobs = PlanJobs(data["jobs"])
    return plan


def _copy_with(head: PlannedJob, source: str, own: dict[str, Any]) -> PlannedJob:
    """A cell read from plan.json: its own fields typed, the rest its first cell's (a shallow copy)."""
    try:
        typed = _cells_adapter(frozenset(own)).validate_python(own)
    except ValidationError as error:
        first = error.errors()[0]
        raise RecordError(f"{source}: jobs.{own.get('name')}.{'.'.join(map(str, first['loc']))}: "
                          f"{first['msg']} (a damaged run plan)") from None
    return head.model_copy(update=typed)


@functools.cache
def _cells_adapter(fields: frozenset[str]) -> TypeAdapter[Any]:
    """Types a cell that has just these PlannedJob fields of its own (a typed dict)."""
    cell = TypedDict("PlannedCell", {name: PlannedJob.model_fields[name].annotation   # type: ignore[misc]
                                     for name in sorted(fields)})
    return TypeAdapter(cell)


def slugify(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "job"


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
    jobs = PlanJobs()
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
        given: dict[str, Any] = {f"data.{k}": v for k, v in data.items()}   # what no cell changes
        for need in job.needs:
            if len(expanded[need]) == 1:
                for art_name, art in jobs[expanded[need][0]].artifacts.items():
                    given[f"jobs.{need}.artifacts.{art_name}"] = art.dest
        build = _CellBuilder(campaign, job, base, located, shared, given, declared_env, report_dir, run_dir)
        matrix: _Matrix | None = None
        for cell in itertools.product(*job.matrix.values()):
            try:
                planned = build(cell)
            except _BadPath as bad:
                problems.append(str(bad))
                broken.add(base)
                continue
            except KeyError as missing:
                problems.append(f"{located.where(('jobs', base))}: jobs.{base}: template {{{missing.args[0]}}} has no "
                                "single value here (a matrix job's artifacts cannot be named by a downstream job)")
                continue
            claim(planned.log, planned.name, "log", ("jobs", base, "log"))
            for art_name, art in planned.artifacts.items():
                claim(art.dest, planned.name, "artifact", ("jobs", base, "artifacts", art_name))
            if matrix is None:   # the first cell is kept whole, every other one as its matrix values
                matrix = _Matrix(planned, build)
                jobs._add(planned.name, planned)
            else:
                jobs._add(planned.name, _Cell(matrix, cell))
            expanded[base].append(planned.name)
        build.checked = True
    if problems:
        raise SpecError(problems)
    return Plan(
        campaign=campaign.campaign, title=campaign.title or campaign.campaign, source=str(source), out=str(out),
        summary_dir=str(out / campaign.summary_dir), run_dir=str(run_dir), policy_id=campaign.policy.id,
        required_backends=sorted(required), optional_backends=sorted(set(campaign.backends) - required),
        runtimes=runtimes, jobs=jobs, notes=campaign.notes.model_dump(), data=data, data_digests=data_digests,
        parity=[check for check in campaign.parity if all(b in expanded for b in check.between)],
        backends=campaign.backends)


class _CellBuilder:
    """Builds a matrix job's cell from its matrix values: once to check it while planning, again on each
    access (`PlanJobs`), so a cell needs to keep nothing but those values."""

    def __init__(self, campaign: Campaign, job: Job, base: str, located: LocatedYaml, shared: dict[str, Any],
                 given: dict[str, Any], declared_env: dict[str, str], report_dir: Path, run_dir: Path) -> None:
        self.job, self.base, self.located, self.shared = job, base, located, shared
        self.keys = list(job.matrix)
        self.given, self.declared_env, self.report_dir = given, declared_env, report_dir
        self.defaults = {**campaign.defaults.params, **job.params}
        self.rules = job.fallback + campaign.backends[job.backend].fallback
        self.work, self.cli, self.analysis = f"{run_dir}/work", f"{report_dir}/cli", f"{report_dir}/analysis"
        self.head: PlannedJob | None = None   # the first cell built: the others are copies of it
        self.checked = False   # set once build_plan has built (and so checked) every cell

    def __call__(self, values: tuple[Scalar, ...]) -> PlannedJob:
        """The cell's PlannedJob; raises _BadPath or KeyError (a template with no value) for a problem."""
        job, base = self.job, self.base
        cell = dict(zip(self.keys, values))
        name = _cell_name(base, cell)
        slug = slugify(name)
        params = {**self.defaults, **cell}
        workdir = f"{self.work}/{slug}"   # strings, not Paths: a slug has no "/", and this runs per access
        known: dict[str, Any] = {**params, "workdir": workdir, **self.given}

        def path(template: str, loc: tuple[Any, ...], check: Callable[[str], str] = _relative_inside) -> str:
            if self.checked:   # every cell passed while planning: a rebuild renders the same paths
                return render(template, known)
            return _rendered_path(template, known, check, self.located, ("jobs", base, *loc), name)

        def dest(art: Artifact, loc: tuple[Any, ...]) -> str:
            return f"{self.analysis}/{path(art.as_ or Path(art.path).name, loc, _plain_name)}"

        own: dict[str, Any] = dict(   # in build_plan's order of old: the first problem is the one reported
            name=name, slug=slug, argv=_argv(job.command, job.shell, known), params=params, workdir=workdir,
            log=str(self.report_dir / "cli" / path(job.log, ("log",))) if job.log else f"{self.cli}/{slug}.log",
            env={k: render(v, known) for k, v in self.declared_env.items()},
            fallbacks=[PlannedFallback(when=rule.when, note=rule.note, params={**params, **rule.params},
                                       argv=_argv(job.command, job.shell, {**known, **rule.params}),
                                       env={k: render(v, {**known, **rule.params})
                                            for k, v in {**self.declared_env, **rule.env}.items()})
                       for rule in self.rules],
            artifacts={art_name: PlannedArtifact(
                name=art_name, source=path(art.path, ("artifacts", art_name, "path")),
                dest=dest(art, ("artifacts", art_name, "as")), digest=art.digest, required=art.required,
                kind=art.kind) for art_name, art in job.artifacts.items()})
        if self.head is not None:
            return self.head.model_copy(update=own)   # shallow: the shared parts are the first cell's
        self.head = PlannedJob.model_construct(_PLANNED_FIELDS, **self.shared, **own)  # validated parts
        return self.head


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


SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})


def _argv(command: list[str] | str, shell: bool, values: dict[str, Any]) -> list[str]:
    """The job's argv; with `shell: true` every substituted value is shell-quoted (data, never code), and so
    is every value substituted into the script of a shell an argv list runs (`sh -c SCRIPT`)."""
    if not shell:
        script = _shell_script_at(command)
        return [render(arg, values, shlex.quote if index == script else str) for index, arg in enumerate(command)]
    text = command if isinstance(command, str) else " ".join(command)
    return ["/bin/sh", "-c", render(text, values, shlex.quote)]


def _shell_script_at(command: list[str] | str) -> int | None:
    """Where an argv list hands a shell its script (`sh -c S`, `bash -euc S`, `bash --norc -o pipefail -c S`,
    `env X=1 bash -c S`): that word is shell code, so a value substituted into it must stay one word of data
    (a `--set` value such as `$(rm -rf ~)` would run otherwise). None when the command runs no shell script."""
    words = list(command)
    at = 1 if words and Path(words[0]).name == "env" else 0
    while 0 < at < len(words) and ("=" in words[at] or words[at].startswith("-")):   # env's own settings
        at += 1
    if at >= len(words) or Path(words[at]).name not in SHELLS:
        return None
    at += 1
    while at < len(words) and words[at][:1] in ("-", "+"):
        if words[at] in ("-o", "+o", "-O", "+O"):   # an option that takes the next word
            at += 1
        elif not words[at].startswith("--") and "c" in words[at][1:]:
            return at + 1 if at + 1 < len(words) else None
        at += 1
    return None


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
