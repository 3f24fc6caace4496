"""Real containers: both backend images built with podman (CPU builds on the local Debian base), run
through the runtime classes; Charliecloud on an image converted from podman.

Needs `containers/setup-podman.sh` to have run (root, podman, the base image). The first build of both
images takes about 2 minutes; later runs hit podman's layer cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import ROOT, requires

from ptycho_batch.node import provenance
from ptycho_batch.runtimes import images as containers
from ptycho_batch.runtimes.base import Launch
from ptycho_batch.runtimes.charliecloud import CharliecloudRuntime
from ptycho_batch.runtimes.podman import PodmanRuntime

BASE_IMAGE = os.environ.get("PTYBATCH_BASE_IMAGE", "localhost/ptybatch-base:bookworm")
CPU_BUILD = {"BASE": BASE_IMAGE, "ACCELERATOR": "cpu", "TORCH_CPU_INDEX": ""}
CANARY = "PTYBATCH_SUBMITTER_CANARY"
FRAMEWORK_MODULE = {"torch": "torch", "tf": "tensorflow"}


def podman_ready() -> tuple[bool, str]:
    if not shutil.which("podman"):
        return False, "podman not installed (run containers/setup-podman.sh)"
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode:
        return False, f"base image {BASE_IMAGE} missing (run containers/setup-podman.sh)"
    return True, ""


@pytest.fixture(scope="session")
def images() -> dict[str, containers.BuiltImage]:
    """Both backend images, built once per session under test tags."""
    requires("podman", *podman_ready())
    return {backend: containers.build(backend, build_args=CPU_BUILD, context=ROOT,
                                      reference=f"localhost/ptybatch-test-{backend}:latest")
            for backend in containers.BACKENDS}


def listed_id(reference: str) -> str:
    """The image ID as `podman images` lists it: a second opinion on what `image inspect` says."""
    listed = subprocess.run(["podman", "images", "--no-trunc", "--format", "{{.ID}}", reference],
                            capture_output=True, text=True, check=True).stdout.split()[0]
    return "sha256:" + listed.removeprefix("sha256:")


def run_in(runtime, workdir: Path, argv: list[str], env: dict[str, str] | None = None,
           leak: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Launch through the runtime; `leak` adds variables to the launching process only, as a leaky
    submitter environment would, to prove that they do not reach the container."""
    launch = Launch(argv=argv, env={"PATH": os.environ["PATH"], **(env or {})}, workdir=workdir)
    return subprocess.run(runtime.argv(launch), env={**runtime.env(launch), **(leak or {})},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("backend,absent", [("torch", "tensorflow"), ("tf", "torch")])
def test_each_image_holds_only_its_framework(images, tmp_path, backend, absent):
    check = (f"import importlib.util as u; print(u.find_spec({FRAMEWORK_MODULE[backend]!r}) is not None,"
             f" u.find_spec({absent!r}) is not None)")
    result = run_in(PodmanRuntime(images[backend].reference), tmp_path, ["python", "-c", check])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.parametrize("backend", containers.BACKENDS)
def test_probe_and_env_firewall_inside(images, tmp_path, monkeypatch, backend):
    monkeypatch.setenv(CANARY, "from-the-submitter")
    result = run_in(PodmanRuntime(images[backend].reference), tmp_path, ["python", "-m", "ptycho_batch.node.probe"],
                    env={"PTYBATCH_JOB": "probe"}, leak={CANARY: "from-the-submitter"})
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert [f["name"] for f in record["frameworks"]] == [FRAMEWORK_MODULE[backend]]
    assert record["frameworks"][0]["version"].startswith(containers.framework_version(
        ROOT / "containers" / backend / "requirements.txt"))
    assert record["container"] == "podman"
    assert record["python"]["prefix"] == "/opt/venv"
    assert "PTYBATCH_JOB" in record["env_names"] and CANARY not in record["env_names"]


def test_provenance_pairs_the_image_id_with_the_probe(images, tmp_path):
    runtime = PodmanRuntime(images["tf"].reference)
    record = provenance.collect(runtime, Launch(argv=["true"], env={"PATH": os.environ["PATH"]}, workdir=tmp_path))
    assert record["identity"] == f"podman:{listed_id(images['tf'].reference)}"
    assert record["probe_exit_code"] == 0 and record["probe"]["frameworks"][0]["name"] == "tensorflow"


def test_job_sees_its_workdir_as_home_and_cwd_as_the_submitter_without_network(images, tmp_path):
    script = ("import os, pathlib; pathlib.Path('out').write_text(os.environ['HOME'] + ' ' + os.getcwd());"
              " print(os.getuid(), os.getgid(), os.environ['PATH'].split(':')[0],"
              " sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))")
    result = run_in(PodmanRuntime(images["torch"].reference), tmp_path, ["python", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{os.getuid()} {os.getgid()} /opt/venv/bin ['lo']"
    assert (tmp_path / "out").read_text() == f"{tmp_path} {tmp_path}"
    assert (tmp_path / "out").stat().st_uid == os.getuid()


def test_identity_is_the_image_id_and_a_rebuild_changes_only_that_backend(images):
    torch_runtime = PodmanRuntime(images["torch"].reference)
    assert torch_runtime.identity() == f"podman:{images['torch'].image_id}" == f"podman:{listed_id(images['torch'].reference)}"
    tf_before = PodmanRuntime(images["tf"].reference).identity()
    rebuilt = containers.build("torch", build_args={**CPU_BUILD, "REVISION": "test-rebuild"}, context=ROOT,
                               reference=images["torch"].reference)
    assert PodmanRuntime(rebuilt.reference).identity() == f"podman:{rebuilt.image_id}" != torch_runtime.identity()
    assert PodmanRuntime(images["tf"].reference).identity() == tf_before


def test_build_records_the_image_id_and_labels(images):
    record = json.loads(images["tf"].log.with_name(images["tf"].log.name.replace(".log", ".json")).read_text())
    assert record["image_id"] == images["tf"].image_id
    labels = json.loads(subprocess.run(["podman", "image", "inspect", "--format", "{{json .Labels}}",
                                        images["tf"].reference], capture_output=True, text=True, check=True).stdout)
    assert labels[containers.VERSION_LABEL["tf"]] == containers.framework_version(
        ROOT / "containers" / "tf" / "requirements.txt")
    assert labels["org.opencontainers.image.revision"] == containers.git_revision(ROOT)


def test_export_writes_an_oci_archive(tmp_path):
    requires("podman", *podman_ready())
    archive = containers.export(BASE_IMAGE, format="oci-archive", destination=tmp_path / "base.tar")
    with tarfile.open(archive) as tar:
        assert {"index.json", "oci-layout"} <= set(tar.getnames())


def test_build_args_parse_from_the_command_line():
    assert containers.parse_build_args(["BASE=localhost/b:1", "TORCH_CPU_INDEX=", "X=a=b"]) == {
        "BASE": "localhost/b:1", "TORCH_CPU_INDEX": "", "X": "a=b"}
    with pytest.raises(containers.ContainerError, match="NAME=VALUE"):
        containers.parse_build_args(["BASE"])


def test_sif_without_apptainer_says_so():
    if shutil.which("apptainer"):
        pytest.skip("apptainer is installed: the error path cannot be shown")
    with pytest.raises(containers.ContainerError, match="apptainer is not installed"):
        containers.sif(BASE_IMAGE)


def test_charliecloud_runs_a_converted_image_with_the_job_env_only(tmp_path_factory, monkeypatch):
    requires("podman", *podman_ready())
    requires("charliecloud", bool(shutil.which("ch-run") and shutil.which("ch-convert")),
             "apt-get install charliecloud python3-lark (containers/setup-podman.sh does)")
    image = containers.charliecloud(BASE_IMAGE, destination=tmp_path_factory.mktemp("ch") / "base.ch")
    workdir = tmp_path_factory.mktemp("job")
    monkeypatch.setenv(CANARY, "from-the-submitter")
    runtime = CharliecloudRuntime(image)
    result = run_in(runtime, workdir, ["sh", "-c", 'echo "$PTYBATCH_JOB $HOME $(pwd) ${%s:-absent}" > out; env' % CANARY],
                    env={"PTYBATCH_JOB": "ch"})
    assert result.returncode == 0, result.stderr
    assert (workdir / "out").read_text().split() == ["ch", str(workdir), str(workdir), "absent"]
    inside = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert inside["PATH"].startswith("/usr/local/sbin")  # the image's PATH, not the host's
    assert runtime.identity() == f"charliecloud:{listed_id(BASE_IMAGE)}"
