"""The `watch` and `logs` sub-commands: their arguments, and handlers that import the views only when run
(every other verb starts without loading rich or the dashboard)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

Subcommands = argparse._SubParsersAction  # what `add_subparsers` returns: each verb adds its parser to it
Handler = Callable[[argparse.Namespace], int]


def cmd_watch(args: argparse.Namespace) -> int:
    from ptycho_batch.tui.watch import cmd_watch

    return cmd_watch(args)


def cmd_logs(args: argparse.Namespace) -> int:
    from ptycho_batch.tui.logs import cmd_logs

    return cmd_logs(args)


def _watch_parser(commands: Subcommands) -> None:
    watch = commands.add_parser("watch", help="live dashboard of a run (plain lines when not on a terminal)")
    watch.add_argument("target", nargs="?", help="run dir, run id, campaign file or name, or out dir (default: newest)")
    watch.add_argument("--out", type=Path)
    watch.add_argument("--interval", type=float, metavar="S",
                       help="seconds between journal reads (default 1, longer above 2,500 jobs: 10,000 jobs 4 s)")


def _logs_parser(commands: Subcommands) -> None:
    logs = commands.add_parser("logs", help="print (or follow with -f) one job's log")
    logs.add_argument("target", help="run dir, run id, campaign file or name, or out dir (its newest run)")
    logs.add_argument("job", help="job name, slug, or a unique prefix")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing as the log grows, until the job ends (follows retries)")
    logs.add_argument("--out", type=Path)


# `watch` and `logs` among the `ptybatch` sub-commands: what adds each one's parser, and its handler
VERBS: dict[str, tuple[Callable[[Subcommands], None], Handler]] = {
    "watch": (_watch_parser, cmd_watch), "logs": (_logs_parser, cmd_logs)}
