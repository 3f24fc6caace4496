"""The `apptainer` runtime: a SIF image on an HPC node, contained and with a clean environment.

`--cleanenv --containall` start the container from nothing; the job's variables go in as
`APPTAINERENV_<NAME>` in the launching process's env (values stay out of argv). HOME is the job's
workdir (`--home`, which also binds it), PATH is the image's. The identity is the SIF file's SHA-256.
"""

from __future__ import annotations

from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.runtimes.oci import find_executable, forwarded_names, mounted_paths
from ptycho_batch.util.digests import file_digest
from ptycho_batch.util.errors import RuntimeUnavailable

ENV_PREFIX = "APPTAINERENV_"


class ApptainerRuntime(Runtime):
    name = "apptainer"

    def __init__(self, image: str | Path, *, network: bool = False, executable: str | None = None) -> None:
        self.image = Path(image)
        self.network = network
        self._executable = executable
        self._identity: str | None = None

    def argv(self, launch: Launch) -> list[str]:
        workdir = str(launch.workdir)
        argv = [find_executable("apptainer", self._executable), "exec", "--cleanenv", "--containall",
                "--home", workdir, "--pwd", workdir]
        for path in mounted_paths(launch):
            if str(path) != workdir:  # --home binds the workdir already
                argv += ["-B", f"{path}:{path}"]
        if not self.network:
            argv += ["--net", "--network", "none"]
        if launch.gpus > 0:
            argv.append("--nv")
        return [*argv, str(self.image), *launch.argv]

    def env(self, launch: Launch) -> dict[str, str]:
        env = dict(launch.env)
        env.update({ENV_PREFIX + name: launch.env[name] for name in forwarded_names(launch.env)})
        return env

    def prepare(self) -> None:
        find_executable("apptainer", self._executable)
        self.identity()

    def identity(self) -> str:
        if self._identity is None:
            if not self.image.is_file():
                raise RuntimeUnavailable(f"SIF image not found: {self.image} (make it: ptybatch containers sif)")
            self._identity = f"apptainer:sha256:{file_digest(self.image, 'sha256')}"
        return self._identity
