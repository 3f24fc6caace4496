"""How fast `ptybatch watch` builds a frame for 100, 1,000 and 10,000 jobs, and its CPU use while idle.

Frames: synthetic journals written with the real Run/JobState API (every state, logs, blockers), in two
shapes: `matrix` (100 campaign jobs with N/100 cells each, collapsed) and `flat` (N plain jobs, N rows).
A frame is what the viewer does each interval: poll the journal (stat every state file, re-read the
changed ones), build the dashboard and render it to a 160x50 console. Targets: < 100 ms at 10,000 jobs.
Idle CPU: the real viewer in tmux on (a) a live local campaign of sleeping jobs and (b) the 10,000-job
synthetic run, process CPU time over --idle-s seconds. Target: < 5% of one core.
Usage: python bench/tui_render.py [--sizes 100 1000 10000] [--frames 20] [--idle-s 10]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console

from ptycho_batch.journal.store import Run
from ptycho_batch.tui.app import Dashboard
from ptycho_batch.tui.synthetic import synthetic_run
from ptycho_batch.util.procs import process_start_time

WIDTH, HEIGHT = 160, 50


def frame_ms(run: Run, frames: int) -> tuple[float, str, str]:
    """First full journal read (ms); median frame idle and after one state change, as `wall / cpu` ms.

    CPU time is reported beside wall time because a shared machine's load inflates wall time.
    """
    dashboard = Dashboard(run)
    start = time.perf_counter()
    dashboard.cache.poll()
    first = (time.perf_counter() - start) * 1000
    console = Console(width=WIDTH, height=HEIGHT, file=io.StringIO(), force_terminal=True)

    def one_frame() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        dashboard.cache.poll()
        console.print(dashboard.frame(WIDTH, HEIGHT))
        return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000

    def medians(samples: list[tuple[float, float]]) -> str:
        return f"{statistics.median(s[0] for s in samples):.1f} / {statistics.median(s[1] for s in samples):.1f}"

    idle = [one_frame() for _ in range(frames)]
    changed = []
    states = dashboard.cache.states
    name, job = next((n, j) for n, j in dashboard.cache.plan.jobs.items() if states[n].state == "RUNNING")
    for _ in range(frames):
        state = dashboard.cache.states[name]
        run.write_state(job.slug, state.model_copy(update={"attempt": state.attempt + 1}))
        changed.append(one_frame())
    return first, medians(idle), medians(changed)


def cpu_seconds(pid: int, tmux: list[str]) -> float:
    """User + system CPU seconds of the viewer; says what the viewer showed if it is no longer running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout.strip()
        raise SystemExit(f"the viewer (pid {pid}) exited during the measurement; its screen:\n{screen}") from None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def carried_run(root: Path, size: int) -> Run:
    """A synthetic local run of `size` jobs whose supervisor is this process, so the viewer keeps it live."""
    run = synthetic_run(root, {f"job{i:03d}": size // 100 for i in range(100)}, executor="local")
    run.update_info(supervisor={"pid": os.getpid(), "start": process_start_time(os.getpid())})
    return run


def viewer_idle_cpu(target: Path, cwd: Path, seconds: float) -> float:
    """Percent of one core used by `ptybatch watch TARGET` in a tmux pane, after a warm-up."""
    tmux = ["tmux", "-L", f"ptybatch-bench-{os.getpid()}-{target.name}", "-f", "/dev/null"]  # one server per run
    subprocess.run([*tmux, "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd),
                    sys.executable, "-m", "ptycho_batch", "watch", str(target)], check=True)
    subprocess.run([*tmux, "set-option", "-t", "0", "remain-on-exit", "on"], check=True)
    try:
        pid = int(subprocess.run([*tmux, "display-message", "-p", "#{pane_pid}"], check=True, capture_output=True,
                                 text=True).stdout)
        deadline = time.monotonic() + 120  # start-up and the first full read are not idle: wait for the frame
        while "elapsed" not in subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                raise SystemExit("the viewer showed no dashboard within 120 s")
            time.sleep(0.5)
        time.sleep(1.0)
        before, start = cpu_seconds(pid, tmux), time.monotonic()
        time.sleep(seconds)
        return 100 * (cpu_seconds(pid, tmux) - before) / (time.monotonic() - start)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def live_campaign(folder: Path) -> subprocess.Popen[bytes]:
    """A local campaign of four jobs that sleep, submitted in the background."""
    sleeper = [sys.executable, "-c", "import time; print('sleeping', flush=True); time.sleep(600)"]
    campaign = {"campaign": "idle", "backends": {"host": {"runtime": "host"}},
                "jobs": {"sleep": {"backend": "host", "matrix": {"i": [1, 2, 3, 4]}, "command": sleeper}}}
    (folder / "idle.yaml").write_text(yaml.safe_dump(campaign))
    submit = subprocess.Popen([sys.executable, "-m", "ptycho_batch", "submit", str(folder / "idle.yaml"), "-j", "4"],
                              cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(folder.glob("reports/.ptybatch/idle/*/jobs/*/state.json"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    return submit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--idle-s", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| jobs | shape | first read (ms) | frame, idle (wall / cpu ms) | frame, 1 change (wall / cpu ms) |\n"
          "|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            shapes = {"matrix": {f"job{i:03d}": size // 100 for i in range(100)},
                      "flat": {f"job{i:05d}": 1 for i in range(size)}}
            for shape, bases in shapes.items():
                run = synthetic_run(Path(tmp) / f"{shape}{size}", bases)
                first, idle, changed = frame_ms(run, args.frames)
                print(f"| {size:,} | {shape} | {first:.0f} | {idle} | {changed} |", flush=True)
        if not shutil.which("tmux"):
            print("tmux not found: idle CPU not measured")
            return
        live = Path(tmp) / "live"
        live.mkdir()
        submit = live_campaign(live)
        try:
            live_cpu = viewer_idle_cpu(live / "idle.yaml", live, args.idle_s)
        finally:
            subprocess.run([sys.executable, "-m", "ptycho_batch", "cancel", str(live / "idle.yaml")], cwd=live,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            submit.wait(timeout=30)
        print(f"\nidle CPU of the viewer, live local campaign (4 running jobs): {live_cpu:.2f}% of one core")
        big = carried_run(Path(tmp) / "carried", args.sizes[-1])
        big_cpu = viewer_idle_cpu(big.dir, Path(tmp), args.idle_s)
        print(f"idle CPU of the viewer, {args.sizes[-1]:,}-job live run: {big_cpu:.2f}% of one core")


if __name__ == "__main__":
    main()
