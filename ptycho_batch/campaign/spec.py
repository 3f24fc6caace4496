"""Campaign files: safe YAML loading with line numbers, the pydantic schema, and validation.

Every problem is reported as `file:line:column: key.path: what was expected, what was found`, all of
them at once, so a scientist fixes the file in one pass. Nothing here runs or writes anything.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ptycho_batch.campaign.templates import placeholders, render
from ptycho_batch.util.errors import SpecError

if TYPE_CHECKING:  # imported where a campaign file is read: readers of a run's plan.json never need it
    import yaml

Scalar = bool | int | float | str
NAME_RE = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


class Strict(BaseModel):
    # defer_build: a model's validator is built on its first use, so readers of plan.json build only the
    # few models a plan holds, not the whole campaign schema
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


def _relative_inside(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\0" in value:
        raise ValueError("must be a relative path inside its directory without '..'")
    return value


def _plain_name(value: str) -> str:
    if "/" in value or value in ("", ".", "..") or "\0" in value:
        raise ValueError(f"'as' must be a plain file name, got {value!r}")
    return value


# a path (report_dir, log, artifact) that must stay inside the directory it is relative to
InsidePath = Annotated[str, AfterValidator(_relative_inside)]
PositiveMinutes = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def _valid_regex(pattern: str, what: str = "") -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what}invalid regex {pattern!r}: {exc}") from None
    return pattern


class Policy(Strict):
    id: str = "POLICY"
    required: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)


class Notes(BaseModel):
    """Free text carried into the report; `dataset` and `next_steps` have their own sections."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    dataset: str | None = None
    next_steps: list[str] = Field(default_factory=list)


class Resources(Strict):
    """What a job asks of a cluster node (the SLURM executor maps these to sbatch options)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | Annotated[int, Field(gt=0)] | None = None
    gpus: Annotated[int, Field(ge=0)] | None = None
    cpus: Annotated[int, Field(gt=0)] | None = None
    mem_gb: Annotated[float, Field(gt=0)] | None = None
    constraint: str | None = None
    nodes: Annotated[int, Field(gt=0)] | None = None
    sbatch: dict[str, Scalar] = Field(default_factory=dict)


class FallbackWhen(Strict):
    """Which failures a fallback rule answers; every given condition must hold."""

    class_: str | None = Field(default=None, alias="class")
    pattern: str | None = None
    exit_code: int | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else _valid_regex(value)

    @model_validator(mode="after")
    def _some_condition(self) -> FallbackWhen:
        if self.class_ is None and self.pattern is None and self.exit_code is None:
            raise ValueError("'when' needs 'class', 'pattern' or 'exit_code'")
        return self


class Fallback(Strict):
    """Re-run a failed job once with these params (and env) overridden."""

    when: FallbackWhen
    params: dict[str, Scalar] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    note: str = ""


class Signature(Strict):
    """A failure signature of the campaign's own: a log regex, the class it means, a hint for the note."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    regex: str
    class_: str | None = Field(default=None, alias="class")
    hint: str | None = None
    severity: Literal["error", "warning"] = "error"   # warning: a COMPLETED job that printed it is flagged

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _valid_regex(value)

    @model_validator(mode="after")
    def _errors_have_a_class(self) -> Signature:
        if self.severity == "error" and not self.class_:
            raise ValueError("a signature of severity 'error' needs a 'class'")
        return self


class ParityCheck(Strict):
    """Metrics that two jobs (usually one per backend) must agree on."""

    name: Annotated[str, Field(pattern=NAME_RE)]
    metrics: Annotated[list[str], Field(min_length=1)]
    between: Annotated[list[str], Field(min_length=2, max_length=2)]
    rel: Annotated[float, Field(ge=0)] | None = None
    abs: Annotated[float, Field(ge=0)] | None = None
    required: bool = False

    @model_validator(mode="after")
    def _tolerance(self) -> ParityCheck:
        if self.rel is None and self.abs is None:
            raise ValueError("a parity check needs 'rel' or 'abs'")
        return self


class Backend(Strict):
    runtime: Literal["host", "venv", "python", "podman", "docker", "apptainer", "charliecloud", "auto"] = "venv"
    requirements: str | None = None
    python: str | None = None   # an existing environment's interpreter (path or name on PATH; {params} allowed)
    image: str | None = None
    dockerfile: str | None = None
    network: bool = True
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    report_dir: InsidePath | None = None
    fallback: list[Fallback] = Field(default_factory=list)

    @model_validator(mode="after")
    def _venv_needs_requirements(self) -> Backend:
        if self.python and "runtime" not in self.model_fields_set:
            self.runtime = "python"
        if self.runtime == "python" and not self.python:
            raise ValueError("runtime 'python' needs 'python' (the interpreter of an existing environment)")
        if self.runtime == "venv" and not self.requirements:
            raise ValueError("runtime 'venv' needs a 'requirements' file")
        return self


class Artifact(Strict):
    path: InsidePath
    as_: str | None = Field(default=None, alias="as")
    digest: Literal["sha1", "sha256", "md5"] | None = None
    required: bool = False
    kind: Literal["file", "dir"] = "file"   # dir: copied as a tree, digested over its files

    @field_validator("as_")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        return None if value is None else _plain_name(value)


class Expect(Strict):
    approx: float | None = None
    rel: Annotated[float, Field(ge=0)] | None = None
    abs: Annotated[float, Field(ge=0)] | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> Expect:
        if self.approx is None and self.min is None and self.max is None:
            raise ValueError("an expectation needs 'approx', 'min' or 'max'")
        if self.approx is None and (self.rel is not None or self.abs is not None):
            raise ValueError("'rel' and 'abs' only make sense with 'approx'")
        return self


class Observe(Strict):
    """An observe entry in long form: `required: true` fails a job whose log never matched."""

    pattern: str
    required: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _valid_regex(value)


class Defaults(Strict):
    params: dict[str, Scalar] = Field(default_factory=dict)
    timeout_min: PositiveMinutes | None = None
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)


class Job(Strict):
    backend: str
    stage: Literal["train", "infer", "test", "other"] = "other"
    command: list[str] | str
    shell: bool = False
    needs: list[str] = Field(default_factory=list)
    params: dict[str, Scalar] = Field(default_factory=dict)
    matrix: dict[str, Annotated[list[Scalar], Field(min_length=1)]] = Field(default_factory=dict)
    log: InsidePath | None = None
    observe: dict[str, str | Observe] = Field(default_factory=dict)
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    expect: dict[str, Expect] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    timeout_min: PositiveMinutes | None = None
    resources: Resources | None = None
    fallback: list[Fallback] = Field(default_factory=list)
    requeue: Annotated[int, Field(ge=0)] = 0  # SLURM: requeue after a timeout or preemption up to N times
    array_parallelism: Annotated[int, Field(gt=0)] | None = None  # SLURM: at most N tasks of this matrix at once

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if not value:
            raise ValueError("command must not be empty")
        return value

    @field_validator("observe")
    @classmethod
    def _regexes_compile(cls, value: dict[str, str | Observe]) -> dict[str, str | Observe]:
        for name, pattern in value.items():
            if isinstance(pattern, str):
                _valid_regex(pattern, f"observe.{name}: ")
        return value

    @model_validator(mode="after")
    def _string_needs_shell(self) -> Job:
        if isinstance(self.command, str) and not self.shell:
            raise ValueError("command is a string; write it as an argv list, or set 'shell: true'")
        return self


class Campaign(Strict):
    campaign: Annotated[str, Field(pattern=NAME_RE)]
    title: str | None = None
    out: str = "reports"
    report_dir: InsidePath | None = None
    policy: Policy = Field(default_factory=Policy)
    data: dict[str, str] = Field(default_factory=dict)
    notes: Notes = Field(default_factory=Notes)
    backends: dict[str, Backend]
    defaults: Defaults = Field(default_factory=Defaults)
    jobs: dict[str, Job]
    signatures: list[Signature] = Field(default_factory=list)
    parity: list[ParityCheck] = Field(default_factory=list)

    @field_validator("jobs")
    @classmethod
    def _job_names(cls, value: dict[str, Job]) -> dict[str, Job]:
        for name in value:
            if not re.match(NAME_RE, name):
                raise ValueError(f"job name {name!r} must match {NAME_RE}")
        if not value:
            raise ValueError("a campaign needs at least one job")
        return value

    @property
    def summary_dir(self) -> str:
        return self.report_dir or self.campaign

    def required_backends(self) -> list[str]:
        """Backends that decide success: those named required, else all that are not optional."""
        if self.policy.required:
            return list(self.policy.required)
        return [b for b in self.backends if b not in self.policy.optional]


# --------------------------------------------------------------------------------------------- errors


Loc = tuple[str | int, ...]


# Bounds on a campaign file, so a hostile or broken file is refused in well under a second.
MAX_FILE_BYTES = 4 * 1024 * 1024   # a campaign is a page or two of YAML
MAX_DEPTH = 64                     # nested mappings and lists
MAX_NODES = 200_000                # values after alias expansion (a "billion laughs" file has 10^9)
MAX_JOBS_ENV = "PTYBATCH_MAX_JOBS"
DEFAULT_MAX_JOBS = 100_000         # jobs after matrix expansion; PTYBATCH_MAX_JOBS overrides


def max_jobs() -> int:
    try:
        return max(1, int(os.environ.get(MAX_JOBS_ENV, DEFAULT_MAX_JOBS)))
    except ValueError:
        raise SpecError([f"{MAX_JOBS_ENV}={os.environ[MAX_JOBS_ENV]!r}: expected a whole number"]) from None


def _where(path: Path, mark: yaml.Mark | None) -> str:
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)


def _check_depth(path: Path, text: str) -> None:
    """Refuse deep nesting from the event stream, before the (recursive) composer sees it."""
    import yaml

    from ptycho_batch.campaign.yamlio import SAFE_LOADER

    depth = 0
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError([f"{_where(path, event.start_mark)}: nesting deeper than {MAX_DEPTH} levels "
                                 "(the limit on nested mappings and lists)"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is expanded (shared nodes counted each time)."""
    import yaml

    if id(node) not in memo:
        if isinstance(node, yaml.MappingNode):
            memo[id(node)] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            memo[id(node)] = 1 + sum(_expanded_size(item, memo) for item in node.value)
        else:
            memo[id(node)] = 1
    return memo[id(node)]


def read_text(path: Path) -> str:
    """A campaign file's text: bounded in size, UTF-8 (a bad byte is reported with its line)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SpecError([f"{path}: cannot read ({error.strerror or error})"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB (the limit on a campaign file)"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SpecError([f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
                         "save the file as UTF-8"]) from None


class LocatedYaml:
    """The parsed YAML plus the line/column of every key and value, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        import yaml

        from ptycho_batch.campaign.yamlio import SAFE_LOADER

        self.path = path
        self.value_marks: dict[Loc, yaml.Mark] = {}
        self.key_marks: dict[Loc, yaml.Mark] = {}
        self.duplicates: list[str] = []
        try:
            _check_depth(path, text)
            node = yaml.compose(text, Loader=SAFE_LOADER)
            if node is not None and (size := _expanded_size(node, {})) > MAX_NODES:
                raise SpecError([f"{path}:1:1: expands to {size:,} values through YAML aliases (the limit is "
                                 f"{MAX_NODES:,}); write the values out or use fewer aliases"])
            self.data: Any = yaml.load(text, Loader=SAFE_LOADER)  # a safe loader (C or Python)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise SpecError([f"{_where(path, mark)}: YAML syntax error: {problem}"]) from None
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        import yaml

        self.value_marks[loc] = node.start_mark
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                if key in seen:
                    self.duplicates.append(f"{self.where(loc + (key,), key=True)}: {_dotted(loc + (key,))}: "
                                           "duplicate key (the later value would silently win)")
                seen.add(key)
                self.key_marks[loc + (key,)] = key_node.start_mark
                self._walk(value_node, loc + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, loc + (index,))

    def where(self, loc: Loc, key: bool = False) -> str:
        """`file:line:col` of the deepest known prefix of `loc`."""
        marks = self.key_marks if key else self.value_marks
        for cut in range(len(loc), -1, -1):
            mark = marks.get(loc[:cut]) or self.value_marks.get(loc[:cut])
            if mark is not None:
                return f"{self.path}:{mark.line + 1}:{mark.column + 1}"
        return str(self.path)


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _known_fields(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names allowed where `loc` points (for did-you-mean), following the schema along the path."""
    current: Any = model
    parts = list(loc[:-1])
    index = 0
    while index < len(parts):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(parts[index]))
        if field is None:
            return []
        current = _model_in(field.annotation)
        if isinstance(current, tuple):  # dict[str, Model]: the next part is a free key
            current = current[1]
            index += 1
        index += 1
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel inside an annotation: `Model`, `Model | None`, or ("dict", Model) for dict[str, Model]."""
    args: tuple[Any, ...] = getattr(annotation, "__args__", ())
    origin = getattr(annotation, "__origin__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin is dict and len(args) == 2:
        inner = _model_in(args[-1])
        return ("dict", inner) if isinstance(inner, type) else None
    for arg in args:
        inner = _model_in(arg)
        if inner is not None:
            return inner
    return None


def _describe(error: dict[str, Any], located: LocatedYaml) -> str:
    loc: Loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # pydantic appends the union member tried ('list[str]', 'str') to the path: drop it
    loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("str", "int", "float", "bool"))))
    if error["type"] == "extra_forbidden":
        key = str(loc[-1])
        hint = difflib.get_close_matches(key, _known_fields(Campaign, loc), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{located.where(loc, key=True)}: {_dotted(loc)}: unknown key{suggestion}"
    message = error["msg"].removeprefix("Value error, ")
    found = error.get("input")
    shown = "" if isinstance(found, (dict, list)) or found is None else f" (found {found!r})"
    if error["type"] == "missing":
        return f"{located.where(loc[:-1])}: {_dotted(loc)}: required key is missing"
    return f"{located.where(loc)}: {_dotted(loc)}: {message}{shown}"


# --------------------------------------------------------------------------------------------- loading


def load_campaign(path: Path, overrides: dict[str, Scalar] | None = None) -> tuple[Campaign, LocatedYaml]:
    """Load, validate and cross-check a campaign file; raise SpecError with every problem found."""
    if not path.is_file():
        raise SpecError([f"{path}: campaign file not found"])
    located = LocatedYaml(path, read_text(path))
    if not isinstance(located.data, dict):
        raise SpecError([f"{path}:1:1: a campaign file must be a mapping of keys (campaign, backends, jobs, ...)"])
    problems = list(located.duplicates)
    campaign, schema_problems = _validate_all(located)
    problems += schema_problems
    if campaign is None:
        raise SpecError(problems)
    later = apply_overrides(campaign, overrides or {}) + _render_with_params(campaign, located) + \
        cross_check(campaign, located)
    removed = {name for name in _names(located.data) if name not in _names(campaign.model_dump(by_alias=True))}
    problems += [p for p in later if not any(f"{name!r}" in p for name in removed)]  # not echoes of a removal
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return campaign, located


def _names(data: Any) -> set[str]:
    """The job and backend names of campaign data."""
    if not isinstance(data, dict):
        return set()
    return {str(name) for section in ("jobs", "backends") if isinstance(data.get(section), dict)
            for name in data[section]}


REPAIR_ROUNDS = 20


def _validate_all(located: LocatedYaml) -> tuple[Campaign | None, list[str]]:
    """The campaign and every schema problem, found in one pass: each invalid key is reported, then taken out
    of a copy of the data and the rest validated again, so that problems hidden behind the first ones (a
    string command without `shell`, an unknown reference) are reported together. None when a required key
    is missing (nothing sound is left to check the rest against)."""
    data: Any = copy.deepcopy(located.data)
    problems: list[str] = []
    for _ in range(REPAIR_ROUNDS):
        try:
            campaign = Campaign.model_validate(data)
        except ValidationError as exc:
            errors: list[dict[str, Any]] = [dict(e) for e in exc.errors()]
            problems += [p for p in (_describe(e, located) for e in errors) if p not in problems]
            if not all(_remove(data, tuple(e["loc"])) for e in errors):
                return None, problems
            continue
        return campaign, problems
    return None, problems


def _remove(data: Any, loc: tuple[Any, ...]) -> bool:
    """Take the value at `loc` (or its deepest existing key) out of `data`; False when nothing can go."""
    keys = [k for k in loc if not (isinstance(k, str) and (k.startswith("function-") or "[" in k or
                                                            k in ("str", "int", "float", "bool")))]
    node = data
    for key in keys[:-1]:
        present = key in node if isinstance(node, dict) else \
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not present:
            return False
        node = node[key]
    last = keys[-1] if keys else None
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    return False


def param_names(campaign: Campaign) -> set[str]:
    """Every param a campaign defines: defaults, jobs' params and matrix axes."""
    names = set(campaign.defaults.params)
    for job in campaign.jobs.values():
        names |= set(job.params) | set(job.matrix)
    return names


def apply_overrides(campaign: Campaign, overrides: dict[str, Scalar]) -> list[str]:
    """`--set NAME=VALUE` replaces the param wherever it is defined (defaults and every job that sets it);
    a matrix axis or an unknown name is refused (exit 2), the latter with a did-you-mean."""
    problems: list[str] = []
    known = param_names(campaign)
    for name, value in overrides.items():
        axes = [job_name for job_name, job in campaign.jobs.items() if name in job.matrix]
        if axes:
            problems.append(f"--set {name}: {name!r} is a matrix axis of job {axes[0]!r}; change its values in "
                            "the campaign's matrix or select cells with --only")
            continue
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            problems.append(f"--set {name}: no param of that name in this campaign" +
                            (f"; did you mean {hint[0]!r}?" if hint else
                             f" (params: {', '.join(sorted(known)) or 'none'})"))
            continue
        if name in campaign.defaults.params:
            campaign.defaults.params[name] = value
        for job in campaign.jobs.values():
            if name in job.params:
                job.params[name] = value
    return problems


def _render_with_params(campaign: Campaign, located: LocatedYaml) -> list[str]:
    """`data:` paths and backends' `python:` may name campaign-wide params (`{data_dir}`, `{python}`)."""
    problems: list[str] = []
    params = campaign.defaults.params

    def rendered(text: str, loc: Loc) -> str:
        try:
            return render(text, params)
        except KeyError as missing:
            problems.append(f"{located.where(loc)}: {_dotted(loc)}: unknown template {{{missing.args[0]}}} (only "
                            f"defaults.params may be used here: {', '.join(sorted(params)) or 'none'})")
            return text

    for key, value in campaign.data.items():
        campaign.data[key] = rendered(value, ("data", key))
    for name, backend in campaign.backends.items():
        if backend.python:
            backend.python = rendered(backend.python, ("backends", name, "python"))
    return problems


def cross_check(campaign: Campaign, located: LocatedYaml) -> list[str]:
    """What the schema alone cannot see: references between jobs, backends, templates and the policy."""
    problems: list[str] = []
    backends = set(campaign.backends)
    for field in ("required", "optional"):
        for index, name in enumerate(getattr(campaign.policy, field)):
            if name not in backends:
                problems.append(f"{located.where(('policy', field, index))}: policy.{field}: unknown backend "
                                f"{name!r} (backends: {', '.join(sorted(backends))})")
    for name, job in campaign.jobs.items():
        base: Loc = ("jobs", name)
        if job.backend not in backends:
            hint = difflib.get_close_matches(job.backend, backends, n=1)
            problems.append(f"{located.where(base + ('backend',))}: jobs.{name}.backend: unknown backend "
                            f"{job.backend!r}" + (f"; did you mean {hint[0]!r}?" if hint else
                                                  f" (backends: {', '.join(sorted(backends))})"))
        for index, need in enumerate(job.needs):
            if need not in campaign.jobs:
                hint = difflib.get_close_matches(need, campaign.jobs, n=1)
                problems.append(f"{located.where(base + ('needs', index))}: jobs.{name}.needs: unknown job "
                                f"{need!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
        problems += _check_templates(campaign, name, job, located)
        backend = campaign.backends.get(job.backend)
        rules = job.fallback + (backend.fallback if backend else [])
        known_params = set(campaign.defaults.params) | set(job.params) | set(job.matrix)
        for rule in rules:
            for param in rule.params:
                if param not in known_params:
                    problems.append(f"{located.where(base + ('fallback',))}: jobs.{name}.fallback: param {param!r} "
                                    f"is not a param of this job (params: {', '.join(sorted(known_params)) or 'none'})")
    sizes = {name: math.prod(len(values) for values in job.matrix.values()) for name, job in campaign.jobs.items()}
    if sum(sizes.values()) > max_jobs():
        biggest = max(sizes, key=lambda name: sizes[name])
        problems.append(f"{located.where(('jobs', biggest, 'matrix'))}: jobs.{biggest}.matrix: the campaign expands to "
                        f"{sum(sizes.values()):,} jobs ({sizes[biggest]:,} from this matrix), more than the limit of "
                        f"{max_jobs():,} ({MAX_JOBS_ENV} raises it)")
    problems += _files_that_must_exist(campaign, located)
    problems += [f"{located.where(('jobs', name, 'expect', metric))}: jobs.{name}.expect.{metric}: no observe entry "
                 f"or artifact digest produces {metric!r} (it produces: {', '.join(sorted(produced)) or 'nothing'})"
                 for name, job in campaign.jobs.items() if job.expect
                 for produced in [producible_metrics(job)] for metric in job.expect if metric not in produced]
    for index, check in enumerate(campaign.parity):
        for side, job_name in enumerate(check.between):
            if job_name not in campaign.jobs:
                problems.append(f"{located.where(('parity', index, 'between', side))}: parity.{check.name}: unknown "
                                f"job {job_name!r}")
    return problems


def project_path(relative: str, base_dir: Path) -> Path:
    """Campaign paths resolve against the campaign's directory, then the project root above `jobs/`."""
    for root in (base_dir, *base_dir.parents):
        candidate = root / relative
        if candidate.exists():
            return candidate.resolve()
    return (base_dir / relative).resolve()


def _files_that_must_exist(campaign: Campaign, located: LocatedYaml) -> list[str]:
    """A backend's requirements file is read before anything runs: a missing one is invalid input."""
    base_dir = located.path.resolve().parent
    return [f"{located.where(('backends', name, 'requirements'))}: backends.{name}.requirements: file not found: "
            f"{backend.requirements} (looked in {base_dir} and the folders above it)"
            for name, backend in campaign.backends.items()
            if backend.runtime in ("venv", "auto") and backend.requirements and "{" not in backend.requirements
            and not project_path(backend.requirements, base_dir).is_file()]


def producible_metrics(job: Job) -> set[str]:
    """The metric names a job's observe entries and artifact digests can produce (as `extract_metrics` names
    them: the entry's name for a pattern without named groups or with a group of its own name, else
    `name.group`; an `epoch` group is an axis, not a metric)."""
    names = {f"{art}.{artifact.digest}" for art, artifact in job.artifacts.items() if artifact.digest}
    for name, entry in job.observe.items():
        pattern = entry if isinstance(entry, str) else entry.pattern
        groups = [g for g in re.compile(pattern).groupindex if g != "epoch" or name == "epoch"]
        names |= {name} if not groups or name in groups else set()
        names |= {f"{name}.{group}" for group in groups if group != name}
    return names


def _check_templates(campaign: Campaign, name: str, job: Job, located: LocatedYaml) -> list[str]:
    params = set(campaign.defaults.params) | set(job.params) | set(job.matrix)
    known = params | {f"data.{d}" for d in campaign.data} | {"workdir"}
    for need in job.needs:
        upstream = campaign.jobs.get(need)
        if upstream is not None:
            known |= {f"jobs.{need}.artifacts.{a}" for a in upstream.artifacts}
    fields: list[tuple[Loc, str]] = []
    command = [job.command] if isinstance(job.command, str) else job.command
    fields += [(("command", i), arg) for i, arg in enumerate(command)]
    if job.log:
        fields.append((("log",), job.log))
    for art_name, art in job.artifacts.items():
        fields.append((("artifacts", art_name, "path"), art.path))
        if art.as_:
            fields.append((("artifacts", art_name, "as"), art.as_))
    fields += [(("env", k), v) for k, v in job.env.items()]
    problems = []
    for loc, text in fields:
        for placeholder in placeholders(text):
            if placeholder not in known:
                hint = difflib.get_close_matches(placeholder, known, n=1)
                detail = ""
                if placeholder.startswith("jobs.") and placeholder.split(".")[1] not in job.needs:
                    detail = f" (job {placeholder.split('.')[1]!r} must be listed in needs)"
                problems.append(f"{located.where(('jobs', name) + loc)}: jobs.{name}.{_dotted(loc)}: unknown template "
                                f"{{{placeholder}}}{detail}" + (f"; did you mean {{{hint[0]}}}?" if hint else ""))
    return problems


def parse_overrides(pairs: list[str]) -> dict[str, Scalar]:
    """`--set PARAM=VALUE` pairs; values are YAML scalars (so `2` is an int, `true` a bool)."""
    import yaml

    result: dict[str, Scalar] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not re.match(NAME_RE, key):
            raise SpecError([f"--set {pair!r}: expected PARAM=VALUE"])
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise SpecError([f"--set {pair!r}: the value is not a YAML scalar ({problem}); "
                             "quote it, e.g. PARAM='\"text\"'"]) from None
        if not isinstance(value, (bool, int, float, str)):
            value = raw
        result[key] = value
    return result


def find_campaign(argument: str, cwd: Path | None = None) -> Path:
    """The campaign file for a CLI argument: an existing path, else `./jobs/<arg>[.yaml]`."""
    cwd = cwd or Path.cwd()
    direct = Path(argument)
    if direct.is_file():
        return direct
    jobs_dir = cwd / "jobs"
    for candidate in (jobs_dir / argument, jobs_dir / f"{argument}.yaml", jobs_dir / f"{argument}.yml"):
        if candidate.is_file():
            return candidate
    found = sorted(str(p.relative_to(jobs_dir)) for p in jobs_dir.rglob("*.y*ml")) if jobs_dir.is_dir() else []
    listing = ("campaigns in ./jobs: " + ", ".join(found)) if found else "no ./jobs directory with campaigns here"
    raise SpecError([f"{argument}: campaign file not found ({listing})"])
