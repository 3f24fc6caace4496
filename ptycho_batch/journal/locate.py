"""Finding a run from what a user types: a run directory, a run id, a campaign file or name, an out dir."""

from __future__ import annotations

from pathlib import Path

from ptycho_batch.campaign.spec import find_campaign, load_campaign
from ptycho_batch.journal.store import JOURNAL_DIR, Run, campaign_journal, list_runs
from ptycho_batch.util.errors import SpecError

_SEARCH = (f"{JOURNAL_DIR}/*/*", f"*/{JOURNAL_DIR}/*/*", f"*/*/{JOURNAL_DIR}/*/*", f"*/*/*/{JOURNAL_DIR}/*/*")


def runs_below(root: Path) -> list[Run]:
    found = {p.parent for pattern in _SEARCH for p in root.glob(f"{pattern}/run.json")}
    return sorted((Run(p) for p in found), key=lambda r: r.id)


def runs_meant(argument: str | None, out: Path | None = None, cwd: Path | None = None) -> list[Run]:
    """Every run `argument` names, oldest first: one run directory or id, all runs of a campaign (file or
    name), or all runs below a directory (the current one when None); SpecError when there are none."""
    cwd = cwd or Path.cwd()
    if argument is None:
        runs = runs_below(cwd)
        if not runs:
            raise SpecError([f"no ptybatch runs found under {cwd}; name a campaign file, run directory or run id"])
        return runs
    path = Path(argument)
    if path.is_dir():
        if (path / "run.json").exists():
            return [Run(path.resolve())]
        runs = list_runs(path.resolve()) or runs_below(path.resolve())
        if runs:
            return runs
        raise SpecError([f"{argument}: no ptybatch runs in this directory"])
    matching = [r for r in runs_below(cwd) if r.id == argument]
    if matching:
        return matching[-1:]
    campaign_file = find_campaign(argument, cwd)
    campaign, located = load_campaign(campaign_file)
    out_dir = (out if out is not None else located.path.parent / campaign.out).resolve()
    runs = list_runs(campaign_journal(out_dir, campaign.campaign))
    if not runs:
        raise SpecError([f"{campaign_file}: campaign {campaign.campaign!r} has no runs yet under {out_dir}"])
    return runs


def locate_run(argument: str | None, out: Path | None = None, cwd: Path | None = None) -> Run:
    """The run meant by `argument` (the newest one when it names a campaign or a directory of runs)."""
    return runs_meant(argument, out, cwd)[-1]
