"""report.html: the artifact inventory as one self-contained page, rendered from the view that
inventory.write_report assembles from the journal (the same data its Markdown twin is written from).

Order: the verdict first (policy decision, parity), then what a reader checks next (jobs per backend,
torch and TF pictures side by side, loss curves, blockers with their log tails, provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ptycho_batch.reports.html import badge, details, esc, image, interval_cells, page, table, verdict_badge
from ptycho_batch.reports.parity import ParityRow
from ptycho_batch.reports.stats import METHOD


@dataclass(frozen=True)
class JobView:
    name: str
    backend: str
    stage: str
    status: str
    kind: str                              # badge colour: ok, bad, warn, muted
    duration: str
    detail: str
    command: str
    metrics: dict[str, str]
    images: list[tuple[str, Path]]         # (artifact name, picture)


@dataclass(frozen=True)
class Occurrence:
    who: str                               # job#attempt
    note: str | None                       # the red note
    tail: list[str]                        # the attempt log's last lines


@dataclass(frozen=True)
class Blocker:
    label: str                             # signature, or failure class
    line: str
    occurrences: list[Occurrence]


@dataclass(frozen=True)
class InventoryView:
    title: str
    facts: list[tuple[str, str]]
    passed: bool
    decision: str
    backends: list[tuple[str, str]]        # (backend, "required, runtime venv")
    jobs: list[JobView]
    parity: list[tuple[str, ParityRow]]    # (check label, row)
    forward: list[tuple[str, str, str, str, bool | None]]   # (job, metric, value, bound, ok)
    blockers: list[Blocker]
    quality: dict[str, dict[str, list[tuple[str, str]]]]   # metric -> backend -> (value, job)
    loss_svg: str | None
    provenance: dict[str, dict[str, str]]  # backend -> field -> value
    dataset: str
    data: list[str]
    next_steps: list[str]
    notes: dict[str, str] = field(default_factory=dict)


def render(view: InventoryView) -> str:
    body = [f"<h1>{esc(view.title)}</h1>",
            "<ul class=\"facts\">" + "".join(f"<li><b>{esc(k)}:</b> {esc(v)}</li>" for k, v in view.facts) + "</ul>",
            f"<div class=\"verdict {'pass' if view.passed else 'fail'}\" id=\"verdict\"><b>Policy decision:</b> "
            f"{esc(view.decision)}</div>"]
    body += _summary(view) + _parity(view) + _backends(view) + _panels(view) + _loss(view) + _quality(view)
    body += _blockers(view) + _provenance(view)
    body += ["<h2>Dataset</h2>", f"<p>{esc(view.dataset)}</p>"]
    if view.data:
        body.append("<ul>" + "".join(f"<li><code>{esc(d)}</code></li>" for d in view.data) + "</ul>")
    body += ["<h2>Next steps</h2>",
             "<ul>" + "".join(f"<li>{esc(s)}</li>" for s in view.next_steps) + "</ul>" if view.next_steps
             else "<p>(none recorded)</p>"]
    for key, value in view.notes.items():
        body += [f"<h2>{esc(key.replace('_', ' ').capitalize())}</h2>", f"<p>{esc(value)}</p>"]
    return page(view.title, body)


def _summary(view: InventoryView) -> list[str]:
    rows = [(f"<code>{esc(j.name)}</code>", esc(j.backend), esc(j.stage), badge(j.status, j.kind), esc(j.duration))
            for j in view.jobs]
    return ["<h2>Summary</h2>", table(["Job", "Backend", "Stage", "Status", "Duration"], rows, numeric=[4])]


def _parity(view: InventoryView) -> list[str]:
    if not view.parity and not view.forward:
        return []
    rows = [[esc(label), f"<code>{esc(row.metric)}</code>", *interval_cells(row.interval),
             esc(f"{row.diff.absolute:.4g}") if row.diff else "", esc(row.tolerance),
             verdict_badge(row.interval, row.ok) + (" (required)" if row.required else "")]
            for label, row in view.parity]
    rows += [[esc(f"forward pass ({job})"), f"<code>{esc(metric)}</code>", "", esc(value), "", "", esc(bound),
              verdict_badge(None, ok) if ok is not None else ""] for job, metric, value, bound, ok in view.forward]
    return ["<h2 id=\"parity\">Parity</h2>",
            f"<p>Left and right: n, mean ± standard deviation over the side's runs (seeds); the interval is the "
            f"95 % confidence interval of the difference of means (right − left), by {esc(METHOD)}. "
            "<i>Equivalent</i>: the interval lies inside ±tolerance; <i>different</i>: it excludes 0 and "
            "leaves the band; one run per side is a <i>single run</i>, checked against the tolerance alone.</p>",
            "<div id=\"parity-table\">" + table(["Check", "Metric", "Left", "Right", "95 % interval", "|Δ mean|",
                                                 "Tolerance", "Verdict"], rows, numeric=[2, 3, 4, 5]) + "</div>"]


def _backends(view: InventoryView) -> list[str]:
    body = []
    for backend, role in view.backends:
        jobs = [j for j in view.jobs if j.backend == backend]
        rows = [(f"<code>{esc(j.name)}</code>", esc(j.stage), badge(j.status, j.kind), esc(j.duration),
                 "<br>".join(f"<code>{esc(k)}</code> = {esc(v)}" for k, v in j.metrics.items())
                 + (f"<br><i>{esc(j.detail)}</i>" if j.detail else ""),
                 details("command", [j.command]))
                for j in jobs]
        body += [f"<h2>Backend <code>{esc(backend)}</code> ({esc(role)})</h2>",
                 table(["Job", "Stage", "State", "Duration", "Key observations", "Command"], rows, numeric=[3])]
    return body


def _panels(view: InventoryView) -> list[str]:
    """Each backend's pictures (reconstructions, patch grids) in its own column, side by side."""
    columns = []
    for backend, _ in view.backends:
        figures = [image(path, f"{job.name}: {name}") for job in view.jobs if job.backend == backend
                   for name, path in job.images]
        if figures:
            columns.append(f"<div class=\"panel\"><h3>{esc(backend)}</h3>" + "".join(figures) + "</div>")
    return ["<h2>Pictures</h2>", "<div class=\"panels\">" + "".join(columns) + "</div>"] if columns else []


def _loss(view: InventoryView) -> list[str]:
    return ["<h2>Training loss</h2>", f"<div class=\"chart\">{view.loss_svg}</div>"] if view.loss_svg else []


def _quality(view: InventoryView) -> list[str]:
    if not view.quality:
        return []
    backends = [b for b, _ in view.backends]
    rows = [[f"<code>{esc(metric)}</code>", *("<br>".join(f"{esc(value)} ({esc(job)})" for value, job in by[b])
                                              if b in by else "—" for b in backends)]
            for metric, by in sorted(view.quality.items())]
    return ["<h2>Reconstruction quality</h2>", table(["Metric", *backends], rows)]


def _blockers(view: InventoryView) -> list[str]:
    if not view.blockers:
        return []
    body = ["<h2>Blockers</h2>"]
    for blocker in view.blockers:
        count = len(blocker.occurrences)
        body.append(f"<h3>{badge(blocker.label, 'bad')} {count} occurrence{'s' if count > 1 else ''}</h3>"
                    + (f"<pre>{esc(blocker.line[:300])}</pre>" if blocker.line else ""))
        body += [f"<p><code>{esc(o.who)}</code>" + (f" — red note <code>{esc(Path(o.note).name)}</code>"
                                                   if o.note else "") + "</p>"
                 + (details(f"last {len(o.tail)} log lines", o.tail) if o.tail else "")
                 for o in blocker.occurrences]
    return body


def _provenance(view: InventoryView) -> list[str]:
    if not view.provenance:
        return []
    backends = list(view.provenance)
    keys = list(dict.fromkeys(k for fields in view.provenance.values() for k in fields))
    differs = [k for k in keys if len({view.provenance[b].get(k, "—") for b in backends}) > 1]
    rows = [[esc(k), *(esc(view.provenance[b].get(k, "—")) for b in backends)] for k in keys]
    rendered = table(["", *backends], rows, marked={keys.index(key) for key in differs})
    summary = ("Differs between backends: " + ", ".join(differs) + ".") if len(backends) > 1 and differs else ""
    return ["<h2>Provenance</h2>", f"<p>{esc(summary)}</p>" if summary else "", rendered]
