"""The runtime names a campaign's backends or `--runtime` may name (the CLI offers them without loading the schema)."""

RUNTIMES = ("host", "venv", "python", "podman", "docker", "apptainer", "charliecloud", "auto")
