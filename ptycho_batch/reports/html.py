"""The pieces of a self-contained HTML report: one file with its CSS inline and its images embedded as data:
URIs, so it can be mailed to a collaborator or opened from a cluster's file system (file://) with no network.
Everything that comes from logs, campaigns or the journal goes through `esc`.
"""

from __future__ import annotations

import base64
from collections.abc import Container, Iterable, Sequence
from html import escape
from pathlib import Path

from ptycho_batch.reports.stats import Interval, Verdict

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml"}
MAX_IMAGE_BYTES = 2 * 1024 * 1024   # a bigger picture is linked, not embedded: the report stays a few MB

CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1rem 1.5rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin: .2rem 0 .6rem; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem;
margin-top: 2rem; } h3 { margin: 1.2rem 0 .4rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 13px; } th, td { border: 1px solid var(--line);
padding: .25rem .5rem; text-align: left; vertical-align: top; } th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.verdict { padding: .7rem 1rem; border-radius: 6px; border: 2px solid; font-size: 1.05rem; margin: .8rem 0; }
.verdict.pass { border-color: var(--ok); background: #dafbe1; } .verdict.fail { border-color: var(--bad);
background: #ffebe9; }
.facts { color: var(--muted); margin: 0; padding-left: 1.1rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: 12px; white-space: nowrap; }
.badge.ok { background: #dafbe1; color: var(--ok); } .badge.bad { background: #ffebe9; color: var(--bad); }
.badge.warn { background: #fff8c5; color: var(--warn); } .badge.muted { background: #eaeef2; color: var(--muted); }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 1rem; }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .8rem; }
figure { margin: .5rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: var(--muted); font-size: 12px; }
details summary { cursor: pointer; color: var(--muted); }
.chart svg { max-width: 100%; height: auto; }
.diff { background: #fff8c5; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; } details { display: block; }
  details > summary { display: none; } .panels { grid-template-columns: 1fr 1fr; }
  h2 { break-after: avoid; } figure, table, .chart { break-inside: avoid; }
}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def page(title: str, body: Iterable[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[int] = (),
          marked: Container[int] = ()) -> str:
    """Cells are HTML already (escape with `esc`); columns in `numeric` are right-aligned; rows whose index
    is in `marked` are highlighted."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(("<tr class=\"diff\">" if r in marked else "<tr>")
                   + "".join(f"<td class=\"num\">{cell}</td>" if i in numeric else f"<td>{cell}</td>"
                             for i, cell in enumerate(row)) + "</tr>" for r, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def without_icon(status: str) -> str:
    """A status without its leading emoji (the badge's colour says it; not every system font has emoji)."""
    return status.split(" ", 1)[-1] if status[:1] and not status[:1].isascii() else status


def badge(text: str, kind: str) -> str:
    return f"<span class=\"badge {kind}\">{esc(text)}</span>"


def image(path: Path, caption: str) -> str:
    """The picture embedded as a data: URI (linked by name when it is too big or unreadable)."""
    kind = IMAGE_TYPES.get(path.suffix.lower())
    try:
        data = path.read_bytes() if kind and path.stat().st_size <= MAX_IMAGE_BYTES else None
    except OSError:
        data = None
    if data is None:
        return f"<p>{esc(caption)}: <code>{esc(path)}</code> (not embedded)</p>"
    uri = f"data:{kind};base64,{base64.b64encode(data).decode()}"
    return f"<figure><img src=\"{uri}\" alt=\"{esc(caption)}\"><figcaption>{esc(caption)}</figcaption></figure>"


def details(summary: str, lines: Sequence[str]) -> str:
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(chr(10).join(lines))}</pre></details>"


def verdict_badge(interval: Interval | None, ok: bool | None) -> str:
    """The parity/compare verdict as a coloured label."""
    if interval is not None and interval.verdict != Verdict.SINGLE:
        kind = {Verdict.EQUIVALENT: "ok", Verdict.DIFFERENT: "bad"}.get(interval.verdict, "warn")
        return badge(interval.text(), kind)
    if ok is None:
        return badge("not evaluated", "muted")
    label = interval.text() if interval is not None else ("within tolerance" if ok else "beyond tolerance")
    return badge(label, "ok" if ok else "bad")


def interval_cells(interval: Interval | None) -> list[str]:
    """n, mean ± sd per side and the 95 % interval of the difference, as table cells."""
    if interval is None:
        return ["", "", ""]
    a, b = interval.left, interval.right
    spread = [f"n={s.n}: {s.mean:.6g}" + (f" ± {s.sd:.3g}" if s.n > 1 else "") for s in (a, b)]
    return [esc(spread[0]), esc(spread[1]), esc(interval.range_text())]
