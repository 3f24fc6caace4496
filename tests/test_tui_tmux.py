"""On live local campaigns: `ptybatch watch` in a real terminal (tmux), driven by keys and read with
capture-pane; and `ptybatch logs -f` following a job to its end."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import requires
from helpers import host_campaign, write_campaign

PY = sys.executable
# A job that waits for `<flags>/<name>.go`; `<name>.talk` makes it print one more line first.
# (No braces: campaign commands are templates.)
WAITER = """
import pathlib, sys, time
flags, name = pathlib.Path(sys.argv[1]), sys.argv[2]
print(name + ' is waiting', flush=True)
talked = False
while not (flags / (name + '.go')).exists():
    if not talked and (flags / (name + '.talk')).exists():
        print(name + ' says more', flush=True)
        talked = True
    time.sleep(0.05)
print(name + ' done', flush=True)
"""


class Pane:
    """One tmux pane running an interactive shell, on a private tmux server."""

    def __init__(self, socket: str, cwd: Path) -> None:
        self.base = ["tmux", "-L", socket, "-f", "/dev/null"]
        subprocess.run([*self.base, "new-session", "-d", "-s", "watch", "-x", "160", "-y", "40", "-c", str(cwd),
                        "-e", "PS1=$ ", "bash", "--norc", "--noprofile"], check=True)

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "watch", *keys], check=True)

    def type_line(self, argv: list[str]) -> None:
        self.keys("-l", shlex.join(argv))
        self.keys("Enter")

    def text(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-J", "-t", "watch"], check=True,
                              capture_output=True, text=True).stdout

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.text()
            if predicate(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"screen never showed {what}:\n{self.text()}")

    def wait_for_prompt(self) -> None:
        """Until the dashboard has left and the shell prompts again (keys typed earlier would go to the viewer)."""
        self.wait_for(lambda s: "backends:" not in s and s.rstrip().endswith("$"), "the shell prompt")

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], check=False)


def row(screen: str, job: str) -> str:
    return next((line for line in screen.splitlines() if line.startswith(job + " ")), "")


def journal_state(out: Path, job: str) -> str:
    runs = sorted((out / ".ptybatch" / "t").glob("*/jobs"))
    path = runs[-1] / job / "state.json" if runs else out / "missing"
    return json.loads(path.read_text())["state"] if path.exists() else "PENDING"


def wait_journal(out: Path, job: str, state: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while journal_state(out, job) != state:
        assert time.monotonic() < deadline, f"{job} never became {state} in the journal"
        time.sleep(0.1)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    requires("tmux", shutil.which("tmux") is not None)
    pane = Pane(f"ptybatch-test-{os.getpid()}-{tmp_path.name}", tmp_path)  # one server per test
    yield pane
    pane.close()


def test_watch_follows_a_live_campaign_opens_logs_cancels_and_restores_the_terminal(tmp_path: Path, pane: Pane) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    jobs = {"first": {"backend": "a", "stage": "train", "command": [PY, "-c", WAITER, str(flags), "first"]},
            "second": {"backend": "b", "stage": "train", "command": [PY, "-c", WAITER, str(flags), "second"]},
            "after": {"backend": "a", "stage": "infer", "needs": ["first"],
                      "command": [PY, "-c", "print('after ran')"]}}
    campaign = write_campaign(tmp_path, host_campaign(jobs))
    submit = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(campaign), "-j", "3"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = tmp_path / "reports"
        wait_journal(out, "second", "RUNNING")
        pane.type_line([PY, "-m", "ptycho_batch", "watch", str(campaign), "--interval", "0.3"])
        pane.wait_for(lambda s: "▶ RUNNING" in row(s, "first") and "▶ RUNNING" in row(s, "second")
                      and "· PENDING" in row(s, "after"), "first and second running, after pending")

        (flags / "first.go").touch()                                   # states change as jobs finish
        screen = pane.wait_for(lambda s: "✔ COMPLETED" in row(s, "first") and "✔ COMPLETED" in row(s, "after"),
                               "first and after completed")
        assert "▶ RUNNING" in row(screen, "second")

        pane.keys("j", "j")                                            # rows: first, second, after
        pane.keys("k", "Enter")                                        # the log of second, followed
        pane.wait_for(lambda s: "log: second" in s and "second is waiting" in s, "the log view of second")
        (flags / "second.talk").touch()
        pane.wait_for(lambda s: "second says more" in s, "the log growing in the log view")
        pane.keys("Escape")
        pane.wait_for(lambda s: "log: second" not in s and "▶ RUNNING" in row(s, "second"), "the table again")

        pane.keys("c")
        pane.wait_for(lambda s: "cancel second? [y/n]" in s, "the cancel confirmation")
        pane.keys("y")
        wait_journal(out, "second", "CANCELLED")
        pane.wait_for(lambda s: "⊘ CANCELLED" in row(s, "second"), "second shown CANCELLED")

        pane.keys("q")
        pane.wait_for_prompt()
        pane.type_line(["echo", "ok"])                                 # the shell echoes and runs it again
        pane.wait_for(lambda s: "$ echo ok\nok\n" in s, "a usable shell after q")
        assert submit.wait(timeout=60) == 0                            # a is required; b's cancel is deferred
    finally:
        (flags / "second.go").touch()
        (flags / "first.go").touch()
        if submit.poll() is None:
            submit.terminate()
            submit.wait(timeout=30)


def test_ctrl_c_restores_the_terminal(tmp_path: Path, pane: Pane) -> None:
    campaign = write_campaign(tmp_path, host_campaign({"only": {"backend": "a", "command": [PY, "-c", "print(1)"]}}))
    subprocess.run([PY, "-m", "ptycho_batch", "submit", str(campaign)], cwd=tmp_path, check=True,
                   capture_output=True)
    pane.type_line([PY, "-m", "ptycho_batch", "watch", str(campaign)])
    pane.wait_for(lambda s: "✔ COMPLETED" in row(s, "only"), "the finished run")
    pane.keys("C-c")
    pane.wait_for_prompt()
    pane.type_line(["stty", "-a"])
    screen = pane.wait_for(lambda s: "icanon" in s, "stty output")
    assert "-icanon" not in screen and " echo " in screen.replace("\n", " ")


def test_submit_watch_shows_the_dashboard_until_the_run_ends(tmp_path: Path, pane: Pane) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    jobs = {"work": {"backend": "a", "command": [PY, "-c", WAITER, str(flags), "work"]}}
    campaign = write_campaign(tmp_path, host_campaign(jobs))
    pane.type_line([PY, "-m", "ptycho_batch", "submit", str(campaign), "--watch"])
    pane.wait_for(lambda s: "▶ RUNNING" in row(s, "work") and "submit running" in s, "the dashboard of the submit")
    (flags / "work.go").touch()
    screen = pane.wait_for(lambda s: "[ptybatch] passed" in s, "the submit's verdict after the dashboard")
    assert "▶ RUNNING" not in screen                                   # the dashboard left with the run
    pane.wait_for_prompt()
    pane.type_line(["echo", "ok"])
    pane.wait_for(lambda s: "$ echo ok\nok\n" in s, "a usable shell after submit --watch")


def test_logs_follow_prints_as_the_job_writes_and_ends_with_it(tmp_path: Path) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()
    jobs = {"slow": {"backend": "a", "command": [PY, "-c", WAITER, str(flags), "slow"]}}
    campaign = write_campaign(tmp_path, host_campaign(jobs))
    submit = subprocess.Popen([PY, "-m", "ptycho_batch", "submit", str(campaign)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_journal(tmp_path / "reports", "slow", "RUNNING")
        follower = subprocess.Popen([PY, "-m", "ptycho_batch", "logs", str(campaign), "slow", "-f"],
                                    cwd=tmp_path, stdout=subprocess.PIPE, text=True)
        assert follower.stdout is not None
        assert follower.stdout.readline() == "slow is waiting\n"
        (flags / "slow.talk").touch()
        assert follower.stdout.readline() == "slow says more\n"
        assert follower.poll() is None                                 # still following the running job
        (flags / "slow.go").touch()
        assert follower.stdout.read() == "slow done\n" and follower.wait(timeout=30) == 0
    finally:
        (flags / "slow.go").touch()
        submit.wait(timeout=60)
