"""Golden argv and env of every container runtime: what each one launches, exactly, GPU or not."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ptycho_batch.runtimes.apptainer import ApptainerRuntime
from ptycho_batch.runtimes.base import Launch
from ptycho_batch.runtimes.charliecloud import SOURCE_ID_FILE, CharliecloudRuntime
from ptycho_batch.runtimes.docker import DockerRuntime
from ptycho_batch.runtimes.podman import PodmanRuntime
from ptycho_batch.util.errors import RuntimeUnavailable

WORK = Path("/runs/c1/.ptybatch/work/train_torch")
DATA = Path("/data/sim")
REPORT = Path("/runs/c1/reports")
JOB_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/home/alice", "TMPDIR": "/scratch/alice", "OMP_NUM_THREADS": "2", "PTYBATCH_JOB": "train_torch"}
ARGV = ["python", "-m", "ptycho_batch.workloads.torch", "train", "--epochs", "2"]


def launch(gpus: int = 0, binds: tuple[Path, ...] = (DATA, REPORT)) -> Launch:
    return Launch(argv=list(ARGV), env=dict(JOB_ENV), workdir=WORK, binds=list(binds), gpus=gpus)


def podman(**kwargs) -> PodmanRuntime:
    return PodmanRuntime("localhost/ptybatch-torch:latest", user="1000:1000", executable="/usr/bin/podman", **kwargs)


def docker(**kwargs) -> DockerRuntime:
    return DockerRuntime("ghcr.io/lab/ptybatch-tf:abc123", user="1000:1000", executable="/usr/bin/docker", **kwargs)


OCI_COMMON = ["run", "--rm", "--init", "--pull=never", "--user", "1000:1000"]
OCI_MOUNTS = ["-v", f"{WORK}:{WORK}", "-v", f"{DATA}:{DATA}", "-v", f"{REPORT}:{REPORT}", "-w", str(WORK)]
OCI_ENV = ["--env", "OMP_NUM_THREADS", "--env", "PTYBATCH_JOB", "--env", f"HOME={WORK}"]


def test_podman_cpu_no_network():
    assert podman().argv(launch()) == [
        "/usr/bin/podman", *OCI_COMMON, "--network", "none", *OCI_MOUNTS, *OCI_ENV,
        "--http-proxy=false", "localhost/ptybatch-torch:latest", *ARGV]


def test_podman_gpu_with_network():
    assert podman(network=True).argv(launch(gpus=1)) == [
        "/usr/bin/podman", *OCI_COMMON, *OCI_MOUNTS, *OCI_ENV, "--device", "nvidia.com/gpu=all",
        "--http-proxy=false", "localhost/ptybatch-torch:latest", *ARGV]


def test_docker_cpu_no_network():
    assert docker().argv(launch()) == [
        "/usr/bin/docker", *OCI_COMMON, "--network", "none", *OCI_MOUNTS, *OCI_ENV,
        "ghcr.io/lab/ptybatch-tf:abc123", *ARGV]


def test_docker_gpu_with_network():
    assert docker(network=True).argv(launch(gpus=2)) == [
        "/usr/bin/docker", *OCI_COMMON, *OCI_MOUNTS, *OCI_ENV, "--gpus", "all",
        "ghcr.io/lab/ptybatch-tf:abc123", *ARGV]


@pytest.mark.parametrize("runtime", [podman(), docker()], ids=["podman", "docker"])
def test_oci_env_values_stay_out_of_argv_and_process_env_is_the_job_env(runtime):
    argv = runtime.argv(launch())
    assert "OMP_NUM_THREADS=2" not in argv and "PTYBATCH_JOB=train_torch" not in argv
    assert not any(arg.startswith(("PATH", "TMPDIR")) for arg in argv)  # the image's own win inside
    assert runtime.env(launch()) == JOB_ENV  # the engine reads the forwarded values from here


def test_oci_binds_deduplicated_and_workdir_only_when_no_binds():
    argv = podman().argv(launch(binds=(WORK, DATA, DATA)))
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "-v"] == [f"{WORK}:{WORK}", f"{DATA}:{DATA}"]
    argv = podman().argv(launch(binds=()))
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "-v"] == [f"{WORK}:{WORK}"]


def test_bind_path_with_separator_is_refused():
    with pytest.raises(RuntimeUnavailable, match="separators"):
        podman().argv(launch(binds=(Path("/data/a:b"),)))


def test_user_defaults_to_the_submitter():
    runtime = PodmanRuntime("img", executable="/usr/bin/podman")
    argv = runtime.argv(launch())
    assert argv[argv.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"


def apptainer(**kwargs) -> ApptainerRuntime:
    return ApptainerRuntime("/images/ptybatch-torch.sif", executable="/opt/apptainer/bin/apptainer", **kwargs)


APPTAINER_HEAD = ["/opt/apptainer/bin/apptainer", "exec", "--cleanenv", "--containall",
                  "--home", str(WORK), "--pwd", str(WORK), "-B", f"{DATA}:{DATA}", "-B", f"{REPORT}:{REPORT}"]


def test_apptainer_cpu_no_network():
    assert apptainer().argv(launch()) == [
        *APPTAINER_HEAD, "--net", "--network", "none", "/images/ptybatch-torch.sif", *ARGV]


def test_apptainer_gpu_with_network():
    assert apptainer(network=True).argv(launch(gpus=1)) == [*APPTAINER_HEAD, "--nv", "/images/ptybatch-torch.sif", *ARGV]


def test_apptainer_env_goes_through_prefixed_variables():
    assert apptainer().env(launch()) == {
        **JOB_ENV, "APPTAINERENV_OMP_NUM_THREADS": "2", "APPTAINERENV_PTYBATCH_JOB": "train_torch"}


def test_apptainer_identity_is_the_sif_digest(tmp_path):
    image = tmp_path / "t.sif"
    image.write_bytes(b"not really a SIF, but bytes to hash")
    assert ApptainerRuntime(image).identity() == f"apptainer:sha256:{hashlib.sha256(image.read_bytes()).hexdigest()}"
    with pytest.raises(RuntimeUnavailable, match="not found"):
        ApptainerRuntime(tmp_path / "missing.sif").identity()


def charliecloud(image: Path = Path("/images/ptybatch-torch.ch")) -> CharliecloudRuntime:
    return CharliecloudRuntime(image, executable="/usr/bin/ch-run")


@pytest.mark.parametrize("gpus", [0, 1])
def test_charliecloud_argv(gpus):
    assert charliecloud().argv(launch(gpus=gpus)) == [
        "/usr/bin/ch-run", "--set-env", "-b", f"{WORK}:{WORK}", "-b", f"{DATA}:{DATA}", "-b", f"{REPORT}:{REPORT}",
        "-c", str(WORK), "/images/ptybatch-torch.ch", "--", *ARGV]


def test_charliecloud_env_is_the_job_env_with_home_in_the_workdir():
    env = charliecloud().env(launch())
    assert env == {**JOB_ENV, "HOME": str(WORK), "USER": env["USER"]} and env["USER"]


def test_charliecloud_identity_is_the_source_image_id(tmp_path):
    (tmp_path / "ch").mkdir()
    (tmp_path / SOURCE_ID_FILE).write_text("sha256:abc\n")
    assert charliecloud(tmp_path).identity() == "charliecloud:sha256:abc"
    with pytest.raises(RuntimeUnavailable, match="ptybatch containers charliecloud"):
        charliecloud(tmp_path / "nothing").identity()

