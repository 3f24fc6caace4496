"""README stays true: its campaign example validates, and the commands it names exist."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT
from helpers import ptybatch

README = (ROOT / "README.md").read_text()


def test_campaign_example_validates(tmp_path: Path) -> None:
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", README, re.S) if "campaign:" in block)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "example.yaml").write_text(example)
    (tmp_path / "containers").symlink_to(ROOT / "containers", target_is_directory=True)  # as in a clone
    result = ptybatch("validate", "example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plan = ptybatch("plan", "example", "--json", cwd=tmp_path)
    assert '"tf_train"' in plan.stdout and "--translate" in plan.stdout


def test_named_commands_exist() -> None:
    help_text = ptybatch("--help", cwd=ROOT).stdout
    for command in set(re.findall(r"`ptybatch (\w+)", README)):
        assert f"    {command}" in help_text, f"README names `ptybatch {command}`, which the CLI lacks"
    for script in set(re.findall(r"python (bench/\w+\.py|docs/\w+\.py)", README)):
        assert (ROOT / script).is_file(), script


def test_campaign_example_runs_green_with_its_parity_evaluated(tmp_path: Path, backend_python) -> None:
    """README's example as written: both frameworks, green, the parity check evaluated (both sides observed)."""
    backend_python("torch"), backend_python("tf")  # skip (or fail in CI) without the framework venvs
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", README, re.S) if "campaign:" in block)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "example.yaml").write_text(example)
    (tmp_path / "containers").symlink_to(ROOT / "containers", target_is_directory=True)
    result = ptybatch("submit", "example", cwd=tmp_path, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = next((tmp_path / "reports").rglob("artifact_inventory.md")).read_text()
    parity = text.split("## Parity")[1].split("\n## ")[0]
    assert "`patch_stats.mean`" in parity and "not evaluated" not in parity, parity
    assert "`intensity_scale` = 9.88212" in text, "torch_train's expectation has the metric it checks"
