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
