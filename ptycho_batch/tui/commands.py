"""The `watch` and `logs` sub-commands: their arguments, and handlers that import the views only when run
(every other verb starts without loading rich or the dashboard)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def cmd_watch(args: argparse.Namespace) -> int:
    from ptycho_batch.tui.watch import cmd_watch

    return cmd_watch(args)


def cmd_logs(args: argparse.Namespace) -> int:
    from ptycho_batch.tui.logs import cmd_logs

    return cmd_logs(args)


def register(commands: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add `watch` and `logs` to the `ptybatch` sub-commands; return their handlers by name."""
    watch = commands.add_parser("watch", help="live dashboard of a run (plain lines when not on a terminal)")
    watch.add_argument("target", nargs="?", help="run dir, run id, campaign file or name, or out dir (default: newest)")
    watch.add_argument("--out", type=Path)
    watch.add_argument("--interval", type=float, metavar="S",
                       help="seconds between journal reads (default 1, longer above 2,500 jobs: 10,000 jobs 4 s)")
    logs = commands.add_parser("logs", help="print (or follow with -f) one job's log")
    logs.add_argument("target", help="run dir, run id, campaign file or name, or out dir (its newest run)")
    logs.add_argument("job", help="job name, slug, or a unique prefix")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing as the log grows, until the job ends (follows retries)")
    logs.add_argument("--out", type=Path)
    return {"watch": cmd_watch, "logs": cmd_logs}
