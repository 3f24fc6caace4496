"""ptybatch: run the same ML experiment on PyTorch and TensorFlow, locally or on SLURM, and trust the result.

Exit codes: 0 passed (every job of the required backends completed), 1 a required job or parity check
failed, 2 invalid input, 3 busy (the campaign is already being run), 4 a runtime or the scheduler is
unavailable, 5 a record or output file cannot be read or written (a full disk), 70 a bug in ptybatch,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptycho_batch import __version__
from ptycho_batch.campaign.runtime_names import RUNTIMES
from ptycho_batch.tui.commands import VERBS as VIEW_VERBS
from ptycho_batch.tui.commands import Handler, Subcommands
from ptycho_batch.util.bulk import collector_paused
from ptycho_batch.util.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    PtybatchError,
    RecordError,
    SpecError,
)

if TYPE_CHECKING:  # each handler imports what its verb needs, so `ptybatch status` loads no schema or executor
    from ptycho_batch.executors.base import Executor
    from ptycho_batch.journal.records import JobState
    from ptycho_batch.journal.store import Run

INTERRUPT_WAIT_S = 30.0   # after Ctrl-C, how long submit waits for the supervisor to record what it stopped


def _campaign_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("campaign", help="campaign file, or a name looked up in ./jobs/")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PARAM=VALUE",
                        help="override a param for this run (recorded in the frozen campaign)")
    parser.add_argument("--only", action="append", default=[], metavar="JOB|BACKEND",
                        help="run only these jobs (with everything upstream of them)")
    parser.add_argument("--out", type=Path, help="output root (default: the campaign's `out`, relative to its file)")
    parser.add_argument("--runtime", choices=list(RUNTIMES),
                        help="use this runtime for every backend in this run")
    parser.add_argument("--force", action="store_true", help="rerun every job, even those with a matching cache key")
    parser.add_argument("--rerun-failed", action="store_true",
                        help="run only what did not complete before; keep every completed job as it is")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The `ptybatch` parser; given a `verb`, with that sub-command's parser alone. Why: argparse looks up a
    translation of its messages (four file-system look-ups each) for every parser it makes, and the 17 of
    the whole tree cost a submit ~200 metadata calls; `--help` and a mistyped verb get the whole tree."""
    intro, codes = (__doc__ or "").split("\n\n")[:2]
    parser = argparse.ArgumentParser(prog="ptybatch", description=intro, epilog=codes,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"ptybatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add, _) in VERBS.items():
        if verb in (None, name):
            add(commands)
    return parser


def _validate_parser(commands: Subcommands) -> None:
    validate = commands.add_parser("validate", help="check a campaign file; report every problem with file:line:col")
    validate.add_argument("campaign")
    validate.add_argument("--set", dest="overrides", action="append", default=[], metavar="PARAM=VALUE",
                          help="check it with these params overridden (as submit --set would run it)")


def _schema_parser(commands: Subcommands) -> None:
    commands.add_parser("schema", help="print the campaign JSON Schema (for editor completion)")


def _plan_parser(commands: Subcommands) -> None:
    plan = commands.add_parser("plan", help="show what a submit would run or reuse, and why")
    _campaign_options(plan)
    plan.add_argument("--json", action="store_true")
    plan.add_argument("--sbatch", action="store_true",
                      help="add each job's effective sbatch options (what `submit --executor slurm` asks for)")


def _submit_parser(commands: Subcommands) -> None:
    submit = commands.add_parser("submit", help="run a campaign")
    _campaign_options(submit)
    submit.add_argument("--executor", choices=["local", "slurm", "auto"], default="local",
                        help="local (this machine), slurm (submitit), or auto: slurm when sbatch answers")
    submit.add_argument("--detach", action="store_true",
                        help="return once the run is launched (it goes on without this terminal); "
                             "status/watch/logs follow it")
    submit.add_argument("--watch", action="store_true", help="show the live dashboard while the run goes on")
    submit.add_argument("--jobs", "-j", type=int, help="jobs at once (default: CPU count, or one per visible GPU)")


def _status_parser(commands: Subcommands) -> None:
    status = commands.add_parser("status", help="the state of a run's jobs, from its journal")
    status.add_argument("target", nargs="?",
                        help="run dir, run id, campaign file or name, or out dir (default: newest)")
    status.add_argument("--out", type=Path)
    status.add_argument("--json", action="store_true")


def _report_parser(commands: Subcommands) -> None:
    report = commands.add_parser("report", help="(re)write a run's artifact inventory and report.html from its journal")
    report.add_argument("target", nargs="?")
    report.add_argument("--out", type=Path)
    report.add_argument("--open", action="store_true",
                        help="open report.html in a browser where one is available (else print its path)")


def _cancel_parser(commands: Subcommands) -> None:
    cancel = commands.add_parser("cancel", help="cancel a run's unfinished jobs (all, or those named)")
    cancel.add_argument("target", help="run dir, run id, campaign file or name")
    cancel.add_argument("jobs", nargs="*", help="job names (default: every unfinished job)")
    cancel.add_argument("--out", type=Path)


def _compare_parser(commands: Subcommands) -> None:
    compare = commands.add_parser("compare", help="metrics two runs or reports share, side by side")
    compare.add_argument("left", help="run (dir, id, campaign) or report (dir or artifact_inventory.json)")
    compare.add_argument("right")
    compare.add_argument("--metrics", nargs="+", help="metric names or glob patterns (default: all shared)")
    compare.add_argument("--rel", type=float, default=0.05, help="relative tolerance that flags a difference")
    compare.add_argument("--out", type=Path)


def _gc_parser(commands: Subcommands) -> None:
    gc = commands.add_parser("gc", help="remove old runs' workdirs (journal and report evidence stay)")
    gc.add_argument("target", nargs="?", help="campaign file or name, run dir or id, or a directory of runs "
                    "(default: runs below the current directory)")
    gc.add_argument("--out", type=Path)
    gc.add_argument("--keep", type=int, default=1, metavar="N", help="keep the newest N runs of each campaign")
    gc.add_argument("--older-than", metavar="AGE", help="only runs started longer ago than AGE (30m, 12h, 7d)")
    gc.add_argument("--dry-run", action="store_true", help="print what would be freed, remove nothing")
    gc.add_argument("--venvs", action="store_true",
                    help="also remove the cached backend venvs no run used within --older-than (default 30d)")


def _containers_parser(commands: Subcommands) -> None:
    containers = commands.add_parser("containers", help="build and convert the per-backend images")
    actions = containers.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build Dockerfile.<backend> (both backends by default)")
    build.add_argument("backends", nargs="*", choices=["torch", "tf"], default=["torch", "tf"])
    build.add_argument("--engine", choices=["podman", "docker"], default="podman")
    build.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    for verb, what in (("export", "save an image as an archive"), ("sif", "convert to an Apptainer SIF file"),
                       ("charliecloud", "convert to a Charliecloud image directory")):
        convert = actions.add_parser(verb, help=what)
        convert.add_argument("backends", nargs="*", choices=["torch", "tf"], default=["torch", "tf"])
        convert.add_argument("--engine", choices=["podman", "docker"], default="podman")
        if verb == "export":
            convert.add_argument("--format", choices=["oci-archive", "docker-archive"], default="oci-archive")


def main(argv: list[str] | None = None) -> int:
    """Run one command; every expected failure is one line per problem and its class's exit code."""
    # ptybatch's own records need no pydantic plugins, and looking for them reads every installed package's
    # entry points (~100 metadata calls) at the first model; jobs never see this (the env firewall)
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    argv = sys.argv[1:] if argv is None else argv
    args, unknown = build_parser(argv[0] if argv and argv[0] in VERBS else None).parse_known_args(argv)
    if unknown:  # argparse's own message, with the whole tree's usage
        build_parser().parse_args(argv)
    try:
        return VERBS[args.command][1](args)
    except PtybatchError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as error:  # the system refused (a full disk, permissions): the environment, not a bug
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return RecordError.exit_code
    except Exception:
        traceback.print_exc()
        print("error: this is a bug in ptybatch (the traceback above says where); please report it",
              file=sys.stderr)
        return EXIT_INTERNAL


def cmd_validate(args: argparse.Namespace) -> int:
    from ptycho_batch.campaign.spec import find_campaign, parse_overrides
    from ptycho_batch.engine.session import prepare

    path = find_campaign(args.campaign)
    prepared = prepare(path, overrides=parse_overrides(args.overrides))
    print(f"{path}: OK ({len(prepared.plan.jobs)} jobs, backends: {', '.join(prepared.campaign.backends)})")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from ptycho_batch.campaign.spec import Campaign

    print(json.dumps(Campaign.model_json_schema(by_alias=True), indent=2))
    return EXIT_OK


def _prepare(args: argparse.Namespace):
    from ptycho_batch.campaign.spec import find_campaign, parse_overrides
    from ptycho_batch.engine.session import prepare

    return prepare(find_campaign(args.campaign), out=args.out, overrides=parse_overrides(args.overrides),
                   only=args.only or None, runtime_override=args.runtime)


def cmd_plan(args: argparse.Namespace) -> int:
    from ptycho_batch.campaign.config import user_resources
    from ptycho_batch.engine.session import decide
    from ptycho_batch.executors.slurm.options import sbatch_options

    prepared = _prepare(args)
    decisions = decide(prepared, force=args.force, rerun_failed=args.rerun_failed)
    defaults = user_resources()
    if args.json:   # a job at a time: a 65,536-job plan is never held as one document
        _print_json_object((name, {"run": d.run, "reason": d.reason, **job.model_dump(),
                                   "sbatch": sbatch_options(job, defaults)})
                           for (name, job), d in zip(prepared.plan.jobs.items(), decisions.values()))
        return EXIT_OK
    from ptycho_batch.cli.views import plan_table, print_renderable

    sbatch = {name: sbatch_options(job, defaults) for name, job in prepared.plan.jobs.items()} if args.sbatch else None
    print_renderable(plan_table(prepared.plan, decisions, sbatch))
    return EXIT_OK


def _print_json_object(items: Iterable[tuple[str, Any]]) -> None:
    """`print(json.dumps(dict(items), indent=2))`, written an item at a time."""
    opening = "{"
    for key, value in items:
        text = json.dumps(value, indent=2).replace("\n", "\n  ")
        sys.stdout.write(f"{opening}\n  {json.dumps(key)}: {text}")
        opening = ","
    print("{}" if opening == "{" else "\n}")


def cmd_submit(args: argparse.Namespace) -> int:
    with collector_paused():  # start-up: the imports and the plan build ~10^5 objects, and no garbage cycles
        from ptycho_batch.engine.session import submit
        from ptycho_batch.executors.registry import make_executor

        prepared = _prepare(args)
        executor = make_executor(args.executor, jobs=args.jobs)
    started = time.monotonic()
    shown: dict[str, str] = {}

    def on_start(run: Run, states: dict[str, JobState]) -> None:
        print(f"[ptybatch] run {run.id} of {prepared.plan.campaign}: {len(states)} jobs, "
              f"executor {executor.name}, journal {run.dir}", flush=True)
        for state in states.values():
            if state.final:
                shown[state.name] = state.state
                print(f"[ptybatch] {state.name}: {state.state} ({state.reason})", flush=True)

    run = None if args.force else executor.active_run(prepared.campaign_dir)
    if run is not None:
        print(f"[ptybatch] run {run.id} of {prepared.plan.campaign} is still in {executor.name.upper()}: "
              "following it (only jobs that never reached it are submitted; --force submits a new run)", flush=True)
    else:
        run = submit(prepared, executor, force=args.force, rerun_failed=args.rerun_failed, on_start=on_start)
    if args.detach:
        print(f"[ptybatch] {executor.describe_launch(run)} in {time.monotonic() - started:.1f}s; "
              f"follow with: ptybatch watch {run.dir}", flush=True)
        return EXIT_OK
    return _follow(run, executor, started, shown, watch=args.watch and sys.stdout.isatty())


def _follow(run: Run, executor: Executor, started: float, shown: dict[str, str], *, watch: bool) -> int:
    """Follow the run to its end in the foreground; Ctrl-C does what the executor says (and says so)."""
    from ptycho_batch.engine.session import finalize
    from ptycho_batch.executors.follow import follow
    from ptycho_batch.reports.detail import state_line

    def on_change(state: JobState) -> None:
        if shown.get(state.name) != state.state and not (viewer and viewer[0].active):
            print(state_line(state), flush=True)
        shown[state.name] = state.state

    def on_notice(problem: str | None) -> None:
        print(f"[ptybatch] {executor.name.upper()} unreachable, still following: {problem}" if problem else
              f"[ptybatch] {executor.name.upper()} answers again", file=sys.stderr, flush=True)

    if watch:   # the dashboard (and rich) only for a terminal: piped or logged output is plain lines
        from ptycho_batch.tui.watch import BackgroundWatch
    viewer = [BackgroundWatch(run)] if watch else []
    try:
        states = follow(run, on_change, on_notice=on_notice)
    except KeyboardInterrupt:
        for watcher in viewer:
            watcher.stop()  # give the screen back before saying what happened
        print(f"[ptybatch] {executor.interrupt(run)}", file=sys.stderr, flush=True)
        if executor.finalizes_itself:  # the carrier records what it stopped; wait for that, briefly
            follow(run, lambda state: None, timeout=INTERRUPT_WAIT_S)
        return EXIT_INTERRUPTED
    finally:
        for watcher in viewer:
            watcher.stop()
    if not executor.finalizes_itself:
        finalize(run)
    return _conclude(run, states, started)


def _conclude(run: Run, states: dict[str, JobState], started: float) -> int:
    from ptycho_batch.cli.views import print_renderable, status_table
    from ptycho_batch.reports.inventory import inventory_path, policy_decision, summary_lines

    print_renderable(status_table(run.plan, states, limit=40))
    for line in summary_lines(run.plan, states):
        print(f"[ptybatch] {line}")
    decision = policy_decision(run.plan, states)
    print(f"[ptybatch] {decision.text}")
    code = EXIT_OK if decision.passed else EXIT_FAILED
    print(f"[ptybatch] {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.1f}s; "
          f"inventory: {inventory_path(run.plan)}")
    return code


def cmd_status(args: argparse.Namespace) -> int:
    # a one-shot reader: the cyclic collector would rescan every module, model and job record it loads
    # (a tenth of its CPU for a 10,000-task run), to find no cycles to free
    with collector_paused():
        return _status(args)


def _status(args: argparse.Namespace) -> int:
    from ptycho_batch.executors.registry import refresh_or_raise
    from ptycho_batch.journal.locate import locate_run

    run = locate_run(args.target, args.out)
    refresh_or_raise(run)
    plan, states = run.plan, run.journal_states()   # each job's record built only where it is shown
    if args.json:
        print(json.dumps({"run_id": run.id, "run_dir": str(run.dir), "campaign": plan.campaign,
                          "jobs": {n: s.model_dump() for n, s in states.items()}}, indent=2, default=str))
        return EXIT_OK
    from ptycho_batch.cli.views import print_renderable, status_table

    print(f"{plan.campaign} run {run.id} ({run.dir})")
    print_renderable(status_table(plan, states))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from ptycho_batch.executors.registry import load_run
    from ptycho_batch.journal.locate import locate_run
    from ptycho_batch.reports.inventory import html_path, write_report

    run = locate_run(args.target, args.out)
    plan, states = run.plan, load_run(run)
    print(write_report(plan, run, states))
    if args.open:
        page = html_path(plan)
        print(f"opened {page}" if _open_in_browser(page) else f"no browser available here; open {page}")
    return EXIT_OK


def _open_in_browser(page: Path) -> bool:
    """webbrowser picks $BROWSER, a desktop browser when there is a display, else a console one."""
    import webbrowser

    try:
        return webbrowser.open(page.resolve().as_uri())
    except webbrowser.Error:
        return False


def cmd_cancel(args: argparse.Namespace) -> int:
    from ptycho_batch.executors.registry import executor_of
    from ptycho_batch.journal.locate import locate_run

    run = locate_run(args.target, args.out)
    unknown = [name for name in args.jobs if name not in run.plan.jobs]
    if unknown:
        raise SpecError([f"run {run.id}: no job named {', '.join(unknown)} (jobs: {', '.join(run.plan.jobs)})"])
    affected = executor_of(run).cancel(run, args.jobs)
    print(f"cancel requested for {len(affected)} job(s) of run {run.id}: {', '.join(affected) or 'none unfinished'}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from ptycho_batch.cli.views import compare_table, print_renderable
    from ptycho_batch.reports.compare import compare, load_side, write_comparison

    result = compare(load_side(args.left, args.out), load_side(args.right, args.out), args.metrics, args.rel)
    print_renderable(compare_table(result))
    for label, names in zip(result.labels, (result.only_left, result.only_right)):
        if names:
            print(f"only in {label}: {', '.join(names)}")
    print(f"written: {write_comparison(result)}")
    return EXIT_OK


def cmd_gc(args: argparse.Namespace) -> int:
    from ptycho_batch.engine.gc import collectable, parse_age, remove, remove_venvs, stale_venvs
    from ptycho_batch.journal.locate import runs_meant

    try:
        older_than = parse_age(args.older_than) if args.older_than else None
    except ValueError:
        raise SpecError([f"--older-than {args.older_than!r}: expected an age such as 30m, 12h or 7d"]) from None
    if args.keep < 0:
        raise SpecError([f"--keep {args.keep}: expected 0 or more"])
    items = collectable(runs_meant(args.target, args.out), keep=args.keep, older_than_s=older_than)
    verb = "would free" if args.dry_run else "freed"
    for item in items:
        print(f"{item.run.dir.parent.name} run {item.run.id}: {verb} {_size(item.size)} ({item.workdir})")
    total = sum(item.size for item in items) if args.dry_run else remove(items)
    print(f"{verb} {_size(total)} in {len(items)} run(s); journals and report evidence kept")
    if args.venvs:
        venvs = stale_venvs(older_than)
        for venv in venvs:
            print(f"backend venv {venv.root.name}: unused for {venv.idle_s / 86400:.1f} days: {verb} "
                  f"{_size(venv.size)}")
        freed = sum(v.size for v in venvs) if args.dry_run else remove_venvs(venvs)
        print(f"{verb} {_size(freed)} in {len(venvs)} backend venv(s) (rebuilt on their next use)")
    return EXIT_OK


def _size(count: int) -> str:
    value, units = float(count), ["B", "KB", "MB", "GB"]
    while value >= 1024 and len(units) > 1:
        value, units = value / 1024, units[1:]
    return f"{value:.0f} B" if units[0] == "B" else f"{value:.1f} {units[0]}"


def cmd_containers(args: argparse.Namespace) -> int:
    from ptycho_batch.runtimes import images as containers

    for backend in args.backends:
        reference = containers.default_reference(backend)
        if args.action == "build":
            built = containers.build(backend, engine=args.engine,
                                     build_args=containers.parse_build_args(args.build_arg))
            print(f"{built.reference}: {built.image_id} ({built.seconds:.0f}s, log {built.log})")
        elif args.action == "export":
            print(containers.export(reference, format=args.format, engine=args.engine))
        else:
            print(getattr(containers, args.action)(reference, engine=args.engine))
    return EXIT_OK


# each sub-command: what adds its parser, and its handler (in `ptybatch --help` order)
VERBS: dict[str, tuple[Callable[[Subcommands], None], Handler]] = {
    "validate": (_validate_parser, cmd_validate), "schema": (_schema_parser, cmd_schema),
    "plan": (_plan_parser, cmd_plan), "submit": (_submit_parser, cmd_submit), "status": (_status_parser, cmd_status),
    "report": (_report_parser, cmd_report), "cancel": (_cancel_parser, cmd_cancel),
    "compare": (_compare_parser, cmd_compare), "gc": (_gc_parser, cmd_gc),
    "containers": (_containers_parser, cmd_containers), **VIEW_VERBS}
