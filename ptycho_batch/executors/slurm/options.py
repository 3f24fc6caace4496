"""The sbatch options of one job, from its own resources alone (user config defaults under the campaign's).

A module of its own, without submitit: `ptybatch plan` shows every job's options and imports only this.
"""

from __future__ import annotations

from ptycho_batch.campaign.plan import PlannedJob
from ptycho_batch.campaign.spec import Resources, Scalar

MARGIN_MIN = 2        # SLURM's limit sits this far past the job's own timeout_min


def sbatch_options(job: PlannedJob, defaults: Resources) -> dict[str, Scalar]:
    """The sbatch options (`--name=value`) one job is submitted with, from its own resources alone."""
    merged = Resources.model_validate({**defaults.model_dump(exclude_none=True),
                                       **job.resources.model_dump(exclude_none=True)})
    time_limit = merged.time if merged.time is not None else (
        int(job.timeout_min) + MARGIN_MIN if job.timeout_min else None)
    options: dict[str, Scalar] = {"kill-on-invalid-dep": "yes", "requeue": True}
    for flag, value in (("partition", merged.partition), ("time", time_limit), ("gpus-per-node", merged.gpus),
                        ("cpus-per-task", merged.cpus), ("constraint", merged.constraint), ("qos", merged.qos),
                        ("nodes", merged.nodes), ("account", merged.account)):
        if value is not None:
            options[flag] = value
    if merged.mem_gb is not None:
        options["mem"] = f"{int(merged.mem_gb * 1024)}M"
    options.update(merged.sbatch)
    return options
