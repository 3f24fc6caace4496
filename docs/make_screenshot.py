"""Regenerate docs/tui.svg, the README screenshot of `ptybatch watch`.

Renders the real dashboard over a synthetic run (every state, a matrix job opened, blockers) to a
recording rich Console and saves it with `Console.save_svg`.
Usage: python docs/make_screenshot.py [--out docs/tui.svg]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

from rich.console import Console

from ptycho_batch.tui.app import Dashboard
from ptycho_batch.tui.synthetic import synthetic_run

WIDTH, HEIGHT = 150, 34


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("tui.svg"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = synthetic_run(Path(tmp), {"simulate": 1, "train_torch": 1, "train_tf": 1, "sweep_seeds": 12,
                                        "infer_torch": 1, "compare": 1})
        dashboard = Dashboard(run)
        dashboard.cache.poll()
        for key in ("j", "j", "j", "space", "j", "j"):  # open the matrix job, select a running cell
            dashboard.handle(key)
        console = Console(width=WIDTH, height=HEIGHT, record=True, file=io.StringIO(), force_terminal=True,
                          color_system="truecolor")
        console.print(dashboard.frame(WIDTH, HEIGHT))
    console.save_svg(str(args.out), title="ptybatch watch")
    print(args.out)


if __name__ == "__main__":
    main()
