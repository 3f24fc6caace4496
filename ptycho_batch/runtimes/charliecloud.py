"""The `charliecloud` runtime: `ch-run` on an image directory made by `ch-convert` from a podman image.

ch-run starts from its own process env, which this runtime sets explicitly to the job's firewalled env
(plus HOME = the workdir and USER, which ch-run requires), then overlays the image's ENV
(`--set-env`, i.e. /ch/environment: PATH with the venv first). Nothing else reaches the container.
Charliecloud has no network namespace (the host's network is shared) and sees GPUs only when the
host's driver libraries were injected into the image with `ch-fromhost --nvidia`. Bind targets must
exist in the image unless the caller can write to the image directory.
The identity is the ID of the OCI image the directory was converted from, recorded by
`ptybatch containers charliecloud` in `ch/ptybatch-image-id`.
"""

from __future__ import annotations

import getpass
from pathlib import Path

from ptycho_batch.runtimes.base import Launch, Runtime
from ptycho_batch.runtimes.oci import find_executable, mounted_paths
from ptycho_batch.util.errors import RuntimeUnavailable

SOURCE_ID_FILE = Path("ch") / "ptybatch-image-id"


class CharliecloudRuntime(Runtime):
    name = "charliecloud"

    def __init__(self, image: str | Path, *, executable: str | None = None) -> None:
        self.image = Path(image)
        self._executable = executable

    def argv(self, launch: Launch) -> list[str]:
        argv = [find_executable("ch-run", self._executable), "--set-env"]
        for path in mounted_paths(launch):
            argv += ["-b", f"{path}:{path}"]
        return [*argv, "-c", str(launch.workdir), str(self.image), "--", *launch.argv]

    def env(self, launch: Launch) -> dict[str, str]:
        env = dict(launch.env)
        env["HOME"] = str(launch.workdir)
        env.setdefault("USER", getpass.getuser())
        return env

    def prepare(self) -> None:
        find_executable("ch-run", self._executable)
        self.identity()

    def identity(self) -> str:
        record = self.image / SOURCE_ID_FILE
        if not record.is_file():
            raise RuntimeUnavailable(f"{self.image} is not an image directory made by "
                                     f"`ptybatch containers charliecloud` (no {SOURCE_ID_FILE})")
        return f"charliecloud:{record.read_text().strip()}"
