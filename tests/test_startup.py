"""What a command loads and starts before its work: each verb imports only what it uses, and the commit a
run records is read without a `git` process where git's files say it plainly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import host_campaign, ptybatch, write_campaign

from ptycho_batch.runtimes.images import git_revision

PY = sys.executable
PROBE = ("import json, sys\nfrom ptycho_batch.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print(json.dumps([code, sorted(sys.modules)]))")


def loaded(*argv: str, cwd: Path) -> set[str]:
    """The modules a verb imported, by running it in a fresh interpreter (its own output is discarded)."""
    done = subprocess.run([PY, "-c", PROBE, *argv], cwd=cwd, capture_output=True, text=True, timeout=120)
    code, modules = json.loads(done.stdout.splitlines()[-1])
    assert code == 0, done.stdout + done.stderr
    return set(modules)


def under(modules: set[str], *packages: str) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


def test_help_loads_no_schema_views_or_executors(tmp_path: Path) -> None:
    done = subprocess.run([PY, "-c", "import json, sys\nfrom ptycho_batch.cli.main import build_parser\n"
                           "build_parser()\nprint(json.dumps(sorted(sys.modules)))"],
                          cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60)
    modules = set(json.loads(done.stdout))
    assert not under(modules, "rich", "pydantic", "yaml", "submitit", "ptycho_batch.tui.watch",
                     "ptycho_batch.engine", "ptycho_batch.executors", "ptycho_batch.reports",
                     "ptycho_batch.campaign.spec")


def test_each_verb_imports_only_what_it_uses(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, host_campaign({"one": {"backend": "a", "command": [PY, "-c", "print(1)"]}}))
    validated = loaded("validate", str(path), cwd=tmp_path)
    assert not under(validated, "rich", "submitit", "ptycho_batch.tui.watch", "ptycho_batch.tui.render", "ptycho_batch.reports",
                     "ptycho_batch.executors.slurm", "ptycho_batch.executors.local", "ptycho_batch.engine.decisions")
    planned = loaded("plan", str(path), "--json", cwd=tmp_path)
    assert not under(planned, "rich", "submitit", "ptycho_batch.tui.watch", "ptycho_batch.tui.render", "ptycho_batch.reports")
    submitted = loaded("submit", str(path), cwd=tmp_path)   # piped: one plain line a change, no dashboard
    assert not under(submitted, "ptycho_batch.tui.watch", "ptycho_batch.tui.app", "rich.live", "submitit")
    shown = loaded("status", cwd=tmp_path)
    assert "rich.table" in shown  # the status table is drawn ...
    assert not under(shown, "submitit", "ptycho_batch.engine", "ptycho_batch.executors.slurm",
                     "ptycho_batch.tui.watch", "ptycho_batch.tui.app", "rich.live")  # ... and nothing else


def test_a_verb_builds_only_its_own_parser(tmp_path: Path) -> None:
    """argparse looks up a translation (file-system look-ups) for each parser it makes: a verb makes two."""
    path = write_campaign(tmp_path, host_campaign({"one": {"backend": "a", "command": [PY, "-c", "print(1)"]}}))
    count = ("import gettext, json, sys\nasked = []\nlookup = gettext.gettext\n"
             "gettext.gettext = lambda message: asked.append(message) or lookup(message)\n"
             "from ptycho_batch.cli.main import main\ncode = main(sys.argv[1:])\nprint(json.dumps([code, asked]))")
    done = subprocess.run([PY, "-c", count, "validate", str(path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    code, asked = json.loads(done.stdout.splitlines()[-1])
    assert code == 0 and len(asked) <= 6, asked  # the whole tree: 51
    wrong = ptybatch("status", "--no-such-option", cwd=tmp_path)  # an unknown option: the whole tree's usage
    assert wrong.returncode == 2 and "{validate,schema,plan,submit,status" in wrong.stderr, wrong.stderr
    assert "--executor" in ptybatch("submit", "--help", cwd=tmp_path).stdout


def test_a_spinner_off_a_terminal_is_two_plain_lines_without_rich(tmp_path: Path) -> None:
    probe = ("import sys\nfrom ptycho_batch.util.progress import spinner\nwith spinner('work'):\n    pass\n"
             "print('rich' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    plain = subprocess.run([PY, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert plain.stdout.strip() == "False" and plain.stderr.splitlines()[0] == "[ptybatch] work ...", plain.stderr
    forced = subprocess.run([PY, "-c", probe], cwd=tmp_path, env={**env, "FORCE_COLOR": "1"}, capture_output=True,
                            text=True, timeout=60)
    assert forced.stdout.strip() == "True" and "\x1b[" in forced.stderr  # where rich could say yes, it decides


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to make the repositories it reads")
def test_git_revision_reads_heads_like_git_does(tmp_path: Path) -> None:
    def git(*args: str, cwd: Path = tmp_path / "repo") -> str:
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True,
                              capture_output=True, text=True).stdout.strip()

    (tmp_path / "repo").mkdir()
    assert git_revision(tmp_path / "repo") == "unknown"  # no work tree above /tmp
    git("init", "-q")
    assert git_revision(tmp_path / "repo") == "unknown"  # no commit yet: git itself is asked, and says so
    git("commit", "-q", "--allow-empty", "-m", "one")
    branch = git("symbolic-ref", "--short", "HEAD")
    (tmp_path / "repo" / "sub").mkdir()
    assert git_revision(tmp_path / "repo" / "sub") == git("rev-parse", "HEAD")   # a loose ref
    git("pack-refs", "--all")
    git("commit", "-q", "--allow-empty", "-m", "two")
    git("pack-refs", "--all")
    assert git_revision(tmp_path / "repo") == git("rev-parse", "HEAD")   # packed-refs only
    git("checkout", "-q", "--detach", "HEAD~1")
    assert git_revision(tmp_path / "repo") == git("rev-parse", "HEAD")   # detached
    git("worktree", "add", "-q", str(tmp_path / "linked"), "-b", "linked", branch)
    git("commit", "-q", "--allow-empty", "-m", "three", cwd=tmp_path / "linked")
    assert git_revision(tmp_path / "linked") == git("rev-parse", "HEAD", cwd=tmp_path / "linked")  # a worktree
    assert git_revision(tmp_path / "linked") != git_revision(tmp_path / "repo")
