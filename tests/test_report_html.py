"""Seed-aware parity and compare through the real CLI (host jobs printing fixed samples), report.html's
content and escaping, `report --open`, and the page in a real browser."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import browser
from conftest import requires
from helpers import host_campaign, ptybatch, write_campaign

PY = sys.executable
# per seed 1, 2, 3: `same` agrees within 5 %, `shift` is twice as large on b, `noisy` spreads too much to tell
A = {"same": [10.0, 10.1, 9.9], "shift": [1.0, 1.02, 0.98], "noisy": [1.0, 1.2, 0.8]}
B = {"same": [10.01, 10.08, 9.92], "shift": [2.0, 2.05, 1.96], "noisy": [1.1, 1.4, 0.9]}
VALUES = r"same=(?P<same>\S+) shift=(?P<shift>\S+) noisy=(?P<noisy>\S+)"
# a 2x2 PNG written with zlib alone: the picture panels embed it
PNG = ("import struct, sys, zlib\n"
       "def chunk(kind, data): return struct.pack('>I', len(data)) + kind + data + "
       "struct.pack('>I', zlib.crc32(kind + data))\n"
       "raw = zlib.compress(b'\\x00\\x00\\xff\\x00\\xff\\x00\\x00')\n"
       "open('picture.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 2, 2, 8, 0, "
       "0, 0, 0)) + chunk(b'IDAT', raw) + chunk(b'IEND', b''))\n")


def _train(values: dict[str, list[float]], offset: str = "0") -> dict:
    script = (PNG + f"values = {values!r}; seed = int(sys.argv[1]); offset = float(sys.argv[2])\n"
              "print('Epoch 1/2 loss=%g' % (3.0 + seed)); print('Epoch 2/2 loss=%g' % (1.0 + seed / 10))\n"
              "print('same=%g shift=%g noisy=%g' % (values['same'][seed - 1] + offset, values['shift'][seed - 1], "
              "values['noisy'][seed - 1]))\n")
    backend = "a" if values is A else "b"
    return {"backend": backend, "stage": "train", "matrix": {"seed": [1, 2, 3]},
            "command": [PY, "-c", script, "{seed}", offset], "log": f"train_{backend}_{{seed}}.log",
            "observe": {"v": VALUES, "loss": r"Epoch (?P<epoch>\d+)/\d+ loss=(?P<loss>\S+)"},
            "artifacts": {"picture": {"path": "picture.png", "as": f"picture_{backend}_{{seed}}.png"}}}


def _campaign() -> dict:
    jobs = {"ta": _train(A), "tb": _train(B, "{offset}"),
            "sa": {"backend": "a", "command": [PY, "-c", "print('v=1.00')"], "observe": {"v": r"v=(?P<v>\S+)"}},
            "sb": {"backend": "b", "command": [PY, "-c", "print('v=1.03')"], "observe": {"v": r"v=(?P<v>\S+)"}},
            "broken": {"backend": "b", "command": [PY, "-c", "import sys; print('<b>boom</b> & <script>x()</script>');"
                                                               "sys.exit('RuntimeError: <img src=x onerror=alert(1)>')"]}}
    body = host_campaign(jobs, parity=[
        {"name": "seeds", "metrics": ["v.same", "v.shift", "v.noisy"], "between": ["ta", "tb"], "rel": 0.05},
        {"name": "single", "metrics": ["v"], "between": ["sa", "sb"], "rel": 0.05}])
    return {**body, "title": "Seeds <script>alert('title')</script>", "defaults": {"params": {"offset": 0}}}


def test_seed_aware_parity_in_the_inventory_and_report_html(tmp_path: Path) -> None:
    result = ptybatch("submit", str(write_campaign(tmp_path, _campaign())), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    analysis = tmp_path / "reports" / "t" / "analysis"
    data = json.loads((analysis / "artifact_inventory.json").read_text())
    verdicts = {row["metric"]: row["verdict"] for row in data["parity"]}
    assert verdicts == {"v.same": "equivalent", "v.shift": "different", "v.noisy": "inconclusive", "v": "single run"}
    noisy = next(row for row in data["parity"] if row["metric"] == "v.noisy")
    assert noisy["interval"]["left"]["n"] == 3 and noisy["interval"]["seeds_needed"] > 3 and noisy["ok"] is None
    assert noisy["interval"]["method"] == "paired", "seeds 1-3 on both sides: seed i is paired with seed i"
    markdown = (analysis / "artifact_inventory.md").read_text()
    parity = markdown.split("## Parity")[1].split("\n## ")[0]
    assert "Welch's t interval" in parity and "(paired) |" in parity
    assert "| seeds (ta vs tb) | `v.same` | 10 ± 0.1 (n=3) | 10.0033 ± 0.0802 (n=3) |" in parity
    assert f"inconclusive (~{noisy['interval']['seeds_needed']} seeds per side would decide)" in parity
    assert "| single (sa vs sb) | `v` | 1 | 1.03 |" in parity and "✅ single run (within tolerance)" in parity
    assert "parity seeds: v.shift out of tolerance" in result.stdout
    assert "parity seeds: v.noisy inconclusive (~" in result.stdout

    html = (analysis / "report.html").read_text()
    assert html.index('id="verdict"') < html.index('id="parity"') < html.index("<h2>Backend"), "verdicts first"
    for shown in ("equivalent within tolerance", ">different<", "inconclusive (~", "single run (within tolerance)",
                  "Welch&#x27;s t interval", "[-0.", "data:image/png;base64,", "<svg", "<details>"):
        assert shown in html, shown
    assert "<script" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
    assert "&lt;b&gt;boom&lt;/b&gt; &amp; &lt;script&gt;x()&lt;/script&gt;" in html, "log tails are escaped"
    assert "Seeds &lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in html, "campaign text is escaped"
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert html.count("data:image/png;base64,") == 6, "every seed's picture of both backends, embedded"
    svg = (analysis / "loss_curves.svg").read_text()
    assert all(f"t{side}[seed={seed}] ({side})" in svg for side in "ab" for seed in (1, 2, 3))


def test_compare_over_seeds_gives_the_seed_aware_verdict(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, _campaign())
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    assert ptybatch("submit", str(path), "--set", "offset=5", cwd=tmp_path).returncode == 0
    first, second = (p.parent.name for p in sorted((tmp_path / "reports" / ".ptybatch" / "t").glob("*/run.json")))
    compared = ptybatch("compare", first, second, "--metrics", "v.*", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    written = tmp_path / "reports" / "t" / "analysis" / f"compare_{first}_vs_{second}.md"
    rows = {(r["job"], r["metric"]): r for r in json.loads(written.with_suffix(".json").read_text())["rows"]}
    assert rows[("tb", "v.same")]["verdict"] == "different" and rows[("tb", "v.same")]["flagged"]
    assert rows[("ta", "v.same")]["verdict"] == "equivalent", "identical samples on both sides"
    assert rows[("tb", "v.same")]["interval"]["left"]["n"] == 3
    assert rows[("tb", "v.same")]["interval"]["method"] == "paired", "the same seeds in both runs"
    text = written.read_text()
    assert "| `tb` | `v.same` | 10.0033 ± 0.0802 (n=3) | 15.0033 ± 0.0802 (n=3) |" in text
    html = written.with_suffix(".html").read_text()
    assert "Welch&#x27;s t interval" in html and ">different<" in html and "<svg" in html


def test_report_open_uses_a_browser_or_prints_the_path(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, _campaign())
    assert ptybatch("submit", str(path), cwd=tmp_path).returncode == 0
    page = tmp_path / "reports" / "t" / "analysis" / "report.html"
    bare = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    none = ptybatch("report", str(path), "--open", cwd=tmp_path, env={**bare, "PATH": "/nonexistent"})
    assert none.returncode == 0 and f"no browser available here; open {page}" in none.stdout, none.stdout
    opener = tmp_path / "opener.sh"
    opener.write_text(f"#!/bin/sh\necho \"$1\" > {tmp_path / 'opened.txt'}\n")
    opener.chmod(0o755)
    opened = ptybatch("report", str(path), "--open", cwd=tmp_path, env={**bare, "BROWSER": str(opener)})
    assert opened.returncode == 0 and f"opened {page}" in opened.stdout, opened.stdout + opened.stderr
    assert (tmp_path / "opened.txt").read_text().strip() == page.as_uri()


def test_report_html_in_a_real_browser(tmp_path: Path) -> None:
    requires("browser", browser.available(), "apt-get install chromium chromium-driver; pip install selenium")
    assert ptybatch("submit", str(write_campaign(tmp_path, _campaign())), cwd=tmp_path).returncode == 0
    seen = browser.check_report(tmp_path / "reports" / "t" / "analysis" / "report.html", tmp_path / "report.png")
    assert len(seen["images"]) == 6 and "POLICY-T" in str(seen["verdict"])
    assert any("v.noisy" in row and "inconclusive" in row for row in seen["parity_rows"])
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
