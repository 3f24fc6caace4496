"""Backend images: build them (recording their ID), export them, convert them for Apptainer and Charliecloud.

`ptybatch containers build|export|sif|charliecloud` are thin wrappers over these functions. A build's
image ID is what the container runtimes put in cache keys, so rebuilding one backend's image changes
only that backend's jobs. Conversions run on the image that was built; every slow step shows a spinner
and keeps its full log in the ptybatch cache.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ptycho_batch.runtimes.charliecloud import SOURCE_ID_FILE
from ptycho_batch.runtimes.oci import find_executable, inspect_image_id
from ptycho_batch.util.errors import ContainerError
from ptycho_batch.util.paths import PACKAGE_DIR, cache_dir
from ptycho_batch.util.progress import spinner

PROJECT_ROOT = PACKAGE_DIR.parent
BACKENDS = ("torch", "tf")
ENGINES = ("podman", "docker")
EXPORT_FORMATS = ("oci-archive", "docker-archive")
COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")   # SHA-1 or SHA-256 object name
# Extra `podman build` arguments this host needs (CA bundle, pip config and local wheel stores mounted
# for RUN steps), one per line; written by containers/setup-podman.sh. Mounts are not committed to images.
HOST_BUILD_FLAGS = Path("/etc/ptybatch/build-flags")
VERSION_LABEL = {"torch": "io.ptybatch.torch.version", "tf": "io.ptybatch.tensorflow.version"}
_FRAMEWORK_PIN = re.compile(r"^(torch|tensorflow(?:-cpu)?)==([^\s;#]+)", re.MULTILINE)


@dataclass(frozen=True)
class BuiltImage:
    backend: str
    reference: str
    image_id: str
    engine: str
    seconds: float
    log: Path


def parse_build_args(values: Sequence[str]) -> dict[str, str]:
    """`["BASE=img", "ACCELERATOR=cpu"]` (repeated `--build-arg NAME=VALUE`) -> a dict; VALUE may be empty."""
    parsed = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise ContainerError(f"--build-arg wants NAME=VALUE, got {value!r}")
        parsed[name] = setting
    return parsed


def default_reference(backend: str) -> str:
    return f"localhost/ptybatch-{backend}:latest"


def images_dir() -> Path:
    path = cache_dir() / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifact_stem(reference: str) -> str:
    """`localhost/ptybatch-torch:latest` -> `ptybatch-torch-latest`: a file name for exports."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", reference.rsplit("/", 1)[-1])


def sif_path(reference: str) -> Path:
    """Where `sif(reference)` writes by default: an OCI `image:` maps to its SIF for `--runtime apptainer`."""
    return images_dir() / f"{artifact_stem(reference)}.sif"


def charliecloud_dir(reference: str) -> Path:
    """Where `charliecloud(reference)` converts to by default, for `--runtime charliecloud`."""
    return images_dir() / f"{artifact_stem(reference)}.ch"


def framework_version(requirements: Path) -> str:
    """The framework version pinned in a backend's requirements (the single source of pins)."""
    match = _FRAMEWORK_PIN.search(requirements.read_text())
    if not match:
        raise ContainerError(f"no torch/tensorflow pin in {requirements}")
    return match.group(2)


def git_revision(directory: Path) -> str:
    """The commit checked out at `directory`, "unknown" outside a git work tree. Every submit records it,
    so it is read from git's own files where they say it plainly; `git` runs only where they do not."""
    directory = directory.resolve()
    top = next((p for p in (directory, *directory.parents) if (p / ".git").exists()), None)
    if top is None:
        return "unknown"  # an installed package: no work tree, no `git` process to learn that
    try:
        found = _head_commit(top / ".git")
    except (OSError, UnicodeDecodeError):
        found = None
    if found:
        return found
    try:
        result = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True)
    except OSError:  # no git here
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _head_commit(dot_git: Path) -> str | None:
    """HEAD's commit from a `.git` directory or a worktree's `.git` file (loose ref or packed-refs); None
    for anything else (reftable, a symbolic ref to a missing branch), which `git rev-parse` answers."""
    git_dir = dot_git
    if dot_git.is_file():  # a linked worktree or a submodule: `gitdir: <path>`
        pointer = dot_git.read_text().strip()
        if not pointer.startswith("gitdir:"):
            return None
        git_dir = (dot_git.parent / pointer.removeprefix("gitdir:").strip()).resolve()
    common = git_dir / "commondir"   # a worktree's branches live in the main repository's git dir
    common_dir = (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head if COMMIT_RE.fullmatch(head) else None
    ref = head.removeprefix("ref: ")
    for base in (git_dir, common_dir):
        if (base / ref).is_file():
            value = (base / ref).read_text().strip()
            return value if COMMIT_RE.fullmatch(value) else None
    packed = common_dir / "packed-refs"
    for line in packed.read_text().splitlines() if packed.is_file() else []:
        commit, _, name = line.partition(" ")
        if name == ref and COMMIT_RE.fullmatch(commit):
            return commit
    return None


def host_build_flags(engine: str) -> list[str]:
    if engine != "podman" or not HOST_BUILD_FLAGS.is_file():
        return []
    lines = (line.strip() for line in HOST_BUILD_FLAGS.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _run_logged(argv: Sequence[str], log: Path, what: str) -> None:
    """Run one slow tool with a spinner; its output goes to `log`, whose tail is in the error."""
    with open(log, "w") as out, spinner(what):
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        code = subprocess.run(list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise ContainerError(f"{what} failed (exit {code}, log: {log}):\n{tail}")


def build(backend: str, *, engine: str = "podman", build_args: Mapping[str, str] | None = None,
          reference: str | None = None, dockerfile: Path | None = None,
          context: Path = PROJECT_ROOT) -> BuiltImage:
    """Build `Dockerfile.<backend>` and record the resulting image ID next to the build log."""
    if backend not in BACKENDS:
        raise ContainerError(f"unknown backend {backend!r}: one of {', '.join(BACKENDS)}")
    if engine not in ENGINES:
        raise ContainerError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
    reference = reference or default_reference(backend)
    dockerfile = dockerfile or context / f"Dockerfile.{backend}"
    if not dockerfile.is_file():
        raise ContainerError(f"{dockerfile} not found (builds need a source checkout)")
    args = {"REVISION": git_revision(context),
            "FRAMEWORK_VERSION": framework_version(context / "containers" / backend / "requirements.txt"),
            **(build_args or {})}
    executable = find_executable(engine, None)
    argv = [executable, "build", *host_build_flags(engine), "-f", str(dockerfile), "-t", reference]
    for name, value in args.items():
        argv += ["--build-arg", f"{name}={value}"]
    # The same labels again on the command line: buildah (podman 4.3) reuses a cached LABEL step whose
    # ARG values changed, which would leave a stale revision on an otherwise unchanged image.
    labels = {"org.opencontainers.image.revision": args["REVISION"], VERSION_LABEL[backend]: args["FRAMEWORK_VERSION"]}
    for name, value in labels.items():
        argv += ["--label", f"{name}={value}"]
    argv.append(str(context))
    log = images_dir() / f"{artifact_stem(reference)}.build.log"
    start = time.monotonic()
    _run_logged(argv, log, f"building {reference} with {engine}")
    built = BuiltImage(backend, reference, inspect_image_id(executable, reference), engine,
                       round(time.monotonic() - start, 1), log)
    record = {**asdict(built), "log": str(log), "build_args": args}
    log.with_name(f"{artifact_stem(reference)}.build.json").write_text(json.dumps(record, indent=2) + "\n")
    return built


def export(reference: str, *, format: str = "oci-archive", engine: str = "podman",
           destination: Path | None = None) -> Path:
    """Save an image as an OCI or docker archive (docker saves docker archives only)."""
    if format not in EXPORT_FORMATS:
        raise ContainerError(f"unknown format {format!r}: one of {', '.join(EXPORT_FORMATS)}")
    if engine == "docker" and format != "docker-archive":
        raise ContainerError("docker saves docker-archive only; use --format docker-archive or podman")
    destination = destination or images_dir() / f"{artifact_stem(reference)}.{format}.tar"
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    argv = [find_executable(engine, None), "save", "-o", str(partial), reference]
    if engine == "podman":
        argv[2:2] = ["--format", format]
    _run_logged(argv, destination.with_name(destination.name + ".log"), f"exporting {reference} ({format})")
    partial.replace(destination)
    return destination


def sif(reference: str, *, engine: str = "podman", destination: Path | None = None) -> Path:
    """Convert a built image into an Apptainer SIF file (needs `apptainer` on PATH)."""
    apptainer = shutil.which("apptainer")
    if not apptainer:
        raise ContainerError("apptainer is not installed here: build SIF files where it is "
                             "(the containers workflow does), or use another runtime")
    destination = destination or sif_path(reference)
    archive_format = "oci-archive" if engine == "podman" else "docker-archive"
    archive = export(reference, format=archive_format, engine=engine,
                     destination=destination.with_name(destination.name + ".src.tar"))
    try:
        _run_logged([apptainer, "build", "--force", str(destination), f"{archive_format}://{archive}"],
                    destination.with_name(destination.name + ".log"), f"building {destination.name}")
    finally:
        archive.unlink(missing_ok=True)
    return destination


def charliecloud(reference: str, *, engine: str = "podman", destination: Path | None = None) -> Path:
    """Convert a built image into a Charliecloud image directory, recording the source image ID."""
    ch_convert = shutil.which("ch-convert")
    if not ch_convert:
        raise ContainerError("ch-convert not found: install charliecloud (Debian: charliecloud python3-lark)")
    executable = find_executable(engine, None)
    image_id = inspect_image_id(executable, reference)
    destination = destination or charliecloud_dir(reference)
    if destination.exists() and not (destination / SOURCE_ID_FILE).is_file():
        raise ContainerError(f"{destination} exists and is not a converted image: not replacing it")
    partial = destination.with_name(destination.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    _run_logged([ch_convert, "-i", engine, reference, str(partial)],
                destination.with_name(destination.name + ".log"), f"converting {reference} for charliecloud")
    (partial / SOURCE_ID_FILE).write_text(image_id + "\n")
    shutil.rmtree(destination, ignore_errors=True)
    partial.rename(destination)
    return destination
