"""How one job's command is launched: host, venv, an existing environment's python, podman, docker, apptainer,
charliecloud, and image building.

Owns the `Runtime` ABC, the runtime factory and the backend images. May import: journal, campaign, util.
"""
